"""Amendments: the reviewer's semantic diff of two versions, and the check of declared intents.

`diff(old, new)` compares every criterion (by stable id) and overall eligibility with the
SMT backend, attaches the intent the amendment declares for each change, and, given a
cohort, counts who changes status. `claim_problems(report)` turns every false or missing
claim into a diagnostic pointing into the amendment's file, with a witness patient.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from protocode.backends.smt import Comparison, Witness, compare_criterion, compare_eligibility
from protocode.backends.smt.shared import restated, unit_problems
from protocode.core.errors import Diagnostic, RecordError
from protocode.core.exact import rational
from protocode.document.history import HistoryError, item_changes
from protocode.document.model import Change
from protocode.language.check import CheckedCriterion
from protocode.records import Observation, Record, RecordReader, iter_records
from protocode.screening import Protocol

Presence = Literal["both", "added", "removed"]

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
            "rule": {"old": _rule(self.old), "new": _rule(self.new)},
            "text_changed": self.text_changed,
            "intent": None
            if self.intent is None
            else {"intent": self.intent.intent, "rationale": self.intent.rationale},
            "verdict": _comparison_json(self.comparison),
            "problem": self.problem,
        }


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


@dataclass(frozen=True, slots=True)
class DiffReport:
    """The reviewer's report of an amendment."""

    registry_id: str
    old_version: str
    new_version: str
    metadata: tuple[tuple[str, str, str], ...]
    criteria: tuple[CriterionDiff, ...]
    definitions: tuple[tuple[str, str, str, Change | None], ...]
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


def _rule(c: CheckedCriterion | None) -> str | None:
    if c is None:
        return None
    return c.source if c.rule is not None else f"attestation: {c.attestation}"


def _wording(c: CheckedCriterion | None) -> tuple[str | None, str | None, str | None]:
    return (None, None, None) if c is None else (c.kind, c.text, _rule(c))


def _comparison_json(c: Comparison) -> dict[str, Any]:
    return {
        "relation": c.relation,
        "method": c.method,
        "note": c.note,
        "witnesses": [
            {"direction": w.direction, "old": w.old, "new": w.new, "record": _jsonable(w.record)}
            for w in c.witnesses
        ],
    }


def _jsonable(value: Any) -> Any:
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


def _definitions(old: Protocol, new: Protocol) -> tuple[tuple[str, str, str, Change | None], ...]:
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
    changed = _unreadable(old, new)
    if changed:
        raise HistoryError(changed)
    return DiffReport(
        registry_id=new.registry_id,
        old_version=old.version,
        new_version=new.version,
        metadata=_metadata_changes(old, new),
        criteria=criterion_diffs(old, new),
        definitions=_definitions(old, new),
        eligibility=compare_eligibility(old, new),
        cohort=None if cohort is None else _cohort(old, new, cohort),
        new_protocol=new,
    )


def _unreadable(old: Protocol, new: Protocol) -> list[Diagnostic]:
    """Data items no one record can hold for both versions (see `diff`)."""
    changed = item_changes(old.checked.doc, new.checked.doc, old.version)
    return changed + unit_problems(old.checked.items, new.checked.items, old.version)


def cohort_reader(old: Protocol, new: Protocol) -> RecordReader:
    """A record reader for both versions: the union of their data dictionaries."""
    items = {i.name: i for i in old.checked.doc.data} | {i.name: i for i in new.checked.doc.data}
    attestations = dict.fromkeys([*old.checked.attestations, *new.checked.attestations])
    return RecordReader(tuple(items.values()), tuple(attestations))


def _cohort(
    old: Protocol, new: Protocol, records: Iterable[Record | RecordError | Mapping[str, Any]]
) -> CohortDiff:
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


def check_claims(old: Protocol, new: Protocol) -> list[Diagnostic]:
    """Every false or missing claim of amendment `new` of `old`, as diagnostics.

    A data item no one record can hold for both versions is reported instead: then no
    claim can be checked.
    """
    unreadable = _unreadable(old, new)
    if unreadable:
        return unreadable
    criteria = criterion_diffs(old, new)
    return _claims(criteria, _definitions(old, new), old.version, new)


def claim_problems(report: DiffReport) -> list[Diagnostic]:
    """One diagnostic per false or missing claim, with a witness, in the amendment's file."""
    return _claims(report.criteria, report.definitions, report.old_version, report.new_protocol)


def _claims(
    criteria: Iterable[CriterionDiff],
    definitions: Iterable[tuple[str, str, str, Change | None]],
    old_version: str,
    new: Protocol,
) -> list[Diagnostic]:
    out = []
    for c in (c for c in criteria if c.problem is not None):
        either = c.new if c.new is not None else c.old
        assert either is not None
        span = c.intent.span if c.intent is not None else either.span
        witness = _worst_witness(c)
        message = c.problem or ""
        if witness is not None:
            message += (
                f"; witness: {json.dumps(_jsonable(witness.record), sort_keys=True)} "
                f"is {witness.old} under v{old_version} and {witness.new} under v{new.version}"
            )
        code = "intent" if c.intent is not None else "undeclared-change"
        out.append(Diagnostic(code, message, span))
    doc = new.checked.doc
    spans = {d.name: d.span for d in doc.definitions}
    for name, before, after, change in definitions:
        # A new or dropped definition changes nothing by itself: the criteria using it do,
        # and they are checked. A definition rewritten in place must be declared.
        if change is None and before and after:
            message = (
                f"definition {name} changed but the amendment declares no change "
                f"(declare 'definition {name}' in protocol.changes)"
            )
            out.append(Diagnostic("undeclared-change", message, spans.get(name, doc.metadata.span)))
    return out


def _worst_witness(c: CriterionDiff) -> Witness | None:
    """The witness that contradicts the claim: the narrower one for a relaxed claim, etc."""
    wanted = {"relaxed": "narrower", "tightened": "broader"}.get(
        c.intent.intent if c.intent else ""
    )
    for w in c.comparison.witnesses:
        if wanted is None or w.direction == wanted:
            return w
    return None


def unified(old: str | None, new: str | None) -> list[str]:
    """A word-level diff of two texts, for reports: ``[-old-]{+new+}`` marks."""
    a, b = (old or "").split(), (new or "").split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b).get_opcodes():
        if op == "equal":
            out.append(" ".join(a[i1:i2]))
        if op in ("delete", "replace"):
            out.append("[-" + " ".join(a[i1:i2]) + "-]")
        if op in ("insert", "replace"):
            out.append("{+" + " ".join(b[j1:j2]) + "+}")
    return out
