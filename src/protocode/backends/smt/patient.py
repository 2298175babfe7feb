"""The symbolic patient of the SMT encoding: dates, values and bounded histories as z3 terms.

A symbolic patient has, for every data item a rule reads, variables for whether it is
known and what it is; three-valued logic is a pair (known, value) of z3 booleans, so
"missing" is just another input the solver may choose. Numbers are z3 reals (exact
rationals; integer items carry an `IsInt` constraint); dates are day numbers, linked to
(year, month, day) triples within 1901–2099 by the proleptic Gregorian formula only where
calendar arithmetic needs them; observation and event histories hold at most `slots`
entries, sorted by date as records are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import z3

from protocode.core.exact import to_fraction
from protocode.document.model import DataItem
from protocode.language.types import BoolType, CodeType, DateType, NumType, TextType, Type
from protocode.records import Observation, Occurrence, Record

# Within 1901-2099 a year is leap exactly when divisible by 4, which keeps the
# arithmetic simple; protocol dates (births, visits) fall well inside.
YEAR_MIN, YEAR_MAX = 1901, 2099
EPOCH = dt.date(1970, 1, 1)


class Unsupported(Exception):  # noqa: N818 - a verdict about the encoding, not a failure
    """The rule uses a construct the SMT encoding does not cover."""


@dataclass(frozen=True, slots=True)
class SymDate:
    """A symbolic date: its day number (days since 1970-01-01) and, when known, y/m/d.

    Most dates are only compared, so they are just a day number; calendar fields are
    linked in (`Patient.calendar`) only for dates that calendar arithmetic needs, since
    each link costs the solver several integer divisions.
    """

    day: z3.ArithRef
    ymd: tuple[z3.ArithRef, z3.ArithRef, z3.ArithRef] | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Val:
    """A three-valued symbolic value: `value` means something only where `known` holds."""

    known: z3.BoolRef
    value: Any


TRUE = z3.BoolVal(True)
FALSE = z3.BoolVal(False)


def _leap(y: z3.ArithRef) -> z3.BoolRef:
    return y % 4 == 0


def days_in_month(y: z3.ArithRef, m: z3.ArithRef) -> z3.ArithRef:
    """The length of month `m` of year `y`, as a term."""
    short = z3.Or(m == 4, m == 6, m == 9, m == 11)
    return z3.If(m == 2, z3.If(_leap(y), 29, 28), z3.If(short, 30, 31))


def day_number(y: z3.ArithRef, m: z3.ArithRef, d: z3.ArithRef) -> z3.ArithRef:
    """Days since 1970-01-01 of a y/m/d triple (H. Hinnant's days_from_civil)."""
    y2 = z3.If(m <= 2, y - 1, y)
    era = y2 / 400
    yoe = y2 - era * 400
    mp = z3.If(m > 2, m - 3, m + 9)
    doy = (153 * mp + 2) / 5 + d - 1
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146097 + doe - 719468


def const_date(value: dt.date) -> SymDate:
    """A literal date."""
    ymd = (z3.IntVal(value.year), z3.IntVal(value.month), z3.IntVal(value.day))
    return SymDate(z3.IntVal((value - EPOCH).days), ymd)


def add_months(date: SymDate, months: int, patient: Patient) -> SymDate:
    """Calendar month arithmetic, the day clamped to the end of a shorter month."""
    y, m, d = patient.calendar(date)
    index = y * 12 + (m - 1) + months
    y2, m2 = index / 12, index % 12 + 1
    last = days_in_month(y2, m2)
    d2 = z3.If(d > last, last, d)
    return SymDate(day_number(y2, m2, d2), (y2, m2, d2))


class Strings:
    """Codes and text as integers: one number per distinct string, shared by both versions."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def id(self, text: str) -> int:
        """The number standing for `text`."""
        return self._ids.setdefault(text, len(self._ids))

    def text(self, number: int) -> str:
        """The string a number stands for."""
        for text, n in self._ids.items():
            if n == number:
                return text
        raise KeyError(number)


@dataclass(frozen=True, slots=True)
class ObsSlot:
    """One possible observation of a series."""

    exists: z3.BoolRef
    dated: z3.BoolRef
    date: SymDate
    value: Any
    low_known: z3.BoolRef
    low: z3.ArithRef
    high_known: z3.BoolRef
    high: z3.ArithRef


@dataclass(frozen=True, slots=True)
class OccSlot:
    """One possible occurrence of an event."""

    exists: z3.BoolRef
    dated: z3.BoolRef
    date: SymDate
    has_end: z3.BoolRef
    end: SymDate


@dataclass(frozen=True, slots=True)
class History:
    """A bounded series of observations or occurrences; `present` false means absent."""

    present: z3.BoolRef
    slots: list[Any] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Reading:
    """How one version reads the symbolic patient: its dictionary and unit factors.

    `scales` maps a quantity item whose unit changed between the versions compared to the
    exact factor from the patient's canonical unit into this version's unit.
    """

    items: Mapping[str, DataItem]
    scales: Mapping[str, Fraction] = field(default_factory=dict)


class Patient:
    """The symbolic patient: variables are created on first use, with their constraints.

    `readings` are the versions that read it: a number must lie in each one's plausible
    range, in its unit, for a witness to be a record each reads. By default the patient is
    read by `items` alone, in their units (as `pin` assumes).
    """

    def __init__(
        self,
        items: Mapping[str, DataItem],
        types: Mapping[str, Type],
        strings: Strings,
        slots: int = 2,
        readings: Sequence[Reading] = (),
    ) -> None:
        self.items = items
        self.types = types
        self.strings = strings
        self.slots = slots
        self.readings = tuple(readings) or (Reading(items),)
        self.constraints: list[z3.BoolRef] = []
        self.facts: dict[str, Val] = {}
        self.series: dict[str, History] = {}
        self.events: dict[str, History] = {}
        self.attestations: dict[str, Val] = {}
        self._calendars: dict[str, tuple[z3.ArithRef, z3.ArithRef, z3.ArithRef]] = {}

    def pin(self, record: Record) -> list[z3.BoolRef] | None:
        """Constraints making this symbolic patient equal to a concrete record.

        None when the record does not fit the bound (more entries than slots). Used to
        check the encoding against the reference backend, record by record.
        """
        out: list[z3.BoolRef] = []
        for name, val in self.facts.items():
            value = record.values.get(name)
            out.append(val.known == (value is not None))
            if value is not None:
                out.append(same(val.value, self.literal(value)))
        for name, h in [*self.series.items(), *self.events.items()]:
            entries = record.series.get(name) if name in self.series else record.events.get(name)
            out.append(h.present == (entries is not None))
            entries = entries or ()
            if len(entries) > len(h.slots):
                return None
            for i, slot in enumerate(h.slots):
                out.append(slot.exists == (i < len(entries)))
                if i >= len(entries):
                    continue
                entry = entries[i]
                out.append(slot.dated == (entry.date is not None))
                if entry.date is not None:
                    out.append(slot.date.day == (entry.date - EPOCH).days)
                if isinstance(slot, ObsSlot):
                    assert isinstance(entry, Observation)
                    out.append(same(slot.value, self.literal(entry.value)))
                    out.append(slot.low_known == (entry.low is not None))
                    out.append(slot.high_known == (entry.high is not None))
                    if entry.low is not None:
                        out.append(slot.low == real(to_fraction(entry.low)))
                    if entry.high is not None:
                        out.append(slot.high == real(to_fraction(entry.high)))
                else:
                    assert isinstance(entry, Occurrence)
                    out.append(slot.has_end == (entry.end is not None))
                    if entry.end is not None:
                        out.append(slot.end.day == (entry.end - EPOCH).days)
        for name, val in self.attestations.items():
            attested = record.attestations.get(name)
            out.append(val.known == (attested is not None))
            if attested is not None:
                out.append(val.value == attested)
        return out

    def literal(self, value: object) -> Any:
        """A concrete value (record or IR constant) as a z3 term."""
        if isinstance(value, bool):
            return z3.BoolVal(value)
        if isinstance(value, dt.date):
            return const_date(value)
        if isinstance(value, str):
            return z3.IntVal(self.strings.id(value))
        return real(to_fraction(value) if not isinstance(value, int) else value)

    def realism(self) -> list[z3.BoolRef]:
        """Preferences for witnesses people can read: recent visits, no special ranges."""
        recent = ((dt.date(2015, 1, 1) - EPOCH).days, (dt.date(2030, 12, 31) - EPOCH).days)
        born = ((dt.date(1930, 1, 1) - EPOCH).days, recent[1])
        out: list[z3.BoolRef] = []
        for name, val in self.facts.items():
            if isinstance(val.value, SymDate):
                low, high = recent if self.items[name].kind == "anchor" else born
                out += [val.value.day >= low, val.value.day <= high]
        for h in [*self.series.values(), *self.events.values()]:
            for s in h.slots:
                out += [s.date.day >= recent[0], s.date.day <= recent[1]]
                if isinstance(s, ObsSlot):
                    out += [z3.Not(s.low_known), z3.Not(s.high_known)]
        return out

    # ---- variables

    def _date(self, name: str) -> SymDate:
        day = z3.Int(name)
        low, high = dt.date(YEAR_MIN, 1, 1), dt.date(YEAR_MAX, 12, 31)
        self.constraints += [day >= (low - EPOCH).days, day <= (high - EPOCH).days]
        return SymDate(day, None, name)

    def calendar(self, date: SymDate) -> tuple[z3.ArithRef, z3.ArithRef, z3.ArithRef]:
        """Year, month and day of a date, linked to its day number on first use."""
        if date.ymd is not None:
            return date.ymd
        if date.name is None:
            raise Unsupported("calendar arithmetic on a date computed in days")
        if date.name not in self._calendars:
            y, m, d = z3.Ints(f"{date.name}.y {date.name}.m {date.name}.d")
            self.constraints += [y >= YEAR_MIN, y <= YEAR_MAX, m >= 1, m <= 12, d >= 1]
            self.constraints.append(d <= days_in_month(y, m))
            self.constraints.append(day_number(y, m, d) == date.day)
            self._calendars[date.name] = (y, m, d)
        return self._calendars[date.name]

    def _scalar(self, name: str, item: DataItem, type_: Type) -> Any:
        match type_:
            case BoolType():
                return z3.Bool(name)
            case DateType():
                return self._date(name)
            case CodeType(values=values):
                v = z3.Int(name)
                self.constraints.append(z3.Or([v == self.strings.id(c) for c in values]))
                return v
            case TextType():
                return z3.Int(name)
            case NumType():
                v = z3.Real(name)
                if item.type == "integer":
                    self.constraints.append(z3.IsInt(v))
                self.constraints += self._plausible(item.name, v)
                return v
        raise Unsupported(f"values of type {type_}")

    def _plausible(self, name: str, v: z3.ArithRef) -> list[z3.BoolRef]:
        """`v` within every reading version's plausible range for the item, in its unit."""
        out = []
        for reading in self.readings:
            own = reading.items.get(name)
            if own is None:
                continue
            scaled = v * real(reading.scales.get(name, Fraction(1)))
            if own.minimum is not None:
                out.append(scaled >= real(Fraction(own.minimum)))
            if own.maximum is not None:
                out.append(scaled <= real(Fraction(own.maximum)))
        return out

    def fact(self, name: str) -> Val:
        """A scalar item (anchor or fact)."""
        if name not in self.facts:
            value = self._scalar(name, self.items[name], self.types[name])
            self.facts[name] = Val(z3.Bool(f"{name}?"), value)
        return self.facts[name]

    def attestation(self, name: str) -> Val:
        """A recorded attestation (true, false, or not recorded)."""
        if name not in self.attestations:
            self.attestations[name] = Val(z3.Bool(f"@{name}?"), z3.Bool(f"@{name}"))
        return self.attestations[name]

    def history(self, name: str) -> History:
        """The observations (or occurrences) of an item, bounded to `slots` entries."""
        item = self.items[name]
        table = self.series if item.kind == "observation" else self.events
        if name in table:
            return table[name]
        h = History(z3.Bool(f"{name}[]?"))
        for i in range(self.slots):
            prefix = f"{name}[{i}]"
            exists, dated = z3.Bool(f"{prefix}.exists"), z3.Bool(f"{prefix}.dated")
            date = self._date(f"{prefix}.date")
            if item.kind == "observation":
                value = self._scalar(f"{prefix}.value", item, self.types[name])
                low, high = z3.Real(f"{prefix}.low"), z3.Real(f"{prefix}.high")
                slot: Any = ObsSlot(
                    exists,
                    dated,
                    date,
                    value,
                    z3.Bool(f"{prefix}.low?"),
                    low,
                    z3.Bool(f"{prefix}.high?"),
                    high,
                )
                # A reference limit is a positive amount (what records carry in practice).
                self.constraints.append(z3.Implies(slot.high_known, high > 0))
            else:
                end = self._date(f"{prefix}.end")
                slot = OccSlot(exists, dated, date, z3.Bool(f"{prefix}.end?"), end)
                # An end date needs a start date and is not before it.
                self.constraints.append(
                    z3.Implies(slot.has_end, z3.And(dated, end.day >= date.day))
                )
            self.constraints.append(z3.Implies(exists, h.present))
            if h.slots:
                prev = h.slots[-1]
                # Entries are sorted as records store them: dated by date, undated last.
                self.constraints.append(z3.Implies(exists, prev.exists))
                self.constraints.append(
                    z3.Implies(
                        z3.And(exists, dated),
                        z3.And(prev.dated, prev.date.day <= date.day),
                    )
                )
            h.slots.append(slot)
        table[name] = h
        return h


def real(x: Fraction | int) -> z3.ArithRef:
    """An exact rational constant."""
    f = Fraction(x)
    return z3.Q(f.numerator, f.denominator) if f.denominator != 1 else z3.RealVal(f.numerator)


def same(a: Any, b: Any) -> z3.BoolRef:
    """Whether two symbolic values are equal (dates by their day number)."""
    if isinstance(a, SymDate):
        return a.day == b.day
    return a == b
