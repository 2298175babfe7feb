"""The command line: every subcommand in-process through `main`; the entry point as a process."""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from helpers import FIXTURES, ROOT, assert_golden, run

CLI = FIXTURES / "cli"
SEED = "protocol/NCT06125106"
PATIENTS = f"{SEED}/examples/patients.jsonl"
WITH_ERRORS = f"{SEED}/examples/with-errors.jsonl"

# What the example files are meant to show; a change here is a change of the examples.
PATIENT_STATUS = {
    "ZJU-001": "eligible",
    "ZJU-002": "eligible",
    "ZJU-003": "eligible",
    "ZJU-004": "eligible",
    "ZJU-005": "ineligible",
    "ZJU-006": "ineligible",
    "ZJU-007": "ineligible",
    "ZJU-008": "ineligible",
    "ZJU-009": "ineligible",
    "ZJU-010": "ineligible",
    "ZJU-011": "ineligible",
    "ZJU-012": "indeterminate",
    "ZJU-013": "indeterminate",
    "ZJU-014": "indeterminate",
}
WITH_ERRORS_STATUS = {
    "ZJU-101": "eligible",
    "ZJU-102": "error",
    "ZJU-103": "error",
    "ZJU-104": "ineligible",
    "ZJU-105": "error",
    "line 6": "error",
    "ZJU-107": "indeterminate",
    "line 8": "error",
    "ZJU-109": "error",
}

SUMMARY_LINE = re.compile(r"^  (eligible|ineligible|indeterminate|error|total) +(\d+)$", re.M)
ATTRITION_LINE = re.compile(r"^  ([IE]\d+) +(\d+) +(\d+)$", re.M)


