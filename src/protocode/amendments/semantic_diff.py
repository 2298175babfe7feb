"""The semantic diff of two protocol versions: what changed, what it means, what is declared.

`diff(old, new)` compares every criterion (by stable id) and overall eligibility
(`compare`), attaches the intent the amendment declares for each change, and, given a
cohort, counts who changes status (`cohort`). `DiffReport.to_json` is the documented,
versioned shape (see docs/amendments.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from protocode.amendments.cohort import CohortDiff, cohort_diff
from protocode.amendments.compare import compare_criterion, compare_eligibility
from protocode.backends.smt import Comparison
from protocode.core.errors import Diagnostic, RecordError
from protocode.document.changes import item_changes
from protocode.document.history import HistoryError
from protocode.document.model import Change
from protocode.language.check import CheckedCriterion
from protocode.records import Record
from protocode.records.restate import unit_problems
from protocode.screening import Protocol

Presence = Literal["both", "added", "removed"]

DefinitionChange = tuple[str, str, str, Change | None]
"""A definition's name, its old and new rule text ("" where absent), and its declared change."""

# What each declared intent allows the semantic relation to be.
_ALLOWED: dict[str, frozenset[str]] = {
    "editorial": frozenset({"equivalent"}),
    "relaxed": frozenset({"equivalent", "broader"}),
    "tightened": frozenset({"equivalent", "narrower"}),
    "added": frozenset({"equivalent", "broader", "narrower", "incomparable"}),
    "removed": frozenset({"equivalent", "broader", "narrower", "incomparable"}),
}


@dataclass(frozen=True, slots=True)
class CriterionDiff:
    """One criterion across two versions: text, rule, declared intent, semantic verdict."""

    id: str
    presence: Presence
    kind: str
    old: CheckedCriterion | None
    new: CheckedCriterion | None
    intent: Change | None
    comparison: Comparison

    @property
    def text_changed(self) -> bool:
        """Whether the registry text or the rule text differs."""
        return _wording(self.old) != _wording(self.new)

    @property
    def problem(self) -> str | None:
        """Why the declared intent (or its absence) does not match the meaning, if it doesn't."""
        relation = self.comparison.relation
        if self.intent is None:
            if relation == "equivalent" or self.presence != "both":
                return None
            return f"{self.id} changed meaning ({relation}) but the amendment declares no change"
        if relation in _ALLOWED[self.intent.intent]:
            return None
        return f"{self.id} is declared {self.intent.intent}, but the change is {relation}"

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of one criterion's change (see docs/amendments.md)."""
        return {
            "id": self.id,
            "presence": self.presence,
            "kind": self.kind,
            "text": {"old": _text(self.old), "new": _text(self.new)},
            "rule": {"old": rule_text(self.old), "new": rule_text(self.new)},
            "text_changed": self.text_changed,
            "intent": None
            if self.intent is None
            else {"intent": self.intent.intent, "rationale": self.intent.rationale},
            "verdict": _comparison_json(self.comparison),
            "problem": self.problem,
        }


@dataclass(frozen=True, slots=True)
class DiffReport:
    """The reviewer's report of an amendment."""

    registry_id: str
    old_version: str
    new_version: str
    metadata: tuple[tuple[str, str, str], ...]
    criteria: tuple[CriterionDiff, ...]
    definitions: tuple[DefinitionChange, ...]
    eligibility: Comparison
    cohort: CohortDiff | None
    new_protocol: Protocol

    @property
    def problems(self) -> tuple[CriterionDiff, ...]:
        """Criteria whose declared intent is false or missing."""
        return tuple(c for c in self.criteria if c.problem is not None)

    def to_json(self) -> dict[str, Any]:
        """The documented, versioned JSON shape of the whole report."""
        return {
            "format": 1,
            "registry_id": self.registry_id,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "metadata": [{"field": f, "old": a, "new": b} for f, a, b in self.metadata],
            "criteria": [c.to_json() for c in self.criteria],
            "definitions": [
                {
                    "name": name,
                    "old": a,
                    "new": b,
                    "intent": None if change is None else change.intent,
                }
                for name, a, b, change in self.definitions
            ],
            "eligibility": _comparison_json(self.eligibility),
            "cohort": None if self.cohort is None else self.cohort.to_json(),
            "problems": [c.problem for c in self.problems],
        }


