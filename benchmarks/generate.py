"""Synthetic patient records for the seed protocol NCT06125106 (adult MRD+ CD19+ B-ALL).

`generate_records(n, seed)` returns `n` record dicts in the documented record format
(``docs/records.md``), exactly as `json.loads` of a JSONL file would give them, except that
decimals are Python floats with few decimals. The same `(n, seed)` always gives the same
records: all randomness comes from one seeded `random.Random`.

The cohort looks like the screening log of a transplant centre, not like uniform noise:

- most patients are adults with CD19+ B-ALL in complete remission and MRD positive, so a
  sizeable share (roughly 30-50 %) is eligible;
- every criterion fails for a few patients (age, ECOG, organ function, recent chemotherapy,
  earlier transplant or blinatumomab, CNS disease, comorbidities, consent ...);
- laboratory values are mostly dated within the 7-day window before enrollment, some are
  older, dated after enrollment or undated, and there are older values besides;
- creatinine, weight, bilirubin and life expectancy sometimes come in other units
  (umol/L, [lb_av], mo); AST, ALT and bilirubin carry the lab's reference range on some
  records and rely on the protocol's default ULN on others;
- boundary values are deliberately frequent: creatinine giving a Cockcroft-Gault clearance of
  exactly 60 mL/min (and one step below), AST/ALT at exactly 3 x ULN, bilirubin at 2 x ULN,
  LVEF at 50 %, the 18th and 71st birthday on the enrollment day, chemotherapy ending exactly
  14 or 15 days before enrollment, a myocardial infarction exactly 6 months before screening;
- a few percent of records lack some item (absent key or JSON null), which makes the
  screening indeterminate unless another criterion already excludes the patient.

Run as a script to write JSONL: ``python benchmarks/generate.py --n 1000 --seed 1 > out.jsonl``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from collections.abc import Sequence
from fractions import Fraction
from functools import cache
from typing import Any

__all__ = ["generate_records", "main"]

Json = dict[str, Any]

_DAY = dt.timedelta(days=1)
_FIRST_ENROLLMENT = dt.date(2023, 1, 2)
_ENROLLMENT_DAYS = 900

# Cockcroft-Gault: CrCl = (140 - age) * weight * f / (72 * scr) with f = 17/20 for women.
_CG_FACTOR = {"male": Fraction(1), "female": Fraction(17, 20)}
# umol/L per mg/dL: 10 dL/L * 1000 umol/mmol / molar mass (g/mol), rounded for generation only.
_CREATININE_UMOL = 88.4
_BILIRUBIN_UMOL = 17.1


def generate_records(
    n: int, seed: int = 1, *, missing: float = 0.06, most_missing: int = 3
) -> list[Json]:
    """`n` synthetic patient records for NCT06125106, deterministic in its arguments.

    `missing` is the share of records that lack some item (one to `most_missing` items,
    drawn from the whole dictionary); the default gives a realistic few percent. Raising
    both makes a stress cohort for the three-valued logic.
    """
    rng = random.Random(seed)
    return [_patient(rng, i, missing, most_missing) for i in range(n)]


# --- small helpers ---------------------------------------------------------------------------


def _iso(d: dt.date) -> str:
    return d.isoformat()


def _shift_years(d: dt.date, years: int) -> dt.date:
    """`d` moved by whole calendar years (29 February becomes 28 February)."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


def _shift_months(d: dt.date, months: int) -> dt.date:
    """`d` moved by calendar months, the day clamped to the end of a shorter month."""
    index = d.year * 12 + d.month - 1 + months
    year, month0 = divmod(index, 12)
    day = d.day
    while True:
        try:
            return dt.date(year, month0 + 1, day)
        except ValueError:
            day -= 1


def _chance(rng: random.Random, p: float) -> bool:
    return rng.random() < p


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, float]]) -> Any:
    """One value of `(value, weight)` pairs."""
    r = rng.random() * sum(w for _, w in weighted)
    for value, w in weighted:
        r -= w
        if r < 0:
            return value
    return weighted[-1][0]


def _flag(rng: random.Random, p_true: float) -> bool:
    return _chance(rng, p_true)