@pytest.fixture(autouse=True)
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, so paths in messages are the short relative ones."""
    monkeypatch.chdir(ROOT)


def summary(text: str) -> dict[str, int]:
    return {name: int(n) for name, n in SUMMARY_LINE.findall(text)}


def attrition(text: str) -> dict[str, tuple[int, int]]:
    return {c: (int(x), int(u)) for c, x, u in ATTRITION_LINE.findall(text)}


def record_lines(path: str) -> int:
    return sum(1 for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip())


def assert_summary_matches(text: str, results: list[dict[str, Any]]) -> None:
    """The summary counts every result once, and its attrition agrees with the verdicts."""
    counts = summary(text)
    assert counts["total"] == len(results)
    assert sum(v for k, v in counts.items() if k != "total") == len(results)
    for status in ("eligible", "ineligible", "indeterminate", "error"):
        assert counts[status] == sum(r["status"] == status for r in results)
    blocking = {"I": "not met", "E": "met"}
    expected = {
        c: (
            sum(r.get("criteria", {}).get(c) == blocking[c[0]] for r in results),
            sum(r.get("criteria", {}).get(c) == "unknown" for r in results),
        )
        for c in results[0]["criteria"]
    }
    assert attrition(text) == expected


# --- check ---------------------------------------------------------------------------------


def test_check_seed_folder(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "check", SEED)
    assert (status, err) == (0, "")
    assert out == (
        f"ok {SEED}/v1.yaml (NCT06125106, version 1, 21 criteria)\n"
        f"ok {SEED}/v2.yaml (NCT06125106, version 2, 21 criteria)\n"
        f"ok {SEED}/v3.yaml (NCT06125106, version 3, 21 criteria, 7 endpoints)\n"
        f"ok {SEED}/v4.yaml (NCT06125106, version 4, 21 criteria, 7 endpoints)\n"
    )


@pytest.mark.parametrize("name", ["syntax_error", "unknown_name", "unit_mismatch"])
def test_check_broken_protocol(capsys: pytest.CaptureFixture[str], name: str) -> None:
    status, out, err = run(capsys, "check", f"tests/fixtures/cli/{name}.yaml")
    assert (status, out) == (1, "")
    assert_golden(err, CLI / f"{name}.err")


def test_check_goes_on_after_a_bad_file(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "check", "tests/fixtures/cli/unit_mismatch.yaml", SEED)
    assert status == 1
    assert out.startswith(f"ok {SEED}/v1.yaml")
    assert err.startswith("tests/fixtures/cli/unit_mismatch.yaml:24:21: unit: ")


def test_check_json_for_editors(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys, "check", "--format", "json", SEED, "tests/fixtures/cli/unknown_name.yaml"
    )
    assert (status, err) == (1, "")
    [diagnostic] = json.loads(out)
    assert diagnostic["file"] == "tests/fixtures/cli/unknown_name.yaml"
    assert (diagnostic["line"], diagnostic["column"]) == (24, 13)
    assert (diagnostic["end_line"], diagnostic["end_column"]) == (24, 19)
    assert diagnostic["code"] == "name"
    assert "did you mean 'weight'" in diagnostic["message"]
    assert diagnostic["severity"] == "error"


def test_check_json_all_good(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "check", "--format", "json", SEED) == (0, "[]\n", "")


def test_check_every_version_of_a_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    seed = (ROOT / SEED / "v1.yaml").read_text(encoding="utf-8")
    for n in range(1, 11):
        amends = f'\n  amends: "{n - 1}"' if n > 1 else ""
        (tmp_path / f"v{n}.yaml").write_text(
            seed.replace('version: "1"', f'version: "{n}"{amends}'), encoding="utf-8"
        )
    (tmp_path / "notes.yaml").write_text("not a protocol", encoding="utf-8")
    status, out, _ = run(capsys, "check", str(tmp_path))
    assert status == 0
    assert [line.split(", ")[1] for line in out.splitlines()] == [
        f"version {n}" for n in range(1, 11)
    ]


@pytest.mark.parametrize(
    ("folder", "ok", "refused"),
    [
        # v2 declares an editorial change that narrows I2: the intent is refuted in v2.
        (
            "editorial_changes_meaning",
            "v1.yaml",
            "editorial_changes_meaning/v2.yaml:9:16: intent: I2 is declared editorial",
        ),
        # v1 was edited after its release: the lock refuses v1, v2 itself is fine.
        ("edited_release", "v2.yaml", "release-edited: v1.yaml was edited after release"),
    ],
)
def test_check_folder_ok_only_for_files_without_errors(
    capsys: pytest.CaptureFixture[str], folder: str, ok: str, refused: str
) -> None:
    path = f"tests/fixtures/amendments/{folder}"
    status, out, err = run(capsys, "check", path)
    assert status == 1
    assert out == f"ok {path}/{ok} (TEST-AMEND, version {ok[1]}, 5 criteria)\n"
    assert refused in err


def test_check_missing_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = run(capsys, "check", str(tmp_path / "nope.yaml"), str(tmp_path))
    assert (status, out) == (1, "")
    assert "nope.yaml: no such file or folder" in err
    assert "no protocol version file" in err


# --- screen --------------------------------------------------------------------------------


def test_screen_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "screen", SEED, PATIENTS, "--format", "json")
    assert status == 0
    results = json.loads(out)
    assert len(results) == record_lines(PATIENTS)
    assert {r["id"]: r["status"] for r in results} == PATIENT_STATUS
    first = results[0]
    assert set(first) == {"id", "status", "criteria", "missing", "protocol", "version"}
    assert (first["protocol"], first["version"]) == ("NCT06125106", "3")
    assert len(first["criteria"]) == 21
    assert_summary_matches(err, results)


def test_screen_jsonl(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "screen", SEED, PATIENTS, "--format", "jsonl")
    assert status == 0
    results = [json.loads(line) for line in out.splitlines()]
    assert {r["id"]: r["status"] for r in results} == PATIENT_STATUS
    assert_summary_matches(err, results)


def test_screen_csv(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "screen", SEED, PATIENTS, "--format", "csv")
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["id"]: r["status"] for r in rows} == PATIENT_STATUS
    assert list(rows[0])[:4] == ["id", "status", "I1", "I2"]
    assert list(rows[0])[-4:] == ["missing", "errors", "protocol", "version"]
    assert {(r["protocol"], r["version"]) for r in rows} == {("NCT06125106", "3")}
    by_id = {r["id"]: r for r in rows}
    assert by_id["ZJU-005"]["I2"] == "not met"
    assert by_id["ZJU-007"]["E2"] == "met"
    assert by_id["ZJU-013"]["I5"] == "unknown"
    assert "creatinine" in by_id["ZJU-013"]["missing"].split("; ")
    assert summary(err)["total"] == len(rows)


def test_screen_table(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "screen", SEED, PATIENTS)
    assert (status, err) == (0, "")
    rows = {
        cells[0]: cells[1:]
        for line in out.splitlines()
        if (cells := [c.strip() for c in line.strip("│ ").split("│")])[0] in PATIENT_STATUS
    }
    assert {rid: cells[0] for rid, cells in rows.items()} == PATIENT_STATUS
    assert rows["ZJU-010"][1] == "I1, E5"
    assert rows["ZJU-014"][2] == "E2, E14"
    assert rows["ZJU-013"][3] == "creatinine"  # what to collect to decide it
    assert rows["ZJU-001"][3:] in ([], [""])  # trailing empty cells are stripped
    # The summary follows the table on stdout.
    assert summary(out) == {
        "eligible": 4,
        "ineligible": 7,
        "indeterminate": 3,
        "error": 0,
        "total": 14,
    }
    assert attrition(out)["I5"] == (1, 2)


def test_screen_reports_every_bad_record(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "screen", SEED, WITH_ERRORS, "--format", "json")
    assert status == 1
    results = json.loads(out)
    assert len(results) == record_lines(WITH_ERRORS)
    assert {r["id"]: r["status"] for r in results} == WITH_ERRORS_STATUS
    errors = {r["id"]: r["errors"] for r in results if r["status"] == "error"}
    codes = {rid: sorted(e["code"] for e in errs) for rid, errs in errors.items()}
    assert codes == {
        "ZJU-102": ["bad-value", "bad-value"],
        "ZJU-103": ["unknown-unit"],
        "ZJU-105": ["bad-value"],
        "line 6": ["malformed"],
        "line 8": ["missing-id"],
        "ZJU-109": ["unit-mismatch", "unknown-field"],
    }
    assert errors["ZJU-105"][0]["field"] == "enrollment"
    assert_summary_matches(err, results)


def test_screen_table_renders_bad_records_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "screen", SEED, WITH_ERRORS)
    assert status == 1
    assert "record ZJU-105, field enrollment: bad-value: expected a date YYYY-MM-DD" in err
    assert "record line 6: malformed: not valid JSON" in err
    assert "record ZJU-103, field creatinine[0].unit: unknown-unit" in err
    for rid in WITH_ERRORS_STATUS:
        assert rid in out
    assert summary(out)["error"] == 6
    assert summary(out)["total"] == 9


def test_screen_csv_error_rows(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "screen", SEED, WITH_ERRORS, "--format", "csv")
    assert status == 1
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(out))}
    assert {rid: r["status"] for rid, r in rows.items()} == WITH_ERRORS_STATUS
    assert rows["line 8"]["errors"] == (
        "record line 8, field id: missing-id: missing required field 'id'"
    )
    assert rows["line 8"]["I1"] == ""


def test_screen_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    lines = Path(PATIENTS).read_bytes().splitlines(keepends=True)[:3]
    data = b"".join([lines[0], b"\n", lines[1], b'{"id": "X", "weight": NaN}\n', b"{oops\n"])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    status, out, _ = run(capsys, "screen", SEED, "-", "--format", "jsonl")
    assert status == 1
    results = [json.loads(line) for line in out.splitlines()]
    assert [(r["id"], r["status"]) for r in results] == [
        ("ZJU-001", "eligible"),
        ("ZJU-002", "eligible"),
        ("X", "error"),
        ("line 5", "error"),
    ]
    assert results[2]["errors"][0]["field"] == "weight"
    assert results[3]["errors"][0]["code"] == "malformed"


@pytest.mark.parametrize(
    ("creatinine", "verdict"), [("1.7", "met"), ("1.70000000000000000001", "not met")]
)
def test_screen_stdin_numbers_are_exact(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    creatinine: str,
    verdict: str,
) -> None:
    """Creatinine 1.7 puts ZJU-001's clearance exactly on 60 mL/min; a hair more fails I5.

    A float would read both texts as the same number.
    """
    record = json.loads(Path(PATIENTS).read_text(encoding="utf-8").splitlines()[0])
    record["weight"] = 72
    record["creatinine"][0]["value"] = "SCR"
    line = json.dumps(record).replace('"SCR"', creatinine)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(line.encode() + b"\n")))
    status, out, _ = run(capsys, "screen", SEED, "-", "--format", "jsonl")
    assert status == 0
    assert json.loads(out)["criteria"]["I5"] == verdict


def test_screen_output_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    status, out, err = run(capsys, "screen", SEED, PATIENTS, "--format", "csv", "-o", str(target))
    assert (status, out) == (0, "")
    assert summary(err)["total"] == 14
    assert len(list(csv.DictReader(target.open(encoding="utf-8", newline="")))) == 14


def test_screen_unreadable_records(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    missing = tmp_path / "cohort.jsonl"
    status, out, err = run(
        capsys, "screen", SEED, str(missing), "--format", "json", "-o", str(target)
    )
    assert (status, out) == (1, "")
    assert f"unreadable: {missing}: cannot read records" in err
    assert not target.exists()
    assert "Traceback" not in err


def test_screen_unwritable_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = run(capsys, "screen", SEED, PATIENTS, "-o", str(tmp_path))
    assert (status, out) == (1, "")
    assert err.startswith(f"protocode: {tmp_path}: ")
    assert "Traceback" not in err


def test_screen_unknown_format_file(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "screen", SEED, f"{SEED}/v1.yaml")
    assert status == 1
    assert f"unknown-format: {SEED}/v1.yaml: unknown record file type '.yaml'" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["screen", SEED],
        ["screen", SEED, PATIENTS, "--format", "xml"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert "usage: protocode" in err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "screen", "--help")
    assert status == 0
    assert "1 when any record had an error" in out
    assert "exit status:" in out


def test_screen_progress_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Past 2,000 records a progress bar runs on a terminal's stderr; results are unaffected."""
    record = json.loads(Path(PATIENTS).read_text(encoding="utf-8").splitlines()[0])
    cohort = tmp_path / "cohort.jsonl"
    with cohort.open("w", encoding="utf-8") as f:
        for n in range(2100):
            f.write(json.dumps({**record, "id": f"P{n}"}) + "\n")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    status, out, err = run(capsys, "screen", SEED, str(cohort), "--format", "jsonl")
    assert status == 0
    assert len(out.splitlines()) == 2100
    assert summary(err)["eligible"] == 2100
    assert re.search(r"screening .* 2,\d{3} records", err)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
