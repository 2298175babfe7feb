"""The verdict of a semantic comparison: relation, method, witnesses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Relation = Literal["equivalent", "broader", "narrower", "incomparable"]
Method = Literal["proved", "searched"]
Direction = Literal["broader", "narrower"]

Effects = Callable[[dict[str, Any]], tuple[int, int, str, str]]
"""What two versions make of one generated record: each one's rank (to compare) and verdict
(to show), old first; a search for witnesses looks for records where the ranks differ."""


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
