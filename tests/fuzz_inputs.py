"""Fuzz inputs: the seed files and one hypothesis strategy of mutated `Case`s per category.

A `Case` is everything one run needs: the files to write in a fresh folder (mutated seeds
plus the unchanged files they go with), special files (symlinks, FIFOs), and which oracle
runs them (`fuzz_oracle`). Cases are plain data, so they cross to the worker process and are
saved as reproducers (`fuzz_worker.save_case`).

Seeds are the files of ``protocol/NCT06125106``: the version files, the lock, the stored
cases, the example records and the FHIR examples; table files are written by
``protocode tables to-tables`` from the example patients, and the compiled JSON by
``protocode compile --to json``, when first needed.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from fuzz_mutate import (
    JSON_VALUES,
    Mutated,
    Raw,
    byte_mutation,
    deep_expression,
    deep_json,
    dumps,
    json_mutation,
    json_paths,
    yaml_mutation,
    yaml_nodes,
)

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "protocol" / "NCT06125106"


@dataclass(frozen=True, slots=True, repr=False)
class Case:
    """One fuzz input: files to write, special files to make, and the oracle that runs it."""

    category: str
    files: tuple[tuple[str, bytes], ...]
    args: tuple[str, ...] = ()
    note: str = ""
    objects: str = ""  # API records as tagged JSON (`fuzz_oracle.decode_objects`)
    links: tuple[tuple[str, str], ...] = ()  # symlink name -> target
    fifos: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # Short: hypothesis prints a failing case, and its files can be megabytes.
        files = ", ".join(f"{name} ({len(data)} bytes)" for name, data in self.files)
        special = [f"{name} -> {target}" for name, target in self.links] + [
            f"{name} (FIFO)" for name in self.fifos
        ]
        return (
            f"Case({self.category}, args={list(self.args)}, note={self.note[:200]!r}, "
            f"files=[{', '.join([files, *special])}])"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # hypothesis's pretty printer shows a dataclass field by field unless told this.
        printer.text(repr(self))


@cache
def seed(name: str) -> bytes:
    """A seed file of the NCT06125106 folder, by its path inside it."""
    return (SEED / name).read_bytes()


def _text(name: str) -> str:
    return seed(name).decode("utf-8")


def _jsonl(name: str) -> list[Any]:
    """The values of a JSONL seed; a line that is not JSON (some seeds hold such lines on
    purpose) is kept as it is."""
    out: list[Any] = []
    for line in _text(name).splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append(Raw(line))
    return out


@cache
def short_cases(name: str, keep: int = 12) -> str:
    """A stored case file cut after its first `keep` cases: the same shapes, run faster."""
    text = _text(name)
    items = [n for n in yaml_nodes(text) if n.path == ("cases", "#") and n.role == "item"]
    return text if len(items) <= keep else text[: items[keep - 1].end] + "\n"


def _mutated_text(text: str) -> st.SearchStrategy[Mutated]:
    """Byte edits or YAML-aware edits (twice as often: they reach deeper)."""
    data = text.encode()
    return st.one_of(byte_mutation(data), yaml_mutation(text), yaml_mutation(text))


# --- protocol files ---------------------------------------------------------------------------

FOLLOW_UPS = ("screen", "explain", "sql", "json", "fmt", "duckdb", "dosing", "endpoints", "diff")
"""What runs on a mutated protocol file that loads (`fuzz_oracle.protocol`)."""


@st.composite
def protocol_cases(draw: st.DrawFn) -> Case:
    """A mutated version file, checked, then run by one follow-up command."""
    number = draw(st.sampled_from((1, 2, 3, 3, 4)))
    name = f"v{number}.yaml"
    data, note = draw(_mutated_text(_text(name)))
    follow = draw(st.sampled_from(FOLLOW_UPS))
    files = [(name, data), ("patients.jsonl", seed("examples/patients.jsonl"))]
    if follow == "diff":
        files.append(("old.yaml", seed(f"v{max(number - 1, 1)}.yaml")))
    elif follow == "dosing":
        files.append(("dosing.jsonl", seed("examples/administrations.jsonl")))
    elif follow == "endpoints":
        files.append(("cohort.jsonl", seed("examples/cohort-with-errors.jsonl")))
    return Case("protocol", tuple(files), (name, follow), note)


# --- protocol folders: history and lock -------------------------------------------------------

FOLDER_OPS = (
    "lock-bytes",
    "lock-json",
    "version",
    "delete",
    "stray",
    "edit-released",
    "devzero",
    "fifo",
    "lock-dir",
)


@st.composite
def folder_cases(draw: st.DrawFn) -> Case:
    """A protocol folder (versions and lock) with one thing changed, checked and screened."""
    newest = draw(st.sampled_from((3, 4)))
    files = {f"trial/v{n}.yaml": seed(f"v{n}.yaml") for n in range(1, newest + 1)}
    files["trial/protocode.lock"] = seed("protocode.lock")
    links: list[tuple[str, str]] = []
    fifos: list[str] = []
    op = draw(st.sampled_from(FOLDER_OPS))
    versions = sorted(k for k in files if k.endswith(".yaml"))
    if op == "lock-bytes":
        files["trial/protocode.lock"], note = draw(byte_mutation(seed("protocode.lock")))
    elif op == "lock-json":
        lock, note = draw(json_mutation(json.loads(seed("protocode.lock"))))
        files["trial/protocode.lock"] = dumps(lock).encode()
    elif op == "version":
        name = draw(st.sampled_from(versions))
        files[name], note = draw(_mutated_text(files[name].decode()))
        note = f"{name}: {note}"
    elif op == "delete":
        name = draw(st.sampled_from([*versions, "trial/protocode.lock"]))
        del files[name]
        note = f"delete {name}"
    elif op == "stray":
        name = draw(st.sampled_from(("v0.yaml", f"v{newest + 2}.yaml", "v01.yaml", "v1.yml")))
        files[f"trial/{name}"] = seed("v1.yaml")
        note = f"stray {name} (a copy of v1.yaml)"
    elif op == "edit-released":
        name = draw(st.sampled_from(versions[:3]))
        files[name] = files[name].replace(b"\nprotocol:\n", b"\n# edited\nprotocol:\n", 1)
        note = f"edit released {name}"
    elif op == "devzero":
        name = draw(st.sampled_from([*versions, "trial/protocode.lock"]))
        del files[name]
        links.append((name, "/dev/zero"))
        note = f"{name} -> /dev/zero"
    elif op == "fifo":
        name = draw(st.sampled_from((f"trial/v{newest + 1}.yaml", "trial/protocode.lock")))
        files.pop(name, None)
        fifos.append(name)
        note = f"{name} is a FIFO"
    else:
        del files["trial/protocode.lock"]
        files["trial/protocode.lock/x"] = b""
        note = "protocode.lock is a folder"
    files["patients.jsonl"] = seed("examples/patients.jsonl")
    return Case(
        "folder",
        tuple(sorted(files.items())),
        ("trial",),
        note,
        links=tuple(links),
        fifos=tuple(fifos),
    )


# --- stored test cases ------------------------------------------------------------------------


@st.composite
def cases_cases(draw: st.DrawFn) -> Case:
    """A protocol folder with a mutated stored-case file, run by ``protocode test``."""
    number = draw(st.sampled_from((1, 3)))
    data, note = draw(_mutated_text(short_cases(f"cases/v{number}.yaml")))
    files = (
        (f"trial/v{number}.yaml", seed(f"v{number}.yaml")),
        (f"trial/cases/v{number}.yaml", data),
    )
    return Case("cases", files, ("trial", f"trial/cases/v{number}.yaml"), note)


# --- record files -----------------------------------------------------------------------------

RECORD_SEEDS = {
    "screen": ("patients.jsonl", "with-errors.jsonl", "fhir-equivalent.jsonl"),
    "dosing-plan": ("dosing.jsonl",),
    "dosing-check": ("administrations.jsonl",),
    "endpoints": ("cohort-with-errors.jsonl",),
}
"""Which example records each command reads."""


def _cell(value: Any) -> str:
    """A JSON value as a CSV cell (mutated records hold any value anywhere)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def records_csv(records: list[Any]) -> str:
    """JSON records as a records CSV (docs/records.md): one row per record, the first value
    of each observation, events as ``start/end`` dates, ``attest_`` columns."""
    rows: list[dict[str, str]] = []
    for record in records:
        row: dict[str, str] = {}
        for key, value in record.items():
            first = value[0] if isinstance(value, list) and value else None
            if key == "attestations" and isinstance(value, dict):
                row |= {f"attest_{k}": _cell(v) for k, v in value.items()}
            elif isinstance(first, dict) and "value" in first:
                row[key] = _cell(first["value"])
                row |= {
                    f"{key}_{part}": _cell(first[part])
                    for part in ("date", "unit")
                    if part in first
                }
            elif isinstance(value, list):
                dates = [
                    _cell(e.get("date")) + (f"/{_cell(e['end'])}" if "end" in e else "")
                    if isinstance(e, dict)
                    else _cell(e)
                    for e in value
                ]
                row[key] = ";".join(dates) or "none"
            elif isinstance(value, dict):
                row[key] = _cell(value.get("value"))
                if "unit" in value:
                    row[f"{key}_unit"] = _cell(value["unit"])
            else:
                row[key] = _cell(value)
        rows.append(row)
    header = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@st.composite
