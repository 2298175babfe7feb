"""Layout stage: the table layout of large inputs, derived from a protocol's data dictionary.

Three tables hold what a JSON record holds (see ``docs/sql.md``):

- ``patients``: one row per patient; ``id``, one column per anchor or fact item, one BOOLEAN
  ``attest__<name>`` per attestation and one BOOLEAN ``known__<item>`` per observation or
  event item (TRUE: the record lists that item's history, possibly empty; NULL or FALSE: the
  history is unknown, unless rows of it exist).
- ``observations(id, item, date, value, low, high)``: one row per dated (or undated, NULL
  date) value of an observation item. ``value``, ``low`` and ``high`` are canonical text,
  read per item into the item's type (numbers exactly, in the item's unit).
- ``events(id, item, date, end)``: one row per occurrence of an event item.

Numbers are DECIMAL, never binary floats: every number or quantity item is stored with
`SCALE` decimal places (nano-units of the item's unit) and as many integer digits as its
plausible range needs (`DEFAULT_DIGITS` when it has no range). Integer items are BIGINT.
These formats are what the SQL compiler reasons about when it proves that no intermediate
result can exceed DuckDB's 38 decimal digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from sqlglot import exp

from protocode.core.errors import UsageError
from protocode.document.model import DataItem
from protocode.language.check import CheckedProtocol

# Decimal places of every stored number (in the item's unit). Nine places hold any decimal a
# lab reports and the exact conversions of common units (creatinine 93 umol/L is 1.052016
# mg/dL); a value that needs more is reported as a bad record rather than rounded.
SCALE = 9
# Integer digits of a number item without a plausible range: magnitudes below 10^9.
DEFAULT_DIGITS = 9
# Integer digits of an integer item without a plausible range (BIGINT holds 18 safely).
DEFAULT_INTEGER_DIGITS = 18
# The widest DECIMAL of DuckDB, Spark, Snowflake and BigQuery's NUMERIC family.
MAX_WIDTH = 38

ATTEST_PREFIX = "attest__"
KNOWN_PREFIX = "known__"

Role = Literal["id", "fact", "attestation", "known"]


@dataclass(frozen=True, slots=True)
class Fmt:
    """A decimal format: `digits` before the point, `scale` after it (DECIMAL(p, s))."""

    digits: int
    scale: int

    @property
    def width(self) -> int:
        """The DECIMAL precision: all digits."""
        return self.digits + self.scale

    def sql_type(self) -> exp.DataType:
        """``DECIMAL(width, scale)``."""
        return exp.DataType.build(f"DECIMAL({max(self.width, 1)}, {self.scale})")

    def union(self, other: Fmt) -> Fmt:
        """A format holding the values of both."""
        return Fmt(max(self.digits, other.digits), max(self.scale, other.scale))


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the ``patients`` table."""

    name: str
    role: Role
    item: str | None
    sql_type: exp.DataType
    fmt: Fmt | None = None


@dataclass(frozen=True, slots=True)
class Tables:
    """The names of the three input tables (may be qualified: ``schema.patients``)."""

    patients: str = "patients"
    observations: str = "observations"
    events: str = "events"


DEFAULT_TABLES = Tables()


def _digits(bound: Fraction) -> int:
    return max(1, len(str(abs(int(bound)))))


def number_format(item: DataItem) -> Fmt:
    """The DECIMAL format a numeric item's values are held in, from its plausible range."""
    scale = 0 if item.type == "integer" else SCALE
    if item.minimum is not None and item.maximum is not None:
        bound = max(abs(Fraction(item.minimum)), abs(Fraction(item.maximum)))
        return Fmt(_digits(bound), scale)
    return Fmt(DEFAULT_INTEGER_DIGITS if item.type == "integer" else DEFAULT_DIGITS, scale)


_NUMERIC = frozenset({"integer", "number", "quantity"})