@cache
def _crcl_boundaries() -> tuple[tuple[str, int, float, float], ...]:
    """(sex, age, weight kg, creatinine mg/dL) whose Cockcroft-Gault clearance is exactly 60.

    Weight has at most one decimal and creatinine two, so the JSON numbers are exact and a
    binary-float implementation would be tempted to round the wrong way.
    """
    out = []
    for sex, factor in _CG_FACTOR.items():
        for age in range(18, 71):
            for hundredths in range(50, 201):
                scr = Fraction(hundredths, 100)
                weight = 72 * 60 * scr / ((140 - age) * factor)
                if 45 <= weight <= 130 and (weight * 10).denominator == 1:
                    out.append((sex, age, float(weight), float(scr)))
    return tuple(out)


# --- one patient -------------------------------------------------------------------------------


def _patient(rng: random.Random, index: int, missing: float, most_missing: int) -> Json:
    enrollment = _FIRST_ENROLLMENT + dt.timedelta(days=rng.randrange(_ENROLLMENT_DAYS))
    screening = enrollment - dt.timedelta(days=rng.randint(1, 28))
    rec: Json = {
        "id": f"SYN{index:07d}",
        "screening": _iso(screening),
        "enrollment": _iso(enrollment),
    }

    sex: str = _pick(rng, [("male", 0.56), ("female", 0.44)])
    age = _age(rng)
    weight = _weight(rng, sex)
    scr = _creatinine_value(rng, sex)
    if _chance(rng, 0.03):
        sex, age, weight, scr = _crcl_boundary(rng)
    birth = _birth_date(rng, enrollment, age)
    rec["birth_date"] = _iso(birth)
    rec["sex"] = sex
    rec["weight"] = (
        {"value": round(weight / 0.45359237, 1), "unit": "[lb_av]"}
        if _chance(rng, 0.06)
        else weight
    )

    _disease(rng, rec, enrollment)
    rec["ecog"] = _pick(rng, [(0, 0.45), (1, 0.40), (2, 0.11), (3, 0.03), (4, 0.01)])
    rec["life_expectancy"] = _life_expectancy(rng)
    _reproduction(rng, rec, sex, age, enrollment)
    rec["creatinine"] = _creatinine_series(rng, enrollment, scr)
    rec["ast"] = _transaminase(rng, enrollment)
    rec["alt"] = _transaminase(rng, enrollment)
    rec["bilirubin"] = _bilirubin(rng, enrollment)
    rec["lvef"] = _lvef(rng, enrollment)
    _treatment(rng, rec, enrollment)
    _comorbidities(rng, rec, screening)
    rec["attestations"] = {
        "informed_consent": _flag(rng, 0.985),
        "unable_to_comply": _flag(rng, 0.01),
    }
    if _chance(rng, missing):
        _drop_items(rng, rec, most_missing)
    return rec


def _age(rng: random.Random) -> int:
    """Age in completed years at enrollment: mostly 18-70, a few adolescents and older adults."""
    band = _pick(rng, [((18, 70), 0.93), ((15, 17), 0.03), ((71, 78), 0.04)])
    return rng.randint(*band)


def _birth_date(rng: random.Random, enrollment: dt.date, age: int) -> dt.date:
    """A birth date making the patient exactly `age` completed years old at enrollment."""
    if _chance(rng, 0.015):
        # The birthday falls on the enrollment day: the first day of that age.
        return _shift_years(enrollment, -age)
    return _shift_years(enrollment, -age) - dt.timedelta(days=rng.randrange(365))


def _weight(rng: random.Random, sex: str) -> float:
    mean, sd = (76.0, 13.0) if sex == "male" else (63.0, 11.0)
    return round(min(max(rng.gauss(mean, sd), 38.0), 160.0), 1)


def _creatinine_value(rng: random.Random, sex: str) -> float:
    typical = 0.95 if sex == "male" else 0.75
    value = typical * rng.lognormvariate(0.0, 0.22)
    if _chance(rng, 0.03):
        value *= rng.uniform(1.5, 3.0)  # renal impairment
    return round(min(max(value, 0.3), 6.0), 2)


def _crcl_boundary(rng: random.Random) -> tuple[str, int, float, float]:
    """A patient whose clearance is exactly 60 mL/min, or one creatinine step above it."""
    sex, age, weight, scr = rng.choice(_crcl_boundaries())
    if _chance(rng, 0.4):
        scr = round(scr + 0.01, 2)  # clearance just under 60: not met
    return sex, age, weight, scr


