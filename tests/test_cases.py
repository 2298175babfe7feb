"""Tests of stored test cases: the seed protocol's cases, the runner, file errors, coverage.

`test_seed_case` is the main test of the seed protocol: one test per stored case, whose
failure message names the case, the expectation and the explanation of the criterion.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

import protocode
from protocode.cases import (
    CaseSuite,
    coverage,
    find_case_files,
    load_cases,
    run_cases,
)
from protocode.core.errors import LoadError, UsageError

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "protocol" / "NCT06125106"
SEED_CASES = SEED / "cases" / "v1.yaml"
SEED_RULES = str(SEED / "v1.yaml")

PROTOCOL = protocode.load(SEED / "v1.yaml")
SUITE = load_cases(SEED_CASES)


@pytest.mark.parametrize("name", [case.name for case in SUITE.cases])
def test_seed_case(name: str) -> None:
    """One stored case; a failure shows the case, the expectation and the explanation."""
    (case,) = [c for c in SUITE.cases if c.name == name]
    report = run_cases(PROTOCOL, CaseSuite(SUITE.path, (case,)))
    assert report.ok, report.to_text()


def test_seed_suite_is_substantial_and_counts_add_up() -> None:
    assert len(SUITE.cases) >= 60
    report = run_cases(PROTOCOL, SUITE)
    assert report.passed + report.failed == len(report.results) == len(SUITE.cases)
    assert report.ok, report.to_text()
    expected_somewhere = {cid for case in SUITE.cases for cid, _ in case.expect.criteria}
    assert expected_somewhere == {c.id for c in PROTOCOL.criteria}


def test_seed_numbers_are_exact_and_dates_stay_text() -> None:
    (case,) = [c for c in SUITE.cases if c.name == "CrCl exactly 60 mL/min"]
    assert case.record["weight"] == Decimal("42.0")
    assert case.record["creatinine"] == [
        {"value": Decimal("1.05"), "unit": "mg/dL", "date": "2024-06-10"}
    ]
    assert case.record["id"] == "CrCl exactly 60 mL/min"
    assert case.base == "eligible_male"
    assert case.location == f"{SEED_CASES}:{case.span.line}:{case.span.col}"


# --- running ---------------------------------------------------------------------------------

TINY = """\
protocode-cases: 1
bases:
  adult:
    enrollment: 2024-06-14
    birth_date: 1984-03-10
    sex: male
    ecog: 1
cases:
  - name: adult
    base: adult
    expect:
      status: indeterminate
      criteria: {I2: met, I3: met}
"""


def write(tmp_path: Path, text: str, name: str = "cases.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_wrong_expectation_is_a_mismatch_with_its_place(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        TINY
        + """\
  - name: seventeen
    base: adult
    set: {birth_date: 2006-06-15}
    expect:
      status: indeterminate
      criteria: {I2: met, I3: met, I99: met}
""",
    )
    report = run_cases(PROTOCOL, load_cases(path))
    assert (report.passed, report.failed, report.ok) == (1, 1, False)
    adult, seventeen = report.results
    assert adult.passed and adult.status == "indeterminate" and adult.mismatches == ()
    assert not seventeen.passed and seventeen.status == "ineligible"
    shown = [(m.what, m.expected, m.actual, m.location) for m in seventeen.mismatches]
    assert shown == [
        ("status", "indeterminate", "ineligible", f"{path}:18:15"),
        ("criterion I2", "met", "not met", f"{path}:19:22"),
        ("criterion I99", "met", "no such criterion", f"{path}:19:41"),
    ]
    text = report.to_text()
    assert f"  ✗ seventeen  ({path}:14:11)\n" in text
    assert f"      criterion I2: expected met, got not met  ({path}:19:22)\n" in text
    # The failure explains the criterion: its rule and the values that decided it.
    assert "      I2 not met: age between 18 years and 70 years\n" in text
    assert "age = 17 years" in text
    assert text.endswith("2 cases: 1 passed, 1 failed")
    assert "✓ adult" not in text
    assert "  ✓ adult\n" in report.to_text(verbose=True)
    data = report.to_json()
    json.dumps(data)
    assert (data["total"], data["passed"], data["failed"]) == (2, 1, 1)
    assert data["cases"][1]["mismatches"][1] == {
        "what": "criterion I2",
        "expected": "met",
        "actual": "not met",
        "location": f"{path}:19:22",
    }


def test_missing_and_notes_expectations(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
protocode-cases: 1
cases:
  - name: old creatinine
    set:
      enrollment: 2024-06-14
      birth_date: 1984-03-10
      sex: male
      weight: 70
      creatinine: [{value: 0.9, date: 2024-06-01}]
    expect:
      criteria: {I5: unknown}
      notes: {I5: [creatinine measured on 2024-06-01, within 3 days]}
      missing: [weight]
""",
    )
    (result,) = run_cases(PROTOCOL, load_cases(path)).results
    what = {m.what: m for m in result.mismatches}
    assert set(what) == {"notes I5", "missing"}
    assert what["notes I5"].expected == "notes mentioning ['within 3 days']"
    assert "the window is within 7 days before enrollment" in what["notes I5"].actual
    assert what["missing"].expected == "['weight']"
    assert "'creatinine'" in what["missing"].actual


