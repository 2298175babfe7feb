"""Check stage: AST → typed IR, with names resolved and units converted (`check_protocol`)."""

from protocode.language.check.checker import (
    MAX_NESTING,
    CheckedCriterion,
    CheckedProtocol,
    check_protocol,
    check_rule,
)

__all__ = ["MAX_NESTING", "CheckedCriterion", "CheckedProtocol", "check_protocol", "check_rule"]