def csv_mutation(draw: st.DrawFn, text: str) -> Mutated:
    """A CSV-aware edit: a column dropped or renamed, a cell replaced, a row duplicated or
    given an extra cell, or a quoted cell over the csv module's 131,072-character limit."""
    rows = list(csv.reader(io.StringIO(text)))
    op = draw(st.sampled_from(("drop", "rename", "cell", "cell", "row", "extra", "huge")))
    column = draw(st.integers(0, len(rows[0]) - 1))
    row = draw(st.integers(1, len(rows) - 1))
    if op == "drop":
        rows = [r[:column] + r[column + 1 :] for r in rows]
    elif op == "rename":
        rows[0][column] = draw(
            st.sampled_from(("", "id", "x\ny", rows[0][column] + "_date", "attest_"))
        )
    elif op == "cell":
        rows[row][column] = draw(
            st.sampled_from(
                ("", '"', "9" * 5000, "1e400", "2024-02-30", "none;2024", "a/b/c", "true")
            )
            | st.text(max_size=12)
        )
    elif op == "row":
        rows.insert(row, list(rows[row]))
    elif op == "extra":
        rows[row].append("x")
    else:
        rows[row][column] = "x" * 131_073 + "\n" + "y"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode(), f"csv: {op} row {row} column {column}"


