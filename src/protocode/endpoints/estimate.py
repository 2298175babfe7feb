"""Estimates of endpoints over a cohort: survival and cumulative-incidence curves, proportions.

The estimators are lifelines' (and scipy's), not written here: survival estimators are easy to
get subtly wrong (ties, censoring on an event day, variance formulas), and a reviewer can
check a well-known library against its literature more easily than new code.

- No competing events: the Kaplan-Meier estimator (`lifelines.KaplanMeierFitter`) of the
  event-free probability, with its exponential Greenwood (log(-log)) 95 % interval.
- Competing events: the Aalen-Johansen estimator (`lifelines.AalenJohansenFitter`) of the
  cumulative incidence of the event. One minus Kaplan-Meier with competing events censored
  would overestimate it: it estimates the risk in a world where the competing events were
  prevented. The interval is lifelines' delta-method log(-log) interval.
- Responses: a proportion with its exact Clopper-Pearson interval (`scipy.stats.binomtest`).

Times are whole days from the origin (the rows of `protocode.endpoints.derive`). The value
at the horizon includes the events on the horizon day itself. On one day, events come before
the censorings (a patient censored on day t was at risk on day t), the usual convention.

Ties: lifelines' Aalen-Johansen fitter moves an event and a competing event on the same day
apart by a random jitter. That makes results random, and wrong when a patient is censored on
that day: an event jittered past the censoring no longer counts the censored patient as at
risk. Here the tie is broken deterministically instead, before lifelines sees the data: on
day t events are placed at t, competing events a quarter day later and censorings half a day
later (all shifted by one day, because lifelines drops the events of time 0 from the
cumulative incidence). The estimate does not depend on the order of events within one
instant, and placing the events of interest first reproduces lifelines' own variance formula
for tied times, so nothing is jittered and nothing changes but the tie handling.

Confidence intervals that do not exist: at an estimate of exactly 0 or 1 the log(-log)
interval is undefined; it collapses to the estimate (lifelines' own choice for Kaplan-Meier,
applied to the cumulative incidence too). Once everyone still at risk has had an event or a
competing event, lifelines' Aalen-Johansen variance is undefined (0 times infinity); the
interval is then reported as [0, 1], i.e. no information. Either case is said in `note`, so
no output is NaN and the JSON stays valid.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import matplotlib
import numpy as np
from lifelines import AalenJohansenFitter, KaplanMeierFitter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import binomtest

from protocode.endpoints.definitions import endpoints
from protocode.endpoints.derive import EndpointRow
from protocode.language.check import AnyEndpoint, CheckedProportion
from protocode.screening import Protocol

Method = Literal["kaplan-meier", "aalen-johansen", "proportion"]

_QUANTITY: dict[Method, str] = {
    "kaplan-meier": "event-free probability",
    "aalen-johansen": "cumulative incidence",
    "proportion": "proportion",
}
# Fractions of a day that order one day's records for the Aalen-Johansen fit (see the module
# docstring); the extra day keeps events of day 0 away from lifelines' time 0.
_AJ_OFFSET = {"event": 1.0, "competing": 1.25, "censored": 1.5}
# lifelines' coding of causes: 0 is censored, the event of interest is 1.
_AJ_CAUSE = {"event": 1, "competing": 2, "censored": 0}
_FORMATS = ("png", "svg", "pdf")
# Estimates closer than this to 0 or 1 are the boundary (sums of fractions are not exact).
_EDGE = 1e-12


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One step of an estimated curve: from `time` (days) on, the estimate and its interval."""

    time: float
    value: float
    lower: float
    upper: float

    def to_json(self) -> dict[str, float]:
        """The point as JSON-ready values."""
        return {"time": self.time, "value": self.value, "lower": self.lower, "upper": self.upper}


