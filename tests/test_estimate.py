"""Endpoint estimates: Kaplan-Meier, Aalen-Johansen and proportions, checked against lifelines,
scipy and hand arithmetic; plots written for real."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import random
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import AalenJohansenFitter, KaplanMeierFitter
from scipy.stats import beta

from helpers import FIXTURES
from protocode.endpoints import EndpointRow, derive_many, endpoints
from protocode.endpoints.derive import Status
from protocode.endpoints.estimate import (
    Estimate,
    estimate_proportion,
    estimate_time_to_event,
    horizon_days,
    plot,
)
from protocode.pipeline import load

ORIGIN = dt.date(2024, 1, 10)
Z = NormalDist().inv_cdf(0.975)


def cohort(
    spec: Sequence[tuple[int, Status]], endpoint: str = "E", name: str = "Endpoint"
) -> list[EndpointRow]:
    """Rows of one endpoint from (time in days, status) pairs, one patient each."""
    return [
        EndpointRow(f"P{i}", endpoint, name, ORIGIN, ORIGIN + dt.timedelta(days=t), t, s, s, None)
        for i, (t, s) in enumerate(spec)
    ]


def swapped(rows: Sequence[EndpointRow]) -> list[EndpointRow]:
    """The same cohort with events and competing events exchanged (the other cause)."""
    other: dict[Status, Status] = {"event": "competing", "competing": "event"}
    return [cohort([(r.time, other.get(r.status, r.status))])[0] for r in rows]


def composite(rows: Sequence[EndpointRow]) -> list[EndpointRow]:
    """The same cohort with either cause counted as the event (event-free survival)."""
    return [cohort([(r.time, "event" if r.status == "competing" else r.status)])[0] for r in rows]


def lifelines_at(table: Any, horizon: float) -> tuple[float, ...]:
    """The last row of a lifelines table at or before the horizon."""
    return tuple(float(v) for v in table.loc[:horizon].iloc[-1])


# 6 patients: events on days 3, 7, 7 and 12; censored on days 5 and 10.
KM_SPEC: list[tuple[int, Status]] = [
    (3, "event"),
    (5, "censored"),
    (7, "event"),
    (7, "event"),
    (10, "censored"),
    (12, "event"),
]

# 8 patients with a tie of an event and a competing event (day 3) and of an event and a
# censoring (day 5), which lifelines would otherwise jitter apart at random.
AJ_SPEC: list[tuple[int, Status]] = [
    (2, "event"),
    (3, "event"),
    (3, "competing"),
    (4, "censored"),
    (5, "event"),
    (5, "censored"),
    (6, "competing"),
    (9, "event"),
]

# 19 patients, ties of the same cause and of events with censorings, but never of an event
# with a competing event: lifelines fits this as it is, without jitter.
NO_CROSS_TIES: list[tuple[int, Status]] = [
    *((t, "event") for t in (4, 9, 9, 15, 22, 30, 41)),
    *((t, "competing") for t in (6, 12, 12, 27, 35)),
    *((t, "censored") for t in (9, 15, 20, 30, 30, 50, 60)),
]


# --- Kaplan-Meier ------------------------------------------------------------------------------


def test_kaplan_meier_by_hand() -> None:
    rows = cohort(KM_SPEC)
    # Day 3: 6 at risk, 1 event -> S = 5/6. Day 5: a censoring, 4 remain. Day 7: 4 at risk,
    # 2 events -> S = 5/6 * 2/4 = 5/12. Day 10: a censoring. Day 12: 1 at risk, 1 event -> 0.
    one, zero = Fraction(1), Fraction(0)
    expected = {0: one, 2: one, 3: Fraction(5, 6), 6: Fraction(5, 6), 7: Fraction(5, 12)}
    expected |= {11: Fraction(5, 12), 12: zero, 100: zero}
    for h, s in expected.items():
        e = estimate_time_to_event(rows, h, competing=False)
        assert e.value == pytest.approx(float(s), abs=1e-15), h
        assert (e.method, e.quantity, e.horizon_days) == (
            "kaplan-meier",
            "event-free probability",
            h,
        )
    # Exponential Greenwood at day 7: V = sum d / (n (n - d)) = 1/(6*5) + 2/(4*2) = 17/60, and
    # the bounds are exp(-exp(log(-log S) -+ z sqrt(V) / log S)).
    e = estimate_time_to_event(rows, 7, competing=False)
    log_s = math.log(5 / 12)
    half = Z * math.sqrt(17 / 60) / log_s
    assert e.lower == pytest.approx(math.exp(-math.exp(math.log(-log_s) - half)), abs=1e-12)
    assert e.upper == pytest.approx(math.exp(-math.exp(math.log(-log_s) + half)), abs=1e-12)
    assert (e.patients, e.events, e.competing, e.censored, e.at_risk) == (6, 3, 0, 3, 4)
    assert e.note == ""


def test_kaplan_meier_agrees_with_lifelines() -> None:
    rng = random.Random(7)
    spec: list[tuple[int, Status]] = [
        (rng.randint(0, 90), rng.choice(["event", "censored"])) for _ in range(40)
    ]
    rows = cohort(spec)
    fitter = KaplanMeierFitter().fit([t for t, _ in spec], [s == "event" for _, s in spec])
    for h in (0, 1, 10, 30, 45, 60, 89, 90, 200):
        e = estimate_time_to_event(rows, h, competing=False)
        assert e.value == pytest.approx(
            float(fitter.survival_function_at_times(h).iloc[0]), abs=1e-12
        )
        lower, upper = lifelines_at(fitter.confidence_interval_survival_function_, h)
        assert e.lower == pytest.approx(lower, abs=1e-12), h
        assert e.upper == pytest.approx(upper, abs=1e-12), h


def test_kaplan_meier_curve_steps() -> None:
    e = estimate_time_to_event(cohort(KM_SPEC), 11, competing=False)
    # Steps at the event days only (censorings change nothing), then the horizon.
    assert [(p.time, p.value) for p in e.curve] == [
        (0.0, 1.0),
        (3.0, pytest.approx(5 / 6)),
        (7.0, pytest.approx(5 / 12)),
        (11.0, pytest.approx(5 / 12)),
    ]
    assert (e.curve[-1].lower, e.curve[-1].upper) == (e.lower, e.upper)


# --- Aalen-Johansen ----------------------------------------------------------------------------


def test_aalen_johansen_by_hand() -> None:
    rows = cohort(AJ_SPEC)
    # CIF_1(t) = sum over event days u <= t of S(u-) * d1(u) / n(u), S the all-cause
    # Kaplan-Meier; on day 5 the censored patient is still at risk.
    # Day 2: n 8, d1 1          -> CIF 1/8,             S 7/8
    # Day 3: n 7, d1 1, d2 1    -> CIF += 7/8 * 1/7,    S 7/8 * 5/7 = 5/8
    # Day 5: n 4, d1 1          -> CIF += 5/8 * 1/4,    S 5/8 * 3/4 = 15/32
    # Day 6: n 2, d2 1          ->                      S 15/64
    # Day 9: n 1, d1 1          -> CIF += 15/64 * 1/1,  S 0
    day2 = Fraction(1) * Fraction(1, 8)
    day3 = day2 + Fraction(7, 8) * Fraction(1, 7)
    day5 = day3 + Fraction(5, 8) * Fraction(1, 4)
    day9 = day5 + Fraction(15, 64) * Fraction(1, 1)
    assert (day3, day5, day9) == (Fraction(1, 4), Fraction(13, 32), Fraction(41, 64))
    zero = Fraction(0)
    expected = {0: zero, 1: zero, 2: day2, 3: day3, 4: day3, 5: day5, 8: day5, 9: day9, 50: day9}
    for h, cif in expected.items():
        e = estimate_time_to_event(rows, h, competing=True)
        assert e.value == pytest.approx(float(cif), abs=1e-15), h
        assert (e.method, e.quantity) == ("aalen-johansen", "cumulative incidence")
    # The competing cause: 7/8 * 1/7 on day 3 and 15/32 * 1/2 on day 6 -> 23/64 = 1 - 41/64.
    other = estimate_time_to_event(swapped(rows), 9, competing=True)
    assert other.value == pytest.approx(23 / 64, abs=1e-15)
    e = estimate_time_to_event(rows, 9, competing=True)
    assert (e.patients, e.events, e.competing, e.censored, e.at_risk) == (8, 4, 2, 2, 1)


def test_aalen_johansen_agrees_with_lifelines() -> None:
    rows = cohort(NO_CROSS_TIES)
    codes = {"event": 1, "competing": 2, "censored": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a tie warning would mean lifelines jittered
        fitter = AalenJohansenFitter().fit(
            [t for t, _ in NO_CROSS_TIES], [codes[s] for _, s in NO_CROSS_TIES], event_of_interest=1
        )
    for h in (0, 3, 4, 9, 10, 12, 30, 41, 45, 60, 100):
        e = estimate_time_to_event(rows, h, competing=True)
        value, *bounds = lifelines_at(
            fitter.cumulative_density_.join(fitter.confidence_interval_), h
        )
        assert e.value == pytest.approx(value, abs=1e-9), h
        if value == 0:
            # lifelines has no interval at 0 (NaN); the estimate reports the point.
            assert all(math.isnan(b) for b in bounds)
            assert (e.lower, e.upper) == (0.0, 0.0)
            assert "interval is reported as the estimate itself" in e.note
        else:
            # lifelines 0.30 names its Aalen-Johansen bounds the wrong way round.
            assert e.lower == pytest.approx(min(bounds), abs=1e-9), h
            assert e.upper == pytest.approx(max(bounds), abs=1e-9), h
            assert e.note == ""


class _TiesKept(AalenJohansenFitter):  # type: ignore[misc]
    """lifelines' Aalen-Johansen with its tie check off: tied times are kept together."""

    @staticmethod
    def _check_for_duplicates(durations: Any, events: Any) -> bool:
        return False


