"""The check of an amendment's declared intents: every false or missing claim, located.

`check_claims(old, new)` is what ``protocode check`` runs on an amendment;
`claim_problems(report)` finds the same in a finished `DiffReport`. Each problem is a
diagnostic pointing into the amendment's file, with a witness patient where there is one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from protocode.amendments.semantic_diff import (
    CriterionDiff,
    DefinitionChange,
    DiffReport,
    criterion_diffs,
    definition_changes,
    jsonable,
    unreadable,
)
from protocode.backends.smt import Witness
from protocode.core.errors import Diagnostic
from protocode.screening import Protocol


def check_claims(old: Protocol, new: Protocol) -> list[Diagnostic]:
    """Every false or missing claim of amendment `new` of `old`, as diagnostics.

    A data item no one record can hold for both versions is reported instead: then no
    claim can be checked.
    """
    problems = unreadable(old, new)
    if problems:
        return problems
    criteria = criterion_diffs(old, new)
    return _claims(criteria, definition_changes(old, new), old.version, new)


def claim_problems(report: DiffReport) -> list[Diagnostic]:
    """One diagnostic per false or missing claim, with a witness, in the amendment's file."""
    return _claims(report.criteria, report.definitions, report.old_version, report.new_protocol)


def _claims(
    criteria: Iterable[CriterionDiff],
    definitions: Iterable[DefinitionChange],
    old_version: str,
    new: Protocol,
) -> list[Diagnostic]:
    out = []
    for c in (c for c in criteria if c.problem is not None):
        either = c.new if c.new is not None else c.old
        assert either is not None
        span = c.intent.span if c.intent is not None else either.span
        witness = contradiction(c)
        message = c.problem or ""
        if witness is not None:
            message += (
                f"; witness: {json.dumps(jsonable(witness.record), sort_keys=True)} "
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


def contradiction(c: CriterionDiff) -> Witness | None:
    """The witness that refutes the claim: a narrower one refutes "relaxed", and so on."""
    wanted = {"relaxed": "narrower", "tightened": "broader"}.get(
        c.intent.intent if c.intent else ""
    )
    for w in c.comparison.witnesses:
        if wanted is None or w.direction == wanted:
            return w
    return None
