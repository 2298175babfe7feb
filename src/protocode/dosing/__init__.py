"""Dosing: the protocol's schedules checked, a patient's planned calendar, and compliance.

A protocol's ``dosing`` section (see ``docs/dosing.md``) lists schedules: a drug, its dose
(fixed, per kg of body weight or per m² of body surface area), route, frequency, number of
doses, a start date written in the rule language, ordering constraints on anchors and
tolerances. This module

1. checks the schedules against the data dictionary (`check_dosing`): dose units, the start
   expression's type, anchors, and schedules that cannot fit before their ``ends_before``
   anchor; errors point at the file, line and column;
2. plans a patient's calendar (`plan`): every dose with its date and allowed time window;
3. compares what was given with the plan (`compliance`, `check_many`): each deviation with
   a kind and a severity.

Everything is exact: doses and unit conversions are rationals, and body surface area is
decided exactly to 0.01 m² (see `mosteller_bsa`). Times of administration are wall-clock
times as written; a UTC offset is checked for form but not applied, as dates in records are.
"""

from protocode.dosing.compliance import (
    KINDS,
    Administration,
    ComplianceReader,
    ComplianceResult,
    Deviation,
    DosedRecord,
    check_many,
    compliance,
)
from protocode.dosing.plan import DosingReader, PlannedDose, mosteller_bsa, plan
from protocode.dosing.schedules import ROUTES, CheckedSchedule, check_dosing, schedules

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
