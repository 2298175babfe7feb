"""A record's ``administrations``: what was given, validated against the protocol's schedules.

`ComplianceReader` reads a record with its administrations into a `DosedRecord`; bad
administration data joins the record's other problems in one `RecordError`, each with its
field path (``administrations[2].unit``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from protocode.core.errors import Diagnostic, RecordError, did_you_mean
from protocode.core.exact import to_fraction
from protocode.dosing.plan import DosingReader
from protocode.dosing.schedules import schedules
from protocode.language.check import CheckedSchedule
from protocode.language.check.dosing import DOSE_DIMENSIONS, ROUTES
from protocode.language.check.expressions import article
from protocode.language.units import UnitError, parse_unit
from protocode.records import FieldError, Record, record_number, show_value
from protocode.screening import Protocol, format_number

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


def _shown(raw: object) -> str:
    """A short rendering of a bad value, in JSON terms; text as a Python literal, so that
    a control character in a name is visible."""
    if isinstance(raw, str):
        return repr(raw if len(raw) <= 40 else raw[:37] + "...")
    return show_value(raw)


_Problem = tuple[str, str, str]  # (field path, code, message)


class AdministrationParser:
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
        if unit.dims not in DOSE_DIMENSIONS:
            message = (
                f"a dose is a mass, an amount of substance or an activity, but {unit.text} is "
                f"{article(unit.describe_dimension())}"
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
        self.administrations = AdministrationParser(schedules(protocol))

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
