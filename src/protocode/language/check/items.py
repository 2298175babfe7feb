"""The data dictionary pass: each item's rule-language type, and contradictions in an entry."""

from __future__ import annotations

from fractions import Fraction

from protocode.core.errors import Diagnostic
from protocode.document.model import DataItem
from protocode.language.types import BOOL, DATE, NUMBER, TEXT, CodeType, NumType, Type
from protocode.language.units import parse_unit


def item_type(item: DataItem) -> Type:
    """The rule-language type of a data item's values."""
    if item.kind == "anchor" or item.type == "date":
        return DATE
    match item.type:
        case "boolean":
            return BOOL
        case "integer" | "number":
            return NUMBER
        case "quantity":
            return NumType(parse_unit(item.unit or "1"))
        case "code":
            return CodeType(item.values)
        case _:
            return TEXT


def item_problems(item: DataItem) -> list[Diagnostic]:
    """Contradictions inside one data dictionary entry."""
    out = []
    low, high = item.minimum, item.maximum
    if low is not None and high is not None and Fraction(low) > Fraction(high):
        message = f"item '{item.name}': minimum {low} is above maximum {high}"
        out.append(Diagnostic("item", message, item.span))
    for label, q in (("molar_mass", item.molar_mass), ("uln", item.uln), ("lln", item.lln)):
        if q is not None and Fraction(q.value) <= 0:
            out.append(Diagnostic("item", f"item '{item.name}': {label} must be positive", q.span))
    if item.unit is not None and item.type != "quantity" and item.kind != "event":
        message = f"item '{item.name}' has a unit but is of type {item.type}; use type quantity"
        out.append(Diagnostic("item", message, item.span))
    if item.values and item.type != "code":
        message = f"item '{item.name}' lists values but is of type {item.type}; use type code"
        out.append(Diagnostic("item", message, item.span))
    return out
