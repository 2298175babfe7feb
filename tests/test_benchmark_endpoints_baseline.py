"""The hand-written endpoint baseline (``benchmarks/baseline_endpoints.py``) stays honest.

The baseline is only a fair yardstick if it computes what protocode computes: on generated
follow-up cohorts (``benchmarks/cohort.py``) and on a few boundary patients, every endpoint
row must have the same status, date and time as `protocode.endpoints.derive`; its MAGIC and
NIH grading functions must grade every possible assessment as the protocol's tables do.
No timing here.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import itertools
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import protocode
from protocode.endpoints import derive, endpoints
from protocode.language.check.tables import CheckedTable

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
V3 = ROOT / "protocol" / "NCT06125106" / "v3.yaml"
N = 150
SEEDS = (1, 20240301)

Row = tuple[str, str, dt.date, int]


def _load(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (the folder is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"protocode_bench_{name}", BENCHMARKS / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate_cohort: Callable[[int, int], list[dict[str, Any]]] = _load("cohort").generate_cohort
baseline = _load("baseline_endpoints")
derive_baseline: Callable[[Mapping[str, Any]], list[Row]] = baseline.derive_baseline


@pytest.fixture(scope="module")
def protocol() -> protocode.Protocol:
    return protocode.load(V3)


def _protocode_rows(protocol: protocode.Protocol, data: Mapping[str, Any]) -> list[Row]:
    return [(r.endpoint, r.status, r.date, r.time) for r in derive(protocol, data)]


def _disagreements(protocol: protocode.Protocol, cohort: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for data in cohort:
        ours, theirs = derive_baseline(data), _protocode_rows(protocol, data)
        if ours != theirs:
            diff = [(t, o) for t, o in zip(theirs, ours, strict=False) if t != o]
            out.append(f"{data['id']}: (protocode, baseline) {diff} record {data}")
    return out


def test_endpoint_order(protocol: protocode.Protocol) -> None:
    assert tuple(e.id for e in endpoints(protocol)) == baseline.ENDPOINTS


@pytest.mark.parametrize("seed", SEEDS)
def test_baseline_agrees_with_protocode(protocol: protocode.Protocol, seed: int) -> None:
    bad = _disagreements(protocol, generate_cohort(N, seed))
    assert not bad, f"{len(bad)} disagreement(s):\n" + "\n".join(bad[:5])


def test_cohort_exercises_every_status(protocol: protocode.Protocol) -> None:
    # Agreement means little on a cohort where some outcome never happens.
    seen: dict[str, set[str]] = defaultdict(set)
    for seed in SEEDS:
        for data in generate_cohort(N, seed):
            for endpoint, status, _, _ in derive_baseline(data):
                seen[endpoint].add(status)
    time_to_event = {"event", "competing", "censored"}
    expected = {
        "PFS": {"event", "censored"},
        "OS": {"event", "censored"},
        "CIR": time_to_event,
        "NRM": time_to_event,
        "aGVHD": time_to_event,
        "cGVHD": time_to_event,
        "MRD": {"responder", "non_responder", "not_evaluable"},
    }
    assert dict(seen) == expected


def _table(protocol: protocode.Protocol, derived_event: str) -> CheckedTable:
    for e in endpoints(protocol):
        d = e.derived.get(derived_event)
        if d is not None:
            table = d.clauses[0].table
            assert table is not None
            return table
    raise AssertionError(f"no endpoint reads {derived_event}")


def test_magic_grade_matches_the_table(protocol: protocode.Protocol) -> None:
    table = _table(protocol, "agvhd_grade_2_4")
    assert table.items == baseline.AGVHD_ITEMS
    for stages in itertools.product(range(5), range(5), range(2), range(5)):
        (grade,) = table.grade(dict(zip(table.items, stages, strict=True)))
        assert baseline.magic_grade(*stages) == table.rank(grade), stages


def test_nih_severity_matches_the_table(protocol: protocode.Protocol) -> None:
    table = _table(protocol, "cgvhd")
    assert set(table.items) == {baseline.CGVHD_LUNG, *baseline.CGVHD_OTHERS}
    items = (baseline.CGVHD_LUNG, *baseline.CGVHD_OTHERS)
    for scores in itertools.product(range(4), repeat=len(items)):
        (grade,) = table.grade(dict(zip(items, scores, strict=True)))
        assert baseline.nih_severity(scores[0], scores[1:]) == table.rank(grade), scores


# --- boundary patients the generator makes rarely or never -----------------------------------


def _patient(origin: dt.date, follow_up: int, **series: list[Any]) -> dict[str, Any]:
    items = (
        "death",
        "peripheral_blasts",
        "marrow_blasts",
        "marrow_immature_monocytes",
        "extramedullary_relapse",
        "mrd_flow",
        *baseline.AGVHD_ITEMS,
        baseline.CGVHD_LUNG,
        *baseline.CGVHD_OTHERS,
    )
    record: dict[str, Any] = {
        "id": "B",
        "transplant": origin.isoformat(),
        "last_follow_up": (origin + dt.timedelta(days=follow_up)).isoformat(),
        **{item: [] for item in items},
    }
    record.update(series)
    return record


def _obs(value: object, day: dt.date) -> dict[str, Any]:
    return {"value": value, "date": day.isoformat()}


LEAP = dt.date(2024, 2, 29)  # 1 year later: 2025-02-28
LEAP_YEAR = dt.date(2025, 2, 28)
JULY = dt.date(2024, 7, 1)


def _day(n: int, origin: dt.date = JULY) -> dt.date:
    return origin + dt.timedelta(days=n)


def _agvhd(day: dt.date, stages: tuple[int, int, int, int]) -> dict[str, list[Any]]:
    return {
        item: [_obs(stage, day)] for item, stage in zip(baseline.AGVHD_ITEMS, stages, strict=True)
    }


BOUNDARY = {
    "leap origin, relapse on the horizon": _patient(
        LEAP, 500, marrow_blasts=[_obs(5, LEAP_YEAR)], mrd_flow=[_obs("negative", LEAP_YEAR)]
    ),
    "leap origin, relapse a day after the horizon": _patient(
        LEAP, 500, peripheral_blasts=[_obs("present", LEAP_YEAR + dt.timedelta(days=1))]
    ),
    "leap origin, follow-up ends on the horizon": _patient(LEAP, 365),
    "relapse and death on one day": _patient(
        JULY, 200, death=[_day(200).isoformat()], extramedullary_relapse=[_day(200).isoformat()]
    ),
    "acute GVHD grade II on day 100, death that day": _patient(
        JULY, 100, death=[_day(100).isoformat()], **_agvhd(_day(100), (0, 1, 0, 0))
    ),
    "acute GVHD grade II on day 101": _patient(JULY, 300, **_agvhd(_day(101), (3, 0, 0, 0))),
    "acute GVHD grade I only": _patient(JULY, 300, **_agvhd(_day(30), (2, 0, 0, 0))),
    "relapse before transplant does not count": _patient(
        JULY, 400, marrow_blasts=[_obs(40, _day(-20)), _obs(1, _day(30))]
    ),
    "MRD on the window's last day": _patient(JULY, 500, mrd_flow=[_obs("negative", _day(395))]),
    "MRD a day after the window": _patient(JULY, 500, mrd_flow=[_obs("negative", _day(396))]),
    "relapse after a negative MRD, inside the window": _patient(
        JULY,
        500,
        mrd_flow=[_obs("negative", _day(350))],
        marrow_immature_monocytes=[_obs(5, _day(395))],
    ),
    "latest of two MRD assessments decides": _patient(
        JULY, 500, mrd_flow=[_obs("negative", _day(340)), _obs("positive", _day(370))]
    ),
}


@pytest.mark.parametrize("name", BOUNDARY)
def test_baseline_agrees_on_boundary_patients(protocol: protocode.Protocol, name: str) -> None:
    data = BOUNDARY[name]
    assert derive_baseline(data) == _protocode_rows(protocol, data)
