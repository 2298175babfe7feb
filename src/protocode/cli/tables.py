"""The command line's SQL side: ``screen`` in DuckDB, and ``tables to-tables|to-records``.

This module decides when DuckDB screens (`use_duckdb`), runs it with a progress bar on
stderr, writes its results as the row engine does (`protocode.cli.results`; Parquet by
DuckDB itself), and converts between records and tables (``docs/sql.md``).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from protocode import cli
from protocode.cli.inputs import records
from protocode.cli.output import error, output_file, version
from protocode.cli.results import ROW_OUTPUTS, Row, Verdicts, summary_label
from protocode.core.errors import RecordError, UsageError
from protocode.records import Record
from protocode.screening import Protocol
from protocode.tables.convert import dumps, write_tables
from protocode.tables.files import find_tables, is_tables
from protocode.tables.output import OUTPUT_FORMATS, OutputFormat
from protocode.tables.run import Connection, error_name

_SUFFIXES: dict[str, OutputFormat] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}


def use_duckdb(args: argparse.Namespace, protocol: Protocol) -> bool:
    """Whether ``screen`` runs in DuckDB: asked for, or (auto) table inputs (a folder of
    tables, Parquet, a ``patients`` CSV table) or Parquet output."""
    engine: str = args.engine
    if engine != "auto":
        return engine == "duckdb"
    if args.format == "parquet" or (args.output is not None and args.output.suffix == ".parquet"):
        return True
    return args.records != "-" and is_tables(Path(args.records), protocol)


def output_format(args: argparse.Namespace) -> OutputFormat:
    """The DuckDB engine's output format: --format, else by --output's suffix, else csv."""
    fmt: str | None = args.format
    if fmt is None:
        return _SUFFIXES.get(args.output.suffix.lower(), "csv") if args.output else "csv"
    if fmt not in OUTPUT_FORMATS:
        raise UsageError.at(
            "usage",
            f"the duckdb engine writes {', '.join(OUTPUT_FORMATS)}, not --format {fmt} "
            "(or use --engine row)",
            None,
        )
    return fmt


class _Bar:
    """A progress bar on stderr (only on a terminal), one task per stage."""

    def __init__(self, enabled: bool) -> None:
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        if enabled:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),
                transient=True,
            )

    def __call__(self, stage: str, fraction: float | None) -> None:
        if self.progress is None:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=1.0)
        self.progress.update(self.tasks[stage], completed=fraction or 0.0)

    @contextmanager
    def shown(self) -> Iterator[None]:
        if self.progress is None:
            yield
            return
        with self.progress:
            yield


def screen(args: argparse.Namespace, protocol: Protocol) -> int:
    """Screen in DuckDB and write the results (--output, else stdout), then the row
    engine's summary on stderr; the exit status.

    Table inputs are read by DuckDB itself; any other input comes through the command
    line's record readers (JSON, JSONL, CSV records, FHIR) and is converted first.
    """
    fmt = output_format(args)
    if fmt == "parquet" and args.output is None:
        raise UsageError.at("usage", "Parquet output needs --output FILE", None)
    bar = _Bar(sys.stderr.isatty())
    tables = args.records != "-" and is_tables(Path(args.records), protocol)
    # Stdin cannot be read twice: its records are kept for the `missing` of the output.
    kept: dict[str, Record] | None = None if tables or args.records != "-" else {}
    with bar.shown(), Connection(protocol, progress=bar) as con:
        if tables:
            con.load(find_tables(Path(args.records)))
        else:
            con.load_records(_kept(records(args, protocol.reader), kept))
        con.validate()
        counts = con.screen()
        if fmt == "parquet":
            con.write(args.output, fmt)
        else:
            missing = _missing(args, protocol, con, tables, kept)
            with output_file(args.output) as out:
                output = ROW_OUTPUTS[fmt](out, protocol)
                try:
                    for row in _rows(con, missing):
                        output.write(row)
                finally:
                    output.close()
    error(counts.to_text(summary_label(protocol)))
    return 1 if counts.statuses["error"] else 0


def _kept(
    items: Iterable[Record | RecordError], kept: dict[str, Record] | None
) -> Iterator[Record | RecordError]:
    """`items`, each `Record` also put in `kept` (unless None) by its id."""
    for item in items:
        if kept is not None and isinstance(item, Record):
            kept.setdefault(item.id, item)
        yield item


def _rows(con: Connection, missing: Mapping[str, tuple[str, ...]]) -> Iterator[Row]:
    """DuckDB's results and errors, ordered by id, as the writers' rows."""
    errors: defaultdict[str, deque[RecordError]] = defaultdict(deque)
    for bad in con.errors:
        errors[error_name(bad)].append(bad)
    criteria = con.criteria
    for record_id, status, *rest in con.rows():
        if status == "error":
            yield errors[record_id].popleft()
            continue
        verdicts = dict(zip(criteria, rest[: len(criteria)], strict=True))
        yield Verdicts(record_id, status, verdicts, missing.get(record_id, ()))


def _missing(
    args: argparse.Namespace,
    protocol: Protocol,
    con: Connection,
    tables: bool,
    kept: Mapping[str, Record] | None,
) -> dict[str, tuple[str, ...]]:
    """The data items that would decide each indeterminate record, as the row engine
    lists them: SQL gives verdicts, not the traced explanation, so the row engine explains
    those records (read back from the tables, the input read again, or stdin's kept)."""
    wanted = {row[0] for row in con.rows() if row[1] == "indeterminate"}
    if not wanted:
        return {}
    found: Iterable[Record | Mapping[str, Any]]
    if tables:
        found = (r for r in con.records() if r.get("id") in wanted)
    elif kept is not None:
        found = (kept[i] for i in wanted if i in kept)
    else:
        found = (
            r for r in records(args, protocol.reader) if isinstance(r, Record) and r.id in wanted
        )
    missing: dict[str, tuple[str, ...]] = {}
    for record in found:
        result = protocol.screen(record)
        missing[result.record_id] = result.missing
    return missing


# --- tables to-tables | to-records --------------------------------------------------------------


def to_tables(args: argparse.Namespace) -> int:
    """Write records as the SQL layout's three tables; report bad records on stderr with a
    closing line naming the protocol version. Exit status."""
    protocol = cli.load(args.protocol)
    written = write_tables(
        protocol,
        records(args, protocol.reader),
        args.outdir,
        "csv" if args.format == "csv" else "parquet",
    )
    for bad in written.errors:
        error(bad.render())
    files = ", ".join(str(p) for p in written.paths.values())
    total = written.records + len(written.errors)
    error(
        f"wrote {written.records} of {total} records to {files} ({version(protocol)}); "
        f"{len(written.errors)} with errors, not written"
    )
    return 1 if written.errors else 0


def to_records(args: argparse.Namespace) -> int:
    """Write the records held in tables as JSONL (ordered by id, to --output or stdout); bad
    records go to stderr with their id and field, and a closing line naming the protocol
    version. Exit status."""
    protocol = cli.load(args.protocol)
    with output_file(args.output) as out:
        return _to_records(protocol, args.tables, out, sys.stderr, used=version(protocol))


def _to_records(protocol: Protocol, source: Path, out: TextIO, err: TextIO, *, used: str) -> int:
    """Write the valid records of the tables at `source` to `out`, the rest to `err`."""
    count = 0
    errors: list[RecordError] = []
    with Connection(protocol) as con:
        con.load(find_tables(source))
        errors += con.validate()
        for record in con.records():
            try:
                # The row engine must read back what it is given: checked, not assumed.
                protocol.reader.parse(record)
            except RecordError as bad:
                errors.append(bad)
                continue
            out.write(dumps(record) + "\n")
            count += 1
    out.flush()
    for problem in errors:
        err.write(problem.render() + "\n")
    total = count + len(errors)
    err.write(f"{total} records ({used}): {count} written, {len(errors)} with errors\n")
    return 1 if errors else 0
