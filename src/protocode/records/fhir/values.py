"""Reading values out of valid FHIR resources: dates, statuses, codes, observation values.

A mapped resource that cannot be read raises `ReadError` naming the element at fault; the
patient collector turns it into an error of that patient's record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from protocode.core.errors import Diagnostic
from protocode.document.model import DataItem
from protocode.records.fhir.codes import ANSWERS, FALSE_WORDS, TRUE_WORDS, Code, system_key
from protocode.records.fhir.mapping import FhirMapping, Target
from protocode.records.fhir.resources import Resource

Warn = Callable[[Diagnostic], None]
"""Where warnings go (unmapped resources, resource types that are not read)."""

_UCUM: Final = "http://unitsofmeasure.org"


class ReadError(Exception):
    """A mapped resource that cannot be read: the element and what is wrong."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record field came from: for rewriting the reader's diagnostics."""

    where: str
    label: str
    paths: Mapping[str, str]  # record sub-field ("value", "unit", …) -> FHIR element path


@dataclass(slots=True)
class When:
    """When a resource happened: its date, an end, a date to order by, and their elements."""

    date: object = None
    date_path: str = ""
    end: object = None
    end_path: str = ""
    sort: object = None  # a date used only to order facts (e.g. Condition.recordedDate)


def codings(concept: Any) -> list[Code]:
    """The (system, code) pairs of a CodeableConcept with both given."""
    if concept is None:
        return []
    return [
        (system_key(c.system or ""), c.code)
        for c in concept.coding or ()
        if c.code is not None and c.system is not None
    ]


def describe_codes(concept_codes: list[Code]) -> str:
    """Codings as ``system|code`` for messages."""
    return ", ".join(f"{s}|{c}" for s, c in concept_codes) or "no coding"


def day(x: object) -> dt.date | None:
    """The day of a date, a datetime or an ISO text; None for anything else."""
    if isinstance(x, dt.datetime):
        return x.date()
    if isinstance(x, dt.date):
        return x
    if isinstance(x, str):
        try:
            return dt.date.fromisoformat(x[:10])
        except ValueError:
            return None
    return None


def when_of(res: Resource) -> When:
    """The dates a resource gives, by its type."""
    m = res.model
    if res.type == "Observation":
        if m.effectiveDateTime is not None:
            return When(m.effectiveDateTime, "effectiveDateTime")
        if m.effectiveInstant is not None:
            return When(m.effectiveInstant, "effectiveInstant")
        return _period(m.effectivePeriod, "effectivePeriod")
    if res.type == "Condition":
        if m.onsetDateTime is not None:
            w = When(m.onsetDateTime, "onsetDateTime")
        else:
            w = _period(m.onsetPeriod, "onsetPeriod")
        if m.abatementDateTime is not None:
            w.end, w.end_path = m.abatementDateTime, "abatementDateTime"
        elif m.abatementPeriod is not None and m.abatementPeriod.end is not None:
            w.end, w.end_path = m.abatementPeriod.end, "abatementPeriod.end"
        w.sort = m.recordedDate
        return w
    if res.type == "Procedure":
        if m.performedDateTime is not None:
            return When(m.performedDateTime, "performedDateTime")
        return _period(m.performedPeriod, "performedPeriod")
    if res.type in ("MedicationAdministration", "MedicationStatement"):
        if m.effectiveDateTime is not None:
            return When(m.effectiveDateTime, "effectiveDateTime")
        return _period(m.effectivePeriod, "effectivePeriod")
    if res.type == "Encounter":
        return _period(m.period, "period")
    return When()


def _period(period: Any, path: str) -> When:
    if period is None:
        return When()
    return When(period.start, f"{path}.start", period.end, f"{path}.end")


def status_of(res: Resource) -> str | None:
    """A resource's ``status``, when it has one."""
    status = getattr(res.model, "status", None)
    return str(status) if status is not None else None


def condition_status(concept: Any) -> str | None:
    """The code of a Condition's clinical or verification status."""
    codes = codings(concept)
    if codes:
        return codes[0][1]
    # A status written without its system still says what it says.
    for c in (concept.coding or ()) if concept is not None else ():
        if c.code is not None:
            return str(c.code)
    return None


_VALUE_FIELDS: Final = (
    "valueQuantity",
    "valueCodeableConcept",
    "valueString",
    "valueBoolean",
    "valueInteger",
    "valueRange",
    "valueRatio",
    "valueSampledData",
    "valueTime",
    "valueDateTime",
    "valuePeriod",
)


def ucum(q: Any, path: str) -> str | None:
    """The UCUM unit of a Quantity (its `code`), None when it has no unit."""
    if q.code is None:
        if q.unit is not None:
            raise ReadError(f"{path}.code", f"unit '{q.unit}' has no UCUM code")
        return None
    if q.system is not None and q.system != _UCUM:
        raise ReadError(f"{path}.system", f"unit system {q.system} is not UCUM ({_UCUM})")
    return str(q.code)


def show_date(x: object) -> str:
    """A date as messages show it."""
    date = day(x)
    return date.isoformat() if date is not None and not isinstance(x, str) else str(x)


def reference_tail(ref: str, rtype: str) -> str:
    """``Medication/x`` from an absolute or versioned reference."""
    parts = ref.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 and parts[-2] == rtype else ref


