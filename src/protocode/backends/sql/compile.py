"""Compile stage of the SQL backend: checked IR → one sqlglot query over the table layout.

The query returns one row per patient: ``id``, one column per criterion (``'met'``,
``'not met'`` or ``'unknown'``) and ``status`` (``'eligible'``, ``'ineligible'``,
``'indeterminate'``), with the semantics of the reference backend
(`protocode.backends.python.closures`), decided exactly:

- Unknown is SQL NULL. SQL's AND, OR, NOT and comparisons are Kleene, as the runtime's are;
  ``if`` with an unknown condition is known only when both arms agree (a CASE says so).
- Numbers are DECIMAL, never DOUBLE. A numeric expression is an exact rational: a
  numerator and an optional denominator, each a division-free DECIMAL expression, so
  ``crcl >= 60 mL/min`` compares ``num >= 60 * den`` (flipped when the denominator is
  negative; unknown when it is zero, as the runtime's division by zero is). DuckDB's own
  decimal division would give a DOUBLE and get Cockcroft-Gault = 60 wrong.
- Every DECIMAL's digits are tracked at compile time from the layout's column formats; an
  expression that could need more than 38 digits is a compile-time `UsageError` naming the
  rule text, never a silent rounding.
- ``latest``/``earliest`` and ``any``/``no``/``count``/``ever`` compile to aggregates over
  the long ``observations``/``events`` tables, one grouped pass over an item's rows each,
  LEFT JOINed to ``patients``. A pick whose window holds one row is decided in that pass;
  ids with several rows in the window get a second read of their chosen day's rows.
  Windows are closed date intervals; months move with ``+ INTERVAL n MONTH``, which clamps
  to the month's end as `protocode.language.library.add_months` does.

Identifiers and literals are sqlglot nodes, quoted by sqlglot: protocol text is never pasted
into SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from sqlglot import exp

from protocode.backends.sql.layout import (
    ATTEST_PREFIX,
    DEFAULT_TABLES,
    KNOWN_PREFIX,
    MAX_WIDTH,
    Fmt,
    Layout,
    Tables,
    is_numeric,
    layout,
    number_format,
)
from protocode.core.errors import Diagnostic, UsageError
from protocode.core.exact import decimal_places, decimal_text
from protocode.core.source import Span
from protocode.document.model import DataItem
from protocode.language import ir
from protocode.language.check import CheckedProtocol
from protocode.language.types import DateType, NumType

# DuckDB keeps products of two DECIMALs of at most 18 digits in 64 bits (and fails on
# overflow); wider products need one operand widened past this first.
_INT64_DIGITS = 18

# Records hold dates 1800-2200 and windows move them at most 200 years, so year, month and
# day differences fit in these many digits (with room for nested shifts).
_YEARS = Fmt(5, 0)
_MONTHS = Fmt(6, 0)
_DAYS = Fmt(8, 0)
_COUNT = Fmt(18, 0)

_ONE = Fraction(1)


def _fail(message: str, span: Span | None) -> UsageError:
    return UsageError([Diagnostic("sql", message, span)])


def _id(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _col(table: str, name: str) -> exp.Column:
    return exp.Column(this=_id(name), table=_id(table))


def _paren(e: exp.Expr) -> exp.Expr:
    # Only operators need parentheses to keep their grouping inside another operator.
    return exp.Paren(this=e) if isinstance(e, exp.Binary | exp.Not | exp.Neg) else e


def _cast(e: exp.Expr, fmt: Fmt) -> exp.Cast:
    return exp.Cast(this=e.copy(), to=fmt.sql_type())


def _case(*whens: tuple[exp.Expr, exp.Expr], default: Any = None) -> exp.Case:
    case = exp.Case()
    for cond, value in whens:
        case = case.when(cond.copy(), value.copy(), copy=False)
    if default is not None:
        case = case.else_(default.copy(), copy=False)
    return case


def _and(*parts: exp.Expr) -> exp.Expr:
    return exp.and_(*(_paren(p.copy()) for p in parts), copy=False)


def _or(*parts: exp.Expr) -> exp.Expr:
    return exp.or_(*(_paren(p.copy()) for p in parts), copy=False)


def _not(e: exp.Expr) -> exp.Expr:
    return exp.Not(this=_paren(e.copy()))


def _is_null(e: exp.Expr) -> exp.Expr:
    return exp.Is(this=_paren(e.copy()), expression=exp.Null())


def _not_null(e: exp.Expr) -> exp.Expr:
    return exp.Not(this=_is_null(e))


def _value_max(item: DataItem, e: exp.Expr) -> exp.Expr:
    """MAX of `item`'s values; BOOL_OR for booleans (PostgreSQL has no MAX(boolean))."""
    return exp.LogicalOr(this=e.copy()) if item.type == "boolean" else exp.Max(this=e.copy())


def _value_min(item: DataItem, e: exp.Expr) -> exp.Expr:
    """MIN of `item`'s values; BOOL_AND for booleans (PostgreSQL has no MIN(boolean))."""
    return exp.LogicalAnd(this=e.copy()) if item.type == "boolean" else exp.Min(this=e.copy())