@pytest.mark.parametrize("records", [PATIENTS, WITH_ERRORS])
def test_duckdb_engine_writes_what_the_row_engine_writes(
    capsys: pytest.CaptureFixture[str], fmt: str, records: str
) -> None:
    """Both engines write one shape: the same keys or columns (`missing` included) and the
    same values, record by record; DuckDB orders by id, the row engine by input order."""
    outputs = {}
    for engine in ("row", "duckdb"):
        status, out, _ = run(capsys, "screen", SEED, records, "--engine", engine, "--format", fmt)
        assert status == (0 if records == PATIENTS else 1)
        outputs[engine] = out
    if fmt == "csv":
        row, duck = (list(csv.DictReader(io.StringIO(outputs[e]))) for e in ("row", "duckdb"))
        header = outputs["row"].splitlines()[0]
        assert outputs["duckdb"].splitlines()[0] == header
        assert "missing" in header.split(",")
    else:
        row, duck = (
            json.loads(outputs[e])
            if fmt == "json"
            else [json.loads(x) for x in outputs[e].splitlines()]
            for e in ("row", "duckdb")
        )
        assert [list(r) for r in duck] == [list(r) for r in sorted(row, key=by_id)]
    assert sorted(duck, key=by_id) == sorted(row, key=by_id)
    assert any(r["missing"] for r in row if r["status"] == "indeterminate")
    if fmt == "json":
        # The layout too: one object per line of an indented array.
        assert outputs["duckdb"].splitlines()[1].startswith('  {"id": ')


