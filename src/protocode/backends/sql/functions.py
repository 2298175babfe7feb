"""The rule language's functions in SQL, exact: date differences, min/max, rounding.

Each takes operands already compiled (`Num` for numbers, DATE expressions for dates) and
returns what the call compiles to, with the semantics of `protocode.language.library`.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from sqlglot import exp

from protocode.backends.sql.arith import Arith, Num, as_decimal, decimal_literal
from protocode.backends.sql.build import case, cmp
from protocode.backends.sql.layout import Fmt

# Records hold dates 1800-2200 and windows move them at most 200 years, so year, month and
# day differences fit in these many digits (with room for nested shifts).
_YEARS = Fmt(5, 0)
_MONTHS = Fmt(6, 0)
_DAYS = Fmt(8, 0)


def shift_date(date: exp.Expr, amount: int, months: bool) -> exp.Expr:
    """`date` moved by whole days or calendar months, as a DATE.

    Months move with ``+ INTERVAL n MONTH``, which clamps to the month's end as
    `protocode.language.library.add_months` does.
    """
    if amount == 0:
        return date.copy()
    unit = exp.var("MONTH" if months else "DAY")
    moved = exp.DateAdd(this=date.copy(), expression=exp.Literal.number(amount), unit=unit)
    return exp.cast(moved, "DATE")


def calendar_diff(start: exp.Expr, end: exp.Expr, months: bool) -> Num:
    """Completed calendar years (or months) from `start` to `end`."""

    def part(unit: str, d: exp.Expr) -> exp.Expr:
        return exp.Extract(this=exp.var(unit), expression=d.copy())

    years = exp.Sub(this=part("YEAR", end), expression=part("YEAR", start))
    if months:
        whole: exp.Expr = exp.Add(
            this=exp.Mul(this=exp.Paren(this=years), expression=exp.Literal.number(12)),
            expression=exp.Sub(this=part("MONTH", end), expression=part("MONTH", start)),
        )
        early = cmp("<", part("DAY", end), part("DAY", start))
    else:
        whole = years

        def month_day(d: exp.Expr) -> exp.Expr:
            return exp.Add(
                this=exp.Mul(this=part("MONTH", d), expression=exp.Literal.number(100)),
                expression=part("DAY", d),
            )

        # A birthday not yet reached this year: completed years are one fewer.
        early = cmp("<", month_day(end), month_day(start))
    fmt = _MONTHS if months else _YEARS
    value = exp.Sub(
        this=exp.Paren(this=whole),
        expression=case((early, exp.Literal.number(1)), default=exp.Literal.number(0)),
    )
    return Num(as_decimal(value, fmt), fmt)


def days_between(start: exp.Expr, end: exp.Expr) -> Num:
    """Days from `start` to `end`."""
    diff = exp.DateDiff(this=end.copy(), expression=start.copy(), unit=exp.var("DAY"))
    return Num(as_decimal(diff, _DAYS), _DAYS)


def extreme(args: Sequence[Num], arith: Arith, smallest: bool) -> Num:
    """The smallest (or largest) of `args`; unknown when any comparison is."""
    result = args[0]
    for other in args[1:]:
        keep = arith.compare("<=" if smallest else ">=", result, other)
        take = arith.compare(">" if smallest else "<", result, other)
        # An unknown comparison leaves both arms unmatched: NULL, i.e. unknown.
        result = arith.choose([(keep, result), (take, other)])
    return result


def floor_or_ceil(a: Num, up: bool) -> Num:
    """The integer below (or above) a decimal."""
    fmt = Fmt(a.fmt.digits + 1, 0)
    rounded = exp.Ceil(this=a.num.copy()) if up else exp.Floor(this=a.num.copy())
    return Num(as_decimal(rounded, fmt), fmt)


def round_half_away(a: Num, digits: int, arith: Arith) -> Num:
    """A decimal rounded to `digits` places, half away from zero."""
    if digits >= a.fmt.scale:
        return a
    # floor(|x| * 10^d + 1/2) / 10^d with the sign put back.
    shifted, sf = arith.mul(a.num, a.fmt, *decimal_literal(Fraction(10) ** digits))
    half, hf = decimal_literal(Fraction(1, 2))
    up_fmt = arith.check(Fmt(sf.digits + 1, 0))

    def rounded(x: exp.Expr) -> exp.Expr:
        added, _ = arith.add(x, sf, half, hf)
        return as_decimal(exp.Floor(this=added), up_fmt)

    zero = exp.Literal.number(0)
    magnitude = case(
        (cmp(">=", shifted, zero), rounded(shifted)),
        default=exp.Neg(this=exp.Paren(this=rounded(exp.Neg(this=exp.Paren(this=shifted))))),
    )
    back, bf = decimal_literal(Fraction(1, 10**digits))
    num, fmt = arith.mul(magnitude, up_fmt, back, bf)
    return Num(num, fmt)