def test_an_invalid_record_fails_with_the_record_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        TINY
        + """\
  - name: bad ecog
    base: adult
    set: {ecog: two, weigth: 70}
    expect: {status: eligible}
""",
    )
    report = run_cases(PROTOCOL, load_cases(path))
    bad = report.results[1]
    assert (bad.passed, bad.status, bad.mismatches) == (False, None, ())
    assert bad.error is not None
    assert {d.field for d in bad.error.diagnostics} == {"ecog", "weigth"}
    text = report.to_text()
    assert "      invalid record:\n" in text
    assert "record bad ecog, field ecog: bad-value:" in text
    assert "(did you mean 'weight'?)" in text
    assert report.to_json()["cases"][1]["error"][0]["record"] == "bad ecog"


# --- malformed files -------------------------------------------------------------------------


def problems(tmp_path: Path, text: str) -> list[tuple[str, str, str]]:
    path = write(tmp_path, text)
    with pytest.raises(LoadError) as info:
        load_cases(path)
    found = []
    for d in info.value.diagnostics:
        assert d.span is not None and d.span.source.path == str(path)
        found.append((f"{d.span.line}:{d.span.col}", d.code, d.message))
    return found


def test_malformed_file_reports_every_problem_at_its_place(tmp_path: Path) -> None:
    text = TINY + (
        "  - name: typo\n"  # 14
        "    base: adutl\n"  # 15
        "    unset: [ecgo]\n"  # 16
        "    expct: {status: eligible}\n"  # 17
        "  - name: adult\n"  # 18
        "    base: adult\n"  # 19
        "    unset: [sex, ecgo]\n"  # 20
        "    set: {sex: female, id: x}\n"  # 21
        "    expect: {status: maybe, criteria: {I1: yes, I2: not met}}\n"  # 22
    )
    unset = "cannot unset 'ecgo': base 'adult' has no such field (did you mean 'ecog'?)"
    assert problems(tmp_path, text) == [
        ("14:5", "schema", "missing required key 'expect' in a case"),
        ("15:11", "unknown-base", "unknown base 'adutl' (did you mean 'adult'?)"),
        ("17:5", "schema", "unknown key 'expct' in a case (did you mean 'expect'?)"),
        ("20:13", "schema", "'sex' is both set and unset"),
        ("20:18", "schema", unset),
        ("21:24", "schema", "'set' cannot change the record id: it is the case name"),
        (
            "22:22",
            "schema",
            "'status' must be one of eligible, ineligible, indeterminate, not 'maybe'",
        ),
        ("22:44", "schema", "the verdict of I1 must be one of met, not met, unknown, not 'yes'"),
    ]


