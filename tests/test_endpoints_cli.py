"""`protocode endpoints derive|estimate` on the bundled synthetic cohort of the seed."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from lifelines import AalenJohansenFitter, KaplanMeierFitter

import protocode
from helpers import SEED, run
from protocode.endpoints import derive_many
from protocode.endpoints.export import ADAM_NAMES

V3 = str(SEED / "v3.yaml")
COHORT = str(SEED / "examples" / "cohort.jsonl")
WITH_ERRORS = str(SEED / "examples" / "cohort-with-errors.jsonl")


def records(path: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def test_the_bundled_cohort_has_enough_patients_with_follow_up() -> None:
    cohort = records(COHORT)
    assert len(cohort) >= 31
    rows, problems = derive_many(protocode.load(V3), cohort)
    assert problems == []
    assert len(rows) == 7 * len(cohort)
    # Every kind of outcome occurs, so the estimates are not degenerate.
    assert {r.status for r in rows} == {
        "event",
        "competing",
        "censored",
        "responder",
        "non_responder",
        "not_evaluable",
    }


def test_derive_csv_with_adam_names(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "endpoints", "derive", V3, COHORT, "--format", "csv", "--adam")
    assert status == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert list(table[0]) == ["STUDYID", *ADAM_NAMES.values(), "AVALU", "PROTVER"]
    expected, _ = derive_many(protocode.load(V3), records(COHORT))
    assert len(table) == len(expected)
    for line, row in zip(table, expected, strict=True):
        assert (line["USUBJID"], line["PARAMCD"], line["ADT"]) == (
            row.id,
            row.endpoint,
            row.date.isoformat(),
        )
        assert (int(line["AVAL"]), line["STATUS"]) == (row.time, row.status)
        assert line["CNSR"] == ("" if row.censored is None else str(row.censored))
    n = len(records(COHORT))
    assert err == f"{n} records (NCT06125106 version 3): {n} derived, 0 with errors\n"


def test_derive_json_to_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "adtte.json"
    status, out, _ = run(
        capsys, "endpoints", "derive", V3, COHORT, "--format", "json", "-o", str(target)
    )
    assert (status, out) == (0, "")
    data = json.loads(target.read_text(encoding="utf-8"))
    assert {d["endpoint"] for d in data} == {"PFS", "OS", "CIR", "NRM", "aGVHD", "cGVHD", "MRD"}
    assert all(set(d) >= {"id", "time", "status", "censored", "source"} for d in data)


def test_derive_table(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "endpoints", "derive", V3, COHORT)
    assert status == 0
    assert "SYN-000001" in out and "Disease recurrence" in out
    assert out.rstrip().endswith("40 records (NCT06125106 version 3): 40 derived, 0 with errors")


def test_bad_records_are_reported_and_counted(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "endpoints", "derive", V3, WITH_ERRORS, "--format", "jsonl")
    assert status == 1
    ids = {json.loads(line)["id"] for line in out.splitlines()}
    assert len(ids) == 4
    lines = err.splitlines()
    assert lines[-1] == "8 records (NCT06125106 version 3): 4 derived, 4 with errors"
    assert (
        "record ERR-DEATH-BEFORE-TRANSPLANT, field death: endpoint: PFS, OS, CIR, NRM, aGVHD,"
        " cGVHD, MRD: death on 2024-11-02 is before the origin 2024-11-20 (transplant)"
    ) in lines
    assert any(line.startswith("record ERR-RELAPSE-AFTER-DEATH, field relapse:") for line in lines)
    assert any(line.startswith("record ERR-UNDATED-DEATH, field death:") for line in lines)
    assert (
        "record ERR-BAD-STAGE, field agvhd_skin_stage[0].value: out-of-range: 7 is outside"
        " the plausible range 0 to 4"
    ) in lines


def test_a_version_without_endpoints(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "endpoints", "estimate", str(SEED / "v2.yaml"), COHORT)
    assert status == 1
    assert "NCT06125106 version 2 defines no endpoints" in err


def test_estimates_match_lifelines_on_the_same_data(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, _ = run(
        capsys, "endpoints", "estimate", V3, COHORT, "--format", "json", "--plot", str(tmp_path)
    )
    assert status == 0
    found = {e["endpoint"]: e for e in json.loads(out)["estimates"]}
    rows, _ = derive_many(protocode.load(V3), records(COHORT))

    def of(endpoint: str) -> tuple[list[int], list[int]]:
        mine = [r for r in rows if r.endpoint == endpoint]
        return [r.time for r in mine], [r.censored or 0 for r in mine]

    # Kaplan-Meier for PFS and OS. The horizon is day 366 for the cohort's leap-year origins.
    for endpoint in ("PFS", "OS"):
        times, codes = of(endpoint)
        km = KaplanMeierFitter().fit(times, [c == 0 for c in codes])
        horizon = found[endpoint]["horizon_days"]
        assert found[endpoint]["value"] == pytest.approx(km.predict(horizon), abs=1e-12)
        assert found[endpoint]["method"] == "kaplan-meier"
    # Aalen-Johansen for relapse: no two events of the cohort share a day, so lifelines
    # needs no tie-breaking here and is fitted on the rows as they are.
    times, codes = of("CIR")
    cause = [{0: 1, 1: 0, 2: 2}[c] for c in codes]
    event_days = [t for t, c in zip(times, cause, strict=True) if c]
    assert len(event_days) == len(set(event_days))
    aj = AalenJohansenFitter(calculate_variance=False).fit(times, cause, event_of_interest=1)
    horizon = found["CIR"]["horizon_days"]
    expected = float(aj.cumulative_density_.loc[:horizon].iloc[-1, 0])
    assert found["CIR"]["value"] == pytest.approx(expected, abs=1e-12)
    # MRD: responders among the evaluable.
    mrd = [r for r in rows if r.endpoint == "MRD"]
    responders = sum(r.status == "responder" for r in mrd)
    evaluable = responders + sum(r.status == "non_responder" for r in mrd)
    assert found["MRD"]["value"] == pytest.approx(responders / evaluable)
    assert found["MRD"]["censored"] == len(mrd) - evaluable
    # One picture per time-to-event endpoint and format.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{e}.{fmt}"
        for e in ("PFS", "OS", "CIR", "NRM", "aGVHD", "cGVHD")
        for fmt in ("png", "svg")
    )


def test_estimate_table_and_bad_plot_format(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, _ = run(capsys, "endpoints", "estimate", V3, WITH_ERRORS)
    assert status == 1
    assert "cumulative incidence" in out and "100 days" in out
    assert (
        "8 records (NCT06125106 version 3): 4 derived, 4 with errors (left out of the estimates)"
    ) in out
    status, _, err = run(
        capsys, "endpoints", "estimate", V3, COHORT, "--plot", str(tmp_path), "--plot-format", "gif"
    )
    assert status == 1
    assert "unknown plot format 'gif'" in err
