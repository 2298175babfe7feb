"""The table of record field rules (`protocode.records.rules`): its shape, and that the
record reader says what the table says, at the table's exact boundaries."""

from __future__ import annotations

import datetime as dt
import re
import string
from typing import Any

import pytest

from protocode.core.errors import RecordError
from protocode.core.source import Source
from protocode.document.model import DataItem
from protocode.records import RecordReader
from protocode.records.rules import NUMERIC_TYPES, RULES, Message, rule_for

SPAN = Source("<t>", "").whole


def item(name: str, kind: str, type_: str, **kw: Any) -> DataItem:
    return DataItem(name, kind, type_, SPAN, **kw)  # type: ignore[arg-type]


ITEMS = (
    item("enrollment", "anchor", "date"),
    item("ecog", "fact", "integer", minimum="0", maximum="5"),
    item("weight", "fact", "quantity", unit="kg", minimum="1"),
    item("smoker", "fact", "boolean"),
    item("sex", "fact", "code", values=("male", "female")),
    item("note", "fact", "text"),
)


def problems(fields: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    with pytest.raises(RecordError) as caught:
        RecordReader(ITEMS, ()).parse({"id": "P1", **fields})
    return [(d.field, d.code, d.message) for d in caught.value.diagnostics]


def test_every_message_is_a_code_and_a_template() -> None:
    messages = list(RULES.messages())
    assert len(messages) > 30
    for message in messages:
        assert isinstance(message, Message)
        assert re.fullmatch(r"[a-z]+(?:-[a-z]+)*", message.code), message
        # Every field a template names can be filled in.
        names = {f for _, f, _, _ in string.Formatter().parse(message.template) if f}
        assert message.render(**dict.fromkeys(names, "x"))


@pytest.mark.parametrize(
    ("name", "kind", "type_", "values", "rule"),
    [
        ("a", "anchor", "date", (), RULES.date),
        ("b", "fact", "date", (), RULES.date),
        ("c", "fact", "boolean", (), RULES.boolean),
        ("d", "observation", "integer", (), RULES.number),
        ("e", "fact", "quantity", (), RULES.number),
        ("f", "fact", "code", ("x",), RULES.code),
        ("g", "fact", "text", (), RULES.text),
    ],
)
def test_rule_for_an_item(
    name: str, kind: str, type_: str, values: tuple[str, ...], rule: object
) -> None:
    assert rule_for(item(name, kind, type_, values=values)) is rule
    assert (type_ in NUMERIC_TYPES) == (rule is RULES.number)


def test_the_date_range_is_inclusive_and_worded_by_the_table() -> None:
    rule = RULES.date
    for inside in (rule.earliest, rule.latest):
        RecordReader(ITEMS, ()).parse({"id": "P1", "enrollment": inside.isoformat()})
    outside = rule.latest + dt.timedelta(days=1)
    wording = rule.range.record
    assert problems({"enrollment": outside.isoformat()}) == [
        (
            "enrollment",
            wording.code,
            wording.render(date=outside, earliest=rule.earliest, latest=rule.latest),
        )
    ]


def test_date_text_longer_than_the_bound_is_no_date() -> None:
    text = "2024-01-01T00:00:00." + "0" * (RULES.date.max_text - 20)
    assert len(text) == RULES.date.max_text
    RecordReader(ITEMS, ()).parse({"id": "P1", "enrollment": text})
    ((_, code, message),) = problems({"enrollment": text + "0"})
    assert code == RULES.date.form.record.code
    assert message.startswith("expected a date YYYY-MM-DD")


def test_plausible_bounds_are_inclusive() -> None:
    RecordReader(ITEMS, ()).parse({"id": "P1", "ecog": 0, "weight": 1})
    RecordReader(ITEMS, ()).parse({"id": "P1", "ecog": 5})
    below = RULES.number.below.record
    assert problems({"weight": {"value": 999, "unit": "g"}}) == [
        ("weight.value", below.code, below.render(value="0.999", unit=" kg", low="1"))
    ]
    outside = RULES.number.outside
    assert problems({"ecog": 6}) == [
        ("ecog", outside.code, outside.render(value="6", unit="", low="0", high="5"))
    ]


def test_record_numbers_are_bounded_by_digits() -> None:
    bound = 10**RULES.number.max_digits
    RecordReader(ITEMS, ()).parse({"id": "P1", "weight": bound - 1})
    ((_, code, message),) = problems({"weight": bound})
    assert code == RULES.number.too_long.code
    assert f"at most {RULES.number.max_digits} digits" in message


def test_ids_are_bounded_by_bits() -> None:
    bits = RULES.id.max_int_bits
    record = RecordReader(ITEMS, ()).parse({"id": 2 ** (bits - 1) - 1})
    assert record.id == str(2 ** (bits - 1) - 1)
    with pytest.raises(RecordError) as caught:
        RecordReader(ITEMS, ()).parse({"id": 2 ** (bits - 1) * 2})
    (d,) = caught.value.diagnostics
    assert (d.code, d.message) == (
        RULES.id.form.code,
        RULES.id.form.render(shown=str(2**bits)),
    )


def test_unit_text_is_bounded() -> None:
    unit = "g" * (RULES.unit.max_text + 1)
    ((field, code, message),) = problems({"weight": {"value": 1, "unit": unit}})
    assert (field, code) == ("weight.unit", RULES.unit.too_long.code)
    assert message.endswith(f"{len(unit)} characters is too long for a unit")


@pytest.mark.parametrize(
    ("fields", "rule", "shown"),
    [
        ({"smoker": "yes"}, RULES.boolean.form.record, "'yes'"),
        ({"note": 3}, RULES.text.form, "3"),
        ({"ecog": 1.5}, RULES.number.integer.record, "1.5"),
    ],
)
def test_value_messages_come_from_the_table(
    fields: dict[str, Any], rule: Message, shown: str
) -> None:
    ((_, code, message),) = problems(fields)
    assert (code, message) == (rule.code, rule.render(shown=shown))


def test_code_messages_come_from_the_table() -> None:
    rule = RULES.code
    listing = "male, female"
    assert problems({"sex": "mail"})[0][1:] == (
        rule.not_listed.record.code,
        rule.not_listed.record.render(shown="'mail'", listing=listing),
    )
    assert problems({"sex": 1})[0][1:] == (
        rule.not_text.code,
        rule.not_text.render(listing=listing, shown="1"),
    )
