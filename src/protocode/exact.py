"""Exact rational numbers at run time.

Protocol limits are decimals and patients sit exactly on them, so evaluation never uses
binary floats. The IR keeps `fractions.Fraction` (standard, portable); the Python backends
and patient records use GMP rationals (`gmpy2.mpq`), which are exact too and about ten
times faster than `Fraction`. Integral values are plain `int`, the fastest of all. The two
rational types compare, hash and mix in arithmetic as the same numbers.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from gmpy2 import mpq

Rational: type = type(mpq(0))


def rational(x: Any) -> Any:
    """`x` (int, Fraction, mpq or Decimal) as an `int` when integral, else an `mpq`."""
    if type(x) is int:
        return x
    q = mpq(x)
    return int(q.numerator) if q.denominator == 1 else q


def is_rational(x: object) -> bool:
    """Whether `x` is an exact number of either rational type (or an int, not a bool)."""
    return isinstance(x, int | Fraction | Rational) and not isinstance(x, bool)


def to_fraction(x: Any) -> Fraction:
    """`x` as a standard `Fraction` (for display and the JSON export)."""
    return Fraction(int(x.numerator), int(x.denominator))


def decimal_places(x: Any) -> int | None:
    """How many decimal places write the rational `x` exactly; None when its decimal repeats.

    A fraction in lowest terms terminates exactly when its denominator is 2^a 5^b, and then
    needs max(a, b) places.
    """
    rest, twos, fives = int(x.denominator), 0, 0
    while rest % 2 == 0:
        rest //= 2
        twos += 1
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    return max(twos, fives) if rest == 1 else None


def decimal_text(x: Any, places: int) -> str:
    """The rational `x` as plain decimal text with `places` places (exact when it has them)."""
    num, den = int(x.numerator), int(x.denominator)
    scaled = abs(num) * 10**places // den
    sign = "-" if num < 0 else ""
    if places == 0:
        return f"{sign}{scaled}"
    whole, frac = divmod(scaled, 10**places)
    return f"{sign}{whole}.{frac:0{places}d}"


MAX_DIGITS = 100
"""The most digits a number written in a protocol may have.

Limits and doses need a dozen. The bound keeps numbers far below Python's 4,300-digit limit
on converting an int to or from text (which a message or an export would hit) and keeps
exact arithmetic on them cheap.
"""


def too_long(text: str) -> str | None:
    """Why the number written as `text` is refused, or None when it has at most `MAX_DIGITS`.

    Counts every character but a sign, a point and the underscores YAML allows, so that any
    spelling of a number (``0x…``, ``1e…``) is bounded the same way.
    """
    digits = sum(ch not in "+-._" for ch in text)
    if digits <= MAX_DIGITS:
        return None
    return f"a number of {digits:,} digits is too long (at most {MAX_DIGITS})"


def decimal(text: str) -> Fraction:
    """The exact value of plain decimal text such as ``-12.5``.

    Raises `ValueError`, with the message of `too_long`, for a number of more than
    `MAX_DIGITS` digits.
    """
    problem = too_long(text)
    if problem is not None:
        raise ValueError(problem)
    return Fraction(text)
