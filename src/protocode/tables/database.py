"""Stage and validate tables in DuckDB: the tables of a batch, typed and checked.

A `Database` is one in-process DuckDB database for one protocol:

1. **Stage** the three tables of the layout (``docs/sql.md``) from CSV or Parquet files
   (`load`). CSV files are read once, as text, into DuckDB tables; Parquet files are read in
   place through views.
2. **Validate** every cell against the data dictionary (`validate`): a bad cell becomes a
   `RecordError` for its record (id and field), the record is left out and the batch goes
   on. The checks (`protocode.tables.checks`) are one set-based scan per table; messages are
   written in Python only for the rows that fail. The valid records' rows become the typed
   tables ``patients``, ``observations`` and ``events``.
3. **Copy** a validated table to a file (`copy_table`).

Screening the typed tables and writing results is `protocode.tables.run.Connection`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
from sqlglot import exp

from protocode.backends.sql.build import column, create_table, insert_rows, named, string, table
from protocode.backends.sql.layout import Layout, layout
from protocode.core.errors import Diagnostic, RecordError, UsageError, did_you_mean
from protocode.screening import Protocol
from protocode.tables.checks import (
    BAD_IDS,
    Raw,
    bad_rows_query,
    duplicate_id,
    duplicates_query,
    missing_id,
    orphan_id,
    orphan_queries,
    typed_table,
)
from protocode.tables.engine import Engine, Progress, copy_to, file_errors, read_path, reason
from protocode.tables.files import (
    EVENT_COLUMNS,
    EVENTS,
    OBSERVATION_COLUMNS,
    OBSERVATIONS,
    PATIENTS,
    TABLES,
    TableFiles,
    TableFormat,
    csv_header,
    find_tables,
    table_format,
)

# Rows fetched per round trip when reading results or tables back into Python.
FETCH = 10_000

_REQUIRED = {PATIENTS: ("id",), OBSERVATIONS: ("id", "item", "value"), EVENTS: ("id", "item")}

Problem = tuple[str, str | None, str, str]
"""A bad cell: (record, field, code, message)."""


class Database:
    """An in-process DuckDB database staging and validating tables for one protocol.

    Use it as a context manager. `threads` and `memory_limit` (e.g. ``"4GB"``) go to DuckDB;
    `progress(stage, fraction)` is called from a helper thread while long statements run.
    """

    def __init__(
        self,
        protocol: Protocol,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.protocol = protocol
        self.engine = Engine(
            protocol, threads=threads, memory_limit=memory_limit, progress=progress
        )
        self.con = self.engine.con
        self.layout: Layout = layout(protocol.checked)
        self.errors: list[RecordError] = []
        self.stage = "new"
        self._items = {i.name: i for i in protocol.checked.doc.data}
        self.raws = {t: Raw(t, f"raw_{t}") for t in TABLES}
        # The file each table was staged from, to name in errors (none for records).
        self.files: dict[str, Path] = {}

    # ---- lifecycle

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database (its tables go with it)."""
        self.engine.close()

    def expect(self, stage: str, action: str) -> None:
        """Refuse `action` unless the tables are at `stage`."""
        if self.stage != stage:
            raise UsageError.at("usage", f"cannot {action} now (tables are {self.stage})", None)

    def plan(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """A statement for this protocol and these input column types, built once."""
        signature = tuple((r.table, r.row, tuple(r.columns.items())) for r in self.raws.values())
        return self.engine.plan((signature, key), build)

    @contextlib.contextmanager
    def engine_errors(
        self, code: str, doing: str, tables: Sequence[str] = TABLES
    ) -> Iterator[None]:
        """DuckDB's error while `doing` something with `tables`, as one `UsageError` naming
        their files, and the column when one table's column alone fails to read.

        Staging reads only a Parquet file's footer: a damaged page, or a value DuckDB cannot
        decode, surfaces in the first query that reads the rows.
        """
        try:
            yield
        except duckdb.Error as exc:
            files = [str(self.files[t]) for t in tables if t in self.files]
            where = " or ".join(files) if files else "the records"
            unreadable = self._unreadable_column(tables[0]) if len(tables) == 1 else None
            if unreadable is not None:
                where += f": column '{unreadable}'"
            message = f"{where}: DuckDB cannot {doing}: {reason(exc)}"
            raise UsageError.at(code, message, None) from None

    def _unreadable_column(self, name: str) -> str | None:
        """The first column of a staged table that fails when read alone (after a failed
        read), or None."""
        raw = self.raws[name]
        if raw.kind != "VIEW":
            return None
        for c in raw.columns:
            # A hash of every value: the column's pages must all be decoded.
            read = exp.select(exp.func("bit_xor", exp.func("hash", column(c)))).from_(
                table(raw.name)
            )
            try:
                self.engine.run(read).fetchall()
            except duckdb.Error:
                return c
        return None

    # ---- staging

    def load(self, source: Path | TableFiles) -> None:
        """Stage tables from files (see `find_tables`). Raises `UsageError` for a table with
        unknown or missing columns or a file DuckDB cannot read."""
        self.expect("new", "load tables")
        files = find_tables(source) if isinstance(source, Path) else source
        allowed = {
            PATIENTS: tuple(c.name for c in self.layout.columns),
            OBSERVATIONS: OBSERVATION_COLUMNS,
            EVENTS: EVENT_COLUMNS,
        }
        paths = {PATIENTS: files.patients, OBSERVATIONS: files.observations, EVENTS: files.events}
        problems: list[str] = []
        for name in TABLES:
            path, raw = paths[name], self.raws[name]
            if path is None:
                self.engine.run(create_table(raw.name, allowed[name]))
                continue
            with file_errors(str(path)):
                raw = self.raws[name] = self._stage_file(raw, path, files.format)
            problems += [
                f"{path}: unknown column '{c}' in the {name} table{did_you_mean(c, allowed[name])}"
                for c in raw.columns
                # The row number a Parquet reader adds is no column of the file; a CSV file's
                # own 'rowid' column would hide DuckDB's row numbers, so it is unknown.
                if c not in allowed[name] and (c != raw.row or files.format == "csv")
            ]
            problems += [
                f"{path}: the {name} table has no '{c}' column"
                for c in _REQUIRED[name]
                if c not in raw.columns
            ]
        if problems:
            raise UsageError([Diagnostic("usage", p) for p in problems])
        for name, raw in self.raws.items():
            self.raws[name] = Raw(name, raw.name, self._columns(raw.name), raw.kind, raw.row)
        self.files = {t: p for t, p in paths.items() if p is not None}
        self.stage = "staged"

    def _stage_file(self, raw: Raw, path: Path, fmt: TableFormat) -> Raw:
        """Stage one table file as `raw` (columns as the file has them)."""
        literal = read_path(path)
        if fmt == "parquet":
            # Read in place; the file's row number names a bad row that has no id.
            reader = exp.Anonymous(
                this="read_parquet", expressions=[literal, named("file_row_number", exp.true())]
            )
            select = exp.select(exp.Star()).from_(reader)
            self.engine.run(exp.Create(this=table(raw.name), kind="VIEW", expression=select))
            return Raw(raw.table, raw.name, self._columns(raw.name), "VIEW", "file_row_number")
        # The header is read here and every column named as text: DuckDB then reads the file
        # as given instead of guessing its dialect (a guess fails on one ragged row without
        # naming its line; a read names the line).
        columns = exp.Struct(
            expressions=[
                exp.PropertyEQ(this=string(c), expression=string("VARCHAR"))
                for c in csv_header(path)
            ]
        )
        options = [
            named("header", exp.true()),
            named("auto_detect", exp.false()),
            named("columns", columns),
            # "" stays an empty string; only an empty cell is NULL (as convert writes).
            named("allow_quoted_nulls", exp.false()),
            named("delim", string(",")),
            named("quote", string('"')),
            named("escape", string('"')),
        ]
        reader = exp.Anonymous(this="read_csv", expressions=[literal, *options])
        # Read once, as text: validation and the query then scan memory, not the file.
        # Insertion order is kept, so rowid is the row's place in the file.
        select = exp.select(exp.Star()).from_(reader)
        create = exp.Create(this=table(raw.name), kind="TABLE", expression=select)
        self.engine.watched(f"reading {path.name}", create)
        return Raw(raw.table, raw.name, self._columns(raw.name))

    def _columns(self, name: str) -> dict[str, str]:
        """Column name → DuckDB type name of a staged table."""
        query = exp.Describe(this=exp.select(exp.Star()).from_(table(name)))
        return {str(r[0]): str(r[1]) for r in self.engine.run(query).fetchall()}

    # ---- validation

    def validate(self) -> list[RecordError]:
        """Check every cell. Returns the new errors (one `RecordError` per bad record, with
        each bad field) and builds the typed tables ``patients``, ``observations`` and
        ``events`` of the valid records, which the screening query reads."""
        self.expect("staged", "validate")
        problems: dict[str, list[Diagnostic]] = {}

        def add(record: str, field_: str | None, code: str, message: str) -> None:
            problems.setdefault(record, []).append(
                Diagnostic(code, message, record_id=record, field=field_)
            )

        for name in TABLES:
            # Every cell of the table is read here first: a file that fails, fails here.
            with self.engine_errors("unreadable", "read the table", (name,)):
                for problem in self._bad_rows(name):
                    add(*problem)
        with self.engine_errors("unreadable", "validate the tables"):
            for problem in self._id_problems():
                add(*problem)
            self._type_tables(list(problems))
        found = [RecordError(ds) for ds in problems.values()]
        self.errors.extend(found)
        self.stage = "validated"
        return found

    def _bad_rows(self, name: str) -> Iterator[Problem]:
        """One scan of a staged table for rows failing a check."""
        raw = self.raws[name]
        query, columns, checks = self.plan(
            ("bad", name), lambda: bad_rows_query(raw, self.layout, self._items)
        )
        cursor = self.engine.run(query)
        width = len(columns)
        while rows := cursor.fetchmany(FETCH):
            for row in rows:
                cells = dict(zip(columns, row[1 : width + 1], strict=True))
                rid = cells["id"]
                if rid is None:
                    where = f"{name} row {int(row[0]) + 1}"
                    yield (where, *missing_id(where))
                    continue
                for check, bad in zip(checks, row[width + 1 :], strict=True):
                    if bad:
                        yield (rid, *check.explain(cells))

    def _id_problems(self) -> Iterator[Problem]:
        """Ids on several patients rows, and long-table ids with no patients row."""
        patients = self.raws[PATIENTS]
        query = self.plan("duplicates", lambda: duplicates_query(patients))
        for record, count in self.engine.run(query).fetchall():
            yield (str(record), *duplicate_id(str(record), int(count)))
        long_tables = [self.raws[OBSERVATIONS], self.raws[EVENTS]]
        queries = self.plan("orphans", lambda: orphan_queries(patients, long_tables))
        for name, q in queries:
            for (record,) in self.engine.run(q).fetchall():
                yield (str(record), *orphan_id(name))

    def _type_tables(self, bad: list[str]) -> None:
        """Build the typed tables of the records whose ids are not in `bad`; drop the raw."""
        self.engine.run(create_table(BAD_IDS, ("id",)))
        if bad:
            self.engine.run_many(insert_rows(BAD_IDS, 1), [(r,) for r in bad])
        filtered = bool(bad)
        for name in TABLES:
            build = functools.partial(
                typed_table, self.raws[name], self.layout, self._items, filtered
            )
            # A table, not a view: the screening query reads each table several times, and
            # decoding Parquet (or casting text) once is much cheaper than at every read.
            self.engine.watched(f"typing {name}", self.plan(("typed", name, filtered), build))
        for raw in self.raws.values():
            # The raw text is no longer needed: free its memory.
            self.engine.run(exp.Drop(tables=[table(raw.name)], kind=raw.kind, exists=True))

    # ---- output

    def copy_table(self, name: str, path: Path) -> None:
        """Write one validated table (typed columns) to a Parquet or CSV file, ordered by id."""
        if self.stage not in ("validated", "screened"):
            raise UsageError.at("usage", "validate the tables before copying them", None)
        fmt = table_format(path) or "parquet"
        query = exp.select(exp.Star()).from_(table(name)).order_by(column("id"))
        options: list[tuple[str, exp.Expr]] = [("FORMAT", exp.var(fmt))]
        if fmt == "csv":
            options.append(("HEADER", exp.true()))
        with file_errors(str(path)):
            self.engine.run(copy_to(query, path, options))
