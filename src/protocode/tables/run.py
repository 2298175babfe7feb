"""Screen tables in DuckDB: records in, the compiled query over them, results out.

A `Connection` is a `protocode.tables.database.Database` (tables staged from files and
validated) that also

- stages records (`load_records`), converted as `protocode.tables.convert` does;
- **screens** (`screen`): the compiled query (`protocode.backends.sql.compile`) runs once
  over the typed tables of the valid records into a results table; the counts per status
  and the attrition per criterion are one aggregate over it (`protocode.tables.output`);
- **writes** (`write`): DuckDB's own COPY streams results and errors, ordered by id, to CSV,
  Parquet, JSONL or a JSON array; or gives them as rows (`rows`), or the valid records back
  as record dicts (`records`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlglot import exp

from protocode.backends.sql.build import column, create_table, insert_rows, string, table
from protocode.backends.sql.compile import compile_query
from protocode.core.errors import RecordError, UsageError
from protocode.core.jsontext import escape_line_breaks
from protocode.records import Record, iter_records, unique_records
from protocode.screening import Protocol, Screening
from protocode.screening.summary import Summary
from protocode.tables.convert import RowWriter, record_dict, write_csv
from protocode.tables.database import FETCH, Database
from protocode.tables.engine import Progress, copy_to, file_errors
from protocode.tables.files import (
    EVENTS,
    OBSERVATIONS,
    PATIENTS,
    TableFiles,
)
from protocode.tables.output import (
    COPY_OPTIONS,
    ERRORS,
    RESULTS,
    OutputFormat,
    output_query,
    summary_queries,
)

__all__ = [
    "Connection",
    "error_name",
    "read_tables",
]


class Connection(Database):
    """An in-process DuckDB database screening tables for one protocol (see the module doc
    and `Database`)."""

    def __init__(
        self,
        protocol: Protocol,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        super().__init__(protocol, threads=threads, memory_limit=memory_limit, progress=progress)
        self.criteria = tuple(c.id for c in protocol.criteria)
        self._fallback: list[Screening] = []

    def __enter__(self) -> Connection:
        return self

    def load_records(self, records: Iterable[Record | RecordError | Mapping[str, Any]]) -> None:
        """Stage records (dicts or `Record`s), converted as `protocode.tables.convert` does.

        A bad record becomes an error of the run. A record whose numbers the layout cannot
        hold exactly (a value given in another unit whose conversion does not terminate, such
        as 6 months in weeks) is screened by the row engine instead, so every record still
        gets the row engine's answer.
        """
        writer = RowWriter(self.protocol)
        held: list[Record] = []

        def representable() -> Iterator[Record | RecordError]:
            for item in unique_records(records, self.protocol.reader):
                if isinstance(item, Record):
                    try:
                        writer.rows(item)
                    except RecordError:
                        held.append(item)
                        continue
                yield item

        with tempfile.TemporaryDirectory(prefix="protocode-") as tmp:
            written = write_csv(self.protocol, representable(), Path(tmp))
            self.errors.extend(written.errors)
            paths = written.paths
            self.load(TableFiles(paths[PATIENTS], paths[OBSERVATIONS], paths[EVENTS], "csv"))
        # Read into memory: no file is left to name.
        self.files = {}
        self._fallback = [self.protocol.screen(r) for r in held]

    # ---- screening

    def screen(self) -> Summary:
        """Run the screening query into the results table; return the run's counts."""
        self.expect("validated", "screen")

        def build() -> str:
            query = compile_query(self.protocol.checked)
            return exp.Create(this=table(RESULTS), kind="TABLE", expression=query).sql("duckdb")

        with self.engine_errors("duckdb", "screen the tables"):
            self.engine.watched("screening", self.plan("screen", build))
            if self._fallback:
                rows = [
                    (s.record_id, *(c.verdict for c in s.criteria), s.status)
                    for s in self._fallback
                ]
                self.engine.run_many(insert_rows(RESULTS, 2 + len(self.criteria)), rows)
            self._errors_table()
        self.stage = "screened"
        return self.summary()

    def _errors_table(self) -> None:
        self.engine.run(create_table(ERRORS, ("id", "errors", "errors_json")))
        if not self.errors:
            return
        rows = [
            (
                error_name(e),
                "; ".join(f"{d.location}: {d.code}: {d.message}" for d in e.diagnostics),
                json.dumps([d.to_json() for d in e.diagnostics], ensure_ascii=False),
            )
            for e in self.errors
        ]
        self.engine.run_many(insert_rows(ERRORS, 3), rows)

    def summary(self) -> Summary:
        """Counts per status (errors included) and the attrition per criterion."""
        summary = Summary.of(self.criteria)
        by_status, attrition = self.plan("summary", lambda: summary_queries(self.protocol.criteria))
        with self.engine_errors("duckdb", "count the results"):
            statuses = self.engine.run(by_status).fetchall()
            row = self.engine.run(attrition).fetchone() if attrition else None
        for name, count in statuses:
            summary.statuses[str(name)] = int(count)
        summary.statuses["error"] = len(self.errors)
        if row is not None:
            for i, c in enumerate(self.criteria):
                summary.excluded[c] = int(row[2 * i] or 0)
                summary.undecided[c] = int(row[2 * i + 1] or 0)
        return summary

    # ---- output

    def _output(self, fmt: OutputFormat) -> exp.Select:
        built: exp.Select = self.plan(("output", fmt), lambda: output_query(self.criteria, fmt))
        return built

    def write(self, path: Path, fmt: OutputFormat) -> None:
        """Write results and errors (ordered by id) to `path` with DuckDB's COPY.

        csv/parquet: ``id, status``, one column per criterion, ``errors`` (text); jsonl (one
        object per line) and json (an array): ``id, status, criteria {id: verdict},
        errors [diagnostics]``. Both end with ``protocol, version``: the registry id and
        version that screened the row (a folder's version in force changes on release).
        """
        self.expect("screened", "write results")
        meta = self.protocol.checked.doc.metadata
        query = self._output(fmt).select(
            exp.alias_(string(meta.registry_id), "protocol", quoted=True),
            exp.alias_(string(meta.version), "version", quoted=True),
        )
        with file_errors(str(path)):
            self.engine.watched("writing", copy_to(query, path, COPY_OPTIONS[fmt]))
        if fmt == "jsonl":
            # DuckDB leaves U+2028, U+2029 and U+0085 raw in strings: lines for JSON, not
            # for every line reader (str.splitlines), as json_line writes them.
            escape_line_breaks(path)

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """Results then errors as ``(id, status, verdict…)`` tuples ordered by id."""
        self.expect("screened", "read results")
        with self.engine_errors("duckdb", "read the results"):
            cursor = self.engine.run(self._output("csv"))
            while batch := cursor.fetchmany(FETCH):
                yield from batch

    # ---- tables → records

    def records(self) -> Iterator[dict[str, Any]]:
        """The valid records as dicts in the JSON record form, ordered by id (see
        `protocode.tables.convert.record_dict`); validation errors are in `errors`."""
        if self.stage not in ("validated", "screened"):
            raise UsageError.at("usage", "validate the tables before reading them back", None)

        def stream(name: str, order: Sequence[str]) -> Iterator[dict[str, Any]]:
            cursor = self.con.cursor()
            query = exp.select(exp.Star()).from_(table(name)).order_by(*map(column, order))
            result = cursor.execute(query.sql("duckdb"))
            names = [d[0] for d in result.description]
            while batch := result.fetchmany(FETCH):
                for row in batch:
                    yield dict(zip(names, row, strict=True))
            cursor.close()

        with self.engine_errors("duckdb", "read the tables back"):
            observations = _Peek(
                stream(OBSERVATIONS, ("id", "item", "date", "value", "low", "high"))
            )
            events = _Peek(stream(EVENTS, ("id", "item", "date", "end")))
            for patient in stream(PATIENTS, ("id",)):
                rid = patient["id"]
                yield record_dict(self.layout, patient, observations.take(rid), events.take(rid))


class _Peek:
    """A row stream ordered by id, taken one id at a time."""

    def __init__(self, rows: Iterator[dict[str, Any]]) -> None:
        self.rows = rows
        self.head = next(rows, None)

    def take(self, rid: str) -> list[dict[str, Any]]:
        # Every long-table id has a patients row (orphans are errors), and both streams are
        # ordered by DuckDB the same way, so an id's rows are next whenever it has any.
        out = []
        while self.head is not None and self.head["id"] == rid:
            out.append(self.head)
            self.head = next(self.rows, None)
        return out


def error_name(error: RecordError) -> str:
    """The record a `RecordError` is about (its id, or its place such as ``line 7``)."""
    return error.diagnostics[0].record_id or "?"


def read_tables(
    protocol: Protocol, source: Path | TableFiles, progress: Progress | None = None
) -> Iterator[Record | RecordError]:
    """The records held in tables, validated by DuckDB and then by the row engine's reader:
    first the tables' errors, then the valid records ordered by id."""
    with Connection(protocol, progress=progress) as con:
        con.load(source)
        yield from con.validate()
        yield from iter_records(con.records(), protocol.reader)
