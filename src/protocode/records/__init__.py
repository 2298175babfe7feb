"""Patient records: reading, validating and normalising the data rules are evaluated on.

A record is a JSON object per patient (see ``docs/records.md``). `RecordReader` checks it
against the data dictionary and turns it into a `Record` whose values are exact: numbers are
`int` or `Fraction` (never float), every quantity is converted to its item's declared unit at
ingestion, dates are `datetime.date`. Absent or null fields are missing (unknown), never false
or zero; an empty list for an observation or event item means "known: none".

Bad data never escapes as a Python exception: each bad field becomes one `Diagnostic`, and a
record with any bad field raises one `RecordError` carrying all of them. The file readers
report a bad record and carry on with the next one.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import math
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Final, TypeAlias, TypeGuard

from gmpy2 import mpq

from protocode.core.errors import Diagnostic, LoadError, RecordError, did_you_mean
from protocode.core.exact import Rational, decimal_exponent, decimal_places, decimal_text, rational
from protocode.core.jsontext import (
    MAX_DEPTH,
    TooDeep,
    bad_byte,
    decode,
    document_start,
    file_error,
    line_syntax,
    short_path,
    syntax_error,
)
from protocode.core.jsontext import loads as json_loads
from protocode.core.source import Source
from protocode.document.model import DataItem, Quantity
from protocode.language.units import Unit, UnitError, conversion_factor, parse_unit

__all__ = [
    "FieldError",
    "Observation",
    "Occurrence",
    "Record",
    "RecordReader",
    "iter_records",
    "read_records",
    "record_number",
    "show_value",
]

# An exact number: `int`, or a GMP rational at run time (typed as `Fraction`, whose
# interface it shares; gmpy2 has no type information).
Magnitude: TypeAlias = int | Fraction


@dataclass(frozen=True, slots=True)
class Observation:
    """One dated value of an observation item, in the item's unit.

    `low`/`high` are the lab's reference range for this measurement (converted to the item's
    unit like the value), when the record gives one.
    """

    value: object
    date: dt.date | None
    low: Magnitude | None = None
    high: Magnitude | None = None


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence of an event item; `date` is None when the record says it is undated."""

    date: dt.date | None
    end: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """A validated patient record.

    Only items present in the record appear in `values`, `series` and `events`; an absent key
    is missing data. `series` holds observations sorted by date (undated last); `events`
    holds occurrences in the same order.
    """

    id: str
    values: dict[str, object]
    series: dict[str, tuple[Observation, ...]]
    events: dict[str, tuple[Occurrence, ...]]
    attestations: dict[str, bool]


# --- exact numbers and messages --------------------------------------------------------------

# Fraction('1e999999999') would build a billion-digit integer; a clinical value never needs a
# decimal exponent anywhere near this bound.
_MAX_DECIMAL_EXPONENT = 400
# A record number has fewer digits than this in its numerator and in its denominator (lowest
# terms): far beyond any measurement, and within what every later stage prints and converts
# (str() of an int refuses 4,300 digits, a float overflows past 1e308).
_MAX_DIGITS: Final = 300
_DIGITS_BOUND: Final = 10**_MAX_DIGITS
_DECIMAL_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# A calendar date, optionally followed by an ISO 8601 time of day and UTC offset (FHIR
# dateTime/instant). Only the date as written is kept: the time and offset are checked for
# form, never applied.
_DATE_RE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:T(?P<h>[0-9]{2}):(?P<m>[0-9]{2})(?::(?P<s>[0-9]{2})(?:\.[0-9]+)?)?"
    r"(?:Z|[+-](?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))?)?"
)
# Dates far outside any clinical range overflow date arithmetic (a window subtracting days
# from 0001-01-03); records accept only these.
_MIN_DATE: Final = dt.date(1800, 1, 1)
_MAX_DATE: Final = dt.date(2200, 12, 31)


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """A JSON number that has no exact finite value (NaN, Infinity), or one too long to read
    (1e999999, or more digits than int() converts)."""

    text: str
    too_long: bool = False


def _norm(x: object) -> Magnitude:
    # Stored as int or GMP rational: exact, and fast in the backends' arithmetic.
    normal: Magnitude = rational(x)
    return normal


def _exact_decimal(text: str) -> Magnitude | _Unreadable:
    """The exact value of decimal text, or `_Unreadable` when it is absurdly large or long."""
    _, _, exponent = text.lower().partition("e")
    # Digits only, so int() is cheap; a huge exponent string is itself unreadable.
    if exponent and (len(exponent) > 6 or abs(int(exponent)) > _MAX_DECIMAL_EXPONENT):
        return _Unreadable(text, too_long=True)
    try:
        return _norm(mpq(text))
    except ValueError:
        # More digits than int() will convert (sys.get_int_max_str_digits).
        return _Unreadable(text, too_long=True)


def _exact_int(text: str) -> int | _Unreadable:
    """A JSON integer, or `_Unreadable` when it has more digits than int() converts (which
    would otherwise fail the whole file, not just the record holding it)."""
    try:
        return int(text)
    except ValueError:
        return _Unreadable(text, too_long=True)


