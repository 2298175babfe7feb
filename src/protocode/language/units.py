"""Exact UCUM unit algebra for the rule language.

Clinical limits are decided at the boundary ("creatinine <= 1.5 mg/dL"), so a value that sits
exactly on a limit must compare equal after conversion. Every conversion factor is therefore a
`fractions.Fraction`; no float ever enters a factor. (pint is not used for that reason: its
conversions are float-based.)

Only the subset of UCUM that clinical protocols use is covered: SI base and derived atoms,
clinical time atoms, percent, enzyme and arbitrary (international) units, pressure in mm[Hg],
avoirdupois pound and international inch. Offset units (Cel, [degF]) are deliberately absent:
they are not ratio scales, so a single factor cannot convert them.

Grammar (UCUM §7, case-sensitive)::

    main       := '/' term | term
    term       := component (('.' | '/') component)*
    component  := simple exponent? annotation? | annotation | digits | '(' main ')'
    simple     := ATOM | PREFIX ATOM[metric]

A leading '/' inverts the whole term, as in UCUM: '/uL' is 1/uL and '/s.m' is 1/(s.m).
English time words clinicians write ('days', 'hours', ...) are accepted and normalised to the
UCUM atom, as are 'µ'/'μ' for the micro prefix.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeAlias

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

BASE_DIMENSIONS: tuple[str, ...] = (
    "mass",
    "length",
    "time",
    "amount",
    "temperature",
    "arbitrary",
)
"""Names of the dimension-vector axes. Coherent base units are g, m, s, mol, K and [IU]."""

Dims: TypeAlias = tuple[int, ...]

_MASS, _LENGTH, _TIME, _AMOUNT, _TEMPERATURE, _ARBITRARY = range(len(BASE_DIMENSIONS))
_NO_DIMS: Dims = (0,) * len(BASE_DIMENSIONS)

# Exponents are capped so that a typo like 'm999999999' cannot make Fraction arithmetic
# allocate gigabytes; no clinical unit comes anywhere near this.
_MAX_EXPONENT = 99
# Parenthesised terms recurse; bound the depth so hostile text gives a UnitError, not a
# RecursionError.
_MAX_NESTING = 32
_MAX_FACTOR_DIGITS = 30


class UnitError(ValueError):
    """Bad unit text or incompatible units.

    `offset` is the 0-based character offset in the unit text where the problem is (0 if
    unknown) and `length` (at least 1) how many characters it covers, so callers can underline
    the bad part inside a larger source span.
    """

    def __init__(self, message: str, offset: int = 0, length: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.offset = max(0, offset)
        self.length = max(1, length)

    def __reduce__(self) -> tuple[type[UnitError], tuple[str, int, int]]:
        # Keep offset/length when the error crosses a process boundary (pickle).
        return (type(self), (self.message, self.offset, self.length))


def _add(a: Dims, b: Dims) -> Dims:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _sub(a: Dims, b: Dims) -> Dims:
    return tuple(x - y for x, y in zip(a, b, strict=True))


def _scale(a: Dims, n: int) -> Dims:
    return tuple(x * n for x in a)


def _dim(
    *,
    mass: int = 0,
    length: int = 0,
    time: int = 0,
    amount: int = 0,
    temperature: int = 0,
    arbitrary: int = 0,
) -> Dims:
    return (mass, length, time, amount, temperature, arbitrary)


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit: display text, size in coherent base units, and dimension vector.

    `text` is the normalised spelling ('µg' -> 'ug', 'days' -> 'd') and always parses back to
    the same factor and dimensions. Two units are interchangeable for conversion iff their
    `dims` are equal; equality of `Unit` objects also compares `text`.
    """

    text: str
    factor: Fraction
    dims: Dims

    def __str__(self) -> str:
        return self.text

    def __mul__(self, other: Unit) -> Unit:
        """The product unit, e.g. mg/kg * kg = mg/kg.kg (not simplified)."""
        if not isinstance(other, Unit):
            return NotImplemented
        if other.text == "1":
            return self
        if self.text == "1":
            return other
        # Left-to-right '.' and '/' are linear in their first component, so prefixing
        # 'a.' to any term multiplies the whole term: no parentheses are needed.
        text = f"{_as_left(self.text)}.{_as_left(other.text)}"
        return Unit(text, self.factor * other.factor, _add(self.dims, other.dims))

    def __truediv__(self, other: Unit) -> Unit:
        """The quotient unit, e.g. mL / min = mL/min."""
        if not isinstance(other, Unit):
            return NotImplemented
        if other.text == "1":
            return self
        right = other.text
        if _is_compound(right):
            right = f"({_as_left(right)})"
        left = "" if self.text == "1" and not right.startswith("(") else _as_left(self.text)
        text = f"{left}/{right}"
        return Unit(text, self.factor / other.factor, _sub(self.dims, other.dims))

    def __pow__(self, n: int) -> Unit:
        """The unit raised to an integer power, e.g. cm ** 3 = cm3, s ** -1 = s-1."""
        if not isinstance(n, int) or isinstance(n, bool):
            return NotImplemented
        if n == 0 or self.text == "1":
            return ONE
        if n == 1:
            return self
        factor = self.factor**n
        dims = _scale(self.dims, n)
        simple = _split_simple(self.text)
        if simple is not None:
            symbol, exponent = simple
            new_exponent = exponent * n
            if abs(new_exponent) > _MAX_EXPONENT:
                raise UnitError(f"exponent {new_exponent} is too large", 0, len(self.text))
            text = symbol if new_exponent == 1 else f"{symbol}{new_exponent}"
            return Unit(text, factor, dims)
        if abs(n) > _MAX_EXPONENT:
            raise UnitError(f"exponent {n} is too large", 0, len(self.text))
        repeated = ".".join([_as_left(self.text)] * abs(n))
        if n > 0:
            return Unit(repeated, factor, dims)
        return Unit(f"1/({repeated})", factor, dims)

    @property
    def dimensionless(self) -> bool:
        """True for pure numbers: '1', '%', '10*9', '{cells}', 'mg/g', ..."""
        return self.dims == _NO_DIMS

    def convertible(self, other: Unit) -> bool:
        """True if a value in this unit can be expressed in `other` (same dimensions)."""
        return self.dims == other.dims

    def describe_dimension(self) -> str:
        """Human text for the dimension, e.g. 'mass/volume', 'volume/time', 'time'."""
        return _describe(self.dims)