@dataclass(frozen=True, slots=True)
class Estimate:
    """One endpoint's estimate over a cohort: the value at the horizon and its interval.

    `quantity` says in words what `value` is. Counts are by the horizon: `events` and
    `competing` are those on or before the horizon day, `censored` the other patients (their
    follow-up ended, or the horizon came, without an event). `at_risk` is the number of
    patients still followed on the horizon day (None for a proportion). `curve` holds the steps
    of the estimate from day 0 to the horizon (empty for a proportion). `note` explains an
    interval that had to be replaced (see the module docstring); it is empty otherwise.
    """

    endpoint: str
    name: str
    method: Method
    quantity: str
    horizon_days: int | None
    value: float
    lower: float
    upper: float
    confidence: float
    patients: int
    events: int
    competing: int
    censored: int
    at_risk: int | None
    curve: tuple[CurvePoint, ...]
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """The estimate as JSON-ready values (the curve as a list of objects)."""
        return {
            "endpoint": self.endpoint,
            "name": self.name,
            "method": self.method,
            "quantity": self.quantity,
            "horizon_days": self.horizon_days,
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "confidence": self.confidence,
            "patients": self.patients,
            "events": self.events,
            "competing": self.competing,
            "censored": self.censored,
            "at_risk": self.at_risk,
            "curve": [p.to_json() for p in self.curve],
            "note": self.note,
        }


def horizon_days(endpoint: AnyEndpoint, rows: Sequence[EndpointRow]) -> int:
    """The horizon of an endpoint in days for a cohort: the longest over the patients' origins.

    A horizon in months ("1 year") is a different number of days for different origins. For a
    time-to-event endpoint `derive` already censored every patient at their own horizon date,
    so evaluating the estimate at the longest one counts every event that derive kept, and
    nothing beyond.
    """
    if not rows:
        raise ValueError(f"{endpoint.id}: no rows, so no horizon in days")
    others = sorted({r.endpoint for r in rows} - {endpoint.id})
    if others:
        raise ValueError(f"rows of {', '.join(others)} given for endpoint {endpoint.id}")
    return max((endpoint.horizon.date(r.origin) - r.origin).days for r in rows)


def estimate_time_to_event(
    rows: Sequence[EndpointRow], horizon_days: int, *, competing: bool, alpha: float = 0.05
) -> Estimate:
    """Estimate one time-to-event endpoint at `horizon_days` days from the origin.

    Without competing events: the Kaplan-Meier event-free probability. With `competing`:
    the Aalen-Johansen cumulative incidence of the event, competing events being the other
    cause. All rows must belong to one endpoint; events on the horizon day count. A horizon
    past the last follow-up gives the last value of the curve. Raises `ValueError` for no
    rows, rows of several endpoints, competing events without `competing`, a negative time or
    horizon, or an `alpha` outside (0, 1).
    """
    _check_alpha(alpha)
    if not rows:
        raise ValueError("no rows to estimate from")
    ids = sorted({r.endpoint for r in rows})
    if len(ids) > 1:
        raise ValueError(f"rows of several endpoints ({', '.join(ids)}); estimate one at a time")
    endpoint = ids[0]
    if horizon_days < 0:
        raise ValueError(f"{endpoint}: the horizon is {horizon_days} days, before the origin")
    other = sorted({r.status for r in rows} - set(_AJ_CAUSE))
    if other:
        raise ValueError(
            f"{endpoint}: rows with status {', '.join(other)} are not time-to-event rows "
            "(a proportion is estimated with estimate_proportion)"
        )
    negative = [r for r in rows if r.time < 0]
    if negative:
        raise ValueError(f"{endpoint}: patient {negative[0].id} has a negative time")
    if not competing and any(r.status == "competing" for r in rows):
        raise ValueError(
            f"{endpoint}: rows have competing events; estimate with competing=True "
            "(censoring them would overestimate the risk)"
        )
    # lifelines groups rows by time, so their order should not matter; sorting makes the
    # estimate a function of the cohort by construction, not by lifelines' internals.
    ordered = sorted(rows, key=lambda r: (r.time, _AJ_CAUSE[r.status]))
    method: Method = "aalen-johansen" if competing else "kaplan-meier"
    table = _aalen_johansen(ordered, alpha) if competing else _kaplan_meier(ordered, alpha)
    curve, note = _curve(table, horizon_days)
    last = curve[-1]
    events = sum(r.status == "event" and r.time <= horizon_days for r in rows)
    competed = sum(r.status == "competing" and r.time <= horizon_days for r in rows)
    return Estimate(
        endpoint=endpoint,
        name=rows[0].name,
        method=method,
        quantity=_QUANTITY[method],
        horizon_days=horizon_days,
        value=last.value,
        lower=last.lower,
        upper=last.upper,
        confidence=1 - alpha,
        patients=len(rows),
        events=events,
        competing=competed,
        censored=len(rows) - events - competed,
        at_risk=sum(r.time >= horizon_days for r in rows),
        curve=curve,
        note=note,
    )


