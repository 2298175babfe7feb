"""The one SQL building layer: small constructors over sqlglot's expression builders.

The compiled screening query (`protocode.backends.sql.compile`) and the staging, validation
and output statements of `protocode.tables` are all built from these, so quoting and
grouping are decided in one place: every identifier is quoted by sqlglot, every string a
literal node (protocol text and file paths are never pasted into SQL), and an operator
operand is parenthesised where SQL's precedence could regroup it.

Argument order is the same throughout: what is named first (a column's name, then its
table), the value before what it is compared or cast to.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

_CMP: dict[str, type[exp.Binary]] = {
    "<": exp.LT,
    "<=": exp.LTE,
    ">": exp.GT,
    ">=": exp.GTE,
    "==": exp.EQ,
    "!=": exp.NEQ,
}

FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
"""Each comparison operator with its operands swapped (``a < b`` is ``b > a``)."""


def ident(name: str) -> exp.Identifier:
    """A quoted identifier."""
    return exp.to_identifier(name, quoted=True)


def column(name: str, table: str | None = None) -> exp.Column:
    """The column `name`, of `table` (an alias) when given."""
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def table(name: str) -> exp.Table:
    """The table `name`, quoted."""
    return exp.Table(this=ident(name))


def string(text: str) -> exp.Literal:
    """A string literal."""
    return exp.Literal.string(text)


def sql_type(text: str) -> exp.DataType:
    """A data type by its DuckDB name (``VARCHAR``, ``DATE``, ``DECIMAL(9, 2)``)."""
    return exp.DataType.build(text, dialect="duckdb")


def cast(e: exp.Expr, to: exp.DataType) -> exp.Cast:
    """`e` cast to `to` (a copy of `e`)."""
    return exp.Cast(this=e.copy(), to=to)


def null(to: str = "VARCHAR") -> exp.Cast:
    """A typed NULL (a column of no value that still has a type)."""
    return exp.Cast(this=exp.Null(), to=sql_type(to))


def as_text(e: exp.Expr, src_type: str) -> exp.Expr:
    """A cell as text: `e` itself when its column (of DuckDB type `src_type`) is VARCHAR."""
    return e if src_type == "VARCHAR" else exp.Cast(this=e, to=sql_type("VARCHAR"))


def paren(e: exp.Expr) -> exp.Expr:
    """`e` in parentheses when it is an operator, which keeps its grouping in another one."""
    return exp.Paren(this=e) if isinstance(e, exp.Binary | exp.Not | exp.Neg) else e


def case(*whens: tuple[exp.Expr, exp.Expr], default: exp.Expr | None = None) -> exp.Expr:
    """``CASE WHEN cond THEN value … ELSE default END`` (no ELSE, i.e. NULL, without one).

    With no branch it is the default itself: sqlglot cannot print a CASE without a WHEN,
    and a protocol with no item of a kind has no per-item branches.
    """
    if not whens and default is not None:
        return default.copy()
    built = exp.Case()
    for cond, value in whens:
        built = built.when(cond.copy(), value.copy(), copy=False)
    if default is not None:
        built = built.else_(default.copy(), copy=False)
    return built


def and_(*parts: exp.Expr) -> exp.Expr:
    """Kleene AND of copies of `parts`."""
    return exp.and_(*(paren(p.copy()) for p in parts), copy=False)


def or_(*parts: exp.Expr) -> exp.Expr:
    """Kleene OR of copies of `parts`."""
    return exp.or_(*(paren(p.copy()) for p in parts), copy=False)


def not_(e: exp.Expr) -> exp.Expr:
    """Kleene NOT of a copy of `e`."""
    return exp.Not(this=paren(e.copy()))


def is_null(e: exp.Expr) -> exp.Expr:
    """``e IS NULL``: two-valued."""
    return exp.Is(this=paren(e.copy()), expression=exp.Null())


def not_null(e: exp.Expr) -> exp.Expr:
    """``NOT e IS NULL``: two-valued."""
    return exp.Not(this=is_null(e))


def two_valued(e: exp.Expr) -> exp.Expr:
    """`e` with NULL read as false."""
    return exp.Coalesce(this=exp.Paren(this=e), expressions=[exp.false()])


def cmp(op: str, a: exp.Expr, b: exp.Expr) -> exp.Expr:
    """``a op b`` for a comparison operator of the rule language (``==``, ``<=``, …)."""
    return _CMP[op](this=paren(a.copy()), expression=paren(b.copy()))


def is_in(e: exp.Expr, values: Sequence[str]) -> exp.Expr:
    """``e IN ('v', …)`` for string values; FALSE when there are none."""
    if not values:
        return exp.false()
    return exp.In(this=e.copy(), expressions=[string(v) for v in values])


def full_match(text: exp.Expr, pattern: str) -> exp.Expr:
    """Whether all of `text` matches the regular expression `pattern`."""
    return exp.RegexpFullMatch(this=text.copy(), expression=string(pattern))


def named(name: str, value: exp.Expr) -> exp.EQ:
    """A table function's option, ``name = value`` (DuckDB's `read_csv` and kin)."""
    return exp.EQ(this=exp.column(name), expression=value)


def setting(name: str, value: exp.Expr) -> exp.Set:
    """``SET name = value``."""
    return exp.Set(expressions=[exp.SetItem(this=exp.EQ(this=exp.var(name), expression=value))])


def create_table(name: str, columns: Sequence[str], kind: str = "VARCHAR") -> exp.Create:
    """``CREATE TABLE name (column kind, …)``: an empty table of `columns`."""
    defs = [exp.ColumnDef(this=ident(c), kind=sql_type(kind)) for c in columns]
    return exp.Create(this=exp.Schema(this=table(name), expressions=defs), kind="TABLE")


def insert_rows(name: str, width: int) -> exp.Insert:
    """``INSERT INTO name VALUES (?, …)`` with `width` placeholders, for `executemany`."""
    return exp.insert(exp.values([tuple(exp.Placeholder() for _ in range(width))]), table(name))


def aliased(source: exp.Expr, alias: str) -> exp.Expr:
    """``source AS alias``: a table under a short name, for ``FROM`` and ``JOIN``."""
    return exp.alias_(source, alias, table=True)