ONE = Unit("1", Fraction(1), _NO_DIMS)
"""The dimensionless unit one."""


def _is_compound(text: str) -> bool:
    # Extra parentheses are harmless, so any operator character (even one inside an
    # annotation such as '{1.73_m2}') counts as compound.
    return "." in text or "/" in text


def _as_left(text: str) -> str:
    """`text` rewritten so it can be the first operand of a longer term.

    A leading '/' inverts the whole term in UCUM, so '/uL' followed by '.h' would wrongly
    become 1/(uL.h); spell the inversion with an explicit '1' instead.
    """
    if not text.startswith("/"):
        return text
    rest = text[1:]
    return f"1/({rest})" if _is_compound(rest) else f"1/{rest}"


# --- atoms and prefixes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Atom:
    factor: Fraction
    dims: Dims
    metric: bool  # UCUM: only metric atoms take prefixes


def _atoms() -> dict[str, _Atom]:
    mass, length, time, amount = _dim(mass=1), _dim(length=1), _dim(time=1), _dim(amount=1)
    volume = _dim(length=3)
    second = Fraction(1)
    day = 86400 * second
    year = Fraction("365.25") * day
    # UCUM defines N and Pa via the kilogram; our mass base is the gram (as in UCUM), hence 1000.
    newton = (Fraction(1000), _dim(mass=1, length=1, time=-2))
    pascal = (Fraction(1000), _dim(mass=1, length=-1, time=-2))
    joule = (Fraction(1000), _dim(mass=1, length=2, time=-2))
    inch = Fraction("0.0254")
    pound = Fraction("453.59237")
    table: dict[str, tuple[Fraction, Dims, bool]] = {
        "g": (Fraction(1), mass, True),
        "m": (Fraction(1), length, True),
        "s": (second, time, True),
        "mol": (Fraction(1), amount, True),
        "K": (Fraction(1), _dim(temperature=1), True),
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
        "Hz": (Fraction(1), _dim(time=-1), True),
        "%": (Fraction(1, 100), _NO_DIMS, False),
        "[ppth]": (Fraction(1, 10**3), _NO_DIMS, False),
        "[ppm]": (Fraction(1, 10**6), _NO_DIMS, False),
        "[ppb]": (Fraction(1, 10**9), _NO_DIMS, False),
        "10*": (Fraction(10), _NO_DIMS, False),
        "10^": (Fraction(10), _NO_DIMS, False),
        # Enzyme unit: 1 umol of substrate per minute.
        "U": (Fraction(1, 10**6 * 60), _dim(amount=1, time=-1), True),
        "kat": (Fraction(1), _dim(amount=1, time=-1), True),
        # International units are defined per substance by a reference preparation, so they
        # cannot be converted to anything but themselves: their own axis.
        "[IU]": (Fraction(1), _dim(arbitrary=1), True),
        "[iU]": (Fraction(1), _dim(arbitrary=1), True),
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

_MICRO_SIGNS = str.maketrans({"µ": "u", "μ": "u"})


@dataclass(frozen=True, slots=True)
class _Resolved:
    text: str
    factor: Fraction
    dims: Dims


@functools.cache
def _resolve(symbol: str) -> _Resolved | None:
    """The atom a (possibly prefixed or aliased) symbol denotes, or None if unknown."""
    atom = _ATOMS.get(symbol)
    if atom is not None:
        return _Resolved(symbol, atom.factor, atom.dims)
    alias = _ALIASES.get(symbol) or _METRIC_ALIASES.get(symbol)
    if alias is not None:
        target = _resolve(alias)
        assert target is not None, alias
        return target
    for prefix in _PREFIXES_LONGEST_FIRST:
        if not symbol.startswith(prefix) or len(symbol) == len(prefix):
            continue
        rest = symbol[len(prefix) :]
        canonical = _METRIC_ALIASES.get(rest, rest)
        atom = _ATOMS.get(canonical)
        if atom is not None and atom.metric:
            return _Resolved(prefix + canonical, _PREFIXES[prefix] * atom.factor, atom.dims)
    return None


def _non_metric_prefix(symbol: str) -> tuple[str, str] | None:
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


def _suggest(symbol: str) -> str | None:
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


# --- parser ---------------------------------------------------------------------------------

_DELIMITERS = frozenset("./(){}")


def _is_digit(ch: str) -> bool:
    """An ASCII digit: `str.isdigit` also takes '²' and other scripts' digits."""
    return "0" <= ch <= "9"


_EXPONENT_RE = re.compile(r"(?P<symbol>.*?)(?P<exponent>[+-]?[0-9]+)?")


class _Parser:
    """Recursive-descent parser over the UCUM grammar in the module docstring.

    Offsets in errors refer to the text as given; normalising 'µ' to 'u' is one character
    for one, so offsets survive it. Aliases change length, so they are recorded as
    replacements and applied only when building the display text.
    """

    def __init__(self, original: str) -> None:
        self.original = original
        self.text = original.translate(_MICRO_SIGNS)
        self.pos = 0
        self.depth = 0
        self.replacements: list[tuple[int, int, str]] = []

    def error(self, message: str, offset: int, length: int = 1) -> UnitError:
        return UnitError(message, offset, length)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self) -> Unit:
        if not self.text:
            raise self.error("empty unit", 0)
        factor, dims = self.main()
        if self.pos < len(self.text):
            raise self.unexpected()
        return Unit(self.display_text(), factor, dims)

    def display_text(self) -> str:
        out = self.text
        for start, end, replacement in reversed(self.replacements):
            out = out[:start] + replacement + out[end:]
        return out

    def unexpected(self) -> UnitError:
        ch = self.peek()
        if not ch:
            return self.error("unexpected end of unit", self.pos)
        if ch.isspace():
            return self.error("unexpected whitespace in unit (UCUM units have no spaces)", self.pos)
        return self.error(f"unexpected {ch!r}", self.pos)

    def main(self) -> tuple[Fraction, Dims]:
        if self.peek() == "/":
            self.pos += 1
            factor, dims = self.term()
            return 1 / factor, _scale(dims, -1)
        return self.term()

    def term(self) -> tuple[Fraction, Dims]:
        factor, dims = self.component()
        while self.peek() in (".", "/"):
            op = self.peek()
            self.pos += 1
            f, d = self.component()
            if op == ".":
                factor, dims = factor * f, _add(dims, d)
            else:
                factor, dims = factor / f, _sub(dims, d)
        return factor, dims

    def component(self) -> tuple[Fraction, Dims]:
        ch = self.peek()
        start = self.pos
        if ch == "(":
            if self.depth >= _MAX_NESTING:
                raise self.error("parentheses nested too deeply", start)
            self.depth += 1
            self.pos += 1
            result = self.main()
            self.depth -= 1
            if self.peek() != ")":
                if self.pos >= len(self.text):
                    raise self.error("missing ')'", start)
                raise self.unexpected()
            self.pos += 1
            return result
        if ch == "{":
            self.annotation()
            return Fraction(1), _NO_DIMS
        if _is_digit(ch) and not self.text.startswith(("10*", "10^"), self.pos):
            return self.number()
        if not ch or ch in _DELIMITERS or ch.isspace() or ch in "])":
            if not ch and start > 0:
                raise self.error(f"expected a unit after {self.text[start - 1]!r}", start)
            raise self.unexpected()
        result = self.simple()
        if self.peek() == "{":
            self.annotation()
        return result

    def annotation(self) -> None:
        start = self.pos
        end = self.text.find("}", start + 1)
        if end < 0:
            raise self.error("unterminated annotation: missing '}'", start, len(self.text) - start)
        if "{" in self.text[start + 1 : end]:
            raise self.error("'{' inside an annotation", self.text.index("{", start + 1))
        self.pos = end + 1

    def number(self) -> tuple[Fraction, Dims]:
        start = self.pos
        while _is_digit(self.peek()):
            self.pos += 1
        digits = self.text[start : self.pos]
        if len(digits) > _MAX_FACTOR_DIGITS:
            raise self.error("numeric factor too long", start, len(digits))
        nxt = self.peek()
        if nxt and nxt not in _DELIMITERS:
            raise self.error(
                f"a number must be followed by '.' or '/' (write '{digits}.{self.text[self.pos :]}'"
                f" or use '10*N' for powers of ten)",
                self.pos,
            )
        value = int(digits)
        if value == 0:
            # A zero-sized unit would make every conversion through it divide by zero.
            raise self.error("a numeric factor must be positive", start, len(digits))
        return Fraction(value), _NO_DIMS

    def simple(self) -> tuple[Fraction, Dims]:
        start = self.pos
        i = start
        text = self.text
        while i < len(text):
            ch = text[i]
            if ch == "[":
                close = text.find("]", i + 1)
                if close < 0:
                    raise self.error("unterminated '[': missing ']'", i, len(text) - i)
                i = close + 1
            elif ch in _DELIMITERS or ch.isspace():
                break
            elif ch == "]":
                raise self.error("unexpected ']'", i)
            else:
                i += 1
        run = text[start:i]
        match = _EXPONENT_RE.fullmatch(run)
        assert match is not None  # the pattern matches every string
        symbol = match["symbol"]
        exponent_text = match["exponent"]
        if not symbol:
            raise self.error(f"expected a unit before exponent {run!r}", start, len(run))
        self.pos = i
        resolved = _resolve(symbol)
        if resolved is None:
            raise self.unknown(symbol, start)
        if resolved.text != symbol:
            self.replacements.append((start, start + len(symbol), resolved.text))
        exponent = 1
        if exponent_text is not None:
            # Measured as text first: int() refuses text of more than 4,300 digits.
            if len(exponent_text) > 4:
                raise self.error(
                    f"exponent of {len(exponent_text):,} digits is too large",
                    start + len(symbol),
                    len(exponent_text),
                )
            exponent = int(exponent_text)
            if abs(exponent) > _MAX_EXPONENT:
                raise self.error(
                    f"exponent {exponent} is too large",
                    start + len(symbol),
                    len(exponent_text),
                )
        return resolved.factor**exponent, _scale(resolved.dims, exponent)

    def unknown(self, symbol: str, start: int) -> UnitError:
        shown = self.original[start : start + len(symbol)]
        misplaced = _non_metric_prefix(symbol)
        if misplaced is not None:
            prefix, atom = misplaced
            message = f"unit {atom!r} cannot take a prefix ({prefix!r} in {shown!r})"
        else:
            message = f"unknown unit {shown!r}"
            suggestion = _suggest(symbol)
            if suggestion is not None:
                message += f"; did you mean {suggestion!r}?"
        return self.error(message, start, len(symbol))


