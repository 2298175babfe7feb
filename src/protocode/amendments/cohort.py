"""A cohort screened by both versions of an amendment: who changes status."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from protocode.core.errors import RecordError
from protocode.core.exact import rational
from protocode.records import Observation, Record, RecordReader, iter_records
from protocode.records.restate import restated
from protocode.screening import Protocol


@dataclass(frozen=True, slots=True)
class CohortDiff:
    """How a cohort's statuses move from the old version to the new one."""

    total: int
    errors: int
    transitions: tuple[tuple[str, str, int], ...]
    flipped: tuple[tuple[str, str, str], ...]

    def to_json(self) -> dict[str, Any]:
        """Counts per (old, new) status pair, and every record whose status changed."""
        return {
            "total": self.total,
            "errors": self.errors,
            "transitions": [{"old": a, "new": b, "count": n} for a, b, n in self.transitions],
            "flipped": [{"id": i, "old": a, "new": b} for i, a, b in self.flipped],
        }


def cohort_reader(old: Protocol, new: Protocol) -> RecordReader:
    """A record reader for both versions: the union of their data dictionaries."""
    items = {i.name: i for i in old.checked.doc.data} | {i.name: i for i in new.checked.doc.data}
    attestations = dict.fromkeys([*old.checked.attestations, *new.checked.attestations])
    return RecordReader(tuple(items.values()), tuple(attestations))


def cohort_diff(
    old: Protocol, new: Protocol, records: Iterable[Record | RecordError | Mapping[str, Any]]
) -> CohortDiff:
    """Every record's status under both versions, counted per (old, new) pair."""
    # One reader for both versions: each evaluates only the items it knows. It converts
    # quantities into the new version's units; the old version reads them in its own.
    shifts = restated(old.checked.items, new.checked.items, old.version)
    to_old = {name: rational(s.old / s.new) for name, s in shifts.items()}
    counts: Counter[tuple[str, str]] = Counter()
    flipped = []
    errors = total = 0
    for item in iter_records(records, cohort_reader(old, new)):
        total += 1
        if isinstance(item, RecordError):
            errors += 1
            continue
        before, after = old.status(_scaled(item, to_old)), new.status(item)
        counts[before, after] += 1
        if before != after:
            flipped.append((item.id, before, after))
    transitions = tuple((a, b, n) for (a, b), n in sorted(counts.items()))
    return CohortDiff(total, errors, transitions, tuple(flipped))


def _scaled(record: Record, factors: Mapping[str, Any]) -> Record:
    """`record` with the quantities of `factors` multiplied by theirs (a change of unit)."""
    if not factors:
        return record

    def scale(x: Any, f: Any) -> Any:
        return None if x is None else rational(x * f)

    values = {k: scale(v, factors[k]) if k in factors else v for k, v in record.values.items()}
    series = {
        k: tuple(
            Observation(scale(o.value, f), o.date, scale(o.low, f), scale(o.high, f)) for o in obs
        )
        if (f := factors.get(k)) is not None
        else obs
        for k, obs in record.series.items()
    }
    return Record(record.id, values, series, record.events, record.attestations)
