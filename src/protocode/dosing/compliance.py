"""What was given against what was planned: deviations with kind and severity (`compliance`)."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from protocode.core.errors import Diagnostic, RecordError, did_you_mean
from protocode.core.exact import approximate, to_fraction
from protocode.dosing.plan import DosingReader, PlannedDose, plan
from protocode.dosing.schedules import (
    _DAY,
    _DOSE_DIMENSIONS,
    ROUTES,
    CheckedSchedule,
    _a,
    schedules,
)
from protocode.language.units import UnitError, conversion_factor, parse_unit
from protocode.records import FieldError, Record, iter_records, record_number, show_value
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

_ADMINISTRATION_FIELDS = ("time", "drug", "dose", "unit", "route", "schedule")
_REQUIRED = ("time", "drug", "dose", "unit", "route")
# An ISO 8601 date-time: the time of day is required (an administration is matched to a
# window of hours); a UTC offset is checked for form but not applied.
_TIME_RE = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[T ](?P<h>[0-9]{2}):(?P<mi>[0-9]{2})"
    r"(?::(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]+))?)?(?:Z|[+-](?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))?"
)
_MIN_TIME = dt.datetime(1800, 1, 1)
_MAX_TIME = dt.datetime(2201, 1, 1)
# An out-of-window dose given less than this before or after its window is a minor deviation.
_MINOR_WITHIN = _DAY


@dataclass(frozen=True, slots=True)
class Administration:
    """One administration as a record states it.

    `index` is its position in the record's ``administrations`` list (from 0), as in field
    paths (``administrations[2].unit``). `time` is the wall-clock time as written; `dose` is
    exact, in `unit` (normalised, ``µg`` is ``ug``); `schedule` is the schedule id the record
    assigned it to, if any.
    """

    index: int
    time: dt.datetime
    drug: str
    dose: Fraction
    unit: str
    route: str
    schedule: str | None = None

    @property
    def dose_text(self) -> str:
        """The dose with its unit, e.g. ``28 mg``."""
        return f"{format_number(self.dose)} {self.unit}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form; the dose is an exact decimal string."""
        out: dict[str, Any] = {
            "index": self.index,
            "time": self.time.isoformat(),
            "drug": self.drug,
            "dose": format_number(self.dose),
            "unit": self.unit,
            "route": self.route,
        }
        if self.schedule is not None:
            out["schedule"] = self.schedule
        return out


@dataclass(frozen=True, slots=True)
class DosedRecord(Record):
    """A validated record with the administrations it states (`ComplianceReader`)."""

    administrations: tuple[Administration, ...] = ()


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


def _shown(raw: object) -> str:
    """A short rendering of a bad value, in JSON terms; text as a Python literal, so that
    a control character in a name is visible."""
    if isinstance(raw, str):
        return repr(raw if len(raw) <= 40 else raw[:37] + "...")
    return show_value(raw)


_Problem = tuple[str, str, str]  # (field path, code, message)