@functools.lru_cache(maxsize=4096)
def parse_unit(text: str) -> Unit:
    """Parse UCUM unit text (plus the English time aliases) into a `Unit`.

    Results are cached, so repeated parsing of the same text is a dictionary look-up.
    Raises `UnitError` with the offset and length of the offending part of `text`.
    """
    return _Parser(text).parse()


def _split_simple(text: str) -> tuple[str, int] | None:
    """(symbol, exponent) if `text` is one known atom with an optional exponent, else None."""
    if not text or _is_compound(text) or any(c in text for c in "(){}"):
        return None
    match = _EXPONENT_RE.fullmatch(text)
    if match is None or not match["symbol"] or _resolve(match["symbol"]) is None:
        return None
    exponent = match["exponent"]
    return match["symbol"], 1 if exponent is None else int(exponent)


# --- dimensions in words --------------------------------------------------------------------

# Quantities named on their own; order matters only for decomposing products (largest first).
_POSITIVE_NAMES: tuple[tuple[Dims, str], ...] = (
    (_dim(length=3), "volume"),
    (_dim(length=2), "area"),
    (_dim(mass=1), "mass"),
    (_dim(amount=1), "amount"),
    (_dim(arbitrary=1), "arbitrary units"),
    (_dim(time=1), "time"),
    (_dim(length=1), "length"),
    (_dim(temperature=1), "temperature"),
)
# Named quantities that are themselves ratios; they are used as a numerator only when the
# whole quantity appears, so 'U/L' reads 'catalytic activity/volume' but '/d' stays '1/time'.
_MIXED_NAMES: tuple[tuple[Dims, str], ...] = (
    (_dim(amount=1, time=-1), "catalytic activity"),
    (_dim(mass=1, length=-1, time=-2), "pressure"),
    (_dim(mass=1, length=2, time=-2), "energy"),
    (_dim(mass=1, length=1, time=-2), "force"),
)


