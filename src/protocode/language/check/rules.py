"""Checking definitions and rules: each definition once, after those it uses, within bounds.

`RuleChecker` walks the definitions a rule names depth-first with an explicit stack, so a
long chain of definitions costs no Python stack, and reports a cycle once where it closes.
`check_rule` and `check_expression` check one standalone rule or expression.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import fields
from typing import Any, get_args

from protocode.core.errors import CheckError, Diagnostic, ProtocodeError, unique
from protocode.document.model import DataItem, Definition, RuleText
from protocode.language import ir
from protocode.language.check.comparisons import ComparisonChecker
from protocode.language.check.expressions import (
    DependentRule,
    RuleError,
    chain_text,
    fail,
    scale,
)
from protocode.language.check.items import item_type
from protocode.language.check.results import CheckedProtocol
from protocode.language.syntax import ast, parse_rule
from protocode.language.types import BOOL, NumType, Type
from protocode.language.units import UnitError, conversion_factor, parse_unit

# How deep a rule may nest counting the definitions it uses (`ir.nesting`). Realistic rules
# stay far below (the seed protocol's deepest is under 20); at this bound the deepest
# recursion of any stage, the traced closures at two frames a level, stays well inside
# Python's default limit of 1,000 frames.
MAX_NESTING = 256


class RuleChecker(ComparisonChecker):
    """Checks rules against one protocol's data dictionary and definitions.

    Definitions are checked once each, every one after the definitions it uses (found by
    an iterative walk of their syntax trees), so checking a rule never recurses into
    another definition: a long chain of definitions costs no Python stack.
    """

    # ---- entry points

    def rule(self, text: RuleText, want: Type | None = BOOL) -> ir.Expr | None:
        """Check one rule; record a diagnostic and return None if it is wrong."""
        tree = self._parse(text)
        if tree is None:
            return None
        self._prepare(names_in(tree))
        node = self._lower(tree, want)
        return node if node is not None and self._bounded(node, "the rule") else None

    def check_definitions(self) -> None:
        """Check every definition (in file order, each after the definitions it uses)."""
        self._prepare(self.definitions)

    def seed(self, checked: dict[str, ir.Expr]) -> None:
        """Take a checked protocol's definitions as they are, instead of checking them again."""
        for name in ir.definition_order(checked):
            self.attempted.add(name)
            self.checked[name] = checked[name]
            self._measure(name)

    def _parse(self, text: RuleText) -> ast.Expr | None:
        try:
            return parse_rule(text)
        except ProtocodeError as exc:
            self.diagnostics.extend(exc.diagnostics)
            return None

    def _lower(self, tree: ast.Expr, want: Type | None) -> ir.Expr | None:
        """`tree` as IR, or None with its problem recorded (one per rule)."""
        try:
            node = self.expr(tree)
            if want is not None and node.type != want:
                raise fail(
                    "type",
                    f"a criterion must be true or false, but this rule is a {node.type}",
                    node.span,
                )
            return node
        except ProtocodeError as exc:
            self.diagnostics.extend(exc.diagnostics)
        except RuleError as exc:
            self.diagnostics.append(exc.diagnostic)
        except DependentRule:
            pass
        return None

    def _prepare(self, roots: Iterable[str]) -> None:
        """Check the definitions `roots` name, and those they use, each after its own uses.

        A depth-first walk with an explicit stack; a name met again while it is still on
        the stack closes a cycle, which `_name` reports when the definition is checked.
        """
        stack: list[tuple[str, Iterator[str]]] = []
        on_stack: dict[str, int] = {}

        def push(name: str) -> None:
            if name not in self.parsed:
                self.parsed[name] = self._parse(self.definitions[name].rule)
            tree = self.parsed[name]
            on_stack[name] = len(stack)
            stack.append((name, iter(names_in(tree) if tree is not None else ())))

        for root in roots:
            if root not in self.definitions or root in self.attempted or root in on_stack:
                continue
            push(root)
            while stack:
                name, pending = stack[-1]
                for used in pending:
                    if used not in self.definitions or used in self.attempted:
                        continue
                    if used in on_stack:
                        cycle = [n for n, _ in stack[on_stack[used] :]]
                        self.back_edges.setdefault((name, used), cycle)
                        continue
                    push(used)
                    break
                else:
                    stack.pop()
                    del on_stack[name]
                    self._define(name)

    def _define(self, name: str) -> None:
        """Check one definition whose uses are all checked (or failed) already."""
        self.attempted.add(name)
        tree = self.parsed[name]
        if tree is None:
            return
        d = self.definitions[name]
        self.current = name
        try:
            node = self._lower(tree, None)
        finally:
            self.current = None
        if node is not None and d.unit is not None:
            node = self._declare_unit(node, d)
        if node is None or not self._bounded(node, f"definition '{name}'"):
            return
        self.checked[name] = node
        self._measure(name)

    def _measure(self, name: str) -> None:
        depth, via = ir.nesting(self.checked[name], self.depths)
        self.depths[name] = depth
        if via is not None:
            self.deepest[name] = via.name

    def _bounded(self, node: ir.Expr, owner: str) -> bool:
        """Whether `node` nests at most `MAX_NESTING` deep counting its definitions; if not,
        the problem is recorded at the reference that goes deepest.

        Every later stage (the closures and their traces, explanations, the SMT encoding)
        follows definitions recursively; this bound keeps all of them within Python's stack.
        """
        depth, via = ir.nesting(node, self.depths)
        if depth <= MAX_NESTING:
            return True
        chain = [via.name] if via is not None else []
        while chain and chain[-1] in self.deepest and len(chain) <= len(self.deepest):
            chain.append(self.deepest[chain[-1]])
        through = f" (through {chain_text(chain)})" if chain else ""
        message = (
            f"{owner} nests {depth} levels deep counting the definitions it uses{through}, "
            f"at most {MAX_NESTING}; compute it in fewer steps, with flatter definitions"
        )
        self.diagnostics.append(
            Diagnostic("too-deep", message, via.span if via is not None else node.span)
        )
        return False

    def _declare_unit(self, node: ir.Expr, d: Definition) -> ir.Expr | None:
        span = d.unit_span or d.span
        try:
            unit = parse_unit(d.unit or "1")
            if not isinstance(node.type, NumType):
                raise fail("type", f"'{d.name}' has a unit but is a {node.type}", span)
            if node.type.unit.convertible(unit):
                return scale(node, conversion_factor(node.type.unit, unit), NumType(unit))
            if node.type.unit.dimensionless:
                # Empirical formulas (Cockcroft-Gault) compute a plain number that the
                # definition declares to be in a unit.
                return scale(node, node.type.unit.factor, NumType(unit))
            raise fail(
                "unit",
                f"'{d.name}' computes a {node.type.unit.describe_dimension()} "
                f"({node.type.unit.text}) but declares {unit.text} "
                f"({unit.describe_dimension()})",
                span,
            )
        except UnitError as exc:
            self.diagnostics.append(Diagnostic("unit", exc.message, span))
        except RuleError as exc:
            self.diagnostics.append(exc.diagnostic)
        return None

    # ---- expressions


