"""Lowering of comparisons: units converted to the data's, codes validated, sets and ranges.

`ComparisonChecker` adds the comparison nodes (`<`, `between`, `in`, `ULN`) to
`ExpressionChecker`'s dispatch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from protocode.core.errors import did_you_mean
from protocode.core.source import Span
from protocode.document.model import DataItem, Quantity
from protocode.language import ir
from protocode.language.check.expressions import (
    ExpressionChecker,
    exact,
    fail,
    same_plainness,
    scale,
)
from protocode.language.syntax import ast
from protocode.language.types import BoolType, CodeType, DateType, NumType, TextType
from protocode.language.units import UnitError, conversion_factor, parse_unit, unit_mismatch


class ComparisonChecker(ExpressionChecker):
    """An `ExpressionChecker` that also lowers comparisons, ranges and set membership."""

    def _handlers(self) -> dict[type[Any], Callable[[Any], ir.Expr]]:
        """The expression handlers, and the comparisons'."""
        return {
            **super()._handlers(),
            ast.Compare: self._compare,
            ast.RefCompare: self._ref_compare,
            ast.Between: self._between,
            ast.Member: self._member,
        }

    def _comparable(
        self, left: ir.Expr, right: ir.Expr, op: str, span: Span, unit_span: Span | None = None
    ) -> ir.Expr:
        """`right` made comparable with `left` (units converted, codes validated).

        Type errors point at `span` (the operator); unit errors at `unit_span`, the operand
        whose unit does not fit, when given.
        """
        lt, rt = left.type, right.type
        ordered = op not in {"==", "!="}
        if isinstance(lt, NumType) and isinstance(rt, NumType):
            same_plainness(lt.unit, rt.unit, unit_span or span, left, right)
            molar_mass = self._molar_mass(left) or self._molar_mass(right)
            try:
                return scale(right, conversion_factor(rt.unit, lt.unit, molar_mass), lt)
            except UnitError:
                # Mass meets amount of substance through the measured item's molar mass.
                message = unit_mismatch(lt.unit, rt.unit, self._substance(left, right))
                raise fail("unit", message, unit_span or span) from None
        if isinstance(lt, DateType) and isinstance(rt, DateType):
            return right
        if ordered:
            raise fail("type", f"'{op}' needs numbers, quantities or dates, not a {lt}", span)
        if isinstance(lt, CodeType) and isinstance(rt, TextType | CodeType):
            self._valid_codes(lt, right)
            return right
        if isinstance(rt, CodeType) and isinstance(lt, TextType):
            self._valid_codes(rt, left)
            return right
        if type(lt) is type(rt) and isinstance(lt, BoolType | TextType):
            return right
        raise fail("type", f"cannot compare a {lt} with a {rt}", span)

    def _molar_mass(self, node: ir.Expr) -> Fraction | None:
        """The molar mass (g/mol) of the substance an item measures, for mass ↔ amount."""
        item = self._substance(node)
        q = self.items[item].molar_mass if item is not None else None
        return Fraction(q.value) if q is not None else None

    def _substance(self, *nodes: ir.Expr) -> str | None:
        """The data item the first of `nodes` that reads one measures, if any."""
        for node in map(self._through_names, nodes):
            if isinstance(node, ir.Select | ir.Fact):
                return node.item
        return None

    def _valid_codes(self, code: CodeType, node: ir.Expr) -> None:
        if isinstance(node, ir.Const) and node.value not in code.values:
            raise fail(
                "code",
                f"{node.value!r} is not one of {', '.join(code.values)}"
                f"{did_you_mean(str(node.value), code.values)}",
                node.span,
            )

    def _compare(self, n: ast.Compare) -> ir.Expr:
        left, right = self.expr(n.left), self.expr(n.right)
        if isinstance(left, ir.Const) and not isinstance(right, ir.Const):
            # Keep the data on the left so literals are converted to the data's unit.
            converted = self._comparable(right, left, n.op, n.op_span, left.span)
            return ir.Compare(_FLIP[n.op], right, converted, n.span)
        converted = self._comparable(left, right, n.op, n.op_span, right.span)
        return ir.Compare(n.op, left, converted, n.span)

    def _ref_compare(self, n: ast.RefCompare) -> ir.Expr:
        left = self.expr(n.left)
        select = self._select_of(left)
        if select is None:
            raise fail(
                "type",
                f"{n.limit} is the reference limit of an observation; the left side must "
                "be 'latest <observation> …' (or a definition that is one)",
                n.limit_span,
            )
        item = self.items[select.item]
        default = item.uln if n.limit == "ULN" else item.lln
        return ir.RefCompare(
            n.op,
            select,
            n.factor,
            n.limit,
            self._item_quantity(default, item) if default else None,
            n.span,
        )

    def _select_of(self, node: ir.Expr) -> ir.Select | None:
        node = self._through_names(node)
        return node if isinstance(node, ir.Select) else None

    def _through_names(self, node: ir.Expr) -> ir.Expr:
        """What a definition that only names another one (`scr2: scr`) stands for."""
        while isinstance(node, ir.DefRef):
            node = self.checked[node.name]
        return node

    def _item_quantity(self, q: Quantity, item: DataItem) -> ir.Magnitude | None:
        """A dictionary quantity (e.g. `uln: 40 U/L`) in the item's unit."""
        unit = self._unit(q.unit, q.span)
        try:
            item_unit = parse_unit(item.unit or "1")
        except UnitError:
            return None  # the item's own unit error, reported once by `check_protocol`
        try:
            factor = conversion_factor(unit, item_unit)
        except UnitError as exc:
            raise fail("unit", exc.message, q.span) from None
        return exact(Fraction(q.value) * factor)

    def _between(self, n: ast.Between) -> ir.Expr:
        x, low, high = self.expr(n.operand), self.expr(n.low), self.expr(n.high)
        low = self._comparable(x, low, ">=", n.low.span)
        high = self._comparable(x, high, "<=", n.high.span)
        if isinstance(low, ir.Const) and isinstance(high, ir.Const) and _above(low, high):
            raise fail("type", "the range is empty: the lower bound is above the upper", n.span)
        return ir.And(ir.Compare(">=", x, low, n.span), ir.Compare("<=", x, high, n.span), n.span)

    def _member(self, n: ast.Member) -> ir.Expr:
        x = self.expr(n.operand)
        values: set[ir.Value] = set()
        for item in n.items:
            checked = self._comparable(x, self.expr(item), "==", item.span)
            constant = _fold(checked)
            if constant is None:
                raise fail("type", "set members must be literals", item.span)
            values.add(constant)
        if not values:
            raise fail("type", "an empty set: this test would always give the same answer", n.span)
        return ir.Member(x, frozenset(values), n.negated, n.span)


_FLIP: dict[ast.CompareOp, ast.CompareOp] = {
    "<": ">",
    "<=": ">=",
    ">": "<",
    ">=": "<=",
    "==": "==",
    "!=": "!=",
}


def _fold(node: ir.Expr) -> ir.Value | None:
    if isinstance(node, ir.Const):
        return node.value
    return None


def _above(low: ir.Const, high: ir.Const) -> bool:
    a, b = low.value, high.value
    if isinstance(a, dt.date) and isinstance(b, dt.date):
        return a > b
    numbers = (int, Fraction)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return a > b
    return False
