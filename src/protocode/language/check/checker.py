"""Check stage: resolve names, type-check, unit-check and lower each rule to typed IR.

`check_protocol` parses every rule of a loaded protocol, checks it against the data
dictionary and the definitions, and returns a `CheckedProtocol`, or raises one error
carrying every problem of the file, sorted by position. Within one rule checking stops at
the first problem, so one typo does not cascade into a page of follow-on errors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any, Literal, get_args

from protocode.core.errors import CheckError, Diagnostic, ProtocodeError, did_you_mean, unique
from protocode.core.source import Span
from protocode.document.model import (
    Criterion,
    DataItem,
    Definition,
    ProtocolDoc,
    Quantity,
    RuleText,
)
from protocode.language import ir
from protocode.language.library import FUNCTIONS, SignatureError
from protocode.language.syntax import ast, parse_rule
from protocode.language.types import (
    BOOL,
    DATE,
    NUMBER,
    TEXT,
    BoolType,
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


@dataclass(frozen=True, slots=True)
class CheckedCriterion:
    """A criterion with its rule lowered to IR (or an attestation name)."""

    id: str
    kind: Literal["inclusion", "exclusion"]
    text: str
    span: Span
    rule: ir.Expr | None
    attestation: str | None
    source: str


@dataclass(frozen=True, slots=True)
class CheckedProtocol:
    """A protocol whose every rule parsed and type-checked; input to the backends.

    `definitions` lists each definition after the ones it uses, so a backend that handles
    them in this order never has to recurse from one definition into another. Every rule
    nests at most `MAX_NESTING` levels deep counting the definitions it uses.
    """

    doc: ProtocolDoc
    items: dict[str, DataItem]
    item_types: dict[str, Type]
    definitions: dict[str, ir.Expr]
    criteria: tuple[CheckedCriterion, ...]
    attestations: tuple[str, ...] = field(default=())


# How deep a rule may nest counting the definitions it uses (`ir.nesting`). Realistic rules
# stay far below (the seed protocol's deepest is under 20); at this bound the deepest
# recursion of any stage, the traced closures at two frames a level, stays well inside
# Python's default limit of 1,000 frames.
MAX_NESTING = 256

# How much of a draft criterion's text its diagnostic quotes.
_DRAFT_TEXT_WIDTH = 60


class _RuleError(Exception):
    """One problem in one rule: stop checking that rule."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


class _Dependent(Exception):  # noqa: N818 - a signal, not an error: the cause is reported elsewhere
    """This rule uses a definition that has errors of its own."""


def _fail(code: str, message: str, span: Span) -> _RuleError:
    return _RuleError(Diagnostic(code, message, span))


def item_type(item: DataItem) -> Type:
    """The rule-language type of a data item's values."""
    if item.kind == "anchor" or item.type == "date":
        return DATE
    match item.type:
        case "boolean":
            return BOOL
        case "integer" | "number":
            return NUMBER
        case "quantity":
            return NumType(parse_unit(item.unit or "1"))
        case "code":
            return CodeType(item.values)
        case _:
            return TEXT


