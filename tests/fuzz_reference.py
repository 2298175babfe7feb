"""Reference readers for the fuzz oracles, sharing no code with protocode: how many records
a file holds (JSONL lines, a JSON array at any depth, CSV rows without a field size limit,
the patients of a table folder, the Patient resources of FHIR input), and the API records
a case carries as tagged JSON.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import shutil
import sys
import tempfile
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

# --- reference readers ----------------------------------------------------------------------


def deep_loads(text: str | bytes) -> Any:
    """`json.loads` that also reads very deep nesting (in a thread with a large stack): the
    reference must know how many records a file holds even where protocode gives up."""
    result: list[Any] = []

    def parse() -> None:
        with contextlib.suppress(ValueError, RecursionError):
            result.append(json.loads(text))

    limit, size = sys.getrecursionlimit(), threading.stack_size()
    sys.setrecursionlimit(200_000)
    threading.stack_size(512 * 1024 * 1024)
    try:
        thread = threading.Thread(target=parse)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(size)
        sys.setrecursionlimit(limit)
    if not result:
        raise ValueError("not JSON")
    return result[0]


def jsonl_count(data: bytes) -> int:
    """Records in JSONL: one per line that is not blank (a line that is not UTF-8 counts)."""
    n = 0
    for line in data.split(b"\n"):
        try:
            n += bool(line.decode("utf-8").strip())
        except UnicodeDecodeError:
            n += 1
    return n


def json_count(data: bytes) -> int | None:
    """Records in a JSON file: an array's length, 1 for an object; None if not JSON."""
    try:
        doc = deep_loads(data.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return None
    return len(doc) if isinstance(doc, list) else 1 if isinstance(doc, dict) else None


def csv_count(data: bytes) -> int | None:
    """Data rows of a CSV file that are not blank, read without a field size limit."""
    text = data.decode("utf-8-sig", "surrogateescape")
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        return None
    finally:
        # Process-wide: protocode's own reader must run with the default.
        csv.field_size_limit(limit)
    return sum(1 for row in rows[1:] if any(cell.strip() for cell in row))


def record_count(path: Path) -> int | None:
    """Records in a record file, by its suffix."""
    data = path.read_bytes()
    if path.suffix == ".jsonl":
        return jsonl_count(data)
    if path.suffix == ".json":
        return json_count(data)
    return csv_count(data)


def table_count(folder: Path) -> int | None:
    """Patients in a tables folder when its ids are clean (present, distinct, and the long
    tables name no other); None when DuckDB cannot read it or an id is not clean."""
    import duckdb

    found = sorted(folder.glob("patients.*"))
    if len(found) != 1:
        return None
    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            ids = [_id(row[0]) for row in _ids(con, found[0], Path(scratch))]
            others: set[Any] = set()
            for name in ("observations", "events"):
                for path in folder.glob(f"{name}.*"):
                    others |= {_id(row[0]) for row in _ids(con, path, Path(scratch))}
    except duckdb.Error:
        return None
    finally:
        con.close()
    clean = None not in ids and len(set(ids)) == len(ids) and others <= set(ids)
    return len(ids) if clean else None


def _ids(con: Any, path: Path, scratch: Path) -> list[Any]:
    """The id column of a table file, read from a copy under a plain name: DuckDB reads a
    path as a glob pattern, and the fuzzer names folders like patterns ([t]ables)."""
    copy = scratch / f"table{path.suffix}"
    shutil.copyfile(path, copy)
    text = str(copy).replace("'", "''")
    if path.suffix == ".csv":
        table = f"read_csv('{text}', all_varchar = true, header = true)"
    else:
        table = f"read_parquet('{text}')"
    rows: list[Any] = con.execute(f"SELECT id FROM {table}").fetchall()
    return rows


def _id(value: Any) -> Any:
    # A mutated Parquet id column may hold lists or structs, which no set can hold.
    return None if value is None else value if isinstance(value, str | int) else repr(value)


def fhir_patients(path: Path) -> set[str] | None:
    """The ids of the Patient resources of a Bundle or NDJSON input; None if not readable."""
    found: set[str] = set()
    if path.is_dir():
        for file in sorted(path.glob("*.ndjson")):
            for line in file.read_bytes().split(b"\n"):
                with contextlib.suppress(ValueError, UnicodeDecodeError):
                    _patient(deep_loads(line.decode("utf-8-sig")), found)
        return found
    try:
        doc = deep_loads(path.read_bytes().decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or "resourceType" not in doc:
        return None
    entries = doc.get("entry", []) if doc["resourceType"] == "Bundle" else [{"resource": doc}]
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, dict):
            _patient(entry.get("resource"), found)
    return found


def _patient(resource: Any, found: set[str]) -> None:
    if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        if isinstance(rid, str) and rid:
            found.add(rid)


# --- API records ------------------------------------------------------------------------------


def decode_objects(text: str) -> list[Any]:
    """API records from tagged JSON: ``{"$int": "99…"}``, ``{"$float": "nan"}``,
    ``{"$decimal": …}``, ``{"$date": …}``, ``{"$tuple": […]}``, ``{"$deep": [n, kind]}``
    and ``{"$map": [[key, value], …]}`` (a dict whose keys need not be strings)."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        objects = _decode(json.loads(text))
    finally:
        sys.set_int_max_str_digits(limit)
    return list(objects) if isinstance(objects, list) else [objects]


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, arg),) = value.items()
        if tag == "$int":
            return int(arg)
        if tag == "$float":
            return float(arg)
        if tag == "$decimal":
            return Decimal(arg)
        if tag == "$date":
            return dt.date.fromisoformat(arg)
        if tag == "$tuple":
            return tuple(_decode(arg))
        if tag == "$deep":
            return _nested(*arg)
        if tag == "$map":
            return {_decode(k): _decode(v) for k, v in arg}
    return {k: _decode(v) for k, v in value.items()}


def _nested(depth: int, kind: str) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value
