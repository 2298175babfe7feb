"""`protocode dosing plan|check`: each record's planned calendar, and compliance with it."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from protocode import cli
from protocode.cli.inputs import read
from protocode.cli.output import dumps, header, name, stamp, version
from protocode.core.errors import RecordError
from protocode.dosing import (
    ComplianceReader,
    ComplianceResult,
    DosingReader,
    PlannedDose,
    check_many,
)
from protocode.dosing import plan as planned_doses


def plan(args: argparse.Namespace) -> int:
    """Print the planned calendar of every record."""
    protocol = cli.load(args.protocol)
    results: list[tuple[str, list[PlannedDose] | RecordError]] = []
    for item in read(args.records, DosingReader(protocol)):
        if isinstance(item, RecordError):
            results.append((name(item), item))
            continue
        try:
            results.append((item.id, planned_doses(protocol, item)))
        except RecordError as exc:
            results.append((item.id, exc))
    if args.format == "json":
        print(dumps([{**_plan_json(rid, result), **stamp(protocol)} for rid, result in results]))
    else:
        print(header(protocol))
        _plan_table(results)
    return 1 if any(isinstance(result, RecordError) for _, result in results) else 0


def _plan_json(rid: str, result: list[PlannedDose] | RecordError) -> dict[str, Any]:
    if isinstance(result, RecordError):
        return {"id": rid, "errors": [d.to_json() for d in result.diagnostics]}
    return {"id": rid, "planned": [dose.to_json() for dose in result]}


def _plan_table(results: list[tuple[str, list[PlannedDose] | RecordError]]) -> None:
    table = Table()
    for column in ("id", "schedule", "dose #", "date", "from", "before", "dose", "route"):
        table.add_column(column, no_wrap=True)
    errors: list[str] = []
    for rid, result in results:
        if isinstance(result, RecordError):
            table.add_row(rid, Text("error", style="bold red"), "", "", "", "", "", "")
            errors.extend(f"{d.location}: {d.code}: {d.message}" for d in result.diagnostics)
            continue
        for dose in result:
            table.add_row(
                rid,
                dose.schedule,
                str(dose.number),
                dose.date.isoformat(),
                _when(dose.earliest),
                _when(dose.latest),
                dose.dose_text,
                dose.route,
            )
    Console(width=max(Console().width, 120)).print(table)
    for line in errors:
        print(line)


def _when(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%d %H:%M"))


def check(args: argparse.Namespace) -> int:
    """Print every record's deviations from its planned calendar, and a summary."""
    protocol = cli.load(args.protocol)
    results = list(check_many(protocol, read(args.records, protocol.built(ComplianceReader))))
    counts = Counter(
        "errors"
        if isinstance(result, RecordError)
        else "compliant"
        if result.compliant
        else "deviations"
        for result in results
    )
    summary = {
        "records": len(results),
        "compliant": counts["compliant"],
        "with_deviations": counts["deviations"],
        "with_errors": counts["errors"],
    }
    if args.format == "json":
        records = [_check_json(r) for r in results]
        print(dumps({**stamp(protocol), "records": records, "summary": summary}))
    else:
        print(header(protocol))
        _check_table(results)
        print(
            f"{len(results)} record{'' if len(results) == 1 else 's'} "
            f"({version(protocol)}): "
            f"{summary['compliant']} compliant, {summary['with_deviations']} with deviations, "
            f"{summary['with_errors']} with errors"
        )
    return 0 if summary["compliant"] == len(results) else 1


def _check_json(result: ComplianceResult | RecordError) -> dict[str, Any]:
    if isinstance(result, RecordError):
        return {"id": name(result), "errors": [d.to_json() for d in result.diagnostics]}
    return result.to_json()


def _check_table(results: list[ComplianceResult | RecordError]) -> None:
    table = Table()
    for column in ("id", "result", "schedule", "dose #", "severity"):
        table.add_column(column, no_wrap=True)
    table.add_column("deviation")
    errors: list[str] = []
    for result in results:
        if isinstance(result, RecordError):
            count = len(result.diagnostics)
            message = f"{count} error{'' if count == 1 else 's'} (below)"
            table.add_row(name(result), Text("error", style="bold red"), "", "", "", message)
            errors.extend(f"{d.location}: {d.code}: {d.message}" for d in result.diagnostics)
            continue
        if result.compliant:
            table.add_row(
                result.record_id, Text("compliant", style="green"), "", "", "", result.summary
            )
            continue
        table.add_row(result.record_id, Text("deviations", style="red"), "", "", "", result.summary)
        for d in result.deviations:
            style = "red" if d.severity == "major" else "yellow"
            table.add_row(
                result.record_id,
                Text(d.kind, style=style),
                d.schedule or "",
                "" if d.number is None else str(d.number),
                d.severity,
                d.message,
            )
    Console(width=max(Console().width, 120)).print(table)
    for line in errors:
        print(line)
