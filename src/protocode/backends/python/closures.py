"""The reference backend: typed IR compiled once into nested Python closures.

Values are exact (`int` or GMP rational, `datetime.date`, `str`, `bool`); `None` is unknown.
Logic is Kleene three-valued: `false and unknown` is false, `true or unknown` is true.
Each IR node becomes one closure `fn(env) -> value`. With `trace=True` every node also
records its value (and `latest` records which observation it picked), which is what
explanations and the list of deciding missing items are built from; without it, the
closures do only the work needed for the verdicts.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocode.backends.python import runtime as rt
from protocode.language import ir
from protocode.language.check import CheckedProtocol
from protocode.language.library import FUNCTIONS
from protocode.records import Observation, Record

Fn = Callable[["Env"], Any]


class Env:
    """One record's evaluation state: its data, definition cache and optional trace."""

    __slots__ = ("attestations", "defs", "events", "notes", "picked", "series", "trace", "values")

    def __init__(self, record: Record, trace: bool = False) -> None:
        self.values = record.values
        self.attestations = record.attestations
        self.series = record.series
        self.events = record.events
        self.defs: dict[str, Any] = {}
        self.trace: dict[int, Any] | None = {} if trace else None
        self.picked: dict[int, Observation] = {}
        self.notes: dict[int, str] = {}


@dataclass(frozen=True, slots=True)
class Evaluator:
    """A compiled protocol: one closure per criterion, plus the node numbering of traces."""

    checked: CheckedProtocol
    criteria: tuple[Fn, ...]
    node_ids: dict[int, int]
    traced: bool

    def node_id(self, node: ir.Expr) -> int:
        """The trace key of an IR node of this protocol."""
        return self.node_ids[id(node)]


def compile_protocol(checked: CheckedProtocol, trace: bool = False) -> Evaluator:
    """Compile every criterion (and the definitions they use) into closures."""
    compiler = _Compiler(checked, trace)
    fns = []
    for c in checked.criteria:
        if c.rule is not None:
            fns.append(compiler.root(c.rule))
        else:
            fns.append(_attestation(c.attestation or ""))
    return Evaluator(checked, tuple(fns), compiler.node_ids, trace)


def compile_expressions(checked: CheckedProtocol, nodes: tuple[ir.Expr, ...]) -> tuple[Fn, ...]:
    """Several IR expressions of a protocol as closures (untraced), sharing the definitions
    they use: each definition is compiled once for all of them."""
    compiler = _Compiler(checked, False)
    return tuple(compiler.root(node) for node in nodes)


def _attestation(name: str) -> Fn:
    # Attestations live beside the data, not in the data dictionary; unknown until recorded.
    return lambda env: env.attestations.get(name)