def names_in(tree: ast.Expr) -> Iterator[str]:
    """Every name a rule's syntax tree mentions (window anchors too), in source order."""
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name):
            yield node.name
            continue
        if isinstance(node, ast.Window):
            yield node.anchor
            continue
        parts: list[Any] = []
        for f in fields(node):
            value = getattr(node, f.name)
            parts += value if isinstance(value, tuple) else [value]
        stack.extend(reversed([p for p in parts if isinstance(p, _SYNTAX)]))


_SYNTAX = (*get_args(ast.Expr), ast.Window)


def check_rule(
    text: RuleText,
    items: Iterable[DataItem],
    definitions: Iterable[Definition] = (),
) -> ir.Expr:
    """Check one standalone boolean rule against a data dictionary (API and tests)."""
    item_map = {i.name: i for i in items}
    checker = RuleChecker(
        item_map, {k: item_type(v) for k, v in item_map.items()}, {d.name: d for d in definitions}
    )
    node = checker.rule(text)
    if node is None:
        raise CheckError(checker.diagnostics)
    return node


def check_expression(checked: CheckedProtocol, text: RuleText) -> ir.Expr:
    """Check one expression of any type in a checked protocol's names (e.g. a dosing start).

    Raises `CheckError` with every problem of the expression.
    """
    definitions = {d.name: d for d in checked.doc.definitions}
    checker = RuleChecker(checked.items, checked.item_types, definitions)
    checker.seed(checked.definitions)
    node = checker.rule(text, want=None)
    if node is None:
        raise CheckError(unique(checker.diagnostics))
    return node
