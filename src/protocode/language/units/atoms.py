"""The unit table: UCUM atoms, metric prefixes, the spellings clinicians use, suggestions.

Only the subset of UCUM that clinical protocols use is covered: SI base and derived atoms,
clinical time atoms, percent, enzyme and arbitrary (international) units, pressure in mm[Hg],
avoirdupois pound and international inch. Offset units (Cel, [degF]) are deliberately absent:
they are not ratio scales, so a single factor cannot convert them. Every factor is an exact
`fractions.Fraction`.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from fractions import Fraction

from protocode.language.units.dimensions import NO_DIMS, Dims, dim


@dataclass(frozen=True, slots=True)
class _Atom:
    factor: Fraction
    dims: Dims
    metric: bool  # UCUM: only metric atoms take prefixes


def _atoms() -> dict[str, _Atom]:
    mass, length, time, amount = dim(mass=1), dim(length=1), dim(time=1), dim(amount=1)
    volume = dim(length=3)
    second = Fraction(1)
    day = 86400 * second
    year = Fraction("365.25") * day
    # UCUM defines N and Pa via the kilogram; our mass base is the gram (as in UCUM), hence 1000.
    newton = (Fraction(1000), dim(mass=1, length=1, time=-2))
    pascal = (Fraction(1000), dim(mass=1, length=-1, time=-2))
    joule = (Fraction(1000), dim(mass=1, length=2, time=-2))
    inch = Fraction("0.0254")
    pound = Fraction("453.59237")
    table: dict[str, tuple[Fraction, Dims, bool]] = {
        "g": (Fraction(1), mass, True),
        "m": (Fraction(1), length, True),
        "s": (second, time, True),
        "mol": (Fraction(1), amount, True),
        "K": (Fraction(1), dim(temperature=1), True),
        "L": (Fraction(1, 1000), volume, True),
        "l": (Fraction(1, 1000), volume, True),
        "min": (60 * second, time, False),
        "h": (3600 * second, time, False),
        "d": (day, time, False),
        "wk": (7 * day, time, False),
        "a": (year, time, False),
        "a_j": (year, time, False),
        "mo": (year / 12, time, False),
        "mo_j": (year / 12, time, False),
        "Hz": (Fraction(1), dim(time=-1), True),
        "%": (Fraction(1, 100), NO_DIMS, False),
        "[ppth]": (Fraction(1, 10**3), NO_DIMS, False),
        "[ppm]": (Fraction(1, 10**6), NO_DIMS, False),
        "[ppb]": (Fraction(1, 10**9), NO_DIMS, False),
        "10*": (Fraction(10), NO_DIMS, False),
        "10^": (Fraction(10), NO_DIMS, False),
        # Enzyme unit: 1 umol of substrate per minute.
        "U": (Fraction(1, 10**6 * 60), dim(amount=1, time=-1), True),
        "kat": (Fraction(1), dim(amount=1, time=-1), True),
        # International units are defined per substance by a reference preparation, so they
        # cannot be converted to anything but themselves: their own axis.
        "[IU]": (Fraction(1), dim(arbitrary=1), True),
        "[iU]": (Fraction(1), dim(arbitrary=1), True),
        # UCUM equivalents and osmoles are counted in moles (valence is not part of the unit).
        "eq": (Fraction(1), amount, True),
        "osm": (Fraction(1), amount, True),
        "N": (*newton, True),
        "Pa": (*pascal, True),
        "bar": (pascal[0] * 100000, pascal[1], True),
        "J": (*joule, True),
        "cal": (joule[0] * Fraction("4.184"), joule[1], True),
        # UCUM: m[Hg] = 133.322 kPa, so mm[Hg] = 133.322 Pa exactly.
        "m[Hg]": (pascal[0] * Fraction("133.322") * 1000, pascal[1], True),
        "m[H2O]": (pascal[0] * Fraction("9.80665") * 1000, pascal[1], True),
        "[lb_av]": (pound, mass, False),
        "[oz_av]": (pound / 16, mass, False),
        "[in_i]": (inch, length, False),
        "[ft_i]": (12 * inch, length, False),
    }
    return {sym: _Atom(f, dims, metric) for sym, (f, dims, metric) in table.items()}


_ATOMS = _atoms()

_PREFIXES: dict[str, Fraction] = {
    "Y": Fraction(10) ** 24,
    "Z": Fraction(10) ** 21,
    "E": Fraction(10) ** 18,
    "P": Fraction(10) ** 15,
    "T": Fraction(10) ** 12,
    "G": Fraction(10) ** 9,
    "M": Fraction(10) ** 6,
    "k": Fraction(10) ** 3,
    "h": Fraction(10) ** 2,
    "da": Fraction(10),
    "d": Fraction(10) ** -1,
    "c": Fraction(10) ** -2,
    "m": Fraction(10) ** -3,
    "u": Fraction(10) ** -6,
    "n": Fraction(10) ** -9,
    "p": Fraction(10) ** -12,
    "f": Fraction(10) ** -15,
    "a": Fraction(10) ** -18,
    "z": Fraction(10) ** -21,
    "y": Fraction(10) ** -24,
}
# Longest first so a two-letter prefix ('da') can never be shadowed by a one-letter one if an
# atom is added whose symbol starts with 'a'; no current symbol splits two ways.
_PREFIXES_LONGEST_FIRST = sorted(_PREFIXES, key=len, reverse=True)

# Spellings clinicians write that are not UCUM; each maps to a UCUM atom. Only whole symbols
# are aliased ('days', not 'kdays'), except those in _METRIC_ALIASES which keep UCUM's
# prefix rule of their target ('mIU' -> 'm[IU]').
_ALIASES: dict[str, str] = {
    "year": "a",
    "years": "a",
    "yr": "a",
    "yrs": "a",
    "month": "mo",
    "months": "mo",
    "week": "wk",
    "weeks": "wk",
    "day": "d",
    "days": "d",
    "hour": "h",
    "hours": "h",
    "hr": "h",
    "hrs": "h",
    "minute": "min",
    "minutes": "min",
    "second": "s",
    "seconds": "s",
    "sec": "s",
    "mcg": "ug",
}
_METRIC_ALIASES: dict[str, str] = {"IU": "[IU]"}

MICRO_SIGNS = str.maketrans({"µ": "u", "μ": "u"})
"""The micro signs written for the micro prefix 'u', as a `str.translate` table."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a unit symbol denotes: its normalised text, exact factor and dimension."""

    text: str
    factor: Fraction
    dims: Dims


