"""Endpoints: time-to-event definitions in the protocol file, checks, per-patient derivation."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import FIXTURES
from protocode.cli import main
from protocode.core.errors import CheckError, LoadError, ProtocodeError, RecordError
from protocode.endpoints import EndpointRow, derive, derive_many, endpoints
from protocode.pipeline import load, load_text
from protocode.screening import Protocol

PFS_OS_PATH = FIXTURES / "endpoints" / "pfs_os.yaml"
PFS_OS = PFS_OS_PATH.read_text(encoding="utf-8")

# Cumulative incidence of relapse: relapse, with death before relapse as the competing event.
CIR = """\
  - id: CIR
    name: Cumulative incidence of relapse
    kind: time_to_event
    origin: transplant
    events: [relapse]
    competing: [death]
    censor: last_follow_up
    horizon: 1 year
"""

DAY0 = dt.date(2024, 1, 10)
HORIZON = dt.date(2025, 1, 10)  # 1 year after DAY0: 366 days (2024 is a leap year)


def seed() -> Protocol:
    return load(PFS_OS_PATH)


def with_cir() -> Protocol:
    return load_text(PFS_OS + CIR, "cir.yaml")


def patient(
    follow_up: dt.date | None = None,
    relapse: list[dt.date] | None = None,
    death: list[dt.date] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "P1",
        "transplant": DAY0.isoformat(),
        "relapse": [d.isoformat() for d in relapse or []],
        "death": [d.isoformat() for d in death or []],
    }
    if follow_up is not None:
        out["last_follow_up"] = follow_up.isoformat()
    out.update(extra)
    return out


def rows(protocol: Protocol, data: dict[str, Any]) -> dict[str, EndpointRow]:
    return {r.endpoint: r for r in derive(protocol, data)}


def day(n: int) -> dt.date:
    return DAY0 + dt.timedelta(days=n)


# --- definitions -------------------------------------------------------------------------------


def test_fixture_endpoints_check() -> None:
    checked = endpoints(seed())
    assert [e.id for e in checked] == ["PFS", "OS"]
    pfs, os_ = checked
    assert pfs.events == ("relapse", "death")
    assert os_.events == ("death",)
    assert pfs.death == "death"
    assert (pfs.horizon.amount, pfs.horizon.months) == (12, True)


def test_released_protocol_has_no_endpoints() -> None:
    assert endpoints(load(FIXTURES.parent.parent / "protocol" / "NCT06125106" / "v1.yaml")) == ()


def problems(extra: str) -> list[str]:
    with pytest.raises(ProtocodeError) as caught:
        endpoints(load_text(PFS_OS + extra, "bad.yaml"))
    assert isinstance(caught.value, LoadError | CheckError)
    out = []
    for d in caught.value.diagnostics:
        assert d.span is not None
        out.append(f"{d.span.line}:{d.span.col}: {d.code}: {d.message}")
    return out


def endpoint(**changes: str) -> str:
    fields = {
        "id": "X",
        "name": "X",
        "kind": "time_to_event",
        "origin": "transplant",
        "events": "[relapse]",
        "censor": "last_follow_up",
        "horizon": "100 days",
    }
    fields.update(changes)
    first, *rest = fields.items()
    lines = [f"  - {first[0]}: {first[1]}"] + [f"    {k}: {v}" for k, v in rest if v != ""]
    return "\n".join(lines) + "\n"


def test_unknown_event_item_with_hint() -> None:
    (message,) = problems(endpoint(events="[relapes]"))
    assert "unknown event item 'relapes' in events (did you mean 'relapse'?)" in message
    assert message.startswith("41:14: name:")


def test_event_item_must_be_an_event() -> None:
    (message,) = problems(endpoint(competing="[last_follow_up]"))
    assert "'last_follow_up' is a fact; declare it with 'kind: event'" in message


def test_origin_and_censor_must_be_dates() -> None:
    found = problems(endpoint(origin="1 + 2", censor="nosuch"))
    assert any("origin is a date, but this is a number" in m for m in found)
    assert any("nosuch" in m for m in found)


def test_bad_horizon() -> None:
    (message,) = problems(endpoint(horizon="a while"))
    assert "horizon: a horizon is a whole number of days" in message
    (message,) = problems(endpoint(horizon="0 days"))
    assert "longer than 0 days" in message


def test_event_and_competing_overlap() -> None:
    (message,) = problems(endpoint(competing="[relapse]"))
    assert "'relapse' is both an event and a competing event of X" in message


def test_duplicate_id_and_schema() -> None:
    (message,) = problems(endpoint(id="PFS"))
    assert "duplicate endpoint id 'PFS' (first used on line 19)" in message
    (message,) = problems(endpoint(kind="survival"))
    assert "'kind' must be one of time_to_event, proportion" in message
    messages = problems(endpoint(kind="proportion"))
    assert any("missing required key 'assessment' in proportion endpoint" in m for m in messages)
    assert any("unknown key 'censor' in proportion endpoint" in m for m in messages)


# --- derivation --------------------------------------------------------------------------------


def test_event() -> None:
    r = rows(seed(), patient(follow_up=day(400), relapse=[day(143)]))
    assert (r["PFS"].status, r["PFS"].time, r["PFS"].date) == ("event", 143, day(143))
    assert r["PFS"].source == "relapse"
    assert r["PFS"].description == "Disease relapse or progression"
    assert r["PFS"].censored == 0
    assert (r["OS"].status, r["OS"].time) == ("censored", 366)


def test_composite_takes_first_date() -> None:
    r = rows(seed(), patient(follow_up=day(300), relapse=[day(100)], death=[day(150)]))
    assert (r["PFS"].status, r["PFS"].time, r["PFS"].source) == ("event", 100, "relapse")
    assert (r["OS"].status, r["OS"].time) == ("event", 150)
    r = rows(seed(), patient(follow_up=day(300), death=[day(150)]))
    assert (r["PFS"].status, r["PFS"].time, r["PFS"].source) == ("event", 150, "death")


def test_competing_event() -> None:
    r = rows(with_cir(), patient(follow_up=day(90), death=[day(90)]))
    assert (r["CIR"].status, r["CIR"].time, r["CIR"].source) == ("competing", 90, "death")
    assert r["CIR"].censored == 2
    assert r["CIR"].description == "Death from any cause"
    # Relapse first, then death: the event; the death does not compete.
    r = rows(with_cir(), patient(follow_up=day(120), relapse=[day(60)], death=[day(120)]))
    assert (r["CIR"].status, r["CIR"].time) == ("event", 60)
    # The same day: death comes last, so the relapse is the event.
    r = rows(with_cir(), patient(follow_up=day(30), relapse=[day(30)], death=[day(30)]))
    assert (r["CIR"].status, r["CIR"].source) == ("event", "relapse")


def test_censored_before_horizon() -> None:
    r = rows(seed(), patient(follow_up=day(200)))
    for name in ("PFS", "OS"):
        assert (r[name].status, r[name].time, r[name].date) == ("censored", 200, day(200))
        assert r[name].source is None
        assert r[name].description == "censored at last_follow_up"


def test_event_exactly_at_horizon() -> None:
    r = rows(seed(), patient(follow_up=HORIZON, death=[HORIZON]))
    assert (r["OS"].status, r["OS"].time, r["OS"].date) == ("event", 366, HORIZON)
    assert (r["PFS"].status, r["PFS"].time) == ("event", 366)


def test_event_after_horizon_is_censored_at_horizon() -> None:
    late = HORIZON + dt.timedelta(days=1)
    r = rows(seed(), patient(follow_up=late, relapse=[late], death=[late]))
    for name in ("PFS", "OS"):
        assert (r[name].status, r[name].time, r[name].date) == ("censored", 366, HORIZON)
        assert r[name].description == "censored at the horizon (1 year)"


def test_calendar_horizon_clamps_to_month_end() -> None:
    data = patient(follow_up=dt.date(2025, 6, 1), transplant="2024-02-29")
    r = rows(seed(), data)
    assert (r["OS"].date, r["OS"].time) == (dt.date(2025, 2, 28), 365)


def test_event_decides_without_follow_up_date() -> None:
    r = rows(seed(), patient(death=[day(10)]))
    assert r["OS"].status == "event"


def test_to_json() -> None:
    r = rows(seed(), patient(follow_up=day(20), relapse=[day(20)]))
    assert r["PFS"].to_json() == {
        "id": "P1",
        "endpoint": "PFS",
        "name": "Progression-free survival",
        "origin": "2024-01-10",
        "date": "2024-01-30",
        "time": 20,
        "status": "event",
        "censored": 0,
        "description": "Disease relapse or progression",
        "source": "relapse",
    }


# --- timeline errors ---------------------------------------------------------------------------


def record_errors(data: dict[str, Any], protocol: Protocol | None = None) -> list[str]:
    with pytest.raises(RecordError) as caught:
        derive(protocol or seed(), data)
    return [f"{d.field}: {d.message}" for d in caught.value.diagnostics]


def test_event_before_origin() -> None:
    found = record_errors(patient(follow_up=day(50), relapse=[day(-3)]))
    assert found == [
        "relapse: PFS: relapse on 2024-01-07 is before the origin 2024-01-10 (transplant)"
    ]


def test_death_before_origin() -> None:
    found = record_errors(patient(follow_up=day(50), death=[day(-1)]))
    # One problem, one message, naming every endpoint it affects.
    assert found == [
        "death: PFS, OS: death on 2024-01-09 is before the origin 2024-01-10 (transplant)"
    ]


def test_event_after_death() -> None:
    found = record_errors(patient(follow_up=day(60), relapse=[day(60)], death=[day(40)]))
    assert found == ["relapse: PFS: relapse on 2024-03-10 is after death on 2024-02-19"]


def test_two_deaths() -> None:
    found = record_errors(patient(follow_up=day(60), death=[day(40), day(60)]))
    assert any("'death' occurs more than once" in m for m in found)


def test_censor_before_origin() -> None:
    found = record_errors(patient(follow_up=day(-5)))
    assert found == [
        "last_follow_up: PFS, OS: the censoring date 2024-01-05 (last_follow_up)"
        " is before the origin 2024-01-10"
    ]


def test_event_after_censoring_date() -> None:
    found = record_errors(patient(follow_up=day(30), relapse=[day(31)]))
    assert found == [
        "relapse: PFS: relapse on 2024-02-10 is after the censoring date 2024-02-09"
        " (last_follow_up)"
    ]


def test_missing_data() -> None:
    data = patient(follow_up=day(30))
    del data["relapse"]
    assert record_errors(data) == [
        "relapse: PFS: event 'relapse' is missing from the record (unknown history);"
        " give [] when it did not occur"
    ]
    found = record_errors({"id": "P2", "relapse": [], "death": []})
    assert found[0] == "transplant: PFS, OS: the origin (transplant) is unknown"
    found = record_errors(patient())
    assert found[0].endswith(
        "the censoring date (last_follow_up) is unknown and no event decides the endpoint"
    )
    data = patient(follow_up=day(30))
    data["relapse"] = [{"date": None}]
    found = record_errors(data)
    assert found == ["relapse: PFS: an occurrence of 'relapse' is undated"]


def test_derive_many_keeps_good_rows_and_reports_bad_patients() -> None:
    good = patient(follow_up=day(30))
    bad = patient(follow_up=day(-1), id="P2")
    out, errors = derive_many(seed(), [good, bad])
    assert [(r.id, r.endpoint) for r in out] == [("P1", "PFS"), ("P1", "OS")]
    assert {d.record_id for d in errors} == {"P2"}


# --- properties --------------------------------------------------------------------------------


@st.composite
def timelines(draw: st.DrawFn) -> dict[str, Any]:
    """A consistent timeline: follow-up, maybe a relapse, maybe a death, none after death."""
    follow_up = draw(st.integers(0, 800))
    death = draw(st.none() | st.integers(0, follow_up))
    last = follow_up if death is None else death
    relapse = draw(st.none() | st.integers(0, last))
    data = patient(
        follow_up=day(follow_up),
        relapse=[] if relapse is None else [day(relapse)],
        death=[] if death is None else [day(death)],
    )
    if draw(st.booleans()) and death is not None:
        del data["last_follow_up"]
    return data


@given(timelines())
def test_pfs_time_at_most_os_time(data: dict[str, Any]) -> None:
    r = rows(seed(), data)
    assert r["PFS"].time <= r["OS"].time
    assert 0 <= r["OS"].time <= 366
    if r["OS"].status == "event":
        assert r["PFS"].status == "event"


@given(timelines())
def test_exactly_one_status(data: dict[str, Any]) -> None:
    out = derive(with_cir(), data)
    assert [r.endpoint for r in out] == ["PFS", "OS", "CIR"]
    for r in out:
        assert r.status in ("event", "competing", "censored")
        assert (r.source is None) == (r.status == "censored")
        assert r.date == r.origin + dt.timedelta(days=r.time)


# --- protocode check ---------------------------------------------------------------------------


def test_cli_check_validates_endpoints(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["check", str(PFS_OS_PATH)]) == 0
    assert capsys.readouterr().out.startswith(f"ok {PFS_OS_PATH} (TEST-ENDPOINTS")
    bad = tmp_path / "bad.yaml"
    bad.write_text(PFS_OS + endpoint(events="[relapes]", horizon="soon"), encoding="utf-8")
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:41:14: name: unknown event item 'relapes'" in err
    assert f"{bad}:43:14: horizon: a horizon is a whole number" in err


def test_load_rejects_a_broken_endpoint_with_the_diagnostics_of_check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(PFS_OS + endpoint(events="[relapes]", horizon="soon"), encoding="utf-8")
    with pytest.raises(CheckError) as caught:
        load(bad)
    located = [(d.code, d.span.line, d.span.col) for d in caught.value.diagnostics if d.span]
    assert located == [("name", 41, 14), ("horizon", 43, 14)]
    assert main(["check", "--format", "json", str(bad)]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed == [d.to_json() for d in caught.value.diagnostics]


# --- derived events ----------------------------------------------------------------------------

DERIVED_PATH = FIXTURES / "endpoints" / "derived_relapse.yaml"
DERIVED = DERIVED_PATH.read_text(encoding="utf-8")
RELAPSE_WHEN = """\
    when:
      - {item: peripheral_blasts, condition: '== "present"'}
      - {item: marrow_blasts, condition: ">= 5 %"}
      - {item: extramedullary_disease}
