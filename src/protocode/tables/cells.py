"""What one cell of a staged table must hold, as SQL, and what is said when it does not.

The rules are the record reader's (`protocode.records.rules.RULES`): the same date range and
pattern, boolean spellings, plausible ranges, code lists and messages (the ``table``
wording of each). A cell's check is one two-valued SQL expression, run over the whole table
in one scan; its message is written in Python only for the rows that fail.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from sqlglot import exp

from protocode.backends.sql.build import (
    and_,
    as_text,
    cast,
    full_match,
    is_in,
    is_null,
    or_,
    sql_type,
    string,
    two_valued,
)
from protocode.backends.sql.layout import Fmt, number_format
from protocode.core.errors import did_you_mean
from protocode.document.model import DataItem
from protocode.records.rules import (
    RULES,
    BooleanRule,
    CodeRule,
    DateRule,
    NumberRule,
    rule_for,
)

_NO_FMT = Fmt(0, 0)

Row = Mapping[str, str | None]
"""A failing row's cells as text, by column."""

Explain = Callable[[Row], tuple[str, str, str]]
"""Why a row fails a check: (field, code, message)."""


@dataclass(frozen=True, slots=True)
class CellSpec:
    """What one cell must hold, from the data dictionary and the rules of record data."""

    kind: Literal["date", "boolean", "number", "code", "text"]
    item: str = ""
    fmt: Fmt = _NO_FMT
    integer: bool = False
    minimum: str | None = None
    maximum: str | None = None
    unit: str = ""
    values: tuple[str, ...] = ()

    @property
    def target(self) -> exp.DataType:
        """The SQL type of a valid cell."""
        match self.kind:
            case "date":
                return sql_type("DATE")
            case "boolean":
                return sql_type("BOOLEAN")
            case "number":
                return sql_type("BIGINT") if self.integer else self.fmt.sql_type()
            case _:
                return sql_type("VARCHAR")


DATE = CellSpec("date")
"""A date cell (event dates, observation dates)."""

BOOLEAN = CellSpec("boolean")
"""A true/false cell (attestations, history flags)."""


def spec_for(item: DataItem, *, ranged: bool = True) -> CellSpec:
    """The spec of one value of `item`; `ranged` False drops its plausible range (for
    reference limits, which records do not range-check either)."""
    rule = rule_for(item)
    if isinstance(rule, DateRule):
        return DATE
    if isinstance(rule, BooleanRule):
        return BOOLEAN
    if isinstance(rule, NumberRule):
        return CellSpec(
            "number",
            item.name,
            number_format(item),
            item.type == "integer",
            item.minimum if ranged else None,
            item.maximum if ranged else None,
            item.unit or "" if item.type == "quantity" else "",
        )
    if isinstance(rule, CodeRule):
        return CellSpec("code", item.name, values=item.values)
    return CellSpec("text", item.name)


def parse(spec: CellSpec, source: exp.Expr, src_type: str) -> tuple[exp.Expr, exp.Expr]:
    """(valid, typed) SQL for a cell: `valid` is two-valued and TRUE for an empty cell."""
    target = spec.target
    if src_type == target.sql("duckdb"):
        # Already typed (Parquet): only the range is left to check.
        text = None
        typed = source
    else:
        text = as_text(source, src_type)
        typed = exp.TryCast(this=text.copy(), to=target)
    checks: list[exp.Expr] = []
    match spec.kind:
        case "date":
            if text is not None:
                checks.append(full_match(text, RULES.date.pattern))
            low, high = (cast(string(d.isoformat()), sql_type("DATE")) for d in _DATE_RANGE)
            checks.append(exp.Between(this=typed.copy(), low=low, high=high))
        case "boolean":
            if text is not None:
                folded = exp.Lower(this=text.copy())
                checks.append(is_in(folded, (*RULES.boolean.true, *RULES.boolean.false)))
                typed = is_in(folded, RULES.boolean.true)
        case "number":
            if text is not None:
                checks.append(full_match(text, number_pattern(spec.fmt)))
            for bound, compare in ((spec.minimum, exp.GTE), (spec.maximum, exp.LTE)):
                if bound is not None:
                    limit = exp.Cast(this=exp.Literal.number(bound), to=spec.fmt.sql_type())
                    checks.append(compare(this=typed.copy(), expression=limit))
        case "code":
            checks.append(is_in(typed, spec.values))
        case _:
            pass
    valid = or_(is_null(source), two_valued(and_(*checks))) if checks else exp.true()
    return valid, typed


_DATE_RANGE = (RULES.date.earliest, RULES.date.latest)


def number_pattern(fmt: Fmt) -> str:
    """Plain decimal text with at most `fmt.digits` integer digits and `fmt.scale`
    significant decimal places (trailing zeros are free): what the layout holds exactly."""
    whole = f"0*[0-9]{{1,{fmt.digits}}}"
    if fmt.scale:
        return f"[+-]?(?:{whole}(?:\\.[0-9]{{0,{fmt.scale}}}0*)?|\\.[0-9]{{1,{fmt.scale}}}0*)"
    return f"[+-]?(?:{whole}(?:\\.0*)?|\\.0+)"


def message(spec: CellSpec, text: str) -> tuple[str, str]:
    """Why `text` is not a valid cell of `spec` (code, message)."""
    shown = repr(text)
    match spec.kind:
        case "date":
            return _date_message(text)
        case "boolean":
            m = RULES.boolean.form.table
            return m.code, m.render(shown=shown)
        case "code":
            hint = did_you_mean(text, spec.values, expected=True)
            m = RULES.code.not_listed.table
            return m.code, m.render(shown=shown, item=spec.item, hint=hint)
        case "number":
            return _number_message(spec, text)
        case _:  # pragma: no cover - any text is valid text
            return "bad-value", f"bad text {shown}"


def _date_message(text: str) -> tuple[str, str]:
    rule = RULES.date
    if re.fullmatch(rule.pattern, text):
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            pass
        else:
            m = rule.range.table
            return m.code, m.render(date=text, earliest=rule.earliest, latest=rule.latest)
    m = rule.form.table
    return m.code, m.render(shown=repr(text))


def _number_message(spec: CellSpec, text: str) -> tuple[str, str]:
    rule = RULES.number
    if not re.fullmatch(rule.plain_pattern, text):
        expected = rule.expected_integer if spec.integer else rule.expected_plain
        m = rule.form.table
        return m.code, m.render(expected=expected, shown=repr(text))
    x = Fraction(Decimal(text))
    if spec.integer and x.denominator != 1:
        m = rule.integer.table
        return m.code, m.render(shown=repr(text))
    unit = f" {spec.unit}" if spec.unit else ""
    if spec.minimum is not None and x < Fraction(spec.minimum):
        m = rule.below.table
        return m.code, m.render(value=text, unit=unit, low=spec.minimum)
    if spec.maximum is not None and x > Fraction(spec.maximum):
        m = rule.above.table
        return m.code, m.render(value=text, unit=unit, high=spec.maximum)
    if (x * 10**spec.fmt.scale).denominator != 1:
        m = rule.too_precise
        return m.code, m.render(shown=text, scale=spec.fmt.scale)
    m = rule.too_wide
    return m.code, m.render(shown=text, digits=spec.fmt.digits)


@dataclass(frozen=True, slots=True)
class Check:
    """One validity test of a table's rows; `explain` turns a failing row into (field, code,
    message)."""

    valid: exp.Expr
    explain: Explain
