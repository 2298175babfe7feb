"""Fuzz oracles: run a `Case` through protocode's real entry points and judge what happened.

Each category has one oracle that writes nothing itself: the case's files are already in
`root`. It calls the command line in-process (`protocode.cli.main`) and the Python API
(`protocode.load`, the record readers, `screen_many`, `explain`, `load_json`, FHIR input),
and a `Judge` turns what it sees into `Failure`s:

- ``traceback``: an exception that is not a `ProtocodeError`, or a command line that ended
  other than cleanly (exit status 0 or 1);
- ``count``: a batch whose results plus errors differ from the records in (records lost
  or invented), counted with a reference reader that shares no code with protocode;
- ``unlocated``: an error whose diagnostic has neither a span nor a record id or field
  (usage errors excepted: they are about the command line, not about a file's content).

Hangs and crashes of the process are judged by the worker that runs the oracle
(`fuzz_worker`).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import protocode
from fuzz_inputs import Case
from fuzz_reference import (
    decode_objects,
    fhir_patients,
    jsonl_count,
    record_count,
    table_count,
)
from protocode.cases import load_cases, run_cases
from protocode.cli import main
from protocode.core.errors import Diagnostic, ProtocodeError
from protocode.pipeline import load_json
from protocode.records import read_records
from protocode.records.fhir import FhirMapping, load_map, read_fhir

KINDS = ("traceback", "hang", "crash", "count", "unlocated")
"""The kinds of failure, in the order reports list them."""

SEED_PATIENTS = 14  # records in examples/patients.jsonl


@dataclass(frozen=True, slots=True)
class Failure:
    """One property a case broke. `signature` groups failures with one cause."""

    kind: str
    signature: str
    detail: str


def where_raised(exc: BaseException) -> str:
    """The innermost protocode frame of a traceback (``records.py:_parse_date``), else the
    innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/protocode/" in f.filename] or frames
    if not ours:
        return "?"
    frame = ours[-1]
    return f"{frame.filename.rsplit('/protocode/', 1)[-1]}:{frame.name}"


@dataclass(frozen=True, slots=True)
class Batch:
    """What a reader yielded before it stopped, and the error that stopped it, if any."""

    results: list[Any]
    error: ProtocodeError | None


