"""Synthetic post-transplant follow-up for the seed protocol NCT06125106 (endpoints, version 3).

`generate_cohort(n, seed)` returns `n` record dicts in the documented record format
(``docs/records.md``) with what the seven endpoints read: the transplant date (day 0), the
date last known alive, death, relapse evidence (peripheral and marrow blasts, immature
monocytes, extramedullary lesions), weekly acute GVHD organ stages to day 100, chronic GVHD
organ scores from day 100, and MRD by flow cytometry around day 365. The same `(n, seed)`
always gives the same records.

The cohort resembles a single-arm haploidentical transplant study, not uniform noise: about a
quarter relapse within a year, about one in seven dies without relapse, a third has grade
II-IV acute GVHD, a third chronic GVHD; some patients are lost to follow-up early, and the
data cutoff leaves late transplants with less than a year of follow-up. Boundary cases are
frequent on purpose: relapse or death exactly on day 365 or day 100, MRD assessed exactly
30 days from day 365, marrow blasts of exactly 5 %.

``python benchmarks/cohort.py --n 40 --seed 7 > protocol/NCT06125106/examples/cohort.jsonl``
wrote the bundled example cohort.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from typing import Any

START = dt.date(2024, 1, 8)
CUTOFF = dt.date(2025, 12, 31)
AGVHD = ("agvhd_skin_stage", "agvhd_liver_stage", "agvhd_upper_gi_stage", "agvhd_lower_gi_stage")
CGVHD = tuple(
    f"cgvhd_{organ}_score"
    for organ in ("skin", "mouth", "eyes", "gi", "liver", "lungs", "joints", "genital")
)
MARROW_DAYS = (30, 90, 180, 270)


def _day(origin: dt.date, days: int) -> str:
    return (origin + dt.timedelta(days=days)).isoformat()


def _pick_day(rng: random.Random, mean: float, exact: int) -> int:
    """An exponential day, now and then exactly `exact` (a boundary on purpose)."""
    if rng.random() < 0.04:
        return exact
    return 1 + int(rng.expovariate(1 / mean))


def patient(rng: random.Random, index: int) -> dict[str, Any]:
    """One patient's follow-up record."""
    origin = START + dt.timedelta(days=rng.randrange(0, 560))
    follow_up = (CUTOFF - origin).days
    if rng.random() < 0.08:  # lost to follow-up
        follow_up = rng.randrange(20, follow_up)
    relapse = _pick_day(rng, 1100, 365)
    death_without_relapse = _pick_day(rng, 2000, 100)
    death_after_relapse = relapse + 1 + int(rng.expovariate(1 / 150))
    death = min(death_without_relapse, death_after_relapse)
    end = min(follow_up, death)  # the last day anything is known
    relapsed = relapse <= end
    record: dict[str, Any] = {
        "id": f"SYN-{index:06d}",
        "transplant": origin.isoformat(),
        "last_follow_up": _day(origin, end),
        "death": [_day(origin, death)] if death <= follow_up else [],
        "peripheral_blasts": [],
        "marrow_blasts": [],
        "marrow_immature_monocytes": [],
        "extramedullary_relapse": [],
        "mrd_flow": [{"value": "positive", "date": _day(origin, -40)}],  # why they enrolled
        **{item: [] for item in (*AGVHD, *CGVHD)},
    }
    for day in MARROW_DAYS:
        if day < min(end + 1, relapse):
            blasts = round(rng.uniform(0, 4.9), 1)
            record["marrow_blasts"].append({"value": blasts, "date": _day(origin, day)})
            record["peripheral_blasts"].append({"value": "absent", "date": _day(origin, day)})
    if relapsed:
        how = rng.random()
        if how < 0.5:
            blasts = rng.choice([5, 5, round(rng.uniform(5, 80), 1)])
            record["marrow_blasts"].append({"value": blasts, "date": _day(origin, relapse)})
        elif how < 0.8:
            record["peripheral_blasts"].append({"value": "present", "date": _day(origin, relapse)})
        elif how < 0.9:
            record["marrow_immature_monocytes"].append(
                {"value": round(rng.uniform(5, 30), 1), "date": _day(origin, relapse)}
            )
        else:
            record["extramedullary_relapse"].append(_day(origin, relapse))
    _acute_gvhd(rng, record, origin, end)
    _chronic_gvhd(rng, record, origin, end)
    mrd_day = rng.choice([365, 365, 350, 380, 335, 395, 400])
    if mrd_day <= end and not relapse <= mrd_day and rng.random() < 0.9:
        value = "negative" if rng.random() < 0.75 else "positive"
        record["mrd_flow"].append({"value": value, "date": _day(origin, mrd_day)})
    return record


def _acute_gvhd(rng: random.Random, record: dict[str, Any], origin: dt.date, end: int) -> None:
    onset = rng.randrange(14, 110) if rng.random() < 0.45 else None
    worst = rng.choice([(1, 0, 0, 0), (3, 0, 0, 0), (2, 1, 0, 1), (3, 2, 1, 2), (4, 0, 1, 3)])
    for day in range(7, 106, 7):
        if day > end:
            break
        stages = worst if onset is not None and onset <= day < onset + 28 else (0, 0, 0, 0)
        for item, stage in zip(AGVHD, stages, strict=True):
            record[item].append({"value": stage, "date": _day(origin, day)})


def _chronic_gvhd(rng: random.Random, record: dict[str, Any], origin: dt.date, end: int) -> None:
    onset = rng.randrange(100, 500) if rng.random() < 0.4 else None
    organs = rng.sample(range(len(CGVHD)), rng.randint(1, 4))
    score = rng.choice([1, 1, 2, 3])
    for day in (100, 180, 270, 365):
        if day > end:
            break
        for k, item in enumerate(CGVHD):
            value = score if onset is not None and onset <= day and k in organs else 0
            record[item].append({"value": value, "date": _day(origin, day)})


def generate_cohort(n: int, seed: int) -> list[dict[str, Any]]:
    """`n` synthetic follow-up records; the same `(n, seed)` gives the same records."""
    rng = random.Random(seed)
    return [patient(rng, i + 1) for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    """Write a synthetic cohort as JSONL on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="number of patients")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    for record in generate_cohort(args.n, args.seed):
        sys.stdout.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
