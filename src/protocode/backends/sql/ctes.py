"""The common table expressions of the screening query: what it reads besides ``patients``.

``latest``/``earliest`` and ``any``/``no``/``count``/``ever`` compile to aggregates over the
long ``observations``/``events`` tables, one grouped pass over an item's rows each, LEFT
JOINed to ``patients``. A pick whose window holds one row is decided in that pass; ids with
several rows in the window get a second read of their chosen day's rows. Windows are closed
date intervals. A value too large to copy into each of its uses is computed once, in a CTE
of its own (`Ctes.share`). Equal aggregates (same item, window and anchor) are built once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlglot import exp

from protocode.backends.sql.arith import Num, Val, as_decimal
from protocode.backends.sql.build import aliased, and_, case, cmp, column, is_null, not_, or_
from protocode.backends.sql.functions import shift_date
from protocode.backends.sql.layout import KNOWN_PREFIX, Fmt, Tables, is_numeric, number_format
from protocode.document.model import DataItem
from protocode.language import ir

_COUNT = Fmt(18, 0)

# A value's SQL is copied into its uses while it stays this small (the seed protocol's
# largest, Cockcroft-Gault, has 177 nodes, 18 deep); a larger one gets a CTE of its own.
_INLINE_NODES = 256
_INLINE_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Bounds:
    """A window's closed date interval (a None side is unbounded) around its anchor.

    `key` identifies the window for sharing aggregates; `used` are the CTEs its anchor reads.
    """

    key: tuple[Any, ...]
    lo: exp.Expr | None
    hi: exp.Expr | None
    used: frozenset[str]
    anchor: exp.Expr | None

    def test(self, last: exp.Expr, first: exp.Expr) -> exp.Expr | None:
        """``last >= lo AND first <= hi``: a span from `first` to `last` meets the window."""
        parts = []
        if self.lo is not None:
            parts.append(cmp(">=", last, self.lo))
        if self.hi is not None:
            parts.append(cmp("<=", first, self.hi))
        return and_(*parts) if parts else None


NO_WINDOW = Bounds((), None, None, frozenset(), None)
"""The bounds of a history read without a window: every row counts."""


def bounds(w: ir.Window, anchor: exp.Expr, used: frozenset[str]) -> Bounds:
    """The bounds of window `w` around its compiled `anchor` (which reads the CTEs `used`)."""
    months = w.unit == "mo"

    def shift(amount: int) -> exp.Expr:
        return shift_date(anchor, amount, months)

    lo: exp.Expr | None
    hi: exp.Expr | None
    match w.kind:
        case "within_before":
            lo, hi = shift(-w.amount), anchor.copy()
        case "within_after":
            lo, hi = anchor.copy(), shift(w.amount)
        case "within_of":
            lo, hi = shift(-w.amount), shift(w.amount)
        case "before":
            lo, hi = None, shift_date(anchor, -1, False)
        case _:
            lo, hi = shift_date(anchor, 1, False), None
    key = (w.kind, w.amount, w.unit, anchor.sql("duckdb"))
    return Bounds(key, lo, hi, used, anchor)


def join_shared(query: exp.Select, used: frozenset[str]) -> exp.Select:
    """`query` (over patients as ``p``) left-joined to the CTEs `used` of shared values."""
    for alias in sorted(used):
        query = query.join(
            exp.to_table(alias),
            on=cmp("==", column("id", alias), column("id", "p")),
            join_type="left",
            copy=False,
        )
    return query


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A CTE of one row per id, and the CTEs its own query reads."""

    alias: str
    uses: frozenset[str]


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


def _value_max(item: DataItem, e: exp.Expr) -> exp.Expr:
    """MAX of `item`'s values; BOOL_OR for booleans (PostgreSQL has no MAX(boolean))."""
    return exp.LogicalOr(this=e.copy()) if item.type == "boolean" else exp.Max(this=e.copy())


def _value_min(item: DataItem, e: exp.Expr) -> exp.Expr:
    """MIN of `item`'s values; BOOL_AND for booleans (PostgreSQL has no MIN(boolean))."""
    return exp.LogicalAnd(this=e.copy()) if item.type == "boolean" else exp.Min(this=e.copy())


def _observation_value(item: DataItem, cell: exp.Expr) -> exp.Expr:
    """A long-table text cell read as a value of `item`."""
    if is_numeric(item):
        return as_decimal(cell, number_format(item))
    if item.type == "date":
        return exp.cast(cell.copy(), "DATE")
    if item.type == "boolean":
        return exp.cast(cell.copy(), "BOOLEAN")
    return cell.copy()


