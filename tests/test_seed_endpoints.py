"""The seed's seven endpoints (protocol/NCT06125106/v3.yaml), derived for hand-written patients.

Each scenario is one patient; the expected row of every endpoint was worked out by hand from
the registry's definitions as transcribed in v3.yaml (origin: the transplant; horizon 1 year,
or day 100 for acute GVHD; relapse from blasts, marrow blasts >= 5 %, immature monocytes
>= 5 % or an extramedullary lesion; MRD: latest assessment within 30 days of day 365, relapse
or death before the window closes is a failure), never by running protocode. Transplant on
2024-07-01, so day 365 is 2025-07-01 and day 100 is 2024-10-09.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import protocode
from helpers import SEED
from protocode.core.errors import RecordError
from protocode.endpoints import derive

V3 = SEED / "v3.yaml"
T0 = dt.date(2024, 7, 1)
AGVHD = ("agvhd_skin_stage", "agvhd_liver_stage", "agvhd_upper_gi_stage", "agvhd_lower_gi_stage")
ORGANS = ("skin", "mouth", "eyes", "gi", "liver", "lungs", "joints", "genital")
CGVHD = tuple(f"cgvhd_{organ}_score" for organ in ORGANS)


@pytest.fixture(scope="module")
def protocol() -> protocode.Protocol:
    return protocode.load(V3)


def day(n: int, origin: dt.date = T0) -> str:
    return (origin + dt.timedelta(days=n)).isoformat()


class Patient:
    """A patient record under construction: quiet follow-up unless told otherwise."""

    def __init__(self, follow_up: int, origin: dt.date = T0) -> None:
        self.origin = origin
        self.data: dict[str, Any] = {
            "id": "P",
            "transplant": origin.isoformat(),
            "last_follow_up": day(follow_up, origin),
            "death": [],
            "extramedullary_relapse": [],
            "peripheral_blasts": [],
            "marrow_blasts": [],
            "marrow_immature_monocytes": [],
            "mrd_flow": [],
            **{item: [] for item in (*AGVHD, *CGVHD)},
        }

    def observe(self, item: str, n: int, value: object) -> Patient:
        self.data[item].append({"value": value, "date": day(n, self.origin)})
        return self

    def event(self, item: str, n: int) -> Patient:
        self.data[item].append(day(n, self.origin))
        return self

    def acute(self, n: int, skin: int, liver: int, upper_gi: int, lower_gi: int) -> Patient:
        for item, stage in zip(AGVHD, (skin, liver, upper_gi, lower_gi), strict=True):
            self.observe(item, n, stage)
        return self

    def chronic(self, n: int, **scores: int) -> Patient:
        for organ, item in zip(ORGANS, CGVHD, strict=True):
            self.observe(item, n, scores.get(organ, 0))
        return self


def derived(protocol: protocode.Protocol, patient: Patient) -> dict[str, tuple[Any, ...]]:
    rows = derive(protocol, patient.data)
    assert [r.endpoint for r in rows] == ["PFS", "OS", "CIR", "NRM", "aGVHD", "cGVHD", "MRD"]
    return {r.endpoint: (r.status, r.time, r.source) for r in rows}


def test_quiet_follow_up_is_censored_at_every_horizon(protocol: protocode.Protocol) -> None:
    p = Patient(400)
    for n in range(7, 99, 7):
        p.acute(n, 1 if n == 21 else 0, 0, 0, 0)  # grade I on day 21 only
    for n in (100, 180, 365):
        p.chronic(n)
    p.observe("marrow_blasts", 90, 4.9).observe("mrd_flow", 365, "negative")
    assert derived(protocol, p) == {
        "PFS": ("censored", 365, None),
        "OS": ("censored", 365, None),
        "CIR": ("censored", 365, None),
        "NRM": ("censored", 365, None),
        "aGVHD": ("censored", 100, None),
        "cGVHD": ("censored", 365, None),
        "MRD": ("responder", 365, "mrd_flow"),
    }


def test_relapse_then_death(protocol: protocode.Protocol) -> None:
    # Marrow blasts of exactly 5 % on day 200 are a relapse; death on day 300 follows it.
    p = Patient(300).observe("marrow_blasts", 90, 0.4).observe("marrow_blasts", 200, 5)
    p.event("death", 300)
    assert derived(protocol, p) == {
        "PFS": ("event", 200, "relapse"),
        "OS": ("event", 300, "death"),
        "CIR": ("event", 200, "relapse"),
        "NRM": ("competing", 200, "relapse"),
        "aGVHD": ("censored", 100, None),
        "cGVHD": ("competing", 200, "relapse"),
        "MRD": ("non_responder", 200, "relapse"),
    }


def test_non_relapse_death_after_acute_gvhd(protocol: protocode.Protocol) -> None:
    # Liver stage 2 on day 30 is MAGIC grade III; death without relapse on day 80.
    p = Patient(80).acute(14, 1, 0, 0, 0).acute(30, 2, 2, 0, 0).event("death", 80)
    assert derived(protocol, p) == {
        "PFS": ("event", 80, "death"),
        "OS": ("event", 80, "death"),
        "CIR": ("competing", 80, "death"),
        "NRM": ("event", 80, "death"),
        "aGVHD": ("event", 30, "agvhd_grade_2_4"),
        "cGVHD": ("competing", 80, "death"),
        "MRD": ("non_responder", 80, "death"),
    }


def test_relapse_exactly_at_the_horizon_counts(protocol: protocode.Protocol) -> None:
    p = Patient(400).observe("peripheral_blasts", 365, "present")
    p.observe("mrd_flow", 360, "negative")
    assert derived(protocol, p) == {
        "PFS": ("event", 365, "relapse"),
        "OS": ("censored", 365, None),
        "CIR": ("event", 365, "relapse"),
        "NRM": ("competing", 365, "relapse"),
        "aGVHD": ("censored", 100, None),
        "cGVHD": ("competing", 365, "relapse"),
        # The relapse comes before the window closes (day 395): a failure, whatever MRD said.
        "MRD": ("non_responder", 365, "relapse"),
    }


def test_relapse_after_the_horizon_is_censored_at_it(protocol: protocode.Protocol) -> None:
    p = Patient(500).event("extramedullary_relapse", 366).observe("mrd_flow", 365, "negative")
    assert derived(protocol, p) == {
        "PFS": ("censored", 365, None),
        "OS": ("censored", 365, None),
        "CIR": ("censored", 365, None),
        "NRM": ("censored", 365, None),
        "aGVHD": ("censored", 100, None),
        "cGVHD": ("censored", 365, None),
        # Relapse on day 366 is before the MRD window closes (day 395): a failure.
        "MRD": ("non_responder", 366, "relapse"),
    }


def test_lost_to_follow_up_before_the_horizon(protocol: protocode.Protocol) -> None:
    # Grade II exactly on day 100 (upper GI stage 1); mild chronic GVHD on day 180 (skin and
    # mouth score 1); last seen on day 200, so no MRD assessment near day 365.
    p = Patient(200).acute(93, 1, 0, 0, 0).acute(100, 1, 0, 1, 0)
    p.chronic(100).chronic(180, skin=1, mouth=1)
    assert derived(protocol, p) == {
        "PFS": ("censored", 200, None),
        "OS": ("censored", 200, None),
        "CIR": ("censored", 200, None),
        "NRM": ("censored", 200, None),
        "aGVHD": ("event", 100, "agvhd_grade_2_4"),
        "cGVHD": ("event", 180, "cgvhd"),
        "MRD": ("not_evaluable", 365, None),
    }


def test_gvhd_and_mrd_boundaries(protocol: protocode.Protocol) -> None:
    # Acute grade III on day 101: after day 100. Lung score 2 on day 365: severe chronic GVHD
    # exactly at the horizon. MRD negative on day 395 (the window's last day) and positive on
    # day 396 (outside it).
    p = Patient(400).acute(101, 0, 3, 0, 0).chronic(180).chronic(365, lungs=2)
    p.observe("mrd_flow", 395, "negative").observe("mrd_flow", 396, "positive")
    rows = derived(protocol, p)
    assert rows["aGVHD"] == ("censored", 100, None)
    assert rows["cGVHD"] == ("event", 365, "cgvhd")
    assert rows["MRD"] == ("responder", 395, "mrd_flow")


@pytest.mark.parametrize(
    ("assessed", "expected"),
    [
        (334, ("not_evaluable", 365, None)),  # 31 days before day 365
        (335, ("non_responder", 335, "mrd_flow")),  # 30 days before: in the window
        (396, ("not_evaluable", 365, None)),
    ],
)
def test_mrd_window_edges(
    protocol: protocode.Protocol, assessed: int, expected: tuple[Any, ...]
) -> None:
    p = Patient(400).observe("mrd_flow", assessed, "positive")
    assert derived(protocol, p)["MRD"] == expected


def test_the_latest_assessment_in_the_window_decides(protocol: protocode.Protocol) -> None:
    p = Patient(400).observe("mrd_flow", 340, "positive").observe("mrd_flow", 370, "negative")
    assert derived(protocol, p)["MRD"] == ("responder", 370, "mrd_flow")


def test_same_day_relapse_and_death_is_a_relapse(protocol: protocode.Protocol) -> None:
    p = Patient(150).observe("marrow_immature_monocytes", 150, 7.5).event("death", 150)
    rows = derived(protocol, p)
    assert rows["CIR"] == ("event", 150, "relapse")
    assert rows["NRM"] == ("competing", 150, "relapse")
    assert rows["OS"] == ("event", 150, "death")


def test_a_leap_day_transplant_reaches_its_horizon_on_28_february() -> None:
    p = Patient(400, origin=dt.date(2024, 2, 29)).observe("peripheral_blasts", 365, "present")
    assert p.data["peripheral_blasts"][0]["date"] == "2025-02-28"
    rows = derived(protocode.load(V3), p)
    assert rows["CIR"] == ("event", 365, "relapse")
    assert rows["PFS"] == ("event", 365, "relapse")


def test_inconsistent_timelines_are_reported_per_endpoint(protocol: protocode.Protocol) -> None:
    p = Patient(300).event("death", 200).observe("marrow_blasts", 250, 40)
    with pytest.raises(RecordError) as info:
        derive(protocol, p.data)
    messages = [d.message for d in info.value.diagnostics]
    assert messages == [
        "PFS, CIR, NRM, aGVHD, cGVHD: relapse on 2025-03-08 is after death on 2025-01-17"
    ]
    assert all(d.record_id == "P" for d in info.value.diagnostics)
    p = Patient(300).event("death", -3)
    with pytest.raises(RecordError) as info:
        derive(protocol, p.data)
    assert [d.message for d in info.value.diagnostics] == [
        "PFS, OS, CIR, NRM, aGVHD, cGVHD, MRD: death on 2024-06-28 is before the origin"
        " 2024-07-01 (transplant)"
    ]


def test_conflicting_readings_on_one_day_leave_the_grade_unknown(
    protocol: protocode.Protocol,
) -> None:
    # Skin stage 0 and 3 on day 21: grade 0 or II, so the first grade II day is unknown.
    p = Patient(400).acute(21, 0, 0, 0, 0).acute(21, 3, 0, 0, 0)
    with pytest.raises(RecordError) as info:
        derive(protocol, p.data)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.message == (
        "aGVHD: the date of derived event 'agvhd_grade_2_4' is unknown: the magic_agvhd grade "
        "on 2024-07-22 may be 0, I, II, IV (agvhd_skin_stage not known that day)"
    )
