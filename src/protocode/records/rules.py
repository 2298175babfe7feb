"""The rules of record data, stated once: what each value must be, and what is said when not.

Two engines check record values: the record reader (`protocode.records.reader`, JSON, JSONL
and CSV records) and the SQL staging of `protocode.tables` (cells of staged tables). Both
take their bounds, patterns, spellings, diagnostic codes and messages from `RULES`, so the
two cannot drift apart unseen.

Each rule is a frozen dataclass holding its bounds and its `Message`s (a code and a
`str.format` template). Where the two engines report a rule differently, a `Wording` holds
both side by side: `record` as the reader says it, `table` as the staging says it. Messages
take their values already shown (``shown``: a value as `show_value` or `repr` writes it).

Use `rule_for(item)` for the rule of one value of a data item, and `RULES.messages()` for
every message of the table (for example to list diagnostic codes).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from protocode.document.model import DataItem

__all__ = [
    "NUMERIC_TYPES",
    "RULES",
    "BooleanRule",
    "CodeRule",
    "DateRule",
    "IdRule",
    "Message",
    "NumberRule",
    "OccurrenceRule",
    "ReferenceRule",
    "Rules",
    "TextRule",
    "UnitRule",
    "ValueRule",
    "Wording",
    "rule_for",
]


@dataclass(frozen=True, slots=True)
class Message:
    """A diagnostic: its `code` and a `str.format` template of its message."""

    code: str
    template: str

    def render(self, **fields: object) -> str:
        """The message with `fields` filled in."""
        return self.template.format(**fields)


@dataclass(frozen=True, slots=True)
class Wording:
    """One rule as each engine reports it: the record reader (`record`) and the SQL
    staging of tables (`table`)."""

    record: Message
    table: Message


def _same(code: str, template: str) -> Wording:
    return Wording(Message(code, template), Message(code, template))


@dataclass(frozen=True, slots=True)
class DateRule:
    """A date: ``YYYY-MM-DD`` (records also take an ISO date-time, keeping the calendar date
    as written), within `earliest` … `latest`.

    Dates far outside any clinical range overflow date arithmetic (a window subtracting
    days from 0001-01-03), so both engines accept only this range.
    """

    # The calendar date, in both engines.
    pattern: str
    # An optional ISO 8601 time of day and UTC offset after the date (FHIR dateTime,
    # instant): records only. Checked for form, never applied.
    time_pattern: str
    earliest: dt.date
    latest: dt.date
    # Longer text is no date (at most nanoseconds and an offset): neither parsed nor cached.
    max_text: int
    # The record JSON Schema's pattern: `pattern` and `time_pattern` with the years of
    # `earliest` … `latest`.
    schema_pattern: str
    form: Wording
    range: Wording


@dataclass(frozen=True, slots=True)
class BooleanRule:
    """true or false; a text cell (CSV, SQL tables) may spell them as below, in any case."""

    true: tuple[str, ...]
    false: tuple[str, ...]
    form: Wording


@dataclass(frozen=True, slots=True)
class TextRule:
    """Any text."""

    form: Message


@dataclass(frozen=True, slots=True)
class CodeRule:
    """One of the item's listed values (``listing``, comma-separated; ``item``, its name;
    ``hint``, a did-you-mean suffix)."""

    not_listed: Wording
    not_text: Message


@dataclass(frozen=True, slots=True)
class NumberRule:
    """An exact number of an integer, number or quantity item, within its plausible range.

    The plausible range is the item's own (`DataItem.minimum`, `DataItem.maximum`, compared in
    the item's unit), inclusive at both ends; reference limits are not range-checked. Records
    hold at most `max_digits` digits in numerator and denominator (lowest terms); the SQL
    staging holds what the item's layout holds exactly (``digits``, ``scale``).
    """

    # Decimal text in a record cell (CSV): an exponent is allowed.
    decimal_pattern: str
    # Decimal text in a SQL table cell: no exponent.
    plain_pattern: str
    # Fraction('1e999999999') would build a billion-digit integer; a clinical value never
    # needs a decimal exponent anywhere near this bound.
    max_exponent: int
    # Far beyond any measurement, and within what every later stage prints and converts
    # (str() of an int refuses 4,300 digits, a float overflows past 1e308).
    max_digits: int
    # What `form` names as expected, by item type, and in a SQL cell.
    expected_integer: str
    expected_number: str
    expected_quantity: str
    expected_plain: str
    form: Wording
    integer: Wording
    below: Wording
    above: Wording
    # Records name both bounds when an item has both; the staging names the one crossed.
    outside: Message
    too_long: Message
    too_precise: Message
    too_wide: Message


@dataclass(frozen=True, slots=True)
class UnitRule:
    """The unit of a quantity: UCUM text convertible to the item's unit (``reason``: what the
    unit parser says)."""

    # Longer than any unit a record needs ('mg/dL', 'umol/L', '10*9/L', '[lb_av]').
    max_text: int
    form: Message
    too_long: Message
    unknown: Message
    mismatch: Message
    no_unit: Message


@dataclass(frozen=True, slots=True)
class IdRule:
    """A patient id: a non-empty string, or an integer of fewer than `max_int_bits` bits;
    in tables, on one patients row and on no long-table row without one."""

    max_int_bits: int
    missing: Wording
    form: Message
    duplicate: Message
    orphan: Message


@dataclass(frozen=True, slots=True)
class ReferenceRule:
    """The reference range of a numeric observation: {low, high}, low not above high."""

    not_numeric: Wording
    form: Message
    order: Wording


@dataclass(frozen=True, slots=True)
class OccurrenceRule:
    """An occurrence of an event: a dated one may end, not before its date."""

    undated_end: Wording
    backwards: Wording


ValueRule = DateRule | BooleanRule | TextRule | CodeRule | NumberRule


@dataclass(frozen=True, slots=True)
class Rules:
    """Every rule of record data."""

    id: IdRule
    date: DateRule
    boolean: BooleanRule
    text: TextRule
    code: CodeRule
    number: NumberRule
    unit: UnitRule
    reference: ReferenceRule
    occurrence: OccurrenceRule
    missing_value: Wording

    def messages(self) -> Iterator[Message]:
        """Every message of the table, in declaration order (record wording first)."""
        for field in dataclasses.fields(self):
            yield from _messages(getattr(self, field.name))


def _messages(value: object) -> Iterator[Message]:
    if isinstance(value, Message):
        yield value
    elif isinstance(value, Wording):
        yield value.record
        yield value.table
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            yield from _messages(getattr(value, field.name))


# The value types whose values are numbers (`NumberRule`).
NUMERIC_TYPES: Final = frozenset({"integer", "number", "quantity"})

_PLAIN_DECIMAL: Final = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"

RULES: Final = Rules(
    id=IdRule(
        max_int_bits=64,
        missing=Wording(
            Message("missing-id", "missing required field 'id'"),
            Message("bad-id", "{where} has no id"),
        ),
        form=Message("bad-value", "expected a non-empty string or integer id, got {shown}"),
        duplicate=Message("duplicate-id", "patients: id {shown} is on {count} rows"),
        orphan=Message("no-patient", "{table}: rows for an id with no row in patients"),
    ),
    date=DateRule(
        pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}",
        time_pattern=(
            r"(?:T(?P<h>[0-9]{2}):(?P<m>[0-9]{2})(?::(?P<s>[0-9]{2})(?:\.[0-9]+)?)?"
            r"(?:Z|[+-](?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))?)?"
        ),
        earliest=dt.date(1800, 1, 1),
        latest=dt.date(2200, 12, 31),
        max_text=64,
        schema_pattern=(
            r"^(?:1[89][0-9]{2}|2[01][0-9]{2}|2200)-[0-9]{2}-[0-9]{2}"
            r"(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?$"
        ),
        form=Wording(
            Message("bad-value", "expected a date YYYY-MM-DD, got {shown}"),
            Message("bad-date", "expected a date YYYY-MM-DD, got {shown}"),
        ),
        range=Wording(
            Message(
                "out-of-range", "date {date} is outside the supported range {earliest} … {latest}"
            ),
            Message("bad-date", "date {date} is outside {earliest} to {latest}"),
        ),
    ),
    boolean=BooleanRule(
        true=("true", "yes", "1"),
        false=("false", "no", "0"),
        form=_same("bad-value", "expected true or false, got {shown}"),
    ),
    text=TextRule(form=Message("bad-value", "expected text, got {shown}")),
    code=CodeRule(
        not_listed=Wording(
            Message("bad-value", "{shown} is not one of {listing}"),
            Message("bad-code", "{shown} is not a value of '{item}'{hint}"),
        ),
        not_text=Message("bad-value", "expected one of {listing}, got {shown}"),
    ),
    number=NumberRule(
        decimal_pattern=_PLAIN_DECIMAL + "(?:[eE][+-]?[0-9]+)?",
        plain_pattern=_PLAIN_DECIMAL,
        max_exponent=400,
        max_digits=300,
        expected_integer="an integer",
        expected_number="a number",
        expected_quantity="a number in {unit} or {{value, unit}}",
        expected_plain="a plain decimal number",
        form=_same("bad-value", "expected {expected}, got {shown}"),
        integer=_same("bad-value", "expected an integer, got {shown}"),
        below=_same("out-of-range", "{value}{unit} is below the plausible minimum {low}{unit}"),
        above=_same("out-of-range", "{value}{unit} is above the plausible maximum {high}{unit}"),
        outside=Message(
            "out-of-range", "{value}{unit} is outside the plausible range {low} to {high}{unit}"
        ),
        too_long=Message(
            "out-of-range",
            "{shown} is too long: a record number has at most {max_digits} digits before and "
            "after the decimal point",
        ),
        too_precise=Message(
            "sql-range",
            "{shown} has more than {scale} decimal places, the most the SQL layout holds exactly",
        ),
        too_wide=Message(
            "sql-range",
            "{shown} has more than {digits} integer digits, the most the SQL layout holds for "
            "this item (give it a plausible range: minimum and maximum)",
        ),
    ),
    unit=UnitRule(
        max_text=100,
        form=Message("bad-value", "expected a unit such as '{unit}', got {shown}"),
        too_long=Message(
            "unknown-unit", "unknown unit {shown}: {length} characters is too long for a unit"
        ),
        unknown=Message("unknown-unit", "unknown unit {shown}: {reason}"),
        mismatch=Message("unit-mismatch", "{reason}"),
        no_unit=Message("bad-value", "'{item}' has no unit"),
    ),
    reference=ReferenceRule(
        not_numeric=_same("bad-value", "'{item}' is not numeric: it has no reference range"),
        form=Message("bad-value", "expected {{low, high}}, got {shown}"),
        order=_same("bad-value", "low {low} is above high {high}"),
    ),
    occurrence=OccurrenceRule(
        undated_end=_same("bad-value", "an undated occurrence cannot have an end"),
        backwards=Wording(
            Message("bad-value", "end {end} is before date {date}"),
            Message("bad-value", "end is before date"),
        ),
    ),
    missing_value=_same("bad-value", "missing value"),
)


def rule_for(item: DataItem) -> ValueRule:
    """The rule of one value of `item`: anchors and dates are dates, integers, numbers and
    quantities numbers, a code with listed values a code, any other code text."""
    if item.kind == "anchor" or item.type == "date":
        return RULES.date
    if item.type == "boolean":
        return RULES.boolean
    if item.type in NUMERIC_TYPES:
        return RULES.number
    if item.type == "code" and item.values:
        return RULES.code
    return RULES.text