def _disease(rng: random.Random, rec: Json, enrollment: dt.date) -> None:
    rec["diagnosis"] = _pick(
        rng, [("B-ALL", 0.95), ("T-ALL", 0.025), ("MPAL", 0.015), ("other", 0.01)]
    )
    rec["cd19_positive"] = _flag(rng, 0.98)
    rec["hematologic_cr"] = _flag(rng, 0.97)
    rec["extramedullary_disease"] = _flag(rng, 0.025)
    tests = []
    day = enrollment - dt.timedelta(days=rng.randint(3, 30))
    for k in range(rng.choice((1, 1, 2, 2, 3))):
        latest = k == 0
        value = _pick(rng, [("positive", 0.97), ("negative", 0.03)]) if latest else "positive"
        obs: Json = {"value": value, "date": _iso(day)}
        if _chance(rng, 0.01):
            obs["date"] = None  # undated report
        tests.append(obs)
        day -= dt.timedelta(days=rng.randint(25, 60))
    rng.shuffle(tests)
    rec["mrd_flow"] = tests
    rec["cns_leukemia"] = (
        [_iso(enrollment - dt.timedelta(days=rng.randint(60, 900)))] if _chance(rng, 0.04) else []
    )


def _life_expectancy(rng: random.Random) -> object:
    if _chance(rng, 0.015):
        return rng.choice((4, 6, 8))  # weeks; 8 is not "greater than 8 weeks"
    if _chance(rng, 0.15):
        return {"value": rng.choice((3, 6, 12, 24)), "unit": "mo"}
    return rng.choice((12, 16, 26, 52, 52, 104))


def _reproduction(rng: random.Random, rec: Json, sex: str, age: int, enrollment: dt.date) -> None:
    if sex != "female":
        return  # not asked for men: the rules do not need these items then
    potential = age < 50 and _flag(rng, 0.85)
    rec["childbearing_potential"] = potential
    rec["pregnant"] = _flag(rng, 0.004)
    rec["lactating"] = _flag(rng, 0.01)
    if not potential:
        return
    rec["contraception_agreed"] = _flag(rng, 0.96)
    offset = _pick(rng, [(rng.randint(0, 7), 0.94), (rng.randint(8, 21), 0.06)])
    result = _pick(rng, [("negative", 0.99), ("positive", 0.01)])
    rec["pregnancy_test"] = [
        {"value": result, "date": _iso(enrollment - dt.timedelta(days=offset))}
    ]


def _lab_date(rng: random.Random, enrollment: dt.date) -> str | None:
    """When the pre-enrollment lab was drawn: mostly inside the 7-day window."""
    where = _pick(rng, [("in", 0.975), ("before", 0.015), ("after", 0.005), ("undated", 0.005)])
    if where == "in":
        return _iso(enrollment - dt.timedelta(days=rng.randint(0, 7)))
    if where == "before":
        return _iso(enrollment - dt.timedelta(days=rng.randint(8, 30)))
    if where == "after":
        return _iso(enrollment + dt.timedelta(days=rng.randint(1, 3)))
    return None


def _older(rng: random.Random, enrollment: dt.date, count: int) -> list[str]:
    """Dates of earlier measurements, weeks to months before enrollment."""
    return [_iso(enrollment - dt.timedelta(days=rng.randint(9, 120))) for _ in range(count)]


def _creatinine_series(rng: random.Random, enrollment: dt.date, scr: float) -> list[Json]:
    def obs(value_mg_dl: float, date: str | None) -> Json:
        if _chance(rng, 0.2):
            return {"value": round(value_mg_dl * _CREATININE_UMOL), "unit": "umol/L", "date": date}
        return {"value": value_mg_dl, "date": date}

    series = [obs(scr, _lab_date(rng, enrollment))]
    if _chance(rng, 0.03):
        # Re-run the same day with another result: of same-day values, the one given later
        # in the record counts as the latest.
        rerun = round(min(max(scr * rng.uniform(0.8, 1.25), 0.3), 6.0), 2)
        series.append({"value": rerun, "date": series[0]["date"]})
    for date in _older(rng, enrollment, rng.choice((0, 1, 1, 2))):
        series.append(obs(round(max(0.3, scr * rng.uniform(0.7, 1.6)), 2), date))
    rng.shuffle(series)
    return series


