"""The derived events pass: each alternative names an observation, event or grade, correctly.

A derived event (relapse from blast counts) occurs on the first date one of its alternatives
holds. An observation alternative's condition is checked as the rule ``latest ITEM
<condition>``, so its types and units are the rule language's; a grade alternative names a
checked grading table and one of its grades.
"""

from __future__ import annotations

from dataclasses import replace

from protocode.core.errors import CheckError, Diagnostic, did_you_mean, unique
from protocode.document.model import DerivedClause, DerivedEvent, RuleText
from protocode.language import ir
from protocode.language.check.expressions import article
from protocode.language.check.results import CheckedClause, CheckedDerivedEvent, CheckedProtocol
from protocode.language.check.rules import check_expression
from protocode.language.check.sections import Rejected, SectionChecker
from protocode.language.types import BOOL


class ClauseChecker(SectionChecker):
    """Checks the alternatives of derived events (and the response of a proportion)."""

    def derived_event(self, d: DerivedEvent) -> CheckedDerivedEvent | None:
        """The checked derived event, or None with its problems recorded."""
        if d.id in self.items:
            message = f"derived event '{d.id}' has the name of a data item; rename one of them"
            self.diagnostics.append(Diagnostic("name", message, d.span))
            return None
        clauses: list[CheckedClause] = []
        for clause in d.when:
            try:
                clauses.append(self.clause(clause))
            except Rejected:
                continue
        return CheckedDerivedEvent(d, tuple(clauses)) if len(clauses) == len(d.when) else None

    def grade(self, clause: DerivedClause) -> CheckedClause:
        """A grade alternative: a checked table and one of its grades."""
        name, at_least = clause.item, clause.at_least
        assert at_least is not None
        table = self.checked.tables.get(name.text)
        if table is None:
            table_ids = {t.id for t in self.checked.doc.grading}
            if name.text in table_ids:
                raise Rejected()  # the table's own errors are already recorded
            hint = did_you_mean(name.text, sorted(table_ids))
            raise self.fail("name", f"unknown grading table '{name.text}'{hint}", name)
        level = at_least.text.strip()
        if level not in table.grades:
            hint = did_you_mean(level, list(table.grades))
            grades = ", ".join(table.grades)
            message = f"'{level}' is not a grade of table {table.id} ({grades}){hint}"
            raise self.fail("grading", message, at_least)
        return CheckedClause(table.id, "grade", f">= {level}", None, table, table.rank(level))

    def clause(self, clause: DerivedClause) -> CheckedClause:
        """One alternative of a derived event."""
        if clause.at_least is not None:
            return self.grade(clause)
        name = clause.item
        item = self.items.get(name.text)
        if item is None:
            choices = [n for n, i in self.items.items() if i.kind in ("observation", "event")]
            hint = did_you_mean(name.text, choices)
            message = f"unknown observation or event item '{name.text}' in a derived event{hint}"
            raise self.fail("name", message, name)
        if item.kind == "event":
            if clause.condition is not None:
                message = (
                    f"'{name.text}' is an event item: its occurrence is the event, "
                    "so it takes no condition"
                )
                raise self.fail("condition", message, clause.condition)
            return CheckedClause(name.text, "event", None, None)
        if item.kind != "observation":
            message = (
                f"a derived event reads observation or event items, but '{name.text}' is "
                f"{article(item.kind)}"
            )
            raise self.fail("kind", message, name)
        if clause.condition is None:
            message = (
                f"'{name.text}' is an observation item: give a condition on its value, "
                'e.g. condition: ">= 5 %"'
            )
            raise self.fail("condition", message, name)
        return self.condition(name.text, clause.condition)

    def condition(self, item: str, condition: RuleText) -> CheckedClause:
        """A condition on one observation's value, as the rule ``latest ITEM <condition>``."""
        # Checked over a series holding only that observation, the rule's types and units
        # are the rule language's.
        prefix = f"latest {item} "
        start = condition.offsets[0]
        text = RuleText(
            prefix + condition.text,
            condition.source,
            (start,) * len(prefix) + condition.offsets,
        )
        try:
            node = check_expression(self.checked, text)
        except CheckError as exc:
            self.diagnostics.extend(exc.diagnostics)
            raise Rejected() from None
        reads = list(_reads(node))
        own = [r for r in reads if isinstance(r, ir.Select) and r.item == item and not r.window]
        if (
            node.type != BOOL
            or not isinstance(node, ir.Compare | ir.RefCompare | ir.Member)
            or len(own) != 1
            or len(reads) != 1
        ):
            message = (
                f"a condition compares the value of '{item}' with a constant "
                f"(e.g. '>= 5 %', '== \"present\"', 'in {{a, b}}'), not '{condition.text}'"
            )
            raise self.fail("condition", message, condition)
        return CheckedClause(item, "observation", condition.text.strip(), node)


def _reads(node: ir.Expr) -> list[ir.Expr]:
    """The nodes of an IR expression that read data (items, definitions, events)."""
    out: list[ir.Expr] = []
    stack: list[ir.Expr] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ir.Fact | ir.DefRef | ir.Select | ir.Events):
            out.append(current)
        stack.extend(ir.children(current))
    return out


def check_derived_events(checked: CheckedProtocol) -> tuple[CheckedProtocol, list[Diagnostic]]:
    """The derived events pass: the protocol with its checked derived events, and every problem."""
    checker = ClauseChecker(checked)
    derived: dict[str, CheckedDerivedEvent] = {}
    for d in checked.doc.derived_events:
        result = checker.derived_event(d)
        if result is not None:
            derived[d.id] = result
    return replace(checked, derived_events=derived), unique(checker.diagnostics)
