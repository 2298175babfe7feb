"""Convert stage: patient records ⇄ the three tables of the SQL layout (see `layout`).

Records → tables: each record is read exactly as the row engine reads it (`RecordReader`:
units converted to the item's unit, exact decimals), then written as one ``patients`` row and
its ``observations`` and ``events`` rows, numbers as exact decimal text. A record the row
engine rejects is reported with its `RecordError`, and so is a record whose numbers the
layout cannot hold exactly (more than `SCALE` decimal places, or more integer digits than
the item's format): nothing is rounded.

Tables → records: the rows of one id become one record dict in the documented JSON form;
``protocode.tables.database`` validates the tables first.

`write_tables` writes the rows as CSV files, or as Parquet files typed by the layout through
DuckDB (`protocode.tables.database`).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

from protocode.backends.sql.layout import Fmt, Layout, is_numeric, layout, number_format
from protocode.core.errors import Diagnostic, RecordError
from protocode.core.exact import approximate
from protocode.core.jsontext import json_line
from protocode.document.model import DataItem
from protocode.records import Record, unique_records
from protocode.screening import Protocol
from protocode.tables.database import Database
from protocode.tables.files import (
    EVENT_COLUMNS,
    EVENTS,
    OBSERVATION_COLUMNS,
    OBSERVATIONS,
    PATIENTS,
    TableFormat,
)


class _Unrepresentable(Exception):  # noqa: N818 - a signal turned into a Diagnostic
    def __init__(self, message: str) -> None:
        self.message = message


def decimal_text(x: Any, fmt: Fmt) -> str:
    """An exact number as plain decimal text within `fmt`, or `_Unrepresentable`."""
    q = Fraction(int(x.numerator), int(x.denominator))
    scaled = q * 10**fmt.scale
    if scaled.denominator != 1:
        raise _Unrepresentable(
            f"{_show(q)} needs more than {fmt.scale} decimal places, the most the SQL layout "
            "holds exactly"
        )
    if abs(q) >= 10**fmt.digits:
        raise _Unrepresentable(
            f"{_show(q)} has more than {fmt.digits} integer digits, the most the SQL layout "
            "holds for this item (give it a plausible range: minimum and maximum)"
        )
    n = int(scaled)
    if fmt.scale == 0:
        return str(n)
    sign, digits = ("-" if n < 0 else ""), str(abs(n)).rjust(fmt.scale + 1, "0")
    whole, frac = digits[: -fmt.scale], digits[-fmt.scale :].rstrip("0")
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def _show(q: Fraction) -> str:
    # A long integer is shown like a fraction rather than digit by digit.
    if q.denominator == 1 and abs(q) < 10**21:
        return str(q)
    return f"≈{approximate(q, lambda f: f'{f:.12g}', digits=12)}"


@dataclass(slots=True)
class TableRows:
    """One record as rows of the three tables (cells as text; None is NULL)."""

    patient: dict[str, str | None]
    observations: list[tuple[str | None, ...]] = field(default_factory=list)
    events: list[tuple[str | None, ...]] = field(default_factory=list)


def _cell(value: object, fmt: Fmt | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    assert fmt is not None
    return decimal_text(value, fmt)


class RowWriter:
    """Turns validated records into table rows for one protocol's layout."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.layout: Layout = layout(protocol.checked)
        self.formats = {
            i.name: number_format(i) if i.type in {"integer", "number", "quantity"} else None
            for i in protocol.checked.doc.data
        }

    def rows(self, record: Record) -> TableRows:
        """The rows of one record; raises `RecordError` for numbers the layout cannot hold."""
        problems: list[Diagnostic] = []

        def cell(value: object, item: str, where: str) -> str | None:
            if value is None:
                return None
            try:
                return _cell(value, self.formats.get(item))
            except _Unrepresentable as bad:
                problems.append(Diagnostic("sql-range", bad.message, None, record.id, where))
                return None

        patient: dict[str, str | None] = {}
        for c in self.layout.columns:
            if c.role == "id":
                patient[c.name] = record.id
            elif c.role == "fact":
                assert c.item is not None
                patient[c.name] = cell(record.values.get(c.item), c.item, c.item)
            elif c.role == "attestation":
                assert c.item is not None
                patient[c.name] = cell(record.attestations.get(c.item), c.item, c.name)
            else:
                assert c.item is not None
                known = c.item in record.series or c.item in record.events
                patient[c.name] = "true" if known else None
        out = TableRows(patient)
        for item, series in record.series.items():
            for i, o in enumerate(series):
                where = f"{item}[{i}]"
                out.observations.append(
                    (
                        record.id,
                        item,
                        cell(o.date, item, where),
                        cell(o.value, item, f"{where}.value"),
                        cell(o.low, item, f"{where}.reference_range.low"),
                        cell(o.high, item, f"{where}.reference_range.high"),
                    )
                )
        for item, occurrences in record.events.items():
            for i, e in enumerate(occurrences):
                where = f"{item}[{i}]"
                out.events.append(
                    (record.id, item, cell(e.date, item, where), cell(e.end, item, where))
                )
        if problems:
            raise RecordError(problems)
        return out

    def convert(
        self, records: Iterable[Record | RecordError | Mapping[str, Any]]
    ) -> Iterator[TableRows | RecordError]:
        """Rows per record; a bad record (or a repeated id) yields its `RecordError`."""
        for item in unique_records(records, self.protocol.reader):
            if isinstance(item, RecordError):
                yield item
                continue
            try:
                yield self.rows(item)
            except RecordError as bad:
                yield bad


@dataclass(frozen=True, slots=True)
class Written:
    """What `write_tables` wrote: the files, how many records, and the records it could not."""

    paths: dict[str, Path]
    records: int
    errors: tuple[RecordError, ...]