def _magnitude(raw: object) -> Magnitude | None:
    """The exact value of a number given in JSON or through the API, or None if not a number."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return int(raw)
    if isinstance(raw, Fraction | Rational):
        return _norm(raw)
    if isinstance(raw, float):
        # repr() is the shortest text that round-trips, i.e. the decimal the user wrote.
        return _norm(mpq(repr(raw))) if math.isfinite(raw) else None
    if isinstance(raw, Decimal):
        if not raw.is_finite() or abs(raw.adjusted()) > _MAX_DECIMAL_EXPONENT:
            return None
        return _norm(Fraction(raw))
    return None


# Messages show magnitudes at or beyond this in scientific notation (1e300, not 301 digits).
_SCIENTIFIC_FROM: Final = 10**21
# Beyond this many bits a number is described, not printed (str() of a huge int is slow).
_SHOW_BITS: Final = 10_000
# Significant digits shown of a value that has no short exact form.
_APPROX_DIGITS: Final = 6


def _fmt(x: Magnitude) -> str:
    """A magnitude as people write it, computed exactly (no floats).

    A terminating decimal of moderate size is shown exactly (``1.05``, ``-3``); a very large
    or very small one in scientific notation, exact when it has few significant digits
    (``1e300``, ``2.5e-31``); anything else rounded, marked ``≈`` (``≈0.333333``).
    """
    num, den = int(x.numerator), int(x.denominator)
    if den == 1 and abs(num) < _SCIENTIFIC_FROM:
        return str(num)
    if max(num.bit_length(), den.bit_length()) > _SHOW_BITS:
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


def show_value(raw: object) -> str:
    """A short rendering of a value for a message, in JSON terms (``'text'``, ``null``,
    ``an object``, a number as people write it)."""
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str):
        return f"'{_clip(raw)}'"
    if isinstance(raw, _Unreadable):
        return _clip(raw.text)
    if isinstance(raw, TooDeep):
        return f"a value nested deeper than {MAX_DEPTH} levels"
    if _is_mapping(raw):
        return "an object"
    if isinstance(raw, list | tuple):
        return "a list"
    number = _magnitude(raw)
    if number is not None:
        return _fmt(number)
    if isinstance(raw, float | Decimal):
        return _clip(str(raw))
    return f"a {type(raw).__name__}"


def _clip(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _is_mapping(x: object) -> TypeGuard[Mapping[Any, Any]]:
    # The ABC check is slow; records are almost always plain dicts.
    return type(x) is dict or isinstance(x, Mapping)


def _key_text(key: object) -> str:
    """A key of a record object as shown in a field path; API records may use any hashable
    key, and str() of some (an int of over 4,300 digits) raises."""
    return _clip(key) if isinstance(key, str) else show_value(key)


def _unknown(parent: str, key: object, known: Iterable[str], what: str = "field") -> _Problem:
    """The problem of an unknown `key` in the object at field path `parent` ("": the record)."""
    name = _key_text(key)
    path = f"{parent}.{name}" if parent else name
    if not isinstance(key, str):
        return (path, "unknown-field", f"{what} names must be strings, got {name}")
    return (path, "unknown-field", f"unknown {what} '{name}'{did_you_mean(key, known)}")


# --- field parsers -----------------------------------------------------------------------------


class FieldError(Exception):
    """A value parser's complaint about one field (`message`, and `code` such as
    ``out-of-range``); the caller knows the field's path and makes it a `Diagnostic`."""

    def __init__(self, message: str, code: str = "bad-value") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


_Problem: TypeAlias = tuple[str, str, str]  # (field path, code, message)
_Scalar: TypeAlias = Callable[[object], object]


def _number(raw: object, expected: str) -> Magnitude:
    """`raw` as an exact number, or the `FieldError` saying it is none: not a number (naming
    `expected`), or a number too long to hold."""
    x = _magnitude(raw)
    if x is not None:
        return x
    # A finite Decimal has no magnitude only when its exponent is out of bounds.
    if (isinstance(raw, _Unreadable) and raw.too_long) or (
        isinstance(raw, Decimal) and raw.is_finite()
    ):
        raise _too_long(show_value(raw))
    raise FieldError(f"expected {expected}, got {show_value(raw)}")


def record_number(raw: object, expected: str = "a number") -> Magnitude:
    """`raw`, a value of a JSON record or of an API call, as an exact record number.

    Every number a record gives goes through this rule, in any reader: JSON decimals are
    exact, NaN and Infinity are not numbers, and a number is refused (`FieldError`, code
    ``out-of-range``) with more than `_MAX_DIGITS` digits. Anything else that is not a
    number is a `FieldError` naming what was `expected`.
    """
    return _held(_number(raw, expected))


def _held(x: Magnitude) -> Magnitude:
    """`x`, if it is short enough to be a record number (`_MAX_DIGITS`)."""
    if type(x) is int:
        if -_DIGITS_BOUND < x < _DIGITS_BOUND:
            return x
    elif abs(x.numerator) < _DIGITS_BOUND and x.denominator < _DIGITS_BOUND:
        return x
    bits = max(int(x.numerator).bit_length(), int(x.denominator).bit_length())
    # log10(2) digits per bit; _fmt describes such a number only by its bits.
    raise _too_long(
        _fmt(x) if bits <= _SHOW_BITS else f"a number of about {bits * 30103 // 100000} digits"
    )


def _too_long(shown: str) -> FieldError:
    return FieldError(
        f"{shown} is too long: a record number has at most {_MAX_DIGITS} digits before and "
        "after the decimal point",
        "out-of-range",
    )


def _parse_date(raw: object) -> dt.date:
    """A date field: ``YYYY-MM-DD``, or an ISO date-time whose calendar date is kept as
    written (no time-zone conversion), within `_MIN_DATE` … `_MAX_DATE`."""
    date: dt.date | None = None
    if isinstance(raw, dt.datetime):
        date = raw.date()
    elif isinstance(raw, dt.date):
        date = raw
    elif isinstance(raw, str) and len(raw) <= _DATE_TEXT_MAX:
        date = _date_text(raw)
    if date is None:
        raise FieldError(f"expected a date YYYY-MM-DD, got {show_value(raw)}")
    if not _MIN_DATE <= date <= _MAX_DATE:
        raise FieldError(
            f"date {date.isoformat()} is outside the supported range {_MIN_DATE} … {_MAX_DATE}",
            "out-of-range",
        )
    return date


# A batch repeats the same few hundred dates thousands of times: parse each text once. The
# cache keeps its keys, so longer text (no date, at most nanoseconds and an offset) stays out.
_DATE_TEXT_MAX: Final = 64


@lru_cache(maxsize=1 << 16)
def _date_text(text: str) -> dt.date | None:
    match = _DATE_RE.fullmatch(text)
    if match is None:
        return None
    h, m, s, oh, om = match.group("h", "m", "s", "oh", "om")
    if h is not None and (int(h) > 23 or int(m) > 59 or (s is not None and int(s) > 60)):
        return None  # second 60 is a leap second, as FHIR allows
    if oh is not None and (int(oh) > 23 or int(om) > 59):
        return None
    try:
        return dt.date.fromisoformat(match["date"])
    except ValueError:
        return None


def _parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    raise FieldError(f"expected true or false, got {show_value(raw)}")


def _parse_text(raw: object) -> str:
    if isinstance(raw, str):
        return raw
    raise FieldError(f"expected text, got {show_value(raw)}")


