"""Dosing: the protocol's schedules checked, a patient's planned calendar, and compliance.

A protocol's ``dosing`` section (see ``docs/dosing.md``) lists schedules: a drug, its dose
(fixed, per kg of body weight or per m² of body surface area), route, frequency, number of
doses, a start date written in the rule language, ordering constraints on anchors and
tolerances. This module

1. checks the schedules against the data dictionary (`check_dosing`): dose units, the start
   expression's type, anchors, and schedules that cannot fit before their ``ends_before``
   anchor; errors point at the file, line and column;
2. plans a patient's calendar (`plan`): every dose with its date and allowed time window;
3. compares what was given with the plan (`check_compliance`): each deviation with a kind
   and a severity.

Everything is exact: doses and unit conversions are rationals, and body surface area is
decided exactly to 0.01 m² (see `mosteller_bsa`). Times of administration are wall-clock
times as written; a UTC offset is checked for form but not applied, as dates in records are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from protocode import ir
from protocode.check.checker import CheckedProtocol, check_expression
from protocode.compile.closures import Env, compile_expression
from protocode.errors import CheckError, Diagnostic, RecordError, did_you_mean, unique
from protocode.exact import is_rational, to_fraction
from protocode.model import BodyMeasure, DataItem, Name, RuleText, Schedule
from protocode.records import Record, RecordReader
from protocode.screen import Protocol, format_number
from protocode.source import Span
from protocode.types import DATE
from protocode.units import Unit, UnitError, conversion_factor, is_time, parse_unit

__all__ = [
    "ROUTES",
    "CheckedSchedule",
    "DosingReader",
    "PlannedDose",
    "check_dosing",
    "mosteller_bsa",
    "plan",
    "schedules",
]

ROUTES: tuple[str, ...] = ("intravenous", "subcutaneous", "oral", "intramuscular", "intrathecal")
"""Routes a schedule (and an administration) may name."""

_QUANTITY = re.compile(r"(-?[0-9]+(?:\.[0-9]+)?) +(\S+)")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_EVERY = re.compile(r"every ([0-9]+) hours?")
_DAY = dt.timedelta(days=1)

# What a dose may measure, by dimension vector.
_DOSE_DIMENSIONS = {
    parse_unit("g").dims: "mass",
    parse_unit("mol").dims: "amount of substance",
    parse_unit("[IU]").dims: "activity in international units",
    parse_unit("U").dims: "catalytic activity",
}
_PER_UNIT: dict[BodyMeasure, str] = {"weight": "kg", "bsa": "m2"}
_KG, _CM, _HOUR = parse_unit("kg"), parse_unit("cm"), parse_unit("h")
_BODY_ITEMS: dict[BodyMeasure, tuple[tuple[str, Unit, str], ...]] = {
    "weight": (("weight", _KG, "mass"),),
    "bsa": (("weight", _KG, "mass"), ("height", _CM, "length")),
}


# --- checking the schedules ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckedSchedule:
    """A schedule whose every field was checked; what planning and compliance work from.

    `amount` and `unit` are the dose as written (``15`` and ``mg/kg``); `dose_unit` is the
    unit of one resolved dose (``mg``). `interval` is None for a single dose.
    """

    schedule: Schedule
    amount: Fraction
    unit: Unit
    dose_unit: Unit
    count: int
    interval: dt.timedelta | None
    start: ir.Expr
    start_fn: Callable[[Env], Any]
    anchors: tuple[str, ...]
    dose_tolerance: Fraction
    time_tolerance: dt.timedelta

    @property
    def id(self) -> str:
        """The schedule id."""
        return self.schedule.id


class _Rejected(Exception):  # noqa: N818 - a signal: the diagnostic is already recorded
    """This schedule has an error; stop checking it."""


class _ScheduleChecker:
    def __init__(self, checked: CheckedProtocol) -> None:
        self.checked = checked
        self.items = checked.items
        self.diagnostics: list[Diagnostic] = []

    def fail(self, code: str, message: str, span: Span) -> _Rejected:
        self.diagnostics.append(Diagnostic(code, message, span))
        return _Rejected()

    def schedule(self, s: Schedule) -> CheckedSchedule | None:
        # Each part is checked on its own, so one schedule reports all its problems.
        parts: list[Any] = []
        for part in (
            lambda: self.dose(s),
            lambda: self.frequency(s),
            lambda: self.start(s),
            lambda: self.anchor(s.ends_before),
            lambda: self.anchor(s.starts_after),
            lambda: self.tolerances(s),
        ):
            try:
                parts.append(part())
            except _Rejected:
                parts.append(None)
        if any(p is None for p in parts[:3]) or parts[5] is None:
            return None
        (amount, unit, dose_unit), (count, interval), (start, anchors), before, after, tol = parts
        if before is False or after is False:
            return None
        try:
            self.fits(s, start, count, interval)
        except _Rejected:
            return None
        return CheckedSchedule(
            s,
            amount,
            unit,
            dose_unit,
            count,
            interval,
            start,
            compile_expression(self.checked, start),
            anchors,
            tol[0],
            tol[1],
        )

    def quantity(self, text: RuleText, example: str) -> tuple[Fraction, Unit]:
        match = _QUANTITY.fullmatch(text.text)
        if match is None:
            if _NUMBER.fullmatch(text.text):
                message = f"'{text.text}' has no unit; write one, e.g. '{text.text} {example}'"
                raise self.fail("unit", message, text.whole)
            message = f"expected a decimal and a unit, like '28 {example}', not {text.text!r}"
            raise self.fail("quantity", message, text.whole)
        try:
            unit = parse_unit(match[2])
        except UnitError as exc:
            at = match.start(2) + exc.offset
            raise self.fail("unit", exc.message, text.span(at, at + exc.length)) from None
        return Fraction(match[1]), unit

    def dose(self, s: Schedule) -> tuple[Fraction, Unit, Unit]:
        amount, unit = self.quantity(s.dose, "ug")
        unit_span = s.dose.span(s.dose.text.index(" ") + 1, len(s.dose.text))
        if amount <= 0:
            raise self.fail("dose", "a dose must be positive", s.dose.whole)
        per_text = unit.text.rpartition("/")[2] if "/" in unit.text else ""
        per = next((m for m, u in _PER_UNIT.items() if parse_unit(u).text == per_text), None)
        if s.per is None and per is not None:
            message = f"a dose in {unit.text} is per {per_text}; say so with 'per: {per}'"
            raise self.fail("dose", message, unit_span)
        if s.per is not None and per != s.per:
            wanted = _PER_UNIT[s.per]
            message = (
                f"a dose per {s.per} is written per {wanted}, e.g. '15 mg/{wanted}', "
                f"not in {unit.text}"
            )
            raise self.fail("dose", message, unit_span)
        dose_unit = unit if per is None else parse_unit(unit.text.rpartition("/")[0])
        if dose_unit.dims not in _DOSE_DIMENSIONS:
            message = (
                f"a dose is a mass, an amount of substance or an activity"
                f"{' per ' + _PER_UNIT[s.per] if s.per else ''}, but {unit.text} is "
                f"{_a(unit.describe_dimension())}"
            )
            raise self.fail("unit", message, unit_span)
        if s.per is not None:
            self.body_items(s.per, s)
        return amount, unit, dose_unit

    def body_items(self, per: BodyMeasure, s: Schedule) -> None:
        for name, unit, dimension in _BODY_ITEMS[per]:
            item = self.items.get(name)
            wanted = f"a fact with a unit of {dimension}, e.g. {unit.text}"
            if item is None:
                message = f"a dose per {_PER_UNIT[per]} needs the data item '{name}' ({wanted})"
                raise self.fail("dose", message, s.dose.whole)
            try:
                ok = item.kind == "fact" and parse_unit(item.unit or "1").convertible(unit)
            except UnitError:
                ok = False
            if not ok:
                message = f"a dose per {_PER_UNIT[per]} reads '{name}', which must be {wanted}"
                raise self.fail("dose", message, s.dose.whole)

    def frequency(self, s: Schedule) -> tuple[int, dt.timedelta | None]:
        if s.frequency == "once":
            interval = None
        elif s.frequency == "once daily":
            interval = _DAY
        else:
            match = _EVERY.fullmatch(s.frequency)
            assert match is not None, "the schema checks the frequency's form"
            interval = dt.timedelta(hours=int(match[1]))
        if s.doses is not None:
            if interval is None and s.doses != 1:
                message = f"a schedule given 'once' has 1 dose, not {s.doses}"
                raise self.fail("schedule", message, s.frequency_span)
            return s.doses, interval
        assert s.duration is not None, "the loader requires doses or duration"
        value, unit = self.quantity(s.duration, "days")
        if not is_time(unit):
            message = f"a duration is a time, but {unit.text} is {_a(unit.describe_dimension())}"
            raise self.fail("unit", message, s.duration.whole)
        if interval is None:
            message = "a schedule given 'once' has no duration; write 'doses: 1'"
            raise self.fail("schedule", message, s.duration.whole)
        hours = value * conversion_factor(unit, _HOUR)
        count = hours / Fraction(interval // dt.timedelta(hours=1))
        if count.denominator != 1 or count < 1:
            message = (
                f"{s.duration.text} is not a whole number of intervals of "
                f"{_hours(interval)} ({s.frequency})"
            )
            raise self.fail("schedule", message, s.duration.whole)
        return int(count), interval

    def start(self, s: Schedule) -> tuple[ir.Expr, tuple[str, ...]]:
        try:
            node = check_expression(self.checked, s.start)
        except CheckError as exc:
            self.diagnostics.extend(exc.diagnostics)
            raise _Rejected() from None
        if node.type != DATE:
            message = f"a schedule starts on a date, but this is a {node.type}"
            raise self.fail("type", message, node.span)
        anchors: dict[str, None] = {}
        for fact in _facts(node, self.checked.definitions):
            item = self.items[fact.item]
            if item.kind != "anchor":
                message = (
                    f"a schedule starts relative to anchors, but '{fact.item}' is "
                    f"{_a(item.kind)}; declare it with 'kind: anchor'"
                )
                raise self.fail("anchor", message, fact.span)
            anchors[fact.item] = None
        return node, tuple(anchors)

    def anchor(self, name: Name | None) -> bool:
        if name is None:
            return True
        item = self.items.get(name.text)
        if item is None:
            known = [i.name for i in self.items.values() if i.kind == "anchor"]
            message = f"unknown anchor '{name.text}'{did_you_mean(name.text, known, expected=True)}"
            self.fail("anchor", message, name.span)
            return False
        if item.kind != "anchor":
            message = f"'{name.text}' is {_a(item.kind)}, not an anchor (kind: anchor)"
            self.fail("anchor", message, name.span)
            return False
        return True

    def tolerances(self, s: Schedule) -> tuple[Fraction, dt.timedelta]:
        dose, time = Fraction(0), dt.timedelta(0)
        if s.dose_tolerance is not None:
            value, unit = self.quantity(s.dose_tolerance, "%")
            if unit.text != "%" or value < 0:
                message = (
                    f"a dose tolerance is a percentage like '10 %', not {s.dose_tolerance.text!r}"
                )
                raise self.fail("tolerance", message, s.dose_tolerance.whole)
            dose = value / 100
        if s.time_tolerance is not None:
            value, unit = self.quantity(s.time_tolerance, "h")
            seconds = value * conversion_factor(unit, parse_unit("s")) if is_time(unit) else None
            if seconds is None or seconds < 0 or seconds.denominator != 1 or seconds > 86400 * 7:
                message = (
                    "a time tolerance is a duration of whole seconds up to 7 days, like '2 h', "
                    f"not {s.time_tolerance.text!r}"
                )
                raise self.fail("tolerance", message, s.time_tolerance.whole)
            time = dt.timedelta(seconds=int(seconds))
        return dose, time

    def fits(self, s: Schedule, start: ir.Expr, count: int, interval: dt.timedelta | None) -> None:
        """The last dose's period must begin before the `ends_before` anchor, and the first
        must come after the `starts_after` anchor, when the start is a fixed number of days
        from that anchor."""
        offset = _offset(start, self.checked.definitions)
        if offset is None:
            return
        anchor, days = offset
        last = (count - 1) * (interval or _DAY)
        if s.ends_before is not None and s.ends_before.text == anchor:
            gap = dt.timedelta(days=-days)
            if last >= gap:
                room = max(gap // (interval or _DAY), 0)
                message = (
                    f"impossible schedule: {count} doses {s.frequency} from "
                    f"'{' '.join(s.start.text.split())}' cannot all be given before "
                    f"{anchor} ({max(-days, 0)} days later; room for {room})"
                )
                raise self.fail("schedule", message, s.start.whole)
        if s.starts_after is not None and s.starts_after.text == anchor and days < 1:
            message = (
                f"impossible schedule: it starts on or before {anchor}, but must start after it"
            )
            raise self.fail("schedule", message, s.start.whole)


def _facts(node: ir.Expr, definitions: Mapping[str, ir.Expr]) -> Iterator[ir.Fact]:
    """Every data item a checked expression reads directly or through definitions."""
    if isinstance(node, ir.Fact):
        yield node
        return
    if isinstance(node, ir.DefRef):
        yield from _facts(definitions[node.name], definitions)
        return
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        for child in value if isinstance(value, tuple) else (value,):
            if isinstance(child, ir.Window):
                yield from _facts(child.anchor, definitions)
            elif isinstance(child, _EXPRESSIONS):
                yield from _facts(child, definitions)


_EXPRESSIONS = typing.get_args(ir.Expr)


def _offset(node: ir.Expr, definitions: Mapping[str, ir.Expr]) -> tuple[str, int] | None:
    """(anchor, days) when `node` is always `anchor + days`."""
    if isinstance(node, ir.Fact):
        return node.item, 0
    if isinstance(node, ir.DefRef):
        return _offset(definitions[node.name], definitions)
    if isinstance(node, ir.DateShift) and node.unit == "d":
        inner = _offset(node.operand, definitions)
        return None if inner is None else (inner[0], inner[1] + node.amount)
    return None


def check_dosing(checked: CheckedProtocol) -> tuple[CheckedSchedule, ...]:
    """Check every schedule of a checked protocol; raise one `CheckError` with all problems."""
    checker = _ScheduleChecker(checked)
    out = tuple(checker.schedule(s) for s in checked.doc.dosing)
    if checker.diagnostics:
        raise CheckError(unique(checker.diagnostics))
    return tuple(s for s in out if s is not None)


_SCHEDULES: dict[int, tuple[Protocol, tuple[CheckedSchedule, ...]]] = {}


def schedules(protocol: Protocol) -> tuple[CheckedSchedule, ...]:
    """The protocol's checked schedules (checked once per protocol object)."""
    cached = _SCHEDULES.get(id(protocol))
    if cached is None or cached[0] is not protocol:
        cached = _SCHEDULES[id(protocol)] = (protocol, check_dosing(protocol.checked))
    return cached[1]


