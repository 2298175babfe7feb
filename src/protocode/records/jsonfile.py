"""Reading records from JSON (one object or an array) and JSONL files.

Every number is read exactly. A key repeated in an object, or a value nested deeper than
`MAX_DEPTH`, is an error of the record holding it; a malformed JSONL line is an error of its
line only, and reading goes on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from protocode.core.errors import Diagnostic, RecordError
from protocode.core.jsontext import (
    MAX_DEPTH,
    TooDeep,
    bad_byte,
    decode,
    document_start,
    file_error,
    line_syntax,
    short_path,
    syntax_error,
)
from protocode.core.jsontext import loads as json_loads
from protocode.records.model import Record
from protocode.records.numbers import Unreadable, exact_decimal, exact_int
from protocode.records.problems import Problem, line_error, unreadable
from protocode.records.reader import RecordReader

__all__ = ["read_json", "read_jsonl", "read_jsonl_lines"]


class _Duplicated(dict[str, Any]):
    """A JSON object that repeats keys: holds the last value of each, and which were repeated."""

    __slots__ = ("duplicates",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        seen: set[str] = set()
        repeated: dict[str, None] = {}
        for key, _ in pairs:
            if key in seen:
                repeated[key] = None
            seen.add(key)
        self.duplicates: tuple[str, ...] = tuple(repeated)


def _json_loads(text: str) -> tuple[Any, bool]:
    """Parse JSON with every number exact: decimals as Fraction, NaN/Infinity unreadable.

    Also says whether the text needs a second look (`_structure_problems`): an object
    repeated a key (such objects are `_Duplicated`), or a value nested deeper than
    `MAX_DEPTH` was not read (it is a `TooDeep`).
    """
    duplicated = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicated
        obj = dict(items)
        if len(obj) == len(items):
            return obj
        duplicated = True
        return _Duplicated(items)

    hooks: dict[str, Any] = {
        "parse_float": exact_decimal,
        "parse_constant": Unreadable,
        "object_pairs_hook": pairs,
    }
    try:
        doc, pruned = json_loads(text, **hooks)
    except json.JSONDecodeError:
        raise
    except ValueError:
        # An integer longer than int() converts. Read again with such integers unreadable,
        # an error of their record only (a hook on every integer would slow every file).
        doc, pruned = json_loads(text, parse_int=exact_int, **hooks)
    return doc, duplicated or pruned


def _structure_problems(obj: object) -> list[Problem]:
    """Every repeated key and every value nested too deep to read in a record as parsed."""
    out: list[Problem] = []
    # Iterative: a record may nest as deep as `MAX_DEPTH`.
    stack: list[tuple[str, object]] = [("", obj)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            prefix = f"{path}." if path else ""
            if isinstance(value, _Duplicated):
                out.extend(
                    (prefix + key, "duplicate-field", f"duplicate field '{key}'")
                    for key in value.duplicates
                )
            stack.extend((prefix + key, v) for key, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
        elif isinstance(value, TooDeep):
            message = f"nested deeper than {MAX_DEPTH} levels: not read"
            out.append((short_path(path), "too-deep", message))
    return out


def _parse_json_record(
    reader: RecordReader, obj: object, where: str, suspect: bool
) -> Record | RecordError:
    """`reader.parse` of a record read from JSON text; `suspect` says that the text repeated
    a key or nested too deep somewhere (`_json_loads`), an error of the record it is in."""
    try:
        record = reader.parse(obj, where=where)
    except RecordError as exc:
        if not suspect:
            return exc
        found: Record | RecordError = exc
        diagnostics = list(exc.diagnostics)
        shown = diagnostics[0].record_id
    else:
        if not suspect:
            return record
        found, diagnostics, shown = record, [], record.id
    problems = _structure_problems(obj)
    if not problems:
        return found
    diagnostics.extend(
        Diagnostic(code, message, record_id=shown, field=path or None)
        for path, code, message in problems
    )
    return RecordError(diagnostics)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise unreadable(path, exc) from None


def read_json(path: Path, reader: RecordReader) -> Iterator[Record | RecordError]:
    """The records of a ``.json`` file: one record object, or an array of them."""
    text = decode(str(path), _read_bytes(path))
    try:
        doc, duplicated = _json_loads(text)
    except json.JSONDecodeError as exc:
        raise syntax_error(str(path), text, exc) from None
    except ValueError as exc:
        raise file_error(
            str(path), text, "malformed", f"not valid JSON: {exc}", document_start(text)
        ) from None
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        message = "expected a record object or an array of records"
        raise file_error(str(path), text, "malformed", message, document_start(text))
    for n, obj in enumerate(doc, 1):
        yield _parse_json_record(reader, obj, f"#{n}", duplicated)


def read_jsonl(path: Path, reader: RecordReader) -> Iterator[Record | RecordError]:
    """The records of a ``.jsonl`` file, one per non-blank line."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise unreadable(path, exc) from None
    with handle:
        yield from read_jsonl_lines(handle, reader)


def read_jsonl_lines(
    lines: Iterable[bytes], reader: RecordReader
) -> Iterator[Record | RecordError]:
    """Records from JSONL lines (a file or a pipe), one result per non-blank line.

    A bad line yields a `RecordError` named ``line N`` and reading goes on.
    """
    for n, raw_line in enumerate(lines, 1):
        where = f"line {n}"
        try:
            line = raw_line.decode("utf-8-sig" if n == 1 else "utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            yield line_error(where, f"not UTF-8 text ({bad_byte(exc)})")
            continue
        if not line.strip():
            continue
        try:
            obj, duplicated = _json_loads(line)
        except json.JSONDecodeError as exc:
            yield line_error(where, line_syntax(exc))
            continue
        except ValueError as exc:
            yield line_error(where, f"not valid JSON: {exc}")
            continue
        yield _parse_json_record(reader, obj, where, duplicated)