def test_duplicate_names_and_keys(tmp_path: Path) -> None:
    text = TINY + (
        "  - name: adult\n"  # 14
        "    base: adult\n"  # 15
        "    expect: {status: eligible, status: ineligible}\n"  # 16
        "  - name: adult\n"  # 17
        "    base: adult\n"  # 18
        "    expect: {status: eligible}\n"  # 19
    )
    assert problems(tmp_path, text) == [
        ("16:32", "duplicate-key", "duplicate key 'status' (first on line 16)"),
        ("17:11", "duplicate-name", "duplicate case name 'adult' (first on line 9)"),
    ]


def test_top_level_problems(tmp_path: Path) -> None:
    assert problems(tmp_path, "protocode-cases: 2\ncase: []\n") == [
        ("1:1", "schema", "missing required key 'cases'"),
        ("1:18", "schema", "'protocode-cases' must be 1, the only format version"),
        ("2:1", "schema", "unknown key 'case' in the case file (did you mean 'cases'?)"),
    ]
    assert problems(tmp_path, "") == [("1:1", "schema", "the case file is empty")]
    assert problems(tmp_path, "cases: {}\nbases: []\n") == [
        ("1:1", "schema", "missing required key 'protocode-cases' (the format, 1)"),
        ("1:8", "schema", "'cases' must be a list, not a mapping"),
        ("2:8", "schema", "'bases' must be a mapping, not a list"),
    ]


def test_yaml_syntax_errors(tmp_path: Path) -> None:
    bad_indent = "protocode-cases: 1\ncases:\n  - name: a\n   b: c\n"
    [(where, code, _)] = problems(tmp_path, bad_indent)
    assert (where, code) == ("4:4", "yaml-syntax")
    unclosed = "protocode-cases: 1\ncases:\n  - name: [x\n"
    assert problems(tmp_path, unclosed) == [
        (
            "4:1",
            "yaml-syntax",
            "while parsing a flow sequence on line 3, expected ',' or ']', but got '<stream end>'",
        )
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"cannot read .*nothing\.yaml"):
        load_cases(tmp_path / "nothing.yaml")


# --- finding case files ----------------------------------------------------------------------


def test_find_case_files(tmp_path: Path) -> None:
    assert find_case_files(SEED) == [
        (SEED_CASES, SEED / "v1.yaml"),
        (SEED / "cases" / "v2.yaml", SEED / "v2.yaml"),
        (SEED / "cases" / "v3.yaml", SEED / "v3.yaml"),
        (SEED / "cases" / "v4.yaml", SEED / "v4.yaml"),
    ]
    assert find_case_files(tmp_path) == []
    (tmp_path / "cases").mkdir()
    for name in ("v1.yaml", "v10.yml", "v2.yaml", "cases/v10.yaml", "cases/v2.yaml"):
        (tmp_path / name).write_text("", encoding="utf-8")
    (tmp_path / "cases" / "README.md").write_text("", encoding="utf-8")
    assert find_case_files(str(tmp_path)) == [
        (tmp_path / "cases" / "v2.yaml", tmp_path / "v2.yaml"),
        (tmp_path / "cases" / "v10.yaml", tmp_path / "v10.yml"),
    ]
    (tmp_path / "cases" / "v3.yaml").write_text("", encoding="utf-8")
    with pytest.raises(UsageError, match=r"no protocol version v3\.yaml"):
        find_case_files(tmp_path)


# --- coverage --------------------------------------------------------------------------------


def test_seed_coverage_reaches_every_verdict_and_outcome() -> None:
    report = coverage(PROTOCOL, SUITE)
    assert (report.cases, report.invalid) == (len(SUITE.cases), ())
    for criterion in report.criteria:
        assert criterion.reached == {"met", "not met", "unknown"}, criterion.id
    everything = {"true", "false", "unknown"}
    assert report.condition("I5", "crcl >= 60 mL/min").reached == everything
    ast = report.condition("I5", "latest ast within 7 days before enrollment <= 3 x ULN")
    assert ast.reached == everything
    assert ast.location == f"{SEED_RULES}:222:13"
    age = "age between 18 years and 70 years"
    assert report.condition("I2", age, ">= 18 years").reached == everything
    assert report.condition("I2", age, "<= 70 years").reached == everything
    assert report.condition("E11", "hbv_controlled").reached == everything
    assert report.condition("definition crcl", 'sex == "female"').reached == everything
    # ECOG has the plausible minimum 0: `ecog >= 0` cannot be false, so it is no gap.
    ecog_low = report.condition("I3", "ecog between 0 and 2", ">= 0")
    assert ecog_low.possible == {"true", "unknown"}
    assert len(report.conditions) == 43
    assert report.gaps == ()
    assert report.to_text().endswith("gaps: none")