class _AdministrationParser:
    """Validates a record's ``administrations`` list against the protocol's schedules."""

    def __init__(self, checked: tuple[CheckedSchedule, ...]) -> None:
        self.schedules = {s.id: s for s in checked}
        self.by_name: dict[str, tuple[CheckedSchedule, ...]] = {}
        for s in checked:
            for name in dict.fromkeys((s.schedule.drug, *(c for _, c in s.schedule.codes))):
                key = name.casefold()
                self.by_name[key] = (*self.by_name.get(key, ()), s)
        self.drugs = tuple(dict.fromkeys(s.schedule.drug for s in checked))

    def candidates(self, a: Administration) -> tuple[str, ...]:
        """The ids of the schedules an administration may count for."""
        if a.schedule is not None:
            return (a.schedule,)
        return tuple(s.id for s in self.by_name.get(a.drug.strip().casefold(), ()))

    def __call__(self, raw: object, problems: list[_Problem]) -> tuple[Administration, ...]:
        if not isinstance(raw, list):
            message = f"expected a list of administrations, got {_shown(raw)}"
            problems.append(("administrations", "bad-value", message))
            return ()
        out = []
        for i, element in enumerate(raw):
            one = self.one(i, element, problems)
            if one is not None:
                out.append(one)
        return tuple(out)

    def one(self, i: int, raw: object, problems: list[_Problem]) -> Administration | None:
        path = f"administrations[{i}]"
        if not isinstance(raw, Mapping):
            message = (
                f"expected an administration object ({', '.join(_REQUIRED)}), got {_shown(raw)}"
            )
            problems.append((path, "bad-value", message))
            return None
        before = len(problems)

        def bad(field: str, code: str, message: str) -> None:
            problems.append((f"{path}.{field}", code, message))

        for key in raw:
            if key not in _ADMINISTRATION_FIELDS:
                name = str(key)
                hint = did_you_mean(name, _ADMINISTRATION_FIELDS, expected=True)
                bad(name, "unknown-field", f"unknown field '{name}'{hint}")
        for key in _REQUIRED:
            if raw.get(key) is None:
                bad(key, "missing-field", f"missing required field '{key}'")
        time = self.time(raw.get("time"), bad)
        candidates = self.drug(raw.get("drug"), raw.get("schedule"), bad)
        dose = self.dose(raw.get("dose"), bad)
        unit = self.unit(raw.get("unit"), candidates, bad)
        route = self.route(raw.get("route"), bad)
        if len(problems) > before:
            return None
        assert time is not None and dose is not None and unit is not None and route is not None
        schedule = raw.get("schedule")
        return Administration(
            i,
            time,
            str(raw["drug"]).strip(),
            dose,
            unit,
            route,
            schedule if isinstance(schedule, str) else None,
        )

    @staticmethod
    def time(raw: object, bad: Callable[[str, str, str], None]) -> dt.datetime | None:
        if raw is None:
            return None
        value: dt.datetime | None = None
        if isinstance(raw, dt.datetime):
            value = raw.replace(tzinfo=None)
        elif isinstance(raw, str) and (m := _TIME_RE.fullmatch(raw.strip())):
            try:
                if m["oh"] is not None and (int(m["oh"]) > 23 or int(m["om"]) > 59):
                    raise ValueError("bad UTC offset")
                value = dt.datetime(
                    int(m["y"]),
                    int(m["mo"]),
                    int(m["d"]),
                    int(m["h"]),
                    int(m["mi"]),
                    int(m["s"] or 0),
                    int((m["f"] or "")[:6].ljust(6, "0")),
                )
            except ValueError:
                value = None
        if value is None:
            message = f"expected an ISO date-time like 2024-03-17T09:30, got {_shown(raw)}"
            bad("time", "bad-value", message)
            return None
        if not _MIN_TIME <= value < _MAX_TIME:
            message = (
                f"time {value.isoformat()} is outside the supported range "
                f"{_MIN_TIME.year} … {_MAX_TIME.year - 1}"
            )
            bad("time", "out-of-range", message)
            return None
        return value

    def drug(
        self, raw: object, raw_schedule: object, bad: Callable[[str, str, str], None]
    ) -> tuple[CheckedSchedule, ...] | None:
        named: CheckedSchedule | None = None
        if raw_schedule is not None:
            if isinstance(raw_schedule, str) and raw_schedule in self.schedules:
                named = self.schedules[raw_schedule]
            else:
                hint = did_you_mean(str(raw_schedule), self.schedules, expected=True)
                bad(
                    "schedule", "unknown-schedule", f"unknown schedule {_shown(raw_schedule)}{hint}"
                )
                return None
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw.strip():
            bad("drug", "bad-value", f"expected a drug name, got {_shown(raw)}")
            return None
        found = self.by_name.get(raw.strip().casefold(), ())
        if not found:
            hint = did_you_mean(raw, self.drugs, expected=True)
            message = f"unknown drug {_shown(raw)}: no schedule of the protocol gives it{hint}"
            bad("drug", "unknown-drug", message)
            return None
        if named is None:
            return found
        if named not in found:
            message = f"schedule {named.id} gives {named.schedule.drug}, not {raw.strip()}"
            bad("schedule", "bad-value", message)
            return None
        return (named,)

    @staticmethod
    def dose(raw: object, bad: Callable[[str, str, str], None]) -> Fraction | None:
        if raw is None:
            return None
        try:
            # The rule of every record number (exact, at most 300 digits): a dose of 1e400
            # is refused here, not carried into arithmetic and messages.
            value = to_fraction(record_number(raw))
        except FieldError as exc:
            bad("dose", exc.code, exc.message)
            return None
        if value <= 0:
            bad("dose", "out-of-range", f"a dose must be positive, got {format_number(value)}")
            return None
        return value

    @staticmethod
    def unit(
        raw: object,
        candidates: tuple[CheckedSchedule, ...] | None,
        bad: Callable[[str, str, str], None],
    ) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            bad("unit", "bad-value", f"expected a unit like 'ug', got {_shown(raw)}")
            return None
        try:
            unit = parse_unit(raw.strip())
        except UnitError as exc:
            bad("unit", "unknown-unit", exc.message)
            return None
        if unit.dims not in _DOSE_DIMENSIONS:
            message = (
                f"a dose is a mass, an amount of substance or an activity, but {unit.text} is "
                f"{_a(unit.describe_dimension())}"
            )
            bad("unit", "bad-unit", message)
            return None
        for s in candidates or ():
            if not unit.convertible(s.dose_unit):
                message = (
                    f"{unit.text} cannot be compared with the planned dose of {s.id} in "
                    f"{s.dose_unit.text}"
                )
                bad("unit", "bad-unit", message)
                return None
        return unit.text

    @staticmethod
    def route(raw: object, bad: Callable[[str, str, str], None]) -> str | None:
        if raw is None:
            return None
        route = raw.strip().lower() if isinstance(raw, str) else None
        if route not in ROUTES:
            hint = did_you_mean(str(raw), ROUTES, expected=True)
            bad("route", "bad-value", f"unknown route {_shown(raw)}{hint}")
            return None
        return route