def _a(words: str) -> str:
    return f"an {words}" if words[0] in "aeiou" else f"a {words}"


def _hours(interval: dt.timedelta) -> str:
    hours = interval // dt.timedelta(hours=1)
    return f"{hours} hour" if hours == 1 else f"{hours} hours"


# --- the planned calendar --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedDose:
    """One planned administration of a patient's calendar.

    `earliest` … `latest` is the allowed time window, half-open (`latest` itself is outside):
    the dose's period (its calendar day for once daily; `interval` from the start date's
    midnight otherwise) widened by the time tolerance on both sides and cut at the
    schedule's ordering anchors. `dose` is exact, in `unit`; `basis` says how a per-kg or
    per-m² dose was resolved.
    """

    schedule: str
    drug: str
    number: int
    date: dt.date
    earliest: dt.datetime
    latest: dt.datetime
    dose: Fraction
    unit: str
    route: str
    prescribed: str
    basis: str = ""

    @property
    def dose_text(self) -> str:
        """The dose with its unit, e.g. ``28 ug``."""
        return f"{format_number(self.dose)} {self.unit}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form; the dose is an exact decimal string when it terminates."""
        return {
            "schedule": self.schedule,
            "drug": self.drug,
            "number": self.number,
            "date": self.date.isoformat(),
            "earliest": self.earliest.isoformat(),
            "latest": self.latest.isoformat(),
            "dose": format_number(self.dose),
            "unit": self.unit,
            "route": self.route,
            "prescribed": self.prescribed,
            "basis": self.basis,
        }


