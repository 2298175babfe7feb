"""Compile stage of the SQL backend: checked IR → one sqlglot query over the table layout.

The query returns one row per patient: ``id``, one column per criterion (``'met'``,
``'not met'`` or ``'unknown'``) and ``status`` (``'eligible'``, ``'ineligible'``,
``'indeterminate'``), with the semantics of the reference backend
(`protocode.backends.python.closures`), decided exactly:

- Unknown is SQL NULL. SQL's AND, OR, NOT and comparisons are Kleene, as the runtime's are;
  ``if`` with an unknown condition is known only when both arms agree (a CASE says so).
- Numbers are DECIMAL, never DOUBLE, as exact rationals with tracked formats
  (`protocode.backends.sql.arith`); too wide is a compile-time `UsageError`.
- Histories (``latest``, ``any``, ``count`` …) are per-id aggregates in CTEs
  (`protocode.backends.sql.ctes`); function calls are `protocode.backends.sql.functions`.

Identifiers and literals are sqlglot nodes (`protocode.backends.sql.build`), quoted by
sqlglot: protocol text is never pasted into SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any

from sqlglot import exp

from protocode.backends.sql.arith import Arith, Num, Val, as_decimal, sql_error
from protocode.backends.sql.build import (
    aliased,
    and_,
    case,
    cmp,
    column,
    is_null,
    not_,
    not_null,
    or_,
    paren,
)
from protocode.backends.sql.ctes import NO_WINDOW, Bounds, Ctes, bounds, events_answer
from protocode.backends.sql.functions import (
    calendar_diff,
    days_between,
    extreme,
    floor_or_ceil,
    round_half_away,
    shift_date,
)
from protocode.backends.sql.layout import (
    ATTEST_PREFIX,
    DEFAULT_TABLES,
    MAX_WIDTH,
    Tables,
    is_numeric,
    number_format,
)
from protocode.core.errors import Diagnostic, UsageError
from protocode.core.source import Span
from protocode.document.model import DataItem
from protocode.language import ir
from protocode.language.check import CheckedProtocol
from protocode.language.types import DateType, NumType


class _Compiler(ir.Visitor[Val]):
    """IR → sqlglot expressions over ``patients AS p`` joined with the CTEs of `ctes`."""

    def __init__(self, checked: CheckedProtocol, tables: Tables, max_width: int) -> None:
        self.max_width = max_width
        self.checked = checked
        self.ctes = Ctes(tables)
        self.defs: dict[str, tuple[Val, frozenset[str]]] = {}
        self.uses: list[set[str]] = [set()]

    # ---- helpers

    def _item(self, name: str) -> DataItem:
        return self.checked.items[name]

    def _arith(self, span: Span) -> Arith:
        return Arith(span, self.max_width)

    def _use(self, aliases: frozenset[str] | set[str]) -> None:
        self.uses[-1].update(aliases)

    def _scoped(self, node: ir.Expr) -> tuple[Val, frozenset[str]]:
        """Compile `node`, returning the CTEs it reads."""
        self.uses.append(set())
        try:
            value = self.visit(node)
        finally:
            used = frozenset(self.uses.pop())
        self._use(used)
        return value, used

    def _num(self, node: ir.Expr) -> Num:
        value = self.visit(node)
        if not isinstance(value, Num):
            raise AssertionError(f"expected a number from {type(node).__name__}")
        return value

    def _sql(self, node: ir.Expr) -> exp.Expr:
        value = self.visit(node)
        if isinstance(value, Num):
            raise AssertionError(f"expected a non-number from {type(node).__name__}")
        return value

    def known(self, value: Val, span: Span) -> exp.Expr:
        """A two-valued test: is `value` known?"""
        return self._arith(span).known(value) if isinstance(value, Num) else not_null(value)

    # ---- leaves

    def const(self, node: ir.Const) -> Val:
        v = node.value
        if isinstance(v, bool):
            return exp.true() if v else exp.false()
        if isinstance(node.type, NumType):
            assert isinstance(v, int | Fraction)
            return self._arith(node.span).const(Fraction(v))
        if isinstance(node.type, DateType):
            return exp.cast(exp.Literal.string(v.isoformat()), "DATE")  # type: ignore[union-attr]
        return exp.Literal.string(str(v))

    def fact(self, node: ir.Fact) -> Val:
        item = self._item(node.item)
        cell = column(node.item, "p")
        if is_numeric(item):
            fmt = number_format(item)
            return Num(as_decimal(cell, fmt) if item.type == "integer" else cell, fmt)
        return cell

    def _operand(self, node: ir.Expr) -> Val:
        """Compile an operand that the caller copies into several places (shared if large)."""
        self.uses.append(set())
        try:
            value = self.visit(node)
        finally:
            used = frozenset(self.uses.pop())
        value, used = self.ctes.share(value, used)
        self._use(used)
        return value

    def _num_operand(self, node: ir.Expr) -> Num:
        value = self._operand(node)
        if not isinstance(value, Num):
            raise AssertionError(f"expected a number from {type(node).__name__}")
        return value

    def define(self, name: str) -> None:
        """Compile a definition once, after those it uses (see `compile_query`)."""
        self.defs[name] = self.ctes.share(*self._scoped(self.checked.definitions[name]))

    def def_ref(self, node: ir.DefRef) -> Val:
        value, used = self.defs[node.name]
        self._use(used)
        if isinstance(value, Num):
            return replace(
                value,
                num=value.num.copy(),
                den=None if value.den is None else value.den.copy(),
            )
        return value.copy()

    # ---- histories

    def _window(self, w: ir.Window | None) -> Bounds:
        if w is None:
            return NO_WINDOW
        anchor, used = self._scoped(w.anchor)
        assert not isinstance(anchor, Num)
        return bounds(w, anchor, used)

    def _pick(self, node: ir.Select) -> str:
        window = self._window(node.window)
        alias = self.ctes.pick(
            self._item(node.item), node.earliest, window, anchored=node.window is not None
        )
        self._use({alias})
        return alias

    def select(self, node: ir.Select) -> Val:
        alias = self._pick(node)
        item = self._item(node.item)
        value = column("value", alias)
        return Num(value, number_format(item)) if is_numeric(item) else value

    def events(self, node: ir.Events) -> Val:
        window = self._window(node.window)
        alias = self.ctes.events(self._item(node.item), window, anchored=node.window is not None)
        self._use({alias})
        return events_answer(node.op, node.item, alias, window.anchor)

    # ---- arithmetic

    def arith(self, node: ir.Arith) -> Val:
        a, b, arith = self._num(node.left), self._num(node.right), self._arith(node.span)
        if node.op == "*":
            return arith.times(a, b)
        if node.op == "/":
            if isinstance(node.right, ir.Const) and node.right.value != 0:
                # Division by a constant is multiplication by its exact reciprocal.
                assert isinstance(node.right.value, int | Fraction)
                return arith.scale(a, 1 / Fraction(node.right.value))
            return arith.divide(a, b)
        return arith.plus(a, b, subtract=node.op == "-")

    def neg(self, node: ir.Neg) -> Val:
        a = self._num(node.operand)
        return replace(a, num=exp.Neg(this=paren(a.num.copy())))

    def scale(self, node: ir.Scale) -> Val:
        operand = self.visit(node.operand)
        if not isinstance(operand, Num):
            return operand
        return self._arith(node.span).scale(operand, node.factor)

    def date_shift(self, node: ir.DateShift) -> Val:
        return shift_date(self._sql(node.operand), node.amount, node.unit == "mo")

    def call(self, node: ir.Call) -> Val:
        handler: Callable[[ir.Call], Val] | None = getattr(self, f"_call_{node.func}", None)
        if handler is None:
            raise sql_error(f"{node.func}() cannot be compiled to SQL", node.span)
        return handler(node)

    def _call_years_between(self, node: ir.Call) -> Val:
        start, end = (self._sql(a) for a in node.args)
        return calendar_diff(start, end, months=False)

    def _call_months_between(self, node: ir.Call) -> Val:
        start, end = (self._sql(a) for a in node.args)
        return calendar_diff(start, end, months=True)

    def _call_days_between(self, node: ir.Call) -> Val:
        start, end = (self._sql(a) for a in node.args)
        return days_between(start, end)

    def _call_min(self, node: ir.Call) -> Val:
        args = [self._num_operand(a) for a in node.args]
        return extreme(args, self._arith(node.span), smallest=True)

    def _call_max(self, node: ir.Call) -> Val:
        args = [self._num_operand(a) for a in node.args]
        return extreme(args, self._arith(node.span), smallest=False)

    def _call_abs(self, node: ir.Call) -> Val:
        a = self._num(node.args[0])
        den = None if a.den is None else exp.Abs(this=a.den.copy())
        return Num(exp.Abs(this=a.num.copy()), a.fmt, den, a.den_fmt, a.positive)

    def _decimal_only(self, node: ir.Call) -> Num:
        a = self._num_operand(node.args[0])
        if a.den is not None:
            raise sql_error(
                f"{node.func}() of a quotient cannot be compiled to exact SQL (its argument "
                "divides by a value that is not a power of 2 and 5)",
                node.span,
            )
        return a

    def _call_floor(self, node: ir.Call) -> Val:
        return floor_or_ceil(self._decimal_only(node), up=False)

    def _call_ceil(self, node: ir.Call) -> Val:
        return floor_or_ceil(self._decimal_only(node), up=True)

    def _call_round(self, node: ir.Call) -> Val:
        a = self._decimal_only(node)
        digits = 0
        if len(node.args) == 2:
            d = node.args[1]
            assert isinstance(d, ir.Const) and isinstance(d.value, int)
            digits = d.value
        return round_half_away(a, digits, self._arith(node.span))

    # ---- predicates

    def compare(self, node: ir.Compare) -> Val:
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(left, Num) and isinstance(right, Num):
            return self._arith(node.span).compare(node.op, left, right)
        assert not isinstance(left, Num) and not isinstance(right, Num)
        return cmp(node.op, left, right)

    def ref_compare(self, node: ir.RefCompare) -> Val:
        alias = self._pick(node.select)
        item = self._item(node.select.item)
        fmt, arith = number_format(item), self._arith(node.span)
        value = Num(column("value", alias), fmt)
        limit = column("low" if node.limit == "LLN" else "high", alias)
        with_range = arith.compare(node.op, value, arith.scale(Num(limit, fmt), node.factor))
        default: exp.Expr = exp.Null()
        if node.default is not None:
            bound = arith.const(Fraction(node.factor) * Fraction(node.default))
            default = arith.compare(node.op, value, bound)
        return case((not_null(limit), with_range), default=default)

    def member(self, node: ir.Member) -> Val:
        operand = self.visit(node.operand)
        if isinstance(operand, Num):
            arith = self._arith(node.span)
            tests = [
                arith.compare("==", operand, arith.const(Fraction(v)))  # type: ignore[arg-type]
                for v in sorted(node.items, key=str)
            ]
            found = or_(*tests)
        else:
            items = [self.const(ir.Const(v, node.operand.type, node.span)) for v in _sorted(node)]
            found = exp.In(this=paren(operand.copy()), expressions=[i.copy() for i in items])  # type: ignore[union-attr]
        return not_(found) if node.negated else found

    def is_known(self, node: ir.IsKnown) -> Val:
        known = self.known(self.visit(node.operand), node.span)
        return known if node.known else not_(known)

    def and_(self, node: ir.And) -> Val:
        return and_(self._sql(node.left), self._sql(node.right))

    def or_(self, node: ir.Or) -> Val:
        return or_(self._sql(node.left), self._sql(node.right))

    def not_(self, node: ir.Not) -> Val:
        return not_(self._sql(node.operand))

    def if_(self, node: ir.If) -> Val:
        cond = self._operand(node.cond)
        assert not isinstance(cond, Num)
        then, orelse = self._operand(node.then), self._operand(node.orelse)
        is_true, is_false = paren(cond.copy()), not_(cond)
        if isinstance(then, Num) and isinstance(orelse, Num):
            arith = self._arith(node.span)
            agree = arith.compare("==", then, orelse)
            return arith.choose([(is_true, then), (is_false, orelse), (agree, then)])
        assert not isinstance(then, Num) and not isinstance(orelse, Num)
        # With an unknown condition the value is known only when both arms agree.
        return case((is_true, then), (is_false, orelse), (cmp("==", then, orelse), then))


def _sorted(node: ir.Member) -> list[Any]:
    return sorted(node.items, key=lambda v: (type(v).__name__, str(v)))


def _verdict(value: exp.Expr) -> exp.Expr:
    return case(
        (paren(value.copy()), exp.Literal.string("met")),
        (not_(value), exp.Literal.string("not met")),
        default=exp.Literal.string("unknown"),
    )


def compile_query(
    checked: CheckedProtocol,
    *,
    tables: Tables = DEFAULT_TABLES,
    order_by: str | None = None,
    max_width: int = MAX_WIDTH,
) -> exp.Select:
    """The screening query of a checked protocol as a sqlglot AST.

    One row per row of ``patients``: ``id``, one VARCHAR column per criterion (``'met'``,
    ``'not met'``, ``'unknown'``) named by its id, and ``status``. `order_by` names a
    ``patients`` column to order the rows by (e.g. an input position); otherwise unordered.
    `max_width` bounds the DECIMAL digits of every intermediate result (an engine that types
    results wider than their exact format needs a smaller bound; see `to_sql`).
    Raises `UsageError` (with the rule's span) for a construct that has no exact SQL form.
    """
    compiler = _Compiler(checked, tables, max_width)
    names = [c.id for c in checked.criteria]
    clash = {"id", "status", *(order_by or "",)} & {n.lower() for n in names}
    if clash:
        raise sql_error(f"a criterion id clashes with an output column: {sorted(clash)[0]}", None)
    verdicts: list[exp.Expr] = []
    for i, c in enumerate(checked.criteria):
        if c.rule is None:
            value: exp.Expr = column(ATTEST_PREFIX + (c.attestation or ""), "p")
        else:
            # Definitions first, each after those it uses: compiling one never recurses
            # into another, however long a chain of definitions is.
            for name in ir.uses_in_order(c.rule, checked.definitions, compiler.defs):
                compiler.define(name)
            compiled = compiler.visit(c.rule)
            assert not isinstance(compiled, Num)
            value = compiled
        verdicts.append(exp.alias_(value, f"v{i}"))
    extra = [exp.alias_(column(order_by, "p"), "__order")] if order_by else []
    inner = exp.select(exp.alias_(column("id", "p"), "id"), *verdicts, *extra, copy=False).from_(
        aliased(exp.to_table(tables.patients), "p"), copy=False
    )
    for agg in compiler.ctes.aggregates.values():
        inner = inner.join(
            exp.to_table(agg.alias),
            on=cmp("==", column("id", agg.alias), column("id", "p")),
            join_type="left",
            copy=False,
        )
    v = [column(f"v{i}", "v") for i in range(len(names))]
    blocking = [
        exp.Is(this=col, expression=exp.false() if c.kind == "inclusion" else exp.true())
        for col, c in zip(v, checked.criteria, strict=True)
    ]
    undecided = [is_null(col) for col in v]
    status = case(
        (or_(*blocking), exp.Literal.string("ineligible"))
        if blocking
        else (exp.false(), exp.Null()),
        (or_(*undecided), exp.Literal.string("indeterminate"))
        if undecided
        else (exp.false(), exp.Null()),
        default=exp.Literal.string("eligible"),
    )
    outer = exp.select(
        exp.alias_(column("id", "v"), "id", quoted=True),
        *(exp.alias_(_verdict(col), name, quoted=True) for col, name in zip(v, names, strict=True)),
        exp.alias_(status, "status", quoted=True),
        copy=False,
    ).from_(exp.alias_(exp.Subquery(this=inner), "v", table=True), copy=False)
    if order_by:
        outer = outer.order_by(column("__order", "v"), copy=False)
    for name, cte in compiler.ctes.ctes:
        outer = outer.with_(name, as_=cte, copy=False)
    return outer


def dialects() -> tuple[str, ...]:
    """The SQL dialects sqlglot can write, by name."""
    from sqlglot.dialects.dialect import Dialects  # noqa: PLC0415 - only the names are needed

    return tuple(sorted(d.value for d in Dialects if d.value))


def to_sql(
    checked: CheckedProtocol,
    dialect: str = "duckdb",
    *,
    tables: Tables = DEFAULT_TABLES,
    order_by: str | None = None,
    pretty: bool = True,
) -> str:
    """The screening query as SQL text in `dialect` (see `compile_query`)."""
    if dialect not in dialects():
        raise UsageError(
            [
                Diagnostic(
                    "usage",
                    f"unknown SQL dialect {dialect!r}; choose one of {', '.join(dialects())}",
                )
            ]
        )
    # Spark types a product one digit wider than its operands together and, past 38 digits,
    # rounds it by default (tests/test_sql_spark.py shows the verdict it flipped): bounding
    # every exact format at 37 digits keeps Spark's types within 38, whatever its settings.
    max_width = MAX_WIDTH - 1 if dialect in _SPARK_FAMILY else MAX_WIDTH
    query = compile_query(checked, tables=tables, order_by=order_by, max_width=max_width)
    return query.sql(dialect=dialect, pretty=pretty, identify=True)


_SPARK_FAMILY = frozenset({"spark", "spark2", "databricks"})


__all__: Sequence[str] = ("Num", "compile_query", "dialects", "to_sql")