class _Compiler(ir.Visitor[Fn]):
    def __init__(self, checked: CheckedProtocol, trace: bool) -> None:
        self.checked = checked
        self.trace = trace
        self.node_ids: dict[int, int] = {}
        self.def_fns: dict[str, Fn] = {}

    def root(self, node: ir.Expr) -> Fn:
        """Compile a rule, after the definitions it uses (each after its own uses), so that
        compiling never recurses from one definition into another."""
        definitions = self.checked.definitions
        for name in ir.uses_in_order(node, definitions, self.def_fns):
            self.def_fns[name] = self.compile(definitions[name])
        return self.compile(node)

    def compile(self, node: ir.Expr) -> Fn:
        fn = self.visit(node)
        if not self.trace:
            return fn
        key = self.node_ids.setdefault(id(node), len(self.node_ids))

        def traced(env: Env) -> Any:
            value = fn(env)
            assert env.trace is not None
            env.trace[key] = value
            return value

        return traced

    def _key(self, node: ir.Expr) -> int:
        return self.node_ids.setdefault(id(node), len(self.node_ids))

    # ---- leaves

    def const(self, node: ir.Const) -> Fn:
        value = rt.value(node.value)
        return lambda env: value

    def fact(self, node: ir.Fact) -> Fn:
        item = node.item
        return lambda env: env.values.get(item)

    def def_ref(self, node: ir.DefRef) -> Fn:
        # Compiled already by `root`: definitions come before the rules that use them.
        name, body = node.name, self.def_fns[node.name]

        def fn(env: Env) -> Any:
            defs = env.defs
            if name in defs:
                return defs[name]
            value = defs[name] = body(env)
            return value

        return fn

    def _window(self, w: ir.Window | None) -> Callable[[Env], rt.Bounds | None]:
        if w is None:
            return lambda env: None
        anchor = self.compile(w.anchor)
        kind, amount, months = w.kind, w.amount, w.unit == "mo"
        return lambda env: rt.window_bounds(anchor(env), kind, amount, months)

    def _picker(self, node: ir.Select) -> Callable[[Env], Observation | None]:
        """The observation `latest`/`earliest` picks, or None (with a note when traced)."""
        item, earliest, windowed = node.item, node.earliest, node.window is not None
        bounds = self._window(node.window)
        if not self.trace:
            return lambda env: rt.pick(env.series.get(item), bounds(env), windowed, earliest)
        key = self._key(node)
        window_text = f"; the window is {node.window.text}" if node.window is not None else ""

        def pick(env: Env) -> Observation | None:
            series, window = env.series.get(item), bounds(env)
            chosen = rt.pick(series, window, windowed, earliest)
            if chosen is None and series and (window is not None or not windowed):
                env.notes[key] = f"{item} {rt.pick_problem(series, window)}{window_text}"
            return chosen

        return pick

    def select(self, node: ir.Select) -> Fn:
        pick, key = self._picker(node), self._key(node)
        if self.trace:

            def traced(env: Env) -> Any:
                o = pick(env)
                if o is None:
                    return None
                env.picked[key] = o
                return o.value

            return traced
        return lambda env: None if (o := pick(env)) is None else o.value

    def events(self, node: ir.Events) -> Fn:
        item, op, windowed = node.item, node.op, node.window is not None
        bounds = self._window(node.window)

        def fn(env: Env) -> Any:
            window = bounds(env) if windowed else None
            return rt.events(env.events.get(item), env.series.get(item), op, windowed, window)

        return fn

    # ---- arithmetic

    def arith(self, node: ir.Arith) -> Fn:
        left, right = self.compile(node.left), self.compile(node.right)
        if node.op == "/":
            key, text = self._key(node), " ".join(node.span.text.split())

            def div(env: Env) -> Any:
                a, b = left(env), right(env)
                if b == 0 and env.trace is not None:
                    env.notes[key] = f"{text}: division by zero, so the value is unknown"
                return rt.divide(a, b)

            return div
        op = {"+": operator.add, "-": operator.sub, "*": operator.mul}[node.op]

        # Both operands are always evaluated (they have no effects): an explanation then
        # names every missing input, not only the first one met.
        def arith(env: Env) -> Any:
            a, b = left(env), right(env)
            return None if a is None or b is None else op(a, b)

        return arith

    def neg(self, node: ir.Neg) -> Fn:
        operand = self.compile(node.operand)

        def fn(env: Env) -> Any:
            a = operand(env)
            return None if a is None else -a

        return fn

    def scale(self, node: ir.Scale) -> Fn:
        operand = self.compile(node.operand)
        factor = rt.exact(node.factor)
        if factor == 1:
            return operand

        def fn(env: Env) -> Any:
            a = operand(env)
            return None if a is None else a * factor

        return fn

    def date_shift(self, node: ir.DateShift) -> Fn:
        operand = self.compile(node.operand)
        amount, months = node.amount, node.unit == "mo"

        return lambda env: rt.shift_date(operand(env), amount, months)

    def call(self, node: ir.Call) -> Fn:
        args = tuple(self.compile(a) for a in node.args)
        impl = FUNCTIONS[node.func].impl

        def fn(env: Env) -> Any:
            values = [arg(env) for arg in args]
            return None if None in values else impl(*values)

        return fn

    # ---- predicates

    def compare(self, node: ir.Compare) -> Fn:
        left, right = self.compile(node.left), self.compile(node.right)
        cmp = rt.COMPARE[node.op]
        if isinstance(node.right, ir.Const):
            limit = rt.value(node.right.value)

            def against_constant(env: Env) -> Any:
                a = left(env)
                return None if a is None else cmp(a, limit)

            return against_constant

        def fn(env: Env) -> Any:
            a, b = left(env), right(env)
            return None if a is None or b is None else cmp(a, b)

        return fn

    def ref_compare(self, node: ir.RefCompare) -> Fn:
        pick, key, trace = self._picker(node.select), self._key(node.select), self.trace
        cmp = rt.COMPARE[node.op]
        factor, default = rt.value(node.factor), rt.value(node.default)
        upper = node.limit == "ULN"

        def fn(env: Env) -> Any:
            obs = pick(env)
            if trace:
                assert env.trace is not None
                env.trace[key] = None if obs is None else obs.value
                if obs is not None:
                    env.picked[key] = obs
            return rt.reference_compare(obs, cmp, factor, upper, default)

        return fn

    def member(self, node: ir.Member) -> Fn:
        operand, items, negated = self.compile(node.operand), rt.value(node.items), node.negated

        def fn(env: Env) -> Any:
            a = operand(env)
            if a is None:
                return None
            return (a in items) != negated

        return fn

    def is_known(self, node: ir.IsKnown) -> Fn:
        operand, known = self.compile(node.operand), node.known
        return lambda env: (operand(env) is not None) == known

    def _junction(self, node: ir.And | ir.Or, dominant: bool) -> Fn:
        # Kleene and/or: the dominant value (false for and, true for or) decides at once.
        left, right = self.compile(node.left), self.compile(node.right)

        def fn(env: Env) -> Any:
            a = left(env)
            if a is dominant:
                return dominant
            b = right(env)
            if b is dominant:
                return dominant
            return None if a is None or b is None else not dominant

        return fn

    def and_(self, node: ir.And) -> Fn:
        return self._junction(node, False)

    def or_(self, node: ir.Or) -> Fn:
        return self._junction(node, True)

    def not_(self, node: ir.Not) -> Fn:
        operand = self.compile(node.operand)

        def fn(env: Env) -> Any:
            a = operand(env)
            return None if a is None else not a

        return fn

    def if_(self, node: ir.If) -> Fn:
        cond, then, orelse = (self.compile(n) for n in (node.cond, node.then, node.orelse))

        def fn(env: Env) -> Any:
            c = cond(env)
            if c is True:
                return then(env)
            if c is False:
                return orelse(env)
            a, b = then(env), orelse(env)
            return a if a is not None and a == b else None

        return fn
