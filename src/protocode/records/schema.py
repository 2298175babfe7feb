"""The JSON Schema (draft 2020-12) of a valid patient record for a data dictionary.

It checks shapes, types, code sets, date syntax and the supported years; unit
convertibility and calendar validity of dates are left to `RecordReader.parse`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any, Final

from protocode.document.model import DataItem
from protocode.records.numbers import normal
from protocode.records.rules import NUMERIC_TYPES, RULES

__all__ = ["record_schema"]

_DATE: Final = RULES.date
_DATE_SCHEMA: Final[dict[str, Any]] = {
    "type": "string",
    "description": (
        f"YYYY-MM-DD (years {_DATE.earliest.year}-{_DATE.latest.year}), optionally with an "
        "ISO time and UTC offset"
    ),
    "pattern": _DATE.schema_pattern,
}


def record_schema(items: Iterable[DataItem], attestations: Sequence[str]) -> dict[str, Any]:
    """The schema of a record holding `items` and the named `attestations`."""
    properties: dict[str, Any] = {
        "id": {
            "description": "Patient identifier (required).",
            "anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}],
        }
    }
    for item in items:
        properties[item.name] = _item_schema(item)
    properties["attestations"] = {
        "description": "Attestations: name -> true/false; absent or null is unknown.",
        "type": ["object", "null"],
        "properties": {name: {"type": ["boolean", "null"]} for name in attestations},
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


def _schema_number(text: str | None) -> int | float | None:
    if text is None:
        return None
    x = normal(Fraction(text))
    # JSON Schema bounds are JSON numbers; the exact check is the reader's.
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
        if item.type in NUMERIC_TYPES:
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
