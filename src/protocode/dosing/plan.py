"""A patient's planned dosing calendar: every dose with its date and allowed window (`plan`)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from protocode.backends.python import SectionFunctions
from protocode.core.errors import Diagnostic, RecordError
from protocode.core.exact import is_rational, to_fraction
from protocode.document.model import DataItem
from protocode.dosing.schedules import schedules
from protocode.language.check import Boundary, CheckedSchedule
from protocode.language.units import Unit, conversion_factor, parse_unit
from protocode.records import Record, RecordReader
from protocode.screening import Protocol, format_number

DAY = dt.timedelta(days=1)
"""One day: the period of a once-daily dose, and the step of calendar boundaries."""
_KG, _CM = parse_unit("kg"), parse_unit("cm")


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
            out.extend(_plan(s, record, protocol.checked.items, protocol.sections))
        except _Unplannable as exc:
            problems.append(Diagnostic("dosing", exc.message, record_id=record.id, field=exc.field))
    if problems:
        raise RecordError(problems)
    return sorted(out, key=lambda d: (d.earliest, d.schedule, d.number))


def _boundary_date(
    record: Record, s: CheckedSchedule, boundary: Boundary, sections: SectionFunctions
) -> dt.date:
    value = sections.date(boundary.date, record)
    if value is None:
        missing = [a for a in boundary.anchors if record.values.get(a) is None]
        missing = missing or list(boundary.anchors) or [boundary.name]
        names = ", ".join(f"'{a}'" for a in missing)
        noun = "anchor" if len(missing) == 1 else "anchors"
        verb = "is" if len(missing) == 1 else "are"
        role = boundary.role if boundary.phase is None else f"{boundary.role}: {boundary.name}"
        message = f"cannot plan schedule {s.id}: {noun} {names} ({role}) {verb} missing"
        raise _Unplannable(missing[0], message)
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


def _plan(
    s: CheckedSchedule,
    record: Record,
    items: Mapping[str, DataItem],
    sections: SectionFunctions,
) -> list[PlannedDose]:
    start = sections.value(s.start, record)
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
    if s.before is not None:
        day = _boundary_date(record, s, s.before, sections)
        latest_allowed = dt.datetime.combine(day, dt.time())
    if s.after is not None:
        day = _boundary_date(record, s, s.after, sections)
        earliest_allowed = dt.datetime.combine(day + DAY, dt.time())
    dose, basis = _resolved_dose(s, record, items)
    interval = s.interval or DAY
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