class _Checker:
    """Checks rules against one protocol's data dictionary and definitions.

    Definitions are checked once each, every one after the definitions it uses (found by
    an iterative walk of their syntax trees), so checking a rule never recurses into
    another definition: a long chain of definitions costs no Python stack.
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
        self._dispatch: dict[type[Any], Callable[[Any], ir.Expr]] = {
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
            ast.Compare: self._compare,
            ast.RefCompare: self._ref_compare,
            ast.Between: self._between,
            ast.Member: self._member,
            ast.IsKnown: self._is_known,
            ast.And: lambda n: ir.And(self._bool(n.left), self._bool(n.right), n.span),
            ast.Or: lambda n: ir.Or(self._bool(n.left), self._bool(n.right), n.span),
            ast.Not: lambda n: ir.Not(self._bool(n.operand), n.span),
            ast.If: self._if,
            ast.Temporal: self._temporal,
        }

    # ---- entry points

    def rule(self, text: RuleText, want: Type | None = BOOL) -> ir.Expr | None:
        """Check one rule; record a diagnostic and return None if it is wrong."""
        tree = self._parse(text)
        if tree is None:
            return None
        self._prepare(_names(tree))
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
                raise _fail(
                    "type",
                    f"a criterion must be true or false, but this rule is a {node.type}",
                    node.span,
                )
            return node
        except ProtocodeError as exc:
            self.diagnostics.extend(exc.diagnostics)
        except _RuleError as exc:
            self.diagnostics.append(exc.diagnostic)
        except _Dependent:
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
            stack.append((name, iter(_names(tree) if tree is not None else ())))

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
        through = f" (through {_chain(chain)})" if chain else ""
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
                raise _fail("type", f"'{d.name}' has a unit but is a {node.type}", span)
            if node.type.unit.convertible(unit):
                return _scale(node, conversion_factor(node.type.unit, unit), NumType(unit))
            if node.type.unit.dimensionless:
                # Empirical formulas (Cockcroft-Gault) compute a plain number that the
                # definition declares to be in a unit.
                return _scale(node, node.type.unit.factor, NumType(unit))
            raise _fail(
                "unit",
                f"'{d.name}' computes a {node.type.unit.describe_dimension()} "
                f"({node.type.unit.text}) but declares {unit.text} "
                f"({unit.describe_dimension()})",
                span,
            )
        except UnitError as exc:
            self.diagnostics.append(Diagnostic("unit", exc.message, span))
        except _RuleError as exc:
            self.diagnostics.append(exc.diagnostic)
        return None

    # ---- expressions

    def expr(self, node: ast.Expr) -> ir.Expr:
        """Check one AST node."""
        return self._dispatch[type(node)](node)

    def _bool(self, node: ast.Expr) -> ir.Expr:
        checked = self.expr(node)
        if checked.type != BOOL:
            raise _fail(
                "type", f"expected true/false here, but this is a {checked.type}", node.span
            )
        return checked

    def _unit(self, text: str, span: Span) -> Unit:
        try:
            return parse_unit(text)
        except UnitError as exc:
            start = span.start + exc.offset
            raise _fail("unit", exc.message, Span(span.source, start, start + exc.length)) from None

    def _number(self, n: ast.Number) -> ir.Expr:
        return ir.Const(_exact(n.value), NUMBER, n.span)

    def _quantity(self, n: ast.Quantity) -> ir.Expr:
        return ir.Const(_exact(n.value), NumType(self._unit(n.unit, n.unit_span)), n.span)

    def _string(self, n: ast.String) -> ir.Expr:
        return ir.Const(n.value, TEXT, n.span)

    def _name(self, n: ast.Name) -> ir.Expr:
        if n.name in self.items:
            item = self.items[n.name]
            if item.kind == "observation":
                raise _fail(
                    "name",
                    f"'{n.name}' is an observation with dated values; say which one, "
                    f"e.g. 'latest {n.name} within 7 days before <anchor>'",
                    n.span,
                )
            if item.kind == "event":
                raise _fail(
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
                raise _Dependent()
            # Every definition a rule uses is checked before it, except around a cycle.
            assert self.current is not None
            cycle = self.back_edges[(self.current, n.name)]
            if frozenset(cycle) in self.cycles:
                raise _Dependent()
            self.cycles.add(frozenset(cycle))
            raise _fail("cycle", f"definitions form a cycle: {_chain([*cycle, n.name])}", n.span)
        if n.name in FUNCTIONS:
            raise _fail("name", f"'{n.name}' is a function; call it: {n.name}(…)", n.span)
        known = [*self.items, *self.definitions]
        raise _fail("name", f"unknown name '{n.name}'{did_you_mean(n.name, known)}", n.span)

    def _call(self, n: ast.Call) -> ir.Expr:
        fn = FUNCTIONS.get(n.func)
        if fn is None:
            hint = did_you_mean(n.func, FUNCTIONS)
            raise _fail("name", f"unknown function '{n.func}'{hint}", n.func_span)
        args = tuple(self.expr(a) for a in n.args)
        try:
            result = fn.typing([a.type for a in args])
        except SignatureError as exc:
            raise _fail("type", f"{fn.signature} {exc}", n.span) from None
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
                raise _fail("type", message, n.args[1].span)
        return ir.Call(n.func, args, result, n.span)

    def _convert(self, node: ir.Expr, to: Type, span: Span) -> ir.Expr:
        """`node` in the unit of `to` (both quantities of one dimension)."""
        if isinstance(node.type, NumType) and isinstance(to, NumType):
            src, dst = node.type.unit, to.unit
            _same_plainness(src, dst, span, node)
            if not src.convertible(dst):
                raise _fail("unit", unit_mismatch(src, dst), span)
            return _scale(node, conversion_factor(src, dst), to)
        return node

    def _arith(self, n: ast.Arith) -> ir.Expr:
        left, right = self.expr(n.left), self.expr(n.right)
        lt, rt = left.type, right.type
        if isinstance(lt, DateType):
            return self._date_arith(n, left, right)
        if not isinstance(lt, NumType) or not isinstance(rt, NumType):
            raise _fail("type", f"cannot apply '{n.op}' to a {lt} and a {rt}", n.span)
        if n.op in {"+", "-"}:
            _same_plainness(lt.unit, rt.unit, n.span, left, right)
            if not lt.unit.convertible(rt.unit):
                raise _fail("unit", unit_mismatch(lt.unit, rt.unit), n.span)
            right = _scale(right, conversion_factor(rt.unit, lt.unit), lt)
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
        raise _fail(
            "type",
            "a date can be moved only by a literal duration (e.g. 'enrollment - 14 days') "
            "or subtracted from another date",
            n.span,
        )

    def _neg(self, n: ast.Neg) -> ir.Expr:
        operand = self.expr(n.operand)
        if not isinstance(operand.type, NumType):
            raise _fail("type", f"cannot negate a {operand.type}", n.span)
        return ir.Neg(operand, operand.type, n.span)

    def _as_unit(self, n: ast.AsUnit) -> ir.Expr:
        operand = self.expr(n.operand)
        unit = self._unit(n.unit, n.unit_span)
        if not isinstance(operand.type, NumType):
            raise _fail("type", f"only quantities have units, but this is a {operand.type}", n.span)
        if not operand.type.unit.convertible(unit):
            raise _fail("unit", unit_mismatch(operand.type.unit, unit), n.span)
        return _scale(operand, conversion_factor(operand.type.unit, unit), NUMBER)

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
            _same_plainness(lt.unit, rt.unit, unit_span or span, left, right)
            molar_mass = self._molar_mass(left) or self._molar_mass(right)
            try:
                return _scale(right, conversion_factor(rt.unit, lt.unit, molar_mass), lt)
            except UnitError:
                # Mass meets amount of substance through the measured item's molar mass.
                message = unit_mismatch(lt.unit, rt.unit, self._substance(left, right))
                raise _fail("unit", message, unit_span or span) from None
        if isinstance(lt, DateType) and isinstance(rt, DateType):
            return right
        if ordered:
            raise _fail("type", f"'{op}' needs numbers, quantities or dates, not a {lt}", span)
        if isinstance(lt, CodeType) and isinstance(rt, TextType | CodeType):
            self._valid_codes(lt, right)
            return right
        if isinstance(rt, CodeType) and isinstance(lt, TextType):
            self._valid_codes(rt, left)
            return right
        if type(lt) is type(rt) and isinstance(lt, BoolType | TextType):
            return right
        raise _fail("type", f"cannot compare a {lt} with a {rt}", span)

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
            raise _fail(
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
            raise _fail(
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
            raise _fail("unit", exc.message, q.span) from None
        return _exact(Fraction(q.value) * factor)

    def _between(self, n: ast.Between) -> ir.Expr:
        x, low, high = self.expr(n.operand), self.expr(n.low), self.expr(n.high)
        low = self._comparable(x, low, ">=", n.low.span)
        high = self._comparable(x, high, "<=", n.high.span)
        if isinstance(low, ir.Const) and isinstance(high, ir.Const) and _above(low, high):
            raise _fail("type", "the range is empty: the lower bound is above the upper", n.span)
        return ir.And(ir.Compare(">=", x, low, n.span), ir.Compare("<=", x, high, n.span), n.span)

    def _member(self, n: ast.Member) -> ir.Expr:
        x = self.expr(n.operand)
        values: set[ir.Value] = set()
        for item in n.items:
            checked = self._comparable(x, self.expr(item), "==", item.span)
            constant = _fold(checked)
            if constant is None:
                raise _fail("type", "set members must be literals", item.span)
            values.add(constant)
        if not values:
            raise _fail("type", "an empty set: this test would always give the same answer", n.span)
        return ir.Member(x, frozenset(values), n.negated, n.span)

    def _is_known(self, n: ast.IsKnown) -> ir.Expr:
        return ir.IsKnown(self.expr(n.operand), n.known, n.span)

    def _if(self, n: ast.If) -> ir.Expr:
        cond, then, orelse = self._bool(n.cond), self.expr(n.then), self.expr(n.orelse)
        if isinstance(then.type, NumType) and isinstance(orelse.type, NumType):
            orelse = self._convert(orelse, then.type, n.orelse.span)
        elif then.type != orelse.type and not _code_text(then.type, orelse.type):
            raise _fail(
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
            raise _fail("name", f"unknown item '{n.item}'{hint}", n.item_span)
        window = self._window(n.window) if n.window is not None else None
        if n.op in {"latest", "earliest"}:
            if item.kind != "observation":
                raise _fail(
                    "type",
                    f"'{n.op}' needs an observation, but '{n.item}' is {_a(item.kind)}",
                    n.item_span,
                )
            return ir.Select(n.item, n.op == "earliest", window, self.item_types[n.item], n.span)
        if item.kind not in {"event", "observation"}:
            raise _fail(
                "type",
                f"'{n.op}' needs an event or observation, but '{n.item}' is {_a(item.kind)}",
                n.item_span,
            )
        return ir.Events(n.op, n.item, window, NUMBER if n.op == "count" else BOOL, n.span)

    def _window(self, w: ast.Window) -> ir.Window:
        anchor = self.expr(ast.Name(w.anchor, w.anchor_span))
        if anchor.type != DATE:
            raise _fail(
                "type",
                f"a window is anchored on a date, but '{w.anchor}' is a {anchor.type}",
                w.anchor_span,
            )
        if w.amount is None or w.unit is None or w.unit_span is None:
            return ir.Window(w.kind, anchor, 0, "d", _window_text(w), w.span)
        unit = self._unit(w.unit, w.unit_span)
        amount, cal = _calendar(_exact(w.amount), unit, w.unit_span)
        return ir.Window(w.kind, anchor, amount, cal, _window_text(w), w.span)


def _chain(names: list[str]) -> str:
    """`a -> b -> c`, with the middle of a long chain left out."""
    if len(names) > _CHAIN_SHOWN:
        names = [*names[: _CHAIN_SHOWN - 2], f"… ({len(names) - _CHAIN_SHOWN + 1} more)", names[-1]]
    return " -> ".join(names)


_CHAIN_SHOWN = 8


def _names(tree: ast.Expr) -> Iterator[str]:
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


def _window_text(w: ast.Window) -> str:
    return " ".join(w.span.text.split())


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _code_text(a: Type, b: Type) -> bool:
    return {type(a), type(b)} == {CodeType, TextType}


_FLIP: dict[ast.CompareOp, ast.CompareOp] = {
    "<": ">",
    "<=": ">=",
    ">": "<",
    ">=": "<=",
    "==": "==",
    "!=": "!=",
}


def _exact(x: Fraction | int) -> ir.Magnitude:
    """Integers as `int` (fast), everything else as an exact `Fraction`."""
    if isinstance(x, Fraction) and x.denominator == 1:
        return int(x)
    return x


def _scale(node: ir.Expr, factor: Fraction, to: Type) -> ir.Expr:
    """`node` multiplied by `factor` and retyped; constants are folded at compile time."""
    if isinstance(node, ir.Const) and isinstance(node.value, int | Fraction):
        return ir.Const(_exact(node.value * factor), to, node.span)
    if factor == 1:
        if node.type == to:
            return node
        return ir.Scale(node, Fraction(1), to, node.span)
    return ir.Scale(node, factor, to, node.span)


def _fold(node: ir.Expr) -> ir.Value | None:
    if isinstance(node, ir.Const):
        return node.value
    return None


def _calendar(value: ir.Value, unit: Unit, span: Span) -> tuple[int, ir.CalendarUnit]:
    """A literal duration as whole days or whole calendar months (for date arithmetic)."""
    if not is_time(unit):
        raise _fail(
            "unit", f"expected a duration, but {unit.text} is a {unit.describe_dimension()}", span
        )
    assert isinstance(value, int | Fraction)
    if unit.text in {"mo", "a"}:
        months = Fraction(value) * (12 if unit.text == "a" else 1)
        if months.denominator != 1:
            raise _fail("unit", "calendar months and years must be whole numbers here", span)
        if abs(months) > _MAX_SHIFT_MONTHS:
            raise _fail("unit", "durations in date arithmetic are limited to 200 years", span)
        return int(months), "mo"
    days = Fraction(value) * conversion_factor(unit, parse_unit("d"))
    if days.denominator != 1:
        raise _fail("unit", "dates move in whole days; this duration is not a whole day", span)
    if abs(days) > _MAX_SHIFT_DAYS:
        raise _fail("unit", "durations in date arithmetic are limited to 200 years", span)
    return int(days), "d"


_MAX_DIGITS = 12
# Records hold dates from 1800 to 2200, so shifts within 200 years stay valid dates.
_MAX_SHIFT_DAYS = 200 * 366
_MAX_SHIFT_MONTHS = 200 * 12


def _above(low: ir.Const, high: ir.Const) -> bool:
    a, b = low.value, high.value
    if isinstance(a, dt.date) and isinstance(b, dt.date):
        return a > b
    numbers = (int, Fraction)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return a > b
    return False


def _plain(unit: Unit) -> bool:
    return unit.text == "1"


def _same_plainness(a: Unit, b: Unit, span: Span, *operands: ir.Expr) -> None:
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
        raise _fail("unit", plain_number(b if _plain(a) else a, literal), span)


def check_rule(
    text: RuleText,
    items: Iterable[DataItem],
    definitions: Iterable[Definition] = (),
) -> ir.Expr:
    """Check one standalone boolean rule against a data dictionary (API and tests)."""
    item_map = {i.name: i for i in items}
    checker = _Checker(
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
    checker = _Checker(checked.items, checked.item_types, definitions)
    checker.seed(checked.definitions)
    node = checker.rule(text, want=None)
    if node is None:
        raise CheckError(unique(checker.diagnostics))
    return node


def check_protocol(doc: ProtocolDoc) -> CheckedProtocol:
    """Check every definition and criterion of a protocol; raise all problems at once."""
    diagnostics: list[Diagnostic] = []
    items = {i.name: i for i in doc.data}
    types: dict[str, Type] = {}
    for item in doc.data:
        try:
            types[item.name] = item_type(item)
        except UnitError as exc:
            diagnostics.append(Diagnostic("unit", f"item '{item.name}': {exc.message}", item.span))
            types[item.name] = NUMBER
    diagnostics += [d for item in doc.data for d in _item_problems(item)]
    checker = _Checker(items, types, {d.name: d for d in doc.definitions})
    checker.check_definitions()
    criteria = []
    attestations: list[str] = []
    for c in doc.criteria:
        criteria.append(_criterion(checker, c))
        if c.attestation is not None and c.attestation not in attestations:
            attestations.append(c.attestation)
    diagnostics += [_draft_problem(c) for c in doc.criteria if c.draft]
    diagnostics.extend(checker.diagnostics)
    if diagnostics:
        raise CheckError(unique(diagnostics))
    return CheckedProtocol(
        doc, items, types, dict(checker.checked), tuple(criteria), tuple(attestations)
    )


def _item_problems(item: DataItem) -> list[Diagnostic]:
    """Contradictions inside one data dictionary entry."""
    out = []
    low, high = item.minimum, item.maximum
    if low is not None and high is not None and Fraction(low) > Fraction(high):
        message = f"item '{item.name}': minimum {low} is above maximum {high}"
        out.append(Diagnostic("item", message, item.span))
    for label, q in (("molar_mass", item.molar_mass), ("uln", item.uln), ("lln", item.lln)):
        if q is not None and Fraction(q.value) <= 0:
            out.append(Diagnostic("item", f"item '{item.name}': {label} must be positive", q.span))
    if item.unit is not None and item.type != "quantity" and item.kind != "event":
        message = f"item '{item.name}' has a unit but is of type {item.type}; use type quantity"
        out.append(Diagnostic("item", message, item.span))
    if item.values and item.type != "code":
        message = f"item '{item.name}' lists values but is of type {item.type}; use type code"
        out.append(Diagnostic("item", message, item.span))
    return out


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


def _criterion(checker: _Checker, c: Criterion) -> CheckedCriterion:
    rule = checker.rule(c.rule) if c.rule is not None else None
    source = " ".join(c.rule.text.split()) if c.rule is not None else ""
    return CheckedCriterion(c.id, c.kind, c.text, c.span, rule, c.attestation, source)