def is_numeric(item: DataItem) -> bool:
    """Whether an item holds numbers (integer, number or quantity)."""
    return item.type in _NUMERIC and item.kind != "anchor"


def value_type(item: DataItem) -> exp.DataType:
    """The SQL type of one value of `item` (a fact column, or an observation value read)."""
    if item.kind == "anchor" or item.type == "date":
        return exp.DataType.build("DATE")
    if item.type == "boolean":
        return exp.DataType.build("BOOLEAN")
    if item.type == "integer":
        return exp.DataType.build("BIGINT")
    if item.type in _NUMERIC:
        return number_format(item).sql_type()
    return exp.DataType.build("VARCHAR")


@dataclass(frozen=True, slots=True)
class Layout:
    """The tables a protocol's SQL reads: column names and types, from the data dictionary."""

    checked: CheckedProtocol
    columns: tuple[Column, ...]

    @property
    def items(self) -> dict[str, DataItem]:
        """The data dictionary by item name."""
        return self.checked.items

    def fact_column(self, item: str) -> Column:
        """The ``patients`` column of an anchor or fact item."""
        return next(c for c in self.columns if c.role == "fact" and c.item == item)

    @property
    def observation_items(self) -> tuple[DataItem, ...]:
        """Observation items, in dictionary order."""
        return tuple(i for i in self.checked.doc.data if i.kind == "observation")

    @property
    def event_items(self) -> tuple[DataItem, ...]:
        """Event items, in dictionary order."""
        return tuple(i for i in self.checked.doc.data if i.kind == "event")

    def ddl(self, tables: Tables = DEFAULT_TABLES) -> list[exp.Create]:
        """``CREATE TABLE`` statements of the three tables."""

        def create(name: str, cols: list[tuple[str, exp.DataType, bool]]) -> exp.Create:
            defs = [
                exp.ColumnDef(
                    this=exp.to_identifier(n, quoted=True),
                    kind=t,
                    constraints=[exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())]
                    if not_null
                    else [],
                )
                for n, t, not_null in cols
            ]
            return exp.Create(
                this=exp.Schema(this=exp.to_table(name), expressions=defs), kind="TABLE"
            )

        varchar, date = exp.DataType.build("VARCHAR"), exp.DataType.build("DATE")
        return [
            create(tables.patients, [(c.name, c.sql_type, c.role == "id") for c in self.columns]),
            create(
                tables.observations,
                [
                    ("id", varchar, True),
                    ("item", varchar, True),
                    ("date", date, False),
                    ("value", varchar, True),
                    ("low", varchar, False),
                    ("high", varchar, False),
                ],
            ),
            create(
                tables.events,
                [
                    ("id", varchar, True),
                    ("item", varchar, True),
                    ("date", date, False),
                    ("end", date, False),
                ],
            ),
        ]


def layout(checked: CheckedProtocol) -> Layout:
    """The table layout of a checked protocol.

    Raises `UsageError` when generated column names would clash (an item named like an
    attestation or history column).
    """
    columns = [Column("id", "id", None, exp.DataType.build("VARCHAR"))]
    for item in checked.doc.data:
        if item.kind in {"anchor", "fact"}:
            fmt = number_format(item) if is_numeric(item) else None
            columns.append(Column(item.name, "fact", item.name, value_type(item), fmt))
    boolean = exp.DataType.build("BOOLEAN")
    columns += [Column(ATTEST_PREFIX + a, "attestation", a, boolean) for a in checked.attestations]
    columns += [
        Column(KNOWN_PREFIX + i.name, "known", i.name, boolean)
        for i in checked.doc.data
        if i.kind in {"observation", "event"}
    ]
    seen: set[str] = set()
    for c in columns:
        if c.name.lower() in seen:
            raise UsageError.at(
                "sql-layout", f"two columns of the patients table would be named {c.name!r}", None
            )
        seen.add(c.name.lower())
    return Layout(checked, tuple(columns))
