"""What a protocol's ids may do between consecutive versions, and what declares it.

Ids are stable: a criterion, definition or data item keeps its id from one version to the
next unless a declared change (``protocol.changes``) says otherwise, and a data item keeps the
kind of value it holds. Whether a declared change means what it claims is a semantic
question, not answered here (see `protocode.amendments`).
"""

from __future__ import annotations

import difflib

from protocode.core.errors import Diagnostic, did_you_mean
from protocode.document.model import Change, ChangeTargetKind, Criterion, DataItem, ProtocolDoc

SIMILARITY_THRESHOLD = 0.5
"""Below this `difflib` ratio, two registry texts under one id read as different criteria."""

_TARGET_NOUNS: dict[ChangeTargetKind, str] = {
    "criterion": "criterion",
    "definition": "definition",
    "data": "data item",
}


def check_ids(old: ProtocolDoc, new: ProtocolDoc, prev: int, number: int) -> list[Diagnostic]:
    """What breaks id stability from version `prev` (`old`) to the next one, `number` (`new`).

    Every declared change must name something in either version with the fitting intent;
    a criterion gone, new, or reused for another text needs a declared change; a data item
    keeps the kind of value it holds (`item_changes`).
    """
    old_criteria = {c.id: c for c in old.criteria}
    new_criteria = {c.id: c for c in new.criteria}
    names: dict[ChangeTargetKind, tuple[set[str], set[str]]] = {
        "criterion": (set(old_criteria), set(new_criteria)),
        "definition": ({d.name for d in old.definitions}, {d.name for d in new.definitions}),
        "data": ({i.name for i in old.data}, {i.name for i in new.data}),
    }
    found: list[Diagnostic] = []
    # A criterion with any declared change is accounted for: a wrong intent is its own error.
    declared = {c.target for c in new.metadata.changes if c.target_kind == "criterion"}
    for change in new.metadata.changes:
        in_old, in_new = (change.target in side for side in names[change.target_kind])
        problem = _intent_problem(change, in_old, in_new, prev)
        if problem is None:
            continue
        code, message = problem
        if code == "change-target":
            message += did_you_mean(
                change.target, names[change.target_kind][0] | names[change.target_kind][1]
            )
        found.append(Diagnostic(code, message, change.span))
    for gone in old.criteria:
        if gone.id not in new_criteria and gone.id not in declared:
            message = (
                f"criterion {gone.id} of version {prev} is gone without a 'removed' change; "
                f"ids are stable: declare {{target: {gone.id}, intent: removed, rationale: …}} "
                "under protocol.changes"
            )
            found.append(Diagnostic("undeclared-removal", message, new.metadata.span))
    found += item_changes(old, new, str(prev))
    for criterion in new.criteria:
        earlier = old_criteria.get(criterion.id)
        if earlier is None:
            if criterion.id not in declared:
                message = (
                    f"criterion {criterion.id} is new in version {number} but no change "
                    "declares it 'added'"
                )
                found.append(Diagnostic("undeclared-addition", message, criterion.span))
            continue
        found += _check_same_id(earlier, criterion, criterion.id in declared, prev)
    return found


def item_changes(old: ProtocolDoc, new: ProtocolDoc, old_version: str) -> list[Diagnostic]:
    """Data items of `new` that keep a name of `old` but hold another kind or type of value.

    Versions are compared on one patient record read by both, so an item must mean the same
    kind of value in each (its unit and code values may change); otherwise no claim about a
    criterion reading it can be checked. Each is located at the item in `new`.
    """
    before = {i.name: i for i in old.data}
    found = []
    for item in new.data:
        earlier = before.get(item.name)
        if earlier is None or (earlier.kind, earlier.type) == (item.kind, item.type):
            continue
        message = (
            f"data item {item.name} is {_holds(item)} here but was {_holds(earlier)} in "
            f"version {old_version}; one record cannot be read by both, so the versions cannot "
            "be compared: keep what it holds, or give the new item a new name"
        )
        found.append(Diagnostic("item-kind", message, item.span))
    return found


def _holds(item: DataItem) -> str:
    """What a data item holds, for messages: ``a code``, ``an observation of quantity``."""
    what = item.type if item.kind == "fact" else f"{item.kind} of {item.type}"
    return ("an " if what[0] in "aeiou" else "a ") + what


def _intent_problem(
    change: Change, in_old: bool, in_new: bool, prev: int
) -> tuple[str, str] | None:
    """What is wrong with a change, given whether its target is in the old and new version."""
    label, intent = change.label, change.intent
    noun = _TARGET_NOUNS[change.target_kind]
    if not in_old and not in_new:
        return "change-target", f"no {noun} '{change.target}' in this version or version {prev}"
    if in_old and in_new:
        if intent == "added":
            return (
                "change-intent",
                f"{label} is declared added, but version {prev} already has it "
                "('added' is for a new id)",
            )
        if intent == "removed":
            return (
                "change-intent",
                f"{label} is declared removed, but this version still has it "
                "('removed' is for an id that is gone)",
            )
        return None
    if in_new and intent != "added":
        return (
            "change-intent",
            f"{label} is declared {intent}, but it is new in this version: declare it 'added'",
        )
    if in_old and intent != "removed":
        return (
            "change-intent",
            f"{label} is declared {intent}, but it is gone from this version: declare it 'removed'",
        )
    return None


def _check_same_id(old: Criterion, new: Criterion, declared: bool, prev: int) -> list[Diagnostic]:
    if old.kind != new.kind:
        message = (
            f"criterion {new.id} is an {new.kind} criterion here but was an {old.kind} criterion "
            f"in version {prev}; ids are stable: give it a new id (and declare the old one "
            "removed, the new one added)"
        )
        return [Diagnostic("criterion-kind", message, new.span)]
    similarity = _similarity(old.text, new.text)
    if not declared and similarity < SIMILARITY_THRESHOLD:
        message = (
            f"criterion {new.id}'s text has little in common with version {prev}'s "
            f"(similarity {similarity:.2f}), and no change is declared: id reused for a "
            "different criterion? A new criterion needs a new id"
        )
        return [Diagnostic("id-reused", message, new.span)]
    return []


def _similarity(a: str, b: str) -> float:
    """How alike two registry texts are, 0 to 1, ignoring case and line wrapping."""

    def norm(text: str) -> str:
        return " ".join(text.split()).casefold()

    return difflib.SequenceMatcher(None, norm(a), norm(b), autojunk=False).ratio()