def _decimal_literal(x: Fraction) -> tuple[exp.Expr, Fmt]:
    """A terminating decimal as a literal cast to its exact DECIMAL format."""
    scale = decimal_places(x)
    assert scale is not None, "only terminating decimals are literals"
    body = decimal_text(abs(x), scale)
    fmt = Fmt(max(1, len(body.partition(".")[0].lstrip("0"))), scale)
    literal = _cast(exp.Literal.number(body), fmt)
    return (exp.Neg(this=literal) if x < 0 else literal), fmt


_CMP: dict[str, type[exp.Binary]] = {
    "<": exp.LT,
    "<=": exp.LTE,
    ">": exp.GT,
    ">=": exp.GTE,
    "==": exp.EQ,
    "!=": exp.NEQ,
}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _join_shared(query: exp.Select, used: frozenset[str]) -> exp.Select:
    """`query` (over patients as ``p``) left-joined to the CTEs `used` of shared values."""
    for alias in sorted(used):
        query = query.join(
            exp.to_table(alias),
            on=_cmp("==", _col(alias, "id"), _col("p", "id")),
            join_type="left",
            copy=False,
        )
    return query


def _cmp(op: str, a: exp.Expr, b: exp.Expr) -> exp.Expr:
    return _CMP[op](this=_paren(a.copy()), expression=_paren(b.copy()))


@dataclass(frozen=True, slots=True)
class Num:
    """An exact number in SQL: ``num / den`` with `den` None meaning 1.

    `positive`: the denominator is statically positive (None or a positive constant), so
    comparisons need no sign test. A zero denominator means unknown (division by zero).
    """

    num: exp.Expr
    fmt: Fmt
    den: exp.Expr | None = None
    den_fmt: Fmt | None = None
    positive: bool = True


Val = Num | exp.Expr


class _Arith:
    """DECIMAL arithmetic with tracked formats; too wide is a compile-time error."""

    def __init__(self, span: Span, max_width: int = MAX_WIDTH) -> None:
        self.span = span
        self.max_width = max_width

    def check(self, fmt: Fmt) -> Fmt:
        if fmt.width > self.max_width:
            raise _fail(
                f"exact SQL for this expression needs DECIMAL({fmt.width}, {fmt.scale}), more "
                f"than {self.max_width} digits; narrow the items' plausible ranges "
                "(minimum/maximum)",
                self.span,
            )
        return fmt

    def mul(self, a: exp.Expr, af: Fmt, b: exp.Expr, bf: Fmt) -> tuple[exp.Expr, Fmt]:
        out = self.check(Fmt(af.digits + bf.digits, af.scale + bf.scale))
        left: exp.Expr = a.copy()
        if out.width > _INT64_DIGITS and af.width <= _INT64_DIGITS and bf.width <= _INT64_DIGITS:
            # Widen one side so DuckDB computes in 128 bits instead of overflowing 64.
            left = _cast(a, Fmt(_INT64_DIGITS + 1 - af.scale, af.scale))
        product = exp.Mul(this=_paren(left), expression=_paren(b.copy()))
        return _cast(product, out), out

    def add(
        self, a: exp.Expr, af: Fmt, b: exp.Expr, bf: Fmt, subtract: bool = False
    ) -> tuple[exp.Expr, Fmt]:
        out = self.check(Fmt(max(af.digits, bf.digits) + 1, max(af.scale, bf.scale)))
        node = exp.Sub if subtract else exp.Add
        return _cast(node(this=_paren(a.copy()), expression=_paren(b.copy())), out), out

    def const(self, x: Fraction) -> Num:
        if decimal_places(x) is not None:
            literal, fmt = _decimal_literal(x)
            return Num(literal, self.check(fmt))
        n, nf = _decimal_literal(Fraction(x.numerator))
        d, df = _decimal_literal(Fraction(x.denominator))
        return Num(n, self.check(nf), d, self.check(df), True)

    def times(self, a: Num, b: Num) -> Num:
        num, fmt = self.mul(a.num, a.fmt, b.num, b.fmt)
        den, den_fmt = self._den_product(a, b)
        return Num(num, fmt, den, den_fmt, a.positive and b.positive)

    def _den_product(self, a: Num, b: Num) -> tuple[exp.Expr | None, Fmt | None]:
        if a.den is None or a.den_fmt is None:
            return b.den, b.den_fmt
        if b.den is None or b.den_fmt is None:
            return a.den, a.den_fmt
        return self.mul(a.den, a.den_fmt, b.den, b.den_fmt)

    def cross(self, a: Num, b: Num) -> tuple[exp.Expr, Fmt, exp.Expr, Fmt]:
        """``a.num * b.den`` and ``b.num * a.den``: both sides over one denominator."""
        left, lf = a.num, a.fmt
        if b.den is not None and b.den_fmt is not None:
            left, lf = self.mul(a.num, a.fmt, b.den, b.den_fmt)
        right, rf = b.num, b.fmt
        if a.den is not None and a.den_fmt is not None:
            right, rf = self.mul(b.num, b.fmt, a.den, a.den_fmt)
        return left, lf, right, rf

    def plus(self, a: Num, b: Num, subtract: bool) -> Num:
        left, lf, right, rf = self.cross(a, b)
        num, fmt = self.add(left, lf, right, rf, subtract)
        den, den_fmt = self._den_product(a, b)
        return Num(num, fmt, den, den_fmt, a.positive and b.positive)

    def divide(self, a: Num, b: Num) -> Num:
        # (n1/d1) / (n2/d2) = (n1*d2) / (d1*n2); a zero divisor makes the denominator zero,
        # which every use reads as unknown, as the runtime's division by zero is.
        num, fmt = (a.num, a.fmt)
        if b.den is not None and b.den_fmt is not None:
            num, fmt = self.mul(a.num, a.fmt, b.den, b.den_fmt)
        den, den_fmt = b.num, b.fmt
        if a.den is not None and a.den_fmt is not None:
            den, den_fmt = self.mul(a.den, a.den_fmt, b.num, b.fmt)
        return Num(num, fmt, den, den_fmt, False)

    def scale(self, a: Num, factor: Fraction) -> Num:
        if factor == 1:
            return a
        f = self.const(factor)
        return self.times(a, f)

    def compare(self, op: str, a: Num, b: Num) -> exp.Expr:
        if a.den is None and b.den is None:
            self.check(a.fmt.union(b.fmt))
            return _cmp(op, a.num, b.num)
        left, lf, right, rf = self.cross(a, b)
        self.check(lf.union(rf))
        same, flipped = _cmp(op, left, right), _cmp(_FLIP[op], left, right)
        signs = [n.den for n in (a, b) if not n.positive and n.den is not None]
        zero = exp.Literal.number(0)
        if not signs:
            return same
        if len(signs) == 1:
            d = signs[0]
            return _case((_cmp(">", d, zero), same), (_cmp("<", d, zero), flipped))
        d1, d2 = signs
        agree = _or(
            _and(_cmp(">", d1, zero), _cmp(">", d2, zero)),
            _and(_cmp("<", d1, zero), _cmp("<", d2, zero)),
        )
        differ = _or(
            _and(_cmp(">", d1, zero), _cmp("<", d2, zero)),
            _and(_cmp("<", d1, zero), _cmp(">", d2, zero)),
        )
        return _case((agree, same), (differ, flipped))

    def known(self, a: Num) -> exp.Expr:
        if a.den is None:
            return _not_null(a.num)
        if a.positive:
            return _and(_not_null(a.num), _not_null(a.den))
        return _and(_not_null(a.num), _not_null(a.den), _cmp("!=", a.den, exp.Literal.number(0)))


