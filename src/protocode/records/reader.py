"""`RecordReader`: a patient record (a JSON object) checked against the data dictionary and
made a `Record`, with every problem of the record reported at once.

A record is a JSON object per patient (see ``docs/records.md``). Numbers become `int` or
exact rationals (never float), every quantity is converted to its item's declared unit,
dates are `datetime.date`. Absent or null fields are missing (unknown), never false or zero;
an empty list for an observation or event item means "known: none". Each bad field becomes
one `Diagnostic`, and a record with any bad field raises one `RecordError` carrying all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

from protocode.core.errors import Diagnostic, LoadError, RecordError
from protocode.document.model import DataItem
from protocode.records.fields import FieldParser, ObservationParser, event_parser, fact_parser
from protocode.records.model import Observation, Occurrence, Record
from protocode.records.problems import (
    INVALID,
    Problem,
    is_mapping,
    show_value,
    unknown_field,
)
from protocode.records.rules import RULES
from protocode.records.schema import record_schema

__all__ = ["RecordReader", "iter_records"]

_RESERVED: Final = ("id", "attestations")
_VALUES, _SERIES, _EVENTS = range(3)
_ID: Final = RULES.id
_ID_BITS: Final = _ID.max_int_bits


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
        self._fields: dict[str, tuple[int, FieldParser]] = {}
        for item in items:
            if item.name in _RESERVED:
                raise LoadError.at(
                    "dictionary",
                    f"'{item.name}' is reserved in patient records and cannot name a data item",
                    item.span,
                )
            self.items[item.name] = item
            if item.kind == "observation":
                self._fields[item.name] = (_SERIES, ObservationParser(item))
            elif item.kind == "event":
                self._fields[item.name] = (_EVENTS, event_parser)
            else:
                self._fields[item.name] = (_VALUES, fact_parser(item))
        self._top_keys: tuple[str, ...] = (*_RESERVED, *self.items)
        self._attest_set = frozenset(self.attestations)

    def parse(self, obj: object, where: str | None = None) -> Record:
        """Validate one record (a JSON object as parsed, or the same built in Python).

        Numbers may be `int`, `Fraction`, `Decimal` or `float` (read through its shortest
        repr, so 1.05 is exactly 21/20). Raises `RecordError` with one diagnostic per bad
        field; `where` names the record in diagnostics when it has no usable id.
        """
        if not is_mapping(obj):
            raise RecordError(
                [
                    Diagnostic(
                        "bad-record",
                        f"expected a record object, got {show_value(obj)}",
                        record_id=where,
                    )
                ]
            )
        problems: list[Problem] = []
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
                    problems.append(unknown_field("", key, self._top_keys))
                continue
            if raw is None:
                continue
            bucket, parse = entry
            value = parse(raw, key, problems)
            if value is not INVALID:
                buckets[bucket][key] = value
        if problems:
            shown = rid if rid is not None else where
            raise RecordError(
                Diagnostic(code, message, record_id=shown, field=field)
                for field, code, message in problems
            )
        assert rid is not None
        return Record(rid, values, series, events, attestations)

    def _id(self, raw: object, problems: list[Problem]) -> str | None:
        if isinstance(raw, str) and raw.strip():
            return raw
        if isinstance(raw, int) and not isinstance(raw, bool) and raw.bit_length() < _ID_BITS:
            return str(raw)
        if raw is None:
            missing = _ID.missing.record
            problems.append(("id", missing.code, missing.render()))
        else:
            problems.append(("id", _ID.form.code, _ID.form.render(shown=show_value(raw))))
        return None

    def _attestations(self, raw: object, out: dict[str, bool], problems: list[Problem]) -> None:
        if not is_mapping(raw):
            problems.append(
                (
                    "attestations",
                    "bad-value",
                    f"expected an object of name: true/false, got {show_value(raw)}",
                )
            )
            return
        boolean = RULES.boolean.form.record
        for name, value in raw.items():
            if not isinstance(name, str) or name not in self._attest_set:
                problems.append(
                    unknown_field("attestations", name, self.attestations, "attestation")
                )
                continue
            path = f"attestations.{name}"
            if isinstance(value, bool):
                out[name] = value
            elif value is not None:
                problems.append((path, boolean.code, boolean.render(shown=show_value(value))))

    def schema(self) -> dict[str, Any]:
        """A JSON Schema (draft 2020-12) of a valid record for this data dictionary.

        It checks shapes, types, code sets, date syntax and the supported years; unit
        convertibility and calendar validity of dates are left to `parse`.
        """
        return record_schema(self.items.values(), self.attestations)


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


def unique_records(objs: Iterable[object], reader: RecordReader) -> Iterator[Record | RecordError]:
    """`iter_records`, with a record whose id was already seen turned into an error.

    Results are reported by id, so two patients under one id would be indistinguishable;
    every engine (rows, tables) says so in the same words.
    """
    seen: dict[str, int] = {}
    for n, item in enumerate(iter_records(objs, reader), 1):
        if isinstance(item, Record):
            if item.id in seen:
                message = f"record id {item.id!r} already used by record {seen[item.id]}"
                yield RecordError([Diagnostic("duplicate-id", message, record_id=item.id)])
                continue
            seen[item.id] = n
        yield item
