"""Exact record numbers: reading JSON and API numbers exactly, and showing them in messages.

A record number is an `int` or a GMP rational (never a float). JSON decimals are read from
their text; NaN, Infinity and absurdly long numbers are `Unreadable`, an error of the record
holding them rather than of the whole file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Final

from gmpy2 import mpq

from protocode.core.exact import Rational, decimal_exponent, decimal_places, decimal_text, rational
from protocode.records.model import Magnitude
from protocode.records.rules import RULES

__all__ = [
    "SHOW_BITS",
    "Unreadable",
    "exact_decimal",
    "exact_int",
    "format_number",
    "magnitude",
    "normal",
]

_MAX_EXPONENT: Final = RULES.number.max_exponent


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A JSON number that has no exact finite value (NaN, Infinity), or one too long to read
    (1e999999, or more digits than int() converts)."""

    text: str
    too_long: bool = False


def normal(x: object) -> Magnitude:
    """`x` as a record number: an int, or a GMP rational (exact, and fast in the backends'
    arithmetic)."""
    out: Magnitude = rational(x)
    return out


def exact_decimal(text: str) -> Magnitude | Unreadable:
    """The exact value of decimal text, or `Unreadable` when it is absurdly large or long."""
    _, _, exponent = text.lower().partition("e")
    # Digits only, so int() is cheap; a huge exponent string is itself unreadable.
    if exponent and (len(exponent) > 6 or abs(int(exponent)) > _MAX_EXPONENT):
        return Unreadable(text, too_long=True)
    try:
        return normal(mpq(text))
    except ValueError:
        # More digits than int() will convert (sys.get_int_max_str_digits).
        return Unreadable(text, too_long=True)


def exact_int(text: str) -> int | Unreadable:
    """A JSON integer, or `Unreadable` when it has more digits than int() converts (which
    would otherwise fail the whole file, not just the record holding it)."""
    try:
        return int(text)
    except ValueError:
        return Unreadable(text, too_long=True)


def magnitude(raw: object) -> Magnitude | None:
    """The exact value of a number given in JSON or through the API, or None if not a number."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return int(raw)
    if isinstance(raw, Fraction | Rational):
        return normal(raw)
    if isinstance(raw, float):
        # repr() is the shortest text that round-trips, i.e. the decimal the user wrote.
        return normal(mpq(repr(raw))) if math.isfinite(raw) else None
    if isinstance(raw, Decimal):
        if not raw.is_finite() or abs(raw.adjusted()) > _MAX_EXPONENT:
            return None
        return normal(Fraction(raw))
    return None


# Messages show magnitudes at or beyond this in scientific notation (1e300, not 301 digits).
_SCIENTIFIC_FROM: Final = 10**21
# Beyond this many bits a number is described, not printed (str() of a huge int is slow).
SHOW_BITS: Final = 10_000
# Significant digits shown of a value that has no short exact form.
_APPROX_DIGITS: Final = 6


def format_number(x: Magnitude) -> str:
    """A magnitude as people write it, computed exactly (no floats).

    A terminating decimal of moderate size is shown exactly (``1.05``, ``-3``); a very large
    or very small one in scientific notation, exact when it has few significant digits
    (``1e300``, ``2.5e-31``); anything else rounded, marked ``≈`` (``≈0.333333``). Beyond
    `SHOW_BITS` bits a number is described instead.
    """
    num, den = int(x.numerator), int(x.denominator)
    if den == 1 and abs(num) < _SCIENTIFIC_FROM:
        return str(num)
    if max(num.bit_length(), den.bit_length()) > SHOW_BITS:
        if den == 1:
            return f"a {num.bit_length()}-bit integer"
        return "a number too large to show"
    digits = decimal_places(x)  # None: the decimal repeats
    sign = "-" if num < 0 else ""
    size = abs(Fraction(num, den))
    if digits is not None and digits <= 30 and size < _SCIENTIFIC_FROM:
        return decimal_text(x, digits)
    exponent = decimal_exponent(size)
    if digits is not None:
        # A terminating decimal: its significand is an integer once scaled.
        significand = str(abs(num) * 10**digits // den).rstrip("0")
        if len(significand) <= 17:
            return f"{sign}{_point(significand, 1)}e{exponent}"
    # Rounded to _APPROX_DIGITS significant digits (half to even, exactly).
    rounded = round(size * Fraction(10) ** (_APPROX_DIGITS - 1 - exponent))
    if rounded >= 10**_APPROX_DIGITS:
        rounded //= 10
        exponent += 1
    text = str(rounded)
    if -4 <= exponent < _APPROX_DIGITS:
        # Positional where %g would be: 0.333333, 33.3333, 0.000123457.
        if exponent < 0:
            body = "0." + "0" * (-exponent - 1) + text.rstrip("0")
        else:
            body = _point(text, exponent + 1)
        return f"≈{sign}{body}"
    return f"≈{sign}{_point(text, 1)}e{exponent}"


def _point(digits: str, whole: int) -> str:
    """`digits` with a decimal point after the first `whole`; trailing zeros of the fraction
    dropped."""
    head, tail = digits[:whole], digits[whole:].rstrip("0")
    return f"{head}.{tail}" if tail else head
