"""Exact UCUM unit algebra for the rule language.

Clinical limits are decided at the boundary ("creatinine <= 1.5 mg/dL"), so a value that sits
exactly on a limit must compare equal after conversion. Every conversion factor is therefore a
`fractions.Fraction`; no float ever enters a factor. (pint is not used for that reason: its
conversions are float-based.)

The package, by job: `dimensions` (what a unit measures, in vectors and in words), `atoms`
(the unit table: atoms, prefixes, aliases, suggestions), `unit` (`Unit` and its algebra),
`parse` (UCUM text to a `Unit`) and `convert` (exact factors and the messages of quantities
that cannot meet). The names below are its interface.
"""

from __future__ import annotations

from protocode.language.units.convert import (
    conversion_factor,
    is_time,
    plain_number,
    quantity_text,
    unit_mismatch,
)
from protocode.language.units.dimensions import BASE_DIMENSIONS
from protocode.language.units.parse import parse_unit
from protocode.language.units.unit import ONE, Unit, UnitError

__all__ = [
    "BASE_DIMENSIONS",
    "ONE",
    "Unit",
    "UnitError",
    "conversion_factor",
    "is_time",
    "parse_unit",
    "plain_number",
    "quantity_text",
    "unit_mismatch",
]
