"""What was given against what was planned: deviations with kind and severity (`compliance`)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from protocode.backends.python import SectionFunctions
from protocode.core.errors import RecordError
from protocode.core.exact import approximate
from protocode.dosing.administrations import (
    Administration,
    AdministrationParser,
    ComplianceReader,
    DosedRecord,
)
from protocode.dosing.plan import DAY, PlannedDose, plan
from protocode.dosing.schedules import schedules
from protocode.language.check import CheckedSchedule
from protocode.language.units import conversion_factor, parse_unit
from protocode.records import Record, iter_records
from protocode.screening import Protocol, format_number

DeviationKind = Literal[
    "missed", "extra", "wrong_dose", "wrong_route", "out_of_window", "wrong_order"
]
DeviationSeverity = Literal["major", "minor"]

KINDS: tuple[DeviationKind, ...] = (
    "missed",
    "extra",
    "wrong_dose",
    "wrong_route",
    "out_of_window",
    "wrong_order",
)
"""Every deviation kind, in the order a summary counts them."""

# An out-of-window dose given less than this before or after its window is a minor deviation.
_MINOR_WITHIN = DAY


@dataclass(frozen=True, slots=True)
class Deviation:
    """One difference between the plan and what was given.

    `planned` is the planned dose it concerns (None for an administration left without
    one: extra, or in the wrong order); `administration` the administration (None for a
    missed dose).
    """

    kind: DeviationKind
    severity: DeviationSeverity
    message: str
    planned: PlannedDose | None = None
    administration: Administration | None = None

    extra_schedule: str | None = None

    @property
    def schedule(self) -> str | None:
        """The schedule id of the planned dose; for an administration without one, the first
        schedule it could have counted for."""
        return self.planned.schedule if self.planned is not None else self.extra_schedule

    @property
    def number(self) -> int | None:
        """The planned dose's number (from 1), None for an extra administration."""
        return self.planned.number if self.planned is not None else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "schedule": self.schedule,
            "number": self.number,
            "message": self.message,
            "planned": self.planned.to_json() if self.planned is not None else None,
            "administration": (
                self.administration.to_json() if self.administration is not None else None
            ),
        }


@dataclass(frozen=True, slots=True)
class ComplianceResult:
    """What one patient was given compared with the plan: compliant when no deviation."""

    record_id: str
    deviations: tuple[Deviation, ...]
    planned: tuple[PlannedDose, ...]
    administrations: tuple[Administration, ...]

    @property
    def compliant(self) -> bool:
        """Whether there is no deviation at all (minor ones included)."""
        return not self.deviations

    @property
    def summary(self) -> str:
        """One line: ``compliant: all 7 planned doses given as planned`` or the counts."""
        if self.compliant:
            n = len(self.planned)
            return f"compliant: all {n} planned dose{_s(n)} given as planned"
        n = len(self.deviations)
        minor = sum(d.severity == "minor" for d in self.deviations)
        counts = Counter(d.kind for d in self.deviations)
        kinds = ", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k])
        return f"{n} deviation{_s(n)} ({n - minor} major, {minor} minor): {kinds}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "id": self.record_id,
            "compliant": self.compliant,
            "summary": self.summary,
            "deviations": [d.to_json() for d in self.deviations],
        }


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def compliance(protocol: Protocol, data: Record | Mapping[str, Any]) -> ComplianceResult:
    """Compare what one patient was given with the plan (see ``docs/dosing.md``).

    `data` is a record object with an ``administrations`` list, or a `DosedRecord` (a plain
    `Record` states no administrations: every dose is missed). Raises `RecordError` for bad
    administration data or a record that cannot be planned.
    """
    reader = protocol.built(ComplianceReader)
    record = data if isinstance(data, Record) else reader.parse(data)
    given = record.administrations if isinstance(record, DosedRecord) else ()
    planned = plan(protocol, record)
    checked = {s.id: s for s in schedules(protocol)}
    comparison = _Comparison(checked, record, reader.administrations, protocol.sections)
    deviations = comparison.run(planned, given)
    return ComplianceResult(record.id, tuple(deviations), tuple(planned), given)


