"""Check stage: AST → typed IR, with names resolved and units converted (`check_protocol`)."""

from protocode.check.checker import (
    CheckedCriterion,
    CheckedProtocol,
    check_protocol,
    check_rule,
)

__all__ = ["CheckedCriterion", "CheckedProtocol", "check_protocol", "check_rule"]
