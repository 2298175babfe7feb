"""The rule language's abstract syntax tree: small frozen nodes, each with its file span.

The tree stops at the parser: `protocode.language.syntax.parser` converts Lark's tree into these
nodes, and nothing after it sees a `lark.Tree`. Nodes hold what was written, unresolved:
names are strings, units are unit text. The checker turns them into typed IR.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from protocode.core.source import Span

ArithOp = Literal["+", "-", "*", "/"]
CompareOp = Literal["<", "<=", ">", ">=", "==", "!="]
TemporalOp = Literal["latest", "earliest", "any", "no", "count", "ever"]
WindowKind = Literal["within_before", "within_after", "within_of", "before", "after"]


@dataclass(frozen=True, slots=True)
class Number:
    """A plain number, exact: ``2``, ``0.85``."""

    value: Fraction
    span: Span


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number with a unit: ``60 mL/min``, ``14 days``."""

    value: Fraction
    unit: str
    unit_span: Span
    span: Span


@dataclass(frozen=True, slots=True)
class DateLit:
    """A calendar date: ``2024-01-31``."""

    value: dt.date
    span: Span


@dataclass(frozen=True, slots=True)
class String:
    """A quoted string; in rules it names a code, e.g. ``"female"``."""

    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class Bool:
    """``true`` or ``false``."""

    value: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Name:
    """A data item or definition, by name."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """A call of a library function: ``years_between(birth_date, enrollment)``."""

    func: str
    func_span: Span
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Arith:
    """Binary arithmetic."""

    op: ArithOp
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Neg:
    """Unary minus."""

    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class AsUnit:
    """``weight as kg``: the value's magnitude in a unit, as a plain number."""

    operand: Expr
    unit: str
    unit_span: Span
    span: Span


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right``."""

    op: CompareOp
    left: Expr
    right: Expr
    op_span: Span
    span: Span


@dataclass(frozen=True, slots=True)
class RefCompare:
    """``latest ast … <= 3 x ULN``: a comparison against a multiple of a reference limit."""

    op: CompareOp
    left: Expr
    factor: Fraction
    limit: Literal["ULN", "LLN"]
    limit_span: Span
    span: Span


@dataclass(frozen=True, slots=True)
class Between:
    """``x between lo and hi``, both ends included."""

    operand: Expr
    low: Expr
    high: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Member:
    """``x in {a, b}`` or ``x not in {a, b}``."""

    operand: Expr
    items: tuple[Expr, ...]
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class IsKnown:
    """``x is known`` (`known` true) or ``x is missing`` (`known` false)."""

    operand: Expr
    known: bool
    span: Span


@dataclass(frozen=True, slots=True)
class And:
    """Kleene conjunction."""

    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Or:
    """Kleene disjunction."""

    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Not:
    """Kleene negation."""

    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class If:
    """``if c then a else b``; an unknown condition gives unknown unless both arms agree."""

    cond: Expr
    then: Expr
    orelse: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Window:
    """A closed date interval around an anchor: ``within 7 days before enrollment``."""

    kind: WindowKind
    anchor: str
    anchor_span: Span
    span: Span
    amount: Fraction | None = None
    unit: str | None = None
    unit_span: Span | None = None


@dataclass(frozen=True, slots=True)
class Temporal:
    """``latest creatinine within …``, ``no chemotherapy within …``, ``ever hsct``."""

    op: TemporalOp
    item: str
    item_span: Span
    window: Window | None
    span: Span


Expr = (
    Number
    | Quantity
    | DateLit
    | String
    | Bool
    | Name
    | Call
    | Arith
    | Neg
    | AsUnit
    | Compare
    | RefCompare
    | Between
    | Member
    | IsKnown
    | And
    | Or
    | Not
    | If
    | Temporal
)