class ComplianceReader(DosingReader):
    """A protocol's record reader that also validates a record's ``administrations``.

    `parse` gives a `DosedRecord`. Bad administration data (an unknown unit or drug, an
    unparseable time, a missing field) joins the record's other problems in one
    `RecordError`, each with its field path (``administrations[2].unit``).
    """

    def __init__(self, protocol: Protocol) -> None:
        super().__init__(protocol)
        self.administrations = _AdministrationParser(schedules(protocol))

    def parse(self, obj: object, where: str | None = None) -> DosedRecord:
        """Validate one record with its administrations."""
        problems: list[_Problem] = []
        given: tuple[Administration, ...] = ()
        if isinstance(obj, Mapping) and obj.get("administrations") is not None:
            given = self.administrations(obj["administrations"], problems)
        try:
            record = super().parse(obj, where)
        except RecordError as exc:
            if not problems:
                raise
            rid = exc.diagnostics[0].record_id
            raise RecordError([*exc.diagnostics, *_diagnostics(problems, rid)]) from None
        if problems:
            raise RecordError(_diagnostics(problems, record.id))
        return DosedRecord(
            record.id, record.values, record.series, record.events, record.attestations, given
        )


def _diagnostics(problems: list[_Problem], rid: str | None) -> list[Diagnostic]:
    return [Diagnostic(code, message, record_id=rid, field=f) for f, code, message in problems]


_READERS: dict[int, tuple[Protocol, ComplianceReader]] = {}


def _reader(protocol: Protocol) -> ComplianceReader:
    cached = _READERS.get(id(protocol))
    if cached is None or cached[0] is not protocol:
        cached = _READERS[id(protocol)] = (protocol, ComplianceReader(protocol))
    return cached[1]


def compliance(protocol: Protocol, data: Record | Mapping[str, Any]) -> ComplianceResult:
    """Compare what one patient was given with the plan (see ``docs/dosing.md``).

    `data` is a record object with an ``administrations`` list, or a `DosedRecord` (a plain
    `Record` states no administrations: every dose is missed). Raises `RecordError` for bad
    administration data or a record that cannot be planned.
    """
    record = data if isinstance(data, Record) else _reader(protocol).parse(data)
    given = record.administrations if isinstance(record, DosedRecord) else ()
    planned = plan(protocol, record)
    reader = _reader(protocol)
    checked = {s.id: s for s in schedules(protocol)}
    deviations = _Comparison(checked, record, reader.administrations).run(planned, given)
    return ComplianceResult(record.id, tuple(deviations), tuple(planned), given)


def check_many(
    protocol: Protocol, records: Iterable[Record | RecordError | Mapping[str, Any]]
) -> Iterator[ComplianceResult | RecordError]:
    """`compliance` of each record; a bad one yields its `RecordError` and the batch goes on.

    Records may be objects (validated with `ComplianceReader`; one without a usable id is
    named ``#N``), `DosedRecord`s, or `RecordError`s from a reader, which pass through.
    """
    for item in iter_records(records, _reader(protocol)):
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
        parser: _AdministrationParser,
    ) -> None:
        self.checked = checked
        self.record = record
        self.parser = parser

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
            day = before.date(self.record)
            if day is not None and t >= dt.datetime.combine(day, dt.time()):
                return f"on or after {before.label} ({day.isoformat()})"
        if after is not None:
            day = after.date(self.record)
            if day is not None and t < dt.datetime.combine(day + _DAY, dt.time()):
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
