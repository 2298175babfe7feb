"""The verdict of a semantic comparison: relation, method, witnesses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Relation = Literal["equivalent", "broader", "narrower", "incomparable"]
Method = Literal["proved", "searched"]
Direction = Literal["broader", "narrower"]


@dataclass(frozen=True, slots=True)
class Witness:
    """A patient record on which the two versions differ, with both verdicts."""

    direction: Direction
    record: dict[str, Any]
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Comparison:
    """How version B relates to version A for one criterion (or for overall eligibility)."""

    relation: Relation
    method: Method
    witnesses: tuple[Witness, ...]
    note: str


def relation(broader: bool, narrower: bool) -> Relation:
    """The relation implied by whether patients exist who fare better / worse."""
    if broader and narrower:
        return "incomparable"
    if broader:
        return "broader"
    return "narrower" if narrower else "equivalent"
