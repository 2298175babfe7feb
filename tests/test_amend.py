"""Amendments: the seed's illustrative v3 → v4 diff, and false claims caught with witnesses."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

import protocode
from helpers import FIXTURES, SEED
from protocode.amendments import check_claims, diff
from protocode.cli import main
from protocode.language.library import completed_years

V3 = protocode.load(SEED / "v3.yaml")
V4 = protocode.load(SEED / "v4.yaml")
REPORT = diff(V3, V4)
BY_ID = {c.id: c for c in REPORT.criteria}


def test_every_declared_intent_of_the_illustrative_amendment_holds() -> None:
    assert check_claims(V3, V4) == []
    assert REPORT.problems == ()


@pytest.mark.parametrize(
    ("cid", "relation"),
    [
        ("I2", "broader"),
        ("I5", "narrower"),
        ("I3", "equivalent"),
        ("E12", "equivalent"),
        ("E13", "broader"),
        ("E15", "narrower"),
        ("I1", "equivalent"),
    ],
)
def test_seed_amendment_verdicts_are_proved(cid: str, relation: str) -> None:
    comparison = BY_ID[cid].comparison
    assert (comparison.relation, comparison.method) == (relation, "proved")


def test_wider_age_bound_witness_is_aged_over_70_and_at_most_75() -> None:
    (witness,) = BY_ID["I2"].comparison.witnesses
    record = witness.record
    age = completed_years(
        dt.date.fromisoformat(record["birth_date"]), dt.date.fromisoformat(record["enrollment"])
    )
    assert 70 < age <= 75


def test_overall_eligibility_is_incomparable_with_both_witnesses() -> None:
    assert REPORT.eligibility.relation == "incomparable"
    directions = {(w.direction, w.old, w.new) for w in REPORT.eligibility.witnesses}
    assert {d for d, _, _ in directions} == {"broader", "narrower"}


def test_cohort_flips_are_counted() -> None:
    lines = (SEED / "examples" / "patients.jsonl").read_text(encoding="utf-8").splitlines()
    cohort = [json.loads(line) for line in lines]
    report = diff(V3, V4, cohort)
    assert report.cohort is not None
    assert report.cohort.total == len(cohort)
    assert sum(n for _, _, n in report.cohort.transitions) + report.cohort.errors == len(cohort)
    for record_id, before, after in report.cohort.flipped:
        record = next(r for r in cohort if r["id"] == record_id)
        assert V3.screen(record).status == before
        assert before != after


@pytest.mark.parametrize(
    ("folder", "cid", "claim"),
    [
        ("relaxed_but_excludes", "I1", "declared relaxed"),
        ("editorial_changes_meaning", "I2", "declared editorial"),
        ("tightened_but_admits", "I3", "declared tightened"),
        ("undeclared_change", "E2", "declares no change"),
    ],
)
def test_false_claims_fail_check_with_a_witness(
    folder: str, cid: str, claim: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = FIXTURES / "amendments" / folder
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}/v2.yaml:" in err
    assert f"{cid} " in err and claim in err
    found = re.search(
        r"witness: (\{.*?\}) is (met|not met|unknown) under v1 and "
        r"(met|not met|unknown) under v2",
        err,
    )
    assert found is not None, err
    record, before, after = json.loads(found.group(1)), found.group(2), found.group(3)
    old = protocode.load(path / "v1.yaml")
    new = protocode.load(path / "v2.yaml")
    # The witness in the message is a real record that shows the claim false.
    assert old.screen(record).verdict(cid) == before
    assert new.screen(record).verdict(cid) == after


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json"])
def test_cli_diff_formats(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    cohort = SEED / "examples" / "patients.jsonl"
    argv = ["diff", str(SEED / "v3.yaml"), str(SEED / "v4.yaml"), "--cohort", str(cohort)]
    assert main([*argv, "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        data = json.loads(out)
        i2 = next(c for c in data["criteria"] if c["id"] == "I2")
        assert i2["verdict"]["relation"] == "broader"
        assert data["cohort"]["total"] == len(cohort.read_text().splitlines())
    elif fmt == "html":
        assert out.lstrip().startswith("<!DOCTYPE html>") and "<script" not in out
    else:
        assert "I2" in out and "broader" in out


def test_cli_diff_of_a_false_claim_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    folder = FIXTURES / "amendments" / "editorial_changes_meaning"
    assert main(["diff", str(folder / "v1.yaml"), str(folder / "v2.yaml")]) == 1
    assert "I2" in capsys.readouterr().out
