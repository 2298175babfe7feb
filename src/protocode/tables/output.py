"""What a screening of tables gives back: the counts of a run, and the rows of its outputs.

Results and errors are one row set ordered by id (`output_query`), which DuckDB's own COPY
streams to CSV, Parquet, JSONL or a JSON array; the counts per status and the attrition per
criterion are one aggregate over the results (`summary_queries`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sqlglot import exp

from protocode.backends.sql.build import case, cast, column, ident, null, sql_type, string, table
from protocode.language.check import CheckedCriterion

OutputFormat = Literal["csv", "parquet", "jsonl", "json"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("csv", "parquet", "jsonl", "json")

RESULTS = "results"
"""The table of screened records: ``id``, a verdict column per criterion, ``status``."""

ERRORS = "errors"
"""The table of records in error: ``id``, ``errors`` (text), ``errors_json``."""

COPY_OPTIONS: dict[OutputFormat, list[tuple[str, exp.Expr]]] = {
    "csv": [("FORMAT", exp.var("csv")), ("HEADER", exp.true())],
    "parquet": [("FORMAT", exp.var("parquet"))],
    "jsonl": [("FORMAT", exp.var("json"))],
    "json": [("FORMAT", exp.var("json")), ("ARRAY", exp.true())],
}
"""DuckDB's COPY options of each output format."""


def summary_queries(criteria: Sequence[CheckedCriterion]) -> tuple[str, str]:
    """The counts per status, and one row of (excluded, undecided) per criterion ("" when
    there is no criterion)."""
    status = column("status")
    by_status = (
        exp.select(status, exp.Count(this=exp.Star())).from_(table(RESULTS)).group_by(status.copy())
    )
    sums: list[exp.Expr] = []
    for c in criteria:
        blocking = "not met" if c.kind == "inclusion" else "met"
        for verdict in (blocking, "unknown"):
            hit = exp.EQ(this=column(c.id), expression=string(verdict))
            one = case((hit, exp.Literal.number(1)), default=exp.Literal.number(0))
            sums.append(exp.Sum(this=one))
    attrition = exp.select(*sums).from_(table(RESULTS)).sql("duckdb") if sums else ""
    return by_status.sql("duckdb"), attrition


def output_query(criteria: Sequence[str], fmt: OutputFormat) -> exp.Select:
    """Results and errors in one row set ordered by id: the shape of every output.

    csv/parquet: ``id, status``, one column per criterion, ``errors`` (text); jsonl and
    json: ``id, status, criteria {id: verdict}, errors [diagnostics]``.
    """
    verdicts = [column(c) for c in criteria]
    screened = exp.select(column("id"), column("status"), *verdicts).from_(table(RESULTS))
    failed = exp.select(
        column("id"),
        exp.alias_(string("error"), "status", quoted=True),
        *(exp.alias_(null(), c, quoted=True) for c in criteria),
    ).from_(table(ERRORS))
    if fmt in ("csv", "parquet"):
        screened = screened.select(exp.alias_(null(), "errors", quoted=True))
        failed = failed.select(exp.alias_(column("errors"), "errors", quoted=True))
        union = exp.union(screened, failed, distinct=False)
        return (
            exp.select(exp.Star())
            .from_(union.subquery("o"))
            .order_by(column("id"), column("status"))
        )
    screened = screened.select(exp.alias_(null("JSON"), "errors", quoted=True))
    as_json = cast(column("errors_json"), sql_type("JSON"))
    failed = failed.select(exp.alias_(as_json, "errors", quoted=True))
    union = exp.union(screened, failed, distinct=False)
    struct = exp.Struct(
        expressions=[exp.PropertyEQ(this=ident(c), expression=column(c, "o")) for c in criteria]
    )
    is_error = exp.EQ(this=column("status", "o"), expression=string("error"))
    return (
        exp.select(
            column("id", "o"),
            column("status", "o"),
            exp.alias_(case((is_error, exp.Null()), default=struct), "criteria", quoted=True),
            column("errors", "o"),
        )
        .from_(union.subquery("o"))
        .order_by(column("id", "o"), column("status", "o"))
    )