def estimate_proportion(
    endpoint: str,
    name: str,
    responders: int,
    evaluable: int,
    *,
    alpha: float = 0.05,
    horizon_days: int | None = None,
) -> Estimate:
    """The proportion `responders / evaluable` with its exact Clopper-Pearson interval.

    Raises `ValueError` when no patient is evaluable, or the counts are impossible.
    """
    _check_alpha(alpha)
    if evaluable <= 0:
        raise ValueError(
            f"{endpoint}: no evaluable patients, so the proportion is undefined"
            if evaluable == 0
            else f"{endpoint}: {evaluable} evaluable patients"
        )
    if not 0 <= responders <= evaluable:
        raise ValueError(f"{endpoint}: {responders} responders among {evaluable} evaluable")
    ci = binomtest(responders, evaluable).proportion_ci(confidence_level=1 - alpha, method="exact")
    return Estimate(
        endpoint=endpoint,
        name=name,
        method="proportion",
        quantity=_QUANTITY["proportion"],
        horizon_days=horizon_days,
        value=responders / evaluable,
        lower=float(ci.low),
        upper=float(ci.high),
        confidence=1 - alpha,
        patients=evaluable,
        events=responders,
        competing=0,
        censored=0,
        at_risk=None,
        curve=(),
    )


def estimate(
    protocol: Protocol, rows: Sequence[EndpointRow], *, alpha: float = 0.05
) -> list[Estimate]:
    """Estimate every endpoint of the protocol that has rows, in the protocol's order.

    Time-to-event endpoints: Kaplan-Meier without competing events, Aalen-Johansen with
    them, at the horizon in days (`horizon_days`). Proportions: responders among the
    evaluable patients (responders and non-responders); patients not evaluable are left out
    of the denominator and counted in `censored`.
    """
    by_endpoint: dict[str, list[EndpointRow]] = {}
    for row in rows:
        by_endpoint.setdefault(row.endpoint, []).append(row)
    out: list[Estimate] = []
    for e in endpoints(protocol):
        mine = by_endpoint.get(e.id)
        if not mine:
            continue
        if isinstance(e, CheckedProportion):
            responders = sum(r.status == "responder" for r in mine)
            evaluable = responders + sum(r.status == "non_responder" for r in mine)
            if evaluable == 0:
                continue
            days = horizon_days(e, mine)
            found = estimate_proportion(
                e.id, e.endpoint.name, responders, evaluable, alpha=alpha, horizon_days=days
            )
            out.append(
                dataclasses.replace(found, patients=len(mine), censored=len(mine) - evaluable)
            )
            continue
        days = horizon_days(e, mine)
        out.append(estimate_time_to_event(mine, days, competing=bool(e.competing), alpha=alpha))
    return out


