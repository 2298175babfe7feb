"""Check stage: every section of a protocol, as one ordered tuple of named passes.

`check_protocol` runs `PASSES` in order. Each pass is a pure function from the protocol
checked so far to a new one with its section filled in, and the problems it found; all
problems of the file are raised at once, as one `CheckError` sorted by position. The passes
of the optional sections read the checked definitions, so they run only once the data
dictionary and the rules are clean: a broken definition would otherwise be reported again at
each of its uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from protocode.core.errors import CheckError, Diagnostic, unique
from protocode.document.model import Criterion, ProtocolDoc
from protocode.language.check.derived import check_derived_events
from protocode.language.check.dosing import check_schedules
from protocode.language.check.endpoints import check_endpoints
from protocode.language.check.grading import check_grading
from protocode.language.check.items import item_problems, item_type
from protocode.language.check.results import CheckedCriterion, CheckedProtocol
from protocode.language.check.rules import RuleChecker
from protocode.language.types import NUMBER, Type
from protocode.language.units import UnitError

# How much of a draft criterion's text its diagnostic quotes.
_DRAFT_TEXT_WIDTH = 60


@dataclass(frozen=True, slots=True)
class Pass:
    """One named step of the checker: the protocol so far -> (the protocol, its problems).

    A `gated` pass runs only when no ungated pass (the dictionary, the rules) found a problem.
    """

    name: str
    run: Callable[[CheckedProtocol], tuple[CheckedProtocol, list[Diagnostic]]]
    gated: bool = False


def check_items(checked: CheckedProtocol) -> tuple[CheckedProtocol, list[Diagnostic]]:
    """The data dictionary pass: every item's type, and contradictions inside an entry."""
    diagnostics: list[Diagnostic] = []
    types: dict[str, Type] = {}
    for item in checked.doc.data:
        try:
            types[item.name] = item_type(item)
        except UnitError as exc:
            diagnostics.append(Diagnostic("unit", f"item '{item.name}': {exc.message}", item.span))
            types[item.name] = NUMBER
    diagnostics += [d for item in checked.doc.data for d in item_problems(item)]
    items = {i.name: i for i in checked.doc.data}
    return replace(checked, items=items, item_types=types), diagnostics


def check_rules(checked: CheckedProtocol) -> tuple[CheckedProtocol, list[Diagnostic]]:
    """The rules pass: every definition (each after those it uses), then every criterion."""
    doc = checked.doc
    checker = RuleChecker(
        dict(checked.items), dict(checked.item_types), {d.name: d for d in doc.definitions}
    )
    checker.check_definitions()
    criteria = []
    attestations: list[str] = []
    for c in doc.criteria:
        criteria.append(_criterion(checker, c))
        if c.attestation is not None and c.attestation not in attestations:
            attestations.append(c.attestation)
    diagnostics = [_draft_problem(c) for c in doc.criteria if c.draft]
    diagnostics.extend(checker.diagnostics)
    result = replace(
        checked,
        definitions=dict(checker.checked),
        criteria=tuple(criteria),
        attestations=tuple(attestations),
    )
    return result, diagnostics


PASSES: tuple[Pass, ...] = (
    Pass("data dictionary", check_items),
    Pass("rules", check_rules),
    Pass("grading tables", check_grading, gated=True),
    Pass("derived events", check_derived_events, gated=True),
    Pass("endpoints", check_endpoints, gated=True),
    Pass("dosing", check_schedules, gated=True),
)
"""The checker's passes, in the order they run."""


def check_protocol(doc: ProtocolDoc) -> CheckedProtocol:
    """Run every pass over a protocol; raise all problems at once as one `CheckError`."""
    checked = CheckedProtocol(doc, {}, {}, {}, ())
    diagnostics: list[Diagnostic] = []
    # The sections read the dictionary and the definitions: after a problem there, they
    # would only repeat it at each use. Their own problems do not stop each other, so a
    # broken endpoint and a broken schedule are reported together.
    ungated_problems = False
    for p in PASSES:
        if p.gated and ungated_problems:
            break
        checked, found = p.run(checked)
        diagnostics += found
        ungated_problems = ungated_problems or (bool(found) and not p.gated)
    if diagnostics:
        raise CheckError(unique(diagnostics))
    return checked


def _draft_problem(c: Criterion) -> Diagnostic:
    """A draft criterion is not executable: say what it still needs."""
    text = " ".join(c.text.split())
    if len(text) > _DRAFT_TEXT_WIDTH:
        text = text[: _DRAFT_TEXT_WIDTH - 1].rstrip() + "…"
    if c.rule is None and c.attestation is None:
        message = f"criterion '{c.id}' is a draft without a rule (text: {text})"
    else:
        message = f"criterion '{c.id}' is still a draft; remove 'draft: true' once it is final"
    return Diagnostic("draft", message, c.span)


def _criterion(checker: RuleChecker, c: Criterion) -> CheckedCriterion:
    rule = checker.rule(c.rule) if c.rule is not None else None
    source = " ".join(c.rule.text.split()) if c.rule is not None else ""
    return CheckedCriterion(c.id, c.kind, c.text, c.span, rule, c.attestation, source)
