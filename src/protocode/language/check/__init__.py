"""Check stage: AST → typed IR for every section of a protocol (`check_protocol`).

The passes, in order (`PASSES`): the data dictionary (`items`), definitions and criteria
(`rules`, lowering through `expressions` and `comparisons`), grading tables (`grading`),
derived events (`derived`), endpoints (`endpoints`) and dosing schedules (`dosing`); the
optional sections share one walk (`sections`). `results` holds what they produce.
"""

from protocode.language.check.protocol import PASSES, Pass, check_protocol
from protocode.language.check.results import (
    AnyEndpoint,
    Boundary,
    CheckedClause,
    CheckedCriterion,
    CheckedDerivedEvent,
    CheckedEndpoint,
    CheckedProportion,
    CheckedProtocol,
    CheckedSchedule,
    Horizon,
)
from protocode.language.check.rules import MAX_NESTING, check_expression, check_rule

__all__ = [
    "MAX_NESTING",
    "PASSES",
    "AnyEndpoint",
    "Boundary",
    "CheckedClause",
    "CheckedCriterion",
    "CheckedDerivedEvent",
    "CheckedEndpoint",
    "CheckedProportion",
    "CheckedProtocol",
    "CheckedSchedule",
    "Horizon",
    "Pass",
    "check_expression",
    "check_protocol",
    "check_rule",
]