def plot(
    estimates: Sequence[Estimate], directory: Path, formats: Sequence[str] = ("png", "svg")
) -> list[Path]:
    """Draw each time-to-event estimate into `directory`, one file per format; the paths.

    Each figure shows the estimated curve as steps with its confidence band, the horizon as
    a dashed line and the value there. Files are named after the endpoint id (characters
    unsafe in file names become '_'). Proportions have no curve and get no figure. The
    directory is created when needed; an unknown format, or two estimates that would write
    the same file, raise `ValueError` before anything is written.
    """
    unknown = [f for f in formats if f not in _FORMATS]
    if unknown:
        raise ValueError(f"unknown plot format '{unknown[0]}'; choose among {', '.join(_FORMATS)}")
    drawn = [e for e in estimates if e.method != "proportion"]
    stems: dict[str, str] = {}
    for e in drawn:
        stem = _file_stem(e.endpoint)
        if stem in stems:
            raise ValueError(
                f"estimates of {stems[stem]} and {e.endpoint} would both be written to {stem}.*"
            )
        stems[stem] = e.endpoint
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for e in drawn:
        figure = _figure(e)
        for fmt in dict.fromkeys(formats):
            path = directory / f"{_file_stem(e.endpoint)}.{fmt}"
            _save(figure, path, fmt)
            paths.append(path)
    return paths


# --- estimation -----------------------------------------------------------------------------

_Table = tuple[list[int], list[float], list[float], list[float]]
"""Per row of a fitted lifelines table: the day, the estimate and the interval (maybe NaN)."""


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha is {alpha}; a confidence level needs 0 < alpha < 1")


def _kaplan_meier(rows: Sequence[EndpointRow], alpha: float) -> _Table:
    durations = [r.time for r in rows]
    observed = [r.status == "event" for r in rows]
    # lifelines' Kaplan-Meier changes numpy's global error state (it takes log(0) on
    # purpose); errstate restores it, so the caller's numpy behaves as before.
    with np.errstate(all="ignore"):
        fitter = KaplanMeierFitter(alpha=alpha).fit(durations, observed)
    times = [float(t) for t in fitter.survival_function_.index]
    values = [float(v) for v in fitter.survival_function_.iloc[:, 0]]
    bounds = np.asarray(fitter.confidence_interval_survival_function_, dtype=float)
    return _rows(times, values, bounds, offset=0.0)


def _aalen_johansen(rows: Sequence[EndpointRow], alpha: float) -> _Table:
    durations = [r.time + _AJ_OFFSET[r.status] for r in rows]
    causes = [_AJ_CAUSE[r.status] for r in rows]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # After the tie-breaking no two causes share a time, so lifelines' tie warning would
        # mean it jittered: make that an error rather than silently random output.
        warnings.filterwarnings("error", message=r"\s*Tied event times", category=Warning)
        try:
            fitter = AalenJohansenFitter(alpha=alpha, seed=0).fit(
                durations, causes, event_of_interest=1
            )
        except Warning as exc:  # pragma: no cover - guards the tie-breaking above
            message = f"lifelines found tied event times after tie-breaking: {exc}"
            raise RuntimeError(message) from exc
    times = [float(t) for t in fitter.cumulative_density_.index]
    values = [float(v) for v in fitter.cumulative_density_.iloc[:, 0]]
    bounds = np.asarray(fitter.confidence_interval_, dtype=float)
    return _rows(times, values, bounds, offset=1.0)


def _rows(times: list[float], values: list[float], bounds: Any, offset: float) -> _Table:
    # lifelines 0.30 labels the Aalen-Johansen bounds the wrong way round (the column called
    # "upper" holds the lower bound): order them by value instead of trusting the names.
    lows = [float(v) for v in np.minimum(bounds[:, 0], bounds[:, 1])]
    highs = [float(v) for v in np.maximum(bounds[:, 0], bounds[:, 1])]
    # Fitted times are whole days plus the tie-breaking fractions; lifelines' own starting
    # row (time 0, before the one-day shift) is the state before day 0.
    days = [max(0, math.floor(t - offset)) for t in times]
    return days, values, lows, highs