def _decimal(text: str | None, item: DataItem, what: str) -> Magnitude | None:
    if text is None:
        return None
    try:
        # Integral bounds stay int: comparing ints is much cheaper than comparing Fractions.
        return _norm(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise LoadError.at(
            "dictionary", f"{item.name}: {what} {text!r} is not a decimal number", item.span
        ) from None


class _Bounds:
    """The plausible range of a numeric item, compared in the item's unit."""

    __slots__ = ("high", "low", "unit")

    def __init__(self, item: DataItem) -> None:
        self.low = _decimal(item.minimum, item, "minimum")
        self.high = _decimal(item.maximum, item, "maximum")
        self.unit = f" {item.unit}" if item.type == "quantity" and item.unit else ""

    def check(self, x: Magnitude) -> Magnitude:
        low, high = self.low, self.high
        if (low is None or x >= low) and (high is None or x <= high):
            return x
        u = self.unit
        if low is not None and high is not None:
            message = f"{_fmt(x)}{u} is outside the plausible range {_fmt(low)} to {_fmt(high)}{u}"
        elif low is not None:
            message = f"{_fmt(x)}{u} is below the plausible minimum {_fmt(low)}{u}"
        else:
            assert high is not None
            message = f"{_fmt(x)}{u} is above the plausible maximum {_fmt(high)}{u}"
        raise FieldError(message, "out-of-range")


# Longer than any unit a record needs ('mg/dL', 'umol/L', '10*9/L', '[lb_av]').
_UNIT_TEXT_MAX: Final = 100


class _Converter:
    """Exact conversion of quantities into one item's unit, cached per unit text.

    A cohort's records use a handful of unit spellings, so after the first record every
    conversion is a dictionary look-up. Failures are cached as (code, message) rather than
    exceptions: re-raising one exception object would grow its traceback on every record.
    """

    _CACHE_LIMIT: Final = 256

    def __init__(self, item: DataItem, unit: Unit) -> None:
        self.unit = unit
        self.molar_mass = _molar_mass(item)
        self._cache: dict[str, Magnitude | tuple[str, str]] = {}

    def factor(self, text: object) -> Magnitude:
        if not isinstance(text, str):
            raise FieldError(f"expected a unit such as '{self.unit.text}', got {show_value(text)}")
        if len(text) > _UNIT_TEXT_MAX:
            # Neither parsed (seconds for 100,000 characters) nor cached (the key is kept).
            message = (
                f"unknown unit {show_value(text)}: {len(text)} characters is too long for a unit"
            )
            raise FieldError(message, "unknown-unit")
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
            if exc.message.startswith(f"unknown unit {text!r}"):
                return ("unknown-unit", exc.message)
            return ("unknown-unit", f"unknown unit {text!r}: {exc.message}")
        try:
            # Held as a GMP rational: every value in this unit is multiplied by it.
            return _norm(conversion_factor(src, self.unit, self.molar_mass))
        except UnitError as exc:
            return ("unit-mismatch", exc.message)


def _molar_mass(item: DataItem) -> Fraction | None:
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


class _Numeric:
    """Reads numbers of an integer, number or quantity item (plain or {value, unit})."""

    __slots__ = ("bounds", "converter", "integer", "unit_text")

    def __init__(self, item: DataItem) -> None:
        self.integer = item.type == "integer"
        self.bounds = _Bounds(item)
        self.converter = _Converter(item, _item_unit(item)) if item.type == "quantity" else None
        self.unit_text = item.unit or ""

    def expected(self) -> str:
        if self.integer:
            return "an integer"
        if self.converter is None:
            return "a number"
        return f"a number in {self.unit_text} or {{value, unit}}"

    def number(self, raw: object, factor: Magnitude | None = None) -> Magnitude:
        """`raw` as an exact number in the item's unit, given in a unit `factor` away."""
        x = _number(raw, self.expected())
        if factor is not None and factor != 1:
            x = _norm(x * factor)
        if self.integer and not isinstance(x, int):
            raise FieldError(f"expected an integer, got {show_value(raw)}")
        # The plausible range first: its message is the more useful one.
        return _held(self.bounds.check(x))

    def fact(self, raw: object, path: str, problems: list[_Problem]) -> object:
        """A fact's value: a number in the item's unit, or (quantities) {value, unit}."""
        if self.converter is None or not _is_mapping(raw):
            try:
                return self.number(raw)
            except FieldError as bad:
                problems.append((path, bad.code, bad.message))
                return _INVALID
        ok = True
        for key in raw:
            if key not in _QTY_KEYS:
                problems.append(_unknown(path, key, _QTY_KEYS))
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
        if value is None:
            problems.append((f"{path}.value", "bad-value", "missing value"))
            return _INVALID
        if not ok:
            # Still check the number's shape, but not its range in an unknown unit.
            if _magnitude(value) is None:
                problems.append(
                    (f"{path}.value", "bad-value", f"expected a number, got {show_value(value)}")
                )
            return _INVALID
        try:
            return self.number(value, factor)
        except FieldError as bad:
            problems.append((f"{path}.value", bad.code, bad.message))
            return _INVALID


_QTY_KEYS: Final = ("value", "unit")
_OBS_KEYS: Final = ("value", "unit", "date", "reference_range")
_RANGE_KEYS: Final = ("low", "high")
_EVENT_KEYS: Final = ("date", "end")
_NUMERIC_TYPES: Final = frozenset({"integer", "number", "quantity"})


class _Invalid:
    """Marks a field that produced problems: it is reported, not stored."""


_INVALID: Final = _Invalid()


def _scalar(item: DataItem) -> _Scalar:
    """The parser of a single non-numeric value of `item`."""
    if item.type == "boolean":
        return _parse_bool
    if item.type == "date":
        return _parse_date
    if item.type == "code" and item.values:
        allowed = frozenset(item.values)
        listing = ", ".join(item.values)

        def code(raw: object) -> str:
            if isinstance(raw, str) and raw in allowed:
                return raw
            if isinstance(raw, str):
                raise FieldError(f"{show_value(raw)} is not one of {listing}")
            raise FieldError(f"expected one of {listing}, got {show_value(raw)}")

        return code
    return _parse_text


_FieldParser: TypeAlias = Callable[[object, str, list[_Problem]], object]


def _fact_parser(item: DataItem) -> _FieldParser:
    if item.type in _NUMERIC_TYPES:
        return _Numeric(item).fact
    scalar = _scalar(item)

    def parse(raw: object, path: str, problems: list[_Problem]) -> object:
        try:
            return scalar(raw)
        except FieldError as bad:
            problems.append((path, bad.code, bad.message))
            return _INVALID

    return parse


def _by_date(o: Observation | Occurrence) -> tuple[bool, dt.date]:
    """Sort key: dated first in date order, then undated; ties keep the record's order."""
    return (o.date is None, o.date or dt.date.min)


def _not_a_list(raw: object, path: str, what: str, problems: list[_Problem]) -> _Invalid:
    message = f"expected a list of {what} ([] for none), got {show_value(raw)}"
    problems.append((path, "bad-value", message))
    return _INVALID


def _optional_date(
    el: Mapping[Any, Any], key: str, path: str, problems: list[_Problem]
) -> dt.date | _Invalid | None:
    raw = el.get(key)
    if raw is None:
        return None
    try:
        return _parse_date(raw)
    except FieldError as bad:
        problems.append((f"{path}.{key}", bad.code, bad.message))
        return _INVALID


class _ObservationParser:
    """Reads an observation item: a list of {value, date, unit?, reference_range?}."""

    def __init__(self, item: DataItem) -> None:
        self.name = item.name
        self.numeric = _Numeric(item) if item.type in _NUMERIC_TYPES else None
        self.scalar = None if self.numeric is not None else _scalar(item)

    def __call__(self, raw: object, path: str, problems: list[_Problem]) -> object:
        if not isinstance(raw, list | tuple):
            return _not_a_list(raw, path, "observations {value, date}", problems)
        before = len(problems)
        out: list[Observation] = []
        for i, el in enumerate(raw):
            obs = self.element(el, f"{path}[{i}]", problems)
            if obs is not None:
                out.append(obs)
        if len(problems) > before:
            return _INVALID
        out.sort(key=_by_date)
        return tuple(out)

    def element(self, el: object, path: str, problems: list[_Problem]) -> Observation | None:
        if not _is_mapping(el):
            problems.append(
                (
                    path,
                    "bad-value",
                    f"expected an observation {{value, date}}, got {show_value(el)}",
                )
            )
            return None
        before = len(problems)
        for key in el:
            if key not in _OBS_KEYS:
                problems.append(_unknown(path, key, _OBS_KEYS))
        date = _optional_date(el, "date", path, problems)
        factor = self.factor(el.get("unit"), path, problems)
        value: object = _INVALID
        raw_value = el.get("value")
        if raw_value is None:
            problems.append((f"{path}.value", "bad-value", "missing value"))
        elif not isinstance(factor, _Invalid):
            value = self.value(raw_value, factor, f"{path}.value", problems)
        low = high = None
        reference = el.get("reference_range")
        if reference is not None and not isinstance(factor, _Invalid):
            low, high = self.reference(reference, factor, f"{path}.reference_range", problems)
        if len(problems) > before or isinstance(date, _Invalid):
            return None
        return Observation(value, date, low, high)

    def factor(
        self, unit: object, path: str, problems: list[_Problem]
    ) -> Magnitude | _Invalid | None:
        if unit is None:
            return None
        converter = self.numeric.converter if self.numeric is not None else None
        if converter is None:
            problems.append((f"{path}.unit", "bad-value", f"'{self.name}' has no unit"))
            return _INVALID
        try:
            return converter.factor(unit)
        except FieldError as bad:
            problems.append((f"{path}.unit", bad.code, bad.message))
            return _INVALID

    def value(
        self, raw: object, factor: Magnitude | None, path: str, problems: list[_Problem]
    ) -> object:
        try:
            if self.numeric is not None:
                return self.numeric.number(raw, factor)
            assert self.scalar is not None
            return self.scalar(raw)
        except FieldError as bad:
            problems.append((path, bad.code, bad.message))
            return _INVALID

    def reference(
        self, raw: object, factor: Magnitude | None, path: str, problems: list[_Problem]
    ) -> tuple[Magnitude | None, Magnitude | None]:
        if self.numeric is None:
            problems.append(
                (path, "bad-value", f"'{self.name}' is not numeric: it has no reference range")
            )
            return None, None
        if not _is_mapping(raw):
            problems.append((path, "bad-value", f"expected {{low, high}}, got {show_value(raw)}"))
            return None, None
        bounds: list[Magnitude | None] = []
        for key in raw:
            if key not in _RANGE_KEYS:
                problems.append(_unknown(path, key, _RANGE_KEYS))
        for key in _RANGE_KEYS:
            limit = raw.get(key)
            x = None
            if limit is not None:
                try:
                    x = _number(limit, "a number")
                    if factor is not None and factor != 1:
                        x = _norm(x * factor)
                    x = _held(x)
                except FieldError as bad:
                    problems.append((f"{path}.{key}", bad.code, bad.message))
                    x = None
            bounds.append(x)
        low, high = bounds
        if low is not None and high is not None and low > high:
            problems.append((path, "bad-value", f"low {_fmt(low)} is above high {_fmt(high)}"))
        return low, high


def _event_parser(raw: object, path: str, problems: list[_Problem]) -> object:
    """Reads an event item: a list of {date, end?} (or bare date strings)."""
    if not isinstance(raw, list | tuple):
        return _not_a_list(raw, path, "occurrences {date, end}", problems)
    before = len(problems)
    out: list[Occurrence] = []
    for i, el in enumerate(raw):
        p = f"{path}[{i}]"
        if isinstance(el, str):
            try:
                out.append(Occurrence(_parse_date(el)))
            except FieldError as bad:
                problems.append((p, bad.code, bad.message))
            continue
        if not _is_mapping(el):
            problems.append(
                (p, "bad-value", f"expected an occurrence {{date, end}}, got {show_value(el)}")
            )
            continue
        for key in el:
            if key not in _EVENT_KEYS:
                problems.append(_unknown(p, key, _EVENT_KEYS))
        date = _optional_date(el, "date", p, problems)
        end = _optional_date(el, "end", p, problems)
        if isinstance(end, dt.date):
            if date is None:
                problems.append(
                    (f"{p}.end", "bad-value", "an undated occurrence cannot have an end")
                )
            elif isinstance(date, dt.date) and end < date:
                problems.append((f"{p}.end", "bad-value", f"end {end} is before date {date}"))
        if not isinstance(date, _Invalid) and not isinstance(end, _Invalid):
            out.append(Occurrence(date, end))
    if len(problems) > before:
        return _INVALID
    out.sort(key=_by_date)
    return tuple(out)


# --- the reader --------------------------------------------------------------------------------

_RESERVED: Final = ("id", "attestations")
_VALUES, _SERIES, _EVENTS = range(3)


class RecordReader:
    """Validates patient records against a data dictionary and normalises them to `Record`s.

    All per-item work that does not depend on a record (unit parsing, molar masses, plausible
    ranges, code sets) is done once here, so reading 100k records costs one dictionary
    look-up and one small parser call per field. `items` and `attestations` are the
    dictionary the reader was built for.
    """

    def __init__(self, items: Sequence[DataItem], attestations: Sequence[str]) -> None:
        self.items: dict[str, DataItem] = {}
        self.attestations: tuple[str, ...] = tuple(dict.fromkeys(attestations))
        self._fields: dict[str, tuple[int, _FieldParser]] = {}
        for item in items:
            if item.name in _RESERVED:
                raise LoadError.at(
                    "dictionary",
                    f"'{item.name}' is reserved in patient records and cannot name a data item",
                    item.span,
                )
            self.items[item.name] = item
            if item.kind == "observation":
                self._fields[item.name] = (_SERIES, _ObservationParser(item))
            elif item.kind == "event":
                self._fields[item.name] = (_EVENTS, _event_parser)
            else:
                self._fields[item.name] = (_VALUES, _fact_parser(item))
        self._top_keys: tuple[str, ...] = (*_RESERVED, *self.items)
        self._attest_set = frozenset(self.attestations)

    def parse(self, obj: object, where: str | None = None) -> Record:
        """Validate one record (a JSON object as parsed, or the same built in Python).

        Numbers may be `int`, `Fraction`, `Decimal` or `float` (read through its shortest
        repr, so 1.05 is exactly 21/20). Raises `RecordError` with one diagnostic per bad
        field; `where` names the record in diagnostics when it has no usable id.
        """
        if not _is_mapping(obj):
            raise RecordError(
                [
                    Diagnostic(
                        "bad-record",
                        f"expected a record object, got {show_value(obj)}",
                        record_id=where,
                    )
                ]
            )
        problems: list[_Problem] = []
        rid = self._id(obj.get("id"), problems)
        values: dict[str, object] = {}
        series: dict[str, tuple[Observation, ...]] = {}
        events: dict[str, tuple[Occurrence, ...]] = {}
        buckets: tuple[dict[str, Any], ...] = (values, series, events)
        attestations: dict[str, bool] = {}
        fields = self._fields
        for key, raw in obj.items():
            entry = fields.get(key)
            if entry is None:
                if key == "attestations":
                    if raw is not None:
                        self._attestations(raw, attestations, problems)
                elif key != "id":
                    problems.append(_unknown("", key, self._top_keys))
                continue
            if raw is None:
                continue
            bucket, parse = entry
            value = parse(raw, key, problems)
            if value is not _INVALID:
                buckets[bucket][key] = value
        if problems:
            shown = rid if rid is not None else where
            raise RecordError(
                Diagnostic(code, message, record_id=shown, field=field)
                for field, code, message in problems
            )
        assert rid is not None
        return Record(rid, values, series, events, attestations)

    def _id(self, raw: object, problems: list[_Problem]) -> str | None:
        if isinstance(raw, str) and raw.strip():
            return raw
        if isinstance(raw, int) and not isinstance(raw, bool) and raw.bit_length() < 64:
            return str(raw)
        if raw is None:
            problems.append(("id", "missing-id", "missing required field 'id'"))
        else:
            problems.append(
                (
                    "id",
                    "bad-value",
                    f"expected a non-empty string or integer id, got {show_value(raw)}",
                )
            )
        return None

    def _attestations(self, raw: object, out: dict[str, bool], problems: list[_Problem]) -> None:
        if not _is_mapping(raw):
            problems.append(
                (
                    "attestations",
                    "bad-value",
                    f"expected an object of name: true/false, got {show_value(raw)}",
                )
            )
            return
        for name, value in raw.items():
            if not isinstance(name, str) or name not in self._attest_set:
                problems.append(_unknown("attestations", name, self.attestations, "attestation"))
                continue
            path = f"attestations.{name}"
            if isinstance(value, bool):
                out[name] = value
            elif value is not None:
                problems.append(
                    (path, "bad-value", f"expected true or false, got {show_value(value)}")
                )

    def schema(self) -> dict[str, Any]:
        """A JSON Schema (draft 2020-12) of a valid record for this data dictionary.

        It checks shapes, types, code sets, date syntax and the supported years; unit
        convertibility and calendar validity of dates are left to `parse`.
        """
        properties: dict[str, Any] = {
            "id": {
                "description": "Patient identifier (required).",
                "anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}],
            }
        }
        for item in self.items.values():
            properties[item.name] = _item_schema(item)
        properties["attestations"] = {
            "description": "Attestations: name -> true/false; absent or null is unknown.",
            "type": ["object", "null"],
            "properties": {name: {"type": ["boolean", "null"]} for name in self.attestations},
            "additionalProperties": False,
        }
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "protocode patient record",
            "type": "object",
            "required": ["id"],
            "properties": properties,
            "additionalProperties": False,
        }