def test_aalen_johansen_ties_follow_lifelines_formula() -> None:
    # With an event and a competing event on one day, the estimate and its interval are
    # lifelines' formulas applied to the day as one instant (no jitter, events before
    # censorings), as its event table already does for any other tie.
    rows = cohort(AJ_SPEC)
    codes = {"event": 1, "competing": 2, "censored": 0}
    times = [t for t, _ in AJ_SPEC]
    fitter = _TiesKept().fit(times, [codes[s] for _, s in AJ_SPEC], event_of_interest=1)
    for h in (2, 3, 4, 5, 6, 8):
        e = estimate_time_to_event(rows, h, competing=True)
        value, *bounds = lifelines_at(
            fitter.cumulative_density_.join(fitter.confidence_interval_), h
        )
        assert e.value == pytest.approx(value, abs=1e-12), h
        assert e.lower == pytest.approx(min(bounds), abs=1e-12), h
        assert e.upper == pytest.approx(max(bounds), abs=1e-12), h


def test_no_interval_once_everyone_had_an_event() -> None:
    # On day 9 the last patient at risk has the event: lifelines' variance is 0 * infinity.
    e = estimate_time_to_event(cohort(AJ_SPEC), 9, competing=True)
    assert (e.lower, e.upper) == (0.0, 1.0)
    assert "lifelines gives no interval at day 9" in e.note
    json.dumps(e.to_json(), allow_nan=False)
    # A cumulative incidence of 1 (everybody had the event) collapses to the point.
    e = estimate_time_to_event(cohort([(1, "event"), (2, "event")]), 5, competing=True)
    assert (e.value, e.lower, e.upper) == (1.0, 1.0, 1.0)


