"""`protocode endpoints derive|estimate`: per-patient endpoint rows, and cohort estimates."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from protocode import cli
from protocode.cli.inputs import read
from protocode.cli.output import dumps, error, error_lines, header, output_file, stamp, version
from protocode.core.errors import RecordError, UsageError
from protocode.endpoints import EndpointRow, endpoints
from protocode.endpoints import derive as derive_rows
from protocode.endpoints.export import write_rows
from protocode.screening import Protocol

if TYPE_CHECKING:
    from protocode.endpoints.estimate import Estimate


def _derived(args: argparse.Namespace) -> tuple[Protocol, list[EndpointRow], list[RecordError]]:
    """Every row of every record that can be derived, and each other record's error."""
    protocol = cli.load(args.protocol)
    if not endpoints(protocol):
        message = (
            f"{protocol.registry_id} version {protocol.version} defines no endpoints "
            "(name a version file that has an 'endpoints' section)"
        )
        raise UsageError.at("usage", message, None)
    rows: list[EndpointRow] = []
    errors: list[RecordError] = []
    for item in read(args.records, protocol.reader):
        if isinstance(item, RecordError):
            errors.append(item)
            continue
        try:
            rows.extend(derive_rows(protocol, item))
        except RecordError as exc:
            errors.append(exc)
    return protocol, rows, errors


def _patients_line(protocol: Protocol, rows: list[EndpointRow], errors: list[RecordError]) -> str:
    derived = len({r.id for r in rows})
    total = derived + len(errors)
    return (
        f"{total} record{'' if total == 1 else 's'} ({version(protocol)}): {derived} derived, "
        f"{len(errors)} with errors"
    )


def derive(args: argparse.Namespace) -> int:
    """Print or write one row per record and endpoint; report records with errors."""
    protocol, rows, errors = _derived(args)
    if args.format == "table":
        print(header(protocol))
        table = Table()
        for column in ("id", "endpoint", "day", "status", "date", "what happened"):
            table.add_column(column, no_wrap=column != "what happened")
        for row in rows:
            style = {"event": "red", "competing": "yellow", "responder": "green"}.get(row.status)
            table.add_row(
                row.id,
                row.endpoint,
                str(row.time),
                Text(row.status, style=style or ""),
                row.date.isoformat(),
                row.description,
            )
        Console(width=max(Console().width, 120)).print(table)
        for line in error_lines(errors):
            print(line)
        print(_patients_line(protocol, rows, errors))
        return 1 if errors else 0
    with output_file(args.output) as out:
        write_rows(rows, out, args.format, adam=args.adam, protocol=stamp(protocol))
    for line in error_lines(errors):
        error(line)
    error(_patients_line(protocol, rows, errors))
    return 1 if errors else 0


def estimate(args: argparse.Namespace) -> int:
    """Print each endpoint's estimate over the cohort; draw the curves with --plot."""
    formats = [f.strip() for f in args.plot_format.split(",") if f.strip()]
    # Imported here: the estimators load lifelines, scipy, pandas and matplotlib (seconds),
    # which deriving rows does not need.
    from protocode.endpoints.estimate import estimate as estimate_all  # noqa: PLC0415
    from protocode.endpoints.estimate import plot  # noqa: PLC0415

    protocol, rows, errors = _derived(args)
    estimates = estimate_all(protocol, rows)
    paths: list[Path] = []
    if args.plot is not None:
        try:
            paths = plot(estimates, args.plot, formats)
        except ValueError as exc:
            raise UsageError.at("usage", str(exc), None) from None
    if args.format == "json":
        print(
            dumps(
                {
                    **stamp(protocol),
                    "estimates": [e.to_json() for e in estimates],
                    "records": len({r.id for r in rows}) + len(errors),
                    "errors": [d.to_json() for e in errors for d in e.diagnostics],
                    "plots": [str(p) for p in paths],
                }
            )
        )
        return 1 if errors else 0
    print(header(protocol))
    _estimates_table(estimates, {e.id: e.horizon.text for e in endpoints(protocol)})
    for line in error_lines(errors):
        print(line)
    left_out = " (left out of the estimates)" if errors else ""
    print(_patients_line(protocol, rows, errors) + left_out)
    for path in paths:
        print(f"wrote {path}")
    return 1 if errors else 0


def _estimates_table(estimates: list[Estimate], horizons: dict[str, str]) -> None:
    table = Table()
    columns = ("endpoint", "estimate", "at", "value", "95 % CI", "patients", "events", "competing")
    for column in columns:
        table.add_column(column, no_wrap=True, justify="left" if column == "endpoint" else "right")
    notes: list[str] = []
    for e in estimates:
        events = str(e.events)
        if e.method == "proportion":
            evaluable = e.patients - e.censored
            events = f"{e.events} of {evaluable} evaluable"
        table.add_row(
            e.endpoint,
            e.quantity,
            horizons.get(e.endpoint, ""),
            f"{100 * e.value:.1f} %",
            f"{100 * e.lower:.1f} - {100 * e.upper:.1f} %",
            str(e.patients),
            events,
            "" if e.method != "aalen-johansen" else str(e.competing),
        )
        if e.note:
            notes.append(f"{e.endpoint}: {e.note}")
    Console(width=max(Console().width, 120)).print(table)
    for note in notes:
        print(note)
