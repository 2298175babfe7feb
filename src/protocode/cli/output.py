"""What every command writes alike: messages, JSON, the version line, output files.

Every output names the protocol version it used (`header`, `stamp`): for a folder that is
the version in force, which changes when a version is released.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from protocode.core.errors import RecordError
from protocode.records import Record

if TYPE_CHECKING:
    from protocode.screening import Protocol, Screening


def error(text: str) -> None:
    """Write one message to stderr."""
    print(text, file=sys.stderr)


def dumps(data: object) -> str:
    """JSON as the commands print it: indented, non-ASCII kept."""
    return json.dumps(data, indent=2, ensure_ascii=False)


def version(protocol: Protocol) -> str:
    """The protocol version a command used, as every output names it (``ID version N``)."""
    return f"{protocol.registry_id} version {protocol.version}"


def header(protocol: Protocol) -> str:
    """The first line of a table output: the version used and its file."""
    return f"protocol {version(protocol)} ({protocol.checked.doc.source.path})"


def stamp(protocol: Protocol) -> dict[str, str]:
    """The protocol id and version as JSON fields or CSV columns (the names `test` uses)."""
    return {"protocol": protocol.registry_id, "version": protocol.version}


def name(result: Record | Screening | RecordError) -> str:
    """A record's id; for a bad record, its id if it has one, else its place (`line 7`)."""
    if isinstance(result, RecordError):
        return result.diagnostics[0].record_id or "?"
    return result.id if isinstance(result, Record) else result.record_id


def error_lines(errors: list[RecordError]) -> list[str]:
    """Every diagnostic of bad records, one ``location: code: message`` line each."""
    return [f"{d.location}: {d.code}: {d.message}" for e in errors for d in e.diagnostics]


@contextlib.contextmanager
def output_file(path: Path | None) -> Iterator[TextIO]:
    """The named output file (created, UTF-8), else stdout, which stays open."""
    if path is None:
        yield sys.stdout
        return
    # newline="" lets the csv module write its own line endings.
    with path.open("w", encoding="utf-8", newline="") as file:
        yield file