def test_event_on_day_zero_counts() -> None:
    # lifelines' Aalen-Johansen fitter drops events at time 0 (its first row is forced to 0).
    rows = cohort([(0, "event"), (2, "competing"), (3, "censored"), (5, "event")])
    assert estimate_time_to_event(rows, 0, competing=True).value == pytest.approx(0.25)
    # Day 5: S(5-) = 3/4 * 2/3 = 1/2, 1 at risk -> CIF = 1/4 + 1/2.
    assert estimate_time_to_event(rows, 5, competing=True).value == pytest.approx(0.75)
    assert estimate_time_to_event(composite(rows), 0, competing=False).value == pytest.approx(0.75)


@pytest.mark.parametrize("competing", [False, True])
def test_event_on_the_horizon_counts_and_the_day_after_does_not(competing: bool) -> None:
    status: Status = "competing" if competing else "event"
    others: list[tuple[int, Status]] = [(30, "event"), (40, status), (40, "censored")]
    on = estimate_time_to_event(
        cohort([(60, "event"), *others, (80, "censored")]), 60, competing=competing
    )
    after = estimate_time_to_event(
        cohort([(61, "event"), *others, (80, "censored")]), 60, competing=competing
    )
    # 5 patients: day 30 takes 1 of 5, day 40 1 of 4 (competing or not); on day 60, 1 of 2.
    if competing:
        assert after.value == pytest.approx(1 / 5)
        assert on.value == pytest.approx(1 / 5 + (4 / 5) * (3 / 4) * (1 / 2))
    else:
        assert after.value == pytest.approx(4 / 5 * 3 / 4)
        assert on.value == pytest.approx(4 / 5 * 3 / 4 * 1 / 2)
    events = 1 if competing else 2  # by the horizon, before the last patient's
    assert (on.events, after.events) == (events + 1, events)


