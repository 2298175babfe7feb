"""Reading the records of a file, by its suffix: JSON, JSONL/NDJSON or CSV."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from protocode.core.errors import RecordError
from protocode.records.csvfile import read_csv
from protocode.records.jsonfile import read_json, read_jsonl
from protocode.records.model import Record
from protocode.records.problems import path_error
from protocode.records.reader import RecordReader

__all__ = ["read_records"]


def read_records(path: Path, reader: RecordReader) -> Iterator[Record | RecordError]:
    """Read and validate the records of a ``.json``, ``.jsonl``/``.ndjson`` or ``.csv`` file.

    A bad record (or a malformed JSONL line or CSV row) yields a `RecordError` and reading
    continues, so every line of the file gets a result. A file that cannot be read at all
    (missing, not UTF-8, not JSON, unknown suffix, unknown CSV columns) raises one
    `RecordError` when iteration starts.
    """
    suffix = path.suffix.lower()
    if suffix == ".json":
        yield from read_json(path, reader)
    elif suffix in (".jsonl", ".ndjson"):
        yield from read_jsonl(path, reader)
    elif suffix == ".csv":
        yield from read_csv(path, reader)
    else:
        raise path_error(
            path,
            "unknown-format",
            f"unknown record file type '{suffix}' (use .json, .jsonl or .csv)",
        )
