"""Exact numbers in SQL: DECIMAL arithmetic with every format tracked at compile time.

A numeric expression is an exact rational `Num`: a numerator and an optional denominator,
each a division-free DECIMAL expression, so ``crcl >= 60 mL/min`` compares
``num >= 60 * den`` (flipped when the denominator is negative; unknown when it is zero, as
the runtime's division by zero is). DuckDB's own decimal division would give a DOUBLE and
get Cockcroft-Gault = 60 wrong. `Arith` tracks each DECIMAL's digits from the layout's
column formats; an expression that could need more than the engine's digits is a
compile-time `UsageError` naming the rule text, never a silent rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from sqlglot import exp

from protocode.backends.sql.build import FLIP, and_, case, cast, cmp, not_null, or_, paren
from protocode.backends.sql.layout import MAX_WIDTH, Fmt
from protocode.core.errors import Diagnostic, UsageError
from protocode.core.exact import decimal_places, decimal_text
from protocode.core.source import Span

# DuckDB keeps products of two DECIMALs of at most 18 digits in 64 bits (and fails on
# overflow); wider products need one operand widened past this first.
_INT64_DIGITS = 18


def sql_error(message: str, span: Span | None) -> UsageError:
    """A protocol construct without an exact SQL form, located at its rule text."""
    return UsageError([Diagnostic("sql", message, span)])


def as_decimal(e: exp.Expr, fmt: Fmt) -> exp.Cast:
    """`e` cast to the DECIMAL of `fmt`."""
    return cast(e, fmt.sql_type())


def decimal_literal(x: Fraction) -> tuple[exp.Expr, Fmt]:
    """A terminating decimal as a literal cast to its exact DECIMAL format."""
    scale = decimal_places(x)
    assert scale is not None, "only terminating decimals are literals"
    body = decimal_text(abs(x), scale)
    fmt = Fmt(max(1, len(body.partition(".")[0].lstrip("0"))), scale)
    literal = as_decimal(exp.Literal.number(body), fmt)
    return (exp.Neg(this=literal) if x < 0 else literal), fmt


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
"""What an IR node compiles to: an exact number, or any other SQL value."""


class Arith:
    """DECIMAL arithmetic with tracked formats; too wide is a compile-time error at `span`."""

    def __init__(self, span: Span, max_width: int = MAX_WIDTH) -> None:
        self.span = span
        self.max_width = max_width

    def check(self, fmt: Fmt) -> Fmt:
        """`fmt`, or the error when it is wider than the engine holds exactly."""
        if fmt.width > self.max_width:
            raise sql_error(
                f"exact SQL for this expression needs DECIMAL({fmt.width}, {fmt.scale}), more "
                f"than {self.max_width} digits; narrow the items' plausible ranges "
                "(minimum/maximum)",
                self.span,
            )
        return fmt

    def mul(self, a: exp.Expr, af: Fmt, b: exp.Expr, bf: Fmt) -> tuple[exp.Expr, Fmt]:
        """The exact product of two DECIMALs and its format."""
        out = self.check(Fmt(af.digits + bf.digits, af.scale + bf.scale))
        left: exp.Expr = a.copy()
        if out.width > _INT64_DIGITS and af.width <= _INT64_DIGITS and bf.width <= _INT64_DIGITS:
            # Widen one side so DuckDB computes in 128 bits instead of overflowing 64.
            left = as_decimal(a, Fmt(_INT64_DIGITS + 1 - af.scale, af.scale))
        product = exp.Mul(this=paren(left), expression=paren(b.copy()))
        return as_decimal(product, out), out

    def add(
        self, a: exp.Expr, af: Fmt, b: exp.Expr, bf: Fmt, subtract: bool = False
    ) -> tuple[exp.Expr, Fmt]:
        """The exact sum (or difference) of two DECIMALs and its format."""
        out = self.check(Fmt(max(af.digits, bf.digits) + 1, max(af.scale, bf.scale)))
        node = exp.Sub if subtract else exp.Add
        return as_decimal(node(this=paren(a.copy()), expression=paren(b.copy())), out), out

    def const(self, x: Fraction) -> Num:
        """A constant: a decimal literal, or a quotient of two when it does not terminate."""
        if decimal_places(x) is not None:
            literal, fmt = decimal_literal(x)
            return Num(literal, self.check(fmt))
        n, nf = decimal_literal(Fraction(x.numerator))
        d, df = decimal_literal(Fraction(x.denominator))
        return Num(n, self.check(nf), d, self.check(df), True)

    def times(self, a: Num, b: Num) -> Num:
        """``a * b``."""
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
        """``a + b`` or ``a - b``."""
        left, lf, right, rf = self.cross(a, b)
        num, fmt = self.add(left, lf, right, rf, subtract)
        den, den_fmt = self._den_product(a, b)
        return Num(num, fmt, den, den_fmt, a.positive and b.positive)

    def divide(self, a: Num, b: Num) -> Num:
        """``a / b``: unknown wherever `b` is zero."""
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
        """`a` times an exact constant (a unit conversion)."""
        if factor == 1:
            return a
        return self.times(a, self.const(factor))

    def compare(self, op: str, a: Num, b: Num) -> exp.Expr:
        """``a op b``, exact; unknown when a denominator is zero."""
        if a.den is None and b.den is None:
            self.check(a.fmt.union(b.fmt))
            return cmp(op, a.num, b.num)
        left, lf, right, rf = self.cross(a, b)
        self.check(lf.union(rf))
        same, flipped = cmp(op, left, right), cmp(FLIP[op], left, right)
        signs = [n.den for n in (a, b) if not n.positive and n.den is not None]
        zero = exp.Literal.number(0)
        if not signs:
            return same
        if len(signs) == 1:
            d = signs[0]
            return case((cmp(">", d, zero), same), (cmp("<", d, zero), flipped))
        d1, d2 = signs
        agree = or_(
            and_(cmp(">", d1, zero), cmp(">", d2, zero)),
            and_(cmp("<", d1, zero), cmp("<", d2, zero)),
        )
        differ = or_(
            and_(cmp(">", d1, zero), cmp("<", d2, zero)),
            and_(cmp("<", d1, zero), cmp(">", d2, zero)),
        )
        return case((agree, same), (differ, flipped))

    def known(self, a: Num) -> exp.Expr:
        """A two-valued test: is `a` known (its parts known, its denominator not zero)?"""
        if a.den is None:
            return not_null(a.num)
        if a.positive:
            return and_(not_null(a.num), not_null(a.den))
        return and_(not_null(a.num), not_null(a.den), cmp("!=", a.den, exp.Literal.number(0)))

    def choose(self, arms: Sequence[tuple[exp.Expr, Num]]) -> Num:
        """The number of the first arm whose condition holds; unknown when none does.

        Numerators (and denominators, when any arm has one) are cast to one format that
        holds every arm's.
        """
        fmt = self.check(_union(n.fmt for _, n in arms))
        num = case(*((cond, as_decimal(n.num, fmt)) for cond, n in arms))
        if all(n.den is None for _, n in arms):
            return Num(num, fmt)
        one = decimal_literal(Fraction(1))
        dens = [
            (n.den, n.den_fmt) if n.den is not None and n.den_fmt is not None else one
            for _, n in arms
        ]
        den_fmt = self.check(_union(f for _, f in dens))
        den = case(
            *((cond, as_decimal(d, den_fmt)) for (cond, _), (d, _) in zip(arms, dens, strict=True))
        )
        return Num(num, fmt, den, den_fmt, all(n.positive for _, n in arms))


def _union(fmts: Iterable[Fmt]) -> Fmt:
    it = iter(fmts)
    out = next(it)
    for f in it:
        out = out.union(f)
    return out