# --- properties --------------------------------------------------------------------------------

STATUSES: list[Status] = ["event", "competing", "censored"]
cohorts = st.lists(
    st.tuples(st.integers(0, 400), st.sampled_from(STATUSES)), min_size=1, max_size=60
)


def check_bounds(e: Estimate) -> None:
    assert 0 <= e.lower <= e.value <= e.upper <= 1
    assert e.events + e.competing + e.censored == e.patients
    json.dumps(e.to_json(), allow_nan=False)
    assert e.curve[0].time == 0 and e.curve[-1].time == e.horizon_days
    assert (e.curve[-1].value, e.curve[-1].lower, e.curve[-1].upper) == (e.value, e.lower, e.upper)
    times = [p.time for p in e.curve]
    assert times == sorted(set(times))
    values = [p.value for p in e.curve]
    rising = e.method == "aalen-johansen"
    assert all(
        (b >= a - 1e-15) if rising else (b <= a + 1e-15) for a, b in itertools.pairwise(values)
    )
    for p in e.curve:
        assert 0 <= p.lower <= p.value <= p.upper <= 1


@settings(max_examples=40, deadline=None)
@given(spec=cohorts, horizon=st.integers(0, 420), rng=st.randoms(use_true_random=False))
def test_causes_and_survival_add_up(
    spec: list[tuple[int, Status]], horizon: int, rng: random.Random
) -> None:
    rows = cohort(spec)
    cif1 = estimate_time_to_event(rows, horizon, competing=True)
    cif2 = estimate_time_to_event(swapped(rows), horizon, competing=True)
    alive = estimate_time_to_event(composite(rows), horizon, competing=False)
    assert cif1.value + cif2.value + alive.value == pytest.approx(1, abs=1e-9)
    for e in (cif1, cif2, alive):
        check_bounds(e)
    shuffled = list(rows)
    rng.shuffle(shuffled)
    assert estimate_time_to_event(shuffled, horizon, competing=True) == cif1
    assert estimate_time_to_event(composite(shuffled), horizon, competing=False) == alive


# --- inputs ------------------------------------------------------------------------------------


def test_rejected_inputs() -> None:
    rows = cohort(AJ_SPEC)
    with pytest.raises(ValueError, match="no rows"):
        estimate_time_to_event([], 10, competing=False)
    with pytest.raises(ValueError, match="several endpoints"):
        estimate_time_to_event([*rows, *cohort([(1, "event")], endpoint="F")], 10, competing=True)
    with pytest.raises(ValueError, match="competing=True"):
        estimate_time_to_event(rows, 10, competing=False)
    with pytest.raises(ValueError, match="before the origin"):
        estimate_time_to_event(rows, -1, competing=True)
    with pytest.raises(ValueError, match="alpha"):
        estimate_time_to_event(rows, 10, competing=True, alpha=1.5)
    with pytest.raises(ValueError, match="status responder are not time-to-event rows"):
        estimate_time_to_event([*rows, *cohort([(84, "responder")])], 10, competing=True)


def test_confidence_level() -> None:
    rows = cohort(KM_SPEC)
    wide = estimate_time_to_event(rows, 7, competing=False, alpha=0.01)
    usual = estimate_time_to_event(rows, 7, competing=False)
    assert (wide.confidence, usual.confidence) == (0.99, 0.95)
    assert wide.lower < usual.lower < usual.value < usual.upper < wide.upper