def _transaminase(rng: random.Random, enrollment: dt.date) -> list[Json]:
    with_range = _chance(rng, 0.5)
    uln = rng.choice((35, 40, 40, 45, 50)) if with_range else 40
    kind = _pick(rng, [("normal", 0.955), ("high", 0.03), ("limit", 0.01), ("over", 0.005)])
    if kind == "normal":
        value: float = round(min(22 * rng.lognormvariate(0.0, 0.45), 110.0))
    elif kind == "high":
        value = rng.randint(3 * uln + 1, 8 * uln)
    elif kind == "limit":
        value = 3 * uln  # exactly 3 x ULN: met
    else:
        value = 3 * uln + 0.1  # just above 3 x ULN: not met
    series: list[Json] = [{"value": value, "date": _lab_date(rng, enrollment)}]
    for date in _older(rng, enrollment, rng.choice((0, 1, 2))):
        series.append({"value": round(22 * rng.lognormvariate(0.0, 0.6)), "date": date})
    if with_range:
        for obs in series:
            obs["reference_range"] = (
                {"high": uln} if _chance(rng, 0.2) else {"low": rng.choice((0, 5, 7)), "high": uln}
            )
    rng.shuffle(series)
    return series


def _bilirubin(rng: random.Random, enrollment: dt.date) -> list[Json]:
    umol = _chance(rng, 0.25)
    with_range = _chance(rng, 0.5)
    uln_mg = rng.choice((1.0, 1.2, 1.2, 1.3)) if with_range else 1.2
    kind = _pick(rng, [("normal", 0.97), ("high", 0.02), ("limit", 0.01)])
    if kind == "normal":
        mg = round(min(0.6 * rng.lognormvariate(0.0, 0.4), 2.0), 2)
    elif kind == "high":
        mg = round(rng.uniform(2.05, 6.0) * uln_mg, 1)
    else:
        mg = round(2 * uln_mg, 2)  # exactly 2 x ULN: met
    obs: Json
    if umol:
        # In umol/L both value and range are given in the lab's unit.
        uln_umol = round(uln_mg * _BILIRUBIN_UMOL)
        value = 2 * uln_umol if kind == "limit" else round(mg * _BILIRUBIN_UMOL)
        obs = {"value": value, "unit": "umol/L", "date": _lab_date(rng, enrollment)}
        if with_range:
            obs["reference_range"] = {"low": 3, "high": uln_umol}
    else:
        obs = {"value": mg, "date": _lab_date(rng, enrollment)}
        if with_range:
            obs["reference_range"] = {"low": 0.2, "high": uln_mg}
    series = [obs]
    for date in _older(rng, enrollment, rng.choice((0, 1))):
        series.append({"value": round(0.6 * rng.lognormvariate(0.0, 0.5), 2), "date": date})
    rng.shuffle(series)
    return series


def _lvef(rng: random.Random, enrollment: dt.date) -> list[Json]:
    if _chance(rng, 0.01):
        value: float = 50  # exactly the limit: met
    else:
        value = round(min(max(rng.gauss(61.0, 5.5), 25.0), 78.0), rng.choice((0, 0, 1)))
    where = _pick(rng, [("in", 0.97), ("before", 0.03)])
    offset = rng.randint(0, 7) if where == "in" else rng.randint(8, 28)
    return [{"value": value, "date": _iso(enrollment - dt.timedelta(days=offset))}]


def _treatment(rng: random.Random, rec: Json, enrollment: dt.date) -> None:
    # Induction and consolidation courses; the last one ends a few weeks before enrollment.
    courses: list[object] = []
    gap = _pick(rng, [((15, 60), 0.92), ((3, 13), 0.06), ((14, 14), 0.01), ((15, 15), 0.01)])
    end = enrollment - dt.timedelta(days=rng.randint(*gap))
    for _ in range(rng.randint(1, 4)):
        start = end - dt.timedelta(days=rng.randint(4, 28))
        courses.append(
            {"date": _iso(start), "end": _iso(end)} if _chance(rng, 0.9) else _iso(start)
        )
        end = start - dt.timedelta(days=rng.randint(14, 35))
    if _chance(rng, 0.005):
        courses.append({"date": None})  # a course whose date nobody recorded
    rng.shuffle(courses)
    rec["chemotherapy"] = courses

    hsct = _pick(rng, [("none", 0.955), ("before", 0.03), ("after", 0.015)])
    if hsct == "before":
        rec["hsct"] = [_iso(enrollment - dt.timedelta(days=rng.randint(200, 1500)))]
    elif hsct == "after":
        # The study transplant itself, recorded retrospectively: not "previous".
        rec["hsct"] = [_iso(enrollment + dt.timedelta(days=rng.randint(7, 30)))]
    else:
        rec["hsct"] = []

    blina = _pick(rng, [("none", 0.945), ("before", 0.04), ("study", 0.01), ("undated", 0.005)])
    if blina == "before":
        start = enrollment - dt.timedelta(days=rng.randint(1, 400))
        rec["blinatumomab"] = [{"date": _iso(start), "end": _iso(start + dt.timedelta(days=28))}]
    elif blina == "study":
        # The conditioning regimen's own blinatumomab, from the enrollment day on: not "prior".
        start = enrollment + dt.timedelta(days=rng.choice((0, 0, 1, 3, 7)))
        rec["blinatumomab"] = [{"date": _iso(start), "end": _iso(start + dt.timedelta(days=4))}]
    elif blina == "undated":
        rec["blinatumomab"] = [{"date": None}]
    else:
        rec["blinatumomab"] = []


