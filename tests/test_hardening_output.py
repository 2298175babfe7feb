"""Output hygiene under hostile input (issue 11): numbers beyond a float are shown, not
crashed on; JSON Lines are one line per record for any line reader; a diagnostic on a huge
line shows a window of it, not the whole line."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from helpers import SEED, run
from protocode.core.errors import Diagnostic
from protocode.core.exact import approximate
from protocode.core.source import Source
from protocode.screening import format_number

COHORT = SEED / "examples" / "cohort.jsonl"
HUGE = 10**5000  # str() of it raises ValueError (more than 4,300 digits)

# --- numbers shown approximately ------------------------------------------------------------


def g3(f: float) -> str:
    return f"{f:.3g}"


@pytest.mark.parametrize(
    "x", [Fraction(1, 3), Fraction(-2, 3), Fraction(10**20, 7), Fraction(1, 7 * 10**300), 0]
)
def test_approximate_is_the_float_rendering_where_a_float_holds_the_value(x: Fraction) -> None:
    assert approximate(x, g3) == g3(float(x))
    assert approximate(x, lambda f: str(round(f, 2))) == str(round(float(x), 2))


@pytest.mark.parametrize(
    ("x", "digits", "shown"),
    [
        (Fraction(10**400, 3), 3, "3.33e+399"),
        (Fraction(-(10**400), 3), 3, "-3.33e+399"),
        (Fraction(2 * 10**400, 3), 12, "6.66666666667e+399"),
        (Fraction(1, 3 * 10**400), 3, "3.33e-401"),
        (Fraction(10**308), 3, "1e+308"),
        (Fraction(9999, 10**311), 3, "1e-307"),  # rounding carries into a new digit
        (Fraction(HUGE, 7), 3, "1.43e+4999"),
        (Fraction(1, HUGE), 6, "1e-5000"),
    ],
)
def test_approximate_beyond_a_float_is_scientific_and_exact(
    x: Fraction, digits: int, shown: str
) -> None:
    # float() of these raises OverflowError or gives 0.0.
    assert approximate(x, g3, digits) == shown


def test_format_number_never_overflows_and_keeps_ordinary_output() -> None:
    assert format_number(Fraction(1, 3)) == "≈0.33"
    assert format_number(Fraction(200, 3)) == "≈66.67"
    assert format_number(Fraction("12.5")) == "12.5"
    # It was OverflowError (huge) and "≈0.0" (tiny).
    assert format_number(Fraction(10**400, 3)) == "≈3.33e+399"
    assert format_number(Fraction(1, 3 * 10**400)) == "≈3.33e-401"


# --- JSON Lines -------------------------------------------------------------------------------


def cohort_with_id(tmp_path: Path, odd_id: str) -> tuple[Path, list[str]]:
    """Three patients of the seed cohort, the second renamed `odd_id`; the file and ids."""
    records = [json.loads(line) for line in COHORT.read_text(encoding="utf-8").splitlines()[:3]]
    records[1]["id"] = odd_id
    path = tmp_path / "cohort.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path, [r["id"] for r in records]


BREAKS = ["\u2028", "\u2029", "\x85"]


def lines_of(out: str) -> list[dict[str, object]]:
    """The JSON objects of JSONL output, split as str.splitlines splits it."""
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("brk", BREAKS)
def test_endpoints_derive_jsonl_is_one_line_per_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], brk: str
) -> None:
    path, ids = cohort_with_id(tmp_path, f"P{brk}2")
    status, out, _ = run(capsys, "endpoints", "derive", SEED, path, "--format", "jsonl")
    assert status == 0
    rows = lines_of(out)
    assert len(rows) == len(out.split("\n")) - 1  # no line but those written
    assert [r["id"] for r in rows if r["id"] == ids[1]]
    assert sorted({str(r["id"]) for r in rows}) == sorted(ids)


@pytest.mark.parametrize("brk", BREAKS)
def test_duckdb_screen_jsonl_is_one_line_per_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], brk: str
) -> None:
    path, ids = cohort_with_id(tmp_path, f"P{brk}2")
    argv = ("screen", SEED, path, "--engine", "duckdb", "--format", "jsonl")
    status, out, _ = run(capsys, *argv)
    assert status in (0, 1)
    assert sorted(str(r["id"]) for r in lines_of(out)) == sorted(ids)
    # Written to a file, the same (the file is rewritten with the escapes).
    target = tmp_path / "out.jsonl"
    status, _, _ = run(capsys, *argv, "--output", target)
    assert status in (0, 1)
    assert target.stat().st_mode & 0o777 == (tmp_path / "cohort.jsonl").stat().st_mode & 0o777
    text = target.read_text(encoding="utf-8")
    assert brk not in text
    assert sorted(str(r["id"]) for r in lines_of(text)) == sorted(ids)


def test_tables_to_records_is_one_line_per_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ids = cohort_with_id(tmp_path, "P\u20282")
    status, _, _ = run(capsys, "tables", "to-tables", SEED, path, tmp_path / "tables")
    assert status == 0
    status, out, _ = run(capsys, "tables", "to-records", SEED, tmp_path / "tables")
    assert status == 0
    assert sorted(str(r["id"]) for r in lines_of(out)) == sorted(ids)


# --- a diagnostic on a long line --------------------------------------------------------------


def rendered(text: str, start: int, end: int) -> list[str]:
    """The rendering of a diagnostic at [start, end) of a one-file `text`, as lines."""
    span = Source("big.json", text).span(start, end)
    return Diagnostic("bad", "here", span).render().split("\n")


def caret_under(lines: list[str]) -> str:
    """The shown characters the caret marks."""
    _, shown, caret = lines
    body, marks = shown.split("| ", 1)[1], caret.split("| ", 1)[1]
    begin = marks.index("^")
    return body[begin : begin + marks.count("^")]


def test_a_short_line_is_shown_whole() -> None:
    assert rendered('{"a": 1,}', 7, 8) == [
        "big.json:1:8: bad: here",
        '   1 | {"a": 1,}',
        "     |        ^",
    ]


@pytest.mark.parametrize(
    ("where", "shows"),
    [(0, "{"), (500_000, "X"), (999_990, "z"), (1_000_002, "")],
)
def test_a_long_line_shows_a_window_with_the_caret_in_place(where: int, shows: str) -> None:
    text = "{" + "y" * 499_999 + "X" + "z" * 500_000 + "}"
    lines = rendered(text, where, where + 1)
    assert all(len(line) < 140 for line in lines)
    if shows:
        assert caret_under(lines) == shows
    else:  # past the end of the line: the caret after the last character shown
        assert lines[1].endswith("z}") and lines[2].index("^") == len(lines[1])
    _, shown, _ = lines
    assert shown.startswith("   1 | …") is (where > 40)
    assert shown.endswith("…") is (where < 999_000)


def test_a_span_running_past_the_window_is_marked_to_its_edge() -> None:
    lines = rendered("a" * 100 + "B" * 1000, 100, 1100)
    assert caret_under(lines) == "B" * 80 + "…"


def test_a_records_file_on_one_huge_line_gives_a_short_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "records.json"
    path.write_text('[{"id": "' + "A" * 2_000_000 + '"} oops]', encoding="utf-8")
    status, out, err = run(capsys, "screen", SEED, path)
    assert status == 1
    assert len(out) + len(err) < 2_000
    assert "records.json:1:2000013:" in err
    assert caret_under(err.strip().split("\n")[-3:]) == "o"