def mosteller_bsa(height_cm: Fraction, weight_kg: Fraction) -> Fraction:
    """Body surface area by Mosteller, sqrt(height cm × weight kg / 3600) m², rounded half up
    to 0.01 m².

    The square root is irrational in general, so the rounding is decided exactly instead:
    with y = 10000 × h × w / 3600, the result is c/100 for the largest c with
    (c − 1/2)² <= y. No float is involved, so a value exactly on a rounding boundary is
    always rounded the same way.
    """
    y = Fraction(height_cm) * Fraction(weight_kg) * 10000 / 3600
    if y <= 0:
        return Fraction(0)
    c = math.isqrt(y.numerator // y.denominator)  # floor(sqrt(y))
    if Fraction(2 * c + 1, 2) ** 2 <= y:
        c += 1
    return Fraction(c, 100)


class _Unplannable(Exception):  # noqa: N818 - carries the per-record message
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message


def _strip(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "administrations"}


def _record(protocol: Protocol, data: Record | Mapping[str, Any]) -> Record:
    return data if isinstance(data, Record) else protocol.record(_strip(data))


def plan(protocol: Protocol, data: Record | Mapping[str, Any]) -> list[PlannedDose]:
    """Every planned administration of one patient, ordered by time.

    `data` is a `Record` or a record object (an ``administrations`` key in it is ignored).
    A record that cannot be planned (an anchor or body measure missing, or anchors that
    leave no room for a dose) raises `RecordError` naming the record and the field.
    """
    record = _record(protocol, data)
    out: list[PlannedDose] = []
    problems: list[Diagnostic] = []
    for s in schedules(protocol):
        try:
            out.extend(_plan(s, record, protocol.checked.items))
        except _Unplannable as exc:
            problems.append(Diagnostic("dosing", exc.message, record_id=record.id, field=exc.field))
    if problems:
        raise RecordError(problems)
    return sorted(out, key=lambda d: (d.earliest, d.schedule, d.number))


def _anchor_date(record: Record, s: CheckedSchedule, name: str, role: str) -> dt.date:
    value = record.values.get(name)
    if not isinstance(value, dt.date):
        message = f"cannot plan schedule {s.id}: anchor '{name}' ({role}) is missing"
        raise _Unplannable(name, message)
    return value


def _body_value(record: Record, s: CheckedSchedule, item: DataItem, unit: Unit) -> Fraction:
    value = record.values.get(item.name)
    if value is None or not is_rational(value):
        message = (
            f"cannot plan schedule {s.id}: '{item.name}' is missing (needed for a dose in "
            f"{s.unit.text})"
        )
        raise _Unplannable(item.name, message)
    return to_fraction(value) * conversion_factor(parse_unit(item.unit or "1"), unit)


def _resolved_dose(
    s: CheckedSchedule, record: Record, items: Mapping[str, DataItem]
) -> tuple[Fraction, str]:
    per = s.schedule.per
    if per is None:
        return s.amount, ""
    weight = _body_value(record, s, items["weight"], _KG)
    if per == "weight":
        return s.amount * weight, f"weight {format_number(weight)} kg"
    height = _body_value(record, s, items["height"], _CM)
    bsa = mosteller_bsa(height, weight)
    basis = (
        f"BSA {format_number(bsa)} m2 (Mosteller: height {format_number(height)} cm, "
        f"weight {format_number(weight)} kg)"
    )
    return s.amount * bsa, basis


def _plan(s: CheckedSchedule, record: Record, items: Mapping[str, DataItem]) -> list[PlannedDose]:
    start = s.start_fn(Env(record))
    if not isinstance(start, dt.date):
        missing = [a for a in s.anchors if record.values.get(a) is None] or list(s.anchors)
        names = ", ".join(f"'{a}'" for a in missing)
        noun = "anchor" if len(missing) == 1 else "anchors"
        verb = "is" if len(missing) == 1 else "are"
        start_text = " ".join(s.schedule.start.text.split())
        message = (
            f"cannot plan schedule {s.id}: {noun} {names} {verb} missing (start: {start_text})"
        )
        raise _Unplannable(missing[0] if missing else "start", message)
    latest_allowed = earliest_allowed = None
    if s.schedule.ends_before is not None:
        anchor = _anchor_date(record, s, s.schedule.ends_before.text, "ends_before")
        latest_allowed = dt.datetime.combine(anchor, dt.time())
    if s.schedule.starts_after is not None:
        anchor = _anchor_date(record, s, s.schedule.starts_after.text, "starts_after")
        earliest_allowed = dt.datetime.combine(anchor + _DAY, dt.time())
    dose, basis = _resolved_dose(s, record, items)
    interval = s.interval or _DAY
    base = dt.datetime.combine(start, dt.time())
    out = []
    for k in range(s.count):
        period = base + k * interval
        earliest = period - s.time_tolerance
        latest = period + interval + s.time_tolerance
        if latest_allowed is not None:
            latest = min(latest, latest_allowed)
        if earliest_allowed is not None:
            earliest = max(earliest, earliest_allowed)
        if earliest >= latest:
            message = (
                f"cannot plan schedule {s.id}: dose {k + 1} of {s.count} (planned "
                f"{period.date().isoformat()}) falls outside the record's anchors"
                f"{_order_text(s)}"
            )
            raise _Unplannable("start", message)
        out.append(
            PlannedDose(
                s.id,
                s.schedule.drug,
                k + 1,
                period.date(),
                earliest,
                latest,
                dose,
                s.dose_unit.text,
                s.schedule.route,
                s.schedule.dose.text,
                basis,
            )
        )
    return out


def _order_text(s: CheckedSchedule) -> str:
    parts = []
    if s.schedule.ends_before is not None:
        parts.append(f"ends before {s.schedule.ends_before.text}")
    if s.schedule.starts_after is not None:
        parts.append(f"starts after {s.schedule.starts_after.text}")
    return f" ({', '.join(parts)})" if parts else ""


class DosingReader(RecordReader):
    """A protocol's record reader that accepts (and leaves aside) an ``administrations`` key."""

    def __init__(self, protocol: Protocol) -> None:
        super().__init__(protocol.checked.doc.data, protocol.checked.attestations)

    def parse(self, obj: object, where: str | None = None) -> Record:
        """`RecordReader.parse` of the record without its administrations."""
        if isinstance(obj, Mapping) and "administrations" in obj:
            obj = _strip(obj)
        return super().parse(obj, where)
