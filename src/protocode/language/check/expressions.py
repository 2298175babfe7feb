"""Lowering of one rule's syntax tree to typed IR: names, literals, arithmetic, logic, time.

`ExpressionChecker` holds the state every rule of a protocol is checked against (the data
dictionary, the definitions checked so far) and turns each syntax node into an IR node, or
raises `RuleError` at the first problem of the rule. Comparisons are added by
`comparisons.ComparisonChecker`, the walk over definitions and rules by `rules.RuleChecker`.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

from protocode.core.errors import Diagnostic, did_you_mean
from protocode.core.source import Span
from protocode.document.model import DataItem, Definition
from protocode.language import ir
from protocode.language.library import FUNCTIONS, SignatureError
from protocode.language.syntax import ast
from protocode.language.types import (
    BOOL,
    DATE,
    NUMBER,
    TEXT,
    CodeType,
    DateType,
    NumType,
    TextType,
    Type,
)
from protocode.language.units import (
    Unit,
    UnitError,
    conversion_factor,
    is_time,
    parse_unit,
    plain_number,
    unit_mismatch,
)


class RuleError(Exception):
    """One problem in one rule: stop checking that rule."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


class DependentRule(Exception):  # noqa: N818 - a signal, not an error: the cause is reported elsewhere
    """This rule uses a definition that has errors of its own."""


def fail(code: str, message: str, span: Span) -> RuleError:
    """The `RuleError` for one diagnostic, to raise."""
    return RuleError(Diagnostic(code, message, span))


def chain_text(names: list[str]) -> str:
    """`a -> b -> c`, with the middle of a long chain left out."""
    if len(names) > _CHAIN_SHOWN:
        names = [*names[: _CHAIN_SHOWN - 2], f"… ({len(names) - _CHAIN_SHOWN + 1} more)", names[-1]]
    return " -> ".join(names)


_CHAIN_SHOWN = 8


