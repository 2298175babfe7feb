"""`protocode screen` (the row engine; DuckDB in `protocode.cli.tables`) and `explain`."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterable
from pathlib import Path

from protocode import cli
from protocode.cli.inputs import records
from protocode.cli.main import CommandLineError
from protocode.cli.output import dumps, error, header, name, output_file, stamp
from protocode.cli.results import OUTPUTS, summary_label, with_progress
from protocode.core.errors import RecordError, UsageError
from protocode.records import Record
from protocode.screening.summary import Summary

# The suffixes of table files (`protocode.tables.files.table_format`, which this module does
# not import: it would load sqlglot on every screen).
_TABLE_SUFFIXES = (".csv", ".parquet")


def screen(args: argparse.Namespace) -> int:
    """Screen every record of a file and report each, then a summary."""
    protocol = cli.load(args.protocol)
    if _duckdb_asked(args):
        # Imported only here: DuckDB and sqlglot are slow to load and the row engine needs
        # neither.
        from protocode.cli import tables  # noqa: PLC0415

        if tables.use_duckdb(args, protocol):
            return tables.screen(args, protocol)
    if args.format == "parquet":
        raise UsageError.at("usage", "--format parquet needs the duckdb engine", None)
    args.format = args.format or "table"
    results = with_progress(protocol.screen_many(records(args, protocol.reader)))
    # A file that cannot be read at all fails on the first item: fail before any output.
    first = next(results, None)
    summary = Summary.of([c.id for c in protocol.criteria])
    label = summary_label(protocol)
    output_class = OUTPUTS[args.format]
    with output_file(args.output) as out:
        output = output_class(out, protocol)
        try:
            for result in itertools.chain([] if first is None else [first], results):
                summary.add(result)
                output.add(result)
        finally:
            output.close()
        if output_class.summary_on_stdout:
            out.write(summary.to_text(label) + "\n")
    if not output_class.summary_on_stdout:
        error(summary.to_text(label))
    return 1 if summary.statuses["error"] else 0


def _duckdb_asked(args: argparse.Namespace) -> bool:
    """Whether DuckDB may screen: asked for, or (auto) Parquet output or an input that may
    be tables. Only a folder, a .csv or a .parquet file can hold tables: answering for any
    other input here spares the row engine loading DuckDB; `tables.use_duckdb` decides the
    rest."""
    if args.engine != "auto":
        return bool(args.engine == "duckdb")
    if args.format == "parquet" or (args.output is not None and args.output.suffix == ".parquet"):
        return True
    source = Path(args.records)
    return args.records != "-" and (source.is_dir() or source.suffix.lower() in _TABLE_SUFFIXES)


def explain(args: argparse.Namespace) -> int:
    """Explain one record: the file's only one, or the one with --id."""
    protocol = cli.load(args.protocol)
    record = _pick(records(args, protocol.reader), args.record_id, args.records)
    explanation = protocol.explain(record)
    if args.format == "text":
        print(f"{header(protocol)}\n{explanation.to_text()}")
    else:
        print(dumps({**explanation.to_json(), **stamp(protocol)}))
    return 0


def _pick(results: Iterable[Record | RecordError], wanted: str | None, source: str) -> Record:
    """The record with id `wanted`, or the only record; a bad one raises its `RecordError`."""
    first: Record | RecordError | None = None
    ids: list[str] = []
    for result in results:
        if wanted is not None and name(result) == wanted:
            return _valid(result)
        first = first or result
        ids.append(name(result))
    shown = ", ".join(ids[:10]) + (f", … ({len(ids)} in all)" if len(ids) > 10 else "")
    if wanted is not None:
        raise UsageError.at(
            "usage", f"{source}: no record with id '{wanted}' (records: {shown or 'none'})", None
        )
    if first is None:
        raise UsageError.at("usage", f"{source} holds 0 records; choose one with --id", None)
    if len(ids) > 1:
        # The file is fine; the command line does not say which record: a usage error.
        raise CommandLineError(
            f"{source} holds {len(ids)} records; choose one with --id (records: {shown})"
        )
    return _valid(first)


def _valid(result: Record | RecordError) -> Record:
    if isinstance(result, RecordError):
        raise result
    return result