def _describe_product(dims: Dims) -> str:
    """Words for a dimension vector with non-negative exponents, e.g. 'mass·time'."""
    remaining = list(dims)
    parts: list[str] = []
    for vec, name in _POSITIVE_NAMES:
        count = 0
        while any(remaining) and all(r >= v for r, v in zip(remaining, vec, strict=True)):
            remaining = [r - v for r, v in zip(remaining, vec, strict=True)]
            count += 1
        if count:
            parts.append(name if count == 1 else f"{name}^{count}")
    return "·".join(parts) or "1"


@functools.cache
def _describe(dims: Dims) -> str:
    if dims == _NO_DIMS:
        return "dimensionless"
    for vec, name in _POSITIVE_NAMES + _MIXED_NAMES:
        if vec == dims:
            return name
    for vec, name in _MIXED_NAMES:
        if all(d == v for d, v in zip(dims, vec, strict=True) if v):
            rest = _sub(vec, dims)
            if all(r >= 0 for r in rest):
                return f"{name}/{_wrap(_describe_product(rest))}"
    numerator = tuple(max(d, 0) for d in dims)
    denominator = tuple(max(-d, 0) for d in dims)
    top = _describe_product(numerator)
    if not any(denominator):
        return top
    return f"{top}/{_wrap(_describe_product(denominator))}"


def _wrap(words: str) -> str:
    return f"({words})" if "·" in words else words


# --- conversion -----------------------------------------------------------------------------

_MASS_PER_AMOUNT = _sub(_dim(mass=1), _dim(amount=1))


def _molar_exponent(src: Dims, dst: Dims) -> int:
    """k such that src = dst + k * (mass - amount), or 0 if there is none."""
    diff = _sub(src, dst)
    k = diff[_MASS]
    if k and diff == _scale(_MASS_PER_AMOUNT, k):
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


_TIME_DIMS = _dim(time=1)


def is_time(unit: Unit) -> bool:
    """True if `unit` measures a duration (s, min, h, d, wk, mo, a, ...)."""
    return unit.dims == _TIME_DIMS
