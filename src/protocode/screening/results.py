"""What screening a record gives: the status, each criterion's verdict, and explanations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from protocode.records import Record

Verdict = Literal["met", "not met", "unknown"]
Status = Literal["eligible", "ineligible", "indeterminate"]

VERDICTS: dict[bool | None, Verdict] = {True: "met", False: "not met", None: "unknown"}
"""A three-valued verdict in words."""


class Explains(Protocol):
    """What a `Screening` asks for its explanation: the protocol that screened it."""

    def explain(self, data: Record) -> Explanation:
        """Screen `data` with tracing and explain every criterion."""
        ...


@dataclass(frozen=True, slots=True)
class CriterionResult:
    """One criterion's verdict for one record."""

    id: str
    kind: Literal["inclusion", "exclusion"]
    verdict: Verdict

    @property
    def blocks(self) -> bool:
        """True when this verdict alone makes the patient ineligible."""
        return self.verdict == ("not met" if self.kind == "inclusion" else "met")


@dataclass(frozen=True, slots=True)
class Finding:
    """A sub-expression that decided a criterion, with its value and the data it read."""

    rule: str
    value: str
    data: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CriterionExplanation:
    """Why a criterion came out as it did."""

    id: str
    kind: Literal["inclusion", "exclusion"]
    text: str
    rule: str
    verdict: Verdict
    findings: tuple[Finding, ...]
    missing: tuple[str, ...]
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.id,
            "kind": self.kind,
            "verdict": self.verdict,
            "rule": self.rule,
            "findings": [
                {"rule": f.rule, "value": f.value, "data": list(f.data)} for f in self.findings
            ],
            "missing": list(self.missing),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    """A whole record's screening, criterion by criterion."""

    record_id: str
    status: Status
    criteria: tuple[CriterionExplanation, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        """Data items whose absence left some criterion undecided."""
        seen: dict[str, None] = {}
        for c in self.criteria:
            if c.verdict == "unknown":
                seen.update(dict.fromkeys(c.missing))
        return tuple(seen)

    def to_text(self) -> str:
        """A report for a coordinator: status, then each criterion with its reasons."""
        lines = [f"record {self.record_id}: {self.status.upper()}"]
        for c in self.criteria:
            # Marks show the effect on eligibility: an exclusion that is not met passes.
            blocks = c.verdict == ("not met" if c.kind == "inclusion" else "met")
            mark = "?" if c.verdict == "unknown" else "✗" if blocks else "✓"
            lines.append(f"  {mark} {c.id} ({c.kind}) {c.verdict}: {c.text}")
            if c.rule:
                lines.append(f"      rule: {c.rule}")
            for f in c.findings:
                data = f"  [{'; '.join(f.data)}]" if f.data else ""
                lines.append(f"      {f.rule} → {f.value}{data}")
            lines.extend(f"      note: {n}" for n in c.notes)
            if c.missing:
                lines.append(f"      missing: {', '.join(c.missing)}")
        if self.status == "indeterminate":
            deciding = ", ".join(self.missing) or "no missing item (see the notes above)"
            lines.append(f"  would be decided by: {deciding}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.record_id,
            "status": self.status,
            "missing": list(self.missing),
            "criteria": [c.to_json() for c in self.criteria],
        }


@dataclass(frozen=True, slots=True)
class Screening:
    """The result of screening one record: status and per-criterion verdicts."""

    record_id: str
    status: Status
    criteria: tuple[CriterionResult, ...]
    _record: Record = field(repr=False, compare=False)
    _protocol: Explains = field(repr=False, compare=False)

    def explain(self) -> Explanation:
        """Why: the values that decided each criterion, and what is missing."""
        return self._protocol.explain(self._record)

    @property
    def missing(self) -> tuple[str, ...]:
        """Data items that would decide an indeterminate result (empty otherwise)."""
        if self.status != "indeterminate":
            return ()
        return self.explain().missing

    def verdict(self, criterion_id: str) -> Verdict:
        """The verdict of one criterion by id."""
        for c in self.criteria:
            if c.id == criterion_id:
                return c.verdict
        raise KeyError(criterion_id)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: id, status, verdicts by criterion id, missing items."""
        return {
            "id": self.record_id,
            "status": self.status,
            "criteria": {c.id: c.verdict for c in self.criteria},
            "missing": list(self.missing),
        }


def overall(criteria: Iterable[tuple[Literal["inclusion", "exclusion"], bool | None]]) -> Status:
    """Eligible iff every inclusion is met and no exclusion is met (Kleene)."""
    unknown = False
    for kind, value in criteria:
        if value is None:
            unknown = True
        elif value is (kind == "exclusion"):
            return "ineligible"
    return "indeterminate" if unknown else "eligible"
