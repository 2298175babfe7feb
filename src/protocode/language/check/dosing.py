"""The dosing pass: schedules and phases checked against the data dictionary (`check_dosing`).

A dose has a unit of mass, amount of substance or activity (per kg or m² with the body
items it needs); a start date, and phase dates, are expressions over anchors; a schedule's
doses fit in 200 years, and before its ``ends_before`` (after its ``starts_after``)
boundary when both are a fixed number of days from one anchor.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction

from protocode.core.errors import CheckError, Diagnostic, did_you_mean, unique
from protocode.core.exact import decimal, too_long
from protocode.core.source import Span
from protocode.document.model import BodyMeasure, Name, Phase, RuleText, Schedule
from protocode.language import ir
from protocode.language.check.expressions import article
from protocode.language.check.results import Boundary, CheckedProtocol, CheckedSchedule
from protocode.language.check.sections import Rejected, SectionChecker, facts
from protocode.language.types import DATE
from protocode.language.units import Unit, UnitError, conversion_factor, is_time, parse_unit

ROUTES: tuple[str, ...] = ("intravenous", "subcutaneous", "oral", "intramuscular", "intrathecal")
"""Routes a schedule (and an administration) may name."""

_QUANTITY = re.compile(r"(-?[0-9]+(?:\.[0-9]+)?) +(\S+)")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_EVERY = re.compile(r"every ([0-9]+) hours?")
_DAY = dt.timedelta(days=1)
_ONE_HOUR = dt.timedelta(hours=1)
# A schedule fits in 200 years, as dates moved in rules do (records hold dates 1800-2200).
_MAX_SPAN_HOURS = 200 * 366 * 24

DOSE_DIMENSIONS = {
    parse_unit("g").dims: "mass",
    parse_unit("mol").dims: "amount of substance",
    parse_unit("[IU]").dims: "activity in international units",
    parse_unit("U").dims: "catalytic activity",
}
"""What a dose may measure, by dimension vector."""
_PER_UNIT: dict[BodyMeasure, str] = {"weight": "kg", "bsa": "m2"}
_KG, _CM, _HOUR = parse_unit("kg"), parse_unit("cm"), parse_unit("h")
_BODY_ITEMS: dict[BodyMeasure, tuple[tuple[str, Unit, str], ...]] = {
    "weight": (("weight", _KG, "mass"),),
    "bsa": (("weight", _KG, "mass"), ("height", _CM, "length")),
}


@dataclass(frozen=True, slots=True)
class _CheckedPhase:
    phase: Phase
    start: ir.Expr
    end: ir.Expr | None
    anchors: tuple[str, ...]


class _ScheduleChecker(SectionChecker):
    def __init__(self, checked: CheckedProtocol) -> None:
        super().__init__(checked)
        # Phase id -> the checked phase, or None when it has an error (already reported).
        self.phases: dict[str, _CheckedPhase | None] = {}

    def phase(self, p: Phase) -> None:
        """Check a phase's dates; record it (None when it has an error)."""
        ok = True
        start = end = None
        try:
            start = self.date_expression(p.start, "a phase starts")
        except Rejected:
            ok = False
        if p.end is not None:
            try:
                end = self.date_expression(p.end, "a phase ends")
            except Rejected:
                ok = False
        if not ok or start is None:
            self.phases[p.id] = None
            return
        anchors = dict.fromkeys((*start[1], *(end[1] if end is not None else ())))
        end_expr = end[0] if end is not None else None
        self.phases[p.id] = _CheckedPhase(p, start[0], end_expr, tuple(anchors))

    def date_expression(self, text: RuleText, what: str) -> tuple[ir.Expr, tuple[str, ...]]:
        """A checked date expression over anchors (a schedule's start, a phase's dates)."""
        node = self.expression(text, DATE, lambda found: f"{what} on a date, but this is a {found}")
        anchors: dict[str, None] = {}
        for fact in facts(node, self.checked.definitions):
            item = self.items[fact.item]
            if item.kind != "anchor":
                message = (
                    f"{what} relative to anchors, but '{fact.item}' is "
                    f"{article(item.kind)}; declare it with 'kind: anchor'"
                )
                raise self.fail("anchor", message, fact.span)
            anchors[fact.item] = None
        return node, tuple(anchors)

    def schedule(self, s: Schedule) -> CheckedSchedule | None:
        # Each part is checked on its own, so one schedule reports all its problems.
        parts = self.attempt(
            lambda: self.dose(s),
            lambda: self.frequency(s),
            lambda: self.start(s),
            lambda: self.anchor(s.ends_before, "ends_before"),
            lambda: self.anchor(s.starts_after, "starts_after"),
            lambda: self.tolerances(s),
        )
        if any(p is None for p in parts[:3]) or parts[5] is None:
            return None
        (amount, unit, dose_unit), (count, interval), (start, anchors), before, after, tol = parts
        if before is None or after is None:
            return None
        try:
            self.fits(s, start, count, interval, before=before[0], after=after[0])
        except Rejected:
            return None
        if s.holds >= count:
            message = f"holds: {s.holds} of {count} doses may be held; a schedule must give some"
            self.diagnostics.append(Diagnostic("schedule", message, s.span))
            return None
        return CheckedSchedule(
            s,
            amount,
            unit,
            dose_unit,
            count,
            interval,
            start,
            anchors,
            tol[0],
            tol[1],
            before[0],
            after[0],
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
        try:
            return decimal(match[1]), unit
        except ValueError as exc:
            raise self.fail("number", str(exc), text.span(0, match.end(1))) from None

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
        if dose_unit.dims not in DOSE_DIMENSIONS:
            message = (
                f"a dose is a mass, an amount of substance or an activity"
                f"{' per ' + _PER_UNIT[s.per] if s.per else ''}, but {unit.text} is "
                f"{article(unit.describe_dimension())}"
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
            problem = too_long(match[1])
            if problem is not None:
                raise self.fail("number", problem, s.frequency_span)
            every = int(match[1])
            if every > _MAX_SPAN_HOURS:
                message = "an interval between doses is at most 200 years"
                raise self.fail("schedule", message, s.frequency_span)
            interval = dt.timedelta(hours=every)
        if s.doses is not None:
            if interval is None and s.doses != 1:
                message = f"a schedule given 'once' has 1 dose, not {s.doses}"
                raise self.fail("schedule", message, s.frequency_span)
            self.within_span(s, s.doses, interval, s.doses_span or s.span)
            return s.doses, interval
        assert s.duration is not None, "the loader requires doses or duration"
        value, unit = self.quantity(s.duration, "days")
        if not is_time(unit):
            message = (
                f"a duration is a time, but {unit.text} is {article(unit.describe_dimension())}"
            )
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
        self.within_span(s, int(count), interval, s.duration.whole)
        return int(count), interval

    def within_span(
        self, s: Schedule, count: int, interval: dt.timedelta | None, span: Span
    ) -> None:
        """Refuse a schedule whose doses span more than 200 years."""
        hours = (count - 1) * ((interval or _DAY) // _ONE_HOUR)
        if hours > _MAX_SPAN_HOURS:
            message = f"{count:,} doses {s.frequency} span more than 200 years, the most allowed"
            raise self.fail("schedule", message, span)

    def start(self, s: Schedule) -> tuple[ir.Expr, tuple[str, ...]]:
        return self.date_expression(s.start, "a schedule starts")

    def anchor(self, name: Name | None, role: str) -> tuple[Boundary | None]:
        """The boundary `name` gives (in a 1-tuple; `(None,)` when there is none)."""
        if name is None:
            return (None,)
        if name.text in self.phases:
            p = self.phases[name.text]
            if p is None:
                raise Rejected()  # the phase's own error is reported
            at_start = role == "ends_before" or p.end is None
            expr = p.start if at_start or p.end is None else p.end
            anchors = tuple(dict.fromkeys(f.item for f in facts(expr, self.checked.definitions)))
            offset = _offset(expr, self.checked.definitions)
            label = f"the {'start' if at_start else 'end'} of {name.text}"
            return (Boundary(name.text, role, expr, anchors, offset, name.text, label),)
        item = self.items.get(name.text)
        if item is None:
            known = [i.name for i in self.items.values() if i.kind == "anchor"]
            known += list(self.phases)
            hint = did_you_mean(name.text, known, expected=True)
            what = "anchor or phase" if self.phases else "anchor"
            raise self.fail("anchor", f"unknown {what} '{name.text}'{hint}", name.span)
        if item.kind != "anchor":
            message = f"'{name.text}' is {article(item.kind)}, not an anchor (kind: anchor)"
            if self.phases:
                message += " or a phase"
            raise self.fail("anchor", message, name.span)
        read = ir.Fact(name.text, DATE, name.span)
        return (Boundary(name.text, role, read, (name.text,), (name.text, 0), label=name.text),)

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

    def fits(
        self,
        s: Schedule,
        start: ir.Expr,
        count: int,
        interval: dt.timedelta | None,
        *,
        before: Boundary | None,
        after: Boundary | None,
    ) -> None:
        """The last dose's period must begin before the `ends_before` boundary, and the first
        must come after the `starts_after` boundary, when the start and the boundary are a
        fixed number of days from the same anchor."""
        offset = _offset(start, self.checked.definitions)
        if offset is None:
            return
        anchor, days = offset
        last = (count - 1) * (interval or _DAY)
        if before is not None and before.offset is not None and before.offset[0] == anchor:
            gap_days = before.offset[1] - days
            gap = dt.timedelta(days=gap_days)
            if last >= gap:
                room = max(gap // (interval or _DAY), 0)
                message = (
                    f"impossible schedule: {count} doses {s.frequency} from "
                    f"'{' '.join(s.start.text.split())}' cannot all be given before "
                    f"{before.label} ({max(gap_days, 0)} days later; room for {room})"
                )
                raise self.fail("schedule", message, s.start.whole)
        if (
            after is not None
            and after.offset is not None
            and after.offset[0] == anchor
            and days - after.offset[1] < 1
        ):
            message = (
                f"impossible schedule: it starts on or before {after.label}, but must start "
                "after it"
            )
            raise self.fail("schedule", message, s.start.whole)


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


def check_schedules(checked: CheckedProtocol) -> tuple[CheckedProtocol, list[Diagnostic]]:
    """The dosing pass: the protocol with its checked schedules, and every problem."""
    checker = _ScheduleChecker(checked)
    for p in checked.doc.phases:
        checker.phase(p)
    out = tuple(checker.schedule(s) for s in checked.doc.dosing)
    schedules = tuple(s for s in out if s is not None)
    return replace(checked, schedules=schedules), unique(checker.diagnostics)


def check_dosing(checked: CheckedProtocol) -> tuple[CheckedSchedule, ...]:
    """Check every schedule of a checked protocol; raise one `CheckError` with all problems."""
    result, diagnostics = check_schedules(checked)
    if diagnostics:
        raise CheckError(diagnostics)
    return result.schedules


def _hours(interval: dt.timedelta) -> str:
    hours = interval // dt.timedelta(hours=1)
    return f"{hours} hour" if hours == 1 else f"{hours} hours"
