"""The input tables: their names and columns, and finding their files.

Three tables make up the layout (``docs/sql.md``): ``patients`` (one row per record, a column
per fact, attestation and history flag), ``observations`` and ``events`` (long tables, one row
per observation or occurrence). A set of tables is a folder of CSV or Parquet files, or one
table file.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from protocode.backends.sql.layout import layout
from protocode.core.errors import Diagnostic, UsageError
from protocode.screening import Protocol

TableFormat = Literal["parquet", "csv"]

PATIENTS, OBSERVATIONS, EVENTS = "patients", "observations", "events"
TABLES = (PATIENTS, OBSERVATIONS, EVENTS)
OBSERVATION_COLUMNS = ("id", "item", "date", "value", "low", "high")
EVENT_COLUMNS = ("id", "item", "date", "end")


@dataclass(frozen=True, slots=True)
class TableFiles:
    """The files of one set of input tables; a missing long table is None (no rows)."""

    patients: Path
    observations: Path | None
    events: Path | None
    format: TableFormat


def table_format(path: Path) -> TableFormat | None:
    """``parquet`` or ``csv`` by a file's suffix, else None."""
    suffix = path.suffix.lower()
    return "parquet" if suffix == ".parquet" else "csv" if suffix == ".csv" else None


def find_tables(path: Path) -> TableFiles:
    """The tables at `path`: a folder holding ``patients.csv`` or ``patients.parquet`` (and
    optionally ``observations`` and ``events`` in the same format), or one table file.

    A file named ``patients.<ext>`` brings its sibling long tables along; a table file with
    another name is a ``patients`` table alone. Raises `UsageError` when there is none.
    """
    if path.is_dir():
        found = [f for f in (path / "patients.parquet", path / "patients.csv") if f.exists()]
        if not found:
            raise UsageError.at(
                "usage", f"{path}: no patients.parquet or patients.csv in this folder", None
            )
        if len(found) > 1:
            raise UsageError.at(
                "usage", f"{path}: holds both patients.parquet and patients.csv; keep one", None
            )
        path = found[0]
    fmt = table_format(path)
    if fmt is None:
        raise UsageError.at(
            "usage", f"{path}: a table is a .csv or .parquet file (or a folder of them)", None
        )
    if not path.is_file():
        raise UsageError.at("usage", f"{path}: no such file", None)
    if path.stem.lower() != PATIENTS:
        return TableFiles(path, None, None, fmt)

    def sibling(name: str) -> Path | None:
        candidate = path.with_name(f"{name}{path.suffix}")
        return candidate if candidate.is_file() else None

    return TableFiles(path, sibling(OBSERVATIONS), sibling(EVENTS), fmt)


def is_tables(path: Path, protocol: Protocol) -> bool:
    """Whether `path` holds tables of the layout rather than records: a folder with a
    patients table, a Parquet file, or a CSV file whose header is a ``patients`` table's
    and that records CSV cannot be (``attest__``/``known__`` columns, or ``patients.csv``)."""
    if path.is_dir():
        return any((path / f"patients.{s}").is_file() for s in ("parquet", "csv"))
    fmt = table_format(path)
    if fmt == "parquet":
        return True
    if fmt != "csv":
        return False
    names = {c.name for c in layout(protocol.checked).columns}
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            header = [h.strip() for h in next(csv.reader(f), [])]
    except (OSError, UnicodeDecodeError):
        return False
    if "id" not in header or not set(header) <= names:
        return False
    return path.stem.lower() == PATIENTS or any(
        h.startswith(("attest__", "known__")) for h in header
    )


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV table (its first row). Raises `UsageError` for a file that
    has none, a blank name or a name given twice."""
    try:
        # Undecodable bytes are kept (as surrogates) so that only the header's are judged:
        # the rows' are DuckDB's to report, with their line.
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            header = next(csv.reader(f), None)
    except OSError as exc:
        raise UsageError.at("unreadable", f"{path}: {exc.strerror or exc}", None) from None
    except csv.Error as exc:
        raise UsageError.at("unreadable", f"{path}: bad header row: {exc}", None) from None
    if header is not None and any(c != c.encode("utf-8", "replace").decode() for c in header):
        raise UsageError.at("unreadable", f"{path}: the header row is not UTF-8 text", None)
    if not header:
        message = f"{path}: empty file; a table starts with a header row of column names"
        raise UsageError.at("usage", message, None)
    problems = [
        f"{path}: column {i} of the header has no name" for i, c in enumerate(header, 1) if not c
    ]
    problems += [f"{path}: column '{c}' is in the header twice" for c in repeated(header) if c]
    if problems:
        raise UsageError([Diagnostic("usage", p) for p in problems])
    return header


def repeated(names: Sequence[str]) -> list[str]:
    """The names given more than once."""
    return [n for n, count in Counter(names).items() if count > 1]