class ExpressionChecker:
    """Lowers syntax to IR against one protocol's data dictionary and checked definitions.

    `checked` fills as `rules.RuleChecker` checks definitions, each before its users; a
    name of a definition not (or not successfully) checked yet is a cycle or a dependent
    error, which `_name` tells apart.
    """

    def __init__(
        self,
        items: dict[str, DataItem],
        item_types: dict[str, Type],
        definitions: dict[str, Definition],
    ) -> None:
        self.items = items
        self.item_types = item_types
        self.definitions = definitions
        # Checked definitions, each after those it uses (the order backends rely on).
        self.checked: dict[str, ir.Expr] = {}
        # How deep each checked definition nests (`ir.nesting`), and the definition its
        # deepest path goes through, for the message when a chain is too deep.
        self.depths: dict[str, int] = {}
        self.deepest: dict[str, str] = {}
        self.attempted: set[str] = set()
        self.parsed: dict[str, ast.Expr | None] = {}
        # (user, used) → the definitions from `used` to `user` that form a cycle.
        self.back_edges: dict[tuple[str, str], list[str]] = {}
        self.current: str | None = None
        self.cycles: set[frozenset[str]] = set()
        self.diagnostics: list[Diagnostic] = []
        self._dispatch = self._handlers()

    def _handlers(self) -> dict[type[Any], Callable[[Any], ir.Expr]]:
        """The lowering of each syntax node class (subclasses add theirs)."""
        return {
            ast.Number: self._number,
            ast.Quantity: self._quantity,
            ast.DateLit: lambda n: ir.Const(n.value, DATE, n.span),
            ast.String: self._string,
            ast.Bool: lambda n: ir.Const(n.value, BOOL, n.span),
            ast.Name: self._name,
            ast.Call: self._call,
            ast.Arith: self._arith,
            ast.Neg: self._neg,
            ast.AsUnit: self._as_unit,
            ast.IsKnown: self._is_known,
            ast.And: lambda n: ir.And(self._bool(n.left), self._bool(n.right), n.span),
            ast.Or: lambda n: ir.Or(self._bool(n.left), self._bool(n.right), n.span),
            ast.Not: lambda n: ir.Not(self._bool(n.operand), n.span),
            ast.If: self._if,
            ast.Temporal: self._temporal,
        }

    # ---- expressions

    def expr(self, node: ast.Expr) -> ir.Expr:
        """Check one AST node."""
        return self._dispatch[type(node)](node)

    def _bool(self, node: ast.Expr) -> ir.Expr:
        checked = self.expr(node)
        if checked.type != BOOL:
            raise fail("type", f"expected true/false here, but this is a {checked.type}", node.span)
        return checked

    def _unit(self, text: str, span: Span) -> Unit:
        try:
            return parse_unit(text)
        except UnitError as exc:
            start = span.start + exc.offset
            raise fail("unit", exc.message, Span(span.source, start, start + exc.length)) from None

    def _number(self, n: ast.Number) -> ir.Expr:
        return ir.Const(exact(n.value), NUMBER, n.span)

    def _quantity(self, n: ast.Quantity) -> ir.Expr:
        return ir.Const(exact(n.value), NumType(self._unit(n.unit, n.unit_span)), n.span)

    def _string(self, n: ast.String) -> ir.Expr:
        return ir.Const(n.value, TEXT, n.span)

    def _name(self, n: ast.Name) -> ir.Expr:
        if n.name in self.items:
            item = self.items[n.name]
            if item.kind == "observation":
                raise fail(
                    "name",
                    f"'{n.name}' is an observation with dated values; say which one, "
                    f"e.g. 'latest {n.name} within 7 days before <anchor>'",
                    n.span,
                )
            if item.kind == "event":
                raise fail(
                    "name",
                    f"'{n.name}' is an event; ask 'ever {n.name}' or "
                    f"'any {n.name} within … before <anchor>'",
                    n.span,
                )
            return ir.Fact(n.name, self.item_types[n.name], n.span)
        if n.name in self.definitions:
            if n.name in self.checked:
                return ir.DefRef(n.name, self.checked[n.name].type, n.span)
            if n.name in self.attempted:
                # The definition's own error is reported where it is; don't repeat it here.
                raise DependentRule()
            # Every definition a rule uses is checked before it, except around a cycle.
            assert self.current is not None
            cycle = self.back_edges[(self.current, n.name)]
            if frozenset(cycle) in self.cycles:
                raise DependentRule()
            self.cycles.add(frozenset(cycle))
            raise fail("cycle", f"definitions form a cycle: {chain_text([*cycle, n.name])}", n.span)
        if n.name in FUNCTIONS:
            raise fail("name", f"'{n.name}' is a function; call it: {n.name}(…)", n.span)
        known = [*self.items, *self.definitions]
        raise fail("name", f"unknown name '{n.name}'{did_you_mean(n.name, known)}", n.span)

    def _call(self, n: ast.Call) -> ir.Expr:
        fn = FUNCTIONS.get(n.func)
        if fn is None:
            hint = did_you_mean(n.func, FUNCTIONS)
            raise fail("name", f"unknown function '{n.func}'{hint}", n.func_span)
        args = tuple(self.expr(a) for a in n.args)
        try:
            result = fn.typing([a.type for a in args])
        except SignatureError as exc:
            raise fail("type", f"{fn.signature} {exc}", n.span) from None
        if n.func in {"min", "max"}:
            args = tuple(self._convert(a, args[0].type, a.span) for a in args)
        if n.func == "round" and len(args) == 2:
            digits = args[1]
            if not (
                isinstance(digits, ir.Const)
                and isinstance(digits.value, int)
                and not isinstance(digits.value, bool)
                and 0 <= digits.value <= _MAX_DIGITS
            ):
                message = f"round() takes a whole number of digits from 0 to {_MAX_DIGITS}"
                raise fail("type", message, n.args[1].span)
        return ir.Call(n.func, args, result, n.span)

    def _convert(self, node: ir.Expr, to: Type, span: Span) -> ir.Expr:
        """`node` in the unit of `to` (both quantities of one dimension)."""
        if isinstance(node.type, NumType) and isinstance(to, NumType):
            src, dst = node.type.unit, to.unit
            same_plainness(src, dst, span, node)
            if not src.convertible(dst):
                raise fail("unit", unit_mismatch(src, dst), span)
            return scale(node, conversion_factor(src, dst), to)
        return node

    def _arith(self, n: ast.Arith) -> ir.Expr:
        left, right = self.expr(n.left), self.expr(n.right)
        lt, rt = left.type, right.type
        if isinstance(lt, DateType):
            return self._date_arith(n, left, right)
        if not isinstance(lt, NumType) or not isinstance(rt, NumType):
            raise fail("type", f"cannot apply '{n.op}' to a {lt} and a {rt}", n.span)
        if n.op in {"+", "-"}:
            same_plainness(lt.unit, rt.unit, n.span, left, right)
            if not lt.unit.convertible(rt.unit):
                raise fail("unit", unit_mismatch(lt.unit, rt.unit), n.span)
            right = scale(right, conversion_factor(rt.unit, lt.unit), lt)
            return ir.Arith(n.op, left, right, lt, n.span)
        unit = lt.unit * rt.unit if n.op == "*" else lt.unit / rt.unit
        return ir.Arith(n.op, left, right, NumType(unit), n.span)

    def _date_arith(self, n: ast.Arith, left: ir.Expr, right: ir.Expr) -> ir.Expr:
        if n.op == "-" and right.type == DATE:
            return ir.Call("days_between", (right, left), NumType(parse_unit("d")), n.span)
        if n.op in {"+", "-"} and isinstance(right, ir.Const) and isinstance(right.type, NumType):
            amount, unit = _calendar(right.value, right.type.unit, right.span)
            sign = 1 if n.op == "+" else -1
            return ir.DateShift(left, sign * amount, unit, DATE, n.span)
        raise fail(
            "type",
            "a date can be moved only by a literal duration (e.g. 'enrollment - 14 days') "
            "or subtracted from another date",
            n.span,
        )

    def _neg(self, n: ast.Neg) -> ir.Expr:
        operand = self.expr(n.operand)
        if not isinstance(operand.type, NumType):
            raise fail("type", f"cannot negate a {operand.type}", n.span)
        return ir.Neg(operand, operand.type, n.span)

    def _as_unit(self, n: ast.AsUnit) -> ir.Expr:
        operand = self.expr(n.operand)
        unit = self._unit(n.unit, n.unit_span)
        if not isinstance(operand.type, NumType):
            raise fail("type", f"only quantities have units, but this is a {operand.type}", n.span)
        if not operand.type.unit.convertible(unit):
            raise fail("unit", unit_mismatch(operand.type.unit, unit), n.span)
        return scale(operand, conversion_factor(operand.type.unit, unit), NUMBER)

    def _is_known(self, n: ast.IsKnown) -> ir.Expr:
        return ir.IsKnown(self.expr(n.operand), n.known, n.span)

    def _if(self, n: ast.If) -> ir.Expr:
        cond, then, orelse = self._bool(n.cond), self.expr(n.then), self.expr(n.orelse)
        if isinstance(then.type, NumType) and isinstance(orelse.type, NumType):
            orelse = self._convert(orelse, then.type, n.orelse.span)
        elif then.type != orelse.type and not code_text(then.type, orelse.type):
            raise fail(
                "type",
                f"both branches must have one type: 'then' is a {then.type}, "
                f"'else' is a {orelse.type}",
                n.span,
            )
        return ir.If(cond, then, orelse, then.type, n.span)

    def _temporal(self, n: ast.Temporal) -> ir.Expr:
        item = self.items.get(n.item)
        if item is None:
            known = [k for k, v in self.items.items() if v.kind in {"observation", "event"}]
            hint = did_you_mean(n.item, known)
            raise fail("name", f"unknown item '{n.item}'{hint}", n.item_span)
        window = self._window(n.window) if n.window is not None else None
        if n.op in {"latest", "earliest"}:
            if item.kind != "observation":
                raise fail(
                    "type",
                    f"'{n.op}' needs an observation, but '{n.item}' is {article(item.kind)}",
                    n.item_span,
                )
            return ir.Select(n.item, n.op == "earliest", window, self.item_types[n.item], n.span)
        if item.kind not in {"event", "observation"}:
            raise fail(
                "type",
                f"'{n.op}' needs an event or observation, but '{n.item}' is {article(item.kind)}",
                n.item_span,
            )
        return ir.Events(n.op, n.item, window, NUMBER if n.op == "count" else BOOL, n.span)

    def _window(self, w: ast.Window) -> ir.Window:
        anchor = self.expr(ast.Name(w.anchor, w.anchor_span))
        if anchor.type != DATE:
            raise fail(
                "type",
                f"a window is anchored on a date, but '{w.anchor}' is a {anchor.type}",
                w.anchor_span,
            )
        if w.amount is None or w.unit is None or w.unit_span is None:
            return ir.Window(w.kind, anchor, 0, "d", _window_text(w), w.span)
        unit = self._unit(w.unit, w.unit_span)
        amount, cal = _calendar(exact(w.amount), unit, w.unit_span)
        return ir.Window(w.kind, anchor, amount, cal, _window_text(w), w.span)


