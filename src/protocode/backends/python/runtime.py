"""Runtime primitives shared by every Python backend (closures and generated code).

Each function is total: unknown inputs (None) give unknown results, never exceptions, so
both backends get the same three-valued semantics from one implementation.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from gmpy2 import mpq

from protocode.core.exact import rational
from protocode.language.library import add_months
from protocode.records import Observation, Occurrence

Bounds = tuple[dt.date, dt.date]

DATE_MIN = dt.date.min
DATE_MAX = dt.date.max
_DAY = dt.timedelta(days=1)

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

# A known-empty history answers every question without looking at dates.
EMPTY_ANSWER: dict[str, Any] = {"any": False, "ever": False, "no": True, "count": 0}


def exact(x: Any) -> Any:
    """Integral rationals as `int`: exact, and faster in later arithmetic."""
    return x if type(x) is int else rational(x)


def value(x: Any) -> Any:
    """An IR constant as the backends hold it: rationals fast and exact, the rest as is."""
    if isinstance(x, Fraction):
        return rational(x)
    if isinstance(x, frozenset):
        return frozenset(value(item) for item in x)
    return x


def divide(a: Any, b: Any) -> Any:
    """Exact division; unknown when either side is unknown or the divisor is zero."""
    if a is None or b is None or b == 0:
        return None
    # mpq keeps int / int exact (Python's / would give a float).
    return mpq(a) / b


def _shift(date: dt.date, amount: int, months: bool) -> dt.date:
    return add_months(date, amount) if months else date + dt.timedelta(days=amount)


def shift_date(date: dt.date | None, amount: int, months: bool) -> dt.date | None:
    """A date moved by whole days or calendar months."""
    return None if date is None else _shift(date, amount, months)


def window_bounds(anchor: dt.date | None, kind: str, amount: int, months: bool) -> Bounds | None:
    """The closed date interval of a window around `anchor`; None when the anchor is unknown."""
    if anchor is None:
        return None
    if kind == "within_before":
        return _shift(anchor, -amount, months), anchor
    if kind == "within_after":
        return anchor, _shift(anchor, amount, months)
    if kind == "within_of":
        return _shift(anchor, -amount, months), _shift(anchor, amount, months)
    if kind == "before":
        return DATE_MIN, anchor - _DAY
    return anchor + _DAY, DATE_MAX


def pick(
    series: tuple[Observation, ...] | None, bounds: Bounds | None, windowed: bool, earliest: bool
) -> Observation | None:
    """The observation `latest` (or `earliest`) selects: in the window, or overall.

    Unknown (None) when the choice is not determined by the data: an undated value could
    be the latest (records keep undated values last), and two different values on the
    latest day leave it open which one counts. Dating a value or dropping a duplicate then
    only turns this unknown into a decision, never flips a decision.
    """
    if not series or series[-1].date is None:
        return None
    last = len(series) - 1
    if not windowed:
        index = 0 if earliest else last
    elif bounds is None:
        return None
    else:
        # Sorted by date (all dated here): walk in from the near end of the window.
        lo, hi = bounds
        if earliest:
            index = 0
            while index <= last and series[index].date < lo:  # type: ignore[operator]
                index += 1
            if index > last or series[index].date > hi:  # type: ignore[operator]
                return None
        else:
            index = last
            while index >= 0 and series[index].date > hi:  # type: ignore[operator]
                index -= 1
            if index < 0 or series[index].date < lo:  # type: ignore[operator]
                return None
    chosen = series[index]
    # Same-day values sit next to each other (sorted): any different one makes it ambiguous.
    for step in (-1, 1):
        other = index + step
        while 0 <= other <= last and series[other].date == chosen.date:
            if series[other] != chosen:
                return None
            other += step
    return chosen


def pick_problem(series: tuple[Observation, ...], bounds: Bounds | None) -> str:
    """Why `pick` found nothing to pick in a non-empty series, for explanations."""
    if series[-1].date is None:
        return "has an undated value, so which value is the latest is unknown"
    dates = [o.date for o in series if o.date is not None]
    same_day = len(set(dates)) < len(dates)
    if bounds is not None:
        lo, hi = bounds
        inside = [d for d in dates if lo <= d <= hi]
        if inside:
            return "has different values on the same day, so which one counts is unknown"
        nearest = min(dates, key=lambda d: min(abs((d - lo).days), abs((d - hi).days)))
        if nearest < lo:
            where = f"{(lo - nearest).days} days before the window opens ({lo.isoformat()})"
        else:
            where = f"{(nearest - hi).days} days after the window closes ({hi.isoformat()})"
        return f"measured on {nearest.isoformat()}, {where}"
    if same_day:
        return "has different values on the same day, so which one counts is unknown"
    return "has no value to pick"


def events(
    occurrences: tuple[Occurrence, ...] | None,
    series: tuple[Observation, ...] | None,
    op: str,
    windowed: bool,
    bounds: Bounds | None,
) -> Any:
    """`any` / `no` / `count` / `ever` over an event item (or an observation's dates)."""
    if occurrences is None:
        if series is None:
            return None
        occurrences = tuple(Occurrence(o.date) for o in series)
    if not occurrences:
        return EMPTY_ANSWER[op]
    if op == "ever":
        return True
    lo, hi = DATE_MIN, DATE_MAX
    if windowed:
        if bounds is None:
            return None
        lo, hi = bounds
    hits = undated = 0
    for o in occurrences:
        if o.date is None:
            undated += 1
        elif o.date <= hi and (o.end or o.date) >= lo:
            hits += 1
    if op == "count":
        return None if undated else hits
    found = True if hits else (None if undated else False)
    if op == "no":
        return None if found is None else not found
    return found


def reference_compare(
    obs: Observation | None,
    cmp: Callable[[Any, Any], bool],
    factor: Any,
    upper: bool,
    default: Any,
) -> bool | None:
    """An observation against a multiple of its own reference limit, else the default."""
    if obs is None or obs.value is None:
        return None
    limit = obs.high if upper else obs.low
    if limit is None:
        limit = default
    if limit is None:
        return None
    return cmp(obs.value, factor * limit)
