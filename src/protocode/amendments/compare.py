"""How an amendment changes each criterion, and overall eligibility, for some patient.

`compare_criterion` and `compare_eligibility` answer in three ways, cheapest first: two
criteria written identically (down to every definition and data item they read) are
equivalent without a solver; otherwise z3 decides (`protocode.backends.smt`), and every
witness patient it finds is screened here with both compiled versions before it is
believed; where z3 does not decide, a hypothesis search over generated records does
(`search`), and says so.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from protocode.backends.smt import (
    Comparison,
    Undecided,
    Witness,
    prove_criterion,
    prove_eligibility,
)
from protocode.backends.smt.verdict import Direction, Effects
from protocode.language import ir
from protocode.language.check import CheckedCriterion
from protocode.records import RecordReader
from protocode.screening import Protocol, Screening

STATUS_RANK = {"ineligible": 0, "indeterminate": 1, "eligible": 2}
"""Overall statuses from worst to best for a patient."""

IDENTICAL = "identical: the same rule over the same definitions and data items"
"""The note of a criterion found equivalent by its text alone, without a solver."""


def restrict(protocol: Protocol, record: dict[str, Any]) -> dict[str, Any]:
    """The part of a record a protocol version knows (versions may add or drop items)."""
    items = protocol.checked.items
    out = {k: v for k, v in record.items() if k == "id" or k in items}
    attested = record.get("attestations")
    if isinstance(attested, dict):
        known = set(protocol.checked.attestations)
        out["attestations"] = {k: v for k, v in attested.items() if k in known}
    return out


class VersionReaders:
    """Reads one patient record for each version, as the shared symbolic patient means it.

    Each version reads with its own dictionary (its units), but also admits the code values
    the other version lists for an item both have: a diagnosis an amendment adds is, for the
    old version's rules, one more code outside their sets, as in the SMT encoding, not an
    invalid record.
    """

    def __init__(self, old: Protocol, new: Protocol) -> None:
        self.old, self.new = old, new
        self._old_reader, self._new_reader = _reader(old, new), _reader(new, old)

    def screen(self, record: dict[str, Any]) -> tuple[Screening, Screening]:
        """The record screened by each version, each reading the part it knows."""
        old, new = self.old, self.new
        return (
            old.screen(self._old_reader.parse(restrict(old, record))),
            new.screen(self._new_reader.parse(restrict(new, record))),
        )

    def verdicts(
        self, record: dict[str, Any], old_c: CheckedCriterion | None, new_c: CheckedCriterion | None
    ) -> tuple[str, str]:
        """The criterion's verdict under each version ("absent" where it has none)."""
        a, b = self.screen(record)
        return (
            "absent" if old_c is None else a.verdict(old_c.id),
            "absent" if new_c is None else b.verdict(new_c.id),
        )

    def statuses(self, record: dict[str, Any]) -> tuple[str, str]:
        """The overall status under each version."""
        a, b = self.screen(record)
        return a.status, b.status


def _reader(protocol: Protocol, other: Protocol) -> RecordReader:
    others = other.checked.items
    items = [
        dataclasses.replace(item, values=tuple(dict.fromkeys(item.values + others[name].values)))
        if item.type == "code" and (name := item.name) in others and others[name].type == "code"
        else item
        for item in protocol.checked.doc.data
    ]
    return RecordReader(items, protocol.checked.attestations)


def effect_of(verdict: str, c: CheckedCriterion | None) -> int:
    """A verdict's effect on a patient: 0 block, 1 unknown, 2 pass (absent passes)."""
    if c is None or verdict == "absent":
        return 2
    if verdict == "unknown":
        return 1
    blocks = (verdict == "met") == (c.kind == "exclusion")
    return 0 if blocks else 2


def compare_criterion(
    old: Protocol, new: Protocol, old_c: CheckedCriterion | None, new_c: CheckedCriterion | None
) -> Comparison:
    """The semantic relation of one criterion across versions (either side may be absent)."""
    if old_c is not None and new_c is not None and same_meaning_by_text(old, new, old_c, new_c):
        return Comparison("equivalent", "proved", (), IDENTICAL)
    reading = VersionReaders(old, new)

    def confirm(record: dict[str, Any], direction: Direction) -> Witness | None:
        ov, nv = reading.verdicts(record, old_c, new_c)
        ea, eb = effect_of(ov, old_c), effect_of(nv, new_c)
        ok = eb > ea if direction == "broader" else eb < ea
        return Witness(direction, record, ov, nv) if ok else None

    proof = prove_criterion(old.checked, new.checked, old_c, new_c, confirm)
    if isinstance(proof, Undecided):
        return _search_criterion(reading, old_c, new_c, proof.reason)
    return proof


