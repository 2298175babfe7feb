"""The checks of staged tables' rows, and the queries that run them.

A staged table is a `Raw` table: its cells as the file has them (text for CSV, typed for
Parquet). `table_checks` gives every `Check` of a table's rows and its typed columns;
`bad_rows_query` finds the failing rows in one scan; the id checks (`duplicates_query`,
`orphan_queries`) and `typed_table` follow. Messages come from `protocode.tables.cells`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlglot import exp

from protocode.backends.sql.build import (
    aliased,
    and_,
    as_text,
    case,
    cmp,
    column,
    is_in,
    is_null,
    not_,
    not_null,
    null,
    or_,
    string,
    table,
    two_valued,
)
from protocode.backends.sql.layout import Layout, is_numeric
from protocode.core.errors import did_you_mean
from protocode.document.model import DataItem
from protocode.records.rules import RULES
from protocode.tables.cells import (
    BOOLEAN,
    DATE,
    CellSpec,
    Check,
    Explain,
    Row,
    message,
    number_pattern,
    parse,
    spec_for,
)
from protocode.tables.files import EVENT_COLUMNS, EVENTS, OBSERVATION_COLUMNS, PATIENTS

BAD_IDS = "bad_ids"
"""The table of ids of records with a bad cell: their rows are left out of the typed tables."""


@dataclass(frozen=True, slots=True)
class Raw:
    """A staged table: its name in DuckDB, its columns (name → DuckDB type), whether it is a
    ``TABLE`` (CSV, read into memory) or a ``VIEW`` (Parquet, read in place), and the column
    numbering its rows."""

    table: str
    name: str
    columns: Mapping[str, str] = field(default_factory=dict)
    kind: str = "TABLE"
    row: str = "rowid"

    def cell(self, name: str) -> exp.Expr:
        """A cell of the row ``r`` (a typed NULL for an absent column)."""
        return column(name, "r") if name in self.columns else null()

    def type_of(self, name: str) -> str:
        """The DuckDB type of a column (VARCHAR for an absent one)."""
        return self.columns.get(name, "VARCHAR")

    def text(self, name: str) -> exp.Expr:
        """A cell as text."""
        return as_text(self.cell(name), self.type_of(name))

    def source(self) -> exp.Expr:
        """``raw AS r``."""
        return aliased(table(self.name), "r")


def _where(table_name: str, row: Row) -> str:
    on = f" on {row['date']}" if row.get("date") else ""
    return f"{table_name}: {row.get('item')}{on}"


def _cell_problem(name: str, spec: CellSpec) -> Explain:
    def explain(row: Row) -> tuple[str, str, str]:
        code, text = message(spec, str(row[name]))
        return name, code, f"{PATIENTS}: {text}"

    return explain


def _item_problem(table_name: str, kind: str, names: Sequence[str]) -> Explain:
    def explain(row: Row) -> tuple[str, str, str]:
        item = row["item"]
        if item is None:
            return "item", "unknown-item", f"{table_name}: a row without an item"
        hint = did_you_mean(item, names)
        text = f"{table_name}: '{item}' is not an {kind} item of the data dictionary{hint}"
        return item, "unknown-item", text

    return explain


def _date_problem(table_name: str, name: str) -> Explain:
    def explain(row: Row) -> tuple[str, str, str]:
        code, text = message(DATE, str(row[name]))
        return f"{row['item']}.{name}", code, f"{table_name}: {row['item']}: {text}"

    return explain


def _event_problem(wording: str) -> Explain:
    def explain(row: Row) -> tuple[str, str, str]:
        where = _where(EVENTS, row)
        return f"{row['item']}.end", "bad-value", f"{where}: {wording} (end {row['end']})"

    return explain


def _value_problem(items: Mapping[str, DataItem], table_name: str) -> Explain:
    def explain(row: Row) -> tuple[str, str, str]:
        item, text = str(row["item"]), row["value"]
        where = _where(table_name, row)
        if text is None:
            m = RULES.missing_value.table
            return f"{item}.value", m.code, f"{where}: {m.render()}"
        code, said = message(spec_for(items[item]), text)
        return f"{item}.value", code, f"{where}: {said}"

    return explain


def _limits_problem(items: Mapping[str, DataItem], table_name: str) -> Explain:
    def explain(row: Row) -> tuple[str, str, str]:
        item = str(row["item"])
        where = _where(table_name, row)
        field_ = f"{item}.reference_range"
        it = items[item]
        if not is_numeric(it):
            m = RULES.reference.not_numeric.table
            return field_, m.code, f"{where}: {m.render(item=item)}"
        bare = spec_for(it, ranged=False)
        for key in ("low", "high"):
            text = row[key]
            if text is not None and not re.fullmatch(number_pattern(bare.fmt), text):
                code, said = message(bare, text)
                return f"{field_}.{key}", code, f"{where}: {said}"
        return field_, "bad-value", f"{where}: bad reference range"  # pragma: no cover

    return explain


def _order_problem(table_name: str) -> Explain:
    def explain(row: Row) -> tuple[str, str, str]:
        m = RULES.reference.order.table
        said = m.render(low=row["low"], high=row["high"])
        return f"{row['item']}.reference_range", m.code, f"{_where(table_name, row)}: {said}"

    return explain


def _patient_checks(
    raw: Raw, layout: Layout, items: Mapping[str, DataItem]
) -> tuple[list[Check], list[tuple[str, exp.Expr]]]:
    checks: list[Check] = []
    typed: list[tuple[str, exp.Expr]] = [("id", raw.text("id"))]
    for c in layout.columns[1:]:
        spec = BOOLEAN if c.item is None or c.role != "fact" else spec_for(items[c.item])
        valid, value = parse(spec, raw.cell(c.name), raw.type_of(c.name))
        typed.append((c.name, value))
        if valid != exp.true():
            checks.append(Check(valid, _cell_problem(c.name, spec)))
    return checks, typed


def _event_checks(raw: Raw) -> list[Check]:
    start, end = (parse(DATE, raw.cell(d), raw.type_of(d))[1] for d in ("date", "end"))
    undated_end = and_(is_null(start), not_null(end))
    backwards = two_valued(exp.LT(this=end.copy(), expression=start.copy()))
    rule = RULES.occurrence
    return [
        Check(not_(two_valued(undated_end)), _event_problem(rule.undated_end.table.render())),
        Check(not_(backwards), _event_problem(rule.backwards.table.render())),
    ]


def _value_checks(
    raw: Raw, items: Mapping[str, DataItem], names: Sequence[str], item: exp.Expr
) -> list[Check]:
    values: list[tuple[exp.Expr, exp.Expr]] = []
    limits: list[tuple[exp.Expr, exp.Expr]] = []
    order: list[tuple[exp.Expr, exp.Expr]] = []
    for name in names:
        it = items[name]
        is_item = cmp("==", item, string(name))
        valid, _ = parse(spec_for(it), raw.cell("value"), raw.type_of("value"))
        values.append((is_item, valid))
        if is_numeric(it):
            bare = spec_for(it, ranged=False)
            (low_ok, low), (high_ok, high) = (
                parse(bare, raw.cell(x), raw.type_of(x)) for x in ("low", "high")
            )
            limits.append((is_item.copy(), and_(low_ok, high_ok)))
            order.append((is_item.copy(), not_(two_valued(exp.GT(this=low, expression=high)))))
    no_limits = and_(is_null(raw.cell("low")), is_null(raw.cell("high")))
    listed = not_(two_valued(is_in(item, names)))
    # An unknown item is reported once, by the item check; its other cells pass.
    return [
        Check(
            and_(not_null(raw.cell("value")), case(*values, default=exp.true())),
            _value_problem(items, raw.table),
        ),
        Check(case(*limits, default=or_(no_limits, listed)), _limits_problem(items, raw.table)),
        Check(case(*order, default=exp.true()), _order_problem(raw.table)),
    ]


def table_checks(
    raw: Raw, layout: Layout, items: Mapping[str, DataItem]
) -> tuple[list[Check], list[tuple[str, exp.Expr]]]:
    """The checks of a staged table's rows, and its typed columns (name, SQL)."""
    if raw.table == PATIENTS:
        return _patient_checks(raw, layout, items)
    kind = "observation" if raw.table != EVENTS else "event"
    names = [name for name, it in items.items() if it.kind == kind]
    # As text whatever the file's type: a Parquet item column of another type (an
    # integer, a struct) is a column of unknown items, not a failed cast of the names.
    item = raw.text("item")
    checks = [Check(two_valued(is_in(item, names)), _item_problem(raw.table, kind, names))]
    typed: list[tuple[str, exp.Expr]] = [("id", raw.text("id")), ("item", item)]
    for d in ("date", "end") if raw.table == EVENTS else ("date",):
        valid, value = parse(DATE, raw.cell(d), raw.type_of(d))
        typed.append((d, value))
        checks.append(Check(valid, _date_problem(raw.table, d)))
    if raw.table == EVENTS:
        return checks + _event_checks(raw), typed
    typed += [(c, raw.text(c)) for c in ("value", "low", "high")]
    return checks + _value_checks(raw, items, names, item), typed