def test_horizon_days_from_derived_rows() -> None:
    protocol = load(FIXTURES / "endpoints" / "pfs_os.yaml")
    pfs, os_ = endpoints(protocol)
    patients = [
        # 1 year after 2024-01-10 is 366 days (leap year); the death is on the horizon day.
        {"id": "A", "transplant": "2024-01-10", "last_follow_up": "2025-01-10",
         "relapse": [], "death": ["2025-01-10"]},
        # 1 year after 2023-01-10 is 365 days: derive censors this patient there.
        {"id": "B", "transplant": "2023-01-10", "last_follow_up": "2025-01-01",
         "relapse": [], "death": []},
        {"id": "C", "transplant": "2024-01-10", "last_follow_up": "2026-01-01",
         "relapse": [], "death": []},
    ]  # fmt: skip
    rows, problems = derive_many(protocol, patients)
    assert problems == []
    os_rows = [r for r in rows if r.endpoint == "OS"]
    assert [(r.time, r.status) for r in os_rows] == [
        (366, "event"),
        (365, "censored"),
        (366, "censored"),
    ]
    h = horizon_days(os_, os_rows)
    assert h == 366
    # Day 366: A and C at risk, A dies -> S = 1/2.
    e = estimate_time_to_event(os_rows, h, competing=False)
    assert (e.endpoint, e.name, e.value) == ("OS", "Overall survival", 0.5)
    with pytest.raises(ValueError, match="rows of OS given for endpoint PFS"):
        horizon_days(pfs, os_rows)
    with pytest.raises(ValueError, match="no rows"):
        horizon_days(pfs, [])


# --- proportions -------------------------------------------------------------------------------


def test_proportion_clopper_pearson() -> None:
    none = estimate_proportion("ORR", "Overall response", 0, 10)
    assert (none.value, none.lower) == (0.0, 0.0)
    assert none.upper == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-12)
    every = estimate_proportion("ORR", "Overall response", 10, 10)
    assert (every.value, every.upper) == (1.0, 1.0)
    assert every.lower == pytest.approx(0.025 ** (1 / 10), abs=1e-12)
    some = estimate_proportion("ORR", "Overall response", 3, 10, horizon_days=84)
    assert some.value == 0.3
    # Clopper-Pearson as beta quantiles: [B(0.025; k, n-k+1), B(0.975; k+1, n-k)].
    assert some.lower == pytest.approx(float(beta.ppf(0.025, 3, 8)), abs=1e-9)
    assert some.upper == pytest.approx(float(beta.ppf(0.975, 4, 7)), abs=1e-9)
    assert (some.method, some.quantity, some.horizon_days) == ("proportion", "proportion", 84)
    assert (some.patients, some.events, some.curve, some.at_risk) == (10, 3, (), None)
    json.dumps(some.to_json(), allow_nan=False)


def test_proportion_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="no evaluable patients"):
        estimate_proportion("ORR", "Overall response", 0, 0)
    with pytest.raises(ValueError, match="11 responders among 10"):
        estimate_proportion("ORR", "Overall response", 11, 10)


# --- plots -------------------------------------------------------------------------------------


def estimates() -> list[Estimate]:
    return [
        estimate_time_to_event(cohort(KM_SPEC, "OS"), 11, competing=False),
        estimate_time_to_event(cohort(AJ_SPEC, "CIR/1 year"), 8, competing=True),
        estimate_proportion("ORR", "Overall response", 3, 10),
    ]


def test_plot_writes_png_and_svg(tmp_path: Path) -> None:
    paths = plot(estimates(), tmp_path / "figures")
    names = ["OS.png", "OS.svg", "CIR_1_year.png", "CIR_1_year.svg"]
    assert [p.name for p in paths] == names  # no figure for the proportion
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(names)
    for path in paths:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert ET.parse(path).getroot().tag.endswith("svg")
    # The same estimates draw the same files.
    again = plot(estimates(), tmp_path / "again")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


def test_plot_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown plot format 'gif'"):
        plot(estimates(), tmp_path / "figures", formats=("png", "gif"))
    assert not (tmp_path / "figures").exists()
