"""JSON text of any nesting depth, read without losing the rest of the document.

Python's JSON parser recurses once per nesting level, so a single value nested a thousand
deep raises `RecursionError` and loses the whole document: a JSON array of records or a FHIR
Bundle of many patients. `loads` reads such text with every value nested deeper than
`MAX_DEPTH` replaced by a `TooDeep` marker, and `too_deep` finds the markers (and any value
nested deeper than the limit) without recursing, so the one record or resource that holds
them is reported and the others are read as usual.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

from protocode.core.errors import Diagnostic, LoadError, RecordError
from protocode.core.files import decode_source
from protocode.core.source import Source

__all__ = [
    "MAX_DEPTH",
    "TooDeep",
    "bad_byte",
    "decode",
    "document_start",
    "escape_line_breaks",
    "file_error",
    "json_line",
    "line_syntax",
    "loads",
    "member_at",
    "short_path",
    "syntax_error",
    "too_deep",
]

MAX_DEPTH: Final = 100
"""The deepest nesting read: far beyond any record (about 5 levels) or FHIR resource (about
20), and far below what the parser and the FHIR validators recurse through."""


@dataclass(frozen=True, slots=True)
class TooDeep:
    """Stands for a value nested deeper than `MAX_DEPTH` that was not read."""


_TOO_DEEP: Final = TooDeep()

# A JSON string (escapes included) or one bracket; nothing else moves the nesting depth.
_TOKEN: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def loads(text: str, **hooks: Any) -> tuple[Any, bool]:
    """`json.loads(text, **hooks)`, and whether values nested too deep were replaced.

    Text that the parser can read is read as is, at full speed; values nested deeper than
    `MAX_DEPTH` are then found by `too_deep`. Only text too deep for the parser itself is
    pruned first: each value that opens deeper than the limit becomes a `TooDeep`.
    Raises `json.JSONDecodeError` for text that is not JSON, at its place in `text`.
    """
    try:
        return json.loads(text, **hooks), False
    except RecursionError:
        pass
    # A string no input can hold by chance marks the pruned values in the parsed document.
    marker = f"\0too-deep-{secrets.token_hex(16)}"
    pruned, moves = _pruned(text, json.dumps(marker))
    try:
        doc = json.loads(pruned, **hooks)
    except json.JSONDecodeError as exc:
        # Where the pruned text went wrong, in the text as given.
        at, was, copied = moves[bisect.bisect_right(moves, (exc.pos, len(text), True)) - 1]
        raise json.JSONDecodeError(exc.msg, text, was + (exc.pos - at if copied else 0)) from None
    return _unmark(doc, marker), True


def _pruned(text: str, replacement: str) -> tuple[str, list[tuple[int, int, bool]]]:
    """`text` with each value that opens deeper than `MAX_DEPTH` replaced by `replacement`,
    and where each piece of the result starts, in it and in `text`, and whether it is a copy
    of `text` (else a replacement): (new offset, old offset, copied)."""
    parts: list[str] = []
    moves: list[tuple[int, int, bool]] = []
    size = 0  # of the result so far
    depth = 0
    kept = 0  # where the text still to copy starts

    def add(piece: str, old: int, copied: bool = True) -> None:
        nonlocal size
        moves.append((size, old, copied))
        parts.append(piece)
        size += len(piece)

    for token in _TOKEN.finditer(text):
        bracket = token.group()
        if bracket[0] == '"':
            continue
        if bracket in "[{":
            depth += 1
            if depth == MAX_DEPTH + 1:
                add(text[kept : token.start()], kept)
                kept = token.start()
        else:
            if depth == MAX_DEPTH + 1:
                add(replacement, kept, copied=False)
                kept = token.end()
            depth -= 1
    if depth > MAX_DEPTH:
        # Unclosed: the parser reports the text as cut short at its end.
        add(replacement, kept, copied=False)
        kept = len(text)
    add(text[kept:], kept)
    return "".join(parts), moves


def _unmark(doc: Any, marker: str) -> Any:
    """`doc` with each `marker` string value replaced by `TooDeep` (in place, no recursion)."""
    if doc == marker:
        return _TOO_DEEP
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if value == marker:
                    node[key] = _TOO_DEEP
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                if value == marker:
                    node[i] = _TOO_DEEP
                elif isinstance(value, dict | list):
                    stack.append(value)
    return doc


# The way to a value: (parent's trail, key or index), None at the top. A tuple per value costs
# less than a path string per value; the path is spelled out only for the value found.
_Trail: TypeAlias = tuple[Any, str | int] | None


def too_deep(doc: object, limit: int = MAX_DEPTH) -> str | None:
    """The path (``entry[3].resource.extension[0]``) of the first value in `doc` that is a
    `TooDeep` or a list or object nested deeper than `limit` levels, or None.

    Walked without recursion, so it is safe on any document `loads` returns or a caller
    builds.
    """
    stack: list[tuple[object, int, _Trail]] = [(doc, 1, None)]
    while stack:
        node, level, trail = stack.pop()
        if isinstance(node, TooDeep) or (level > limit and isinstance(node, dict | list)):
            return _path(trail)
        if isinstance(node, dict):
            stack.extend((v, level + 1, (trail, _key(k))) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((v, level + 1, (trail, i)) for i, v in reversed(list(enumerate(node))))
    return None


def _key(key: object) -> str:
    # A document built in Python may have keys of any type; str() of some (a huge int) raises.
    return key if isinstance(key, str) else f"<{type(key).__name__}>"


def _path(trail: _Trail) -> str:
    keys: list[str | int] = []
    while trail is not None:
        trail, key = trail
        keys.append(key)
    path = ""
    for key in reversed(keys):
        if isinstance(key, int):
            path += f"[{key}]"
        else:
            path += f".{key}" if path else key
    return short_path(path)


def short_path(path: str) -> str:
    """A field path as shown in a diagnostic: a hundred levels spelled out help no one, so a
    long one keeps only its start and its end."""
    return path if len(path) <= 120 else f"{path[:60]}…{path[-40:]}"


# Characters that `json.dumps(..., ensure_ascii=False)` leaves raw in a string but that
# `str.splitlines` and other line readers take for line breaks.
_LINE_BREAKS: Final = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def json_line(value: object) -> str:
    """`value` as one line of JSON Lines (no line end): readable text, not ASCII escapes,
    except for the characters any line reader could split the line at."""
    return json.dumps(value, ensure_ascii=False).translate(_LINE_BREAKS)


# The same characters in UTF-8, and their escapes, for files other programs write.
_LINE_BREAK_BYTES: Final = tuple((chr(c).encode(), e.encode()) for c, e in _LINE_BREAKS.items())


def escape_line_breaks(path: Path) -> None:
    """Rewrite a JSON Lines file another program wrote (DuckDB's COPY leaves them raw) with
    the characters `json_line` escapes escaped, so that it too is one line per record.

    In valid JSON these characters occur only inside strings, where the escape stands for
    the same character. A file without them is left untouched (read once, not rewritten),
    and so is one that is not a regular file (a pipe cannot be read back).
    """
    if not path.is_file():
        return
    with path.open("rb") as f:
        # Binary lines end at b"\n" only, so each line is one record as DuckDB wrote it.
        if not any(raw in line for line in f for raw, _ in _LINE_BREAK_BYTES):
            return
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with path.open("rb") as f, os.fdopen(fd, "wb") as out:
            for line in f:
                text = line
                for raw, escaped in _LINE_BREAK_BYTES:
                    text = text.replace(raw, escaped)
                out.write(text)
        shutil.copymode(path, temp)  # mkstemp's file is private to its owner
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


# --- files of JSON text that are bad as a whole -------------------------------------------

_BOM: Final = b"\xef\xbb\xbf"


def decode(path: str, data: bytes) -> str:
    """The UTF-8 text of the JSON file `path` holding `data`, a byte-order mark dropped.

    Raises `RecordError` (code ``unreadable``) at the line and column of the first byte that
    is not UTF-8, located as the YAML readers locate it (`core.files.decode_source`).
    """
    # Editors show no column for the mark, so positions are counted without it.
    data = data.removeprefix(_BOM)
    try:
        # Decoded directly: a `Source` of a large file costs a pass in Python per character,
        # paid only when there is an error to place.
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return decode_source(path, data).text
    except LoadError as exc:
        raise RecordError(
            dataclasses.replace(d, code="unreadable") for d in exc.diagnostics
        ) from None


def file_error(path: str, text: str, code: str, message: str, at: int = 0) -> RecordError:
    """A `RecordError` at offset `at` of the file `path` holding `text`: one character, or the
    empty end of the file (an empty file is still located, at 1:1)."""
    source = Source(path, text)
    return RecordError([Diagnostic(code, message, source.span(at, min(at + 1, len(text))))])


def syntax_error(path: str, text: str, exc: json.JSONDecodeError) -> RecordError:
    """The error of a file whose text `exc` found not to be JSON, at the place it names."""
    return file_error(path, text, "malformed", f"not valid JSON: {exc.msg}", exc.pos)


def line_syntax(exc: json.JSONDecodeError) -> str:
    """The message for one line of NDJSON that is not JSON: the line is named by its reader,
    the column here (the parser's own ``line 1`` would contradict the line's number)."""
    return f"not valid JSON: {exc.msg} (column {exc.colno})"


def bad_byte(exc: UnicodeDecodeError) -> str:
    """Where one line of bytes stops being UTF-8: ``byte 0xe9 at column 4``.

    The column counts characters, as `Span` columns do; a ``utf-8-sig`` decode has already
    dropped the byte-order mark from ``exc.object``.
    """
    data = exc.object
    # Everything before the bad byte is valid, so it decodes.
    column = len(data[: exc.start].decode("utf-8")) + 1
    return f"byte 0x{data[exc.start]:02x} at column {column}"


def document_start(text: str) -> int:
    """The offset of the first character of the JSON document in `text` (0 if it is blank)."""
    start = len(text) - len(text.lstrip(" \t\r\n"))
    return start if start < len(text) else 0


_COLON: Final = re.compile(r"[ \t\r\n]*:[ \t\r\n]*")


def member_at(text: str, key: str) -> int:
    """The offset in the JSON `text` of the value of member `key` of the top-level object
    (its last one, which the parser keeps), or `document_start` when there is none.

    Scanned, not parsed with positions: the text is known to be JSON, so a string at depth 1
    followed by a colon is a key.
    """
    found: int | None = None
    depth = 0
    for token in _TOKEN.finditer(text):
        piece = token.group()
        if piece[0] == '"':
            if depth == 1 and (colon := _COLON.match(text, token.end())) and _same(piece, key):
                found = colon.end()
        elif piece in "[{":
            depth += 1
        else:
            depth -= 1
    return document_start(text) if found is None else found


def _same(quoted: str, key: str) -> bool:
    try:
        return bool(json.loads(quoted) == key)
    except ValueError:  # an escape the parser refused cannot be a key it read
        return False