def value_path(res: Resource) -> str | None:
    """The value[x] element an Observation gives, None for other resources or no value."""
    if res.type != "Observation":
        return None
    for name in _VALUE_FIELDS:
        if getattr(res.model, name, None) is not None:
            return name
    return None


def truth(res: Resource, negated: bool) -> bool | None:
    """Whether a resource says yes or no (an attestation, an event from an Observation)."""
    if res.type != "Observation":
        return not negated
    m = res.model
    if m.valueBoolean is not None:
        return bool(m.valueBoolean)
    if m.valueCodeableConcept is not None:
        for code in codings(m.valueCodeableConcept):
            word = ANSWERS.get(code)
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
        codes = describe_codes(codings(m.valueCodeableConcept))
        raise ReadError("valueCodeableConcept", f"not a yes/no answer ({codes})")
    if value_path(res) is None:
        return True
    raise ReadError(value_path(res) or "", "expected valueBoolean or a yes/no code")


@dataclass(frozen=True, slots=True)
class ResourceValues:
    """Reads the value of one patient's resources for the items the mapping sends them to."""

    mapping: FhirMapping
    warn: Warn
    pid: str

    def observation(self, item: DataItem, target: Target, res: Resource) -> dict[str, Any] | None:
        """{value, unit?, reference_range?} of one reading for `item`, or None (no value)."""
        path = value_path(res)
        if path is None:
            if target.value is not None:
                return {"value": target.value}
            if item.type == "boolean":
                return {"value": True}
            if res.type == "Observation":
                self.warn(
                    Diagnostic(
                        "no-value",
                        f"{res.label}: no value for '{item.name}'",
                        record_id=self.pid,
                        field=res.where,
                        severity="warning",
                    )
                )
                return None
            message = (
                f"a {res.type} gives no value for '{item.name}' ({item.type}): "
                "give the value in the mapping file ('value:' with the code)"
            )
            raise ReadError("code", message)
        m = res.model
        raw = getattr(m, path)
        numeric = item.type in ("integer", "number", "quantity")
        out: dict[str, Any] = {}
        if path == "valueQuantity":
            if not numeric:
                raise ReadError(path, f"'{item.name}' is of type {item.type}, not a number")
            if raw.comparator is not None:
                message = f"a value '{raw.comparator} {raw.value}' is not an exact number"
                raise ReadError(f"{path}.comparator", message)
            if raw.value is None:
                raise ReadError(f"{path}.value", "no value")
            unit = ucum(raw, path)
            out["value"] = raw.value
            if item.type == "quantity":
                if unit is not None:
                    out["unit"] = unit
            elif unit not in (None, "1") and not unit.startswith("{"):
                raise ReadError(f"{path}.code", f"'{item.name}' has no unit, got '{unit}'")
            reference = self.reference(m, unit, item)
            if reference is not None:
                out["reference_range"] = reference
        elif path == "valueInteger":
            if not numeric or item.type == "quantity":
                wanted = "valueQuantity with a UCUM unit" if numeric else f"a {item.type} value"
                raise ReadError(path, f"'{item.name}' expects {wanted}")
            out["value"] = raw
        elif path == "valueBoolean":
            if item.type != "boolean":
                raise ReadError(path, f"'{item.name}' is of type {item.type}, not boolean")
            out["value"] = bool(raw)
        elif path == "valueCodeableConcept":
            out["value"] = self.answer(item, raw)
        elif path == "valueString":
            if item.type not in ("code", "text"):
                raise ReadError(path, f"'{item.name}' is of type {item.type}, not text")
            out["value"] = raw
        elif path == "valueDateTime":
            if item.type != "date":
                raise ReadError(path, f"'{item.name}' is of type {item.type}, not a date")
            out["value"] = raw
        else:
            raise ReadError(
                path, f"{path} is not read (use valueQuantity, valueCodeableConcept, …)"
            )
        return out

    def answer(self, item: DataItem, concept: Any) -> object:
        """The item value a coded answer stands for (the mapping file's, else a known word)."""
        codes = codings(concept)
        own = self.mapping.answers.get(item.name, {})
        for code in codes:
            if code in own:
                return own[code]
        for code in codes:
            word = ANSWERS.get(code)
            if word is None:
                continue
            if item.type == "code" and word in item.values:
                return word
            if item.type == "boolean" and word in TRUE_WORDS | FALSE_WORDS:
                return word in TRUE_WORDS
        message = (
            f"no value of '{item.name}' has the code {describe_codes(codes)} "
            f"(map it under items.{item.name}.values in the mapping file)"
        )
        raise ReadError("valueCodeableConcept", message)

    def reference(self, m: Any, unit: str | None, item: DataItem) -> dict[str, Any] | None:
        """The first reference range with a bound, in the value's unit; None without one."""
        for i, rr in enumerate(m.referenceRange or ()):
            if rr.low is None and rr.high is None:
                continue
            out: dict[str, Any] = {}
            for key in ("low", "high"):
                q = getattr(rr, key)
                if q is None or q.value is None:
                    continue
                path = f"referenceRange[{i}].{key}"
                other = ucum(q, path)
                if other is not None and unit is not None and other != unit:
                    message = f"the reference range is in {other}, the value in {unit}"
                    raise ReadError(f"{path}.code", message)
                if other is not None and unit is None and item.unit and other != item.unit:
                    message = f"the reference range is in {other}, the value has no unit"
                    raise ReadError(f"{path}.code", message)
                out[key] = q.value
            return out
        return None

    # -- the record
