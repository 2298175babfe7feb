"""Parsers of one record value: numbers, dates, booleans, text and codes, by `RULES`.

Each parser takes a value as given (JSON, a CSV cell, an API call) and returns it exact and
typed, or raises `FieldError` with the code and message of the rule it breaks.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Final, TypeAlias

from protocode.document.model import DataItem
from protocode.records.model import Magnitude
from protocode.records.numbers import SHOW_BITS, Unreadable, format_number, magnitude
from protocode.records.problems import FieldError, show_value
from protocode.records.rules import RULES

__all__ = [
    "DATE_RE",
    "Scalar",
    "date_text",
    "held",
    "number",
    "parse_bool",
    "parse_date",
    "parse_text",
    "record_number",
    "scalar_parser",
]

Scalar: TypeAlias = Callable[[object], object]

_DATE: Final = RULES.date
_NUMBER: Final = RULES.number
_DIGITS_BOUND: Final = 10**_NUMBER.max_digits
# Read per date field: module constants, not attribute look-ups.
_DATE_TEXT_MAX: Final = _DATE.max_text
_EARLIEST: Final = _DATE.earliest
_LATEST: Final = _DATE.latest
# A calendar date, optionally followed by an ISO 8601 time of day and UTC offset (FHIR
# dateTime/instant). Only the date as written is kept.
DATE_RE: Final = re.compile(f"(?P<date>{_DATE.pattern}){_DATE.time_pattern}")


def number(raw: object, expected: str) -> Magnitude:
    """`raw` as an exact number, or the `FieldError` saying it is none: not a number (naming
    `expected`), or a number too long to hold."""
    x = magnitude(raw)
    if x is not None:
        return x
    # A finite Decimal has no magnitude only when its exponent is out of bounds.
    if (isinstance(raw, Unreadable) and raw.too_long) or (
        isinstance(raw, Decimal) and raw.is_finite()
    ):
        raise _too_long(show_value(raw))
    rule = _NUMBER.form.record
    raise FieldError(rule.render(expected=expected, shown=show_value(raw)), rule.code)


def record_number(raw: object, expected: str = "a number") -> Magnitude:
    """`raw`, a value of a JSON record or of an API call, as an exact record number.

    Every number a record gives goes through this rule, in any reader: JSON decimals are
    exact, NaN and Infinity are not numbers, and a number is refused (`FieldError`, code
    ``out-of-range``) with more than `RULES.number.max_digits` digits. Anything else that is
    not a number is a `FieldError` naming what was `expected`.
    """
    return held(number(raw, expected))


def held(x: Magnitude) -> Magnitude:
    """`x`, if it is short enough to be a record number (`RULES.number.max_digits`)."""
    if type(x) is int:
        if -_DIGITS_BOUND < x < _DIGITS_BOUND:
            return x
    elif abs(x.numerator) < _DIGITS_BOUND and x.denominator < _DIGITS_BOUND:
        return x
    bits = max(int(x.numerator).bit_length(), int(x.denominator).bit_length())
    # log10(2) digits per bit; format_number describes such a number only by its bits.
    raise _too_long(
        format_number(x)
        if bits <= SHOW_BITS
        else f"a number of about {bits * 30103 // 100000} digits"
    )


def _too_long(shown: str) -> FieldError:
    rule = _NUMBER.too_long
    return FieldError(rule.render(shown=shown, max_digits=_NUMBER.max_digits), rule.code)


def parse_date(raw: object) -> dt.date:
    """A date field: ``YYYY-MM-DD``, or an ISO date-time whose calendar date is kept as
    written (no time-zone conversion), within the supported range of `RULES.date`."""
    date: dt.date | None = None
    if isinstance(raw, dt.datetime):
        date = raw.date()
    elif isinstance(raw, dt.date):
        date = raw
    elif isinstance(raw, str) and len(raw) <= _DATE_TEXT_MAX:
        date = date_text(raw)
    if date is None:
        rule = _DATE.form.record
        raise FieldError(rule.render(shown=show_value(raw)), rule.code)
    if not _EARLIEST <= date <= _LATEST:
        rule = _DATE.range.record
        message = rule.render(date=date.isoformat(), earliest=_DATE.earliest, latest=_DATE.latest)
        raise FieldError(message, rule.code)
    return date


# A batch repeats the same few hundred dates thousands of times: parse each text once. The
# cache keeps its keys, so longer text (RULES.date.max_text) stays out.
@lru_cache(maxsize=1 << 16)
def date_text(text: str) -> dt.date | None:
    """The calendar date of date or date-time text, or None when it is none."""
    match = DATE_RE.fullmatch(text)
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


def parse_bool(raw: object) -> bool:
    """A boolean field: JSON true or false."""
    if isinstance(raw, bool):
        return raw
    rule = RULES.boolean.form.record
    raise FieldError(rule.render(shown=show_value(raw)), rule.code)


def parse_text(raw: object) -> str:
    """A text field: any string."""
    if isinstance(raw, str):
        return raw
    rule = RULES.text.form
    raise FieldError(rule.render(shown=show_value(raw)), rule.code)


def scalar_parser(item: DataItem) -> Scalar:
    """The parser of a single non-numeric value of `item`."""
    if item.type == "boolean":
        return parse_bool
    if item.type == "date":
        return parse_date
    if item.type == "code" and item.values:
        allowed = frozenset(item.values)
        listing = ", ".join(item.values)
        rule = RULES.code

        def code(raw: object) -> str:
            if isinstance(raw, str) and raw in allowed:
                return raw
            if isinstance(raw, str):
                bad = rule.not_listed.record
                raise FieldError(bad.render(shown=show_value(raw), listing=listing), bad.code)
            raise FieldError(
                rule.not_text.render(listing=listing, shown=show_value(raw)), rule.not_text.code
            )

        return code
    return parse_text