class Judge:
    """Runs entry points for one case and collects the properties they break."""

    def __init__(self, case: Case, root: Path) -> None:
        self.case = case
        self.root = root
        self.failures: list[Failure] = []

    def fail(self, kind: str, signature: str, detail: str) -> None:
        """Record one failure (signatures are per category)."""
        self.failures.append(Failure(kind, f"{self.case.category}: {signature}", detail))

    def _traceback(self, what: str, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(exc))
        self.fail("traceback", f"{type(exc).__name__} at {where_raised(exc)}", f"{what}\n{text}")

    # --- entry points ---

    def cli(self, *argv: str | Path) -> tuple[int, str, str]:
        """Exit status, stdout and stderr of the command line run in-process; -1 when it
        raised (a traceback failure is recorded)."""
        args = [str(a) for a in argv]
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                status = main(args)
        except Exception as exc:
            self._traceback(f"protocode {' '.join(args)}", exc)
            return -1, out.getvalue(), err.getvalue()
        if status not in (0, 1):
            text = err.getvalue()
            self.fail(
                "traceback",
                _crash_signature(status, text),
                f"protocode {' '.join(args)}\nexit {status}\n{text[-4000:]}",
            )
        return status, out.getvalue(), err.getvalue()

    def api(self, what: str, call: Callable[[], Any], *, locate: bool = True) -> Any:
        """`call()`'s value; None when it raised (a `ProtocodeError` must be located unless
        `locate` is false, any other exception is a traceback)."""
        try:
            return call()
        except ProtocodeError as exc:
            if locate:
                self.located(exc.diagnostics, what)
        except Exception as exc:
            self._traceback(what, exc)
        return None

    def drain(self, what: str, results: Callable[[], Iterable[Any]]) -> Batch | None:
        """Everything a reader yields, and the error that stopped it; None on a traceback."""
        got: list[Any] = []
        try:
            for item in results():
                got.append(item)
        except ProtocodeError as exc:
            self.located(exc.diagnostics, what)
            return Batch(got, exc)
        except Exception as exc:
            self._traceback(what, exc)
            return None
        for item in got:
            if isinstance(item, ProtocodeError):
                self.located(item.diagnostics, what)
        return Batch(got, None)

    # --- properties ---

    def located(self, diagnostics: Iterable[Diagnostic], what: str) -> None:
        """Every error diagnostic has a span, or a record id or field (see `_needs_place`)."""
        for d in diagnostics:
            if (
                d.span is None
                and d.record_id is None
                and d.field is None
                and _needs_place(d.code, d.message)
            ):
                self.fail(
                    "unlocated", f"{what}: {d.code}: {_gist(d.message)}", f"{what}: {d.render()}"
                )

    def located_json(self, diagnostics: Iterable[Any], what: str) -> None:
        """`located` for diagnostics printed as JSON (``--format json``)."""
        for d in diagnostics:
            if not isinstance(d, dict) or d.get("severity") == "warning":
                continue
            located = {"line", "record", "field"} & d.keys()
            if not located and _needs_place(str(d.get("code")), str(d.get("message"))):
                code, message = d.get("code"), str(d.get("message"))
                self.fail("unlocated", f"{what}: {code}: {_gist(message)}", f"{what}: {d}")

    def count(self, what: str, got: int, expected: int | None) -> None:
        """A batch reports each record once: results plus errors equal the records in."""
        if expected is not None and got != expected:
            way = "lost" if got < expected else "invented"
            self.fail("count", f"{way}: {what}", f"{what}: {expected} records in, {got} out")

    def batch(
        self, what: str, batch: Batch | None, expected: int | None, whole_file_ok: bool
    ) -> None:
        """Judge a drained reader: an error that stops it midway loses the rest; an error
        before the first record is the file's own, acceptable when `whole_file_ok`."""
        if batch is None:
            return
        if batch.error is not None:
            if batch.results:
                self.fail("count", f"lost: {what} stopped midway", f"{what}: {batch.error}")
            elif not whole_file_ok:
                self.count(what, 0, expected)
            return
        self.count(what, len(batch.results), expected)


def _needs_place(code: str, message: str) -> bool:
    """Whether an error needs a place in a file or record. Usage errors are about the command
    line, and a file that could not be read at all (missing, not a regular file, too large:
    "cannot read PATH") has no line to point at; its message names it."""
    return code != "usage" and re.search(r"\bcannot read\b", message) is None


def _crash_signature(status: int, stderr: str) -> str:
    """A crashed command's signature, like an exception's: its type and innermost protocode
    frame, read from the traceback the CLI prints when PROTOCODE_DEBUG is set."""
    kind = re.search(r"internal error \((\w+)", stderr)
    frames = re.findall(r'File "([^"]*/protocode/[^"]+)", line \d+, in (\S+)', stderr)
    if kind is None:
        first = stderr.strip().splitlines()[:1]
        return f"exit {status}: {_shape(first[0]) if first else ''}"
    where = f"{frames[-1][0].rsplit('/protocode/', 1)[-1]}:{frames[-1][1]}" if frames else "?"
    return f"{kind[1]} at {where}"


def _gist(message: str) -> str:
    """The kind of problem a message names: its shape up to the first colon or parenthesis
    (after the path of the file it names), so one cause is one signature."""
    shape = _shape(message).removeprefix("…: ")
    return re.split(r"[:(]|, got ", shape, maxsplit=1)[0].strip()


def _shape(message: str) -> str:
    """A message with its numbers, quoted parts and paths blanked, to group alike ones."""
    message = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)
    message = re.sub(r"/[^\s:]+", "…", message)
    return re.sub(r"\d+", "N", message)[:120]


# --- oracles ----------------------------------------------------------------------------------


