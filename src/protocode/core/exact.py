"""Exact rational numbers at run time.

Protocol limits are decimals and patients sit exactly on them, so evaluation never uses
binary floats. The IR keeps `fractions.Fraction` (standard, portable); the Python backends
and patient records use GMP rationals (`gmpy2.mpq`), which are exact too and about ten
times faster than `Fraction`. Integral values are plain `int`, the fastest of all. The two
rational types compare, hash and mix in arithmetic as the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
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


def decimal_exponent(size: Any) -> int:
    """The decimal exponent e of a positive rational: 10**e <= size < 10**(e + 1).

    Estimated from bit lengths (str() of an int refuses 4,300 digits), then corrected.
    """
    q = to_fraction(size)
    # log10(2) is 0.30103: the estimate is off by at most one either way.
    e = (q.numerator.bit_length() - q.denominator.bit_length()) * 30103 // 100000
    while q >= Fraction(10) ** (e + 1):
        e += 1
    while q < Fraction(10) ** e:
        e -= 1
    return e


# A float holds every magnitude in this range as a normal number (its largest is about
# 1.8e308, its smallest normal one 2.2e-308): beyond it float() overflows or loses digits.
_FLOAT_LOW = Fraction(1, 10**307)
_FLOAT_HIGH = Fraction(10**308)


def approximate(x: Any, show: Callable[[float], str], digits: int = 3) -> str:
    """The rational `x` shown approximately, for messages and reports; never overflows.

    Where a float holds `x` this is `show(float(x))` (each caller keeps its own rounding,
    e.g. ``lambda f: f"{f:.3g}"``). Beyond, float() would raise OverflowError or give 0, so
    `x` is written in scientific notation computed with integers, rounded half to even to
    `digits` significant digits, trailing zeros dropped as %g does: ``3.33e+400``.
    """
    q = to_fraction(x)
    size = abs(q)
    if size == 0 or _FLOAT_LOW <= size < _FLOAT_HIGH:
        return show(float(q))
    exponent = decimal_exponent(size)
    rounded = round(size * Fraction(10) ** (digits - 1 - exponent))
    if rounded == 10**digits:
        # Rounding carried into a new digit (9.995e400 to 1.00e401).
        rounded //= 10
        exponent += 1
    text = str(rounded)
    tail = text[1:].rstrip("0")
    body = f"{text[0]}.{tail}" if tail else text[0]
    return f"{'-' if q < 0 else ''}{body}e{exponent:+03d}"


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
