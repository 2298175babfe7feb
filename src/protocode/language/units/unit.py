"""A unit of measure: its text, its exact size in coherent base units, its dimension.

Units multiply, divide and raise to integer powers with their text kept parseable; the error
of bad unit text or incompatible units is `UnitError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from protocode.language.units.atoms import resolve
from protocode.language.units.dimensions import (
    NO_DIMS,
    Dims,
    add_dims,
    describe_dims,
    scale_dims,
    sub_dims,
)

MAX_EXPONENT = 99
"""The largest exponent of a unit, either sign.

Exponents are capped so that a typo like 'm999999999' cannot make Fraction arithmetic
allocate gigabytes; no clinical unit comes anywhere near this.
"""

SYMBOL_EXPONENT = re.compile(r"(?P<symbol>.*?)(?P<exponent>[+-]?[0-9]+)?")
"""A simple unit's text: its symbol and an optional integer exponent (``cm3``, ``s-1``)."""


class UnitError(ValueError):
    """Bad unit text or incompatible units.

    `offset` is the 0-based character offset in the unit text where the problem is (0 if
    unknown) and `length` (at least 1) how many characters it covers, so callers can underline
    the bad part inside a larger source span.
    """

    def __init__(self, message: str, offset: int = 0, length: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.offset = max(0, offset)
        self.length = max(1, length)

    def __reduce__(self) -> tuple[type[UnitError], tuple[str, int, int]]:
        # Keep offset/length when the error crosses a process boundary (pickle).
        return (type(self), (self.message, self.offset, self.length))


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit: display text, size in coherent base units, and dimension vector.

    `text` is the normalised spelling ('µg' -> 'ug', 'days' -> 'd') and always parses back to
    the same factor and dimensions. Two units are interchangeable for conversion iff their
    `dims` are equal; equality of `Unit` objects also compares `text`.
    """

    text: str
    factor: Fraction
    dims: Dims

    def __str__(self) -> str:
        return self.text

    def __mul__(self, other: Unit) -> Unit:
        """The product unit, e.g. mg/kg * kg = mg/kg.kg (not simplified)."""
        if not isinstance(other, Unit):
            return NotImplemented
        if other.text == "1":
            return self
        if self.text == "1":
            return other
        # Left-to-right '.' and '/' are linear in their first component, so prefixing
        # 'a.' to any term multiplies the whole term: no parentheses are needed.
        text = f"{_as_left(self.text)}.{_as_left(other.text)}"
        return Unit(text, self.factor * other.factor, add_dims(self.dims, other.dims))

    def __truediv__(self, other: Unit) -> Unit:
        """The quotient unit, e.g. mL / min = mL/min."""
        if not isinstance(other, Unit):
            return NotImplemented
        if other.text == "1":
            return self
        right = other.text
        if _is_compound(right):
            right = f"({_as_left(right)})"
        left = "" if self.text == "1" and not right.startswith("(") else _as_left(self.text)
        text = f"{left}/{right}"
        return Unit(text, self.factor / other.factor, sub_dims(self.dims, other.dims))

    def __pow__(self, n: int) -> Unit:
        """The unit raised to an integer power, e.g. cm ** 3 = cm3, s ** -1 = s-1."""
        if not isinstance(n, int) or isinstance(n, bool):
            return NotImplemented
        if n == 0 or self.text == "1":
            return ONE
        if n == 1:
            return self
        factor = self.factor**n
        dims = scale_dims(self.dims, n)
        simple = _split_simple(self.text)
        if simple is not None:
            symbol, exponent = simple
            new_exponent = exponent * n
            if abs(new_exponent) > MAX_EXPONENT:
                raise UnitError(f"exponent {new_exponent} is too large", 0, len(self.text))
            text = symbol if new_exponent == 1 else f"{symbol}{new_exponent}"
            return Unit(text, factor, dims)
        if abs(n) > MAX_EXPONENT:
            raise UnitError(f"exponent {n} is too large", 0, len(self.text))
        repeated = ".".join([_as_left(self.text)] * abs(n))
        if n > 0:
            return Unit(repeated, factor, dims)
        return Unit(f"1/({repeated})", factor, dims)

    @property
    def dimensionless(self) -> bool:
        """True for pure numbers: '1', '%', '10*9', '{cells}', 'mg/g', ..."""
        return self.dims == NO_DIMS

    def convertible(self, other: Unit) -> bool:
        """True if a value in this unit can be expressed in `other` (same dimensions)."""
        return self.dims == other.dims

    def describe_dimension(self) -> str:
        """Human text for the dimension, e.g. 'mass/volume', 'volume/time', 'time'."""
        return describe_dims(self.dims)


ONE = Unit("1", Fraction(1), NO_DIMS)
"""The dimensionless unit one."""


def _is_compound(text: str) -> bool:
    # Extra parentheses are harmless, so any operator character (even one inside an
    # annotation such as '{1.73_m2}') counts as compound.
    return "." in text or "/" in text


def _as_left(text: str) -> str:
    """`text` rewritten so it can be the first operand of a longer term.

    A leading '/' inverts the whole term in UCUM, so '/uL' followed by '.h' would wrongly
    become 1/(uL.h); spell the inversion with an explicit '1' instead.
    """
    if not text.startswith("/"):
        return text
    rest = text[1:]
    return f"1/({rest})" if _is_compound(rest) else f"1/{rest}"


def _split_simple(text: str) -> tuple[str, int] | None:
    """(symbol, exponent) if `text` is one known atom with an optional exponent, else None."""
    if not text or _is_compound(text) or any(c in text for c in "(){}"):
        return None
    match = SYMBOL_EXPONENT.fullmatch(text)
    if match is None or not match["symbol"] or resolve(match["symbol"]) is None:
        return None
    exponent = match["exponent"]
    return match["symbol"], 1 if exponent is None else int(exponent)