def _jsonl_lines(judge: Judge, what: str, out: str) -> list[Any]:
    """The objects of JSONL output, their errors judged for a location."""
    objects = [json.loads(line) for line in out.splitlines() if line.strip()]
    for obj in objects:
        judge.located_json(obj.get("errors") or [], what)
    return objects


def _screen_cli(judge: Judge, what: str, expected: int | None, *argv: str | Path) -> None:
    """``screen … --format jsonl``: one line per record (or none, for a file-level error)."""
    status, out, _ = judge.cli("screen", *argv, "--format", "jsonl")
    if status in (0, 1):
        lines = _jsonl_lines(judge, what, out)
        if lines or status == 0:
            judge.count(what, len(lines), expected)


def _seed_protocol(root: Path) -> protocode.Protocol:
    return protocode.load(root / "v3.yaml")


def protocol(case: Case, root: Path, judge: Judge) -> None:
    """A mutated version file: ``check``, `load`, then one follow-up command."""
    name, follow = case.args
    path = root / name
    status, out, _ = judge.cli("check", "--format", "json", path)
    if status in (0, 1):
        with contextlib.suppress(ValueError):
            judge.located_json(json.loads(out), "check")
    loaded = judge.api("load", lambda: protocode.load(path))
    if loaded is None:
        return
    patients = root / "patients.jsonl"
    if follow == "screen":
        _screen_cli(judge, "screen", SEED_PATIENTS, path, patients)
        batch = judge.drain(
            "screen_many", lambda: loaded.screen_many(read_records(patients, loaded.reader))
        )
        judge.batch("screen_many", batch, SEED_PATIENTS, whole_file_ok=False)
    elif follow == "explain":
        for line in patients.read_text().splitlines():
            judge.api("explain", lambda line=line: loaded.explain(json.loads(line)))
        judge.cli("explain", path, patients, "--id", "ZJU-013")
    elif follow == "sql":
        judge.cli("compile", path, "--to", "sql")
        judge.api("to_sql", lambda: loaded.to_sql("postgres"))
    elif follow == "json":
        status, out, _ = judge.cli("compile", path, "--to", "json")
        if status == 0:
            back = judge.api("load_json", lambda: load_json(json.loads(out)))
            if back is not None:
                batch = judge.drain(
                    "screen_many", lambda: back.screen_many(read_records(patients, back.reader))
                )
                judge.batch("load_json screen_many", batch, SEED_PATIENTS, whole_file_ok=False)
    elif follow == "fmt":
        judge.cli("fmt", "--check", path)
    elif follow == "duckdb":
        _screen_cli(judge, "screen duckdb", SEED_PATIENTS, path, patients, "--engine", "duckdb")
    elif follow == "dosing":
        status, out, _ = judge.cli(
            "dosing", "check", path, root / "dosing.jsonl", "--format", "json"
        )
        if status in (0, 1) and out.strip():
            results = json.loads(out)["records"]
            for result in results:
                judge.located_json(result.get("errors", []), "dosing check")
            judge.count(
                "dosing check", len(results), jsonl_count((root / "dosing.jsonl").read_bytes())
            )
    elif follow == "endpoints":
        status, _, err = judge.cli(
            "endpoints", "derive", path, root / "cohort.jsonl", "--format", "jsonl"
        )
        _summary_count(
            judge, "endpoints derive", err, jsonl_count((root / "cohort.jsonl").read_bytes())
        )
    else:
        judge.cli("diff", root / "old.yaml", path, "--format", "json")


def _summary_count(judge: Judge, what: str, err: str, expected: int) -> None:
    """Count check against a summary line ``N records: a derived, b with errors``."""
    match = re.search(r"^(\d+) records?: (\d+) \w+, (\d+) with errors", err, re.MULTILINE)
    if match:
        total, good, bad = map(int, match.groups())
        judge.count(what, total, expected)
        judge.count(f"{what} (summary parts)", good + bad, total)


