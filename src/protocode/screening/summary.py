"""The counts of a screening run, whichever engine screened it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from protocode.core.errors import RecordError
from protocode.screening.results import Screening

STATUSES = ("eligible", "ineligible", "indeterminate", "error")
"""Every status a screened record can have, in the order a summary lists them."""


@dataclass(slots=True)
class Summary:
    """Records per status (errors included) and, per criterion, how many records it
    excluded or left undecided (the attrition)."""

    criteria: tuple[str, ...]
    statuses: Counter[str] = field(default_factory=Counter)
    excluded: Counter[str] = field(default_factory=Counter)
    undecided: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, criteria: Sequence[str]) -> Summary:
        """An empty summary of a run over `criteria` (their ids, in the protocol's order)."""
        return cls(tuple(criteria))

    @property
    def total(self) -> int:
        """Every record: screened or in error."""
        return sum(self.statuses.values())

    def add(self, result: Screening | RecordError) -> None:
        """Count one record's result."""
        if isinstance(result, RecordError):
            self.statuses["error"] += 1
            return
        self.statuses[result.status] += 1
        for c in result.criteria:
            if c.blocks:
                self.excluded[c.id] += 1
            elif c.verdict == "unknown":
                self.undecided[c.id] += 1

    def to_text(self, label: str) -> str:
        """The counts per status with their total, then the attrition table; `label` names
        the protocol version screened."""
        total = self.total
        width = max(len(s) for s in (*STATUSES, "total"))
        lines = [f"summary of {total} record{'' if total == 1 else 's'} ({label}):"]
        lines += [f"  {s:<{width}}  {self.statuses[s]:>6}" for s in STATUSES]
        lines.append(f"  {'total':<{width}}  {total:>6}")
        id_width = max(len(c) for c in (*self.criteria, "criterion"))
        lines.append("attrition (a record may be excluded by several criteria):")
        lines.append(f"  {'criterion':<{id_width}}  excluded  undecided")
        lines += [
            f"  {c:<{id_width}}  {self.excluded[c]:>8}  {self.undecided[c]:>9}"
            for c in self.criteria
        ]
        return "\n".join(lines)
