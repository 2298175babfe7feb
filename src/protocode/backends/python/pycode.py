"""The fast backend: typed IR compiled to one Python function with the `ast` module.

The function is built as a Python syntax tree from the checked IR — never from text, and
protocol strings only ever appear as constants — then compiled once with `compile()`.
Kleene logic is inlined as straight-line code with short-circuit branches; windows, event
queries and reference limits call the same `runtime` primitives as the closure backend,
which stays the reference (and the one that traces explanations). A property test checks
that both backends agree on every criterion of generated records.
"""

from __future__ import annotations

import ast
import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocode.backends.python import runtime as rt
from protocode.language import ir
from protocode.language.check import CheckedCriterion, CheckedProtocol
from protocode.language.library import FUNCTIONS

Verdicts = Callable[..., tuple[bool | None, ...]]
StatusFn = Callable[..., str]

_UNSET = object()

_CMP_OPS: dict[str, type[ast.cmpop]] = {
    "<": ast.Lt,
    "<=": ast.LtE,
    ">": ast.Gt,
    ">=": ast.GtE,
    "==": ast.Eq,
    "!=": ast.NotEq,
}
_ARITH_OPS: dict[str, type[ast.operator]] = {"+": ast.Add, "-": ast.Sub, "*": ast.Mult}

# Parameter names of every generated function: record values, series, events, attestations.
_PARAMS = ("V", "S", "E", "A")


@dataclass(frozen=True, slots=True)
class FastProgram:
    """Generated functions for one protocol: `verdicts(record)` and `status(record)`."""

    verdicts_fn: Verdicts
    status_fn: StatusFn
    source_tree: ast.Module

    def verdicts(self, values: Any, series: Any, events: Any, attestations: Any) -> Any:
        """Three-valued verdicts per criterion, in protocol order."""
        return self.verdicts_fn(values, series, events, attestations)


def _name(id_: str, store: bool = False) -> ast.Name:
    return ast.Name(id_, ast.Store() if store else ast.Load())


def _is(a: ast.expr, value: bool | None) -> ast.expr:
    return ast.Compare(a, [ast.Is()], [ast.Constant(value)])


def _is_none_any(*exprs: ast.expr) -> ast.expr:
    tests = [_is(e, None) for e in exprs if not isinstance(e, ast.Constant)]
    if not tests:
        return ast.Constant(False)
    return tests[0] if len(tests) == 1 else ast.BoolOp(ast.Or(), tests)


def _unknown_or(guard: ast.expr, value: ast.expr) -> ast.expr:
    """``None if guard else value`` (guard already folded when statically false)."""
    if isinstance(guard, ast.Constant) and guard.value is False:
        return value
    return ast.IfExp(guard, ast.Constant(None), value)


def _call(func: str, *args: ast.expr) -> ast.expr:
    return ast.Call(_name(func), list(args), [])