def by_id(result: dict[str, Any]) -> tuple[str, str]:
    """Results ordered as DuckDB writes them: by id, then status."""
    return (str(result["id"]), str(result["status"]))


# --- explain -------------------------------------------------------------------------------


def test_explain_by_id(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "explain", SEED, PATIENTS, "--id", "ZJU-009")
    assert (status, err) == (0, "")
    assert out.startswith(f"protocol NCT06125106 version 3 ({SEED}/v3.yaml)\n")
    assert "\nrecord ZJU-009: INELIGIBLE\n" in out
    assert "✗ I5 (inclusion) not met" in out
    assert "crcl >= 60 mL/min → false" in out


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "explain", SEED, PATIENTS, "--id", "ZJU-013", "--format", "json")
    assert status == 0
    explanation = json.loads(out)
    assert (explanation["id"], explanation["status"]) == ("ZJU-013", "indeterminate")
    assert "creatinine" in explanation["missing"]
    i5 = next(c for c in explanation["criteria"] if c["id"] == "I5")
    assert any("18 days before the window opens" in n for n in i5["notes"])


def test_explain_the_only_record(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text(Path(PATIENTS).read_text(encoding="utf-8").splitlines()[4], encoding="utf-8")
    status, out, _ = run(capsys, "explain", SEED, str(one))
    assert status == 0
    assert out.splitlines()[1] == "record ZJU-005: INELIGIBLE"


def test_explain_needs_an_id_for_several(capsys: pytest.CaptureFixture[str]) -> None:
    """Which record to explain is the command line's to say: a usage error (exit 2) that
    names the records the file holds."""
    status, out, err = run(capsys, "explain", SEED, PATIENTS)
    assert (status, out) == (2, "")
    assert err.startswith("usage: protocode explain ")
    assert (
        f"protocode explain: error: {PATIENTS} holds 14 records; choose one with --id "
        "(records: ZJU-001, ZJU-002, ZJU-003, ZJU-004, ZJU-005, ZJU-006, ZJU-007, ZJU-008, "
        "ZJU-009, ZJU-010, … (14 in all))\n"
    ) in err


def test_explain_unknown_id(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "explain", SEED, PATIENTS, "--id", "ZJU-999")
    assert (status, out) == (1, "")
    assert "no record with id 'ZJU-999' (records: ZJU-001, ZJU-002," in err
    assert "(14 in all)" in err


def test_explain_bad_record(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "explain", SEED, WITH_ERRORS, "--id", "ZJU-105")
    assert (status, out) == (1, "")
    assert err == (
        "record ZJU-105, field enrollment: bad-value: expected a date YYYY-MM-DD, "
        "got '2024-02-30'\n"
    )


# --- test ----------------------------------------------------------------------------------


def case_folder(tmp_path: Path, too_old_expected: str) -> Path:
    """A protocol folder: the seed's v1.yaml and two cases built on patient ZJU-001."""
    (tmp_path / "v1.yaml").write_text(
        (ROOT / SEED / "v1.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    record = json.loads(Path(PATIENTS).read_text(encoding="utf-8").splitlines()[0])
    del record["id"]  # a case's record is named after the case
    base = json.dumps(record)
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "v1.yaml").write_text(
        f"""\
protocode-cases: 1
bases:
  zju_001: {base}
cases:
  - name: eligible as recorded
    base: zju_001
    expect: {{status: eligible}}
  - name: too old
    base: zju_001
    set: {{birth_date: "1950-01-01"}}
    expect: {{status: {too_old_expected}, criteria: {{I2: "not met"}}}}
""",
        encoding="utf-8",
    )
    return tmp_path


def test_test_passing_cases(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = case_folder(tmp_path, "ineligible")
    status, out, err = run(capsys, "test", str(folder))
    assert (status, err) == (0, "")
    assert out.endswith("2 cases: 2 passed, 0 failed\n")
    status, out, _ = run(capsys, "test", str(folder), "--verbose")
    assert "  ✓ too old\n" in out


def test_test_mismatch(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _ = run(capsys, "test", str(case_folder(tmp_path, "eligible")))
    assert status == 1
    assert "✗ too old" in out
    assert "status: expected eligible, got ineligible" in out
    assert out.endswith("2 cases: 1 passed, 1 failed\n")


def test_test_json_with_coverage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = case_folder(tmp_path, "eligible")
    status, out, _ = run(capsys, "test", str(folder), "--coverage", "--format", "json")
    assert status == 1
    report = json.loads(out)
    assert report["ok"] is False
    [suite] = report["suites"]
    assert (suite["total"], suite["passed"], suite["failed"]) == (2, 1, 1)
    assert suite["coverage"]["cases"] == 2
    assert {c["id"] for c in suite["coverage"]["criteria"]} >= {"I1", "E14"}


def test_test_coverage_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _ = run(capsys, "test", str(case_folder(tmp_path, "ineligible")), "--coverage")
    assert status == 0
    assert "coverage of NCT06125106 version 1" in out
    assert "(2 cases)" in out


def test_test_without_cases(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = run(capsys, "test", str(tmp_path))
    assert (status, out) == (1, "")
    assert "no case files (cases/vN.yaml beside vN.yaml)" in err


def test_test_seed_cases(capsys: pytest.CaptureFixture[str]) -> None:
    """Every stored case of the seed protocol passes through the CLI."""
    status, out, _ = run(capsys, "test", SEED, "--format", "json")
    report = json.loads(out)
    assert [suite["version"] for suite in report["suites"]] == ["1", "2", "3", "4"]
    for suite in report["suites"]:
        assert suite["total"] >= 40
        assert (suite["passed"], suite["failed"]) == (suite["total"], 0)
    assert report["ok"] is True
    assert status == 0


# --- schema --------------------------------------------------------------------------------


def test_schema_validates_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "schema", SEED)
    assert status == 0
    schema = json.loads(out)
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    for line in Path(PATIENTS).read_text(encoding="utf-8").splitlines():
        validator.validate(json.loads(line))
    bad = json.loads(Path(PATIENTS).read_text(encoding="utf-8").splitlines()[0])
    bad["creatinin"] = bad.pop("creatinine")
    assert not validator.is_valid(bad)


# --- which version was used ------------------------------------------------------------------


def assert_names_version(capsys: pytest.CaptureFixture[str], folder: Path, version: str) -> None:
    """Every output of screen and explain names the protocol id and version it used."""
    file = f"{folder}/v{version}.yaml"
    status, out, err = run(capsys, "screen", folder, PATIENTS)
    assert (status, err) == (0, "")
    assert out.startswith(f"protocol NCT06125106 version {version} ({file})\n┏")
    assert f"\nsummary of 14 records (NCT06125106 version {version}, {file}):\n" in out
    for fmt in ("json", "jsonl", "csv"):
        status, out, err = run(capsys, "screen", folder, PATIENTS, "--format", fmt)
        assert status == 0
        assert err.startswith(f"summary of 14 records (NCT06125106 version {version}, {file}):")
        if fmt == "json":
            results = json.loads(out)
        elif fmt == "jsonl":
            results = [json.loads(line) for line in out.splitlines()]
        else:
            results = list(csv.DictReader(io.StringIO(out)))
        assert len(results) == 14
        assert {(r["protocol"], r["version"]) for r in results} == {("NCT06125106", version)}
    status, out, _ = run(capsys, "explain", folder, PATIENTS, "--id", "ZJU-001")
    assert out.startswith(f"protocol NCT06125106 version {version} ({file})\nrecord ZJU-001: ")
    status, out, _ = run(capsys, "explain", folder, PATIENTS, "--id", "ZJU-001", "--format", "json")
    explanation = json.loads(out)
    assert (explanation["protocol"], explanation["version"]) == ("NCT06125106", version)


def test_outputs_name_the_version_in_force(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A folder without a lock screens its newest file; once version 1 is released it
    screens version 1: the same command, another version, and every output says which."""
    for n in (1, 2):
        (tmp_path / f"v{n}.yaml").write_bytes((ROOT / SEED / f"v{n}.yaml").read_bytes())
    assert_names_version(capsys, tmp_path, "2")
    status, out, err = run(capsys, "release", tmp_path)
    assert (status, err) == (0, ""), err
    assert out.startswith("released version 1 ")
    assert_names_version(capsys, tmp_path, "1")


def test_help_says_which_version_a_folder_uses(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "screen", "--help")
    assert status == 0
    assert "latest vN.yaml" not in out
    text = " ".join(out.split())
    assert "its version in force: the newest released in protocode.lock, else its newest" in text


COHORT = f"{SEED}/examples/cohort.jsonl"
V3 = f"NCT06125106 version 3 ({SEED}/v3.yaml)"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["endpoints", "derive", SEED, COHORT], f"protocol {V3}\n"),
        (["endpoints", "estimate", SEED, COHORT], f"protocol {V3}\n"),
        (["dosing", "plan", SEED, f"{SEED}/examples/dosing.jsonl"], f"protocol {V3}\n"),
        (["dosing", "check", SEED, f"{SEED}/examples/administrations.jsonl"], f"protocol {V3}\n"),
        (["compile", SEED, "--to", "sql"], f"-- protocol {V3}\n"),
    ],
)
def test_table_and_text_outputs_begin_with_the_version(
    capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    _, out, _ = run(capsys, *argv)
    assert out.startswith(named)


def test_machine_outputs_carry_the_version(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stamp = {"protocol": "NCT06125106", "version": "3"}
    _, out, err = run(capsys, "endpoints", "derive", SEED, COHORT, "--format", "jsonl")
    assert all(json.loads(line).items() >= stamp.items() for line in out.splitlines())
    assert err == "40 records (NCT06125106 version 3): 40 derived, 0 with errors\n"
    _, out, _ = run(capsys, "endpoints", "derive", SEED, COHORT, "--format", "csv", "--adam")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0])[:2] == ["STUDYID", "USUBJID"]
    assert list(rows[0])[-1] == "PROTVER"
    assert {(r["STUDYID"], r["PROTVER"]) for r in rows} == {("NCT06125106", "3")}
    _, out, _ = run(capsys, "endpoints", "estimate", SEED, COHORT, "--format", "json")
    assert json.loads(out).items() >= stamp.items()
    _, out, _ = run(
        capsys, "dosing", "plan", SEED, f"{SEED}/examples/dosing.jsonl", "--format", "json"
    )
    assert all(r.items() >= stamp.items() for r in json.loads(out))
    _, out, _ = run(
        capsys,
        "dosing",
        "check",
        SEED,
        f"{SEED}/examples/administrations.jsonl",
        "--format",
        "json",
    )
    assert json.loads(out).items() >= stamp.items()
    _, out, _ = run(capsys, "schema", SEED)
    assert json.loads(out)["$comment"] == f"a patient record for protocol {V3}"
    _, _, err = run(
        capsys, "tables", "to-tables", SEED, PATIENTS, tmp_path / "t", "--format", "csv"
    )
    assert "(NCT06125106 version 3); 1 with errors, not written" in err
    _, _, err = run(
        capsys, "tables", "to-records", SEED, tmp_path / "t", "-o", tmp_path / "r.jsonl"
    )
    assert err.endswith("13 records (NCT06125106 version 3): 13 written, 0 with errors\n")
    for fmt in ("csv", "jsonl"):
        target = tmp_path / f"results.{fmt}"
        status, _, err = run(capsys, "screen", SEED, tmp_path / "t", "-o", target)
        assert status == 0
        assert err.startswith(f"summary of 13 records (NCT06125106 version 3, {SEED}/v3.yaml):")
        text = target.read_text(encoding="utf-8")
        results = (
            list(csv.DictReader(io.StringIO(text)))
            if fmt == "csv"
            else [json.loads(line) for line in text.splitlines()]
        )
        assert {(r["protocol"], r["version"]) for r in results} == {("NCT06125106", "3")}


# --- the safety net ------------------------------------------------------------------------


def crash_on_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make loading a protocol fail as a bug would (a deep recursion inside the pipeline)."""

    def broken(path: str | Path) -> None:
        raise RecursionError("maximum recursion depth exceeded\nwhile doing something")

    monkeypatch.setattr("protocode.cli.load", broken)


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["screen", SEED, PATIENTS], "protocode screen"),
        (["dosing", "plan", SEED, PATIENTS], "protocode dosing plan"),
        (["endpoints", "derive", SEED, PATIENTS], "protocode endpoints derive"),
    ],
)
def test_a_crash_is_one_line_and_exit_3(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    name: str,
) -> None:
    """A bug is not an input error: one line naming the command and the way to the
    traceback, and exit status 3 (1 is a protocol or record error)."""
    monkeypatch.delenv("PROTOCODE_DEBUG", raising=False)
    crash_on_load(monkeypatch)
    status, out, err = run(capsys, *argv)
    assert (status, out) == (3, "")
    assert err == (
        f"{name}: internal error (RecursionError: maximum recursion depth exceeded): a bug "
        "in protocode, not in the input; run again with --debug (or PROTOCODE_DEBUG=1) for "
        "the traceback, and please report it\n"
    )


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["screen", SEED, PATIENTS, "--debug"], None),
        (["--debug", "screen", SEED, PATIENTS], None),
        (["screen", SEED, PATIENTS], "1"),
    ],
)
def test_a_crash_with_debug_shows_the_traceback(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: str | None,
) -> None:
    if env is None:
        monkeypatch.delenv("PROTOCODE_DEBUG", raising=False)
    else:
        monkeypatch.setenv("PROTOCODE_DEBUG", env)
    crash_on_load(monkeypatch)
    status, out, err = run(capsys, *argv)
    assert (status, out) == (3, "")
    assert err.startswith("Traceback (most recent call last):\n")
    assert "in broken\n" in err
    assert err.endswith(
        "protocode screen: internal error (RecursionError: maximum recursion depth exceeded): "
        "a bug in protocode, not in the input; the traceback is above, and please report it\n"
    )