class Ctes:
    """The CTEs of one query, in the order they must be declared, each built once."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.ctes: list[tuple[str, exp.Select]] = []
        self.aggregates: dict[tuple[Any, ...], Aggregate] = {}

    def _patients(self) -> exp.Expr:
        return aliased(exp.to_table(self.tables.patients), "p")

    def share(self, value: Val, used: frozenset[str]) -> tuple[Val, frozenset[str]]:
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
        columns = [exp.alias_(column("id", "p"), "id")]
        if isinstance(value, Num):
            columns.append(exp.alias_(value.num, "num"))
            den = None
            if value.den is not None:
                columns.append(exp.alias_(value.den, "den"))
                den = column("den", alias)
            shared: Val = replace(value, num=column("num", alias), den=den)
        else:
            columns.append(exp.alias_(value, "value"))
            shared = column("value", alias)
        query = exp.select(*columns, copy=False).from_(self._patients(), copy=False)
        self.ctes.append((alias, join_shared(query, used)))
        self.aggregates[("shared", alias)] = Aggregate(alias, used)
        return shared, frozenset({alias})

    def _source(self, table: str, item: str, window: Bounds, anchored: bool) -> exp.Select:
        """``FROM <table> AS t JOIN patients AS p … WHERE t.item = item``; without a window
        (`anchored` False) nothing of ``patients`` is read and the join is left out."""
        query = exp.select().from_(aliased(exp.to_table(table), "t"), copy=False)
        if anchored:
            query = query.join(
                self._patients(), on=cmp("==", column("id", "t"), column("id", "p")), copy=False
            )
        return join_shared(query, window.used).where(
            cmp("==", column("item", "t"), exp.Literal.string(item)), copy=False
        )

    def pick(self, item: DataItem, earliest: bool, window: Bounds, anchored: bool) -> str:
        """The alias of the CTE holding the picked observation (value, low, high) per id.

        One pass over the item's rows counts, per id, the undated rows and the rows in the
        window, and finds the chosen day (the last or first in the window). With no undated
        row and one row in the window (the usual case) that row is the pick: its value and
        reference range are read in the same pass. Ids with several rows in the window get a
        second pass over their chosen day's rows alone, which must all be one observation
        (same value and range) for the pick to be known. An undated row leaves it unknown.
        """
        key = ("select", item.name, earliest, window.key)
        if key in self.aggregates:
            return self.aggregates[key].alias
        k = len(self.aggregates)
        alias, dates, days = f"s{k}", f"s{k}_date", f"s{k}_day"
        date = column("date", "t")
        condition = window.test(date, date)

        def in_window(e: exp.Expr) -> exp.Expr:
            # Without a window every row counts: an undated one makes the pick unknown.
            return e.copy() if condition is None else case((condition, e))

        zero, one = exp.Literal.number(0), exp.Literal.number(1)
        chosen = (exp.Min if earliest else exp.Max)(this=in_window(date))
        names = ["value", *(("low", "high") if is_numeric(item) else ())]
        picks = (
            self._source(self.tables.observations, item.name, window, anchored)
            .select(
                exp.alias_(column("id", "t"), "id"),
                exp.alias_(exp.Count(this=case((is_null(date), one))), "undated"),
                exp.alias_(exp.Count(this=in_window(one)), "n"),
                exp.alias_(chosen, "chosen"),
                # With one row in the window, that row's cells.
                *(
                    exp.alias_(
                        _value_max(item, in_window(_observation_value(item, column(name, "t")))),
                        name,
                    )
                    for name in names
                ),
                copy=False,
            )
            .group_by(column("id", "t"), copy=False)
        )
        several = and_(cmp("==", column("undated", dates), zero), cmp(">", column("n", dates), one))
        chosen_day = (
            exp.select(exp.alias_(column("id", "t"), "id"), *_day_stats(item), copy=False)
            .from_(aliased(exp.to_table(self.tables.observations), "t"), copy=False)
            .join(
                exp.to_table(dates),
                on=and_(
                    cmp("==", column("id", dates), column("id", "t")),
                    cmp("==", column("chosen", dates), date),
                ),
                copy=False,
            )
            .where(
                and_(cmp("==", column("item", "t"), exp.Literal.string(item.name)), several),
                copy=False,
            )
            .group_by(column("id", "t"), copy=False)
        )
        single = and_(cmp("==", column("undated", dates), zero), cmp("==", column("n", dates), one))
        agreed = _one_observation(item, days)
        day_column = {"value": "vmin", "low": "low_min", "high": "high_min"}

        def picked(name: str) -> exp.Expr:
            return case(
                (single, column(name, dates)),
                default=case((agreed, column(day_column[name], days))),
            )

        values = (
            exp.select(
                exp.alias_(column("id", dates), "id"),
                *(exp.alias_(picked(name), name) for name in names),
                copy=False,
            )
            .from_(exp.to_table(dates), copy=False)
            .join(
                exp.to_table(days),
                on=cmp("==", column("id", days), column("id", dates)),
                join_type="left",
                copy=False,
            )
        )
        self.ctes += [(dates, picks), (days, chosen_day), (alias, values)]
        self.aggregates[key] = Aggregate(alias, window.used)
        return alias

    def events(self, item: DataItem, window: Bounds, anchored: bool) -> str:
        """The alias of the CTE counting, per id, an item's rows, undated rows and the rows
        that overlap the window (``n``, ``undated``, ``hits``)."""
        key = ("events", item.name, window.key)
        if key in self.aggregates:
            return self.aggregates[key].alias
        alias = f"e{len(self.aggregates)}"
        date = column("date", "t")
        one = exp.Literal.number(1)
        # An occurrence overlaps the window: it starts before the window ends and ends
        # (or, without an end, starts) after the window starts.
        end = (
            exp.Coalesce(this=column("end", "t"), expressions=[date])
            if item.kind == "event"
            else date
        )
        overlap = window.test(end, date)
        hits: exp.Expr = (
            exp.Count(this=date) if overlap is None else exp.Count(this=case((overlap, one)))
        )
        table = self.tables.events if item.kind == "event" else self.tables.observations
        query = (
            self._source(table, item.name, window, anchored)
            .select(
                exp.alias_(column("id", "t"), "id"),
                exp.alias_(exp.Count(this=exp.Star()), "n"),
                exp.alias_(exp.Count(this=case((is_null(date), one))), "undated"),
                exp.alias_(hits, "hits"),
                copy=False,
            )
            .group_by(column("id", "t"), copy=False)
        )
        self.ctes.append((alias, query))
        self.aggregates[key] = Aggregate(alias, window.used)
        return alias


def _day_stats(item: DataItem) -> list[exp.Expr]:
    """Aggregates over one day's rows: the smallest and largest value and, for numbers, the
    row count and the reference limits' counts and extremes."""
    value = _observation_value(item, column("value", "t"))
    columns: list[exp.Expr] = [
        exp.alias_(_value_min(item, value), "vmin"),
        exp.alias_(_value_max(item, value), "vmax"),
    ]
    if is_numeric(item):
        columns.append(exp.alias_(exp.Count(this=exp.Star()), "n"))
        for name in ("low", "high"):
            x = _observation_value(item, column(name, "t"))
            columns += [
                exp.alias_(exp.Count(this=x.copy()), f"{name}_n"),
                exp.alias_(exp.Min(this=x.copy()), f"{name}_min"),
                exp.alias_(exp.Max(this=x.copy()), f"{name}_max"),
            ]
    return columns


