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
from protocode.core.errors import CheckError, LoadError, ProtocodeError, RecordError
from protocode.dosing import (
    ComplianceReader,
    ComplianceResult,
    DosedRecord,
    PlannedDose,
    check_dosing,
    check_many,
    compliance,
    mosteller_bsa,
    plan,
    schedules,
)
from protocode.pipeline import load, load_text
from protocode.screening import Protocol

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


def test_the_seed_folder_doses_with_its_version_in_force() -> None:
    # v3 (the endpoints) is in force and the draft v4 (illustrative) keep v2's schedule.
    assert load(SEED) is load(SEED / "v3.yaml")
    (in_force,) = schedules(load(SEED_V2))
    for name in ("v3.yaml", "v4.yaml"):
        (draft,) = schedules(load(SEED / name))
        assert (draft.schedule.drug, draft.amount, draft.count, draft.anchors) == (
            in_force.schedule.drug,
            in_force.amount,
            in_force.count,
            in_force.anchors,
        ), name


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


def test_load_rejects_a_broken_dosing_section_with_the_diagnostics_of_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.yaml"
    broken = schedule(dose="28 mg/m2", ends_before="transplnt")
    bad.write_text(BASE + textwrap.dedent(broken), encoding="utf-8")
    with pytest.raises(CheckError) as caught:
        load(bad)
    codes = [(d.code, d.span.line if d.span else 0) for d in caught.value.diagnostics]
    assert codes == [
        ("dose", base_line("dose: 28 ug")),
        ("anchor", base_line("ends_before: conditioning_start")),
    ]
    assert main(["check", "--format", "json", str(bad)]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed == [d.to_json() for d in caught.value.diagnostics]


# --- stage 3: compliance ---------------------------------------------------------------------

# Conditioning starts 2024-03-22, so the 7 doses are planned 2024-03-15 … 2024-03-21.
COURSE_RECORD = {"id": "P1", "conditioning_start": "2024-03-22", "transplant": "2024-03-30"}


def dose_on(day: int, hour: str = "09:00", **changes: object) -> dict[str, object]:
    """One administration of blinatumomab on a day of March 2024 (28 ug IV unless changed)."""
    out: dict[str, object] = {
        "time": f"2024-03-{day:02d}T{hour}",
        "drug": "blinatumomab",
        "dose": 28,
        "unit": "ug",
        "route": "intravenous",
    }
    out.update(changes)
    return out


def course(*administrations: dict[str, object]) -> dict[str, object]:
    return {**COURSE_RECORD, "administrations": list(administrations)}


def kinds(result: ComplianceResult) -> list[str]:
    return [d.kind for d in result.deviations]


ON_TIME = [dose_on(day) for day in range(15, 22)]

SEED_CASES = {
    "exactly compliant": (ON_TIME, []),
    "one missed day": ([a for a in ON_TIME if a["time"] != "2024-03-17T09:00"], ["missed"]),
    "28 mg instead of 28 ug": (
        [*ON_TIME[:2], dose_on(17, unit="mg"), *ON_TIME[3:]],
        ["wrong_dose"],
    ),
    "an 8th dose": ([*ON_TIME, dose_on(21, "20:00")], ["extra"]),
    "a dose running into conditioning": ([*ON_TIME[:6], dose_on(22)], ["wrong_order"]),
    "a course started a day late": ([dose_on(day) for day in range(16, 23)], ["wrong_order"]),
    "an 8th dose on the first day of conditioning": ([*ON_TIME, dose_on(22)], ["wrong_order"]),
}


@pytest.mark.parametrize("case", SEED_CASES)
def test_seed_cases_give_exactly_the_expected_deviations(case: str) -> None:
    administrations, expected = SEED_CASES[case]
    result = compliance(load(SEED_V2), course(*administrations))
    assert kinds(result) == expected
    assert result.compliant is (not expected)
    assert result.record_id == "P1"
    assert all(d.severity == "major" for d in result.deviations)


def test_seed_case_messages() -> None:
    protocol = load(SEED_V2)
    (wrong,) = compliance(protocol, course(*SEED_CASES["28 mg instead of 28 ug"][0])).deviations
    assert wrong.message == "dose 3 on 2024-03-17: 28 mg given, 28 ug planned (1000× the dose)"
    assert (wrong.schedule, wrong.number) == ("BLINA", 3)
    assert wrong.administration is not None and wrong.administration.index == 2
    (missed,) = compliance(protocol, course(*SEED_CASES["one missed day"][0])).deviations
    assert missed.message == (
        "dose 3 on 2024-03-17: missed (nothing given from 2024-03-16 22:00 before 2024-03-18 02:00)"
    )
    assert missed.administration is None
    (extra,) = compliance(protocol, course(*SEED_CASES["an 8th dose"][0])).deviations
    assert extra.message == (
        "2024-03-21 20:00: 28 ug of blinatumomab given with no planned dose left for it"
    )
    assert (extra.schedule, extra.number) == ("BLINA", None)
    late = compliance(protocol, course(*SEED_CASES["a dose running into conditioning"][0]))
    (order,) = late.deviations
    assert order.message == (
        "dose 7 on 2024-03-21: given 2024-03-22 09:00, on or after conditioning_start (2024-03-22)"
    )
    assert late.summary == "1 deviation (1 major, 0 minor): 1 wrong_order"
    ok = compliance(protocol, course(*ON_TIME))
    assert ok.summary == "compliant: all 7 planned doses given as planned"


def test_dose_tolerance_is_exact_and_inclusive() -> None:
    protocol = load(SEED_V2)

    def third(**changes: object) -> list[str]:
        return kinds(
            compliance(protocol, course(*ON_TIME[:2], dose_on(17, **changes), *ON_TIME[3:]))
        )

    # 10 % of 28 ug is 2.8 ug: exactly at the tolerance is fine, a hair beyond is not.
    assert third(dose=Fraction("30.8")) == []
    assert third(dose=Fraction("25.2")) == []
    assert third(dose=Fraction("30.8001")) == ["wrong_dose"]
    assert third(dose=Fraction("25.1999")) == ["wrong_dose"]
    # Compared after unit conversion, exactly.
    assert third(dose=Fraction("0.0308"), unit="mg") == []
    assert third(dose=28000, unit="ng") == []
    assert third(dose=28, unit="µg") == []
    assert third(dose=Fraction("0.0309"), unit="mg") == ["wrong_dose"]
    result = compliance(protocol, course(*ON_TIME[:2], dose_on(17, dose=31), *ON_TIME[3:]))
    assert result.deviations[0].message == (
        "dose 3 on 2024-03-17: 31 ug given, 28 ug planned "
        "(≈10.7 % more than planned; tolerance 10 %)"
    )


def test_wrong_route_is_a_major_deviation() -> None:
    result = compliance(
        load(SEED_V2), course(*ON_TIME[:3], dose_on(18, route="subcutaneous"), *ON_TIME[4:])
    )
    (d,) = result.deviations
    assert (d.kind, d.severity, d.number) == ("wrong_route", "major", 4)
    assert d.message == "dose 4 on 2024-03-18: given subcutaneous, planned intravenous"


def test_out_of_window_is_minor_within_a_day_of_the_window() -> None:
    protocol = load(SEED_V2)
    # Dose 3 given at 05:00 the next morning takes dose 4's window; dose 4's own
    # administration is then left over and paired with dose 3, 7 hours after its window.
    late = course(*ON_TIME[:2], dose_on(18, "05:00"), *ON_TIME[3:])
    (d,) = compliance(protocol, late).deviations
    assert (d.kind, d.severity, d.number) == ("out_of_window", "minor", 3)
    assert d.message == (
        "dose 3 on 2024-03-17: given 2024-03-18 09:00, 7 h after its window "
        "2024-03-16 22:00 – 2024-03-18 02:00"
    )
    # The first dose given two days early: more than a day before its window.
    early = course(dose_on(13), *ON_TIME[1:])
    (d,) = compliance(protocol, early).deviations
    assert (d.kind, d.severity, d.number) == ("out_of_window", "major", 1)
    assert "1 day 13 h before its window" in d.message
    # Just inside the time tolerance is no deviation.
    assert compliance(protocol, course(dose_on(14, "22:00"), *ON_TIME[1:])).compliant


def test_wrong_order_before_a_starts_after_anchor() -> None:
    protocol = protocol_with((DOSING / "q12h_per_kg.yaml").read_text(encoding="utf-8"))
    record: dict[str, object] = {
        "id": "M1",
        "transplant": "2024-04-15",
        "conditioning_start": "2024-04-08",
        "weight": 70,
    }
    doses = plan(protocol, record)
    assert [d.dose_text for d in doses] == ["1050 mg"] * 6

    def mesna(when: str, drug: str = "MESNA", dose: object = 1050, unit: str = "mg") -> object:
        return {"time": when, "drug": drug, "dose": dose, "unit": unit, "route": "intravenous"}

    # Doses 2-6 on time; the first given on transplant day, named by its ATC code, in g.
    admins = [mesna((d.earliest + dt.timedelta(hours=2)).isoformat()) for d in doses[1:]]
    admins.append(mesna("2024-04-15T22:30", "R05CB05", Fraction("1.05"), "g"))
    result = compliance(protocol, {**record, "administrations": admins})
    (d,) = result.deviations
    assert (d.kind, d.number) == ("wrong_order", 1)
    assert d.message.endswith("given 2024-04-15 22:30, on or before transplant (2024-04-15)")


def test_a_schedule_named_by_an_administration() -> None:
    protocol = load(SEED_V2)
    result = compliance(protocol, course(*[{**a, "schedule": "BLINA"} for a in ON_TIME]))
    assert result.compliant
    bad = course(*ON_TIME[:6], {**ON_TIME[6], "schedule": "BLIN"})
    with pytest.raises(RecordError) as caught:
        compliance(protocol, bad)
    (d,) = caught.value.diagnostics
    assert (d.field, d.code) == ("administrations[6].schedule", "unknown-schedule")
    assert "did you mean 'BLINA'?" in d.message


def errors_of(*administrations: object, record: dict[str, object] | None = None) -> list[str]:
    """'field: code: message' of every error of a seed record with these administrations."""
    data = {**(record or COURSE_RECORD), "administrations": list(administrations)}
    (result,) = check_many(load(SEED_V2), [data])
    assert isinstance(result, RecordError)
    assert {d.record_id for d in result.diagnostics} == {data.get("id", "#1")}
    return [f"{d.field}: {d.code}: {d.message}" for d in result.diagnostics]


def test_bad_administration_data_is_a_per_record_error_with_field_paths() -> None:
    assert errors_of(*ON_TIME[:2], dose_on(17, unit="ugg")) == [
        "administrations[2].unit: unknown-unit: unknown unit 'ugg'; did you mean 'ug'?"
    ]
    assert errors_of(dose_on(15, time="2024-03-15 morning")) == [
        "administrations[0].time: bad-value: expected an ISO date-time like "
        "2024-03-17T09:30, got '2024-03-15 morning'"
    ]
    assert errors_of(dose_on(15, time="2024-03-15")) == [
        "administrations[0].time: bad-value: expected an ISO date-time like "
        "2024-03-17T09:30, got '2024-03-15'"
    ]
    assert errors_of(dose_on(15, time="2024-02-30T09:00")) != []
    assert errors_of(dose_on(15, drug="blinatumomb")) == [
        "administrations[0].drug: unknown-drug: unknown drug 'blinatumomb': no schedule of the "
        "protocol gives it (did you mean 'blinatumomab'?)"
    ]
    missing = dose_on(15)
    del missing["route"]
    assert errors_of(missing) == [
        "administrations[0].route: missing-field: missing required field 'route'"
    ]
    assert errors_of(dose_on(15, route="iv")) == [
        "administrations[0].route: bad-value: unknown route 'iv' (expected intravenous, "
        "subcutaneous, oral, intramuscular, intrathecal)"
    ]
    assert errors_of(dose_on(15, unit="mL")) == [
        "administrations[0].unit: bad-unit: a dose is a mass, an amount of substance or an "
        "activity, but mL is a volume"
    ]
    assert errors_of(dose_on(15, unit="mmol")) == [
        "administrations[0].unit: bad-unit: mmol cannot be compared with the planned dose of "
        "BLINA in ug"
    ]
    assert errors_of(dose_on(15, dose=0)) == [
        "administrations[0].dose: out-of-range: a dose must be positive, got 0"
    ]
    assert errors_of(dose_on(15, dose="28")) == [
        "administrations[0].dose: bad-value: expected a number, got '28'"
    ]
    assert errors_of(dose_on(15, batch="A1")) == [
        "administrations[0].batch: unknown-field: unknown field 'batch' (expected time, drug, "
        "dose, unit, route, schedule)"
    ]
    assert errors_of("28 ug") == [
        "administrations[0]: bad-value: expected an administration object (time, drug, dose, "
        "unit, route), got '28 ug'"
    ]


def test_every_bad_field_is_reported_with_the_records_own_errors() -> None:
    record = {**COURSE_RECORD, "weight": "heavy"}
    found = errors_of(dose_on(15, unit="ugg"), dose_on(16, time="soon"), record=record)
    assert [f.split(":")[0] for f in found] == [
        "administrations[0].unit",
        "administrations[1].time",
        "weight",
    ]
    data = {**COURSE_RECORD, "administrations": {"time": "2024-03-15T09:00"}}
    with pytest.raises(RecordError) as caught:
        compliance(load(SEED_V2), data)
    (d,) = caught.value.diagnostics
    assert (d.record_id, d.field) == ("P1", "administrations")


def test_check_many_goes_on_after_bad_records() -> None:
    protocol = load(SEED_V2)
    records: list[object] = [
        course(*ON_TIME),
        {**COURSE_RECORD, "id": "P2", "administrations": [dose_on(15, unit="ugg")]},
        {"id": "P3", "transplant": "2024-03-30", "administrations": []},
        {**course(*ON_TIME[1:]), "id": "P4"},
        {"administrations": []},
    ]
    results = list(check_many(protocol, records))  # type: ignore[arg-type]
    assert [type(r).__name__ for r in results] == [
        "ComplianceResult",
        "RecordError",
        "RecordError",
        "ComplianceResult",
        "RecordError",
    ]
    second, third, _, fifth = results[1], results[2], results[3], results[4]
    assert isinstance(second, RecordError) and second.diagnostics[0].field == (
        "administrations[0].unit"
    )
    assert isinstance(third, RecordError)
    assert (third.diagnostics[0].record_id, third.diagnostics[0].field) == (
        "P3",
        "conditioning_start",
    )
    assert isinstance(fifth, RecordError) and fifth.diagnostics[0].record_id == "#5"
    fourth = results[3]
    assert isinstance(fourth, ComplianceResult) and kinds(fourth) == ["missed"]


def test_reader_gives_dosed_records_and_plain_records_have_nothing_given() -> None:
    protocol = load(SEED_V2)
    record = ComplianceReader(protocol).parse(course(*ON_TIME))
    assert isinstance(record, DosedRecord)
    assert [a.time.day for a in record.administrations] == list(range(15, 22))
    assert record.administrations[0].to_json() == {
        "index": 0,
        "time": "2024-03-15T09:00:00",
        "drug": "blinatumomab",
        "dose": "28",
        "unit": "ug",
        "route": "intravenous",
    }
    assert compliance(protocol, record).compliant
    # A UTC offset is checked for form, not applied: wall-clock times as written.
    shifted = [{**a, "time": f"{a['time']}+08:00"} for a in ON_TIME]
    assert compliance(protocol, course(*shifted)).compliant
    plain = protocol.record(COURSE_RECORD)
    assert kinds(compliance(protocol, plain)) == ["missed"] * 7
    # plan() still ignores administrations, even bad ones.
    assert len(plan(protocol, course(dose_on(15, unit="ugg")))) == 7


# --- property tests ----------------------------------------------------------------------------

PROPERTY_PROTOCOLS = {
    "seed": (SEED_V2, {"conditioning_start": "2024-03-22", "transplant": "2024-03-30"}),
    "q12h per kg": (
        DOSING / "q12h_per_kg.yaml",
        {"conditioning_start": "2024-03-01", "transplant": "2024-03-10", "weight": 70.3},
    ),
}
_LOADED: dict[str, Protocol] = {}


def property_protocol(name: str) -> tuple[Protocol, dict[str, object]]:
    path, record = PROPERTY_PROTOCOLS[name]
    if name not in _LOADED:
        text = path.read_text(encoding="utf-8")
        _LOADED[name] = load(path) if name == "seed" else protocol_with(text)
    return _LOADED[name], {"id": "H1", **record}


def cores(doses: list[PlannedDose]) -> list[tuple[dt.datetime, dt.datetime]]:
    """The part of each dose's window that no other window overlaps."""
    out = []
    for k, d in enumerate(doses):
        start = max([d.earliest, *(o.latest for o in doses[:k])])
        end = min([d.latest, *(o.earliest for o in doses[k + 1 :])])
        assert start < end
        out.append((start, end))
    return out


def some_time(data: st.DataObject, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """A time in [start, end), to the second."""
    seconds = int((end - start).total_seconds())
    return start + dt.timedelta(seconds=data.draw(st.integers(0, seconds - 1)))


UNITS = {"ug": Fraction(1, 1000), "mg": Fraction(1), "ng": Fraction(1, 10**6), "g": Fraction(1000)}


def administration(
    dose: PlannedDose, when: dt.datetime, amount: Fraction, unit: str
) -> dict[str, object]:
    """An administration of `amount` (in the planned dose's unit), written in `unit`."""
    factor = UNITS[dose.unit] / UNITS[unit]
    return {
        "time": when.isoformat(),
        "drug": dose.drug.upper(),
        "dose": amount * factor,
        "unit": unit,
        "route": dose.route,
    }


def within(data: st.DataObject, planned: Fraction, tolerance: Fraction) -> Fraction:
    """A dose within the tolerance of `planned`, bounds included."""
    k = data.draw(st.integers(-1000, 1000))
    return planned * (1 + tolerance * Fraction(k, 1000))


def generated_course(
    data: st.DataObject, name: str, *, core: bool
) -> tuple[Protocol, dict[str, object], list[PlannedDose], list[dict[str, object]]]:
    """A course from the plan: a random time in each window (or its core), doses within
    tolerance, the right route, in a random unit, listed in a random order."""
    protocol, record = property_protocol(name)
    doses = plan(protocol, record)
    (s,) = schedules(protocol)
    spans = cores(doses) if core else [(d.earliest, d.latest) for d in doses]
    admins = [
        administration(
            d,
            some_time(data, *span),
            within(data, d.dose, s.dose_tolerance),
            data.draw(st.sampled_from(sorted(UNITS))),
        )
        for d, span in zip(doses, spans, strict=True)
    ]
    return protocol, record, doses, data.draw(st.permutations(admins))


@given(st.data(), st.sampled_from(sorted(PROPERTY_PROTOCOLS)))
def test_a_course_generated_from_the_plan_is_compliant(data: st.DataObject, name: str) -> None:
    protocol, record, _, admins = generated_course(data, name, core=False)
    result = compliance(protocol, {**record, "administrations": admins})
    assert result.compliant, result.deviations


@given(st.data(), st.sampled_from(sorted(PROPERTY_PROTOCOLS)))
def test_an_administration_moved_out_of_its_window_is_flagged(
    data: st.DataObject, name: str
) -> None:
    protocol, record, doses, admins = generated_course(data, name, core=True)
    k = data.draw(st.integers(0, len(doses) - 1))
    dose = doses[k]
    (moved,) = [
        a
        for a in admins
        if dose.earliest <= dt.datetime.fromisoformat(str(a["time"])) < dose.latest
    ]
    seconds = data.draw(st.integers(1, 3 * 86400))
    if data.draw(st.booleans()):
        when = dose.earliest - dt.timedelta(seconds=seconds)
    else:
        when = dose.latest + dt.timedelta(seconds=seconds - 1)
    moved["time"] = when.isoformat()
    result = compliance(protocol, {**record, "administrations": admins})
    assert not result.compliant
    assert set(kinds(result)) <= {"out_of_window", "missed", "extra", "wrong_order"}


@given(st.data(), st.sampled_from(sorted(PROPERTY_PROTOCOLS)), st.booleans())
def test_a_dose_outside_the_tolerance_is_flagged(
    data: st.DataObject, name: str, above: bool
) -> None:
    protocol, record, doses, admins = generated_course(data, name, core=True)
    (s,) = schedules(protocol)
    k = data.draw(st.integers(0, len(doses) - 1))
    beyond = s.dose_tolerance + Fraction(data.draw(st.integers(1, 10**6)), 10**7)
    amount = doses[k].dose * (1 + beyond if above else 1 - beyond)
    admins[k] = administration(
        doses[k], dt.datetime.fromisoformat(str(admins[k]["time"])), amount, doses[k].unit
    )
    result = compliance(protocol, {**record, "administrations": admins})
    assert kinds(result) == ["wrong_dose"]


@given(st.data(), st.sampled_from(sorted(PROPERTY_PROTOCOLS)))
def test_a_perturbation_inside_the_tolerances_is_never_flagged(
    data: st.DataObject, name: str
) -> None:
    protocol, record, doses, admins = generated_course(data, name, core=True)
    (s,) = schedules(protocol)
    k = data.draw(st.integers(0, len(doses) - 1))
    dose = doses[k]
    (index,) = [
        i
        for i, a in enumerate(admins)
        if dose.earliest <= dt.datetime.fromisoformat(str(a["time"])) < dose.latest
    ]
    # Anywhere in its window (the time tolerance included), any dose within the tolerance.
    admins[index] = administration(
        dose,
        some_time(data, dose.earliest, dose.latest),
        within(data, dose.dose, s.dose_tolerance),
        dose.unit,
    )
    result = compliance(protocol, {**record, "administrations": admins})
    assert result.compliant, result.deviations


# --- the command line ------------------------------------------------------------------------

ADMINISTRATIONS = SEED / "examples" / "administrations.jsonl"


def test_cli_dosing_check_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dosing", "check", str(SEED_V2), str(ADMINISTRATIONS)]) == 1
    out = capsys.readouterr().out
    assert "│ ZJU-201 │ compliant " in out
    assert "│ ZJU-202 │ missed      │ BLINA    │ 3      │ major    │ dose 3 on 2024-03-17" in out
    assert "28 mg given, 28 ug planned (1000× the" in out
    assert "│ ZJU-204 │ extra " in out
    assert "│ ZJU-205 │ wrong_order " in out
    assert "record ZJU-206, field administrations[2].unit: unknown-unit: unknown unit 'ugg'" in out
    assert "record ZJU-206, field administrations[4].time: bad-value" in out
    assert out.rstrip().endswith(
        "6 records (NCT06125106 version 2): 1 compliant, 4 with deviations, 1 with errors"
    )


def test_cli_dosing_of_the_seed_folder(capsys: pytest.CaptureFixture[str]) -> None:
    """The folder names its version in force, v3, whose schedule is v2's: the same output
    but for the version it names."""
    examples = str(SEED / "examples" / "dosing.jsonl")

    def as_v2(text: str) -> str:
        assert text.startswith("protocol NCT06125106 version 3 (")
        return text.replace("version 3", "version 2").replace("v3.yaml", "v2.yaml")

    assert main(["dosing", "plan", str(SEED), examples]) == 1
    by_folder = capsys.readouterr().out
    assert main(["dosing", "plan", str(SEED_V2), examples]) == 1
    assert as_v2(by_folder) == capsys.readouterr().out
    assert main(["dosing", "check", str(SEED), str(ADMINISTRATIONS)]) == 1
    by_folder = capsys.readouterr().out
    assert main(["dosing", "check", str(SEED_V2), str(ADMINISTRATIONS)]) == 1
    assert as_v2(by_folder) == capsys.readouterr().out


def test_cli_dosing_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dosing", "check", str(SEED_V2), str(ADMINISTRATIONS), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["summary"] == {
        "records": 6,
        "compliant": 1,
        "with_deviations": 4,
        "with_errors": 1,
    }
    by_id = {r["id"]: r for r in data["records"]}
    assert list(by_id) == ["ZJU-201", "ZJU-202", "ZJU-203", "ZJU-204", "ZJU-205", "ZJU-206"]
    assert by_id["ZJU-201"]["compliant"] is True
    assert [d["kind"] for d in by_id["ZJU-203"]["deviations"]] == ["wrong_dose"]
    wrong = by_id["ZJU-203"]["deviations"][0]
    assert (wrong["severity"], wrong["number"], wrong["schedule"]) == ("major", 3, "BLINA")
    assert wrong["administration"]["unit"] == "mg"
    assert wrong["planned"]["dose"] == "28"
    assert [d["kind"] for d in by_id["ZJU-205"]["deviations"]] == ["wrong_order"]
    assert [e["field"] for e in by_id["ZJU-206"]["errors"]] == [
        "administrations[2].unit",
        "administrations[4].time",
    ]


def test_cli_dosing_check_exits_0_when_all_compliant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "ok.jsonl"
    records.write_text(json.dumps(course(*ON_TIME)) + "\n", encoding="utf-8")
    assert main(["dosing", "check", str(SEED_V2), str(records)]) == 0
    assert (
        capsys.readouterr()
        .out.rstrip()
        .endswith("1 record (NCT06125106 version 2): 1 compliant, 0 with deviations, 0 with errors")
    )
    assert main(["dosing", "check", str(SEED_V2), str(records), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"][0]["compliant"] is True


# --- holds -------------------------------------------------------------------------------------


def test_held_doses_within_the_allowance_are_minor() -> None:
    protocol = protocol_with(SEED_SCHEDULE + "    holds: 1\n")
    skipped_one = [a for a in ON_TIME if a["time"] != "2024-03-17T09:00"]
    result = compliance(protocol, course(*skipped_one))
    assert [(d.kind, d.severity) for d in result.deviations] == [("missed", "minor")]
    assert "held (1 of 1 allowed)" in result.deviations[0].message
    skipped_two = [a for a in skipped_one if a["time"] != "2024-03-18T09:00"]
    result = compliance(protocol, course(*skipped_two))
    assert [(d.kind, d.severity) for d in result.deviations] == [
        ("missed", "minor"),
        ("missed", "major"),
    ]


def test_a_schedule_cannot_allow_holding_every_dose() -> None:
    found = problems(SEED_SCHEDULE + "    holds: 7\n")
    assert any("holds: 7 of 7 doses may be held" in p for p in found)


# --- phases: named periods a schedule may be ordered by ----------------------------------------

PHASES = (DOSING / "phases.yaml").read_text(encoding="utf-8")
CONDITIONING = """\
phases:
  - id: conditioning
    start: conditioning_start
    end: transplant - 1 day
"""


def phase_problems(text: str) -> list[str]:
    """Every diagnostic of the base fixture with `text` appended, as 'line:col: code: message'."""
    return problems(text)


def line_of(text: str, needle: str) -> int:
    """The line of the base fixture with `text` appended that holds `needle`."""
    combined = (BASE + text).splitlines()
    return next(n for n, line in enumerate(combined, 1) if needle in line)


def test_phases_load_with_their_dates() -> None:
    protocol = protocol_with(PHASES)
    (phase,) = protocol.checked.doc.phases
    assert (phase.id, phase.start.text, phase.end is not None and phase.end.text) == (
        "conditioning",
        "conditioning_start",
        "transplant - 1 day",
    )
    assert phase.description.startswith("The routine conditioning regimen")
    (s,) = schedules(protocol)
    assert s.before is not None and s.before.phase == "conditioning"
    assert s.before.anchors == ("conditioning_start",)


def test_a_phase_plan_matches_the_anchor_based_seed_plan() -> None:
    by_phase = plan(protocol_with(PHASES), SEED_RECORD)
    assert by_phase == plan(load(SEED_V2), SEED_RECORD)
    assert by_phase[-1].latest == dt.datetime(2024, 4, 8)


@pytest.mark.parametrize("case", SEED_CASES)
def test_phase_compliance_matches_the_anchor_based_seed(case: str) -> None:
    administrations, expected = SEED_CASES[case]
    result = compliance(protocol_with(PHASES), course(*administrations))
    assert kinds(result) == expected
    assert kinds(result) == kinds(compliance(load(SEED_V2), course(*administrations)))


def test_phase_wrong_order_message_names_the_phase() -> None:
    administrations, _ = SEED_CASES["an 8th dose on the first day of conditioning"]
    (d,) = compliance(protocol_with(PHASES), course(*administrations)).deviations
    assert d.kind == "wrong_order"
    assert d.message.endswith("on or after the start of conditioning (2024-03-22)")


def test_starts_after_a_phase_is_after_its_end_or_its_start() -> None:
    after = schedule(start="transplant", doses="3", ends_before="")
    after = after.replace("tolerance:", "starts_after: conditioning\n    tolerance:")
    protocol = protocol_with(CONDITIONING + after)
    (s,) = schedules(protocol)
    assert s.after is not None and s.after.label == "the end of conditioning"
    doses = plan(protocol, SEED_RECORD)
    # The phase ends the day before transplant, so the first window opens at its midnight.
    assert doses[0].earliest == dt.datetime(2024, 4, 15)
    late = {"time": "2024-04-14T23:00", "drug": "blinatumomab", "dose": 28, "unit": "ug"}
    given = [{**late, "route": "intravenous"}]
    result = compliance(protocol, {**SEED_RECORD, "administrations": given})
    assert "on or before the end of conditioning (2024-04-14)" in result.deviations[0].message
    # Without an end, a schedule starting after the phase starts after its start.
    no_end = CONDITIONING.replace("    end: transplant - 1 day\n", "")
    start = schedule(start="conditioning_start", ends_before="")
    start = start.replace("tolerance:", "starts_after: conditioning\n    tolerance:")
    text = no_end + start
    assert phase_problems(text) == [
        f"{line_of(text, 'doses: 7') + 1}:12: schedule: impossible schedule: it "
        "starts on or before the start of conditioning, but must start after it"
    ]


def test_a_phase_can_make_a_schedule_impossible() -> None:
    text = CONDITIONING + schedule(start="transplant - 10 days", ends_before="conditioning")
    # The phase starts at conditioning_start, not a fixed distance from transplant: no check.
    assert len(schedules(protocol_with(text))) == 1
    text = CONDITIONING.replace("start: conditioning_start", "start: transplant - 7 days") + (
        schedule(start="transplant - 12 days", ends_before="conditioning")
    )
    assert phase_problems(text) == [
        f"{line_of(text, 'start: transplant - 12 days')}:12: schedule: impossible schedule: 7 "
        "doses once daily from 'transplant - 12 days' cannot all be given before the start "
        "of conditioning (5 days later; room for 5)"
    ]


def test_missing_phase_anchor_is_a_per_record_error() -> None:
    text = CONDITIONING + schedule(start="transplant - 20 days", ends_before="conditioning")
    with pytest.raises(RecordError) as caught:
        plan(protocol_with(text), {"id": "P9", "transplant": "2024-04-15"})
    (d,) = caught.value.diagnostics
    assert (d.record_id, d.field) == ("P9", "conditioning_start")
    assert d.message == (
        "cannot plan schedule BLINA: anchor 'conditioning_start' (ends_before: conditioning) "
        "is missing"
    )
    result = next(iter(check_many(protocol_with(text), [{"id": "P9", "transplant": "2024-04-15"}])))
    assert isinstance(result, RecordError)


def test_duplicate_phase_ids_and_names_clashing_with_data_or_definitions() -> None:
    text = (
        "phases:\n"
        "  - {id: conditioning, start: conditioning_start}\n"
        "  - {id: conditioning, start: transplant}\n"
        "  - {id: transplant, start: transplant}\n"
        "  - {id: day_minus_10, start: day_minus_10}\n"
    )
    first = line_of(text, "id: conditioning")
    assert phase_problems(text) == [
        f"{first + 1}:10: duplicate-id: duplicate phase id 'conditioning' (first used on line "
        f"{first})",
        f"{first + 2}:10: duplicate-name: phase 'transplant' has the same name as the data item "
        f"on line {line_of(text, '  transplant: {kind: anchor}')}",
        f"{first + 3}:10: duplicate-name: phase 'day_minus_10' has the same name as the "
        f"definition on line {line_of(text, '  day_minus_10:')}",
    ]


def test_phase_dates_must_be_dates_over_anchors_with_known_names() -> None:
    text = (
        "phases:\n"
        "  - id: a\n"
        "    start: weight\n"
        "  - id: b\n"
        "    start: birth_date\n"
        "  - id: c\n"
        "    start: conditioning_start\n"
        "    end: transplnt - 1 day\n"
    )
    found = phase_problems(text)
    assert found[0].startswith(
        f"{line_of(text, 'start: weight')}:12: type: a phase starts on a date, but this is a "
    )
    assert found[1] == (
        f"{line_of(text, 'start: birth_date')}:12: anchor: a phase starts relative to anchors, "
        "but 'birth_date' is a fact; declare it with 'kind: anchor'"
    )
    assert found[2].startswith(f"{line_of(text, 'end: transplnt')}:10: ")
    assert "transplnt" in found[2] and "transplant" in found[2]
    assert len(found) == 3


def test_ends_before_an_unknown_name_suggests_phases() -> None:
    text = CONDITIONING + schedule(ends_before="conditionin")
    assert phase_problems(text) == [
        f"{line_of(text, 'ends_before: conditionin')}:18: anchor: unknown anchor or phase "
        "'conditionin' (did you mean 'conditioning'?)"
    ]
    text = CONDITIONING + schedule(ends_before="weight")
    assert phase_problems(text) == [
        f"{line_of(text, 'ends_before: weight')}:18: anchor: 'weight' is a fact, not an anchor "
        "(kind: anchor) or a phase"
    ]


def test_a_schedule_ordered_by_a_bad_phase_reports_only_the_phase() -> None:
    text = CONDITIONING.replace("start: conditioning_start", "start: weight") + schedule(
        ends_before="conditioning"
    )
    (only,) = phase_problems(text)
    assert only.startswith(f"{line_of(text, 'start: weight')}:12: type: a phase starts")


# --- record numbers in administrations ----------------------------------------------------------


def test_a_dose_too_long_is_an_out_of_range_error_of_its_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dose follows the rule of every record number (at most 300 digits): 1e400 in a file
    is an error of its record and field, not an OverflowError in the ratio's message."""
    records = tmp_path / "doses.jsonl"
    too_long = json.dumps(course(*ON_TIME[:2], dose_on(17, dose=0), *ON_TIME[3:]))
    records.write_text(
        json.dumps(course(*ON_TIME)) + "\n" + too_long.replace('"dose": 0', '"dose": 1e400') + "\n",
        encoding="utf-8",
    )
    assert main(["dosing", "check", str(SEED_V2), str(records), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["records"] == 2
    (error,) = data["records"][1]["errors"]
    assert (error["code"], error["field"]) == ("out-of-range", "administrations[2].dose")
    assert error["message"] == (
        "1e400 is too long: a record number has at most 300 digits before and after the "
        "decimal point"
    )
    # The API reads the same way, whatever the number's type.
    for dose in (Fraction(10**400), Fraction(1, 10**301)):
        with pytest.raises(RecordError) as caught:
            compliance(load(SEED_V2), course(*ON_TIME[:2], dose_on(17, dose=dose), *ON_TIME[3:]))
        (diagnostic,) = caught.value.diagnostics
        assert (diagnostic.code, diagnostic.field) == ("out-of-range", "administrations[2].dose")


def test_a_huge_dose_ratio_is_shown_briefly() -> None:
    """The largest doses a record may hold, against the plan, give a short message."""
    protocol = load(SEED_V2)
    dose = Fraction(10**299 - 1)
    result = compliance(protocol, course(*ON_TIME[:2], dose_on(17, dose=dose), *ON_TIME[3:]))
    (wrong,) = result.deviations
    assert wrong.message.endswith("28 ug planned (≈3.57e+297× the dose)")
    tiny = Fraction(1, 10**299)
    result = compliance(protocol, course(*ON_TIME[:2], dose_on(17, dose=tiny), *ON_TIME[3:]))
    assert result.deviations[0].message.endswith("28 ug planned (≈3.57e-301× the dose)")
    # Ordinary ratios read as before.
    result = compliance(protocol, course(*ON_TIME[:2], dose_on(17, dose=100), *ON_TIME[3:]))
    assert result.deviations[0].message.endswith("(≈3.6× the dose)")


def test_a_broken_endpoint_and_a_broken_schedule_are_reported_together() -> None:
    # The section passes do not stop each other: a file's every problem comes at once.
    text = (SEED / "v3.yaml").read_text(encoding="utf-8")
    text = text.replace("    dose: 28 ug", "    dose: 28 furlongs", 1)
    text = text.replace("    horizon: 1 year", "    horizon: soon", 1)
    with pytest.raises(CheckError) as caught:
        load_text(text, "both.yaml")
    lines = text.splitlines()
    at = {lines[d.span.line - 1].strip() for d in caught.value.diagnostics if d.span}
    assert at == {"dose: 28 furlongs", "horizon: soon"}
