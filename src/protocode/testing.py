"""Hypothesis strategies that generate valid patient records for a protocol.

For users' own property tests and for protocode's::

    from hypothesis import given
    from protocode.testing import records

    trial = protocode.load("protocol/NCT06125106")

    @given(records(trial))
    def test_never_crashes(record):
        trial.screen(record)

Records are dicts in the documented record format (see docs/records.md). Every item may
be missing (`missing=True`); dates cluster around the anchors so windows are exercised
from both sides; numbers are exact decimals within each item's plausible range.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import strategies as st

from protocode.model import DataItem
from protocode.screen import Protocol

BASE_DATE = dt.date(2024, 3, 1)

Draw = Callable[[st.SearchStrategy[Any]], Any]


def _bounds(item: DataItem) -> tuple[Fraction, Fraction]:
    low = Fraction(item.minimum) if item.minimum is not None else Fraction(0)
    high = Fraction(item.maximum) if item.maximum is not None else low + 1000
    return low, high


def _number(item: DataItem) -> st.SearchStrategy[Any]:
    low, high = _bounds(item)
    if item.type == "integer":
        return st.integers(int(-(-low // 1)), int(high // 1))
    # Hundredths keep values readable and exact; JSON would carry them as decimals.
    lo, hi = int(-(-low * 100 // 1)), int(high * 100 // 1)
    return st.integers(lo, hi).map(lambda n: float(Decimal(n) / 100))


def _value(item: DataItem) -> st.SearchStrategy[Any]:
    match item.type:
        case "boolean":
            return st.booleans()
        case "integer" | "number" | "quantity":
            return _number(item)
        case "code":
            return st.sampled_from(item.values)
        case "date":
            return st.integers(-30000, 3000).map(
                lambda d: (BASE_DATE + dt.timedelta(d)).isoformat()
            )
        case _:
            return st.text(max_size=20)


def _days_before(enrollment: dt.date, low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda d: (enrollment - dt.timedelta(d)).isoformat())


@st.composite
def _observation(draw: Draw, item: DataItem, enrollment: dt.date) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "value": draw(_value(item)),
        "date": draw(_days_before(enrollment, -3, 20)),
    }
    has_limit = item.uln is not None or item.lln is not None
    if item.type == "quantity" and has_limit and draw(st.booleans()):
        obs["reference_range"] = {"high": draw(_number(item).filter(lambda v: v > 0))}
    return obs


@st.composite
def _occurrence(draw: Draw, enrollment: dt.date) -> dict[str, Any]:
    start = enrollment - dt.timedelta(draw(st.integers(-10, 400)))
    occ: dict[str, Any] = {"date": start.isoformat()}
    if draw(st.booleans()):
        occ["end"] = (start + dt.timedelta(draw(st.integers(0, 10)))).isoformat()
    return occ


@st.composite
def records(draw: Draw, protocol: Protocol, *, missing: bool = True) -> dict[str, Any]:
    """A valid record for `protocol`; with `missing`, any item may be absent."""
    enrollment = BASE_DATE + dt.timedelta(draw(st.integers(-400, 400)))
    record: dict[str, Any] = {"id": f"gen-{draw(st.integers(0, 10**6))}"}
    for item in protocol.checked.doc.data:
        if missing and draw(st.integers(0, 9)) == 0:
            continue
        if item.kind == "anchor":
            offset = 0 if item.name == "enrollment" else draw(st.integers(0, 30))
            record[item.name] = (enrollment - dt.timedelta(offset)).isoformat()
        elif item.kind == "observation":
            record[item.name] = draw(st.lists(_observation(item, enrollment), max_size=3))
        elif item.kind == "event":
            record[item.name] = draw(st.lists(_occurrence(enrollment), max_size=2))
        elif item.type == "date":
            years = draw(st.integers(10, 85))
            record[item.name] = (
                enrollment - dt.timedelta(days=years * 365 + draw(st.integers(0, 364)))
            ).isoformat()
        else:
            record[item.name] = draw(_value(item))
    attestations = {}
    for name in protocol.checked.attestations:
        if not (missing and draw(st.integers(0, 4)) == 0):
            attestations[name] = draw(st.booleans())
    record["attestations"] = attestations
    return record