def bad_rows_query(
    raw: Raw, layout: Layout, items: Mapping[str, DataItem]
) -> tuple[str, list[str], list[Check]]:
    """One scan of a staged table for its failing rows: the SQL, the columns it returns as
    text (after the row number) and the checks whose flags follow them."""
    checks, _ = table_checks(raw, layout, items)
    columns = (
        [c.name for c in layout.columns]
        if raw.table == PATIENTS
        else list(EVENT_COLUMNS if raw.table == EVENTS else OBSERVATION_COLUMNS)
    )
    texts = [exp.alias_(raw.text(c), f"t{i}", quoted=True) for i, c in enumerate(columns)]
    flags = [exp.alias_(not_(c.valid), f"b{i}", quoted=True) for i, c in enumerate(checks)]
    failing = [is_null(raw.cell("id")), *(not_(c.valid) for c in checks)]
    query = (
        exp.select(column(raw.row, "r"), *texts, *flags)
        .from_(raw.source())
        .where(or_(*failing))
        .order_by(column(raw.row, "r"))
    )
    return query.sql("duckdb"), columns, checks


def missing_id(where: str) -> tuple[str, str, str]:
    """(field, code, message) of a row without an id, at `where` (``patients row 3``)."""
    m = RULES.id.missing.table
    return "id", m.code, m.render(where=where)


