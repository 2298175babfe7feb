"""Hypothesis strategies of valid patient records for a data dictionary.

Records are dicts in the documented record format (see docs/records.md). Every item may
be missing (`missing=True`); dates cluster around the anchors so windows are exercised
from both sides; numbers are exact decimals within each item's plausible range.
`protocode.testing` offers these for a loaded protocol; the amendment search draws
`shared_records` for two versions at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import strategies as st

from protocode.document.model import DataItem
from protocode.records.restate import restated

BASE_DATE = dt.date(2024, 3, 1)

Draw = Callable[[st.SearchStrategy[Any]], Any]


@dataclass(frozen=True, slots=True)
class _Field:
    """How one item is drawn: its kind, type and code values, a plausible range in `unit`,
    and the unit stated beside each number (None: plain numbers, in the item's own unit)."""

    item: DataItem
    low: Fraction
    high: Fraction
    unit: str | None = None


Range = tuple[Fraction | None, Fraction | None]


def _range(item: DataItem, scale: Fraction = Fraction(1)) -> Range:
    """The item's plausible range, for a value that the item's reader multiplies by `scale`."""
    low = Fraction(item.minimum) / scale if item.minimum is not None else None
    high = Fraction(item.maximum) / scale if item.maximum is not None else None
    return low, high


def _field(item: DataItem, ranges: Iterable[Range], unit: str | None = None) -> _Field | None:
    """A field within every range (None when they leave no value at all)."""
    lows = [lo for lo, _ in ranges if lo is not None]
    highs = [hi for _, hi in ranges if hi is not None]
    low = max(lows) if lows else Fraction(0)
    high = min(highs) if highs else low + 1000
    # Integers, and other numbers in hundredths (see `_number`), must fit in the range.
    step = 1 if item.type == "integer" else 100
    if -(-low * step // 1) > high * step // 1:
        return None
    return _Field(item, low, high, unit)


def _number(field: _Field) -> st.SearchStrategy[Any]:
    low, high = field.low, field.high
    if field.item.type == "integer":
        return st.integers(int(-(-low // 1)), int(high // 1))
    # Hundredths keep values readable and exact; JSON would carry them as decimals.
    lo, hi = int(-(-low * 100 // 1)), int(high * 100 // 1)
    return st.integers(lo, hi).map(lambda n: float(Decimal(n) / 100))


def _value(field: _Field) -> st.SearchStrategy[Any]:
    item = field.item
    match item.type:
        case "boolean":
            return st.booleans()
        case "integer" | "number" | "quantity":
            return _number(field)
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
def _observation(draw: Draw, field: _Field, enrollment: dt.date) -> dict[str, Any]:
    item = field.item
    obs: dict[str, Any] = {
        "value": draw(_value(field)),
        "date": draw(_days_before(enrollment, -3, 20)),
    }
    if field.unit is not None:
        # The reference range is read in this unit too.
        obs["unit"] = field.unit
    has_limit = item.uln is not None or item.lln is not None
    if item.type == "quantity" and has_limit and draw(st.booleans()):
        obs["reference_range"] = {"high": draw(_number(field).filter(lambda v: v > 0))}
    return obs


@st.composite
def _occurrence(draw: Draw, enrollment: dt.date) -> dict[str, Any]:
    start = enrollment - dt.timedelta(draw(st.integers(-10, 400)))
    occ: dict[str, Any] = {"date": start.isoformat()}
    if draw(st.booleans()):
        occ["end"] = (start + dt.timedelta(draw(st.integers(0, 10)))).isoformat()
    return occ


@st.composite
def records(
    draw: Draw, data: Sequence[DataItem], attestations: Iterable[str], *, missing: bool = True
) -> dict[str, Any]:
    """A valid record for the data items `data`; with `missing`, any item may be absent."""
    fields = [_field(item, [_range(item)]) for item in data]
    return _patient(draw, [f for f in fields if f is not None], attestations, missing)


@st.composite
def shared_records(
    draw: Draw,
    old: Sequence[DataItem],
    new: Sequence[DataItem],
    old_version: str,
    attestations: Iterable[str],
    *,
    missing: bool = True,
) -> dict[str, Any]:
    """A record two versions read as the same patient (data items `old` amended by `new`).

    It has the items of either version and `attestations`. An item of both is drawn within
    both plausible ranges, from the code values of either; a quantity whose unit changed
    is stated in the unit both compare it in (`restate.restated`), which each reader converts.
    """
    mine = {item.name: item for item in old}
    others = {item.name: item for item in new}
    shifts = restated(mine, others, old_version)
    fields = []
    for item in old:
        other = others.get(item.name)
        if other is None:
            fields.append(_field(item, [_range(item)]))
            continue
        values = tuple(dict.fromkeys(item.values + other.values))
        shift = shifts.get(item.name)
        if shift is None:
            ranges, unit = [_range(item), _range(other)], None
        else:
            ranges, unit = [_range(item, shift.old), _range(other, shift.new)], shift.unit
        fields.append(_field(dataclasses.replace(item, values=values), ranges, unit))
    for item in new:
        if item.name not in mine:
            fields.append(_field(item, [_range(item)]))
    return _patient(draw, [f for f in fields if f is not None], attestations, missing)


def _patient(
    draw: Draw, fields: Sequence[_Field], attestations: Iterable[str], missing: bool
) -> dict[str, Any]:
    """One record: each field drawn (or, with `missing`, perhaps left out), then attestations."""
    enrollment = BASE_DATE + dt.timedelta(draw(st.integers(-400, 400)))
    record: dict[str, Any] = {"id": f"gen-{draw(st.integers(0, 10**6))}"}
    for field in fields:
        item = field.item
        if missing and draw(st.integers(0, 9)) == 0:
            continue
        if item.kind == "anchor":
            offset = 0 if item.name == "enrollment" else draw(st.integers(0, 30))
            record[item.name] = (enrollment - dt.timedelta(offset)).isoformat()
        elif item.kind == "observation":
            record[item.name] = draw(st.lists(_observation(field, enrollment), max_size=3))
        elif item.kind == "event":
            record[item.name] = draw(st.lists(_occurrence(enrollment), max_size=2))
        elif item.type == "date":
            years = draw(st.integers(10, 85))
            record[item.name] = (
                enrollment - dt.timedelta(days=years * 365 + draw(st.integers(0, 364)))
            ).isoformat()
        else:
            value = draw(_value(field))
            record[item.name] = (
                value if field.unit is None else {"value": value, "unit": field.unit}
            )
    chosen = {}
    for name in attestations:
        if not (missing and draw(st.integers(0, 4)) == 0):
            chosen[name] = draw(st.booleans())
    record["attestations"] = chosen
    return record
