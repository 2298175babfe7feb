"""Dosing: schedules in the protocol file and their checks, the planned calendar, compliance."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import FIXTURES, SEED
from protocode.cli import main
from protocode.dosing import check_dosing, mosteller_bsa, plan, schedules
from protocode.errors import CheckError, LoadError, ProtocodeError, RecordError
from protocode.pipeline import load, load_text
from protocode.screen import Protocol

DOSING = FIXTURES / "dosing"
BASE = (DOSING / "base.yaml").read_text(encoding="utf-8")
SEED_V2 = SEED / "v2.yaml"

SEED_SCHEDULE = """\
dosing:
  - id: BLINA
    arm: Blinatumomab Group
    drug: blinatumomab
    dose: 28 ug
    route: intravenous
    frequency: once daily
    doses: 7
    start: conditioning_start - 7 days
    ends_before: conditioning_start
    tolerance: {dose: 10 %, time: 2 h}
"""


def protocol_with(dosing: str, path: str = "dosing.yaml") -> Protocol:
    """The base fixture with a dosing section appended, loaded and checked."""
    return load_text(BASE + textwrap.dedent(dosing), path)


def problems(dosing: str) -> list[str]:
    """Every diagnostic of the base fixture with `dosing`, as 'line:col: code: message'."""
    with pytest.raises(ProtocodeError) as caught:
        schedules(protocol_with(dosing))
    assert isinstance(caught.value, LoadError | CheckError)
    out = []
    for d in caught.value.diagnostics:
        assert d.span is not None
        out.append(f"{d.span.line}:{d.span.col}: {d.code}: {d.message}")
    return out


def schedule(**changes: str) -> str:
    """The seed schedule with some fields' text replaced (None-free YAML text)."""
    lines = SEED_SCHEDULE.splitlines()
    out = []
    for line in lines:
        key = line.strip().removeprefix("- ").split(":", 1)[0]
        if key in changes:
            indent = line[: len(line) - len(line.lstrip())]
            prefix = "- " if line.strip().startswith("- ") else ""
            if changes[key]:
                out.append(f"{indent}{prefix}{key}: {changes[key]}")
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def base_line(text: str) -> int:
    """The line of the combined file holding `text` (in the appended section)."""
    combined = (BASE + SEED_SCHEDULE).splitlines()
    return next(n for n, line in enumerate(combined, 1) if text in line)


# --- stage 1: the format and its checks ------------------------------------------------------


def test_seed_v2_states_the_blinatumomab_schedule() -> None:
    protocol = load(SEED_V2)
    (blina,) = schedules(protocol)
    assert blina.id == "BLINA"
    assert blina.schedule.drug == "blinatumomab"
    assert (blina.amount, blina.unit.text, blina.dose_unit.text) == (28, "ug", "ug")
    assert blina.schedule.route == "intravenous"
    assert blina.count == 7
    assert blina.anchors == ("conditioning_start",)
    assert blina.dose_tolerance == pytest.approx(0.1)
    assert blina.time_tolerance.total_seconds() == 7200


def test_released_v1_has_no_dosing_and_stays_valid() -> None:
    protocol = load(SEED / "v1.yaml")
    assert protocol.checked.doc.dosing == ()
    assert schedules(protocol) == ()


def test_the_seed_schedule_checks() -> None:
    (blina,) = check_dosing(protocol_with(SEED_SCHEDULE).checked)
    assert blina.count == 7


def test_duration_gives_the_number_of_doses() -> None:
    text = schedule(frequency="every 12 hours", doses="duration: 3 days")
    text = text.replace("doses: duration:", "duration:")
    (s,) = schedules(protocol_with(text))
    assert s.count == 6
    text = schedule(frequency="every 12 hours", doses="duration: 30 h").replace(
        "doses: duration:", "duration:"
    )
    (message,) = problems(text)
    assert "30 h is not a whole number of intervals of 12 hours (every 12 hours)" in message


def test_dose_without_a_unit() -> None:
    line = base_line("dose: 28 ug")
    assert problems(schedule(dose="28")) == [
        f"{line}:11: unit: '28' has no unit; write one, e.g. '28 ug'"
    ]


def test_dose_unit_that_is_not_a_dose() -> None:
    line = base_line("dose: 28 ug")
    assert problems(schedule(dose="28 mL")) == [
        f"{line}:14: unit: a dose is a mass, an amount of substance or an activity, "
        "but mL is a volume"
    ]


def test_unknown_dose_unit_points_into_the_unit() -> None:
    line = base_line("dose: 28 ug")
    (message,) = problems(schedule(dose="28 mgg"))
    assert message.startswith(f"{line}:14: unit: unknown unit 'mgg'")


def test_per_kg_dose_needs_per_weight() -> None:
    line = base_line("dose: 28 ug")
    assert problems(schedule(dose="15 mg/kg")) == [
        f"{line}:14: dose: a dose in mg/kg is per kg; say so with 'per: weight'"
    ]