class _Generator(ir.Visitor[ast.expr]):
    """Emits statements for IR nodes; each emitter returns an expression for the value."""

    def __init__(self, checked: CheckedProtocol) -> None:
        self.checked = checked
        self.consts: dict[str, Any] = {}
        self._const_ids: dict[tuple[type, Any], str] = {}
        self._temps = itertools.count()
        self.locals_used: set[str] = set()
        self.windows: dict[tuple[str, str, int, str], str] = {}

    # ---- plumbing

    def emit(self, node: ir.Expr, out: list[ast.stmt]) -> ast.expr:
        return self.visit(node, out)

    def temp(self, value: ast.expr, out: list[ast.stmt]) -> ast.expr:
        """`value` bound to a fresh local, unless it is already a name or constant."""
        if isinstance(value, ast.Name | ast.Constant):
            return value
        name = f"_t{next(self._temps)}"
        out.append(ast.Assign([_name(name, store=True)], value))
        return _name(name)

    def constant(self, value: Any) -> ast.expr:
        """A constant: inline for plain scalars, a module global for dates, fractions, sets."""
        value = rt.value(value)
        if value is None or type(value) in (bool, int, str):
            return ast.Constant(value)
        key = (type(value), value)
        if key not in self._const_ids:
            self._const_ids[key] = name = f"_K{len(self._const_ids)}"
            self.consts[name] = value
        return _name(self._const_ids[key])

    def helper(self, name: str, value: Any) -> str:
        self.consts[name] = value
        return name

    # ---- leaves

    def const(self, node: ir.Const, out: list[ast.stmt]) -> ast.expr:
        return self.constant(node.value)

    def fact(self, node: ir.Fact, out: list[ast.stmt]) -> ast.expr:
        get = ast.Call(ast.Attribute(_name("V"), "get", ast.Load()), [ast.Constant(node.item)], [])
        return self.temp(get, out)

    def _memo(self, local: str, body: list[ast.stmt], out: list[ast.stmt]) -> ast.expr:
        """`local`, computed by `body` only where it is still unset."""
        self.locals_used.add(local)
        out.append(ast.If(ast.Compare(_name(local), [ast.Is()], [_name("_UNSET")]), body, []))
        return _name(local)

    def def_ref(self, node: ir.DefRef, out: list[ast.stmt]) -> ast.expr:
        # Definitions are computed at most once per record: a local starts unset and is
        # filled at the first use on the path actually taken.
        local = f"_d_{node.name}"
        call = _call(f"_def_{node.name}", *(_name(p) for p in _PARAMS))
        return self._memo(local, [ast.Assign([_name(local, store=True)], call)], out)

    def _bounds(self, w: ir.Window | None, out: list[ast.stmt]) -> ast.expr:
        if w is None:
            return ast.Constant(None)
        # Several labs share one window ("within 7 days before enrollment"): compute it once
        # per record, like a definition.
        anchor = w.anchor
        assert isinstance(anchor, ir.Fact | ir.DefRef)
        anchor_id = anchor.item if isinstance(anchor, ir.Fact) else f"def:{anchor.name}"
        local = self.windows.setdefault(
            (anchor_id, w.kind, w.amount, w.unit), f"_w{len(self.windows)}"
        )
        body: list[ast.stmt] = []
        at = self.temp(self.emit(anchor, body), body)
        body.append(ast.Assign([_name(local, store=True)], self._window_value(w, at)))
        return self._memo(local, body, out)

    def _window_value(self, w: ir.Window, at: ast.expr) -> ast.expr:
        """The (first, last) day tuple; day windows inline, calendar months via the runtime."""
        if w.unit == "mo":
            args = [at, ast.Constant(w.kind), ast.Constant(w.amount), ast.Constant(True)]
            return _call(self.helper("_window", rt.window_bounds), *args)
        span = self.constant(dt.timedelta(days=w.amount))
        day = self.constant(dt.timedelta(days=1))
        minus, plus = ast.BinOp(at, ast.Sub(), span), ast.BinOp(at, ast.Add(), span)
        pairs = {
            "within_before": (minus, at),
            "within_after": (at, plus),
            "within_of": (minus, plus),
            "before": (self.constant(rt.DATE_MIN), ast.BinOp(at, ast.Sub(), day)),
            "after": (ast.BinOp(at, ast.Add(), day), self.constant(rt.DATE_MAX)),
        }
        pair = ast.Tuple(list(pairs[w.kind]), ast.Load())
        return _unknown_or(_is_none_any(at), pair)

    def _pick(self, node: ir.Select, out: list[ast.stmt]) -> ast.expr:
        bounds = self._bounds(node.window, out)
        series = ast.Call(
            ast.Attribute(_name("S"), "get", ast.Load()), [ast.Constant(node.item)], []
        )
        args = [series, bounds, ast.Constant(node.window is not None), ast.Constant(node.earliest)]
        return self.temp(_call(self.helper("_pick", rt.pick), *args), out)

    def select(self, node: ir.Select, out: list[ast.stmt]) -> ast.expr:
        obs = self._pick(node, out)
        value = ast.Attribute(obs, "value", ast.Load())
        return self.temp(_unknown_or(_is(obs, None), value), out)

    def events(self, node: ir.Events, out: list[ast.stmt]) -> ast.expr:
        bounds = self._bounds(node.window, out)
        item = ast.Constant(node.item)
        args = [
            ast.Call(ast.Attribute(_name("E"), "get", ast.Load()), [item], []),
            ast.Call(ast.Attribute(_name("S"), "get", ast.Load()), [item], []),
            ast.Constant(node.op),
            ast.Constant(node.window is not None),
            bounds,
        ]
        return self.temp(_call(self.helper("_events", rt.events), *args), out)

    # ---- arithmetic

    def arith(self, node: ir.Arith, out: list[ast.stmt]) -> ast.expr:
        a = self.temp(self.emit(node.left, out), out)
        b = self.temp(self.emit(node.right, out), out)
        if node.op == "/":
            return self.temp(_call(self.helper("_divide", rt.divide), a, b), out)
        value = ast.BinOp(a, _ARITH_OPS[node.op](), b)
        return self.temp(_unknown_or(_is_none_any(a, b), value), out)

    def neg(self, node: ir.Neg, out: list[ast.stmt]) -> ast.expr:
        a = self.temp(self.emit(node.operand, out), out)
        return self.temp(_unknown_or(_is_none_any(a), ast.UnaryOp(ast.USub(), a)), out)

    def scale(self, node: ir.Scale, out: list[ast.stmt]) -> ast.expr:
        a = self.temp(self.emit(node.operand, out), out)
        factor = rt.exact(node.factor)
        if factor == 1:
            return a
        product = ast.BinOp(a, ast.Mult(), self.constant(factor))
        return self.temp(_unknown_or(_is_none_any(a), product), out)

    def date_shift(self, node: ir.DateShift, out: list[ast.stmt]) -> ast.expr:
        a = self.emit(node.operand, out)
        args = [a, ast.Constant(node.amount), ast.Constant(node.unit == "mo")]
        return self.temp(_call(self.helper("_shift", rt.shift_date), *args), out)

    def call(self, node: ir.Call, out: list[ast.stmt]) -> ast.expr:
        args = [self.temp(self.emit(a, out), out) for a in node.args]
        func = self.helper(f"_fn_{node.func}", FUNCTIONS[node.func].impl)
        return self.temp(_unknown_or(_is_none_any(*args), _call(func, *args)), out)

    # ---- predicates

    def compare(self, node: ir.Compare, out: list[ast.stmt]) -> ast.expr:
        a = self.temp(self.emit(node.left, out), out)
        b = self.temp(self.emit(node.right, out), out)
        test = ast.Compare(a, [_CMP_OPS[node.op]()], [b])
        return self.temp(_unknown_or(_is_none_any(a, b), test), out)

    def ref_compare(self, node: ir.RefCompare, out: list[ast.stmt]) -> ast.expr:
        obs = self._pick(node.select, out)
        args = [
            obs,
            self.constant(rt.COMPARE[node.op]),
            self.constant(node.factor),
            ast.Constant(node.limit == "ULN"),
            self.constant(node.default),
        ]
        return self.temp(_call(self.helper("_refcmp", rt.reference_compare), *args), out)

    def member(self, node: ir.Member, out: list[ast.stmt]) -> ast.expr:
        a = self.temp(self.emit(node.operand, out), out)
        test: ast.expr = ast.Compare(
            a, [ast.NotIn() if node.negated else ast.In()], [self.constant(node.items)]
        )
        return self.temp(_unknown_or(_is_none_any(a), test), out)

    def is_known(self, node: ir.IsKnown, out: list[ast.stmt]) -> ast.expr:
        a = self.temp(self.emit(node.operand, out), out)
        return self.temp(
            ast.Compare(a, [ast.IsNot() if node.known else ast.Is()], [ast.Constant(None)]), out
        )

    def _junction(self, node: ir.And | ir.Or, out: list[ast.stmt]) -> ast.expr:
        # Kleene and/or: the dominant value (false for and, true for or) decides at once.
        dominant = isinstance(node, ir.And) is False
        result = f"_t{next(self._temps)}"
        a = self.temp(self.emit(node.left, out), out)
        out.append(ast.Assign([_name(result, store=True)], ast.Constant(dominant)))
        body: list[ast.stmt] = []
        b = self.temp(self.emit(node.right, body), body)
        combined = ast.IfExp(
            _is(b, dominant),
            ast.Constant(dominant),
            _unknown_or(_is_none_any(a, b), ast.Constant(not dominant)),
        )
        body.append(ast.Assign([_name(result, store=True)], combined))
        out.append(ast.If(ast.Compare(a, [ast.IsNot()], [ast.Constant(dominant)]), body, []))
        return _name(result)

    def and_(self, node: ir.And, out: list[ast.stmt]) -> ast.expr:
        return self._junction(node, out)

    def or_(self, node: ir.Or, out: list[ast.stmt]) -> ast.expr:
        return self._junction(node, out)

    def not_(self, node: ir.Not, out: list[ast.stmt]) -> ast.expr:
        a = self.temp(self.emit(node.operand, out), out)
        return self.temp(_unknown_or(_is_none_any(a), ast.UnaryOp(ast.Not(), a)), out)

    def if_(self, node: ir.If, out: list[ast.stmt]) -> ast.expr:
        # Each branch is emitted once and runs unless the condition rules it out; with an
        # unknown condition both run and must agree. (Emitting the branches again for that
        # case doubled the code at every nested `if`.)
        result = f"_t{next(self._temps)}"
        c = self.temp(self.emit(node.cond, out), out)
        values = []
        for branch, skip in ((node.then, False), (node.orelse, True)):
            value = f"_t{next(self._temps)}"
            body: list[ast.stmt] = []
            computed = self.emit(branch, body)
            body.append(ast.Assign([_name(value, store=True)], computed))
            out.append(ast.Assign([_name(value, store=True)], ast.Constant(None)))
            out.append(ast.If(ast.Compare(c, [ast.IsNot()], [ast.Constant(skip)]), body, []))
            values.append(_name(value))
        t, e = values
        known_alike = ast.BoolOp(
            ast.And(),
            [ast.Compare(t, [ast.IsNot()], [ast.Constant(None)]), ast.Compare(t, [ast.Eq()], [e])],
        )
        agree = ast.IfExp(known_alike, t, ast.Constant(None))
        chosen = ast.IfExp(_is(c, True), t, ast.IfExp(_is(c, False), e, agree))
        out.append(ast.Assign([_name(result, store=True)], chosen))
        return _name(result)

    # ---- functions

    def function(self, name: str, body: list[ast.stmt]) -> ast.FunctionDef:
        """A function of the record's parts; memo locals (definitions, windows) start unset."""
        init = [
            ast.Assign([_name(local, store=True)], _name("_UNSET"))
            for local in sorted(self.locals_used)
        ]
        self.locals_used = set()
        return ast.FunctionDef(
            name=name,
            args=ast.arguments(
                posonlyargs=[],
                args=[ast.arg(p) for p in _PARAMS],
                kwonlyargs=[],
                kw_defaults=[],
                defaults=[],
            ),
            body=init + body,
            decorator_list=[],
        )