def folder(case: Case, root: Path, judge: Judge) -> None:
    """A protocol folder with its history changed: ``check``, `load`, ``screen``."""
    trial = root / case.args[0]
    patients = root / "patients.jsonl"
    status, out, _ = judge.cli("check", "--format", "json", trial)
    if status in (0, 1):
        with contextlib.suppress(ValueError):
            judge.located_json(json.loads(out), "check")
    loaded = judge.api("load folder", lambda: protocode.load(trial))
    if loaded is not None:
        batch = judge.drain(
            "screen_many", lambda: loaded.screen_many(read_records(patients, loaded.reader))
        )
        judge.batch("screen_many", batch, SEED_PATIENTS, whole_file_ok=False)
    _screen_cli(judge, "screen folder", SEED_PATIENTS, trial, patients)


def cases(case: Case, root: Path, judge: Judge) -> None:
    """A mutated stored-case file: ``protocode test``, then `load_cases` and `run_cases`."""
    trial, case_file = root / case.args[0], root / case.args[1]
    judge.cli("test", trial, "--format", "json")
    suite = judge.api("load_cases", lambda: load_cases(case_file))
    if suite is not None:
        version = trial / case_file.name
        judge.api("run_cases", lambda: run_cases(protocode.load(version), suite))


def records(case: Case, root: Path, judge: Judge) -> None:
    """A mutated record file read by ``screen``, ``dosing`` or ``endpoints``."""
    command, name = case.args
    path, seed_protocol = root / name, root / "v3.yaml"
    expected = record_count(path)
    csv_file = path.suffix == ".csv"
    if command == "screen":
        loaded = _seed_protocol(root)
        batch = judge.drain(
            "read_records", lambda: loaded.screen_many(read_records(path, loaded.reader))
        )
        # A CSV header the layout cannot read is one error for the file; so is a .json file
        # that is not JSON (the reference then knows no count either).
        judge.batch("read_records", batch, expected, whole_file_ok=csv_file or expected is None)
        _screen_cli(judge, "screen", expected, seed_protocol, path)
    elif command == "dosing-plan":
        status, out, _ = judge.cli("dosing", "plan", seed_protocol, path, "--format", "json")
        if status in (0, 1) and out.strip():
            results = json.loads(out)
            for result in results:
                judge.located_json(result.get("errors", []), "dosing plan")
            judge.count("dosing plan", len(results), expected)
    elif command == "dosing-check":
        status, out, _ = judge.cli("dosing", "check", seed_protocol, path, "--format", "json")
        if status in (0, 1) and out.strip():
            results = json.loads(out)["records"]
            for result in results:
                judge.located_json(result.get("errors", []), "dosing check")
            judge.count("dosing check", len(results), expected)
    else:
        _, _, err = judge.cli("endpoints", "derive", seed_protocol, path, "--format", "jsonl")
        if expected is not None:
            _summary_count(judge, "endpoints derive", err, expected)


def api(case: Case, root: Path, judge: Judge) -> None:
    """Records as Python objects: `screen_many` reports each; `screen` and `explain` raise
    only `RecordError`."""
    objects = decode_objects(case.objects)
    loaded = _seed_protocol(root)
    batch = judge.drain("screen_many", lambda: loaded.screen_many(objects))
    judge.batch("screen_many", batch, len(objects), whole_file_ok=False)
    # One record at a time the caller holds the record an error is about; where a location
    # is needed, in a batch, screen_many above checks it.
    for obj in objects:
        judge.api("screen", lambda obj=obj: loaded.screen(obj), locate=False)
        judge.api("explain", lambda obj=obj: loaded.explain(obj), locate=False)


def tables(case: Case, root: Path, judge: Judge) -> None:
    """Damaged tables: ``screen`` (DuckDB) or ``tables to-records``."""
    command, name = case.args
    folder_path, seed_protocol = root / name, root / "v3.yaml"
    expected = table_count(folder_path)
    if command == "screen":
        _screen_cli(judge, "screen tables", expected, seed_protocol, folder_path)
        return
    status, out, err = judge.cli("tables", "to-records", seed_protocol, folder_path)
    match = re.search(r"^(\d+) records: (\d+) written, (\d+) with errors", err, re.MULTILINE)
    if status in (0, 1) and match:
        total, written, bad = map(int, match.groups())
        judge.count("to-records", total, expected)
        judge.count("to-records (written)", len(out.splitlines()), written)
        judge.count("to-records (summary parts)", written + bad, total)