@functools.cache
def resolve(symbol: str) -> Resolved | None:
    """The atom a (possibly prefixed or aliased) symbol denotes, or None if unknown."""
    atom = _ATOMS.get(symbol)
    if atom is not None:
        return Resolved(symbol, atom.factor, atom.dims)
    alias = _ALIASES.get(symbol) or _METRIC_ALIASES.get(symbol)
    if alias is not None:
        target = resolve(alias)
        assert target is not None, alias
        return target
    for prefix in _PREFIXES_LONGEST_FIRST:
        if not symbol.startswith(prefix) or len(symbol) == len(prefix):
            continue
        rest = symbol[len(prefix) :]
        canonical = _METRIC_ALIASES.get(rest, rest)
        atom = _ATOMS.get(canonical)
        if atom is not None and atom.metric:
            return Resolved(prefix + canonical, _PREFIXES[prefix] * atom.factor, atom.dims)
    return None


def non_metric_prefix(symbol: str) -> tuple[str, str] | None:
    """(prefix, atom) if `symbol` is a prefix on an atom that UCUM forbids prefixing."""
    for prefix in _PREFIXES_LONGEST_FIRST:
        rest = symbol[len(prefix) :]
        if symbol.startswith(prefix) and rest:
            canonical = _ALIASES.get(rest, rest)
            atom = _ATOMS.get(canonical)
            if atom is not None and not atom.metric:
                return prefix, rest
    return None


@functools.cache
def _suggestion_pool() -> tuple[str, ...]:
    common_prefixes = ("k", "d", "c", "m", "u", "n", "p")
    pool = list(_ATOMS) + list(_ALIASES) + list(_METRIC_ALIASES)
    for sym, atom in _ATOMS.items():
        if atom.metric:
            pool.extend(p + sym for p in common_prefixes)
    return tuple(dict.fromkeys(pool))


# Spellings from lab reports and charts that are not UCUM, with the unit they mean. Edit
# distance alone gets these wrong ('gm' is as close to 'm' as to 'g').
_NOT_UCUM: dict[str, str] = {
    "gm": "g",
    "gms": "g",
    "gr": "g",
    "lb": "[lb_av]",
    "lbs": "[lb_av]",
    "in": "[in_i]",
    "ft": "[ft_i]",
    "cc": "mL",
    "mmHg": "mm[Hg]",
    "cells": "{cells}",
}


def suggest(symbol: str) -> str | None:
    """The unit most likely meant by an unknown `symbol`, or None when nothing is close."""
    known = _NOT_UCUM.get(symbol)
    if known is not None:
        return known
    pool = _suggestion_pool()
    # Case slips ('MG', 'Ml') are the most common error; UCUM is case-sensitive, so
    # point at the intended spelling before falling back to edit distance.
    folded = [p for p in pool if p.lower() == symbol.lower()]
    if folded:
        return folded[0]
    close = difflib.get_close_matches(symbol, pool, n=5, cutoff=0.6)
    if not close:
        return None
    # Among equally close spellings, the one that starts as the writer's does: a unit's
    # first letters are its prefix and atom, the part a typo is least likely to change.
    matcher = difflib.SequenceMatcher(b=symbol)

    def rank(candidate: str) -> tuple[float, int]:
        matcher.set_seq1(candidate)
        shared = next(
            (i for i, (x, y) in enumerate(zip(candidate, symbol, strict=False)) if x != y),
            min(len(candidate), len(symbol)),
        )
        return matcher.ratio(), shared

    return max(close, key=rank)