def _one_observation(item: DataItem, g: str) -> exp.Expr:
    """The rows `_day_stats` summed up in `g` are one observation: the same value and, for
    numbers, the same reference range (either absent from every row or equal)."""
    ok = [cmp("==", column("vmin", g), column("vmax", g))]
    if is_numeric(item):
        for name in ("low", "high"):
            n = column(f"{name}_n", g)
            ok.append(
                or_(
                    cmp("==", n, exp.Literal.number(0)),
                    and_(
                        cmp("==", n, column("n", g)),
                        cmp("==", column(f"{name}_min", g), column(f"{name}_max", g)),
                    ),
                )
            )
    return and_(*ok)


def events_answer(op: str, item: str, alias: str, anchor: exp.Expr | None) -> Val:
    """What ``any``/``no``/``count``/``ever`` of `item` answers from its CTE `alias`."""
    zero = exp.Literal.number(0)
    n = exp.Coalesce(this=column("n", alias), expressions=[zero])
    undated, hits = column("undated", alias), column("hits", alias)
    # Rows of an item's history imply that it is known, whatever the flag says.
    known = or_(
        exp.Is(this=column(KNOWN_PREFIX + item, "p"), expression=exp.true()),
        cmp(">", n, zero),
    )
    empty = cmp("==", n, zero)
    whens: list[tuple[exp.Expr, exp.Expr]] = [(not_(known), exp.Null())]
    answer_if_empty = {"any": exp.false(), "ever": exp.false(), "no": exp.true(), "count": zero}
    whens.append((empty, answer_if_empty[op]))
    if op == "ever":
        return case(*whens, default=exp.true())
    if anchor is not None:
        whens.append((is_null(anchor), exp.Null()))
    some_undated = cmp(">", undated, zero)
    if op == "count":
        whens.append((some_undated, exp.Null()))
        return Num(as_decimal(case(*whens, default=hits), _COUNT), _COUNT)
    found = cmp(">", hits, zero)
    whens += [(found, exp.true() if op == "any" else exp.false()), (some_undated, exp.Null())]
    return case(*whens, default=exp.false() if op == "any" else exp.true())
