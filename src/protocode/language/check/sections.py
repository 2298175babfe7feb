"""The walk every optional section's pass shares: check each part of an entry on its own.

An entry (a schedule, an endpoint, a grading table) has several parts that can each be
wrong; each part is checked on its own, so one entry reports all its problems, and the
entry is dropped when any part failed. `SectionChecker` records the diagnostics; a part
signals its failure by raising `Rejected` once its diagnostic is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields
from typing import Any, get_args

from protocode.core.errors import CheckError, Diagnostic
from protocode.core.source import Span
from protocode.document.model import Name, RuleText
from protocode.language import ir
from protocode.language.check.results import CheckedProtocol
from protocode.language.check.rules import check_expression
from protocode.language.types import Type


class Rejected(Exception):  # noqa: N818 - a signal: the diagnostic is already recorded
    """This part of an entry has an error; stop checking it."""


class SectionChecker:
    """Diagnostics of one section's pass, and the checks its parts have in common."""

    def __init__(self, checked: CheckedProtocol) -> None:
        self.checked = checked
        self.items = checked.items
        self.diagnostics: list[Diagnostic] = []

    def fail(self, code: str, message: str, at: Span | Name | RuleText) -> Rejected:
        """Record a diagnostic at `at` (a span, a name or a whole text); the signal to raise."""
        span = at.span if isinstance(at, Name) else at.whole if isinstance(at, RuleText) else at
        self.diagnostics.append(Diagnostic(code, message, span))
        return Rejected()

    def attempt(self, *parts: Callable[[], Any]) -> list[Any]:
        """Each part's result, or None for a part that was rejected."""
        out: list[Any] = []
        for part in parts:
            try:
                out.append(part())
            except Rejected:
                out.append(None)
        return out

    def expression(self, text: RuleText, want: Type, message: Callable[[Type], str]) -> ir.Expr:
        """`text` checked in the protocol's names, of type `want`; else `message(its type)`."""
        try:
            node = check_expression(self.checked, text)
        except CheckError as exc:
            self.diagnostics.extend(exc.diagnostics)
            raise Rejected() from None
        if node.type != want:
            raise self.fail("type", message(node.type), node.span)
        return node


def facts(
    node: ir.Expr, definitions: Mapping[str, ir.Expr], seen: set[str] | None = None
) -> Iterator[ir.Fact]:
    """Every data item a checked expression reads directly or through definitions.

    Each definition is read once (`seen`): read at every use, definitions that each use
    the previous one several times took exponential time.
    """
    seen = set() if seen is None else seen
    if isinstance(node, ir.Fact):
        yield node
        return
    if isinstance(node, ir.DefRef):
        if node.name not in seen:
            seen.add(node.name)
            yield from facts(definitions[node.name], definitions, seen)
        return
    for f in fields(node):
        value = getattr(node, f.name)
        for child in value if isinstance(value, tuple) else (value,):
            if isinstance(child, ir.Window):
                yield from facts(child.anchor, definitions, seen)
            elif isinstance(child, _EXPRESSIONS):
                yield from facts(child, definitions, seen)


_EXPRESSIONS = get_args(ir.Expr)


def headline(description: str) -> str:
    """What an event is called in a derived row: its description up to a colon or the end of
    its first sentence ("Disease recurrence: blasts reappear ..." is a "Disease recurrence")."""
    text = " ".join(description.split())
    for end in (": ", ". "):
        text = text.split(end, 1)[0]
    return text.rstrip(".")
