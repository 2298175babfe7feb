"""Exact conversion between units, and the messages for quantities that cannot meet.

Clinical limits are decided at the boundary ("creatinine <= 1.5 mg/dL"), so a value that sits
exactly on a limit must compare equal after conversion: every factor is a `Fraction`.
"""

from __future__ import annotations

from fractions import Fraction

from protocode.language.units.dimensions import MASS, Dims, dim, scale_dims, sub_dims
from protocode.language.units.unit import Unit, UnitError

_MASS_PER_AMOUNT = sub_dims(dim(mass=1), dim(amount=1))


def _molar_exponent(src: Dims, dst: Dims) -> int:
    """k such that src = dst + k * (mass - amount), or 0 if there is none."""
    diff = sub_dims(src, dst)
    k = diff[MASS]
    if k and diff == scale_dims(_MASS_PER_AMOUNT, k):
        return k
    return 0


def conversion_factor(src: Unit, dst: Unit, molar_mass: Fraction | None = None) -> Fraction:
    """The exact factor with value_in_dst = value_in_src * factor.

    `molar_mass` (g/mol) additionally allows converting between mass and amount of substance,
    e.g. creatinine mg/dL <-> umol/L. Raises `UnitError` if the units are not convertible.
    """
    if src.dims == dst.dims:
        return src.factor / dst.factor
    k = _molar_exponent(src.dims, dst.dims)
    if k and molar_mass is not None:
        if molar_mass <= 0:
            raise UnitError(f"molar mass must be positive, not {molar_mass}")
        # Base mass unit is the gram, so g/mol converts base mass to base amount directly:
        # x g is x / M mol.
        return src.factor / dst.factor / Fraction(molar_mass) ** k
    message = (
        f"cannot convert {src.text} to {dst.text}: "
        f"{src.describe_dimension()} is not {dst.describe_dimension()}"
    )
    if k:
        message += (
            " (mass and amount of substance convert only through a molar mass: the data "
            "item's molar_mass)"
        )
    raise UnitError(message, 0, len(src.text))


def unit_mismatch(a: Unit, b: Unit, substance: str | None = None) -> str:
    """Why quantities in `a` and `b` cannot meet: each unit with its dimension.

    `substance` names the data item whose molar mass would convert between mass and amount
    of substance, where the caller converts through one: then a mass/amount mismatch says
    to give that item a `molar_mass`.
    """
    if a.dimensionless or b.dimensionless:
        return plain_number(b if a.dimensionless else a)
    message = (
        f"incompatible units: {a.text} ({a.describe_dimension()}) and "
        f"{b.text} ({b.describe_dimension()})"
    )
    if substance is not None and _molar_exponent(a.dims, b.dims):
        message += (
            f"; mass and amount of substance convert only through a molar mass: give the "
            f"data item '{substance}' its molar_mass, in g/mol"
        )
    return message


def plain_number(unit: Unit, number: str | None = None) -> str:
    """Why a plain number cannot meet a quantity in `unit`, and the literal to write instead.

    `number` is the plain literal's own text when there is one, so the suggestion is the
    writer's value with its unit ('18 years'), not an arbitrary example.
    """
    return (
        f"cannot combine a plain number with a quantity in {_spelled(unit, 2)} "
        f"({unit.describe_dimension()}); write the unit, e.g. "
        f"'{quantity_text(number or '60', unit)}'"
    )


# How protocols spell durations ('18 years', '7 days', as the registry text does); the
# UCUM atoms 'a', 'mo' and 'wk' read poorly to a protocol writer.
_WORDS: dict[str, tuple[str, str]] = {
    "a": ("year", "years"),
    "mo": ("month", "months"),
    "wk": ("week", "weeks"),
    "d": ("day", "days"),
    "h": ("hour", "hours"),
    "min": ("minute", "minutes"),
    "s": ("second", "seconds"),
}


def _spelled(unit: Unit, count: int) -> str:
    words = _WORDS.get(unit.text)
    if words is None:
        return unit.text
    return words[0] if count == 1 else words[1]


def quantity_text(number: str, unit: Unit) -> str:
    """A quantity literal as protocols write it: '18 years', '1 day', '60 mL/min'."""
    return f"{number} {_spelled(unit, 1 if number == '1' else 2)}"


_TIME_DIMS = dim(time=1)


def is_time(unit: Unit) -> bool:
    """True if `unit` measures a duration (s, min, h, d, wk, mo, a, ...)."""
    return unit.dims == _TIME_DIMS
