"""Numbers of integer, number and quantity items: exact unit conversion and plausible ranges.

All work that depends only on the item (parsing its unit and bounds, its molar mass) is done
once, when the reader is built; per value, a conversion is a dictionary look-up.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final

from protocode.core.errors import LoadError
from protocode.document.model import DataItem, Quantity
from protocode.language.units import Unit, UnitError, conversion_factor, parse_unit
from protocode.records.model import Magnitude
from protocode.records.numbers import format_number, magnitude, normal
from protocode.records.problems import (
    INVALID,
    FieldError,
    Problem,
    is_mapping,
    show_value,
    unknown_field,
)
from protocode.records.rules import RULES
from protocode.records.values import held, number

__all__ = ["QUANTITY_KEYS", "Bounds", "Converter", "Numeric", "molar_mass"]

QUANTITY_KEYS: Final = ("value", "unit")
_NUMBER: Final = RULES.number
_UNIT: Final = RULES.unit


def _decimal(text: str | None, item: DataItem, what: str) -> Magnitude | None:
    if text is None:
        return None
    try:
        # Integral bounds stay int: comparing ints is much cheaper than comparing Fractions.
        return normal(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise LoadError.at(
            "dictionary", f"{item.name}: {what} {text!r} is not a decimal number", item.span
        ) from None


class Bounds:
    """The plausible range of a numeric item, compared in the item's unit."""

    __slots__ = ("high", "low", "unit")

    def __init__(self, item: DataItem) -> None:
        self.low = _decimal(item.minimum, item, "minimum")
        self.high = _decimal(item.maximum, item, "maximum")
        self.unit = f" {item.unit}" if item.type == "quantity" and item.unit else ""

    def check(self, x: Magnitude) -> Magnitude:
        """`x` if it is within the range (inclusive), else the `FieldError` saying where not."""
        low, high = self.low, self.high
        if (low is None or x >= low) and (high is None or x <= high):
            return x
        if low is not None and high is not None:
            rule = _NUMBER.outside
        elif low is not None:
            rule = _NUMBER.below.record
        else:
            rule = _NUMBER.above.record
        message = rule.render(
            value=format_number(x),
            unit=self.unit,
            low=None if low is None else format_number(low),
            high=None if high is None else format_number(high),
        )
        raise FieldError(message, rule.code)


class Converter:
    """Exact conversion of quantities into one item's unit, cached per unit text.

    A cohort's records use a handful of unit spellings, so after the first record every
    conversion is a dictionary look-up. Failures are cached as (code, message) rather than
    exceptions: re-raising one exception object would grow its traceback on every record.
    """

    _CACHE_LIMIT: Final = 256

    def __init__(self, item: DataItem, unit: Unit) -> None:
        self.unit = unit
        self.molar_mass = molar_mass(item)
        self._cache: dict[str, Magnitude | tuple[str, str]] = {}

    def factor(self, text: object) -> Magnitude:
        """What a value in the unit `text` is multiplied by to be in the item's unit."""
        if not isinstance(text, str):
            rule = _UNIT.form
            raise FieldError(rule.render(unit=self.unit.text, shown=show_value(text)), rule.code)
        if len(text) > _UNIT.max_text:
            # Neither parsed (seconds for 100,000 characters) nor cached (the key is kept).
            rule = _UNIT.too_long
            raise FieldError(rule.render(shown=show_value(text), length=len(text)), rule.code)
        hit = self._cache.get(text)
        if hit is None:
            hit = self._compute(text)
            if len(self._cache) < self._CACHE_LIMIT:
                self._cache[text] = hit
        if isinstance(hit, tuple):
            raise FieldError(hit[1], hit[0])
        return hit

    def _compute(self, text: str) -> Magnitude | tuple[str, str]:
        try:
            src = parse_unit(text)
        except UnitError as exc:
            unknown = _UNIT.unknown
            if exc.message.startswith(f"unknown unit {text!r}"):
                return (unknown.code, exc.message)
            return (unknown.code, unknown.render(shown=repr(text), reason=exc.message))
        try:
            # Held as a GMP rational: every value in this unit is multiplied by it.
            return normal(conversion_factor(src, self.unit, self.molar_mass))
        except UnitError as exc:
            return (_UNIT.mismatch.code, _UNIT.mismatch.render(reason=exc.message))


def molar_mass(item: DataItem) -> Fraction | None:
    """The molar mass of the substance `item` measures, in g/mol (None when not given).

    Raises `LoadError` at the dictionary entry for a value that is not a molar mass.
    """
    q: Quantity | None = item.molar_mass
    if q is None:
        return None
    try:
        return Fraction(q.value) * conversion_factor(parse_unit(q.unit), parse_unit("g/mol"))
    except (ValueError, ZeroDivisionError) as exc:
        raise LoadError.at(
            "dictionary", f"{item.name}: bad molar mass {q.value} {q.unit}: {exc}", q.span
        ) from None


def _item_unit(item: DataItem) -> Unit:
    try:
        return parse_unit(item.unit or "1")
    except UnitError as exc:
        raise LoadError.at("dictionary", f"{item.name}: {exc.message}", item.span) from None


class Numeric:
    """Reads numbers of an integer, number or quantity item (plain or {value, unit})."""

    __slots__ = ("bounds", "converter", "integer", "unit_text")

    def __init__(self, item: DataItem) -> None:
        self.integer = item.type == "integer"
        self.bounds = Bounds(item)
        self.converter = Converter(item, _item_unit(item)) if item.type == "quantity" else None
        self.unit_text = item.unit or ""

    def expected(self) -> str:
        """What a value of the item is, for a message naming what was expected."""
        if self.integer:
            return _NUMBER.expected_integer
        if self.converter is None:
            return _NUMBER.expected_number
        return _NUMBER.expected_quantity.format(unit=self.unit_text)

    def number(self, raw: object, factor: Magnitude | None = None) -> Magnitude:
        """`raw` as an exact number in the item's unit, given in a unit `factor` away."""
        x = number(raw, self.expected())
        if factor is not None and factor != 1:
            x = normal(x * factor)
        if self.integer and not isinstance(x, int):
            rule = _NUMBER.integer.record
            raise FieldError(rule.render(shown=show_value(raw)), rule.code)
        # The plausible range first: its message is the more useful one.
        return held(self.bounds.check(x))

    def fact(self, raw: object, path: str, problems: list[Problem]) -> object:
        """A fact's value: a number in the item's unit, or (quantities) {value, unit}."""
        if self.converter is None or not is_mapping(raw):
            try:
                return self.number(raw)
            except FieldError as bad:
                problems.append((path, bad.code, bad.message))
                return INVALID
        ok = True
        for key in raw:
            if key not in QUANTITY_KEYS:
                problems.append(unknown_field(path, key, QUANTITY_KEYS))
                ok = False
        factor: Magnitude | None = None
        try:
            unit = raw.get("unit")
            if unit is not None:
                factor = self.converter.factor(unit)
        except FieldError as bad:
            problems.append((f"{path}.unit", bad.code, bad.message))
            ok = False
        value = raw.get("value")
        missing = RULES.missing_value.record
        if value is None:
            problems.append((f"{path}.value", missing.code, missing.render()))
            return INVALID
        if not ok:
            # Still check the number's shape, but not its range in an unknown unit.
            if magnitude(value) is None:
                form = _NUMBER.form.record
                message = form.render(expected=_NUMBER.expected_number, shown=show_value(value))
                problems.append((f"{path}.value", form.code, message))
            return INVALID
        try:
            return self.number(value, factor)
        except FieldError as bad:
            problems.append((f"{path}.value", bad.code, bad.message))
            return INVALID