def test_debug_leaves_ordinary_errors_alone(capsys: pytest.CaptureFixture[str]) -> None:
    """--debug changes nothing for an error in the input: it is reported as always, exit 1."""
    status, out, err = run(capsys, "--debug", "check", "tests/fixtures/cli/unit_mismatch.yaml")
    assert (status, out) == (1, "")
    assert err.startswith("tests/fixtures/cli/unit_mismatch.yaml:24:21: unit: ")
    assert "Traceback" not in err


def test_exit_status_3_is_documented(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["screen", "--help"], ["dosing", "plan", "--help"]):
        status, out, _ = run(capsys, *argv)
        assert status == 0
        assert "  3  internal error: a bug in protocode" in out
        assert "PROTOCODE_DEBUG=1" in out
    assert "--debug" in run(capsys, "--help")[1]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "3 internal" in readme
    assert "`PROTOCODE_DEBUG=1`" in readme


# --- the entry point -----------------------------------------------------------------------


def entry_point_env() -> dict[str, str]:
    """The environment for `python -m protocode`: this checkout's package first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def test_python_m_protocode() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "protocode", "check", SEED],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=entry_point_env(),
        check=False,
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        f"ok {SEED}/v1.yaml (NCT06125106, version 1, 21 criteria)\n"
        f"ok {SEED}/v2.yaml (NCT06125106, version 2, 21 criteria)\n"
        f"ok {SEED}/v3.yaml (NCT06125106, version 3, 21 criteria, 7 endpoints)\n"
        f"ok {SEED}/v4.yaml (NCT06125106, version 4, 21 criteria, 7 endpoints)\n"
    )


def test_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """`protocode screen … | head -1` ends without a traceback when head stops reading."""
    record = json.loads(Path(PATIENTS).read_text(encoding="utf-8").splitlines()[0])
    cohort = tmp_path / "cohort.jsonl"
    # Far more output than a pipe buffers, so the writer is still running when the pipe closes.
    cohort.write_text(
        "".join(json.dumps({**record, "id": f"P{n}"}) + "\n" for n in range(3000)),
        encoding="utf-8",
    )
    with subprocess.Popen(
        [sys.executable, "-m", "protocode", "screen", SEED, str(cohort), "--format", "jsonl"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=entry_point_env(),
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        assert json.loads(process.stdout.readline())["id"] == "P0"
        process.stdout.close()
        err = process.stderr.read().decode()
        assert process.wait(timeout=120) == 1
    assert "Traceback" not in err


# --- a command line that starts at once ----------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "--version")
    assert (status, err) == (0, "")
    assert out == f"protocode {importlib.metadata.version('protocode')}\n"


def test_every_command_has_a_handler() -> None:
    """Each command names its handler as module:function; every one of them imports."""
    from protocode.cli.main import handler
    from protocode.cli.parser import parser

    def handlers(node: argparse.ArgumentParser) -> Iterator[str]:
        for action in node._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    if sub.get_default("handler") is not None:
                        yield sub.get_default("handler")
                    yield from handlers(sub)

    names = list(handlers(parser()))
    assert len(names) == 16
    for name in names:
        assert callable(handler(name)), name


def test_the_lock_file_named_in_the_help_is_the_lock_file() -> None:
    from protocode.cli.parser import LOCK_NAME
    from protocode.document.lock import LOCK_NAME as LOCK_FILE

    assert LOCK_NAME == LOCK_FILE


def test_help_imports_no_heavy_library() -> None:
    """`import protocode` and the parser load none of the libraries that take seconds; a
    command loads them when it runs (the timings are benchmarks/bench_startup.py's)."""
    code = (
        "import sys, protocode, protocode.cli.parser as p; p.parser(); "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'z3', 'duckdb', 'lifelines', 'hypothesis', 'scipy', 'pandas', 'numpy', "
        "'matplotlib', 'sqlglot', 'jinja2', 'fhir', 'lark', 'jsonschema', 'rich', 'yaml'})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=entry_point_env(),
        check=True,
        timeout=120,
    )
    assert done.stdout.strip() == ""
