"""Format stage: rules rewritten into one canonical layout (`protocode fmt`)."""

from protocode.fmt.printer import WIDTH, format_rule

__all__ = ["WIDTH", "format_rule"]
