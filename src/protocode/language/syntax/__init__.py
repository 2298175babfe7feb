"""Parse stage: rule text → AST (`parse_rule`)."""

from protocode.language.syntax.parser import parse_rule

__all__ = ["parse_rule"]