@dataclass(frozen=True, slots=True)
class _Bounds:
    """A window's closed date interval (a None side is unbounded) around its anchor."""

    key: tuple[Any, ...]
    lo: exp.Expr | None
    hi: exp.Expr | None
    used: frozenset[str]
    anchor: exp.Expr | None

    def test(self, last: exp.Expr, first: exp.Expr) -> exp.Expr | None:
        """``last >= lo AND first <= hi``: a span from `first` to `last` meets the window."""
        parts = []
        if self.lo is not None:
            parts.append(_cmp(">=", last, self.lo))
        if self.hi is not None:
            parts.append(_cmp("<=", first, self.hi))
        return _and(*parts) if parts else None


@dataclass(frozen=True, slots=True)
class _Aggregate:
    alias: str
    uses: frozenset[str]


class _Compiler(ir.Visitor[Val]):
    """IR → sqlglot expressions over ``patients AS p`` joined with aggregate CTEs."""

    def __init__(self, checked: CheckedProtocol, tables: Tables, max_width: int) -> None:
        self.max_width = max_width
        self.checked = checked
        self.layout: Layout = layout(checked)
        self.tables = tables
        self.ctes: list[tuple[str, exp.Select]] = []
        self.aggregates: dict[tuple[Any, ...], _Aggregate] = {}
        self.defs: dict[str, tuple[Val, frozenset[str]]] = {}
        self.uses: list[set[str]] = [set()]

    # ---- helpers

    def _item(self, name: str) -> DataItem:
        return self.checked.items[name]

    def _arith(self, span: Span) -> _Arith:
        return _Arith(span, self.max_width)

    def _use(self, aliases: frozenset[str] | set[str]) -> None:
        self.uses[-1].update(aliases)

    def _scoped(self, node: ir.Expr) -> tuple[Val, frozenset[str]]:
        """Compile `node`, returning the aggregates it reads."""
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
        return self._arith(span).known(value) if isinstance(value, Num) else _not_null(value)

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
        column = _col("p", node.item)
        if is_numeric(item):
            fmt = number_format(item)
            return Num(_cast(column, fmt) if item.type == "integer" else column, fmt)
        return column

    def _operand(self, node: ir.Expr) -> Val:
        """Compile an operand that the caller copies into several places (shared if large)."""
        self.uses.append(set())
        try:
            value = self.visit(node)
        finally:
            used = frozenset(self.uses.pop())
        value, used = self._shared(value, used)
        self._use(used)
        return value

    def _num_operand(self, node: ir.Expr) -> Num:
        value = self._operand(node)
        if not isinstance(value, Num):
            raise AssertionError(f"expected a number from {type(node).__name__}")
        return value

    def _shared(self, value: Val, used: frozenset[str]) -> tuple[Val, frozenset[str]]:
        """`value` itself while it is small enough to copy into every use; else the columns
        of a CTE, one row per patient, that compute it once.

        Some values are copied into several places: a definition at each reference, an
        `if`'s condition and arms, the arguments of `min`, `max` and `round`. Copied whole,
        they doubled the query at each ``d2: d1 + d1`` line or nested `if`; a CTE for every
        value would add a join to the common small ones (the seed protocol's query has none).
        """
        parts = [value.num, value.den] if isinstance(value, Num) else [value]
        if _small(*(p for p in parts if p is not None)):
            return value, used
        alias = f"d{len(self.aggregates)}"
        columns = [exp.alias_(_col("p", "id"), "id")]
        if isinstance(value, Num):
            columns.append(exp.alias_(value.num, "num"))
            den = None
            if value.den is not None:
                columns.append(exp.alias_(value.den, "den"))
                den = _col(alias, "den")
            shared: Val = replace(value, num=_col(alias, "num"), den=den)
        else:
            columns.append(exp.alias_(value, "value"))
            shared = _col(alias, "value")
        query = exp.select(*columns, copy=False).from_(
            exp.alias_(exp.to_table(self.tables.patients), "p", table=True), copy=False
        )
        self.ctes.append((alias, _join_shared(query, used)))
        self.aggregates[("shared", alias)] = _Aggregate(alias, used)
        return shared, frozenset({alias})

    def define(self, name: str) -> None:
        """Compile a definition once, after those it uses (see `compile_query`)."""
        self.defs[name] = self._shared(*self._scoped(self.checked.definitions[name]))

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

    # ---- windows and aggregates

    def _bounds(self, w: ir.Window, anchor: exp.Expr) -> tuple[exp.Expr | None, exp.Expr | None]:
        months = w.unit == "mo"

        def shift(amount: int) -> exp.Expr:
            return _shift(anchor, amount, months)

        match w.kind:
            case "within_before":
                return shift(-w.amount), anchor.copy()
            case "within_after":
                return anchor.copy(), shift(w.amount)
            case "within_of":
                return shift(-w.amount), shift(w.amount)
            case "before":
                return None, _shift(anchor, -1, False)
            case _:
                return _shift(anchor, 1, False), None

    def _window(self, w: ir.Window | None) -> _Bounds:
        """The bounds of a window (None when absent), keyed for sharing aggregates."""
        if w is None:
            return _Bounds((), None, None, frozenset(), None)
        anchor, used = self._scoped(w.anchor)
        assert not isinstance(anchor, Num)
        lo, hi = self._bounds(w, anchor)
        key = (w.kind, w.amount, w.unit, anchor.sql("duckdb"))
        return _Bounds(key, lo, hi, used, anchor)

    def _source(
        self, table: str, item: str, used: frozenset[str], anchored: bool = True
    ) -> exp.Select:
        """``FROM <table> AS t JOIN patients AS p … WHERE t.item = item``; without a window
        (`anchored` False) nothing of ``patients`` is read and the join is left out."""
        query = exp.select().from_(exp.alias_(exp.to_table(table), "t", table=True), copy=False)
        if anchored:
            query = query.join(
                exp.alias_(exp.to_table(self.tables.patients), "p", table=True),
                on=_cmp("==", _col("t", "id"), _col("p", "id")),
                copy=False,
            )
        return _join_shared(query, used).where(
            _cmp("==", _col("t", "item"), exp.Literal.string(item)), copy=False
        )

    def _observation_value(self, item: DataItem, column: exp.Expr) -> exp.Expr:
        if is_numeric(item):
            return _cast(column, number_format(item))
        if item.type == "date":
            return exp.cast(column.copy(), "DATE")
        if item.type == "boolean":
            return exp.cast(column.copy(), "BOOLEAN")
        return column.copy()

    def _day_stats(self, item: DataItem) -> list[exp.Expr]:
        """Aggregates over one day's rows: the smallest and largest value and, for numbers,
        the row count and the reference limits' counts and extremes."""
        value = self._observation_value(item, _col("t", "value"))
        columns: list[exp.Expr] = [
            exp.alias_(_value_min(item, value), "vmin"),
            exp.alias_(_value_max(item, value), "vmax"),
        ]
        if is_numeric(item):
            columns.append(exp.alias_(exp.Count(this=exp.Star()), "n"))
            for name in ("low", "high"):
                x = self._observation_value(item, _col("t", name))
                columns += [
                    exp.alias_(exp.Count(this=x.copy()), f"{name}_n"),
                    exp.alias_(exp.Min(this=x.copy()), f"{name}_min"),
                    exp.alias_(exp.Max(this=x.copy()), f"{name}_max"),
                ]
        return columns

    def _one_observation(self, item: DataItem, g: str) -> exp.Expr:
        """The rows `_day_stats` summed up in `g` are one observation: the same value and,
        for numbers, the same reference range (either absent from every row or equal)."""
        ok = [_cmp("==", _col(g, "vmin"), _col(g, "vmax"))]
        if is_numeric(item):
            for name in ("low", "high"):
                n = _col(g, f"{name}_n")
                ok.append(
                    _or(
                        _cmp("==", n, exp.Literal.number(0)),
                        _and(
                            _cmp("==", n, _col(g, "n")),
                            _cmp("==", _col(g, f"{name}_min"), _col(g, f"{name}_max")),
                        ),
                    )
                )
        return _and(*ok)

    def _pick(self, node: ir.Select) -> str:
        """The alias of the CTE holding the picked observation (value, low, high) per id.

        One pass over the item's rows counts, per id, the undated rows and the rows in the
        window, and finds the chosen day (the last or first in the window). With no undated
        row and one row in the window (the usual case) that row is the pick: its value and
        reference range are read in the same pass. Ids with several rows in the window get a
        second pass over their chosen day's rows alone, which must all be one observation
        (same value and range) for the pick to be known. An undated row leaves it unknown.
        """
        window = self._window(node.window)
        key, used = ("select", node.item, node.earliest, window.key), window.used
        if key in self.aggregates:
            agg = self.aggregates[key]
        else:
            k = len(self.aggregates)
            alias, dates, days = f"s{k}", f"s{k}_date", f"s{k}_day"
            item = self._item(node.item)
            date = _col("t", "date")
            condition = window.test(date, date)

            def in_window(e: exp.Expr) -> exp.Expr:
                # Without a window every row counts: an undated one makes the pick unknown.
                return e.copy() if condition is None else _case((condition, e))

            zero, one = exp.Literal.number(0), exp.Literal.number(1)
            chosen = (exp.Min if node.earliest else exp.Max)(this=in_window(date))
            names = ["value", *(("low", "high") if is_numeric(item) else ())]
            picks = (
                self._source(
                    self.tables.observations, node.item, used, anchored=node.window is not None
                )
                .select(
                    exp.alias_(_col("t", "id"), "id"),
                    exp.alias_(exp.Count(this=_case((_is_null(date), one))), "undated"),
                    exp.alias_(exp.Count(this=in_window(one)), "n"),
                    exp.alias_(chosen, "chosen"),
                    # With one row in the window, that row's cells.
                    *(
                        exp.alias_(
                            _value_max(
                                item, in_window(self._observation_value(item, _col("t", name)))
                            ),
                            name,
                        )
                        for name in names
                    ),
                    copy=False,
                )
                .group_by(_col("t", "id"), copy=False)
            )
            several = _and(
                _cmp("==", _col(dates, "undated"), zero), _cmp(">", _col(dates, "n"), one)
            )
            chosen_day = (
                exp.select(exp.alias_(_col("t", "id"), "id"), *self._day_stats(item), copy=False)
                .from_(
                    exp.alias_(exp.to_table(self.tables.observations), "t", table=True),
                    copy=False,
                )
                .join(
                    exp.to_table(dates),
                    on=_and(
                        _cmp("==", _col(dates, "id"), _col("t", "id")),
                        _cmp("==", _col(dates, "chosen"), date),
                    ),
                    copy=False,
                )
                .where(
                    _and(_cmp("==", _col("t", "item"), exp.Literal.string(node.item)), several),
                    copy=False,
                )
                .group_by(_col("t", "id"), copy=False)
            )
            single = _and(
                _cmp("==", _col(dates, "undated"), zero), _cmp("==", _col(dates, "n"), one)
            )
            agreed = self._one_observation(item, days)
            day_column = {"value": "vmin", "low": "low_min", "high": "high_min"}

            def picked(name: str) -> exp.Expr:
                return _case(
                    (single, _col(dates, name)),
                    default=_case((agreed, _col(days, day_column[name]))),
                )

            values = (
                exp.select(
                    exp.alias_(_col(dates, "id"), "id"),
                    *(exp.alias_(picked(name), name) for name in names),
                    copy=False,
                )
                .from_(exp.to_table(dates), copy=False)
                .join(
                    exp.to_table(days),
                    on=_cmp("==", _col(days, "id"), _col(dates, "id")),
                    join_type="left",
                    copy=False,
                )
            )
            self.ctes += [(dates, picks), (days, chosen_day), (alias, values)]
            agg = self.aggregates[key] = _Aggregate(alias, used)
        self._use({agg.alias})
        return agg.alias

    def select(self, node: ir.Select) -> Val:
        alias = self._pick(node)
        item = self._item(node.item)
        value = _col(alias, "value")
        return Num(value, number_format(item)) if is_numeric(item) else value

    def events(self, node: ir.Events) -> Val:
        item = self._item(node.item)
        window = self._window(node.window)
        key, used, anchor = ("events", node.item, window.key), window.used, window.anchor
        if key in self.aggregates:
            agg = self.aggregates[key]
        else:
            alias = f"e{len(self.aggregates)}"
            date = _col("t", "date")
            one = exp.Literal.number(1)
            # An occurrence overlaps the window: it starts before the window ends and ends
            # (or, without an end, starts) after the window starts.
            end = (
                exp.Coalesce(this=_col("t", "end"), expressions=[date])
                if item.kind == "event"
                else date
            )
            overlap = window.test(end, date)
            hits: exp.Expr = (
                exp.Count(this=date) if overlap is None else exp.Count(this=_case((overlap, one)))
            )
            table = self.tables.events if item.kind == "event" else self.tables.observations
            query = (
                self._source(table, node.item, used, anchored=node.window is not None)
                .select(
                    exp.alias_(_col("t", "id"), "id"),
                    exp.alias_(exp.Count(this=exp.Star()), "n"),
                    exp.alias_(exp.Count(this=_case((_is_null(date), one))), "undated"),
                    exp.alias_(hits, "hits"),
                    copy=False,
                )
                .group_by(_col("t", "id"), copy=False)
            )
            self.ctes.append((alias, query))
            agg = self.aggregates[key] = _Aggregate(alias, used)
        self._use({agg.alias})
        return self._events_answer(node, agg.alias, anchor)

    def _events_answer(self, node: ir.Events, alias: str, anchor: exp.Expr | None) -> Val:
        zero, one = exp.Literal.number(0), exp.Literal.number(1)
        n = exp.Coalesce(this=_col(alias, "n"), expressions=[zero])
        undated, hits = _col(alias, "undated"), _col(alias, "hits")
        # Rows of an item's history imply that it is known, whatever the flag says.
        known = _or(
            exp.Is(this=_col("p", KNOWN_PREFIX + node.item), expression=exp.true()),
            _cmp(">", n, zero),
        )
        empty = _cmp("==", n, zero)
        whens: list[tuple[exp.Expr, exp.Expr]] = [(_not(known), exp.Null())]
        op = node.op
        answer_if_empty = {"any": exp.false(), "ever": exp.false(), "no": exp.true(), "count": zero}
        whens.append((empty, answer_if_empty[op]))
        if op == "ever":
            return _case(*whens, default=exp.true())
        if anchor is not None:
            whens.append((_is_null(anchor), exp.Null()))
        some_undated = _cmp(">", undated, zero)
        if op == "count":
            whens.append((some_undated, exp.Null()))
            return Num(_cast(_case(*whens, default=hits), _COUNT), _COUNT)
        found = _cmp(">", hits, zero)
        whens += [(found, exp.true() if op == "any" else exp.false()), (some_undated, exp.Null())]
        del one
        return _case(*whens, default=exp.false() if op == "any" else exp.true())

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
        return replace(a, num=exp.Neg(this=_paren(a.num.copy())))

    def scale(self, node: ir.Scale) -> Val:
        operand = self.visit(node.operand)
        if not isinstance(operand, Num):
            return operand
        return self._arith(node.span).scale(operand, node.factor)

    def date_shift(self, node: ir.DateShift) -> Val:
        return _shift(self._sql(node.operand), node.amount, node.unit == "mo")

    def call(self, node: ir.Call) -> Val:
        handler: Callable[[ir.Call], Val] | None = getattr(self, f"_call_{node.func}", None)
        if handler is None:
            raise _fail(f"{node.func}() cannot be compiled to SQL", node.span)
        return handler(node)

    def _dates(self, node: ir.Call) -> tuple[exp.Expr, exp.Expr]:
        start, end = (self._sql(a) for a in node.args)
        return start, end

    def _calendar_diff(self, node: ir.Call, months: bool) -> Val:
        start, end = self._dates(node)

        def part(unit: str, d: exp.Expr) -> exp.Expr:
            return exp.Extract(this=exp.var(unit), expression=d.copy())

        years = exp.Sub(this=part("YEAR", end), expression=part("YEAR", start))
        if months:
            whole: exp.Expr = exp.Add(
                this=exp.Mul(this=exp.Paren(this=years), expression=exp.Literal.number(12)),
                expression=exp.Sub(this=part("MONTH", end), expression=part("MONTH", start)),
            )
            early = _cmp("<", part("DAY", end), part("DAY", start))
        else:
            whole = years

            def month_day(d: exp.Expr) -> exp.Expr:
                return exp.Add(
                    this=exp.Mul(this=part("MONTH", d), expression=exp.Literal.number(100)),
                    expression=part("DAY", d),
                )

            # A birthday not yet reached this year: completed years are one fewer.
            early = _cmp("<", month_day(end), month_day(start))
        fmt = _MONTHS if months else _YEARS
        value = exp.Sub(
            this=exp.Paren(this=whole),
            expression=_case((early, exp.Literal.number(1)), default=exp.Literal.number(0)),
        )
        return Num(_cast(value, fmt), fmt)

    def _call_years_between(self, node: ir.Call) -> Val:
        return self._calendar_diff(node, months=False)

    def _call_months_between(self, node: ir.Call) -> Val:
        return self._calendar_diff(node, months=True)

    def _call_days_between(self, node: ir.Call) -> Val:
        start, end = self._dates(node)
        diff = exp.DateDiff(this=end.copy(), expression=start.copy(), unit=exp.var("DAY"))
        return Num(_cast(diff, _DAYS), _DAYS)

    def _extreme(self, node: ir.Call, smallest: bool) -> Val:
        args = [self._num_operand(a) for a in node.args]
        arith = self._arith(node.span)
        result = args[0]
        for other in args[1:]:
            keep = arith.compare("<=" if smallest else ">=", result, other)
            take = arith.compare(">" if smallest else "<", result, other)
            fmt = arith.check(result.fmt.union(other.fmt))
            num = _case((keep, _cast(result.num, fmt)), (take, _cast(other.num, fmt)))
            if result.den is None and other.den is None:
                result = Num(num, fmt)
                continue
            one = _decimal_literal(_ONE)
            d1, f1 = (result.den, result.den_fmt) if result.den is not None else one
            d2, f2 = (other.den, other.den_fmt) if other.den is not None else one
            assert f1 is not None and f2 is not None
            den_fmt = arith.check(f1.union(f2))
            # An unknown comparison leaves both arms unmatched: NULL, i.e. unknown.
            den = _case((keep, _cast(d1, den_fmt)), (take, _cast(d2, den_fmt)))
            result = Num(num, fmt, den, den_fmt, result.positive and other.positive)
        return result

    def _call_min(self, node: ir.Call) -> Val:
        return self._extreme(node, smallest=True)

    def _call_max(self, node: ir.Call) -> Val:
        return self._extreme(node, smallest=False)

    def _call_abs(self, node: ir.Call) -> Val:
        a = self._num(node.args[0])
        den = None if a.den is None else exp.Abs(this=a.den.copy())
        return Num(exp.Abs(this=a.num.copy()), a.fmt, den, a.den_fmt, a.positive)

    def _decimal_only(self, node: ir.Call) -> Num:
        a = self._num_operand(node.args[0])
        if a.den is not None:
            raise _fail(
                f"{node.func}() of a quotient cannot be compiled to exact SQL (its argument "
                "divides by a value that is not a power of 2 and 5)",
                node.span,
            )
        return a

    def _call_floor(self, node: ir.Call) -> Val:
        a = self._decimal_only(node)
        fmt = Fmt(a.fmt.digits + 1, 0)
        return Num(_cast(exp.Floor(this=a.num.copy()), fmt), fmt)

    def _call_ceil(self, node: ir.Call) -> Val:
        a = self._decimal_only(node)
        fmt = Fmt(a.fmt.digits + 1, 0)
        return Num(_cast(exp.Ceil(this=a.num.copy()), fmt), fmt)

    def _call_round(self, node: ir.Call) -> Val:
        a = self._decimal_only(node)
        digits = 0
        if len(node.args) == 2:
            d = node.args[1]
            assert isinstance(d, ir.Const) and isinstance(d.value, int)
            digits = d.value
        arith = self._arith(node.span)
        if digits >= a.fmt.scale:
            return a
        # Half away from zero: floor(|x| * 10^d + 1/2) / 10^d with the sign put back.
        shifted, sf = arith.mul(a.num, a.fmt, *_decimal_literal(Fraction(10) ** digits))
        half, hf = _decimal_literal(Fraction(1, 2))
        up_fmt = arith.check(Fmt(sf.digits + 1, 0))

        def rounded(x: exp.Expr) -> exp.Expr:
            added, _ = arith.add(x, sf, half, hf)
            return _cast(exp.Floor(this=added), up_fmt)

        zero = exp.Literal.number(0)
        magnitude = _case(
            (_cmp(">=", shifted, zero), rounded(shifted)),
            default=exp.Neg(this=exp.Paren(this=rounded(exp.Neg(this=exp.Paren(this=shifted))))),
        )
        back, bf = _decimal_literal(Fraction(1, 10**digits))
        num, fmt = arith.mul(magnitude, up_fmt, back, bf)
        return Num(num, fmt)

    # ---- predicates

    def compare(self, node: ir.Compare) -> Val:
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(left, Num) and isinstance(right, Num):
            return self._arith(node.span).compare(node.op, left, right)
        assert not isinstance(left, Num) and not isinstance(right, Num)
        return _cmp(node.op, left, right)

    def ref_compare(self, node: ir.RefCompare) -> Val:
        alias = self._pick(node.select)
        item = self._item(node.select.item)
        fmt, arith = number_format(item), self._arith(node.span)
        value = Num(_col(alias, "value"), fmt)
        limit = _col(alias, "low" if node.limit == "LLN" else "high")
        with_range = arith.compare(node.op, value, arith.scale(Num(limit, fmt), node.factor))
        default: exp.Expr = exp.Null()
        if node.default is not None:
            bound = arith.const(Fraction(node.factor) * Fraction(node.default))
            default = arith.compare(node.op, value, bound)
        return _case((_not_null(limit), with_range), default=default)

    def member(self, node: ir.Member) -> Val:
        operand = self.visit(node.operand)
        if isinstance(operand, Num):
            arith = self._arith(node.span)
            tests = [
                arith.compare("==", operand, arith.const(Fraction(v)))  # type: ignore[arg-type]
                for v in sorted(node.items, key=str)
            ]
            found = _or(*tests)
        else:
            items = [self.const(ir.Const(v, node.operand.type, node.span)) for v in _sorted(node)]
            found = exp.In(this=_paren(operand.copy()), expressions=[i.copy() for i in items])  # type: ignore[union-attr]
        return _not(found) if node.negated else found

    def is_known(self, node: ir.IsKnown) -> Val:
        known = self.known(self.visit(node.operand), node.span)
        return known if node.known else _not(known)

    def and_(self, node: ir.And) -> Val:
        return _and(self._sql(node.left), self._sql(node.right))

    def or_(self, node: ir.Or) -> Val:
        return _or(self._sql(node.left), self._sql(node.right))

    def not_(self, node: ir.Not) -> Val:
        return _not(self._sql(node.operand))

    def if_(self, node: ir.If) -> Val:
        cond = self._operand(node.cond)
        assert not isinstance(cond, Num)
        then, orelse = self._operand(node.then), self._operand(node.orelse)
        is_true, is_false = _paren(cond.copy()), _not(cond)
        if isinstance(then, Num) and isinstance(orelse, Num):
            arith = self._arith(node.span)
            agree = arith.compare("==", then, orelse)
            fmt = arith.check(then.fmt.union(orelse.fmt))
            num = _case(
                (is_true, _cast(then.num, fmt)),
                (is_false, _cast(orelse.num, fmt)),
                (agree, _cast(then.num, fmt)),
            )
            if then.den is None and orelse.den is None:
                return Num(num, fmt)
            one = _decimal_literal(_ONE)
            d1, f1 = (then.den, then.den_fmt) if then.den is not None else one
            d2, f2 = (orelse.den, orelse.den_fmt) if orelse.den is not None else one
            assert f1 is not None and f2 is not None
            den_fmt = arith.check(f1.union(f2))
            den = _case(
                (is_true, _cast(d1, den_fmt)),
                (is_false, _cast(d2, den_fmt)),
                (agree, _cast(d1, den_fmt)),
            )
            return Num(num, fmt, den, den_fmt, then.positive and orelse.positive)
        assert not isinstance(then, Num) and not isinstance(orelse, Num)
        # With an unknown condition the value is known only when both arms agree.
        return _case((is_true, then), (is_false, orelse), (_cmp("==", then, orelse), then))


