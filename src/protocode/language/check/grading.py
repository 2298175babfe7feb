"""The grading tables pass: decision tables grading one assessment (MAGIC aGVHD, NIH cGVHD).

A table's input columns read observation items with finitely many values (integers between a
minimum and a maximum, codes, booleans), directly or through an aggregate (the `max` or `min`
of several items, the `count` of those meeting a condition). A row gives its grade when every
one of its cells holds; the hit policy says what several matching rows mean (`first`: the
first one grades; `unique`: at most one may match; `any`: they must agree).

Every domain is finite, so the checker decides completeness and ambiguity exactly, by walking
every combination of values the items can take, and names a missing or overlapping
combination rather than saying "incomplete". A solver would add nothing for tables this size
(the NIH table's 8 organ scores make 65,536 combinations) and could not list the misses as
plainly.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any, Literal

from protocode.core.errors import Diagnostic, RuleSyntaxError, did_you_mean
from protocode.core.source import Span
from protocode.document.model import DataItem, GradingTable, Name, RuleText, TableInput
from protocode.language.check.expressions import article
from protocode.language.check.results import CheckedProtocol
from protocode.language.check.sections import Rejected
from protocode.language.check.tables import CheckedInput, CheckedTable, Value
from protocode.language.syntax import ast
from protocode.language.syntax.parser import parse_rule

MAX_COMBINATIONS = 1_000_000
"""The most item-value combinations a table may have; beyond, the check would take minutes."""
_MAX_RANGE = 1_000
"""The widest integer range an input item may span."""

_COMPARE: dict[str, Callable[[Fraction, Fraction], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_CONDITION_STARTS = ("<", ">", "=", "!", "≤", "≥", "≠", "between ", "in ", "in{", "not ")


def _show(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else str(value)
    return value


Cell = frozenset[Value]
"""The values of a column for which a cell holds."""


class _TableChecker:
    def __init__(self, table: GradingTable, items: Mapping[str, DataItem]) -> None:
        self.table = table
        self.items = items
        self.diagnostics: list[Diagnostic] = []

    def fail(self, code: str, message: str, span: Span) -> Rejected:
        self.diagnostics.append(Diagnostic(code, message, span))
        return Rejected()

    # --- inputs -------------------------------------------------------------------------

    def domain(self, name: Name) -> tuple[Value, ...]:
        item = self.items.get(name.text)
        if item is None:
            choices = [n for n, i in self.items.items() if i.kind == "observation"]
            hint = did_you_mean(name.text, choices)
            message = f"unknown observation item '{name.text}' in grading table {self.table.id}"
            raise self.fail("name", message + hint, name.span)
        if item.kind != "observation":
            message = (
                f"a grading table reads observation items, but '{name.text}' is "
                f"{article(item.kind)}"
            )
            raise self.fail("kind", message, name.span)
        if item.type == "boolean":
            return (False, True)
        if item.type == "code":
            return item.values
        if item.type == "integer" and item.minimum is not None and item.maximum is not None:
            low, high = Fraction(item.minimum), Fraction(item.maximum)
            first, last = -((-low.numerator) // low.denominator), high.numerator // high.denominator
            if last - first < _MAX_RANGE:
                return tuple(Fraction(n) for n in range(first, last + 1))
        message = (
            f"grading input '{name.text}' needs finitely many values: an integer item with a "
            f"minimum and a maximum at most {_MAX_RANGE} apart, a code or a boolean"
        )
        raise self.fail("grading", message, name.span)

    def input(self, spec: TableInput) -> tuple[CheckedInput, dict[str, tuple[Value, ...]], Cell]:
        """The checked input, its items' domains and the column's possible values."""
        domains: dict[str, tuple[Value, ...]] = {}
        failed = False
        for name in spec.items:
            try:
                domains[name.text] = self.domain(name)
            except Rejected:
                failed = True
        if failed:
            raise Rejected()
        column = spec.column.text
        if spec.aggregate is None:
            only = next(iter(domains.values()))
            return CheckedInput(column, tuple(domains), None, None), domains, frozenset(only)
        if spec.aggregate == "count":
            assert spec.where is not None, "the schema requires 'where' with 'count'"
            wheres = [self.cell(column, spec.where, frozenset(d)) for d in domains.values()]
            counted = frozenset().union(*wheres)
            column_domain = frozenset(Fraction(n) for n in range(len(domains) + 1))
            return (
                CheckedInput(column, tuple(domains), "count", counted),
                domains,
                column_domain,
            )
        for name in spec.items:
            if not all(isinstance(v, Fraction) for v in domains[name.text]):
                message = f"{spec.aggregate} reads integer items, and '{name.text}' is not one"
                raise self.fail("grading", message, name.span)
        union = frozenset(itertools.chain.from_iterable(domains.values()))
        return CheckedInput(column, tuple(domains), spec.aggregate, None), domains, union

    # --- cells --------------------------------------------------------------------------

    def cell(self, column: str, text: RuleText, domain: Cell) -> Cell:
        """The values of `domain` for which the cell holds."""
        expression = self.expression(column, text)
        kind = _kind(domain)
        return frozenset(v for v in domain if self.holds(expression, v, kind, domain, text))

    def expression(self, column: str, text: RuleText) -> ast.Expr:
        stripped = text.text.strip()
        lead = len(text.text) - len(text.text.lstrip())
        start, end = text.offsets[lead], text.offsets[lead + len(stripped)]
        offsets = text.offsets[lead : lead + len(stripped)]
        if stripped.startswith(_CONDITION_STARTS):
            prefix, suffix = f"{column} ", ""
        elif _is_literal(stripped):
            prefix, suffix = f"{column} == ", ""
        else:
            prefix, suffix = f'{column} == "', '"'
        rule = RuleText(
            prefix + stripped + suffix,
            text.source,
            (start,) * len(prefix) + offsets + (end,) * len(suffix) + (end,),
        )
        try:
            return parse_rule(rule)
        except RuleSyntaxError as exc:
            self.diagnostics.extend(exc.diagnostics)
            raise Rejected() from None

    def holds(self, node: ast.Expr, value: Value, kind: str, domain: Cell, text: RuleText) -> bool:
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name):
            other = self.constant(node.right, kind, domain)
            if node.op in ("==", "!="):
                return (value == other) == (node.op == "==")
            if kind != "integer":
                raise self.fail("grading", f"'{node.op}' compares numbers, not codes", node.span)
            assert isinstance(value, Fraction) and isinstance(other, Fraction)
            return _COMPARE[node.op](value, other)
        if isinstance(node, ast.Between) and isinstance(node.operand, ast.Name):
            low = self.constant(node.low, kind, domain)
            high = self.constant(node.high, kind, domain)
            if kind != "integer":
                raise self.fail("grading", "'between' compares numbers, not codes", node.span)
            assert isinstance(value, Fraction)
            assert isinstance(low, Fraction) and isinstance(high, Fraction)
            return low <= value <= high
        if isinstance(node, ast.Member) and isinstance(node.operand, ast.Name):
            members = {self.constant(item, kind, domain) for item in node.items}
            return (value in members) != node.negated
        message = (
            "a cell is a condition on its column's value ('>= 2', 'between 1 and 2', "
            f"'in {{1, 2}}', '== \"present\"'), a single value or '-', not '{text.text.strip()}'"
        )
        raise self.fail("grading", message, text.whole)

    def constant(self, node: ast.Expr, kind: str, domain: Cell) -> Value:
        value: Value
        if (
            (isinstance(node, ast.Number) and kind == "integer")
            or (isinstance(node, ast.String) and kind == "code")
            or (isinstance(node, ast.Bool) and kind == "boolean")
        ):
            value = node.value
        else:
            expected = {"integer": "a number", "code": "a quoted code", "boolean": "true or false"}
            message = f"this column's values are {kind}s: expected {expected[kind]}"
            raise self.fail("type", message, node.span)
        if kind == "code" and value not in domain:
            codes = ", ".join(sorted(_show(v) for v in domain))
            hint = did_you_mean(str(value), [str(v) for v in domain])
            message = f"'{_show(value)}' is not one of this column's codes ({codes}){hint}"
            raise self.fail("value", message, node.span)
        return value

    # --- the table ----------------------------------------------------------------------

    def check(self) -> CheckedTable | None:
        table = self.table
        grades = tuple(g.text.strip() for g in table.grades)
        inputs: list[CheckedInput] = []
        domains: dict[str, tuple[Value, ...]] = {}
        columns: dict[str, Cell] = {}
        for spec in table.inputs:
            try:
                checked, item_domains, column_domain = self.input(spec)
            except Rejected:
                continue
            inputs.append(checked)
            domains.update(item_domains)
            columns[spec.column.text] = column_domain
        rows = [self.row(i, columns, grades) for i in range(len(table.rows))]
        if self.diagnostics or len(inputs) < len(table.inputs):
            return None
        groups = _groups(inputs)
        size = max(_size(inputs, group, domains) for group in groups)
        if size > MAX_COMBINATIONS:
            message = (
                f"grading table {table.id} has inputs whose items take {size:,} combinations "
                f"of values together, more than the {MAX_COMBINATIONS:,} the checker walks"
            )
            self.fail("grading", message, table.span)
            return None
        items = tuple(domains)
        reachable = _column_tuples(inputs, groups, domains)
        winners = self.decide(reachable, [r for r in rows if r is not None], grades)
        if winners is None:
            return None
        return CheckedTable(table, grades, tuple(inputs), items, domains, winners)

    def row(
        self, index: int, columns: Mapping[str, Cell], grades: tuple[str, ...]
    ) -> tuple[dict[str, Cell], str] | None:
        row = self.table.rows[index]
        cells: dict[str, Cell] = {}
        failed = False
        grade = row.grade.text.strip()
        if grade not in grades:
            hint = did_you_mean(grade, list(grades))
            message = f"'{grade}' is not a grade of table {self.table.id} ({', '.join(grades)})"
            self.fail("grading", message + hint, row.grade.whole)
            failed = True
        for name, text in row.cells:
            domain = columns.get(name.text)
            if domain is None:
                if name.text not in {i.column.text for i in self.table.inputs}:
                    hint = did_you_mean(name.text, [i.column.text for i in self.table.inputs])
                    message = f"unknown column '{name.text}' of grading table {self.table.id}"
                    self.fail("name", message + hint, name.span)
                failed = True
                continue
            try:
                cells[name.text] = self.cell(name.text, text, domain)
            except Rejected:
                failed = True
        return None if failed else (cells, grade)

    def decide(
        self,
        reachable: Iterable[tuple[Value, ...]],
        rows: Sequence[tuple[dict[str, Cell], str]],
        grades: tuple[str, ...],
    ) -> dict[tuple[Value, ...], str] | None:
        table = self.table
        names = [i.column.text for i in table.inputs]
        missing: list[tuple[Value, ...]] = []
        used: set[int] = set()
        winners: dict[tuple[Value, ...], str] = {}
        for values in sorted(reachable, key=_order):
            column_values = dict(zip(names, values, strict=True))
            matching = [
                i
                for i, (cells, _) in enumerate(rows)
                if all(column_values[c] in cell for c, cell in cells.items())
            ]
            if not matching:
                missing.append(values)
                continue
            if table.hit == "first":
                used.add(matching[0])
            else:
                used.update(matching)
                clash = self.clash(matching, rows, values, names)
                if clash:
                    return None
            winners[values] = rows[matching[0]][1]
        if missing:
            others = len(missing) - 1
            more = f" (and {others} more combination{'s' if others > 1 else ''})" if others else ""
            message = (
                f"grading table {table.id} gives no grade for "
                f"{_combination(names, missing[0])}{more}"
            )
            self.fail("incomplete", message, table.span)
        for index in range(len(rows)):
            if index not in used:
                why = (
                    "earlier rows grade every combination it matches"
                    if table.hit == "first"
                    else "it matches no combination of values"
                )
                message = f"row {index + 1} of grading table {table.id} never applies: {why}"
                self.fail("unused-row", message, table.rows[index].span)
        return None if self.diagnostics else winners

    def clash(
        self,
        matching: list[int],
        rows: Sequence[tuple[dict[str, Cell], str]],
        values: tuple[Value, ...],
        names: list[str],
    ) -> bool:
        first = matching[0]
        for other in matching[1:]:
            if self.table.hit == "any" and rows[other][1] == rows[first][1]:
                continue
            grades = f"{rows[first][1]} and {rows[other][1]}"
            policy = (
                "hit policy unique: at most one row may match"
                if self.table.hit == "unique"
                else f"hit policy any: matching rows must agree, and these give {grades}"
            )
            message = (
                f"rows {first + 1} and {other + 1} of grading table {self.table.id} both match "
                f"{_combination(names, values)} ({policy})"
            )
            self.fail("ambiguous", message, self.table.rows[other].span)
            return True
        return False


def _kind(domain: Cell) -> Literal["integer", "code", "boolean"]:
    sample = next(iter(domain))
    if isinstance(sample, bool):
        return "boolean"
    return "code" if isinstance(sample, str) else "integer"


def _is_literal(text: str) -> bool:
    if text in ("true", "false") or text[:1] in "\"'":
        return True
    try:
        Fraction(text)
    except ValueError:
        return False
    return True


def _order(values: tuple[Value, ...]) -> tuple[tuple[int, str, Fraction], ...]:
    """A sort key mixing numbers, codes and booleans: missing combinations come in order."""
    return tuple(
        (0, "", v) if isinstance(v, Fraction) else (1, str(v), Fraction(0)) for v in values
    )


def _combination(names: Sequence[str], values: Sequence[Value]) -> str:
    return ", ".join(f"{n} = {_show(v)}" for n, v in zip(names, values, strict=True))


def _groups(inputs: Sequence[CheckedInput]) -> list[list[int]]:
    """The inputs linked by shared items, as lists of input positions.

    Inputs that share no item vary independently, so each group is enumerated on its own: the
    NIH table's lung score and its 7 other organs make 4 + 16,384 cases, not 65,536.
    """
    groups: list[tuple[set[str], list[int]]] = []
    for index, checked in enumerate(inputs):
        items, members = set(checked.items), [index]
        for group in [g for g in groups if g[0] & items]:
            groups.remove(group)
            items |= group[0]
            members += group[1]
        groups.append((items, sorted(members)))
    return [members for _, members in groups]


def _group_items(inputs: Sequence[CheckedInput], group: Sequence[int]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for k in group for item in inputs[k].items))


def _size(
    inputs: Sequence[CheckedInput], group: Sequence[int], domains: Mapping[str, tuple[Value, ...]]
) -> int:
    """How many item-value combinations a group of inputs has."""
    size = 1
    for item in _group_items(inputs, group):
        size *= len(domains[item])
    return size


def _group_values(
    inputs: Sequence[CheckedInput],
    group: Sequence[int],
    domains: Mapping[str, tuple[Value, ...]],
) -> set[tuple[Value, ...]]:
    """Every tuple of a group's column values, item by item.

    Enumerating every combination of item values costs the product of the domains (tens of
    thousands for the seed's tables, on every load); a column's value depends on the items
    read so far only through its running count, maximum or minimum, so the distinct partial
    tuples stay few.
    """
    states: set[tuple[Any, ...]] = {tuple(None for _ in group)}
    for item in _group_items(inputs, group):
        states = {
            tuple(inputs[k].step(acc, item, value) for k, acc in zip(group, state, strict=True))
            for state in states
            for value in domains[item]
        }
    return {
        tuple(inputs[k].finish(acc) for k, acc in zip(group, state, strict=True))
        for state in states
    }


def _column_tuples(
    inputs: Sequence[CheckedInput],
    groups: Sequence[Sequence[int]],
    domains: Mapping[str, tuple[Value, ...]],
) -> set[tuple[Value, ...]]:
    """Every tuple of column values some combination of item values produces."""
    per_group = [_group_values(inputs, group, domains) for group in groups]
    out: set[tuple[Value, ...]] = set()
    for parts in itertools.product(*per_group):
        values: list[Value] = [False] * len(inputs)
        for group, part in zip(groups, parts, strict=True):
            for k, value in zip(group, part, strict=True):
                values[k] = value
        out.add(tuple(values))
    return out


def check_tables(
    tables: Sequence[GradingTable], items: Mapping[str, DataItem]
) -> tuple[dict[str, CheckedTable], list[Diagnostic]]:
    """Check grading tables against the data dictionary: the checked ones, and every problem."""
    checked: dict[str, CheckedTable] = {}
    diagnostics: list[Diagnostic] = []
    for table in tables:
        checker = _TableChecker(table, items)
        result = checker.check()
        diagnostics.extend(checker.diagnostics)
        if result is not None:
            checked[table.id] = result
    return checked, diagnostics


def check_grading(checked: CheckedProtocol) -> tuple[CheckedProtocol, list[Diagnostic]]:
    """The grading tables pass: the protocol with its checked tables, and every problem."""
    tables, diagnostics = check_tables(checked.doc.grading, checked.items)
    return replace(checked, tables=tables), diagnostics