def duplicate_id(record: str, count: int) -> tuple[str, str, str]:
    """(field, code, message) of an id on `count` patients rows."""
    m = RULES.id.duplicate
    return "id", m.code, m.render(shown=repr(record), count=count)


def orphan_id(table_name: str) -> tuple[str, str, str]:
    """(field, code, message) of long-table rows whose id has no patients row."""
    m = RULES.id.orphan
    return "id", m.code, m.render(table=table_name)


def duplicates_query(patients: Raw) -> str:
    """Ids on several patients rows, with their count."""
    ident = patients.text("id")
    count = exp.Count(this=exp.Star())
    query = (
        exp.select(ident, count)
        .from_(patients.source())
        .where(not_null(ident))
        .group_by(ident.copy())
        .having(exp.GT(this=count.copy(), expression=exp.Literal.number(1)))
        .order_by(ident.copy())
    )
    return query.sql("duckdb")


def orphan_queries(patients: Raw, long_tables: Sequence[Raw]) -> list[tuple[str, str]]:
    """Per long table, the query of its ids that have no patients row."""
    known = (
        exp.select(patients.text("id"))
        .from_(patients.source())
        .where(not_null(patients.cell("id")))
    )
    out: list[tuple[str, str]] = []
    for raw in long_tables:
        ident = raw.text("id")
        query = (
            exp.select(ident)
            .distinct()
            .from_(raw.source())
            .where(
                and_(
                    not_null(ident), exp.Not(this=exp.In(this=ident.copy(), query=known.subquery()))
                )
            )
            .order_by(ident.copy())
        )
        out.append((raw.table, query.sql("duckdb")))
    return out


def typed_table(raw: Raw, layout: Layout, items: Mapping[str, DataItem], filtered: bool) -> str:
    """``CREATE TABLE`` of a table's valid rows with typed columns (without the rows of the
    ids in `BAD_IDS` when `filtered`)."""
    _, columns = table_checks(raw, layout, items)
    ident = dict(columns)["id"]
    keep: exp.Expr = not_null(ident)
    if filtered:
        bad = exp.select(column("id")).from_(table(BAD_IDS))
        keep = and_(keep, exp.Not(this=exp.In(this=ident.copy(), query=bad.subquery())))
    select = (
        exp.select(*(exp.alias_(e.copy(), n, quoted=True) for n, e in columns))
        .from_(raw.source())
        .where(keep)
    )
    return exp.Create(this=table(raw.table), kind="TABLE", expression=select).sql("duckdb")