@st.composite
def record_values(draw: st.DrawFn, records: list[Any]) -> tuple[list[Any], str]:
    """Records with one to three JSON-aware edits (wrong types, huge numbers, deep nesting,
    missing or unknown fields)."""
    notes = []
    for _ in range(draw(st.integers(1, 3))):
        records, note = draw(json_mutation(records))
        notes.append(note)
    return records, "; ".join(notes)


@st.composite
def records_cases(draw: st.DrawFn) -> Case:
    """A mutated record file (JSONL, JSON or CSV) read by a command of the command line."""
    command = draw(st.sampled_from(tuple(RECORD_SEEDS)))
    name = draw(st.sampled_from(RECORD_SEEDS[command]))
    records = _jsonl(f"examples/{name}")
    suffix = draw(
        st.sampled_from(("jsonl", "json", "csv") if command == "screen" else ("jsonl", "json"))
    )
    edit = draw(st.sampled_from(("records", "bytes", "both", "csv")))
    notes = [name]
    if edit in ("records", "both"):
        records, note = draw(record_values(records))
        notes.append(note)
    if suffix == "jsonl":
        data = "".join(dumps(r) + "\n" for r in records).encode()
    elif suffix == "json":
        data = dumps(records).encode()
    else:
        data = records_csv([r for r in records if isinstance(r, dict)]).encode()
        if edit == "csv":
            data, note = draw(csv_mutation(data.decode()))
            notes.append(note)
    if edit in ("bytes", "both"):
        data, note = draw(byte_mutation(data))
        notes.append(note)
    files = ((f"records.{suffix}", data), ("v3.yaml", seed("v3.yaml")))
    return Case("records", files, (command, f"records.{suffix}"), " | ".join(notes))