def fhir(case: Case, root: Path, judge: Judge) -> None:
    """Mutated FHIR input: ``screen --fhir-map`` and `read_fhir`; every Patient is reported,
    no result is made up."""
    source, map_name = (root / a for a in case.args)
    seed_protocol = root / "v3.yaml"
    patients = fhir_patients(source)
    status, out, _ = judge.cli(
        "screen", seed_protocol, source, "--fhir-map", map_name, "--format", "jsonl"
    )
    lines = _jsonl_lines(judge, "screen fhir", out) if status in (0, 1) else []
    if lines or status == 0:
        # Without lines the input as a whole was refused (a bad mapping file, say); whether
        # that lost patients is judged on read_fhir below.
        _fhir_counts(judge, "screen fhir", lines, patients)
    loaded = _seed_protocol(root)
    file = judge.api("load_map", lambda: load_map(map_name))
    if file is None:
        return
    mapping = judge.api(
        "FhirMapping.build",
        lambda: FhirMapping.build(loaded.reader.items.values(), loaded.reader.attestations, file),
    )
    if mapping is not None:
        batch = judge.drain("read_fhir", lambda: read_fhir(source, loaded.reader, mapping))
        if batch is not None and batch.error is None:
            _fhir_counts(judge, "read_fhir", [_fhir_json(r) for r in batch.results], patients)
        elif batch is not None and patients:
            judge.fail(
                "count", "lost: read_fhir stopped", f"{len(patients)} patients, none reported"
            )


def _fhir_json(result: Any) -> dict[str, Any]:
    if isinstance(result, ProtocodeError):
        return {"id": result.diagnostics[0].record_id, "status": "error"}
    return {"id": result.id, "status": "record"}


def _fhir_counts(judge: Judge, what: str, results: list[Any], patients: set[str] | None) -> None:
    if patients is None:
        return
    if len(results) < len(patients):
        judge.count(what, len(results), len(patients))
    made_up = {r.get("id") for r in results if r.get("status") != "error"} - patients
    if made_up:
        judge.fail("count", f"invented: {what}", f"{what}: results for {sorted(made_up)[:5]}")


def compiled(case: Case, root: Path, judge: Judge) -> None:
    """A mutated compiled JSON document: `load_json`, then screening the seed patients."""
    try:
        doc = json.loads((root / "compiled.json").read_bytes())
    except (ValueError, RecursionError):
        return  # load_json takes parsed JSON: text that is not JSON is the caller's to read
    loaded = judge.api("load_json", lambda: load_json(doc))
    if loaded is not None:
        patients = root / "patients.jsonl"
        batch = judge.drain(
            "screen_many", lambda: loaded.screen_many(read_records(patients, loaded.reader))
        )
        judge.batch("screen_many", batch, SEED_PATIENTS, whole_file_ok=False)


ORACLES: dict[str, Callable[[Case, Path, Judge], None]] = {
    "protocol": protocol,
    "folder": folder,
    "cases": cases,
    "records": records,
    "api": api,
    "tables": tables,
    "fhir": fhir,
    "compiled": compiled,
}


def judge_case(case: Case, root: Path) -> list[Failure]:
    """Run `case` (its files already written under `root`) and return what it broke."""
    judge = Judge(case, root)
    try:
        ORACLES[case.category](case, root, judge)
    except Exception as exc:
        # Harness code runs between the entry points (json.loads of their output, …): a
        # failure there is reported like any other, never lost.
        judge.fail(
            "traceback",
            f"harness {type(exc).__name__} at {where_raised(exc)}",
            "".join(traceback.format_exception(exc)),
        )
    return judge.failures
