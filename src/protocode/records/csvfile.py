"""Reading records from CSV files: one row a patient, one column an item.

The header names the columns: ``id``, one per fact, observation or event item, companions
of an observation (``<item>_date``, ``_unit``, ``_low``, ``_high``) or of a quantity fact
(``<item>_unit``), and ``attest_<name>`` per attestation. Each row becomes the JSON record it
stands for, which `RecordReader` checks; a problem names the CSV column it came from.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from protocode.core.errors import Diagnostic, RecordError, did_you_mean
from protocode.core.jsontext import bad_byte, decode, file_error
from protocode.core.source import Source
from protocode.document.model import DataItem
from protocode.records.model import Record
from protocode.records.numbers import exact_decimal
from protocode.records.problems import line_error, path_error, unreadable
from protocode.records.reader import RecordReader
from protocode.records.rules import NUMERIC_TYPES, RULES

__all__ = ["read_csv"]

_TRUE: Final = frozenset(RULES.boolean.true)
_FALSE: Final = frozenset(RULES.boolean.false)
_DECIMAL_RE: Final = re.compile(RULES.number.decimal_pattern)
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
    elif item_type in NUMERIC_TYPES and _DECIMAL_RE.fullmatch(text):
        return exact_decimal(text)
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


def read_csv(path: Path, reader: RecordReader) -> Iterator[Record | RecordError]:
    """The records of a ``.csv`` file, one per non-blank row after the header.

    A bad row yields a `RecordError` named ``line N`` and reading goes on; an unreadable
    header (unknown or duplicate columns, no ``id``) raises one `RecordError` at its columns.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise unreadable(path, exc) from None
    with handle:
        _allow_cells_of(handle)
        lines = _CsvLines(handle)
        rows = csv.reader(lines)
        try:
            header = next(rows, None)
        except csv.Error as exc:
            raise path_error(path, "malformed", f"cannot read the CSV header: {exc}") from None
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
                    raise path_error(
                        path, "malformed", f"unreadable CSV at {where}: {exc}"
                    ) from None
                line = rows.line_num
                undecodable = lines.undecodable(start, line)
                yield line_error(where, undecodable or f"malformed CSV row: {exc}")
                continue
            if row is None:
                return
            line = rows.line_num
            undecodable = lines.undecodable(start, line)
            if undecodable:
                yield line_error(where, undecodable)
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