def check_many(
    protocol: Protocol, records: Iterable[Record | RecordError | Mapping[str, Any]]
) -> Iterator[ComplianceResult | RecordError]:
    """`compliance` of each record; a bad one yields its `RecordError` and the batch goes on.

    Records may be objects (validated with `ComplianceReader`; one without a usable id is
    named ``#N``), `DosedRecord`s, or `RecordError`s from a reader, which pass through.
    """
    for item in iter_records(records, protocol.built(ComplianceReader)):
        if isinstance(item, RecordError):
            yield item
            continue
        try:
            yield compliance(protocol, item)
        except RecordError as exc:
            yield exc


class _Comparison:
    """The matching of one record's administrations to its planned doses."""

    def __init__(
        self,
        checked: Mapping[str, CheckedSchedule],
        record: Record,
        parser: AdministrationParser,
        sections: SectionFunctions,
    ) -> None:
        self.checked = checked
        self.record = record
        self.parser = parser
        self.sections = sections

    def run(self, planned: list[PlannedDose], given: tuple[Administration, ...]) -> list[Deviation]:
        candidates = {a.index: frozenset(self.parser.candidates(a)) for a in given}
        # 1. In time order, each administration goes to the open planned dose of its drug
        #    whose window holds it and ends first.
        taken: dict[tuple[str, int], Administration] = {}
        leftover: list[Administration] = []
        for a in sorted(given, key=lambda a: (a.time, a.index)):
            fits = [
                p
                for p in planned
                if (p.schedule, p.number) not in taken
                and p.schedule in candidates[a.index]
                and p.earliest <= a.time < p.latest
            ]
            if fits:
                best = min(fits, key=lambda p: (p.latest, p.earliest, p.schedule, p.number))
                taken[best.schedule, best.number] = a
            else:
                leftover.append(a)
        # 2. Leftover administrations, in time order, pair with the first leftover planned
        #    dose (in plan order) of their drug: out of window, or in the wrong order.
        open_doses = [p for p in planned if (p.schedule, p.number) not in taken]
        pairs: list[tuple[PlannedDose, Administration, bool]] = []
        for p in planned:
            match = taken.get((p.schedule, p.number))
            if match is not None:
                pairs.append((p, match, True))
        out: list[Deviation] = []
        for a in leftover:
            dose = next((p for p in open_doses if p.schedule in candidates[a.index]), None)
            if dose is None:
                out.append(self.unplanned(a, candidates[a.index]))
                continue
            open_doses.remove(dose)
            pairs.append((dose, a, False))
        # 3. Planned doses left are missed; the first ones a schedule allows to hold are minor.
        held: Counter[str] = Counter()
        for p in sorted(open_doses, key=lambda p: (p.schedule, p.number)):
            allowed = self.checked[p.schedule].schedule.holds
            held[p.schedule] += 1
            out.append(
                self.missed(p, held[p.schedule] if held[p.schedule] <= allowed else 0, allowed)
            )
        for p, a, in_window in pairs:
            if not in_window:
                out.append(self.outside(p, a))
            out.extend(self.compare(p, a))
        order = {k: n for n, k in enumerate(KINDS)}
        return sorted(out, key=lambda d: (_moment(d), order[d.kind], _index(d)))

    def forbidden(self, schedule: str, t: dt.datetime) -> str | None:
        """Why `t` is in the wrong order for a schedule (its ordering anchors), or None."""
        s = self.checked.get(schedule)
        if s is None:
            return None
        before, after = s.before, s.after
        if before is not None:
            day = self.sections.date(before.date, self.record)
            if day is not None and t >= dt.datetime.combine(day, dt.time()):
                return f"on or after {before.label} ({day.isoformat()})"
        if after is not None:
            day = self.sections.date(after.date, self.record)
            if day is not None and t < dt.datetime.combine(day + DAY, dt.time()):
                return f"on or before {after.label} ({day.isoformat()})"
        return None

    def unplanned(self, a: Administration, candidates: frozenset[str]) -> Deviation:
        given = f"{_when(a.time)}: {a.dose_text} of {a.drug} given"
        ids = sorted(candidates)
        for schedule in ids:
            why = self.forbidden(schedule, a.time)
            if why is not None:
                return Deviation("wrong_order", "major", f"{given}, {why}", None, a, schedule)
        message = f"{given} with no planned dose left for it"
        return Deviation("extra", "major", message, None, a, ids[0] if ids else None)

    @staticmethod
    def missed(p: PlannedDose, hold: int = 0, allowed: int = 0) -> Deviation:
        """A dose not given; `hold` > 0 numbers it among the `allowed` holds (minor)."""
        message = (
            f"{_dose_at(p)}: missed (nothing given from {_when(p.earliest)} before "
            f"{_when(p.latest)})"
        )
        if hold:
            message += f"; held ({hold} of {allowed} allowed)"
        return Deviation("missed", "minor" if hold else "major", message, p, None)

    def outside(self, p: PlannedDose, a: Administration) -> Deviation:
        why = self.forbidden(p.schedule, a.time)
        if why is not None:
            return Deviation(
                "wrong_order", "major", f"{_dose_at(p)}: given {_when(a.time)}, {why}", p, a
            )
        if a.time < p.earliest:
            distance, side = p.earliest - a.time, "before"
        else:
            distance, side = a.time - p.latest, "after"
        severity: DeviationSeverity = "minor" if distance < _MINOR_WITHIN else "major"
        message = (
            f"{_dose_at(p)}: given {_when(a.time)}, {_duration(distance)} {side} its window "
            f"{_when(p.earliest)} – {_when(p.latest)}"
        )
        return Deviation("out_of_window", severity, message, p, a)

    def compare(self, p: PlannedDose, a: Administration) -> list[Deviation]:
        out = []
        given = a.dose * conversion_factor(parse_unit(a.unit), parse_unit(p.unit))
        tolerance = self.checked[p.schedule].dose_tolerance if p.schedule in self.checked else 0
        if abs(given - p.dose) > tolerance * p.dose:
            message = (
                f"{_dose_at(p)}: {a.dose_text} given, {p.dose_text} planned "
                f"({_difference(given, p.dose, Fraction(tolerance))})"
            )
            out.append(Deviation("wrong_dose", "major", message, p, a))
        if a.route != p.route:
            message = f"{_dose_at(p)}: given {a.route}, planned {p.route}"
            out.append(Deviation("wrong_route", "major", message, p, a))
        return out