# --- JSON Schema --------------------------------------------------------------------------------

_DATE_SCHEMA: Final[dict[str, Any]] = {
    "type": "string",
    "description": "YYYY-MM-DD (years 1800-2200), optionally with an ISO time and UTC offset",
    # The shape of _DATE_RE, with the supported years.
    "pattern": (
        r"^(?:1[89][0-9]{2}|2[01][0-9]{2}|2200)-[0-9]{2}-[0-9]{2}"
        r"(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?$"
    ),
}


def _schema_number(text: str | None) -> int | float | None:
    if text is None:
        return None
    x = _norm(Fraction(text))
    # JSON Schema bounds are JSON numbers; the exact check is parse()'s.
    return x if isinstance(x, int) else float(x)


def _value_schema(item: DataItem) -> dict[str, Any]:
    """The schema of one value of `item` as a plain JSON value (numbers in the item's unit)."""
    if item.type == "boolean":
        return {"type": "boolean"}
    if item.type == "date":
        return dict(_DATE_SCHEMA)
    if item.type == "code" and item.values:
        return {"enum": list(item.values)}
    if item.type in ("code", "text"):
        return {"type": "string"}
    out: dict[str, Any] = {"type": "integer" if item.type == "integer" else "number"}
    low, high = _schema_number(item.minimum), _schema_number(item.maximum)
    if low is not None:
        out["minimum"] = low
    if high is not None:
        out["maximum"] = high
    return out


