"""The command line's SQL side: ``screen`` in DuckDB, and ``tables to-tables|to-records``.

`protocode.cli` owns argument parsing and the shared summary; this module decides when
DuckDB screens (`use_duckdb`), runs it with a progress bar on stderr, and converts between
records and tables (``docs/sql.md``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from protocode.core.errors import RecordError, UsageError
from protocode.records import Record
from protocode.screening import Protocol
from protocode.tables.convert import dumps, write_tables
from protocode.tables.run import (
    OUTPUT_FORMATS,
    Connection,
    OutputFormat,
    Summary,
    error_name,
    find_tables,
    is_tables,
)

ENGINES = ("auto", "row", "duckdb")

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


def screen(
    args: argparse.Namespace,
    protocol: Protocol,
    records: Callable[[], Iterable[Record | RecordError | Mapping[str, Any]]],
) -> Summary:
    """Screen in DuckDB and write the results (--output, else stdout); return the counts.

    Table inputs are read by DuckDB itself; any other input comes through `records` (the
    command line's record readers: JSON, JSONL, CSV records, FHIR) and is converted first.
    """
    fmt = output_format(args)
    if fmt == "parquet" and args.output is None:
        raise UsageError.at("usage", "Parquet output needs --output FILE", None)
    bar = _Bar(sys.stderr.isatty())
    with bar.shown(), Connection(protocol, progress=bar) as con:
        if args.records != "-" and is_tables(Path(args.records), protocol):
            con.load(find_tables(Path(args.records)))
        else:
            con.load_records(records())
        con.validate()
        summary = con.screen()
        if args.output is not None:
            con.write(args.output, fmt)
        else:
            with tempfile.TemporaryDirectory(prefix="protocode-") as tmp:
                path = Path(tmp) / f"results.{fmt}"
                con.write(path, fmt)
                _stream(path, sys.stdout)
    return summary


def _stream(path: Path, out: TextIO) -> None:
    """Copy a text file to `out` in chunks (DuckDB writes files, the CLI writes stdout)."""
    with path.open(encoding="utf-8", newline="") as f:
        shutil.copyfileobj(f, out)
    out.flush()


# --- tables to-tables | to-records --------------------------------------------------------------


def to_tables(
    protocol: Protocol,
    records: Iterable[Record | RecordError | Mapping[str, Any]],
    directory: Path,
    table_format: str,
    err: TextIO,
    *,
    used: str,
) -> int:
    """Write records as the three tables; report bad records on `err`. Exit status.

    `used` names the protocol version (``ID version N``) in the closing line.
    """
    written = write_tables(
        protocol,
        records,
        directory,
        "csv" if table_format == "csv" else "parquet",
    )
    for error in written.errors:
        err.write(error.render() + "\n")
    files = ", ".join(str(p) for p in written.paths.values())
    total = written.records + len(written.errors)
    err.write(
        f"wrote {written.records} of {total} records to {files} ({used}); "
        f"{len(written.errors)} with errors, not written\n"
    )
    return 1 if written.errors else 0


def to_records(protocol: Protocol, source: Path, out: TextIO, err: TextIO, *, used: str) -> int:
    """Write the records held in tables as JSONL (ordered by id); bad records go to `err`
    with their id and field, and a closing line naming the protocol version `used`. Exit
    status."""
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
    for error in errors:
        err.write(error.render() + "\n")
    total = count + len(errors)
    err.write(f"{total} records ({used}): {count} written, {len(errors)} with errors\n")
    return 1 if errors else 0


__all__ = [
    "ENGINES",
    "error_name",
    "output_format",
    "screen",
    "to_records",
    "to_tables",
    "use_duckdb",
]