def _comorbidities(rng: random.Random, rec: Json, screening: dt.date) -> None:
    rec["active_autoimmune_disease"] = _flag(rng, 0.015)
    rec["uncontrolled_arrhythmia"] = _flag(rng, 0.01)
    rec["uncontrolled_hypertension"] = _flag(rng, 0.015)
    rec["congestive_heart_failure"] = _flag(rng, 0.008)
    rec["nyha_class"] = _pick(rng, [(1, 0.74), (2, 0.24), (3, 0.015), (4, 0.005)])
    mi = _pick(rng, [("none", 0.97), ("old", 0.02), ("recent", 0.007), ("limit", 0.003)])
    if mi == "old":
        rec["myocardial_infarction"] = [_iso(_shift_months(screening, -rng.randint(7, 60)))]
    elif mi == "recent":
        rec["myocardial_infarction"] = [_iso(screening - dt.timedelta(days=rng.randint(10, 170)))]
    elif mi == "limit":
        # Exactly 6 calendar months before screening: inside the window.
        rec["myocardial_infarction"] = [_iso(_shift_months(screening, -6))]
    else:
        rec["myocardial_infarction"] = []
    rec["copd_lung_dysfunction"] = _flag(rng, 0.01)
    rec["serious_comorbidity"] = _flag(rng, 0.02)
    rec["thrombosis_or_hypercoagulable"] = _flag(rng, 0.012)
    rec["hiv_infection"] = _flag(rng, 0.003)
    rec["hbsag"] = _pick(rng, [("negative", 0.92), ("positive", 0.08)])
    if rec["hbsag"] == "positive":
        rec["hbv_controlled"] = _flag(rng, 0.88)
    rec["anti_hcv"] = _pick(rng, [("negative", 0.98), ("positive", 0.02)])
    if rec["anti_hcv"] == "positive":
        rec["hcv_controlled"] = _flag(rng, 0.8)
    rec["mab_severe_allergy"] = _flag(rng, 0.008)


# Every item of the dictionary and both attestations: any of them may be missing.
_DROPPABLE = (
    "screening", "enrollment", "birth_date", "sex", "weight", "diagnosis", "cd19_positive",
    "hematologic_cr", "extramedullary_disease", "mrd_flow", "cns_leukemia", "ecog",
    "life_expectancy", "childbearing_potential", "contraception_agreed", "pregnancy_test",
    "pregnant", "lactating", "creatinine", "ast", "alt", "bilirubin", "lvef", "hsct",
    "chemotherapy", "blinatumomab", "active_autoimmune_disease", "uncontrolled_arrhythmia",
    "uncontrolled_hypertension", "congestive_heart_failure", "nyha_class",
    "myocardial_infarction", "copd_lung_dysfunction", "serious_comorbidity",
    "thrombosis_or_hypercoagulable", "hiv_infection", "hbsag", "hbv_controlled", "anti_hcv",
    "hcv_controlled", "mab_severe_allergy",
    "attestations.informed_consent", "attestations.unable_to_comply",
)  # fmt: skip


def _drop_items(rng: random.Random, rec: Json, most: int) -> None:
    """Make one to `most` items missing (fewer more often): the key removed, or JSON null."""
    count = min(most, 1 + int(rng.expovariate(1.5)))
    for name in rng.sample(_DROPPABLE, count):
        holder, key = rec, name
        if name.startswith("attestations."):
            holder, key = rec["attestations"], name.partition(".")[2]
        if _chance(rng, 0.5):
            holder.pop(key, None)
        else:
            holder[key] = None


def main(argv: Sequence[str] | None = None) -> int:
    """Write generated records as JSONL to standard output."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1000, help="number of records (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    for rec in generate_records(args.n, args.seed):
        sys.stdout.write(json.dumps(rec) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
