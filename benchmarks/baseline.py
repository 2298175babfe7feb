"""A hand-written screening function for NCT06125106: the yardstick protocode is measured by.

`screen_baseline(record)` implements the 21 criteria of ``protocol/NCT06125106/v2.yaml``
(the version in force; its criteria are those of ``v1.yaml``) directly in Python, the way an
engineer would write them for one trial when speed matters: no interpreter, no closures,
cheap and frequently decisive checks first, an early return as soon as one criterion
excludes the patient. It reads the same parsed `Record` the engine reads (dates are
`datetime.date`, magnitudes `int`/`Fraction` in the item's unit, series sorted by date with
undated observations last) and has the same semantics:

- three-valued logic: a missing item (or an empty window) makes a criterion unknown, never
  false; ``and``/``or`` are Kleene (``false and unknown`` is false, ``true or unknown`` true);
- an event history given as ``[]`` is known-empty: "any ... within/before <anchor>" is false
  even when the anchor date is missing; an absent history is unknown;
- the status is *ineligible* when an inclusion is not met or an exclusion is met,
  *indeterminate* when nothing excludes but some criterion is unknown, else *eligible*;
- numbers are exact: the Cockcroft-Gault comparison is cross-multiplied over the `Fraction`
  values, so a clearance of exactly 60 mL/min is met.

It is written independently of the engine (own window arithmetic, own calendar helpers), so
agreement between the two on many records is evidence that both are right.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from protocode.records import Observation, Occurrence, Record

__all__ = ["screen_baseline"]

ELIGIBLE = "eligible"
INELIGIBLE = "ineligible"
INDETERMINATE = "indeterminate"

_LAB_WINDOW = dt.timedelta(days=7)  # "within 7 days before enrollment"
_CHEMO_WINDOW = dt.timedelta(days=14)  # "within 2 weeks before enrollment"

# Exclusions that are one boolean fact each: E6, E8, E9, E10, E13.
_BOOLEAN_EXCLUSIONS = (
    "active_autoimmune_disease",
    "copd_lung_dysfunction",
    "serious_comorbidity",
    "thrombosis_or_hypercoagulable",
    "mab_severe_allergy",
)
# E7's boolean facts (the NYHA class and the infarction window are handled apart).
_CARDIAC = ("uncontrolled_arrhythmia", "uncontrolled_hypertension", "congestive_heart_failure")

# Protocol default upper limits of normal, in the items' units (U/L, U/L, mg/dL).
_AST_ULN = 40
_ALT_ULN = 40
_BILIRUBIN_ULN_TENTHS = 12  # 1.2 mg/dL, kept integral: compare 10 * value with 12

# Cockcroft-Gault, cross-multiplied so no division is needed:
#   (140 - age) * weight * f / (72 * scr) >= 60, f = 17/20 for women, else 1
#   <=> (140 - age) * weight * k >= 60 * 72 * 20 * scr, k = 17 for women, else 20
_CG_K: dict[Any, int] = {"female": 17, "male": 20}
_CG_RHS = 60 * 72 * 20


def _months_back(d: dt.date, months: int) -> dt.date:
    """`d` moved back by calendar months; the day is clamped to the end of a shorter month."""
    index = d.year * 12 + d.month - 1 - months
    year, month0 = divmod(index, 12)
    # The last day of the target month: the day before the first of the next one.
    next_first = dt.date(year + (month0 + 1) // 12, (month0 + 1) % 12 + 1, 1)
    last = (next_first - dt.timedelta(days=1)).day
    return dt.date(year, month0 + 1, min(d.day, last))


def _latest(series: Sequence[Observation] | None) -> Observation | None:
    """The most recent observation; None if an undated value or a same-day tie leaves it open."""
    if not series or series[-1].date is None:
        return None
    return None if _tied(series, len(series) - 1) else series[-1]


def _tied(series: Sequence[Observation], i: int) -> bool:
    """Another, different value on the same day as series[i] (same-day values are adjacent)."""
    j = i - 1
    while j >= 0 and series[j].date == series[i].date:
        if series[j] != series[i]:
            return True
        j -= 1
    return False


def _latest_in(
    series: Sequence[Observation] | None, lo: dt.date, hi: dt.date
) -> Observation | None:
    """The most recent observation dated within [lo, hi]; None if absent or not determined."""
    if not series or series[-1].date is None:
        return None
    # Sorted by date: walk back from the newest value.
    for i in range(len(series) - 1, -1, -1):
        obs = series[i]
        d = obs.date
        assert d is not None
        if d > hi:
            continue
        if d < lo:
            return None
        return None if _tied(series, i) else obs
    return None


def _any_before(occurrences: Sequence[Occurrence], day: dt.date) -> bool | None:
    """Whether some occurrence started strictly before `day` (unknown if undated ones remain)."""
    undated = False
    for occ in occurrences:
        if occ.date is None:
            undated = True
        elif occ.date < day:
            return True
    return None if undated else False


def _any_between(occurrences: Sequence[Occurrence], lo: dt.date, hi: dt.date) -> bool | None:
    """Whether some occurrence overlaps [lo, hi] (unknown if undated ones remain)."""
    undated = False
    for occ in occurrences:
        start = occ.date
        if start is None:
            undated = True
        elif start <= hi and (occ.end or start) >= lo:
            return True
    return None if undated else False


def screen_baseline(record: Record) -> str:
    """The screening status of `record`: "eligible", "ineligible" or "indeterminate"."""
    # The record's values are typed by the data dictionary, not by Python: read them as Any.
    values: dict[str, Any] = record.values
    series = record.series
    events = record.events
    attestations = record.attestations
    unknown = False

    # ---- single boolean exclusions: E6, E8, E9, E10, E13
    for name in _BOOLEAN_EXCLUSIONS:
        flag = values.get(name)
        if flag:
            return INELIGIBLE
        if flag is None:
            unknown = True

    # ---- E1: not hematologic_cr or extramedullary_disease
    cr = values.get("hematologic_cr")
    emd = values.get("extramedullary_disease")
    if cr is False or emd is True:
        return INELIGIBLE
    if cr is None or emd is None:
        unknown = True

    # ---- I1: B-ALL, CD19+, in CR, latest MRD by flow positive
    diagnosis = values.get("diagnosis")
    cd19 = values.get("cd19_positive")
    if (diagnosis is not None and diagnosis != "B-ALL") or cd19 is False:
        return INELIGIBLE
    mrd = _latest(series.get("mrd_flow"))
    if mrd is not None and mrd.value != "positive":
        return INELIGIBLE
    if diagnosis is None or cd19 is None or mrd is None:
        unknown = True  # (cr is None was noted above)

    # ---- I3: ECOG 0-2
    ecog = values.get("ecog")
    if ecog is None:
        unknown = True
    elif not 0 <= ecog <= 2:
        return INELIGIBLE

    # ---- I6: life expectancy > 8 weeks (stored in weeks)
    life = values.get("life_expectancy")
    if life is None:
        unknown = True
    elif life <= 8:
        return INELIGIBLE

    # ---- I7 / E14: attestations
    consent = attestations.get("informed_consent")
    if consent is False:
        return INELIGIBLE
    unable = attestations.get("unable_to_comply")
    if unable is True:
        return INELIGIBLE
    if consent is None or unable is None:
        unknown = True

    # ---- E11: HIV, or uncontrolled HBV or HCV
    if values.get("hiv_infection") is True:
        return INELIGIBLE
    e11_unknown = values.get("hiv_infection") is None
    for antigen, controlled in (("hbsag", "hbv_controlled"), ("anti_hcv", "hcv_controlled")):
        marker = values.get(antigen)
        if marker == "negative":
            continue
        ctrl = values.get(controlled)
        if ctrl is True:
            continue
        if marker is None or ctrl is None:
            e11_unknown = True
        else:  # positive and not controlled
            return INELIGIBLE
    if e11_unknown:
        unknown = True

    # ---- E7: active cardiovascular disease, or infarction within 6 months before screening
    e7_unknown = False
    for name in _CARDIAC:
        flag = values.get(name)
        if flag:
            return INELIGIBLE
        if flag is None:
            e7_unknown = True
    nyha = values.get("nyha_class")
    if nyha is None:
        e7_unknown = True
    elif nyha >= 3:
        return INELIGIBLE
    infarctions = events.get("myocardial_infarction")
    screening = values.get("screening")
    if infarctions is None:
        e7_unknown = True
    elif not infarctions:
        pass  # known: no infarction ever, so none in the window, whatever the screening date
    elif screening is None:
        e7_unknown = True
    else:
        recent = _any_between(infarctions, _months_back(screening, 6), screening)
        if recent:
            return INELIGIBLE
        if recent is None:
            e7_unknown = True
    if e7_unknown:
        unknown = True

    # ---- E12: pregnant or lactating women
    sex = values.get("sex")
    if sex != "male":
        pregnant = values.get("pregnant")
        lactating = values.get("lactating")
        if pregnant is True or lactating is True:
            if sex == "female":
                return INELIGIBLE
            unknown = True  # sex unknown
        elif pregnant is None or lactating is None:
            unknown = True

    # ---- E5: any history of CNS leukemia
    cns = events.get("cns_leukemia")
    if cns:
        return INELIGIBLE
    if cns is None:
        unknown = True

    # ---- everything below is dated relative to enrollment
    enrollment = values.get("enrollment")
    if enrollment is None:
        # Age, the lab window, every treatment window: all unknown. Only facts read above,
        # and the values below that can still exclude on their own, are decisive.
        return _without_enrollment(values, sex)

    # ---- I2: age 18-70 on the day of enrollment (completed years)
    birth = values.get("birth_date")
    age: int | None = None
    if birth is None:
        unknown = True
    else:
        age = enrollment.year - birth.year
        if (enrollment.month, enrollment.day) < (birth.month, birth.day):
            age -= 1
        if not 18 <= age <= 70:
            return INELIGIBLE

    # ---- E3: chemotherapy within 2 weeks before enrollment
    chemo = events.get("chemotherapy")
    if chemo is None:
        unknown = True
    else:
        recent = _any_between(chemo, enrollment - _CHEMO_WINDOW, enrollment)
        if recent:
            return INELIGIBLE
        if recent is None:
            unknown = True

    # ---- E2 / E4: earlier transplant or blinatumomab
    for name in ("hsct", "blinatumomab"):
        history = events.get(name)
        if history is None:
            unknown = True
            continue
        before = _any_before(history, enrollment)
        if before:
            return INELIGIBLE
        if before is None:
            unknown = True

    # ---- I5: organ function within the week before enrollment
    lo = enrollment - _LAB_WINDOW
    # Observation.value is typed `object`; the dictionary makes these int or Fraction.
    obs: Any = _latest_in(series.get("ast"), lo, enrollment)
    if obs is None:
        unknown = True
    elif obs.value > 3 * (_AST_ULN if obs.high is None else obs.high):
        return INELIGIBLE
    obs = _latest_in(series.get("alt"), lo, enrollment)
    if obs is None:
        unknown = True
    elif obs.value > 3 * (_ALT_ULN if obs.high is None else obs.high):
        return INELIGIBLE
    obs = _latest_in(series.get("bilirubin"), lo, enrollment)
    if obs is None:
        unknown = True
    elif obs.high is None:
        if 10 * obs.value > 2 * _BILIRUBIN_ULN_TENTHS:
            return INELIGIBLE
    elif obs.value > 2 * obs.high:
        return INELIGIBLE
    obs = _latest_in(series.get("lvef"), lo, enrollment)
    if obs is None:
        unknown = True
    elif obs.value < 50:
        return INELIGIBLE
    scr: Any = _latest_in(series.get("creatinine"), lo, enrollment)
    weight = values.get("weight")
    k = _CG_K.get(sex)
    if scr is None or weight is None or age is None or k is None or scr.value == 0:
        unknown = True
    elif (140 - age) * weight * k < _CG_RHS * scr.value:
        return INELIGIBLE

    # ---- I4: women of childbearing potential: negative pregnancy test and contraception
    if sex != "male":
        potential = values.get("childbearing_potential")
        if potential is not False:
            test = _latest_in(series.get("pregnancy_test"), lo, enrollment)
            agreed = values.get("contraception_agreed")
            if (test is not None and test.value != "negative") or agreed is False:
                met: bool | None = False
            elif test is None or agreed is None:
                met = None
            else:
                met = True
            if sex == "female" and potential is True:
                if met is False:
                    return INELIGIBLE
                if met is None:
                    unknown = True
            elif met is not True:
                # Not known whether the rule applies, and it would not be met: unknown.
                unknown = True

    return INDETERMINATE if unknown else ELIGIBLE


def _without_enrollment(values: Mapping[str, Any], sex: object) -> str:
    """The rest of the screening when the enrollment date is missing.

    Age is unknown then (so I2 is, and the status is at best indeterminate), and so is every
    7-day lab value and every window over a non-empty treatment history (a known-empty one is
    false, which excludes nobody). The earlier checks found nothing excluding. I4 can still
    fail without the window (a woman of childbearing potential who refuses contraception);
    nothing else can.
    """
    if (
        sex == "female"
        and values.get("childbearing_potential") is True
        and values.get("contraception_agreed") is False
    ):
        return INELIGIBLE
    return INDETERMINATE
