"""FHIR input files: a Bundle, an NDJSON file or a bulk-export folder, read into raw resources.

Nothing is validated here: each resource keeps its place (``entry[4].resource``,
``Observation.ndjson:3``) so that later problems name it, and a line that is not JSON is
kept as an `Unreadable` so that it fails its own patient, not the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from protocode.core.errors import Diagnostic, RecordError
from protocode.core.jsontext import (
    bad_byte,
    decode,
    document_start,
    file_error,
    line_syntax,
    member_at,
    syntax_error,
)
from protocode.core.jsontext import loads as json_loads


@dataclass(frozen=True, slots=True)
class Raw:
    """One resource as read: where it is, its JSON, its Bundle fullUrl."""

    where: str
    data: object
    full_url: str | None = None


def _file_error(path: Path, code: str, message: str) -> RecordError:
    return RecordError([Diagnostic(code, f"{path}: {message}")])


def _loads(text: str) -> object:
    """JSON text as read for validation; a value nested too deep becomes a `TooDeep`, which
    `validate` reports for the resource holding it."""
    # Decimals exact: FHIR decimals keep the digits written. An integer too long for int()
    # is still a number (FHIR's integers are 32-bit, so validation rejects it where one is
    # expected); failing it here would lose the whole Bundle.
    doc, _ = json_loads(text, parse_float=_decimal, parse_int=_integer)
    return doc


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        # An exponent beyond any Decimal's (1e99999999999999999999) raised out of the parser,
        # losing the whole Bundle. NaN is still a number, and validation refuses it wherever
        # a value is expected: an error of the resource that holds it.
        return Decimal("NaN")


def _integer(text: str) -> int | Decimal:
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _file_error(path, "unreadable", f"cannot read: {exc.strerror or exc}") from None


def _bundle(path: Path) -> list[Raw]:
    name = str(path)
    text = decode(name, _read_bytes(path))
    try:
        doc = _loads(text)
    except json.JSONDecodeError as exc:
        raise syntax_error(name, text, exc) from None
    if not isinstance(doc, dict) or "resourceType" not in doc:
        message = "not a FHIR resource (no 'resourceType')"
        raise file_error(name, text, "malformed", message, document_start(text))
    if doc["resourceType"] != "Bundle":
        return [Raw(path.name, doc)]
    entries = doc.get("entry", [])
    if not isinstance(entries, list):
        at = member_at(text, "entry")
        raise file_error(name, text, "malformed", "Bundle.entry is not a list", at)
    out: list[Raw] = []
    for i, entry in enumerate(entries):
        where = f"entry[{i}]"
        if not isinstance(entry, dict):
            out.append(Raw(where, entry))
            continue
        url = entry.get("fullUrl")
        out.append(
            Raw(f"{where}.resource", entry.get("resource"), url if isinstance(url, str) else None)
        )
    return out


def _ndjson(path: Path) -> list[Raw]:
    out: list[Raw] = []
    for n, line in enumerate(_read_bytes(path).split(b"\n"), 1):
        where = f"{path.name}:{n}"
        try:
            text = line.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            out.append(Raw(where, Unreadable(f"not UTF-8 text ({bad_byte(exc)})")))
            continue
        if not text.strip():
            continue
        try:
            out.append(Raw(where, _loads(text)))
        except json.JSONDecodeError as exc:
            out.append(Raw(where, Unreadable(line_syntax(exc))))
    return out


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A line that is not JSON."""

    message: str


def raw_resources(path: Path) -> list[Raw]:
    """The resources of a Bundle, an NDJSON file or a folder of them, in file order."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".ndjson")
        if not files:
            raise _file_error(path, "unreadable", "no .ndjson files in this folder")
        return [raw for f in files for raw in _ndjson(f)]
    if not path.exists():
        raise _file_error(path, "unreadable", "no such file or folder")
    if path.suffix.lower() in (".ndjson", ".jsonl"):
        return _ndjson(path)
    return _bundle(path)


def is_fhir_input(path: Path) -> bool:
    """Whether `path` holds FHIR: a folder of ``.ndjson`` files, a resource or Bundle in
    ``.json``, or NDJSON whose first object has a ``resourceType`` (records never do)."""
    if path.is_dir():
        return any(p.suffix.lower() == ".ndjson" for p in path.iterdir())
    suffix = path.suffix.lower()
    try:
        with path.open("rb") as handle:
            if suffix == ".json":
                head = handle.read(1 << 16).removeprefix(b"\xef\xbb\xbf")
                return bool(re.match(rb'\s*\{\s*"resourceType"\s*:', head))
            if suffix not in (".ndjson", ".jsonl"):
                return False
            # The whole first line: one resource may be far longer than any fixed head.
            lines = (line.removeprefix(b"\xef\xbb\xbf") for line in handle)
            first = next((line for line in lines if line.strip()), b"")
    except OSError:
        return False
    try:
        # Nested too deep for the parser is still an answer, not an error.
        doc, _ = json_loads(first.decode("utf-8"))
    except ValueError:  # not JSON, or not UTF-8
        return False
    return isinstance(doc, dict) and "resourceType" in doc