# A value's SQL is copied into its uses while it stays this small (the seed protocol's
# largest, Cockcroft-Gault, has 177 nodes, 18 deep); a larger one gets a CTE of its own.
_INLINE_NODES = 256
_INLINE_DEPTH = 32


def _small(*parts: exp.Expr) -> bool:
    """Whether SQL expressions are small enough to copy into every use (iterative count)."""
    nodes = 0
    stack = [(part, 1) for part in parts]
    while stack:
        e, depth = stack.pop()
        nodes += 1
        if nodes > _INLINE_NODES or depth > _INLINE_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in e.iter_expressions())
    return True


def _sorted(node: ir.Member) -> list[Any]:
    return sorted(node.items, key=lambda v: (type(v).__name__, str(v)))


def _shift(date: exp.Expr, amount: int, months: bool) -> exp.Expr:
    """`date` moved by whole days or calendar months, as a DATE."""
    if amount == 0:
        return date.copy()
    unit = exp.var("MONTH" if months else "DAY")
    moved = exp.DateAdd(this=date.copy(), expression=exp.Literal.number(amount), unit=unit)
    return exp.cast(moved, "DATE")


def _verdict(value: exp.Expr) -> exp.Expr:
    return _case(
        (_paren(value.copy()), exp.Literal.string("met")),
        (_not(value), exp.Literal.string("not met")),
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
        raise _fail(f"a criterion id clashes with an output column: {sorted(clash)[0]}", None)
    verdicts: list[exp.Expr] = []
    for i, c in enumerate(checked.criteria):
        if c.rule is None:
            value: exp.Expr = _col("p", ATTEST_PREFIX + (c.attestation or ""))
        else:
            # Definitions first, each after those it uses: compiling one never recurses
            # into another, however long a chain of definitions is.
            for name in ir.uses_in_order(c.rule, checked.definitions, compiler.defs):
                compiler.define(name)
            compiled = compiler.visit(c.rule)
            assert not isinstance(compiled, Num)
            value = compiled
        verdicts.append(exp.alias_(value, f"v{i}"))
    extra = [exp.alias_(_col("p", order_by), "__order")] if order_by else []
    inner = exp.select(exp.alias_(_col("p", "id"), "id"), *verdicts, *extra, copy=False).from_(
        exp.alias_(exp.to_table(tables.patients), "p", table=True), copy=False
    )
    for agg in compiler.aggregates.values():
        inner = inner.join(
            exp.to_table(agg.alias),
            on=_cmp("==", _col(agg.alias, "id"), _col("p", "id")),
            join_type="left",
            copy=False,
        )
    v = [_col("v", f"v{i}") for i in range(len(names))]
    blocking = [
        exp.Is(this=col, expression=exp.false() if c.kind == "inclusion" else exp.true())
        for col, c in zip(v, checked.criteria, strict=True)
    ]
    undecided = [_is_null(col) for col in v]
    status = _case(
        (_or(*blocking), exp.Literal.string("ineligible"))
        if blocking
        else (exp.false(), exp.Null()),
        (_or(*undecided), exp.Literal.string("indeterminate"))
        if undecided
        else (exp.false(), exp.Null()),
        default=exp.Literal.string("eligible"),
    )
    outer = exp.select(
        exp.alias_(_col("v", "id"), "id", quoted=True),
        *(exp.alias_(_verdict(col), name, quoted=True) for col, name in zip(v, names, strict=True)),
        exp.alias_(status, "status", quoted=True),
        copy=False,
    ).from_(exp.alias_(exp.Subquery(this=inner), "v", table=True), copy=False)
    if order_by:
        outer = outer.order_by(_col("v", "__order"), copy=False)
    for name, cte in compiler.ctes:
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
