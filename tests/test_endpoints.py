"""Endpoints: time-to-event definitions in the protocol file, checks, per-patient derivation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import FIXTURES
from protocode.cli import main
from protocode.endpoints import EndpointRow, derive, derive_many, endpoints
from protocode.errors import CheckError, LoadError, ProtocodeError, RecordError
from protocode.pipeline import load, load_text
from protocode.screen import Protocol

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
    (message,) = problems(endpoint(kind="proportion"))
    assert "schema" in message


# --- derivation --------------------------------------------------------------------------------


def test_event() -> None:
    r = rows(seed(), patient(follow_up=day(400), relapse=[day(143)]))
    assert (r["PFS"].status, r["PFS"].time, r["PFS"].date) == ("event", 143, day(143))
    assert r["PFS"].source == "relapse"
    assert r["PFS"].description == "Disease relapse or progression."
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
    assert r["CIR"].description == "Death from any cause."
    # Relapse first, then death: the event; the death does not compete.
    r = rows(with_cir(), patient(follow_up=day(120), relapse=[day(60)], death=[day(120)]))
    assert (r["CIR"].status, r["CIR"].time) == ("event", 60)
    # The same day: the event wins.
    r = rows(with_cir(), patient(follow_up=day(30), relapse=[day(30)], death=[day(30)]))
    assert r["CIR"].status == "event"


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
        "description": "Disease relapse or progression.",
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
    assert len(found) == 2
    assert all("death on 2024-01-09 is before the origin" in m for m in found)


def test_event_after_death() -> None:
    found = record_errors(patient(follow_up=day(60), relapse=[day(60)], death=[day(40)]))
    assert found == ["relapse: PFS: relapse on 2024-03-10 is after death on 2024-02-19"]


def test_two_deaths() -> None:
    found = record_errors(patient(follow_up=day(60), death=[day(40), day(60)]))
    assert any("'death' occurs more than once" in m for m in found)


def test_censor_before_origin() -> None:
    found = record_errors(patient(follow_up=day(-5)))
    assert len(found) == 2
    assert found[0] == (
        "last_follow_up: PFS: the censoring date 2024-01-05 (last_follow_up)"
        " is before the origin 2024-01-10"
    )


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
    assert found[0] == "transplant: PFS: the origin (transplant) is unknown"
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