def test_coverage_of_a_tiny_suite_lists_the_gaps(tmp_path: Path) -> None:
    text = (
        SEED_CASES.read_text(encoding="utf-8").split("\ncases:\n")[0]
        + """
cases:
  - name: eligible
    base: eligible_male
    expect: {status: eligible}
  - name: old
    base: eligible_male
    set: {birth_date: 1950-01-01}
    expect: {status: ineligible}
  - name: broken
    base: eligible_male
    set: {ecog: 9}
    expect: {status: ineligible}
"""
    )
    report = coverage(PROTOCOL, load_cases(write(tmp_path, text)))
    assert (report.cases, report.invalid) == (2, ("broken",))
    i2 = next(c for c in report.criteria if c.id == "I2")
    assert i2.reached == {"met", "not met"}
    assert i2.gaps == ("unknown",)
    e2 = next(c for c in report.criteria if c.id == "E2")
    assert e2.gaps == ("met", "unknown")
    # A man never reaches the childbearing-potential test: short-circuited, all gaps.
    cbp = report.condition("I4", "childbearing_potential")
    assert (cbp.reached, cbp.gaps) == (frozenset(), ("true", "false", "unknown"))
    gaps = {str(g) for g in report.gaps}
    assert (
        f"{SEED_RULES}:222:13: I5: latest ast within 7 days before enrollment <= 3 x ULN:"
        " never false / unknown" in gaps
    )
    assert (
        f"{SEED_RULES}:197:13: I2: age between 18 years and 70 years (<= 70 years): never unknown"
        in gaps
    )
    assert any(g.startswith(f"{SEED_RULES}:") and ": E2: never met / unknown" in g for g in gaps)
    text_report = report.to_text()
    assert "(2 cases)" in text_report
    assert "not counted (invalid record): broken" in text_report
    assert f"gaps: {len(report.gaps)}" in text_report
    verbose = report.to_text(verbose=True)
    assert "  I2 (inclusion): met ✓, not met ✓, unknown ✗" in verbose
    data = report.to_json()
    json.dumps(data)
    assert len(data["gaps"]) == len(report.gaps)
    assert data["criteria"][1] == {
        "id": "I2",
        "kind": "inclusion",
        "location": i2.location,
        "reached": ["met", "not met"],
        "gaps": ["unknown"],
    }


def test_the_case_file_schema_is_a_valid_schema() -> None:
    from protocode.document.schema import SchemaValidator, shipped_schema

    SchemaValidator.check_schema(shipped_schema("cases"))


def test_the_format_version_is_written_1(tmp_path: Path) -> None:
    # JSON Schema reads 1.0 as 1; a case file writes its format version as the integer 1.
    text = TINY.replace("protocode-cases: 1", "protocode-cases: 1.0")
    assert problems(tmp_path, text) == [
        ("1:18", "schema", "'protocode-cases' must be 1, the only format version")
    ]


def test_values_of_the_wrong_form(tmp_path: Path) -> None:
    text = TINY + (
        "  - name: [x]\n"  # 14
        "    unset: {a: 1}\n"  # 15
        "    expect: {missing: [null], notes: {I5: [' ']}}\n"  # 16
        "  - 3\n"  # 17
    )
    assert problems(tmp_path, text) == [
        ("14:11", "schema", "'name' must be a non-empty string, not a list"),
        ("15:12", "schema", "each entry of 'unset' must be a non-empty string, not a mapping"),
        ("16:24", "schema", "each entry of 'missing' must be a non-empty string, not empty"),
        (
            "16:44",
            "schema",
            "each entry of the notes of I5 must be a non-empty string, not ' '",
        ),
        ("17:5", "schema", "a case must be a mapping, not '3'"),
    ]