def _criterion(gen: _Generator, c: CheckedCriterion, out: list[ast.stmt]) -> ast.expr:
    if c.rule is None:
        get = ast.Attribute(_name("A"), "get", ast.Load())
        return gen.temp(ast.Call(get, [ast.Constant(c.attestation)], []), out)
    return gen.temp(gen.emit(c.rule, out), out)


_NODE_COST: dict[type[Any], int] = {ir.Select: 4, ir.Events: 4, ir.RefCompare: 4, ir.Call: 2}


def _cost(node: ir.Expr | None, costs: dict[str, int]) -> int:
    """A static estimate of a rule's evaluation cost (definitions counted in full, from
    `costs`)."""
    if node is None:
        return 0
    own = _NODE_COST.get(type(node), 1)
    if isinstance(node, ir.DefRef):
        own += costs[node.name]
    return own + sum(_cost(child, costs) for child in ir.children(node))


def _definition_costs(definitions: dict[str, ir.Expr]) -> dict[str, int]:
    """Every definition's cost, each computed once from those it uses: walking a
    definition again at each use doubled the work per `d2: d1 + d1` line."""
    costs: dict[str, int] = {}
    for name in ir.definition_order(definitions):
        costs[name] = _cost(definitions[name], costs)
    return costs


def _verdicts_body(gen: _Generator, checked: CheckedProtocol) -> list[ast.stmt]:
    body: list[ast.stmt] = []
    results = [_criterion(gen, c, body) for c in checked.criteria]
    body.append(ast.Return(ast.Tuple(results, ast.Load())))
    return body