# --- records through the API ------------------------------------------------------------------

API_VALUES = st.one_of(
    JSON_VALUES.filter(lambda v: not isinstance(v, Raw)),
    st.sampled_from(
        (
            {"$int": "9" * 5000},
            {"$int": "-" + "9" * 30},
            {"$float": "nan"},
            {"$float": "inf"},
            {"$float": "1e308"},
            {"$decimal": "1.05"},
            {"$decimal": "NaN"},
            {"$date": "2024-03-01"},
            {"$tuple": [1, 2]},
            {"$deep": [3000, "list"]},
            {"$deep": [3000, "dict"]},
        )
    ),
).map(copy.deepcopy)  # api_cases edits what it draws: never the strategy's own constants
API_KEYS = st.sampled_from(
    (
        {"$int": "9" * 5000},
        1,
        None,
        True,
        {"$float": "nan"},
        {"$tuple": ["a"]},
        {"$date": "2024-01-01"},
    )
)


@st.composite
def api_cases(draw: st.DrawFn) -> Case:
    """Records as Python objects given to the API: JSON values and what Python callers pass
    besides (non-string keys, huge ints, NaN, Decimal, dates, tuples, deep nesting)."""
    pool = _jsonl("examples/patients.jsonl")
    records = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4))
    records = json.loads(json.dumps(records))
    notes = []
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(records) - 1))
        record = records[index]
        op = draw(st.sampled_from(("value", "value", "key", "attestation-key", "not-a-dict")))
        if op == "not-a-dict":
            records[index] = draw(API_VALUES)
        elif not isinstance(record, dict) or "$map" in record:
            continue
        elif op == "value":
            # Not inside a tag put there by an earlier step: it would no longer decode.
            paths = [p for p in json_paths(record) if not any(str(s)[:1] == "$" for s in p)]
            if not paths:
                continue
            path = draw(st.sampled_from(paths))
            parent = record
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = draw(API_VALUES)
            op = "value " + "/".join(map(str, path))
        elif op == "key":
            records[index] = {"$map": [*map(list, record.items()), [draw(API_KEYS), True]]}
        else:
            record["attestations"] = {"$map": [[draw(API_KEYS), True]]}
        notes.append(f"#{index + 1} {op}")
    objects = json.dumps(records)
    files = (("v3.yaml", seed("v3.yaml")),)
    return Case("api", files, (), "; ".join(notes), objects=objects)


# --- tables -----------------------------------------------------------------------------------


@cache
def table_seed(fmt: str) -> tuple[tuple[str, bytes], ...]:
    """The example patients as tables, written by ``protocode tables to-tables``."""
    from protocode.cli import main

    with tempfile.TemporaryDirectory(prefix="fuzz-seed-") as tmp:
        out = Path(tmp) / "tables"
        argv = ["tables", "to-tables", str(SEED / "v3.yaml"), str(SEED / "examples/patients.jsonl")]
        with contextlib.redirect_stderr(io.StringIO()):
            main([*argv, str(out), "--format", fmt])
        return tuple(sorted((f"tables/{p.name}", p.read_bytes()) for p in out.iterdir()))


PARQUET_RETYPES = (
    "CAST({c} AS VARCHAR)",
    "CAST(NULL AS INTEGER)",
    "struct_pack(v := {c})",
    "[{c}]",
    "TIMESTAMP '2024-01-01 10:00:00'",
    "DATE '2024-01-01'",
    "CAST(1 AS BIGINT)",
    "1.5::DOUBLE",
    "'x'",
    "9999999999999999999999999999::DECIMAL(38, 0)",
    "true",
    "'x'::BLOB",
    "map([1], [2])",
)


