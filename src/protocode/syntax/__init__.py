"""Parse stage: rule text → AST (`parse_rule`)."""

from protocode.syntax.parser import parse_rule

__all__ = ["parse_rule"]
