"""The rule language's types. Quantities carry their unit, so a number's meaning is static."""

from __future__ import annotations

from dataclasses import dataclass

from protocode.language.units import ONE, Unit


@dataclass(frozen=True, slots=True)
class BoolType:
    """Three-valued truth: true, false, or unknown."""

    def __str__(self) -> str:
        return "boolean"


@dataclass(frozen=True, slots=True)
class NumType:
    """A number measured in `unit` (the unit one for plain numbers and counts)."""

    unit: Unit = ONE

    def __str__(self) -> str:
        if self.unit.dimensionless and self.unit.factor == 1:
            return "number"
        return f"quantity in {self.unit.text} ({self.unit.describe_dimension()})"


@dataclass(frozen=True, slots=True)
class DateType:
    """A calendar date."""

    def __str__(self) -> str:
        return "date"


@dataclass(frozen=True, slots=True)
class CodeType:
    """One of a fixed set of codes, e.g. the values of `sex`."""

    values: tuple[str, ...]

    def __str__(self) -> str:
        return "code (" + ", ".join(self.values) + ")"


@dataclass(frozen=True, slots=True)
class TextType:
    """Free text; only equality is defined."""

    def __str__(self) -> str:
        return "text"


Type = BoolType | NumType | DateType | CodeType | TextType

BOOL = BoolType()
NUMBER = NumType()
DATE = DateType()
TEXT = TextType()