def _duckdb_parquet(data: bytes, sql: str | None) -> tuple[list[str], bytes]:
    """A Parquet file's column names and, given ``sql`` (a select list over them), the
    file rewritten by DuckDB with ``SELECT <sql> FROM it``."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="fuzz-pq-") as tmp:
        src, dst = Path(tmp) / "in.parquet", Path(tmp) / "out.parquet"
        src.write_bytes(data)
        con = duckdb.connect()
        try:
            columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM '{src}'").fetchall()]
            if sql is None:
                return columns, data
            con.execute(f"COPY (SELECT {sql} FROM '{src}') TO '{dst}' (FORMAT parquet)")
        finally:
            con.close()
        return columns, dst.read_bytes()


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


@st.composite
def parquet_mutation(draw: st.DrawFn, data: bytes) -> Mutated:
    """A Parquet table damaged (truncated, bytes flipped) or rewritten with a column retyped,
    dropped or added."""
    op = draw(st.sampled_from(("truncate", "bytes", "retype", "retype", "drop", "add")))
    if op == "truncate":
        cut = draw(st.integers(0, len(data) - 1))
        return data[:cut], f"parquet: truncated at {cut}"
    if op == "bytes":
        return draw(byte_mutation(data))
    columns, _ = _duckdb_parquet(data, None)
    column = _quoted(draw(st.sampled_from(columns)))
    expr = draw(st.sampled_from(PARQUET_RETYPES)).format(c=column)
    if op == "drop" and len(columns) > 1:
        sql = f"* EXCLUDE ({column})"
    elif op == "add":
        sql = f"*, {expr} AS junk"
    else:
        sql = f"* REPLACE ({expr} AS {column})"
    return _duckdb_parquet(data, sql)[1], f"parquet: SELECT {sql}"


GLOB_DECOYS = {"tables": "", "tab*": "tab-other", "t?bles": "tXbles", "[t]ables": "tables"}
"""Table folder names, each with the name of another folder its glob pattern would match."""


@st.composite
def tables_cases(draw: st.DrawFn) -> Case:
    """Tables as ``tables to-tables`` writes them, one file damaged, screened by DuckDB or
    read back by ``tables to-records``. The folder's name may be a glob pattern, beside a
    folder it matches (item 2: only the named files may be read)."""
    fmt = draw(st.sampled_from(("csv", "parquet")))
    folder = draw(st.sampled_from(tuple(GLOB_DECOYS)))
    files = {f"{folder}/{name.split('/', 1)[1]}": data for name, data in table_seed(fmt)}
    decoy = GLOB_DECOYS[folder]
    if decoy:
        files |= {f"{decoy}/{name.split('/', 1)[1]}": data for name, data in table_seed(fmt)}
    name = draw(st.sampled_from(sorted(n for n in files if n.startswith(f"{folder}/"))))
    op = draw(st.sampled_from(("mutate", "mutate", "mutate", "delete", "keep")))
    if op == "keep":
        note = "unchanged"
    elif op == "delete":
        del files[name]
        note = f"delete {name}"
    elif fmt == "csv":
        files[name], note = draw(
            st.one_of(byte_mutation(files[name]), csv_mutation(files[name].decode()))
        )
    else:
        files[name], note = draw(parquet_mutation(files[name]))
    command = draw(st.sampled_from(("screen", "to-records")))
    files["v3.yaml"] = seed("v3.yaml")
    note = f"{name}: {note}" + (f" (beside {decoy}/)" if decoy else "")
    return Case("tables", tuple(sorted(files.items())), (command, folder), note)


# --- FHIR -------------------------------------------------------------------------------------


def _resource_paths(bundle: Any) -> list[tuple[Any, ...]]:
    """Paths inside a Bundle's entries (the Bundle's own fields are rarely interesting)."""
    return [p for p in json_paths(bundle) if p[:1] == ("entry",)]


@st.composite
def fhir_cases(draw: st.DrawFn) -> Case:
    """A FHIR Bundle, NDJSON file or mapping file mutated, screened with the mapping."""
    target = draw(st.sampled_from(("bundle", "bundle", "ndjson", "map")))
    bundle_text = _text("examples/fhir/patients.bundle.json")
    files: dict[str, bytes] = {
        "map.yaml": seed("examples/fhir/map.yaml"),
        "v3.yaml": seed("v3.yaml"),
    }
    if target == "bundle":
        op = draw(st.sampled_from(("json", "json", "deep-extension", "bytes")))
        if op == "bytes":
            data, note = draw(byte_mutation(bundle_text.encode()))
        elif op == "json":
            bundle, note = draw(json_mutation(json.loads(bundle_text), _resource_paths))
            data = dumps(bundle).encode()
        else:
            bundle = json.loads(bundle_text)
            entry = draw(st.integers(0, len(bundle["entry"]) - 1))
            depth = draw(st.sampled_from((100, 1000, 5000)))
            resource = bundle["entry"][entry]["resource"]
            resource["extension"] = [{"url": "http://x", "extension": [deep_json(depth, "dict")]}]
            data, note = dumps(bundle).encode(), f"entry[{entry}]: extension nested {depth} deep"
        files["patients.json"] = data
        source = "patients.json"
    elif target == "ndjson":
        bulk = sorted((SEED / "examples/fhir/bulk").iterdir())
        for path in bulk:
            files[f"bulk/{path.name}"] = path.read_bytes()
        name = f"bulk/{draw(st.sampled_from([p.name for p in bulk]))}"
        lines = files[name].decode().splitlines()
        if draw(st.booleans()) and lines:
            i = draw(st.integers(0, len(lines) - 1))
            value, note = draw(json_mutation(json.loads(lines[i])))
            lines[i] = dumps(value)
            files[name] = ("\n".join(lines) + "\n").encode()
        else:
            files[name], note = draw(byte_mutation(files[name]))
        note = f"{name}: {note}"
        source = "bulk"
    else:
        files["patients.json"] = bundle_text.encode()
        files["map.yaml"], note = draw(_mutated_text(_text("examples/fhir/map.yaml")))
        note = f"map.yaml: {note}"
        source = "patients.json"
    return Case("fhir", tuple(sorted(files.items())), (source, "map.yaml"), note)


# --- compiled JSON ----------------------------------------------------------------------------


@cache
def compiled_seed() -> str:
    """The seed protocol's compiled JSON (``protocode compile --to json``)."""
    import protocode

    return json.dumps(protocode.load(SEED / "v3.yaml").to_json(), indent=1)