"""


def derived_seed() -> Protocol:
    return load(DERIVED_PATH)


def blasts_patient(
    follow_up: int | None = 400,
    marrow: list[tuple[int, Any]] | None = None,
    blood: list[tuple[int, str]] | None = None,
    emd: list[int] | None = None,
    death: list[int] | None = None,
) -> dict[str, Any]:
    """A patient of the derived-relapse fixture; observations are (day, value) pairs."""
    out: dict[str, Any] = {
        "id": "P1",
        "transplant": DAY0.isoformat(),
        "marrow_blasts": [
            {"date": day(n).isoformat(), **(v if isinstance(v, dict) else {"value": v})}
            for n, v in marrow or []
        ],
        "peripheral_blasts": [{"date": day(n).isoformat(), "value": v} for n, v in blood or []],
        "extramedullary_disease": [day(n).isoformat() for n in emd or []],
        "death": [day(n).isoformat() for n in death or []],
    }
    if follow_up is not None:
        out["last_follow_up"] = day(follow_up).isoformat()
    return out


def test_derived_fixture_checks() -> None:
    pfs, cir = endpoints(derived_seed())
    assert pfs.events == ("relapse", "death")
    assert (cir.events, cir.competing) == (("relapse",), ("death",))
    relapse = pfs.derived["relapse"]
    assert [(c.item, c.kind, c.condition) for c in relapse.clauses] == [
        ("peripheral_blasts", "observation", '== "present"'),
        ("marrow_blasts", "observation", ">= 5 %"),
        ("extramedullary_disease", "event", None),
    ]
    assert pfs.descriptions["relapse"].startswith("Relapse (blasts in peripheral blood")


def test_marrow_blasts_exactly_5_percent_is_relapse() -> None:
    r = rows(derived_seed(), blasts_patient(marrow=[(30, 1), (90, 5), (120, 40)]))
    for name in ("PFS", "CIR"):
        assert (r[name].status, r[name].time, r[name].source) == ("event", 90, "relapse")
        assert r[name].description.startswith("Relapse (blasts")


def test_marrow_blasts_4_9_percent_is_not_relapse() -> None:
    r = rows(derived_seed(), blasts_patient(marrow=[(30, 4.9), (90, 4.9)], blood=[(90, "absent")]))
    for name in ("PFS", "CIR"):
        assert (r[name].status, r[name].time) == ("censored", 366)


def test_condition_converts_units_exactly() -> None:
    # 0.05 as a pure number is exactly 5 %; 0.049 is 4.9 %.
    r = rows(derived_seed(), blasts_patient(marrow=[(40, {"value": 0.05, "unit": "1"})]))
    assert (r["CIR"].status, r["CIR"].time) == ("event", 40)
    r = rows(derived_seed(), blasts_patient(marrow=[(40, {"value": 0.049, "unit": "1"})]))
    assert r["CIR"].status == "censored"


def test_derived_event_takes_first_date_among_alternatives() -> None:
    data = blasts_patient(
        marrow=[(50, 2), (100, 7)], blood=[(70, "absent"), (80, "present")], emd=[120]
    )
    assert rows(derived_seed(), data)["CIR"].time == 80
    data = blasts_patient(marrow=[(100, 7)], blood=[(80, "present")], emd=[60])
    assert rows(derived_seed(), data)["CIR"].time == 60
    data = blasts_patient(marrow=[(10, 5)], blood=[(80, "present")], emd=[60])
    assert rows(derived_seed(), data)["CIR"].time == 10


def test_observations_before_the_origin_do_not_count() -> None:
    # The disease before transplant is not a relapse.
    r = rows(derived_seed(), blasts_patient(marrow=[(-20, 80), (30, 1)]))
    assert r["CIR"].status == "censored"


def test_pfs_and_cir_with_derived_relapse() -> None:
    data = blasts_patient(follow_up=200, marrow=[(150, 12)], death=[200])
    r = rows(derived_seed(), data)
    assert (r["PFS"].status, r["PFS"].time, r["PFS"].source) == ("event", 150, "relapse")
    assert (r["CIR"].status, r["CIR"].time) == ("event", 150)
    data = blasts_patient(follow_up=200, marrow=[(60, 0)], death=[90])
    r = rows(derived_seed(), data)
    assert (r["PFS"].status, r["PFS"].time, r["PFS"].source) == ("event", 90, "death")
    assert (r["CIR"].status, r["CIR"].time, r["CIR"].censored) == ("competing", 90, 2)
    # A relapse after the horizon is censored at the horizon.
    r = rows(derived_seed(), blasts_patient(follow_up=500, marrow=[(400, 50)]))
    assert (r["PFS"].status, r["PFS"].time) == ("censored", 366)


def test_derived_event_timeline_errors() -> None:
    protocol = derived_seed()
    data = blasts_patient(follow_up=100, marrow=[(120, 30)])
    assert record_errors(data, protocol)[0] == (
        "relapse: PFS, CIR: relapse on 2024-05-09 is after the censoring date 2024-04-19"
        " (last_follow_up)"
    )
    data = blasts_patient(follow_up=100, marrow=[(90, 30)], death=[60])
    assert record_errors(data, protocol)[0] == (
        "relapse: PFS, CIR: relapse on 2024-04-09 is after death on 2024-03-10"
    )


def test_missing_observations_make_the_derived_event_unknown() -> None:
    data = blasts_patient()
    del data["marrow_blasts"]
    assert record_errors(data, derived_seed()) == [
        "marrow_blasts: PFS, CIR: derived event 'relapse' is unknown: observation"
        " 'marrow_blasts' is missing from the record; give [] when there is none"
    ]
    data = blasts_patient()
    del data["extramedullary_disease"]
    found = record_errors(data, derived_seed())
    assert found[0] == (
        "extramedullary_disease: PFS, CIR: derived event 'relapse' is unknown: event"
        " 'extramedullary_disease' is missing from the record (unknown history);"
        " give [] when it did not occur"
    )
    # An empty list is known: never observed, so no relapse.
    assert rows(derived_seed(), blasts_patient())["CIR"].status == "censored"


def test_undated_observation_that_may_come_first_makes_the_date_unknown() -> None:
    data = blasts_patient(marrow=[(90, 30)])
    data["marrow_blasts"].append({"value": 10, "date": None})
    assert record_errors(data, derived_seed())[0] == (
        "relapse: PFS, CIR: the date of derived event 'relapse' is unknown:"
        " an undated 'marrow_blasts' satisfies '>= 5 %'"
    )
    data = blasts_patient(marrow=[(90, 30)])
    data["marrow_blasts"].append({"value": 1, "date": None})
    assert rows(derived_seed(), data)["CIR"].time == 90


def derived_problems(when: str, events: str = "[relapse, death]", extra: str = "") -> list[str]:
    text = DERIVED.replace(RELAPSE_WHEN, when).replace("[relapse, death]", events) + extra
    with pytest.raises(ProtocodeError) as caught:
        endpoints(load_text(text, "bad.yaml"))
    out = []
    for d in caught.value.diagnostics:
        assert d.span is not None
        line = text.splitlines()[d.span.line - 1]
        out.append(f"{d.span.line}:{d.span.col}: {d.code}: {d.message} @ {line.strip()}")
    return out


def when_line(index: int) -> int:
    return DERIVED.splitlines().index(RELAPSE_WHEN.splitlines()[0]) + 2 + index


def test_derived_unknown_item_with_hint() -> None:
    when = RELAPSE_WHEN.replace("{item: marrow_blasts,", "{item: marow_blasts,")
    (message,) = derived_problems(when)
    line = when_line(1)
    col = DERIVED.splitlines()[line - 1].index("marrow_blasts") + 1
    assert message.startswith(f"{line}:{col}: name: unknown observation or event item")
    assert "'marow_blasts' in a derived event (did you mean 'marrow_blasts'?)" in message


def test_derived_wrong_kinds_and_missing_conditions() -> None:
    when = """\
    when:
      - {item: last_follow_up}
      - {item: marrow_blasts}
      - {item: extramedullary_disease, condition: "== 1"}