def write_csv(
    protocol: Protocol,
    records: Iterable[Record | RecordError | Mapping[str, Any]],
    directory: Path,
) -> Written:
    """Write ``patients.csv``, ``observations.csv`` and ``events.csv`` into `directory`."""
    writer = RowWriter(protocol)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"{name}.csv" for name in (PATIENTS, OBSERVATIONS, EVENTS)}
    header = [c.name for c in writer.layout.columns]
    errors: list[RecordError] = []
    count = 0
    with (
        paths[PATIENTS].open("w", encoding="utf-8", newline="") as pf,
        paths[OBSERVATIONS].open("w", encoding="utf-8", newline="") as of,
        paths[EVENTS].open("w", encoding="utf-8", newline="") as ef,
    ):
        patients, observations, events = (_CsvWriter(f) for f in (pf, of, ef))
        patients.writerow(header)
        observations.writerow(OBSERVATION_COLUMNS)
        events.writerow(EVENT_COLUMNS)
        for rows in writer.convert(records):
            if isinstance(rows, RecordError):
                errors.append(rows)
                continue
            count += 1
            patients.writerow([rows.patient[h] for h in header])
            observations.writerows(rows.observations)
            events.writerows(rows.events)
    return Written(paths, count, tuple(errors))


class _CsvWriter:
    """CSV rows where NULL is an empty cell and an empty string is quoted (``""``).

    The csv module writes both as nothing (before Python 3.12's QUOTE_NOTNULL); DuckDB reads
    the layout's CSV files with quoted empty strings kept as strings.
    """

    def __init__(self, f: TextIO) -> None:
        self.f = f

    def writerow(self, row: Iterable[str | None]) -> None:
        self.f.write(",".join(_csv_cell(c) for c in row) + "\n")

    def writerows(self, rows: Iterable[Iterable[str | None]]) -> None:
        for row in rows:
            self.writerow(row)


def _csv_cell(cell: str | None) -> str:
    if cell is None:
        return ""
    if cell == "" or any(ch in cell for ch in ',"\n\r') or cell != cell.strip():
        return '"' + cell.replace('"', '""') + '"'
    return cell


def write_tables(
    protocol: Protocol,
    records: Iterable[Record | RecordError | Mapping[str, Any]],
    directory: Path,
    table_format: TableFormat = "parquet",
) -> Written:
    """Write the records as the three tables (Parquet or CSV files) into `directory`.

    Parquet files get the layout's column types (DECIMAL, DATE, BOOLEAN, …).
    """
    if table_format == "csv":
        return write_csv(protocol, records, directory)
    with tempfile.TemporaryDirectory(prefix="protocode-") as tmp:
        written = write_csv(protocol, records, Path(tmp))
        directory.mkdir(parents=True, exist_ok=True)
        paths = {name: directory / f"{name}.parquet" for name in written.paths}
        with Database(protocol) as db:
            db.load(Path(tmp))
            db.validate()
            for name, path in paths.items():
                db.copy_table(name, path)
    return Written(paths, written.records, written.errors)


# --- tables → records ------------------------------------------------------------------------


def record_dict(
    lay: Layout,
    patient: Mapping[str, Any],
    observations: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """One record in the JSON record form from its typed table rows (values as DuckDB gives
    them: `Decimal`, `datetime.date`, `bool`, `str`, `int`; None is NULL)."""
    record: dict[str, Any] = {"id": patient["id"]}
    attestations: dict[str, Any] = {}
    for c in lay.columns:
        value = patient.get(c.name)
        if c.role == "fact" and value is not None:
            assert c.item is not None
            record[c.item] = _json_value(value)
        elif c.role == "attestation" and value is not None:
            assert c.item is not None
            attestations[c.item] = value
        elif c.role == "known" and value:
            assert c.item is not None
            record[c.item] = []
    for row in observations:
        item = lay.items[row["item"]]
        obs: dict[str, Any] = {"value": _text_value(item, row["value"])}
        if row["date"] is not None:
            obs["date"] = row["date"].isoformat()
        limits = {k: _text_value(item, row[k]) for k in ("low", "high") if row.get(k) is not None}
        if limits:
            obs["reference_range"] = limits
        record.setdefault(row["item"], []).append(obs)
    for row in events:
        occ: dict[str, Any] = {"date": None if row["date"] is None else row["date"].isoformat()}
        if row["end"] is not None:
            occ["end"] = row["end"].isoformat()
        record.setdefault(row["item"], []).append(occ)
    record["attestations"] = attestations
    return record


def _text_value(item: DataItem, value: Any) -> Any:
    """A long table's cell (canonical text, whatever the item's type) as its JSON value."""
    if not isinstance(value, str):
        return _json_value(value)
    if is_numeric(item):
        return _json_value(Decimal(value))
    if item.type == "boolean":
        return value.lower() in {"true", "yes", "1"}
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # Exact: an integral value as int, else the Decimal itself (read exactly, as JSON
        # number text, by the row engine and by `dumps`).
        return int(value) if value == value.to_integral_value() else value.normalize()
    return value


def dumps(record: Mapping[str, Any]) -> str:
    """A record dict as one line of JSON, numbers written exactly (Decimal as decimal text)."""

    def encode(x: Any) -> str:
        if isinstance(x, Decimal):
            return format(x, "f")
        if isinstance(x, dict):
            return "{" + ", ".join(f"{json.dumps(k)}: {encode(v)}" for k, v in x.items()) + "}"
        if isinstance(x, list | tuple):
            return "[" + ", ".join(encode(v) for v in x) + "]"
        # One line for any line reader: json_line escapes U+2028 and the like.
        return json_line(x)

    return encode(record)