def test_per_body_measure_doses_check() -> None:
    text = schedule(dose="15 mg/kg\n    per: weight")
    (s,) = schedules(protocol_with(text))
    assert (s.unit.text, s.dose_unit.text) == ("mg/kg", "mg")
    text = schedule(dose="1.5 mg/m2\n    per: bsa")
    (s,) = schedules(protocol_with(text))
    assert (s.amount, s.dose_unit.text) == (pytest.approx(1.5), "mg")


def test_per_bsa_dose_written_per_kg() -> None:
    line = base_line("dose: 28 ug")
    assert problems(schedule(dose="15 mg/kg\n    per: bsa")) == [
        f"{line}:14: dose: a dose per bsa is written per m2, e.g. '15 mg/m2', not in mg/kg"
    ]


def test_route_not_in_the_list() -> None:
    line = base_line("route: intravenous")
    (message,) = problems(schedule(route="intravenously"))
    assert message.startswith(f"{line}:12: schema: 'route' must be one of intravenous,")
    assert "did you mean 'intravenous'?" in message


def test_impossible_schedule_seven_doses_in_five_days() -> None:
    text = (DOSING / "seed_impossible.yaml").read_text(encoding="utf-8")
    (message,) = problems(text)
    line = len((BASE + text).splitlines()) - 1
    assert message == (
        f"{line}:12: schedule: impossible schedule: 7 doses once daily from "
        "'conditioning_start - 5 days' cannot all be given before conditioning_start "
        "(5 days later; room for 5)"
    )


def test_seven_doses_in_seven_days_fit_and_through_a_definition_too() -> None:
    assert schedules(protocol_with(SEED_SCHEDULE))
    text = schedule(start="day_minus_10", ends_before="transplant")
    text = text.replace("ends_before: transplant", "ends_before: transplant")
    assert schedules(protocol_with(text))[0].anchors == ("transplant",)
    bad = schedule(start="day_minus_10", doses="11", ends_before="transplant")
    (message,) = problems(bad)
    assert "impossible schedule: 11 doses once daily" in message


def test_unknown_anchors() -> None:
    line = base_line("ends_before: conditioning_start")
    assert problems(schedule(ends_before="conditioning")) == [
        f"{line}:18: anchor: unknown anchor 'conditioning' (did you mean 'conditioning_start'?)"
    ]
    start = base_line("start: conditioning_start")
    (message,) = problems(schedule(start="conditoning_start - 7 days"))
    assert message.startswith(f"{start}:12: name: unknown name 'conditoning_start'")


def test_start_must_be_a_date_relative_to_anchors() -> None:
    start = base_line("start: conditioning_start")
    assert problems(schedule(start="weight")) == [
        f"{start}:12: type: a schedule starts on a date, but this is a quantity in kg (mass)"
    ]
    assert problems(schedule(start="birth_date + 30 days")) == [
        f"{start}:12: anchor: a schedule starts relative to anchors, but 'birth_date' is "
        "a fact; declare it with 'kind: anchor'"
    ]


def test_ends_before_must_name_an_anchor() -> None:
    line = base_line("ends_before: conditioning_start")
    assert problems(schedule(ends_before="weight")) == [
        f"{line}:18: anchor: 'weight' is a fact, not an anchor (kind: anchor)"
    ]


def test_doses_or_duration_and_once() -> None:
    line = base_line("id: BLINA")
    assert problems(schedule(doses="")) == [
        f"{line}:9: schedule: schedule 'BLINA' needs 'doses' or 'duration'"
    ]
    freq = base_line("frequency: once daily")
    assert problems(schedule(frequency="once")) == [
        f"{freq}:16: schedule: a schedule given 'once' has 1 dose, not 7"
    ]


def test_tolerances_are_checked() -> None:
    line = base_line("tolerance:")
    (message,) = problems(schedule(tolerance="{dose: 10 mg, time: 2 h}"))
    assert message == (
        f"{line}:23: tolerance: a dose tolerance is a percentage like '10 %', not '10 mg'"
    )
    (message,) = problems(schedule(tolerance="{dose: 10 %, time: 2 kg}"))
    assert "a time tolerance is a duration" in message


def test_all_problems_of_a_file_at_once() -> None:
    text = schedule(dose="28", ends_before="nowhere", tolerance="{dose: 1 h}")
    assert len(problems(text)) == 3


# --- stage 2: the planned calendar -----------------------------------------------------------

SEED_RECORD = {"id": "P1", "conditioning_start": "2024-04-08", "transplant": "2024-04-15"}


def test_seed_plan_is_seven_days_before_conditioning() -> None:
    doses = plan(load(SEED_V2), SEED_RECORD)
    assert [d.number for d in doses] == list(range(1, 8))
    assert [d.date for d in doses] == [dt.date(2024, 4, day) for day in range(1, 8)]
    first, last = doses[0], doses[-1]
    assert (first.earliest, first.latest) == (
        dt.datetime(2024, 3, 31, 22, 0),
        dt.datetime(2024, 4, 2, 2, 0),
    )
    # The last window is cut at conditioning_start: no dose on or after that day.
    assert last.latest == dt.datetime(2024, 4, 8)
    assert {(d.dose, d.unit, d.route, d.drug) for d in doses} == {
        (28, "ug", "intravenous", "blinatumomab")
    }