@st.composite
def compiled_cases(draw: st.DrawFn) -> Case:
    """A compiled JSON document mutated (names, numbers, types, structure), loaded back."""
    text = compiled_seed()
    choice = draw(st.integers(0, 7))
    if choice <= 1:
        data, note = draw(byte_mutation(text.encode()))
    elif choice == 2:
        # Rules nested past check's bound, and past what the JSON parser reads (the oracle
        # skips text that is not JSON to Python): one located error, never a RecursionError.
        levels = draw(st.sampled_from((2, 80, 200, 257, 300, 528, 900, 2000)))
        doc, note = deep_expression(json.loads(text), draw(st.integers(0, 20)), levels)
        data = dumps(doc).encode()
    else:
        doc, note = draw(json_mutation(json.loads(text)))
        data = dumps(doc).encode()
    files = (("compiled.json", data), ("patients.jsonl", seed("examples/patients.jsonl")))
    return Case("compiled", files, (), note)


CATEGORIES: dict[str, Callable[[], st.SearchStrategy[Case]]] = {
    "protocol": protocol_cases,
    "folder": folder_cases,
    "cases": cases_cases,
    "records": records_cases,
    "api": api_cases,
    "tables": tables_cases,
    "fhir": fhir_cases,
    "compiled": compiled_cases,
}
"""Each category's strategy of cases."""