def _describe_item(item: DataItem) -> str:
    kind = {
        "anchor": "anchor date",
        "fact": "fact",
        "observation": "observation (list of dated values; [] = known none)",
        "event": "event (list of occurrences; [] = known none)",
    }[item.kind]
    detail = f"{item.type} {kind}"
    if item.type == "quantity" and item.unit:
        detail += f" in {item.unit} (other units converted exactly"
        if item.molar_mass is not None:
            detail += f"; molar mass {item.molar_mass.value} {item.molar_mass.unit}"
        detail += ")"
    if item.minimum is not None or item.maximum is not None:
        detail += f", plausible range {item.minimum or '-∞'} to {item.maximum or '∞'}"
    return f"{item.description.strip() or item.name} — {detail}. Absent or null is missing."


def _item_schema(item: DataItem) -> dict[str, Any]:
    description = _describe_item(item)
    value = _value_schema(item)
    if item.kind == "event":
        occurrence = {
            "type": "object",
            "properties": {
                "date": {"anyOf": [_DATE_SCHEMA, {"type": "null"}]},
                "end": _DATE_SCHEMA,
            },
            "additionalProperties": False,
        }
        return {
            "description": description,
            "type": ["array", "null"],
            "items": {"anyOf": [occurrence, _DATE_SCHEMA]},
        }
    if item.kind == "observation":
        props: dict[str, Any] = {
            "value": value,
            "date": {"anyOf": [_DATE_SCHEMA, {"type": "null"}]},
        }
        if item.type in _NUMERIC_TYPES:
            # A value in another unit cannot be range-checked by a schema.
            props["value"] = {"type": value["type"]}
            props["reference_range"] = {
                "type": "object",
                "properties": {
                    "low": {"type": ["number", "null"]},
                    "high": {"type": ["number", "null"]},
                },
                "additionalProperties": False,
            }
        if item.type == "quantity":
            props["unit"] = {"type": "string", "description": f"UCUM unit; default {item.unit}"}
        return {
            "description": description,
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "required": ["value"],
                "properties": props,
                "additionalProperties": False,
            },
        }
    if item.type == "quantity":
        with_unit = {
            "type": "object",
            "required": ["value"],
            "properties": {"value": {"type": "number"}, "unit": {"type": "string"}},
            "additionalProperties": False,
        }
        return {"description": description, "anyOf": [value, with_unit, {"type": "null"}]}
    return {"description": description, "anyOf": [value, {"type": "null"}]}