def compare_eligibility(old: Protocol, new: Protocol) -> Comparison:
    """The semantic relation of overall eligibility across versions."""
    reading = VersionReaders(old, new)

    def confirm(record: dict[str, Any], direction: Direction) -> Witness | None:
        sa, sb = reading.statuses(record)
        ra, rb = STATUS_RANK[sa], STATUS_RANK[sb]
        ok = rb > ra if direction == "broader" else rb < ra
        return Witness(direction, record, sa, sb) if ok else None

    proof = prove_eligibility(old.checked, new.checked, confirm)
    if isinstance(proof, Undecided):
        return _search_status(reading, proof.reason)
    return proof


def same_meaning_by_text(
    old: Protocol, new: Protocol, old_c: CheckedCriterion, new_c: CheckedCriterion
) -> bool:
    """Whether two criteria are written identically, down to every definition and data item
    they read: then they mean the same, and no solver is needed (most of an amendment)."""
    if (old_c.kind, old_c.source, old_c.attestation) != (
        new_c.kind,
        new_c.source,
        new_c.attestation,
    ):
        return False
    if old_c.rule is None or new_c.rule is None:
        return old_c.rule is None and new_c.rule is None
    names_old, names_new = _names(old, old_c.rule), _names(new, new_c.rule)
    if names_old != names_new:
        return False
    old_defs = {d.name: " ".join(d.rule.text.split()) for d in old.checked.doc.definitions}
    new_defs = {d.name: " ".join(d.rule.text.split()) for d in new.checked.doc.definitions}
    for name in names_old:
        if name in old_defs or name in new_defs:
            if old_defs.get(name) != new_defs.get(name):
                return False
        elif _item_key(old, name) != _item_key(new, name):
            return False
    return True


def _names(protocol: Protocol, node: ir.Expr) -> frozenset[str]:
    """Every data item and definition a rule reads, through definitions."""
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        name = getattr(n, "item", None) if isinstance(n, ir.Fact | ir.Select | ir.Events) else None
        if isinstance(n, ir.DefRef):
            name = n.name
            if name not in found:
                stack.append(protocol.checked.definitions[name])
        if name is not None:
            found.add(name)
        if isinstance(n, ir.RefCompare):
            found.add(n.select.item)
        stack.extend(ir.children(n))
    return frozenset(found)


def _item_key(protocol: Protocol, name: str) -> tuple[object, ...] | None:
    item = protocol.checked.items.get(name)
    if item is None:
        return None
    quantities = tuple(
        None if q is None else (q.value, q.unit) for q in (item.uln, item.lln, item.molar_mass)
    )
    fields = (item.kind, item.type, item.unit, item.values, item.minimum, item.maximum)
    return (*fields, quantities)


def _search_criterion(
    reading: VersionReaders,
    old_c: CheckedCriterion | None,
    new_c: CheckedCriterion | None,
    why: str,
) -> Comparison:
    def effects(record: dict[str, Any]) -> tuple[int, int, str, str]:
        ov, nv = reading.verdicts(record, old_c, new_c)
        return effect_of(ov, old_c), effect_of(nv, new_c), ov, nv

    return _searched(reading, effects, why)


def _search_status(reading: VersionReaders, why: str) -> Comparison:
    def effects(record: dict[str, Any]) -> tuple[int, int, str, str]:
        sa, sb = reading.statuses(record)
        return STATUS_RANK[sa], STATUS_RANK[sb], sa, sb

    return _searched(reading, effects, why)


def _searched(reading: VersionReaders, effects: Effects, why: str) -> Comparison:
    # Imported here: hypothesis takes a quarter of a second to import, and most comparisons
    # (every one of the seed's) are proved by z3 without a search.
    from protocode.amendments.search import search  # noqa: PLC0415

    return search(reading.old, reading.new, effects, why)