def _interval(value: float, lower: float, upper: float, day: int) -> tuple[float, float, str]:
    if value <= _EDGE or value >= 1 - _EDGE:
        note = (
            f"the estimate at day {day} is {value:g}, where the log(-log) interval does not "
            "exist; the interval is reported as the estimate itself"
        )
        return value, value, note
    if math.isfinite(lower) and math.isfinite(upper):
        # Rounding may put a bound a hair on the wrong side of the estimate.
        return min(lower, value), max(upper, value), ""
    note = (
        f"lifelines gives no interval at day {day} (its variance is undefined, as happens once "
        "everyone still at risk has had an event); the interval is reported as [0, 1]"
    )
    return 0.0, 1.0, note


def _curve(table: _Table, horizon: int) -> tuple[tuple[CurvePoint, ...], str]:
    """The steps up to the horizon (the last point at the horizon), and the horizon's note."""
    days, values, lows, highs = table
    by_day: dict[int, tuple[float, float, float]] = {}
    for day, value, low, high in zip(days, values, lows, highs, strict=True):
        if day <= horizon:
            # A day's last row is its value at the day's end. Sums of floats may overshoot a
            # probability by an ulp (1.0000000000000004): clamp to [0, 1].
            by_day[day] = (min(1.0, max(0.0, value)), low, high)
    points: list[CurvePoint] = []
    for day in sorted(by_day):
        value, low, high = by_day[day]
        lower, upper, _ = _interval(value, low, high, day)
        if points and (value, lower, upper) == (
            points[-1].value,
            points[-1].lower,
            points[-1].upper,
        ):
            continue  # e.g. a day with censorings only: no new step
        points.append(CurvePoint(float(day), value, lower, upper))
    last = points[-1]
    if last.time < horizon:
        points.append(CurvePoint(float(horizon), last.value, last.lower, last.upper))
    _, _, note = _interval(*by_day[max(by_day)], horizon)
    return tuple(points), note


# --- plotting -------------------------------------------------------------------------------


def _file_stem(endpoint: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", endpoint).strip("_")
    return stem or "endpoint"


def _figure(e: Estimate) -> Figure:
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(figure)  # attaches itself: the figure renders without pyplot
    ax = figure.add_subplot()
    times = [p.time for p in e.curve]
    level = f"{100 * e.confidence:g} % CI"
    label = "Kaplan-Meier" if e.method == "kaplan-meier" else "Aalen-Johansen"
    ax.fill_between(
        times,
        [p.lower for p in e.curve],
        [p.upper for p in e.curve],
        step="post",
        alpha=0.25,
        color="C0",
        linewidth=0,
        label=level,
    )
    ax.step(times, [p.value for p in e.curve], where="post", color="C0", label=label)
    horizon = e.horizon_days if e.horizon_days is not None else int(times[-1])
    ax.axvline(horizon, color="0.3", linestyle="--", linewidth=1, label=f"horizon (day {horizon})")
    ax.plot([horizon], [e.value], marker="o", color="C0")
    text = f"{100 * e.value:.1f} % ({level} {100 * e.lower:.1f}–{100 * e.upper:.1f} %)"
    # Put the text on the side of the point with more room, so it stays inside the axes.
    below = e.value > 0.5
    ax.annotate(
        text,
        (horizon, e.value),
        xytext=(-8, -14 if below else 10),
        textcoords="offset points",
        ha="right",
        va="top" if below else "bottom",
        fontsize=9,
        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
    )
    ax.set_title(e.name)
    ax.set_xlabel("Days from origin")
    ax.set_ylabel(
        "Event-free probability" if e.method == "kaplan-meier" else "Cumulative incidence"
    )
    ax.set_ylim(0, 1)
    ax.set_xlim(0, max(horizon, 1) * 1.04)
    ax.legend(loc="best", fontsize=8)
    return figure


def _save(figure: Figure, path: Path, fmt: str) -> None:
    # Fixed ids and no dates, so that the same estimate gives the same file.
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})
    with matplotlib.rc_context({"svg.hashsalt": "protocode"}):
        figure.savefig(path, format=fmt, metadata=metadata, dpi=150)
