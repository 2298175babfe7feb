"""Dosing: the protocol's schedules checked, a patient's planned calendar, and compliance.

A protocol's ``dosing`` section (see ``docs/dosing.md``) lists schedules: a drug, its dose
(fixed, per kg of body weight or per m² of body surface area), route, frequency, number of
doses, a start date written in the rule language, ordering constraints on anchors and
tolerances. This module

1. gives the schedules `load` checked against the data dictionary (`schedules`; the pass is
   `protocode.language.check.dosing`, also run alone by `check_dosing`): dose units, the
   start expression's type, anchors, and schedules that cannot fit before their
   ``ends_before`` anchor; errors point at the file, line and column;
2. plans a patient's calendar (`plan`): every dose with its date and allowed time window;
3. compares what was given with the plan (`compliance`, `check_many`): each deviation with
   a kind and a severity.

Everything is exact: doses and unit conversions are rationals, and body surface area is
decided exactly to 0.01 m² (see `mosteller_bsa`). Times of administration are wall-clock
times as written; a UTC offset is checked for form but not applied, as dates in records are.
"""

from protocode.dosing.administrations import Administration, ComplianceReader, DosedRecord
from protocode.dosing.compliance import KINDS, ComplianceResult, Deviation, check_many, compliance
from protocode.dosing.plan import DosingReader, PlannedDose, mosteller_bsa, plan
from protocode.dosing.schedules import schedules
from protocode.language.check import CheckedSchedule
from protocode.language.check.dosing import ROUTES, check_dosing

__all__ = [
    "KINDS",
    "ROUTES",
    "Administration",
    "CheckedSchedule",
    "ComplianceReader",
    "ComplianceResult",
    "Deviation",
    "DosedRecord",
    "DosingReader",
    "PlannedDose",
    "check_dosing",
    "check_many",
    "compliance",
    "mosteller_bsa",
    "plan",
    "schedules",
]
