"""The fixed function library of the rule language: typing rules and exact implementations.

Functions are total on known arguments and strict in unknowns: any unknown argument makes
the result unknown (the runtime handles that before calling `impl`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from protocode.language.types import DATE, NumType, Type
from protocode.language.units import parse_unit


class SignatureError(Exception):
    """Arguments of the wrong number or type; the checker turns this into a diagnostic."""


def completed_years(start: dt.date, end: dt.date) -> int:
    """Whole calendar years from `start` to `end` (age in years: birthdays passed)."""
    years = end.year - start.year
    if (end.month, end.day) < (start.month, start.day):
        years -= 1
    return years


def completed_months(start: dt.date, end: dt.date) -> int:
    """Whole calendar months from `start` to `end`."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if end.day < start.day:
        months -= 1
    return months


def add_months(date: dt.date, months: int) -> dt.date:
    """`date` moved by calendar months; the day is clamped to the end of a shorter month."""
    index = date.year * 12 + date.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    next_month = dt.date(year + month // 12, month % 12 + 1, 1)
    last_day = (next_month - dt.timedelta(days=1)).day
    return dt.date(year, month, min(date.day, last_day))


def _round(x: Fraction | int, digits: Fraction | int = 0) -> Fraction | int:
    # Clinical rounding is half away from zero, not Python's banker's rounding.
    scale = Fraction(10) ** int(digits)
    scaled = abs(Fraction(x) * scale)
    rounded = math.floor(scaled + Fraction(1, 2))
    result = Fraction(rounded if x >= 0 else -rounded) / scale
    return int(result) if result.denominator == 1 else result


@dataclass(frozen=True, slots=True)
class Function:
    """A library function: how to type it and how to compute it on known values."""

    name: str
    signature: str
    typing: Callable[[Sequence[Type]], Type]
    impl: Callable[..., object]
    doc: str


def _same_numeric(args: Sequence[Type]) -> Type:
    if not args or not all(isinstance(a, NumType) for a in args):
        raise SignatureError("expects one or more numbers or quantities")
    return args[0]


def _one_numeric(args: Sequence[Type]) -> Type:
    if len(args) != 1 or not isinstance(args[0], NumType):
        raise SignatureError("expects one number or quantity")
    return args[0]


def _round_typing(args: Sequence[Type]) -> Type:
    if not 1 <= len(args) <= 2 or not all(isinstance(a, NumType) for a in args):
        raise SignatureError("expects a number and optionally a number of digits")
    return args[0]


def _dates_to(unit: str) -> Callable[[Sequence[Type]], Type]:
    def typing(args: Sequence[Type]) -> Type:
        if len(args) != 2 or any(a != DATE for a in args):
            raise SignatureError("expects two dates (start, end)")
        return NumType(parse_unit(unit))

    return typing


def _min(*xs: Fraction | int) -> Fraction | int:
    return min(xs)


def _max(*xs: Fraction | int) -> Fraction | int:
    return max(xs)


def _abs(x: Fraction | int) -> Fraction | int:
    return -x if x < 0 else x


def _floor(x: Fraction | int) -> int:
    return math.floor(x)


def _ceil(x: Fraction | int) -> int:
    return math.ceil(x)


def _days_between(start: dt.date, end: dt.date) -> int:
    return (end - start).days


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("min", "min(x, y, …)", _same_numeric, _min, "The smallest of its arguments."),
        Function("max", "max(x, y, …)", _same_numeric, _max, "The largest of its arguments."),
        Function("abs", "abs(x)", _one_numeric, _abs, "Absolute value."),
        Function("round", "round(x, digits)", _round_typing, _round, "Round half away from zero."),
        Function("floor", "floor(x)", _one_numeric, _floor, "Round down to a whole number."),
        Function("ceil", "ceil(x)", _one_numeric, _ceil, "Round up to a whole number."),
        Function(
            "years_between",
            "years_between(start, end)",
            _dates_to("a"),
            completed_years,
            "Whole calendar years from start to end: age at a date.",
        ),
        Function(
            "months_between",
            "months_between(start, end)",
            _dates_to("mo"),
            completed_months,
            "Whole calendar months from start to end.",
        ),
        Function(
            "days_between",
            "days_between(start, end)",
            _dates_to("d"),
            _days_between,
            "Days from start to end (negative if end is earlier).",
        ),
    )
}
