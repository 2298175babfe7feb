"""What a coverage run found: per criterion the verdicts, per sub-condition the outcomes reached."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from protocode.cases.suite import OUTCOMES, VERDICTS, Outcome
from protocode.screening import Verdict


@dataclass(frozen=True, slots=True)
class CriterionCoverage:
    """Which verdicts one criterion reached over the cases, of those it can reach."""

    id: str
    kind: Literal["inclusion", "exclusion"]
    location: str
    reached: frozenset[Verdict]
    possible: frozenset[Verdict]

    @property
    def gaps(self) -> tuple[Verdict, ...]:
        """Possible verdicts no case reached."""
        return tuple(v for v in VERDICTS if v in self.possible and v not in self.reached)


@dataclass(frozen=True, slots=True)
class ConditionCoverage:
    """Which outcomes one atomic sub-condition reached over the cases.

    `owner` is the criterion id, or ``definition NAME`` for a condition inside a
    definition. `text` is the condition's source text; `detail` tells apart the two halves
    of a `between` (``>= 18 years``), which share their text.
    """

    owner: str
    text: str
    detail: str
    location: str
    reached: frozenset[Outcome]
    possible: frozenset[Outcome]

    @property
    def label(self) -> str:
        """The text, with the detail when there is one."""
        return f"{self.text} ({self.detail})" if self.detail else self.text

    @property
    def gaps(self) -> tuple[Outcome, ...]:
        """Possible outcomes no case reached."""
        return tuple(o for o in OUTCOMES if o in self.possible and o not in self.reached)


@dataclass(frozen=True, slots=True)
class Gap:
    """A verdict or outcome no case reached, located in the protocol file."""

    location: str
    owner: str
    text: str
    missing: tuple[str, ...]

    def __str__(self) -> str:
        what = f"{self.owner}: {self.text}" if self.text else f"{self.owner}"
        return f"{self.location}: {what}: never {' / '.join(self.missing)}"


@dataclass(frozen=True, slots=True)
class CoverageReport:
    """How thoroughly a case suite exercises a protocol version.

    Cases whose record is invalid are not counted (`invalid` names them).
    """

    path: Path
    protocol: str
    version: str
    cases: int
    invalid: tuple[str, ...]
    criteria: tuple[CriterionCoverage, ...]
    conditions: tuple[ConditionCoverage, ...]

    @property
    def gaps(self) -> tuple[Gap, ...]:
        """Every unreached verdict and outcome: each criterion's, then its sub-conditions',
        in criteria order; then those of sub-conditions inside definitions."""
        out: list[Gap] = []
        for crit in self.criteria:
            if crit.gaps:
                out.append(Gap(crit.location, crit.id, "", crit.gaps))
            out.extend(
                Gap(c.location, c.owner, c.label, c.gaps)
                for c in self.conditions
                if c.owner == crit.id and c.gaps
            )
        out.extend(
            Gap(c.location, c.owner, c.label, c.gaps)
            for c in self.conditions
            if c.owner.startswith("definition ") and c.gaps
        )
        return tuple(out)

    def condition(self, owner: str, text: str, detail: str = "") -> ConditionCoverage:
        """The coverage of the sub-condition of `owner` with this source text (and detail)."""
        for c in self.conditions:
            if c.owner == owner and c.text == text and c.detail == detail:
                return c
        raise KeyError((owner, text, detail))

    def to_text(self, verbose: bool = False) -> str:
        """Summary counts and every gap; with `verbose`, every criterion and sub-condition."""
        full_criteria = sum(not c.gaps for c in self.criteria)
        full_conditions = sum(not c.gaps for c in self.conditions)
        lines = [
            f"coverage of {self.protocol} version {self.version} by {self.path}"
            f" ({self.cases} cases)",
            f"  criteria: {full_criteria} of {len(self.criteria)} reached every verdict",
            f"  sub-conditions: {full_conditions} of {len(self.conditions)} reached every outcome",
        ]
        if self.invalid:
            lines.append(f"  not counted (invalid record): {', '.join(self.invalid)}")
        if verbose:
            for crit in self.criteria:
                marks = _marks(VERDICTS, crit.reached, crit.possible)
                lines.append(f"  {crit.id} ({crit.kind}): {marks}")
                for cond in self.conditions:
                    if cond.owner == crit.id:
                        marks = _marks(OUTCOMES, cond.reached, cond.possible)
                        lines.append(f"      {cond.label}: {marks}")
            for cond in self.conditions:
                if cond.owner.startswith("definition "):
                    marks = _marks(OUTCOMES, cond.reached, cond.possible)
                    lines.append(f"  {cond.owner}: {cond.label}: {marks}")
        gaps = self.gaps
        lines.append(f"gaps: {len(gaps)}" if gaps else "gaps: none")
        lines.extend(f"  {g}" for g in gaps)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: every criterion and sub-condition with reached outcomes, gaps."""
        return {
            "file": str(self.path),
            "protocol": self.protocol,
            "version": self.version,
            "cases": self.cases,
            "invalid": list(self.invalid),
            "criteria": [
                {
                    "id": c.id,
                    "kind": c.kind,
                    "location": c.location,
                    "reached": [v for v in VERDICTS if v in c.reached],
                    "gaps": list(c.gaps),
                }
                for c in self.criteria
            ],
            "conditions": [
                {
                    "owner": c.owner,
                    "text": c.text,
                    "detail": c.detail,
                    "location": c.location,
                    "reached": [o for o in OUTCOMES if o in c.reached],
                    "gaps": list(c.gaps),
                }
                for c in self.conditions
            ],
            "gaps": [
                {
                    "location": g.location,
                    "owner": g.owner,
                    "text": g.text,
                    "missing": list(g.missing),
                }
                for g in self.gaps
            ],
        }


def _marks(order: Sequence[str], reached: frozenset[str], possible: frozenset[str]) -> str:
    shown = []
    for o in order:
        if o in reached:
            shown.append(f"{o} ✓")
        elif o in possible:
            shown.append(f"{o} ✗")
    return ", ".join(shown)
