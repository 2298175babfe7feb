"""Laws of the seed's endpoints over generated follow-up (hypothesis).

- Any consistent timeline derives: one row per endpoint, each with exactly one status.
- Progression-free survival never outlasts overall survival, and a death ends both.
- Over a cohort, the cumulative incidences of relapse and of non-relapse mortality and the
  progression-free probability add up to 1 at the horizon (the three partition what can
  happen first); the same holds for acute GVHD, its competing events and the GVHD-free,
  relapse-free, alive probability, estimated as one more time-to-event endpoint.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import protocode
from helpers import SEED
from protocode.endpoints import EndpointRow, derive, endpoints
from protocode.endpoints.estimate import estimate, estimate_time_to_event, horizon_days

PROTOCOL = protocode.load(SEED / "v3.yaml")
AGVHD = ("agvhd_skin_stage", "agvhd_liver_stage", "agvhd_upper_gi_stage", "agvhd_lower_gi_stage")
CGVHD = tuple(
    f"cgvhd_{organ}_score"
    for organ in ("skin", "mouth", "eyes", "gi", "liver", "lungs", "joints", "genital")
)
STATUSES = {
    "PFS": {"event", "censored"},
    "OS": {"event", "censored"},
    "CIR": {"event", "competing", "censored"},
    "NRM": {"event", "competing", "censored"},
    "aGVHD": {"event", "competing", "censored"},
    "cGVHD": {"event", "competing", "censored"},
    "MRD": {"responder", "non_responder", "not_evaluable"},
}


@st.composite
def timelines(draw: st.DrawFn, index: int = 0) -> dict[str, Any]:
    """One consistent follow-up record: nothing after death or after the last follow-up."""
    origin = dt.date(2023, 1, 1) + dt.timedelta(days=draw(st.integers(0, 1000)))
    follow_up = draw(st.integers(0, 500))
    death = draw(st.none() | st.integers(0, follow_up))
    end = follow_up if death is None else death

    def day(n: int) -> str:
        return (origin + dt.timedelta(days=n)).isoformat()

    days = st.integers(0, end)
    record: dict[str, Any] = {
        "id": f"G{index}",
        "transplant": origin.isoformat(),
        "last_follow_up": day(end),
        "death": [] if death is None else [day(death)],
        "extramedullary_relapse": [day(n) for n in draw(st.lists(days, max_size=1))],
        "peripheral_blasts": [
            {"value": v, "date": day(n)}
            for n, v in draw(
                st.lists(st.tuples(days, st.sampled_from(["present", "absent"])), max_size=2)
            )
        ],
        "marrow_blasts": [
            {"value": v, "date": day(n)}
            for n, v in draw(
                st.lists(st.tuples(days, st.sampled_from([0, 4.9, 5, 30])), max_size=3)
            )
        ],
        "marrow_immature_monocytes": [
            {"value": v, "date": day(n)}
            for n, v in draw(st.lists(st.tuples(days, st.sampled_from([1, 5])), max_size=1))
        ],
        "mrd_flow": [
            {"value": v, "date": day(n)}
            for n, v in draw(
                st.lists(
                    st.tuples(days, st.sampled_from(["negative", "positive"])),
                    max_size=2,
                    unique_by=lambda t: t[0],
                )
            )
        ],
    }
    # Complete assessments on distinct days, so every grade is decided.
    for items, top in ((AGVHD, (4, 4, 1, 4)), (CGVHD, (3,) * 8)):
        for item in items:
            record[item] = []
        for n in draw(st.lists(days, max_size=3, unique=True)):
            for item, high in zip(items, top, strict=True):
                record[item].append({"value": draw(st.integers(0, high)), "date": day(n)})
    return record


def rows_by_endpoint(record: dict[str, Any]) -> dict[str, EndpointRow]:
    rows = derive(PROTOCOL, record)
    assert len(rows) == len({r.endpoint for r in rows}) == 7
    return {r.endpoint: r for r in rows}


@given(timelines())
def test_every_endpoint_has_exactly_one_status(record: dict[str, Any]) -> None:
    rows = rows_by_endpoint(record)
    for endpoint, row in rows.items():
        assert row.status in STATUSES[endpoint]
        assert row.time == (row.date - row.origin).days >= 0
        if row.status == "censored":
            assert row.source is None
        elif row.status != "not_evaluable":
            assert row.source is not None


@given(timelines())
def test_pfs_never_outlasts_os(record: dict[str, Any]) -> None:
    rows = rows_by_endpoint(record)
    pfs, os_ = rows["PFS"], rows["OS"]
    assert pfs.time <= os_.time
    if os_.status == "event":
        assert pfs.status == "event"
    if pfs.status == "censored":
        assert (os_.status, os_.time) == ("censored", pfs.time)
    # Relapse incidence and non-relapse mortality split the PFS events between them.
    cir, nrm = rows["CIR"], rows["NRM"]
    if pfs.status == "event":
        assert {cir.status, nrm.status} == {"event", "competing"}
        assert cir.time == nrm.time == pfs.time
    else:
        assert cir.status == nrm.status == "censored"


@settings(max_examples=40)
@given(st.integers(5, 60).flatmap(lambda n: st.tuples(*(timelines(i) for i in range(n)))))
def test_competing_incidences_and_event_free_probability_add_up_to_one(
    cohort: tuple[dict[str, Any], ...],
) -> None:
    rows = [row for record in cohort for row in derive(PROTOCOL, record)]
    found = {e.endpoint: e for e in estimate(PROTOCOL, rows)}
    pfs, cir, nrm = found["PFS"], found["CIR"], found["NRM"]
    assert pfs.horizon_days == cir.horizon_days == nrm.horizon_days
    assert abs(cir.value + nrm.value + pfs.value - 1) < 1e-9
    for e in found.values():
        assert 0 <= e.lower <= e.value <= e.upper <= 1
    # Acute GVHD: the incidence of GVHD, the incidence of relapse or death first, and the
    # probability of neither by day 100.
    agvhd = [r for r in rows if r.endpoint == "aGVHD"]
    days = horizon_days(next(e for e in endpoints(PROTOCOL) if e.id == "aGVHD"), agvhd)
    swapped = [_swap(r) for r in agvhd]
    neither = [_composite(r) for r in agvhd]
    gvhd = estimate_time_to_event(agvhd, days, competing=True).value
    first_other = estimate_time_to_event(swapped, days, competing=True).value
    free = estimate_time_to_event(neither, days, competing=False).value
    assert abs(gvhd + first_other + free - 1) < 1e-9


def _swap(row: EndpointRow) -> EndpointRow:
    status = {"event": "competing", "competing": "event"}.get(row.status, row.status)
    return replace(row, status=status)  # type: ignore[arg-type]


def _composite(row: EndpointRow) -> EndpointRow:
    return replace(row, status="event" if row.status == "competing" else row.status)