def _window_text(w: ast.Window) -> str:
    return " ".join(w.span.text.split())


def article(kind: str) -> str:
    """`kind` with its indefinite article: "an event", "a fact"."""
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def code_text(a: Type, b: Type) -> bool:
    """Whether one of two types is a code and the other text (comparable both ways)."""
    return {type(a), type(b)} == {CodeType, TextType}


def exact(x: Fraction | int) -> ir.Magnitude:
    """Integers as `int` (fast), everything else as an exact `Fraction`."""
    if isinstance(x, Fraction) and x.denominator == 1:
        return int(x)
    return x


def scale(node: ir.Expr, factor: Fraction, to: Type) -> ir.Expr:
    """`node` multiplied by `factor` and retyped; constants are folded at compile time."""
    if isinstance(node, ir.Const) and isinstance(node.value, int | Fraction):
        return ir.Const(exact(node.value * factor), to, node.span)
    if factor == 1:
        if node.type == to:
            return node
        return ir.Scale(node, Fraction(1), to, node.span)
    return ir.Scale(node, factor, to, node.span)


def _calendar(value: ir.Value, unit: Unit, span: Span) -> tuple[int, ir.CalendarUnit]:
    """A literal duration as whole days or whole calendar months (for date arithmetic)."""
    if not is_time(unit):
        raise fail(
            "unit", f"expected a duration, but {unit.text} is a {unit.describe_dimension()}", span
        )
    assert isinstance(value, int | Fraction)
    if unit.text in {"mo", "a"}:
        months = Fraction(value) * (12 if unit.text == "a" else 1)
        if months.denominator != 1:
            raise fail("unit", "calendar months and years must be whole numbers here", span)
        if abs(months) > _MAX_SHIFT_MONTHS:
            raise fail("unit", "durations in date arithmetic are limited to 200 years", span)
        return int(months), "mo"
    days = Fraction(value) * conversion_factor(unit, parse_unit("d"))
    if days.denominator != 1:
        raise fail("unit", "dates move in whole days; this duration is not a whole day", span)
    if abs(days) > _MAX_SHIFT_DAYS:
        raise fail("unit", "durations in date arithmetic are limited to 200 years", span)
    return int(days), "d"


_MAX_DIGITS = 12
# Records hold dates from 1800 to 2200, so shifts within 200 years stay valid dates.
_MAX_SHIFT_DAYS = 200 * 366
_MAX_SHIFT_MONTHS = 200 * 12


def _plain(unit: Unit) -> bool:
    return unit.text == "1"


def same_plainness(a: Unit, b: Unit, span: Span, *operands: ir.Expr) -> None:
    """A plain number never silently meets a unit, not even a dimensionless one like %.

    Otherwise `latest lvef >= 50` would compare 0.62 (62 %) with 50 and exclude everyone.
    When the plain side is a literal among `operands`, the message repeats it with the unit.
    """
    if _plain(a) != _plain(b):
        literal = next(
            (
                o.span.text
                for o in operands
                if isinstance(o, ir.Const) and isinstance(o.type, NumType) and _plain(o.type.unit)
            ),
            None,
        )
        raise fail("unit", plain_number(b if _plain(a) else a, literal), span)
