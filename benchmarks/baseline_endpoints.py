"""A hand-written derivation of NCT06125106's seven endpoints: the yardstick for `derive`.

`derive_baseline(record)` computes the endpoints of ``protocol/NCT06125106/v3.yaml`` (PFS,
OS, CIR, NRM, acute and chronic GVHD, MRD) for one patient, directly from the raw record
dict that `cohort.generate_cohort` produces (dates as ISO text, values as JSON numbers and
strings), the way an engineer would write it by hand for this one trial: no protocode, the
relapse rule, the MAGIC and NIH grading tables and the endpoint rules written out as plain
Python. It returns one `(endpoint, status, date, time)` tuple per endpoint, in the
protocol's order, with protocode's semantics:

- day 0 is the transplant; a derived event (relapse, acute GVHD grade II-IV, chronic GVHD)
  occurs on the first date on or after day 0 on which its definition holds;
- relapse: peripheral blasts "present", or marrow blasts >= 5 %, or immature monocytes
  >= 5 % in the marrow, or an extramedullary relapse;
- acute GVHD grade II-IV: an assessment whose MAGIC grade (`magic_grade`) is II or worse;
  chronic GVHD: an assessment whose NIH 2014 global severity (`nih_severity`) is mild or
  worse; an assessment is the organ stages or scores recorded on one date;
- time to event: the first event or competing event decides; on one day death comes last
  (a relapse and a death on one day are a relapse: for NRM a competing relapse), otherwise
  the endpoint's event comes before its competing event; up to the horizon inclusive
  ("1 year": the same day a calendar year later, 29 February -> 28 February; "100 days");
  otherwise censored at the horizon, or at the last follow-up when that comes first;
- MRD at 1 year: relapse or death on or before the window closes (horizon + 30 days) makes a
  non-responder on that date; otherwise the latest assessment within 30 days of the horizon
  decides (negative: responder), and none leaves the patient not evaluable (at the horizon).

ISO dates (``YYYY-MM-DD``) sort as text, so the derived events are found by comparing the
date strings, and only the few dates that are reported or computed with are converted.

What the baseline does not do, because the generator's records never need it (protocode
does all of it, which is part of what it costs):

- no validation of the record: unknown or duplicate keys, types, codes, ranges, units,
  date forms (date-times, out-of-range years) are not checked; events must be bare date
  strings (not ``{"date", "end"}`` objects), numbers plain numbers in the item's unit
  (compared as binary floats: exact for the generator's one-decimal values around 5 %);
- no timeline consistency errors: an event or death before day 0, a last follow-up before
  day 0, an event after death or after the last follow-up, more than one death (the first
  listed one is used) all go unnoticed;
- no unknowns: every item the endpoints read must be present (a missing one is a
  `KeyError`, not a per-patient error), nothing may be undated, the last follow-up must be
  known, every organ of an assessment must be staged (an unstaged organ counts as 0 here,
  where protocode makes the grade unknown when it matters) and one organ staged twice on one
  date keeps the last value (protocode: unknown);
- no descriptions, sources or names in the rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ENDPOINTS", "Row", "derive_baseline", "magic_grade", "nih_severity"]

Row = tuple[str, str, dt.date, int]
"""(endpoint, status, date, days from day 0)."""

ENDPOINTS = ("PFS", "OS", "CIR", "NRM", "aGVHD", "cGVHD", "MRD")

AGVHD_ITEMS = (
    "agvhd_skin_stage",
    "agvhd_liver_stage",
    "agvhd_upper_gi_stage",
    "agvhd_lower_gi_stage",
)
CGVHD_LUNG = "cgvhd_lungs_score"
CGVHD_OTHERS = (
    "cgvhd_skin_score",
    "cgvhd_mouth_score",
    "cgvhd_eyes_score",
    "cgvhd_gi_score",
    "cgvhd_liver_score",
    "cgvhd_joints_score",
    "cgvhd_genital_score",
)

GRADE_II = 2  # MAGIC grades 0, I, II, III, IV as 0-4
MILD = 1  # NIH global severity none, mild, moderate, severe as 0-3

_date = dt.date.fromisoformat
_DAY_100 = dt.timedelta(days=100)
_MRD_WINDOW = dt.timedelta(days=30)


def magic_grade(skin: int, liver: int, upper_gi: int, lower_gi: int) -> int:
    """The MAGIC acute GVHD overall grade (0-4) of one assessment's organ stages.

    Harris et al. 2016: IV with stage 4 skin, liver or lower GI; III with stage 2-3 liver or
    lower GI; II with stage 3 skin or stage 1 liver, upper or lower GI; I with stage 1-2 skin
    alone; 0 when no organ is involved.
    """
    if skin == 4 or liver == 4 or lower_gi == 4:
        return 4
    if 2 <= liver <= 3 or 2 <= lower_gi <= 3:
        return 3
    if skin == 3 or liver == 1 or upper_gi == 1 or lower_gi == 1:
        return 2
    return 1 if skin >= 1 else 0


def nih_severity(lung: int, others: Sequence[int]) -> int:
    """The NIH 2014 chronic GVHD global severity (0 none, 1 mild, 2 moderate, 3 severe).

    Jagasia et al. 2015: severe with a score of 3 in any organ or a lung score of 2 or more;
    moderate with a score of 2 in another organ, 3 or more organs involved, or a lung score
    of 1; mild with 1 or 2 organs other than the lung involved at score 1.
    """
    worst = max(others)
    if lung >= 2 or worst == 3:
        return 3
    involved = sum(1 for score in others if score >= 1)
    if lung == 1 or worst == 2 or involved >= 3:
        return 2
    return 1 if involved else 0


def _one_year_after(day: dt.date) -> dt.date:
    """The same day a calendar year later; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def _first_relapse(record: Mapping[str, Any], origin: str) -> str | None:
    """The first date (ISO text) on or after day 0 with evidence of relapse, or None."""
    first: str | None = None
    for obs in record["peripheral_blasts"]:
        day = obs["date"]
        if day >= origin and obs["value"] == "present" and (first is None or day < first):
            first = day
    for item in ("marrow_blasts", "marrow_immature_monocytes"):
        for obs in record[item]:
            day = obs["date"]
            if day >= origin and obs["value"] >= 5 and (first is None or day < first):
                first = day
    for day in record["extramedullary_relapse"]:
        if day >= origin and (first is None or day < first):
            first = day
    return first