def _moment(d: Deviation) -> dt.datetime:
    if d.planned is not None:
        return dt.datetime.combine(d.planned.date, dt.time())
    assert d.administration is not None
    return d.administration.time


def _index(d: Deviation) -> int:
    return d.administration.index if d.administration is not None else -1


def _dose_at(p: PlannedDose) -> str:
    return f"dose {p.number} on {p.date.isoformat()}"


def _when(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S" if t.second or t.microsecond else "%Y-%m-%d %H:%M")


def _duration(span: dt.timedelta) -> str:
    minutes = span // dt.timedelta(minutes=1)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} day{_s(days)}"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes else []
    return " ".join(parts) or "less than a minute"


def _difference(given: Fraction, planned: Fraction, tolerance: Fraction) -> str:
    """How a given dose differs from the planned one: ``1000× the dose``, ``12.5 % more``."""
    if planned <= 0:
        return "no dose planned"
    ratio = given / planned
    if ratio >= 2 or ratio <= Fraction(1, 2):
        return f"{_approx(ratio)}× the dose"
    word = "more" if ratio > 1 else "less"
    return (
        f"{_approx(abs(ratio - 1) * 100)} % {word} than planned; tolerance "
        f"{format_number(tolerance * 100)} %"
    )


def _approx(x: Fraction) -> str:
    """`x` exactly when it is below a million with at most 3 decimals, else rounded for
    display (a ratio of two 300-digit doses would otherwise be written out in full)."""
    if x < _EXACT_BELOW:
        text = format_number(x)
        if not text.startswith("≈") and len(text.partition(".")[2]) <= 3:
            return text
        if x >= 1:
            return f"≈{approximate(x, lambda f: f'{f:.1f}')}"
    return f"≈{approximate(x, lambda f: f'{f:.3g}')}"


_EXACT_BELOW = 10**6