def _text(c: CheckedCriterion | None) -> str | None:
    return None if c is None else c.text


def rule_text(c: CheckedCriterion | None) -> str | None:
    """A criterion's rule as reports show it (an attestation named as such; None if absent)."""
    if c is None:
        return None
    return c.source if c.rule is not None else f"attestation: {c.attestation}"


def _wording(c: CheckedCriterion | None) -> tuple[str | None, str | None, str | None]:
    return (None, None, None) if c is None else (c.kind, c.text, rule_text(c))


def _comparison_json(c: Comparison) -> dict[str, Any]:
    return {
        "relation": c.relation,
        "method": c.method,
        "note": c.note,
        "witnesses": [
            {"direction": w.direction, "old": w.old, "new": w.new, "record": jsonable(w.record)}
            for w in c.witnesses
        ],
    }


def jsonable(value: Any) -> Any:
    """A witness record with exact numbers as JSON numbers (or "n/d" text if not decimal)."""
    return json.loads(json.dumps(value, default=_number_json))


def _number_json(value: Any) -> Any:
    text = str(value)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _metadata_changes(old: Protocol, new: Protocol) -> tuple[tuple[str, str, str], ...]:
    a, b = old.checked.doc.metadata, new.checked.doc.metadata
    fields = ("title", "version", "phase", "sponsor", "effective_date", "amends")
    out = []
    for name in fields:
        va, vb = str(getattr(a, name) or ""), str(getattr(b, name) or "")
        if va != vb:
            out.append((name, va, vb))
    return tuple(out)


def definition_changes(old: Protocol, new: Protocol) -> tuple[DefinitionChange, ...]:
    """Every definition whose rule text differs between versions, with its declared change."""

    def text(p: Protocol) -> dict[str, str]:
        return {d.name: " ".join(d.rule.text.split()) for d in p.checked.doc.definitions}

    a, b = text(old), text(new)
    intents = _intents(new, "definition")
    out = []
    for name in dict.fromkeys([*a, *b]):
        if a.get(name) != b.get(name):
            out.append((name, a.get(name, ""), b.get(name, ""), intents.get(name)))
    return tuple(out)


def _intents(new: Protocol, kind: str) -> dict[str, Change]:
    return {c.target: c for c in new.checked.doc.metadata.changes if c.target_kind == kind}


def criterion_diffs(old: Protocol, new: Protocol) -> tuple[CriterionDiff, ...]:
    """Every criterion of either version, compared semantically, with its declared intent."""
    old_by_id = {c.id: c for c in old.criteria}
    new_by_id = {c.id: c for c in new.criteria}
    intents = _intents(new, "criterion")
    criteria = []
    for cid in dict.fromkeys([*old_by_id, *new_by_id]):
        a, b = old_by_id.get(cid), new_by_id.get(cid)
        presence: Presence = "both" if a and b else ("added" if b else "removed")
        either = b if b is not None else a
        assert either is not None
        kind = either.kind
        comparison = compare_criterion(old, new, a, b)
        criteria.append(CriterionDiff(cid, presence, kind, a, b, intents.get(cid), comparison))
    return tuple(criteria)


def diff(
    old: Protocol,
    new: Protocol,
    cohort: Iterable[Record | RecordError | Mapping[str, Any]] | None = None,
) -> DiffReport:
    """The semantic diff of `new` against `old` (optionally with a cohort's status flips).

    Raises `HistoryError` at each data item that holds another kind of value in `new` (or
    a quantity in a unit that does not convert): no one patient record is read by both
    versions, so there is nothing to compare them on.
    """
    changed = unreadable(old, new)
    if changed:
        raise HistoryError(changed)
    return DiffReport(
        registry_id=new.registry_id,
        old_version=old.version,
        new_version=new.version,
        metadata=_metadata_changes(old, new),
        criteria=criterion_diffs(old, new),
        definitions=definition_changes(old, new),
        eligibility=compare_eligibility(old, new),
        cohort=None if cohort is None else cohort_diff(old, new, cohort),
        new_protocol=new,
    )


def unreadable(old: Protocol, new: Protocol) -> list[Diagnostic]:
    """Data items no one record can hold for both versions (see `diff`)."""
    changed = item_changes(old.checked.doc, new.checked.doc, old.version)
    return changed + unit_problems(old.checked.items, new.checked.items, old.version)