def test_plan_ignores_administrations_and_accepts_records() -> None:
    protocol = load(SEED_V2)
    with_admins = {**SEED_RECORD, "administrations": []}
    assert plan(protocol, with_admins) == plan(protocol, protocol.record(SEED_RECORD))


def test_missing_anchor_is_a_per_record_error() -> None:
    with pytest.raises(RecordError) as caught:
        plan(load(SEED_V2), {"id": "P2", "transplant": "2024-04-15"})
    (d,) = caught.value.diagnostics
    assert (d.record_id, d.field) == ("P2", "conditioning_start")
    assert d.message == (
        "cannot plan schedule BLINA: anchor 'conditioning_start' is missing "
        "(start: conditioning_start - 7 days)"
    )


def test_anchors_that_leave_no_room_are_a_per_record_error() -> None:
    text = schedule(start="day_minus_10", ends_before="conditioning_start")
    protocol = protocol_with(text)
    record = {"id": "P3", "transplant": "2024-04-15", "conditioning_start": "2024-04-08"}
    with pytest.raises(RecordError) as caught:
        plan(protocol, record)
    assert "dose 5 of 7 (planned 2024-04-09) falls outside the record's anchors" in str(
        caught.value.diagnostics[0].message
    )
    record["conditioning_start"] = "2024-04-12"
    assert len(plan(protocol, record)) == 7


def test_per_kg_dose_is_resolved_exactly() -> None:
    protocol = protocol_with(schedule(dose="15 mg/kg\n    per: weight"))
    doses = plan(protocol, {**SEED_RECORD, "weight": 70.3})
    assert doses[0].dose == Fraction("1054.5")
    assert doses[0].dose_text == "1054.5 mg"
    assert doses[0].basis == "weight 70.3 kg"
    with pytest.raises(RecordError) as caught:
        plan(protocol, SEED_RECORD)
    assert caught.value.diagnostics[0].field == "weight"


def test_per_bsa_dose_uses_mosteller_rounded_exactly() -> None:
    protocol = protocol_with(schedule(dose="1.5 mg/m2\n    per: bsa"))
    doses = plan(protocol, {**SEED_RECORD, "weight": 64, "height": 225})
    # sqrt(225 * 64 / 3600) = sqrt(4) = 2 exactly.
    assert doses[0].dose == 3
    assert doses[0].basis.startswith("BSA 2 m2 (Mosteller")


def test_mosteller_exact_rounding() -> None:
    assert mosteller_bsa(Fraction(180), Fraction(80)) == Fraction("2.00")
    assert mosteller_bsa(Fraction(170), Fraction(65)) == Fraction("1.75")
    # sqrt(0.9 * 0.9 / 3600) = 0.015 exactly, a tie: rounds half up to 0.02.
    assert mosteller_bsa(Fraction(9, 10), Fraction(9, 10)) == Fraction("0.02")


@given(
    st.integers(min_value=5000, max_value=25000).map(lambda n: Fraction(n, 100)),
    st.integers(min_value=2000, max_value=30000).map(lambda n: Fraction(n, 100)),
)
def test_mosteller_matches_a_high_precision_square_root(height: Fraction, weight: Fraction) -> None:
    bsa = mosteller_bsa(height, weight)
    exact_square = height * weight / 3600
    # The rounded value is within half a hundredth of the true root, ties going up.
    assert (bsa - Fraction(1, 200)) ** 2 <= exact_square
    assert exact_square < (bsa + Fraction(1, 200)) ** 2


def test_cli_dosing_plan(capsys: pytest.CaptureFixture[str]) -> None:
    examples = str(SEED / "examples" / "dosing.jsonl")
    assert main(["dosing", "plan", str(SEED_V2), examples]) == 1
    out = capsys.readouterr().out
    assert "ZJU-101 │ BLINA    │ 1      │ 2024-03-15 │ 2024-03-14 22:00 │ 2024-03-16 02:00" in out
    assert "record ZJU-103, field conditioning_start: dosing: cannot plan schedule BLINA" in out
    assert main(["dosing", "plan", str(SEED_V2), examples, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in data] == ["ZJU-101", "ZJU-102", "ZJU-103"]
    assert len(data[0]["planned"]) == 7
    assert data[0]["planned"][6]["latest"] == "2024-03-22T00:00:00"
    assert data[2]["errors"][0]["field"] == "conditioning_start"


def test_cli_check_reports_dosing_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "impossible.yaml"
    bad.write_text(BASE + (DOSING / "seed_impossible.yaml").read_text(encoding="utf-8"))
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "schedule: impossible schedule: 7 doses once daily" in err
