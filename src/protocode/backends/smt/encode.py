"""SMT encoding: checked IR over a symbolic patient, as z3 terms.

A symbolic patient has, for every data item a rule reads, variables for whether it is
known and what it is; three-valued logic is a pair (known, value) of z3 booleans, so
"missing" is just another input the solver may choose. Encodings are exact:

- numbers are z3 reals (exact rationals; integer items carry an `IsInt` constraint), unit
  conversions are rational constants, Cockcroft-Gault is nonlinear real arithmetic;
- dates are (year, month, day) triples within 1900–2100 with their day number derived by
  the proleptic Gregorian formula, so day windows, calendar months and completed years are
  all exact;
- a quantity whose unit changes between the versions compared is held in one canonical
  unit and each version's encoder scales it exactly into its own (`Reading`, `shared`);
- observation and event histories are bounded: each item has at most `slots` entries
  (default 2), sorted by date as records are. Verdicts proved under this bound say so.

A construct outside the encoding raises `Unsupported`; callers then fall back to a search.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import z3

from protocode.core.exact import to_fraction
from protocode.document.model import DataItem
from protocode.language import ir
from protocode.language.types import BoolType, CodeType, DateType, NumType, TextType, Type
from protocode.records import Observation, Occurrence, Record

# Within 1901-2099 a year is leap exactly when divisible by 4, which keeps the
# arithmetic simple; protocol dates (births, visits) fall well inside.
YEAR_MIN, YEAR_MAX = 1901, 2099
_EPOCH = dt.date(1970, 1, 1)


class Unsupported(Exception):  # noqa: N818 - a verdict about the encoding, not a failure
    """The rule uses a construct the SMT encoding does not cover."""


@dataclass(frozen=True)
class SymDate:
    """A symbolic date: its day number (days since 1970-01-01) and, when known, y/m/d.

    Most dates are only compared, so they are just a day number; calendar fields are
    linked in (`Patient.calendar`) only for dates that calendar arithmetic needs, since
    each link costs the solver several integer divisions.
    """

    day: z3.ArithRef
    ymd: tuple[z3.ArithRef, z3.ArithRef, z3.ArithRef] | None = None
    name: str | None = None


@dataclass(frozen=True)
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
    return SymDate(z3.IntVal((value - _EPOCH).days), ymd)


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


@dataclass
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


@dataclass
class OccSlot:
    """One possible occurrence of an event."""

    exists: z3.BoolRef
    dated: z3.BoolRef
    date: SymDate
    has_end: z3.BoolRef
    end: SymDate


@dataclass
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
                out.append(_same(val.value, self.literal(value)))
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
                    out.append(slot.date.day == (entry.date - _EPOCH).days)
                if isinstance(slot, ObsSlot):
                    assert isinstance(entry, Observation)
                    out.append(_same(slot.value, self.literal(entry.value)))
                    out.append(slot.low_known == (entry.low is not None))
                    out.append(slot.high_known == (entry.high is not None))
                    if entry.low is not None:
                        out.append(slot.low == _real(to_fraction(entry.low)))
                    if entry.high is not None:
                        out.append(slot.high == _real(to_fraction(entry.high)))
                else:
                    assert isinstance(entry, Occurrence)
                    out.append(slot.has_end == (entry.end is not None))
                    if entry.end is not None:
                        out.append(slot.end.day == (entry.end - _EPOCH).days)
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
        return _real(to_fraction(value) if not isinstance(value, int) else value)

    def realism(self) -> list[z3.BoolRef]:
        """Preferences for witnesses people can read: recent visits, no special ranges."""
        recent = ((dt.date(2015, 1, 1) - _EPOCH).days, (dt.date(2030, 12, 31) - _EPOCH).days)
        born = ((dt.date(1930, 1, 1) - _EPOCH).days, recent[1])
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
        self.constraints += [day >= (low - _EPOCH).days, day <= (high - _EPOCH).days]
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
            scaled = v * _real(reading.scales.get(name, Fraction(1)))
            if own.minimum is not None:
                out.append(scaled >= _real(Fraction(own.minimum)))
            if own.maximum is not None:
                out.append(scaled <= _real(Fraction(own.maximum)))
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


def _real(x: Fraction | int) -> z3.ArithRef:
    f = Fraction(x)
    return z3.Q(f.numerator, f.denominator) if f.denominator != 1 else z3.RealVal(f.numerator)


def _kleene_and(a: Val, b: Val) -> Val:
    known = z3.Or(
        z3.And(a.known, b.known), z3.And(a.known, z3.Not(a.value)), z3.And(b.known, z3.Not(b.value))
    )
    return Val(known, z3.And(z3.Or(z3.Not(a.known), a.value), z3.Or(z3.Not(b.known), b.value)))


def _kleene_not(a: Val) -> Val:
    return Val(a.known, z3.Not(a.value))


def _same(a: Any, b: Any) -> z3.BoolRef:
    if isinstance(a, SymDate):
        return a.day == b.day
    return a == b


def _differ(a: Any, b: Any) -> z3.BoolRef:
    return z3.Not(_same(a, b))


def _ite(c: z3.BoolRef, a: Any, b: Any) -> Any:
    if isinstance(a, SymDate):
        # A chosen date has no calendar fields of its own (calendar ops on it: unsupported).
        return SymDate(z3.If(c, a.day, b.day))
    return z3.If(c, a, b)


_COMPARE: dict[str, Callable[[Any, Any], z3.BoolRef]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


class Encoder(ir.Visitor[Val]):
    """Encodes the rules of one protocol version over a shared symbolic patient.

    `scales` (see `Reading`) turn the patient's canonical quantities into this version's
    units, where they differ: its rules and constants are in its own units.
    """

    def __init__(
        self,
        patient: Patient,
        definitions: Mapping[str, ir.Expr],
        scales: Mapping[str, Fraction] | None = None,
    ) -> None:
        self.patient = patient
        self.definitions = definitions
        self.scales = scales or {}
        self._defs: dict[str, Val] = {}

    def encode(self, node: ir.Expr) -> Val:
        """The symbolic value of an IR expression."""
        return self.visit(node)

    # ---- leaves

    def const(self, node: ir.Const) -> Val:
        return Val(TRUE, self._literal(node.value))

    def _literal(self, value: ir.Value) -> Any:
        return self.patient.literal(value)

    def fact(self, node: ir.Fact) -> Val:
        val = self.patient.fact(node.item)
        return Val(val.known, self._own(node.item, val.value))

    def _own(self, item: str, value: Any) -> Any:
        """A quantity of the shared patient in this version's unit for `item`."""
        scale = self.scales.get(item)
        return value if scale is None else value * _real(scale)

    def def_ref(self, node: ir.DefRef) -> Val:
        if node.name not in self._defs:
            self._defs[node.name] = self.visit(self.definitions[node.name])
        return self._defs[node.name]

    def _window(self, w: ir.Window | None) -> tuple[z3.BoolRef, z3.ArithRef, z3.ArithRef]:
        """(known, first day, last day) of a window; the whole range when there is none."""
        if w is None:
            return TRUE, z3.IntVal(-(10**6)), z3.IntVal(10**6)
        anchor = self.visit(w.anchor)
        at: SymDate = anchor.value

        def shift(n: int) -> z3.ArithRef:
            return add_months(at, n, self.patient).day if w.unit == "mo" else at.day + n

        match w.kind:
            case "within_before":
                lo, hi = shift(-w.amount), at.day
            case "within_after":
                lo, hi = at.day, shift(w.amount)
            case "within_of":
                lo, hi = shift(-w.amount), shift(w.amount)
            case "before":
                lo, hi = z3.IntVal(-(10**6)), at.day - 1
            case _:
                lo, hi = at.day + 1, z3.IntVal(10**6)
        return anchor.known, lo, hi

    def _pick(self, node: ir.Select) -> tuple[z3.BoolRef, list[tuple[z3.BoolRef, ObsSlot]]]:
        """Whether an observation is picked, and which: (condition, slot) pairs.

        As `runtime.pick`: unknown when any value is undated, or when the picked day holds
        two different observations.
        """
        slots: list[ObsSlot] = self.patient.history(node.item).slots
        known, lo, hi = self._window(node.window)
        choices: list[tuple[z3.BoolRef, ObsSlot]] = []
        taken: list[z3.BoolRef] = []
        for s in slots if node.earliest else list(reversed(slots)):
            inside = z3.And(s.exists, s.dated)
            if node.window is not None:
                inside = z3.And(inside, lo <= s.date.day, s.date.day <= hi)
            choices.append((z3.And(inside, *[z3.Not(t) for t in taken]), s))
            taken.append(inside)
        undated = z3.Or([z3.And(s.exists, z3.Not(s.dated)) for s in slots])
        clear = [z3.And(cond, z3.Not(self._tied(s, slots))) for cond, s in choices]
        return z3.And(known, z3.Not(undated), z3.Or(clear)), choices

    @staticmethod
    def _tied(chosen: ObsSlot, slots: Sequence[ObsSlot]) -> z3.BoolRef:
        """Another, different observation on the same day as `chosen`."""
        ties = []
        for other in slots:
            if other is chosen:
                continue
            differs = z3.Or(
                _differ(other.value, chosen.value),
                other.low_known != chosen.low_known,
                z3.And(other.low_known, other.low != chosen.low),
                other.high_known != chosen.high_known,
                z3.And(other.high_known, other.high != chosen.high),
            )
            same_day = z3.And(other.exists, other.dated, other.date.day == chosen.date.day)
            ties.append(z3.And(same_day, differs))
        return z3.Or(ties) if ties else FALSE

    def select(self, node: ir.Select) -> Val:
        known, choices = self._pick(node)
        value = choices[-1][1].value
        for cond, slot in reversed(choices[:-1]):
            value = _ite(cond, slot.value, value)
        return Val(known, self._own(node.item, value))

    def ref_compare(self, node: ir.RefCompare) -> Val:
        known, choices = self._pick(node.select)
        upper = node.limit == "ULN"
        value = choices[-1][1].value
        limit_known: Any = FALSE
        limit: Any = z3.RealVal(0)
        default = _real(node.default) if node.default is not None else None
        for cond, slot in reversed(choices):
            own_known = slot.high_known if upper else slot.low_known
            # A record's reference range is stated in its value's unit.
            own = self._own(node.select.item, slot.high if upper else slot.low)
            slot_known = own_known if default is None else TRUE
            slot_limit = own if default is None else z3.If(own_known, own, default)
            value = _ite(cond, slot.value, value)
            limit_known = z3.If(cond, slot_known, limit_known)
            limit = z3.If(cond, slot_limit, limit)
        value = self._own(node.select.item, value)
        test = _COMPARE[node.op](value, _real(node.factor) * limit)
        return Val(z3.And(known, limit_known), test)

    def events(self, node: ir.Events) -> Val:
        h = self.patient.history(node.item)
        if not h.slots:
            raise Unsupported("an empty history bound")
        empty = z3.Not(h.slots[0].exists)
        empty_answer = {"any": FALSE, "ever": FALSE, "no": TRUE, "count": z3.RealVal(0)}[node.op]
        if node.op == "ever":
            return Val(h.present, z3.Not(empty))
        window_known, lo, hi = self._window(node.window)
        hits: list[z3.BoolRef] = []
        undated: list[z3.BoolRef] = []
        for s in h.slots:
            start = s.date.day
            end = z3.If(s.has_end, s.end.day, start) if isinstance(s, OccSlot) else start
            hits.append(z3.And(s.exists, s.dated, start <= hi, end >= lo))
            undated.append(z3.And(s.exists, z3.Not(s.dated)))
        any_undated = z3.Or(undated)
        if node.op == "count":
            count = z3.Sum([z3.If(hit, z3.RealVal(1), z3.RealVal(0)) for hit in hits])
            known = z3.And(h.present, z3.Or(empty, z3.And(window_known, z3.Not(any_undated))))
            return Val(known, z3.If(empty, empty_answer, count))
        found = z3.Or(hits)
        known = z3.And(
            h.present, z3.Or(empty, z3.And(window_known, z3.Or(found, z3.Not(any_undated))))
        )
        value = z3.If(empty, empty_answer, found if node.op == "any" else z3.Not(found))
        return Val(known, value)

    # ---- arithmetic

    def arith(self, node: ir.Arith) -> Val:
        a, b = self.visit(node.left), self.visit(node.right)
        known = z3.And(a.known, b.known)
        match node.op:
            case "+":
                return Val(known, a.value + b.value)
            case "-":
                return Val(known, a.value - b.value)
            case "*":
                return Val(known, a.value * b.value)
            case _:
                return Val(z3.And(known, b.value != 0), a.value / b.value)

    def neg(self, node: ir.Neg) -> Val:
        a = self.visit(node.operand)
        return Val(a.known, -a.value)

    def scale(self, node: ir.Scale) -> Val:
        a = self.visit(node.operand)
        return Val(a.known, a.value * _real(node.factor))

    def date_shift(self, node: ir.DateShift) -> Val:
        a = self.visit(node.operand)
        date: SymDate = a.value
        if node.unit == "mo":
            return Val(a.known, add_months(date, node.amount, self.patient))
        return Val(a.known, SymDate(date.day + node.amount, None))

    def call(self, node: ir.Call) -> Val:
        args = [self.visit(x) for x in node.args]
        known = z3.And([a.known for a in args]) if args else TRUE
        values = [a.value for a in args]
        match node.func:
            case "min" | "max":
                best = values[0]
                for v in values[1:]:
                    better = v < best if node.func == "min" else v > best
                    best = z3.If(better, v, best)
                return Val(known, best)
            case "abs":
                return Val(known, z3.If(values[0] >= 0, values[0], -values[0]))
            case "floor":
                return Val(known, z3.ToReal(z3.ToInt(values[0])))
            case "ceil":
                return Val(known, -z3.ToReal(z3.ToInt(-values[0])))
            case "round":
                return Val(known, self._round(node, values))
            case "days_between":
                return Val(known, z3.ToReal(values[1].day - values[0].day))
            case "years_between" | "months_between":
                start, end = values
                y1, m1, d1 = self.patient.calendar(start)
                y2, m2, d2 = self.patient.calendar(end)
                if node.func == "years_between":
                    before = z3.Or(m2 < m1, z3.And(m2 == m1, d2 < d1))
                    years = y2 - y1 - z3.If(before, 1, 0)
                    return Val(known, z3.ToReal(years))
                months = (y2 - y1) * 12 + m2 - m1 - z3.If(d2 < d1, 1, 0)
                return Val(known, z3.ToReal(months))
        raise Unsupported(f"function {node.func}")

    def _round(self, node: ir.Call, values: Sequence[Any]) -> Any:
        digits = node.args[1] if len(node.args) > 1 else None
        if digits is not None and not isinstance(digits, ir.Const):
            raise Unsupported("round() with computed digits")
        places = int(str(digits.value)) if isinstance(digits, ir.Const) else 0
        scale = _real(Fraction(10) ** places)
        x = values[0] * scale
        half = z3.Q(1, 2)
        up = z3.ToReal(z3.ToInt(x + half))
        down = -z3.ToReal(z3.ToInt(-x + half))
        return z3.If(x >= 0, up, down) / scale

    # ---- predicates and logic

    def compare(self, node: ir.Compare) -> Val:
        a, b = self.visit(node.left), self.visit(node.right)
        left, right = a.value, b.value
        if isinstance(left, SymDate):
            left, right = left.day, right.day
        return Val(z3.And(a.known, b.known), _COMPARE[node.op](left, right))

    def member(self, node: ir.Member) -> Val:
        a = self.visit(node.operand)
        options = [_same(a.value, self._literal(v)) for v in node.items]
        inside = z3.Or(options) if options else FALSE
        return Val(a.known, z3.Not(inside) if node.negated else inside)

    def is_known(self, node: ir.IsKnown) -> Val:
        a = self.visit(node.operand)
        return Val(TRUE, a.known if node.known else z3.Not(a.known))

    def and_(self, node: ir.And) -> Val:
        return _kleene_and(self.visit(node.left), self.visit(node.right))

    def or_(self, node: ir.Or) -> Val:
        a, b = _kleene_not(self.visit(node.left)), _kleene_not(self.visit(node.right))
        return _kleene_not(_kleene_and(a, b))

    def not_(self, node: ir.Not) -> Val:
        return _kleene_not(self.visit(node.operand))

    def if_(self, node: ir.If) -> Val:
        c, t, e = self.visit(node.cond), self.visit(node.then), self.visit(node.orelse)
        taken_known = z3.If(c.value, t.known, e.known)
        agree = z3.And(t.known, e.known, _same(t.value, e.value))
        known = z3.Or(z3.And(c.known, taken_known), z3.And(z3.Not(c.known), agree))
        value = _ite(z3.And(c.known, z3.Not(c.value)), e.value, t.value)
        return Val(known, value)


def decoded_number(value: Any) -> Fraction:
    """A z3 numeral (model value) as an exact fraction."""
    if z3.is_int_value(value):
        return Fraction(value.as_long())
    if z3.is_rational_value(value):
        return Fraction(value.numerator_as_long(), value.denominator_as_long())
    raise Unsupported(f"non-rational model value {value}")