# --- files ----------------------------------------------------------------------------------


class _Duplicated(dict[str, Any]):
    """A JSON object that repeats keys: holds the last value of each, and which were repeated."""

    __slots__ = ("duplicates",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        seen: set[str] = set()
        repeated: dict[str, None] = {}
        for key, _ in pairs:
            if key in seen:
                repeated[key] = None
            seen.add(key)
        self.duplicates: tuple[str, ...] = tuple(repeated)


def _json_loads(text: str) -> tuple[Any, bool]:
    """Parse JSON with every number exact: decimals as Fraction, NaN/Infinity unreadable.

    Also says whether the text needs a second look (`_structure_problems`): an object
    repeated a key (such objects are `_Duplicated`), or a value nested deeper than
    `MAX_DEPTH` was not read (it is a `TooDeep`).
    """
    duplicated = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicated
        obj = dict(items)
        if len(obj) == len(items):
            return obj
        duplicated = True
        return _Duplicated(items)

    hooks: dict[str, Any] = {
        "parse_float": _exact_decimal,
        "parse_constant": _Unreadable,
        "object_pairs_hook": pairs,
    }
    try:
        doc, pruned = json_loads(text, **hooks)
    except json.JSONDecodeError:
        raise
    except ValueError:
        # An integer longer than int() converts. Read again with such integers unreadable,
        # an error of their record only (a hook on every integer would slow every file).
        doc, pruned = json_loads(text, parse_int=_exact_int, **hooks)
    return doc, duplicated or pruned


def _structure_problems(obj: object) -> list[_Problem]:
    """Every repeated key and every value nested too deep to read in a record as parsed."""
    out: list[_Problem] = []
    # Iterative: a record may nest as deep as `MAX_DEPTH`.
    stack: list[tuple[str, object]] = [("", obj)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            prefix = f"{path}." if path else ""
            if isinstance(value, _Duplicated):
                out.extend(
                    (prefix + key, "duplicate-field", f"duplicate field '{key}'")
                    for key in value.duplicates
                )
            stack.extend((prefix + key, v) for key, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
        elif isinstance(value, TooDeep):
            message = f"nested deeper than {MAX_DEPTH} levels: not read"
            out.append((short_path(path), "too-deep", message))
    return out


def _parse_json_record(
    reader: RecordReader, obj: object, where: str, suspect: bool
) -> Record | RecordError:
    """`reader.parse` of a record read from JSON text; `suspect` says that the text repeated
    a key or nested too deep somewhere (`_json_loads`), an error of the record it is in."""
    try:
        record = reader.parse(obj, where=where)
    except RecordError as exc:
        if not suspect:
            return exc
        found: Record | RecordError = exc
        diagnostics = list(exc.diagnostics)
        shown = diagnostics[0].record_id
    else:
        if not suspect:
            return record
        found, diagnostics, shown = record, [], record.id
    problems = _structure_problems(obj)
    if not problems:
        return found
    diagnostics.extend(
        Diagnostic(code, message, record_id=shown, field=path or None)
        for path, code, message in problems
    )
    return RecordError(diagnostics)


def iter_records(objs: Iterable[object], reader: RecordReader) -> Iterator[Record | RecordError]:
    """Validate records given as objects; a bad one yields its `RecordError` and reading goes on.

    Records without a usable id are named ``#N`` (1-based position) in diagnostics. Items
    that already are a `Record` or a `RecordError` pass through unchanged, so results of an
    earlier read can be mixed with raw objects.
    """
    for n, obj in enumerate(objs, 1):
        if isinstance(obj, Record | RecordError):
            yield obj
            continue
        try:
            yield reader.parse(obj, where=f"#{n}")
        except RecordError as exc:
            yield exc


def read_records(path: Path, reader: RecordReader) -> Iterator[Record | RecordError]:
    """Read and validate the records of a ``.json``, ``.jsonl``/``.ndjson`` or ``.csv`` file.

    A bad record (or a malformed JSONL line or CSV row) yields a `RecordError` and reading
    continues, so every line of the file gets a result. A file that cannot be read at all
    (missing, not UTF-8, not JSON, unknown suffix, unknown CSV columns) raises one
    `RecordError` when iteration starts.
    """
    suffix = path.suffix.lower()
    if suffix == ".json":
        yield from _read_json(path, reader)
    elif suffix in (".jsonl", ".ndjson"):
        yield from _read_jsonl(path, reader)
    elif suffix == ".csv":
        yield from _read_csv(path, reader)
    else:
        raise _file_error(
            path,
            "unknown-format",
            f"unknown record file type '{suffix}' (use .json, .jsonl or .csv)",
        )


def _file_error(path: Path, code: str, message: str) -> RecordError:
    """An error of a file with no text to point at (it could not be read, or its suffix is
    unknown): the message names the file instead."""
    return RecordError([Diagnostic(code, f"{path}: {message}")])


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _file_error(
            path, "unreadable", f"cannot read records: {exc.strerror or exc}"
        ) from None


def _read_json(path: Path, reader: RecordReader) -> Iterator[Record | RecordError]:
    text = decode(str(path), _read_bytes(path))
    try:
        doc, duplicated = _json_loads(text)
    except json.JSONDecodeError as exc:
        raise syntax_error(str(path), text, exc) from None
    except ValueError as exc:
        raise file_error(
            str(path), text, "malformed", f"not valid JSON: {exc}", document_start(text)
        ) from None
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        message = "expected a record object or an array of records"
        raise file_error(str(path), text, "malformed", message, document_start(text))
    for n, obj in enumerate(doc, 1):
        yield _parse_json_record(reader, obj, f"#{n}", duplicated)


def _read_jsonl(path: Path, reader: RecordReader) -> Iterator[Record | RecordError]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise _file_error(
            path, "unreadable", f"cannot read records: {exc.strerror or exc}"
        ) from None
    with handle:
        yield from read_jsonl_lines(handle, reader)


def read_jsonl_lines(
    lines: Iterable[bytes], reader: RecordReader
) -> Iterator[Record | RecordError]:
    """Records from JSONL lines (a file or a pipe), one result per non-blank line.

    A bad line yields a `RecordError` named ``line N`` and reading goes on.
    """
    for n, raw_line in enumerate(lines, 1):
        where = f"line {n}"
        try:
            line = raw_line.decode("utf-8-sig" if n == 1 else "utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            yield _line_error(where, f"not UTF-8 text ({bad_byte(exc)})")
            continue
        if not line.strip():
            continue
        try:
            obj, duplicated = _json_loads(line)
        except json.JSONDecodeError as exc:
            yield _line_error(where, line_syntax(exc))
            continue
        except ValueError as exc:
            yield _line_error(where, f"not valid JSON: {exc}")
            continue
        yield _parse_json_record(reader, obj, where, duplicated)


def _line_error(where: str, message: str) -> RecordError:
    return RecordError([Diagnostic("malformed", message, record_id=where)])


# --- CSV ----------------------------------------------------------------------------------------

_TRUE: Final = frozenset({"true", "yes", "1"})
_FALSE: Final = frozenset({"false", "no", "0"})
_COMPANION_SUFFIXES: Final = ("_date", "_unit", "_low", "_high")
_ATTEST_PREFIX: Final = "attest_"


def _cell(text: str, item_type: str) -> object:
    """A CSV cell as the JSON value it stands for; text that does not fit is passed on as is,
    so the record parser reports it with the usual message."""
    if item_type == "boolean":
        folded = text.lower()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
    elif item_type in _NUMERIC_TYPES and _DECIMAL_RE.fullmatch(text):
        return _exact_decimal(text)
    return text


@dataclass(slots=True)
class _ObsColumns:
    value: int
    date: int | None = None
    unit: int | None = None
    low: int | None = None
    high: int | None = None


class _CsvLayout:
    """What each column of a CSV header means; unknown columns are a file-level error."""

    def __init__(self, header: list[str], reader: RecordReader, path: Path, text: str = "") -> None:
        self.width = len(header)
        self.reader = reader
        names = [h.strip() for h in header]
        items = reader.items
        problems: list[tuple[int, str]] = []  # (column, message), reported in column order
        seen: set[str] = set()
        self.id_col: int | None = None
        self.facts: list[tuple[DataItem, int]] = []
        self.fact_units: dict[str, int] = {}
        self.obs: dict[str, _ObsColumns] = {}
        self.events: list[tuple[str, int]] = []
        self.attest: list[tuple[str, int]] = []
        companions: list[tuple[str, str, int]] = []
        for col, name in enumerate(names):
            if name in seen:
                problems.append((col, f"duplicate column '{name}'"))
                continue
            seen.add(name)
            item = items.get(name)
            if name == "id":
                self.id_col = col
            elif item is not None and item.kind == "observation":
                self.obs[name] = _ObsColumns(col)
            elif item is not None and item.kind == "event":
                self.events.append((name, col))
            elif item is not None:
                self.facts.append((item, col))
            elif (
                name.startswith(_ATTEST_PREFIX)
                and name[len(_ATTEST_PREFIX) :] in reader.attestations
            ):
                self.attest.append((name[len(_ATTEST_PREFIX) :], col))
            else:
                base, suffix = _split_companion(name)
                if base in items:
                    companions.append((base, suffix, col))
                else:
                    problems.append((col, self._unknown(name)))
        fact_names = {item.name for item, _ in self.facts}
        for base, suffix, col in companions:
            item = items[base]
            if item.kind == "observation":
                owner = base in self.obs
            elif item.kind != "event" and item.type == "quantity" and suffix == "_unit":
                owner = base in fact_names
            else:
                problems.append(
                    (
                        col,
                        f"unknown column '{base}{suffix}': '{base}' is a {item.type} "
                        f"{item.kind}, which has no {suffix} column",
                    )
                )
                continue
            if not owner:
                problems.append((col, f"column '{base}{suffix}' needs a column '{base}'"))
            elif item.kind == "observation":
                setattr(self.obs[base], suffix[1:], col)
            else:
                self.fact_units[base] = col
        if self.id_col is None:
            problems.append((-1, "missing column 'id'"))
        if problems:
            # Each problem points at its column in the header line (`text`).
            source = Source(str(path), text)
            spans = _cell_spans(text)
            first_line = len(text.partition("\n")[0])
            raise RecordError(
                Diagnostic(
                    "csv-header",
                    p,
                    source.span(*spans[col])
                    if 0 <= col < len(spans)
                    else source.span(0, first_line),
                )
                for col, p in sorted(problems)
            )

    def _unknown(self, name: str) -> str:
        known = ["id", *self.reader.items, *(_ATTEST_PREFIX + a for a in self.reader.attestations)]
        return f"unknown column '{name}'{did_you_mean(name, known)}"

    def record(self, row: list[str]) -> dict[str, object]:
        """The JSON-ish record object a data row stands for."""
        cells = [c.strip() for c in row]
        assert self.id_col is not None
        obj: dict[str, object] = {"id": cells[self.id_col] or None}
        for item, col in self.facts:
            text = cells[col]
            if not text:
                continue
            value = _cell(text, item.type)
            unit_col = self.fact_units.get(item.name)
            if unit_col is not None and cells[unit_col]:
                value = {"value": value, "unit": cells[unit_col]}
            obj[item.name] = value
        for name, cols in self.obs.items():
            text = cells[cols.value]
            if not text:
                continue
            item_type = self.reader.items[name].type
            el: dict[str, object] = {"value": _cell(text, item_type)}
            if cols.date is not None and cells[cols.date]:
                el["date"] = cells[cols.date]
            if cols.unit is not None and cells[cols.unit]:
                el["unit"] = cells[cols.unit]
            reference = {
                key: _cell(cells[col], "number")
                for key, col in (("low", cols.low), ("high", cols.high))
                if col is not None and cells[col]
            }
            if reference:
                el["reference_range"] = reference
            obj[name] = [el]
        for name, col in self.events:
            text = cells[col]
            if not text:
                continue
            if text.lower() == "none":
                obj[name] = []
                continue
            occurrences: list[object] = []
            for part in text.split(";"):
                start, slash, end = part.strip().partition("/")
                occurrences.append({"date": start, "end": end} if slash else start)
            obj[name] = occurrences
        if self.attest:
            obj["attestations"] = {
                name: _cell(cells[col], "boolean") for name, col in self.attest if cells[col]
            }
        return obj

    def column_of(self, field: str | None) -> str | None:
        """The CSV column a JSON field path of a record built by `record` came from."""
        if field is None:
            return None
        if field.startswith("attestations."):
            return _ATTEST_PREFIX + field[len("attestations.") :]
        match = _FIELD_RE.fullmatch(field)
        if match is None:
            return field
        name, sub = match["name"], match["sub"]
        item = self.reader.items.get(name)
        if item is None or item.kind == "event" or sub in (None, "value"):
            return name
        if sub == "unit":
            return f"{name}_unit"
        if item.kind == "observation" and sub == "date":
            return f"{name}_date"
        if item.kind == "observation" and sub == "reference_range.high":
            return f"{name}_high"
        if item.kind == "observation":
            # 'reference_range.low' and 'reference_range' itself (low above high).
            return f"{name}_low"
        return name


_FIELD_RE = re.compile(r"(?P<name>[^.\[]+)(?:\[\d+\])?(?:\.(?P<sub>.+))?")


def _split_companion(name: str) -> tuple[str, str]:
    for suffix in _COMPANION_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


# Splits a line read up to b"\n" after each lone b"\r" (old Mac line ends), as the csv module
# expects lines; neither byte can occur inside a UTF-8 multi-byte character.
_LONE_CR: Final = re.compile(rb"(?<=\r)(?!\n)")


class _CsvLines:
    """The lines of a CSV file, decoded one at a time for `csv.reader`.

    A line that is not UTF-8 spoils only the row it belongs to: it is passed on with
    replacement characters (which keep the row's cells apart as written) and remembered, so
    that the row is reported instead of parsed. The header's lines are kept for diagnostics.
    """

    def __init__(self, handle: Iterable[bytes]) -> None:
        self._lines = self._decode(handle)
        self._bad: dict[int, str] = {}  # line number -> what is wrong with it
        self._header: list[bytes] | None = []

    def __iter__(self) -> Iterator[str]:
        return self._lines

    def _decode(self, handle: Iterable[bytes]) -> Iterator[str]:
        n = 0
        for chunk in handle:
            for raw in _LONE_CR.split(chunk) if b"\r" in chunk else (chunk,):
                if not raw:
                    continue
                n += 1
                encoding = "utf-8-sig" if n == 1 else "utf-8"
                try:
                    text = raw.decode(encoding)
                except UnicodeDecodeError as exc:
                    self._bad[n] = bad_byte(exc)
                    text = raw.decode(encoding, errors="replace")
                if self._header is not None:
                    self._header.append(raw)
                yield text

    def undecodable(self, first: int, last: int) -> str | None:
        """What is not UTF-8 in lines `first`..`last` (one row), forgetting those lines."""
        if not self._bad:
            return None
        found = [(n, self._bad.pop(n)) for n in range(first, last + 1) if n in self._bad]
        if not found:
            return None
        n, where = found[0]
        return (
            f"not UTF-8 text ({where})" if n == first else f"not UTF-8 text in line {n} ({where})"
        )

    def header_text(self, path: Path) -> str:
        """The text of the header row (read so far) of the file `path`, without its line end.

        Raises `RecordError` at the line and column of a byte in it that is not UTF-8.
        """
        kept, self._header = self._header or [], None
        return decode(str(path), b"".join(kept)).rstrip("\r\n")


def _cell_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of each cell of one CSV row's text (default dialect), blanks trimmed."""
    spans: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while True:
        start = i
        if i < n and text[i] == '"':
            i += 1
            while i < n:
                if text[i] == '"':
                    if text[i + 1 : i + 2] != '"':
                        break
                    i += 1
                i += 1
        while i < n and text[i] != ",":
            i += 1
        a, b = start, i
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        spans.append((a, b))
        if i >= n:
            return spans
        i += 1


# The largest field size limit every platform's csv module accepts (a C long).
_CSV_MAX_LIMIT: Final = 2**31 - 1


def _allow_cells_of(handle: BinaryIO) -> None:
    """Let the csv module read any cell of the file behind `handle`.

    The module stops a cell at a process-wide limit (128 KiB by default) and then reads the
    rest of its row as new rows: records that are not in the file. No cell is longer than
    the file holding it, so the limit is raised to the file's size (or its greatest value
    for a pipe); it is never lowered, which could break other users of the module.
    """
    info = os.fstat(handle.fileno())
    size = info.st_size + 1 if stat.S_ISREG(info.st_mode) else _CSV_MAX_LIMIT
    wanted = min(size, _CSV_MAX_LIMIT)
    if csv.field_size_limit() < wanted:
        csv.field_size_limit(wanted)


def _read_csv(path: Path, reader: RecordReader) -> Iterator[Record | RecordError]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise _file_error(
            path, "unreadable", f"cannot read records: {exc.strerror or exc}"
        ) from None
    with handle:
        _allow_cells_of(handle)
        lines = _CsvLines(handle)
        rows = csv.reader(lines)
        try:
            header = next(rows, None)
        except csv.Error as exc:
            raise _file_error(path, "malformed", f"cannot read the CSV header: {exc}") from None
        if header is None:
            message = "empty CSV file: expected a header row"
            raise file_error(str(path), "", "malformed", message)
        layout = _CsvLayout(header, reader, path, lines.header_text(path))
        line = rows.line_num
        while True:
            start = line + 1
            where = f"line {start}"
            try:
                row = next(rows, None)
            except csv.Error as exc:
                if rows.line_num == line:
                    # The csv module made no progress: retrying would loop for ever.
                    raise _file_error(
                        path, "malformed", f"unreadable CSV at {where}: {exc}"
                    ) from None
                line = rows.line_num
                undecodable = lines.undecodable(start, line)
                yield _line_error(where, undecodable or f"malformed CSV row: {exc}")
                continue
            if row is None:
                return
            line = rows.line_num
            undecodable = lines.undecodable(start, line)
            if undecodable:
                yield _line_error(where, undecodable)
                continue
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != layout.width:
                rid = (
                    row[layout.id_col].strip()
                    if layout.id_col is not None and layout.id_col < len(row)
                    else ""
                )
                yield RecordError(
                    [
                        Diagnostic(
                            "malformed",
                            f"row has {len(row)} cells but the header has {layout.width}",
                            record_id=rid or where,
                        )
                    ]
                )
                continue
            try:
                yield reader.parse(layout.record(row), where=where)
            except RecordError as exc:
                yield RecordError(
                    dataclasses.replace(d, field=layout.column_of(d.field)) for d in exc.diagnostics
                )
