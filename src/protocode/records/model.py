"""The validated patient record: exact values, dated observations and event occurrences.

Only items present in a record appear in it; an absent key is missing data (unknown), never
false or zero.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeAlias

__all__ = ["Magnitude", "Observation", "Occurrence", "Record"]

# An exact number: `int`, or a GMP rational at run time (typed as `Fraction`, whose
# interface it shares; gmpy2 has no type information).
Magnitude: TypeAlias = int | Fraction


@dataclass(frozen=True, slots=True)
class Observation:
    """One dated value of an observation item, in the item's unit.

    `low`/`high` are the lab's reference range for this measurement (converted to the item's
    unit like the value), when the record gives one.
    """

    value: object
    date: dt.date | None
    low: Magnitude | None = None
    high: Magnitude | None = None


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence of an event item; `date` is None when the record says it is undated."""

    date: dt.date | None
    end: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """A validated patient record.

    Only items present in the record appear in `values`, `series` and `events`; an absent key
    is missing data. `series` holds observations sorted by date (undated last); `events`
    holds occurrences in the same order.
    """

    id: str
    values: dict[str, object]
    series: dict[str, tuple[Observation, ...]]
    events: dict[str, tuple[Occurrence, ...]]
    attestations: dict[str, bool]