def _status_body(gen: _Generator, checked: CheckedProtocol) -> list[ast.stmt]:
    unknown = _name("_unknown", store=True)
    body: list[ast.stmt] = [ast.Assign([unknown], ast.Constant(False))]
    # The overall status does not depend on the order of criteria, so the cheap ones go
    # first: most ineligible patients are then decided before the expensive lab rules run.
    costs = _definition_costs(checked.definitions)
    for c in sorted(checked.criteria, key=lambda c: _cost(c.rule, costs)):
        value = _criterion(gen, c, body)
        # Stop at the first criterion that excludes: nothing later can change the status.
        blocking = c.kind == "exclusion"
        body.append(ast.If(_is(value, blocking), [ast.Return(ast.Constant("ineligible"))], []))
        body.append(ast.If(_is(value, None), [ast.Assign([unknown], ast.Constant(True))], []))
    verdict = ast.IfExp(_name("_unknown"), ast.Constant("indeterminate"), ast.Constant("eligible"))
    body.append(ast.Return(verdict))
    return body


def compile_fast(checked: CheckedProtocol) -> FastProgram:
    """Generate and compile `verdicts(V, S, E, A)` and `status(V, S, E, A)` for a protocol."""
    gen = _Generator(checked)
    functions: list[ast.stmt] = []

    # Definitions: one function each; inside, other definitions are memoized locally.
    for name, node in checked.definitions.items():
        body: list[ast.stmt] = []
        value = gen.emit(node, body)
        body.append(ast.Return(value))
        functions.append(gen.function(f"_def_{name}", body))
    functions.append(gen.function("verdicts", _verdicts_body(gen, checked)))
    functions.append(gen.function("status", _status_body(gen, checked)))

    module = ast.Module(body=functions, type_ignores=[])
    ast.fix_missing_locations(module)
    code = compile(module, f"<protocode {checked.doc.metadata.registry_id}>", "exec")
    namespace: dict[str, Any] = {"__builtins__": {}, "_UNSET": _UNSET, **gen.consts}
    # Executes a code object compiled from the syntax tree built above, never protocol text.
    exec(code, namespace)
    return FastProgram(namespace["verdicts"], namespace["status"], module)
