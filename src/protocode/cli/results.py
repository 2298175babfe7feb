"""Screening results as `protocode screen` writes them, whichever engine screened.

The row engine hands over `Screening`s; the DuckDB engine hands over `Verdicts` rows. Both
go through the same writers, so json, jsonl and csv have one shape and one set of columns
(the summary, too, is one class).
"""

from __future__ import annotations

import abc
import csv
import itertools
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from protocode.cli.output import error, header, name, stamp, version
from protocode.core.errors import RecordError
from protocode.core.jsontext import json_line
from protocode.screening import Protocol, Screening

Result = Screening | RecordError

# Below this many records a run is over before a progress bar would help.
_PROGRESS_AFTER = 2000

_STATUS_STYLE = {
    "eligible": "green",
    "ineligible": "red",
    "indeterminate": "yellow",
    "error": "bold red",
}


@dataclass(frozen=True, slots=True)
class Verdicts:
    """One screened record as the outputs write it: its status, each criterion's verdict
    (in the protocol's order) and the data items that would decide it if indeterminate."""

    record_id: str
    status: str
    criteria: Mapping[str, str]
    missing: tuple[str, ...]

    @classmethod
    def of(cls, screening: Screening) -> Verdicts:
        """A row engine's result as a row (only an indeterminate one pays for `missing`)."""
        criteria = {c.id: c.verdict for c in screening.criteria}
        return cls(screening.record_id, screening.status, criteria, screening.missing)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of `Screening.to_json`: id, status, verdicts by id, missing."""
        return {
            "id": self.record_id,
            "status": self.status,
            "criteria": dict(self.criteria),
            "missing": list(self.missing),
        }


Row = Verdicts | RecordError


def summary_label(protocol: Protocol) -> str:
    """The protocol named in the summary: version and file (all a person reads of a json
    or csv run)."""
    return f"{version(protocol)}, {protocol.checked.doc.source.path}"


def with_progress(results: Iterator[Result]) -> Iterator[Result]:
    """`results`, with a progress bar on stderr when it is a terminal and the run is long."""
    return _progress(results) if sys.stderr.isatty() else results


def _progress(results: Iterator[Result]) -> Iterator[Result]:
    yield from itertools.islice(results, _PROGRESS_AFTER)
    following = next(results, None)
    if following is None:
        return
    bar = Progress(
        TextColumn("screening"),
        BarColumn(),
        TextColumn("{task.completed:,} records"),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )
    with bar:
        task = bar.add_task("screening", total=None, completed=_PROGRESS_AFTER + 1)
        yield following
        for result in results:
            bar.advance(task)
            yield result


class Output(abc.ABC):
    """Writes screening results in one format; `close` ends the output after the last one."""

    summary_on_stdout: ClassVar[bool] = False

    def __init__(self, out: TextIO, protocol: Protocol) -> None:
        self.out = out
        self.protocol = protocol
        self.criteria = tuple(c.id for c in protocol.criteria)
        self.stamp = stamp(protocol)

    @abc.abstractmethod
    def add(self, result: Result) -> None:
        """Write one record's result."""

    def close(self) -> None:
        """Finish the output (also after a failure midway, so what was written is valid)."""
        # Before the summary goes to stderr, so a terminal shows the two in order.
        self.out.flush()


class TableOutput(Output):
    """A table for people, the summary below it on stdout; bad records on stderr."""

    summary_on_stdout = True

    def __init__(self, out: TextIO, protocol: Protocol) -> None:
        super().__init__(out, protocol)
        self.table = Table("id", "status", "excluded by", "undecided", "would be decided by")

    def add(self, result: Result) -> None:
        """Add one record's row: what excluded it, what is undecided, what would decide."""
        if isinstance(result, RecordError):
            error(result.render())
            status = "error"
            excluded = undecided = missing = ""
        else:
            status = result.status
            excluded = ", ".join(c.id for c in result.criteria if c.blocks)
            undecided = ", ".join(c.id for c in result.criteria if c.verdict == "unknown")
            # What to collect next: only indeterminate records pay for the traced re-run.
            missing = ", ".join(result.missing)
        # Text cells: a record id like "[b]" must not be read as rich markup.
        self.table.add_row(
            Text(name(result)),
            Text(status, style=_STATUS_STYLE[status]),
            Text(excluded),
            Text(undecided),
            Text(missing),
        )

    def close(self) -> None:
        """Print the version line and the table."""
        self.out.write(header(self.protocol) + "\n")
        Console(file=self.out).print(self.table)
        super().close()


class RowOutput(Output):
    """An output for programs (json, jsonl, csv): one object or line per record, whichever
    engine screened it."""

    def add(self, result: Result) -> None:
        """Write a row engine's result."""
        self.write(result if isinstance(result, RecordError) else Verdicts.of(result))

    @abc.abstractmethod
    def write(self, row: Row) -> None:
        """Write one record's row."""

    def as_json(self, row: Row) -> dict[str, Any]:
        """One record's object for json and jsonl, the protocol's stamp last."""
        if isinstance(row, RecordError):
            found = {
                "id": name(row),
                "status": "error",
                "errors": [d.to_json() for d in row.diagnostics],
            }
        else:
            found = row.to_json()
        return {**found, **self.stamp}


class JsonOutput(RowOutput):
    """A JSON array, one record per line."""

    def __init__(self, out: TextIO, protocol: Protocol) -> None:
        super().__init__(out, protocol)
        self.first = True

    def write(self, row: Row) -> None:
        """Write one record's object."""
        # Written as it comes, so a large run does not hold every result in memory.
        self.out.write("[\n  " if self.first else ",\n  ")
        self.out.write(json.dumps(self.as_json(row), ensure_ascii=False))
        self.first = False

    def close(self) -> None:
        """Close the array."""
        self.out.write("[]\n" if self.first else "\n]\n")
        super().close()


class JsonlOutput(RowOutput):
    """JSON Lines: one object per record."""

    def write(self, row: Row) -> None:
        """Write one record's line."""
        # One line per record for any line reader (a key may hold U+2028).
        self.out.write(json_line(self.as_json(row)) + "\n")


class CsvOutput(RowOutput):
    """CSV: a column per criterion, then missing, errors and the protocol's stamp."""

    def __init__(self, out: TextIO, protocol: Protocol) -> None:
        super().__init__(out, protocol)
        self.writer = csv.writer(out)
        # The protocol columns come last, so readers of the earlier layout find theirs.
        self.writer.writerow(["id", "status", *self.criteria, "missing", "errors", *self.stamp])

    def write(self, row: Row) -> None:
        """Write one record's line."""
        if isinstance(row, RecordError):
            errors = "; ".join(f"{d.location}: {d.code}: {d.message}" for d in row.diagnostics)
            blank = [""] * len(self.criteria)
            self.writer.writerow([name(row), "error", *blank, "", errors, *self.stamp.values()])
            return
        verdicts = [row.criteria[c] for c in self.criteria]
        missing = "; ".join(row.missing)
        self.writer.writerow(
            [row.record_id, row.status, *verdicts, missing, "", *self.stamp.values()]
        )


OUTPUTS: dict[str, type[Output]] = {
    "table": TableOutput,
    "json": JsonOutput,
    "jsonl": JsonlOutput,
    "csv": CsvOutput,
}
"""The row engine's writers by --format."""

ROW_OUTPUTS: dict[str, type[RowOutput]] = {
    "json": JsonOutput,
    "jsonl": JsonlOutput,
    "csv": CsvOutput,
}
"""The writers both engines share, by --format."""