def _assessments(
    record: Mapping[str, Any], items: Sequence[str], origin: str
) -> dict[str, list[int]]:
    """Organ stages by assessment date (ISO text) on or after day 0, in the order of `items`."""
    by_date: dict[str, list[int]] = {}
    width = len(items)
    for k, item in enumerate(items):
        for obs in record[item]:
            day = obs["date"]
            if day >= origin:
                stages = by_date.get(day)
                if stages is None:
                    stages = by_date[day] = [0] * width
                stages[k] = obs["value"]
    return by_date


def _first_agvhd(record: Mapping[str, Any], origin: str) -> str | None:
    """The first assessment date with MAGIC grade II-IV acute GVHD, or None."""
    by_date = _assessments(record, AGVHD_ITEMS, origin)
    for day in sorted(by_date):
        if magic_grade(*by_date[day]) >= GRADE_II:
            return day
    return None


def _first_cgvhd(record: Mapping[str, Any], origin: str) -> str | None:
    """The first assessment date with chronic GVHD of NIH global severity mild or worse."""
    by_date = _assessments(record, (CGVHD_LUNG, *CGVHD_OTHERS), origin)
    for day in sorted(by_date):
        scores = by_date[day]
        if nih_severity(scores[0], scores[1:]) >= MILD:
            return day
    return None


def _time_to_event(
    endpoint: str,
    origin: dt.date,
    horizon: dt.date,
    censor: dt.date,
    *,
    event: dt.date | None,
    competing: dt.date | None,
    event_wins_ties: bool = True,
) -> Row:
    """The row of a time-to-event endpoint from the first event and first competing event.

    On a day with both, the event decides, unless `event_wins_ties` is false (the event is
    death, which comes last on its day).
    """
    if event is not None and (
        competing is None or event < competing or (event == competing and event_wins_ties)
    ):
        if event <= horizon:
            return endpoint, "event", event, (event - origin).days
    elif competing is not None and competing <= horizon:
        return endpoint, "competing", competing, (competing - origin).days
    end = horizon if censor >= horizon else censor
    return endpoint, "censored", end, (end - origin).days


def _mrd(
    record: Mapping[str, Any], origin: dt.date, horizon: dt.date, failure: dt.date | None
) -> Row:
    """MRD negativity at 1 year: responder, non_responder or not_evaluable."""
    start, end = horizon - _MRD_WINDOW, horizon + _MRD_WINDOW
    if failure is not None and failure <= end:
        return "MRD", "non_responder", failure, (failure - origin).days
    last: dt.date | None = None
    values: set[str] = set()
    for obs in record["mrd_flow"]:
        day = _date(obs["date"])
        if start <= day <= end:
            if last is None or day > last:
                last, values = day, {obs["value"]}
            elif day == last:
                values.add(obs["value"])
    if last is None:
        return "MRD", "not_evaluable", horizon, (horizon - origin).days
    if values == {"negative"}:
        status = "responder"
    elif "negative" in values:
        status = "not_evaluable"  # same-day assessments disagree
    else:
        status = "non_responder"
    return "MRD", status, last, (last - origin).days


def derive_baseline(record: Mapping[str, Any]) -> list[Row]:
    """The seven endpoint rows of one raw record, in the protocol's order (see `ENDPOINTS`)."""
    origin_text: str = record["transplant"]
    origin = _date(origin_text)
    censor = _date(record["last_follow_up"])
    deaths = record["death"]
    death = _date(deaths[0]) if deaths else None
    found = _first_relapse(record, origin_text)
    relapse = None if found is None else _date(found)
    found = _first_agvhd(record, origin_text)
    agvhd = None if found is None else _date(found)
    found = _first_cgvhd(record, origin_text)
    cgvhd = None if found is None else _date(found)

    year = _one_year_after(origin)
    day_100 = origin + _DAY_100
    # Relapse or death, whichever comes first: PFS's event, the GVHD endpoints' competitor (on
    # one day the relapse; either way the same date). A GVHD event on that day still counts.
    failure = death if relapse is None or (death is not None and death < relapse) else relapse
    return [
        _time_to_event("PFS", origin, year, censor, event=failure, competing=None),
        _time_to_event("OS", origin, year, censor, event=death, competing=None),
        _time_to_event("CIR", origin, year, censor, event=relapse, competing=death),
        # A death on the day of a relapse is no non-relapse death: the relapse competes.
        _time_to_event(
            "NRM", origin, year, censor, event=death, competing=relapse, event_wins_ties=False
        ),
        _time_to_event("aGVHD", origin, day_100, censor, event=agvhd, competing=failure),
        _time_to_event("cGVHD", origin, year, censor, event=cgvhd, competing=failure),
        _mrd(record, origin, year, failure),
    ]