"""
    found = derived_problems(when)
    assert len(found) == 3
    assert (
        "kind: a derived event reads observation or event items, but 'last_follow_up'" in (found[0])
    )
    assert "condition: 'marrow_blasts' is an observation item: give a condition" in found[1]
    assert "condition: 'extramedullary_disease' is an event item" in found[2]
    lines = [when_line(i) for i in range(3)]
    assert [int(m.split(":")[0]) for m in found] == lines


def test_derived_bad_conditions() -> None:
    when = """\
    when:
      - {item: marrow_blasts, condition: ">= 5 mg"}
      - {item: peripheral_blasts, condition: '== "presnt"'}
      - {item: marrow_blasts, condition: "+ 1 %"}
      - {item: marrow_blasts, condition: ">= 5 % or transplant is known"}
"""
    found = derived_problems(when)
    assert len(found) == 4, found
    lines = when.splitlines()[1:]

    def inside(message: str, index: int, condition: str) -> bool:
        line, col = (int(n) for n in message.split(":")[:2])
        start = lines[index].index(condition) + 1
        return line == when_line(index) and start <= col < start + len(condition)

    first, second, third, fourth = found
    assert inside(first, 0, ">= 5 mg") and "unit:" in first and "mg" in first
    assert inside(second, 1, '"presnt"') and "'presnt' is not one of present, absent" in second
    assert inside(third, 2, "+ 1 %")
    assert "a condition compares the value of 'marrow_blasts' with a constant" in third
    assert inside(fourth, 3, ">= 5 % or transplant is known")
    assert "a condition compares the value" in fourth


def test_derived_event_names() -> None:
    # An endpoint may name a derived event; a misspelt one gets a hint.
    (message,) = derived_problems(RELAPSE_WHEN, events="[relaps, death]")
    assert "unknown event item or derived event 'relaps' in events (did you mean 'relapse'?)" in (
        message
    )
    # A derived event may not take a data item's name, nor be an endpoint's death.
    text = RELAPSE_WHEN + "  - id: death\n" + RELAPSE_WHEN
    found = derived_problems(text)
    assert any("derived event 'death' has the name of a data item" in m for m in found)
    extra = endpoint(events="[death]", death="relapse")
    found = derived_problems(RELAPSE_WHEN, extra=extra)
    assert any("unknown event item 'relapse' in death" in m for m in found)
    text = RELAPSE_WHEN + "  - id: relapse\n" + RELAPSE_WHEN
    found = derived_problems(text)
    assert any("duplicate derived event id 'relapse'" in m for m in found)


def test_cli_check_validates_derived_events(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["check", str(DERIVED_PATH)]) == 0
    capsys.readouterr()
    bad = tmp_path / "bad.yaml"
    bad.write_text(DERIVED.replace(">= 5 %", ">= 5 kg"), encoding="utf-8")
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    line = when_line(1)
    assert f"{bad}:{line}:" in err
