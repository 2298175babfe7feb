"""FHIR R4 input: Bundles and bulk-data NDJSON turned into patient records.

Each resource is validated on its own with the ``fhir.resources`` R4B models (R4B is R4 with
fixes; the resources read here are the same in both), so one malformed resource does not
spoil the rest. Resources are grouped by the Patient they reference, mapped to the data
dictionary through their codes (`FhirMapping`), and each patient becomes one JSON record
(``docs/records.md``) that `RecordReader` validates exactly as it validates a JSON file:
units are converted, ranges checked, dates read the same way.

Problems are never dropped:

- a malformed resource, or one that maps but cannot be read (a value of the wrong type, a
  unit that does not convert), makes its patient's result a `RecordError` naming the
  resource and the element (``entry[4].resource.valueQuantity.code``);
- a resource that names no Patient of the input is a `RecordError` of its own, named by its
  place (``entry[9]``, ``Observation.ndjson:3``);
- a resource whose codes match no data item, and resource types that are not read, are
  warnings, passed to the caller's `warn` (the patient is still screened).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from fhir.resources.R4B import get_fhir_model_class

from protocode.core.errors import Diagnostic, RecordError
from protocode.core.jsontext import (
    MAX_DEPTH,
    bad_byte,
    decode,
    document_start,
    file_error,
    line_syntax,
    member_at,
    syntax_error,
    too_deep,
)
from protocode.core.jsontext import loads as json_loads
from protocode.document.model import DataItem
from protocode.records import Record, RecordReader
from protocode.records.fhir.mapping import (
    ANSWERS,
    FALSE_WORDS,
    TRUE_WORDS,
    Code,
    FhirMapping,
    Target,
    system_key,
)

__all__ = ["READ_TYPES", "Warn", "is_fhir_input", "read_fhir", "records_from_resources"]

Warn = Callable[[Diagnostic], None]
"""Where warnings go (unmapped resources, resource types that are not read)."""

READ_TYPES: Final = (
    "Patient",
    "Observation",
    "Condition",
    "Procedure",
    "MedicationAdministration",
    "MedicationStatement",
    "Encounter",
    "ResearchSubject",
    "Medication",
)
"""The resource types read (a Medication only through the references to it)."""

_UCUM: Final = "http://unitsofmeasure.org"
_MAX_PROBLEMS: Final = 10  # validation problems shown per resource
_PATIENT_REF: Final = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]*)?\Z")
_PATIENT_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR's id type

# Status codes: a resource with a `_SKIP` status says nothing; with a `_NEGATED` one it says
# the thing did not happen (or is not so).
_SKIP: Final[dict[str, frozenset[str]]] = {
    "Observation": frozenset({"entered-in-error", "cancelled"}),
    "Procedure": frozenset({"entered-in-error", "preparation"}),
    "MedicationAdministration": frozenset({"entered-in-error"}),
    "MedicationStatement": frozenset({"entered-in-error", "intended"}),
    "Encounter": frozenset({"entered-in-error", "cancelled", "planned"}),
}
_NEGATED: Final[dict[str, frozenset[str]]] = {
    "Procedure": frozenset({"not-done"}),
    "MedicationAdministration": frozenset({"not-done"}),
    "MedicationStatement": frozenset({"not-taken"}),
}
_NOT_CURRENT: Final = frozenset({"inactive", "remission", "resolved"})


# --- reading files ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Raw:
    """One resource as read: where it is, its JSON, its Bundle fullUrl."""

    where: str
    data: object
    full_url: str | None = None


def _file_error(path: Path, code: str, message: str) -> RecordError:
    return RecordError([Diagnostic(code, f"{path}: {message}")])


def _loads(text: str) -> object:
    """JSON text as read for validation; a value nested too deep becomes a `TooDeep`, which
    `_validate` reports for the resource holding it."""
    # Decimals exact: FHIR decimals keep the digits written. An integer too long for int()
    # is still a number (FHIR's integers are 32-bit, so validation rejects it where one is
    # expected); failing it here would lose the whole Bundle.
    doc, _ = json_loads(text, parse_float=_decimal, parse_int=_integer)
    return doc


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        # An exponent beyond any Decimal's (1e99999999999999999999) raised out of the parser,
        # losing the whole Bundle. NaN is still a number, and validation refuses it wherever
        # a value is expected: an error of the resource that holds it.
        return Decimal("NaN")


def _integer(text: str) -> int | Decimal:
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _file_error(path, "unreadable", f"cannot read: {exc.strerror or exc}") from None


def _bundle(path: Path) -> list[_Raw]:
    name = str(path)
    text = decode(name, _read_bytes(path))
    try:
        doc = _loads(text)
    except json.JSONDecodeError as exc:
        raise syntax_error(name, text, exc) from None
    if not isinstance(doc, dict) or "resourceType" not in doc:
        message = "not a FHIR resource (no 'resourceType')"
        raise file_error(name, text, "malformed", message, document_start(text))
    if doc["resourceType"] != "Bundle":
        return [_Raw(path.name, doc)]
    entries = doc.get("entry", [])
    if not isinstance(entries, list):
        at = member_at(text, "entry")
        raise file_error(name, text, "malformed", "Bundle.entry is not a list", at)
    out: list[_Raw] = []
    for i, entry in enumerate(entries):
        where = f"entry[{i}]"
        if not isinstance(entry, dict):
            out.append(_Raw(where, entry))
            continue
        url = entry.get("fullUrl")
        out.append(
            _Raw(f"{where}.resource", entry.get("resource"), url if isinstance(url, str) else None)
        )
    return out


def _ndjson(path: Path) -> list[_Raw]:
    out: list[_Raw] = []
    for n, line in enumerate(_read_bytes(path).split(b"\n"), 1):
        where = f"{path.name}:{n}"
        try:
            text = line.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            out.append(_Raw(where, _Unreadable(f"not UTF-8 text ({bad_byte(exc)})")))
            continue
        if not text.strip():
            continue
        try:
            out.append(_Raw(where, _loads(text)))
        except json.JSONDecodeError as exc:
            out.append(_Raw(where, _Unreadable(line_syntax(exc))))
    return out


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """A line that is not JSON."""

    message: str


def _resources(path: Path) -> list[_Raw]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".ndjson")
        if not files:
            raise _file_error(path, "unreadable", "no .ndjson files in this folder")
        return [raw for f in files for raw in _ndjson(f)]
    if not path.exists():
        raise _file_error(path, "unreadable", "no such file or folder")
    if path.suffix.lower() in (".ndjson", ".jsonl"):
        return _ndjson(path)
    return _bundle(path)


def is_fhir_input(path: Path) -> bool:
    """Whether `path` holds FHIR: a folder of ``.ndjson`` files, a resource or Bundle in
    ``.json``, or NDJSON whose first object has a ``resourceType`` (records never do)."""
    if path.is_dir():
        return any(p.suffix.lower() == ".ndjson" for p in path.iterdir())
    suffix = path.suffix.lower()
    try:
        with path.open("rb") as handle:
            if suffix == ".json":
                head = handle.read(1 << 16).removeprefix(b"\xef\xbb\xbf")
                return bool(re.match(rb'\s*\{\s*"resourceType"\s*:', head))
            if suffix not in (".ndjson", ".jsonl"):
                return False
            # The whole first line: one resource may be far longer than any fixed head.
            lines = (line.removeprefix(b"\xef\xbb\xbf") for line in handle)
            first = next((line for line in lines if line.strip()), b"")
    except OSError:
        return False
    try:
        # Nested too deep for the parser is still an answer, not an error.
        doc, _ = json_loads(first.decode("utf-8"))
    except ValueError:  # not JSON, or not UTF-8
        return False
    return isinstance(doc, dict) and "resourceType" in doc


# --- validation -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Resource:
    """A valid resource: its model object (untyped here), type, id and place."""

    where: str
    type: str
    id: str | None
    model: Any
    full_url: str | None

    @property
    def label(self) -> str:
        return f"{self.type}/{self.id}" if self.id else f"{self.type} at {self.where}"


@dataclass(frozen=True, slots=True)
class _Bad:
    """A resource that could not be validated: its problems as (field, message).

    `patient_id` is the id of a Patient resource that is itself bad: its patient is still
    known by that id, so its result and its other resources stay together.
    """

    where: str
    label: str
    problems: tuple[tuple[str, str], ...]
    patient_ref: str | None
    patient_id: str | None = None


def _at(where: str, path: str) -> str:
    return f"{where}.{path}" if path else where


def _loc(loc: Iterable[object]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("", "resource_type"):
            out += f".{part}" if out else str(part)
        elif part == "resource_type":
            out += ".resourceType" if out else "resourceType"
    return out


def _validate(raw: _Raw) -> _Resource | _Bad:
    data = raw.data
    if isinstance(data, _Unreadable):
        return _Bad(raw.where, f"line {raw.where}", (("", data.message),), None)
    if not isinstance(data, dict):
        message = "no resource" if data is None else "a resource must be a JSON object"
        return _Bad(raw.where, raw.where, (("", message),), None)
    rtype = data.get("resourceType")
    ref = _raw_subject(data)
    if not isinstance(rtype, str):
        # Shown by its place only: str() of a resource built in Python may even raise.
        message = "missing resourceType" if rtype is None else "resourceType is not a string"
        return _Bad(raw.where, raw.where, (("resourceType", message),), ref)
    rid = data.get("id") if isinstance(data.get("id"), str) else None
    label = f"{rtype}/{rid}" if rid else f"{rtype} at {raw.where}"
    own = rid if rtype == "Patient" and rid and _PATIENT_ID.fullmatch(rid) else None
    deep = too_deep(data)
    if deep is not None:
        message = f"nested deeper than {MAX_DEPTH} levels: not read"
        return _Bad(raw.where, label, ((deep, message),), ref, own)
    try:
        cls = get_fhir_model_class(rtype)
    except (ValueError, KeyError):
        message = f"'{rtype}' is not a FHIR R4 resource type"
        return _Bad(raw.where, label, (("resourceType", message),), ref)
    try:
        model = cls.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError, or a validator's own error
        errors = getattr(exc, "errors", None)
        found: list[tuple[str, str]] = []
        if callable(errors):
            for e in errors()[:_MAX_PROBLEMS]:
                message = " ".join(str(e.get("msg", "invalid")).split())
                found.append((_loc(e.get("loc", ())), message))
        return _Bad(raw.where, label, tuple(found) or (("", str(exc)),), ref, own)
    return _Resource(raw.where, rtype, rid, model, raw.full_url)


def _raw_subject(data: Mapping[str, Any]) -> str | None:
    for key in ("subject", "individual", "patient"):
        value = data.get(key)
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            ref: str = value["reference"]
            return ref
    return None


# --- reading values out of resources ----------------------------------------------------


class _ReadError(Exception):
    """A mapped resource that cannot be read: the element and what is wrong."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where a record field came from: for rewriting the reader's diagnostics."""

    where: str
    label: str
    paths: Mapping[str, str]  # record sub-field ("value", "unit", …) -> FHIR element path


@dataclass(slots=True)
class _When:
    date: object = None
    date_path: str = ""
    end: object = None
    end_path: str = ""
    sort: object = None  # a date used only to order facts (e.g. Condition.recordedDate)


def _codings(concept: Any) -> list[Code]:
    if concept is None:
        return []
    return [
        (system_key(c.system or ""), c.code)
        for c in concept.coding or ()
        if c.code is not None and c.system is not None
    ]


def _describe(concept_codes: list[Code]) -> str:
    return ", ".join(f"{s}|{c}" for s, c in concept_codes) or "no coding"


def _day(x: object) -> dt.date | None:
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


def _when(res: _Resource) -> _When:
    m = res.model
    if res.type == "Observation":
        if m.effectiveDateTime is not None:
            return _When(m.effectiveDateTime, "effectiveDateTime")
        if m.effectiveInstant is not None:
            return _When(m.effectiveInstant, "effectiveInstant")
        return _period(m.effectivePeriod, "effectivePeriod")
    if res.type == "Condition":
        if m.onsetDateTime is not None:
            w = _When(m.onsetDateTime, "onsetDateTime")
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
            return _When(m.performedDateTime, "performedDateTime")
        return _period(m.performedPeriod, "performedPeriod")
    if res.type in ("MedicationAdministration", "MedicationStatement"):
        if m.effectiveDateTime is not None:
            return _When(m.effectiveDateTime, "effectiveDateTime")
        return _period(m.effectivePeriod, "effectivePeriod")
    if res.type == "Encounter":
        return _period(m.period, "period")
    return _When()


def _period(period: Any, path: str) -> _When:
    if period is None:
        return _When()
    return _When(period.start, f"{path}.start", period.end, f"{path}.end")


def _status(res: _Resource) -> str | None:
    status = getattr(res.model, "status", None)
    return str(status) if status is not None else None


def _condition_status(concept: Any) -> str | None:
    codes = _codings(concept)
    if codes:
        return codes[0][1]
    # A status written without its system still says what it says.
    for c in (concept.coding or ()) if concept is not None else ():
        if c.code is not None:
            return str(c.code)
    return None


class _Patient:
    """Collects one patient's data from its resources, then builds its JSON record."""

    def __init__(self, pid: str, mapping: FhirMapping, warn: Warn) -> None:
        self.pid = pid
        self.mapping = mapping
        self.warn = warn
        self.record: dict[str, Any] = {"id": pid}
        self.origins: dict[str, _Origin] = {}
        self.errors: list[Diagnostic] = []
        self.anchors: dict[str, list[tuple[object, _Origin]]] = {}
        # item -> [(sort date, order, value, origin)]
        self.facts: dict[str, list[tuple[dt.date | None, int, object, _Origin]]] = {}
        self.attest: dict[str, list[tuple[dt.date | None, int, bool, _Origin]]] = {}
        self.series: dict[str, list[tuple[dict[str, Any], _Origin]]] = {}
        self.events: dict[str, list[tuple[dict[str, Any], _Origin]]] = {}
        self.negated: set[str] = set()
        self.order = 0
        self.patient_seen: str | None = None

    def error(self, where: str, path: str, label: str, message: str, code: str) -> None:
        self.errors.append(
            Diagnostic(code, f"{label}: {message}", record_id=self.pid, field=_at(where, path))
        )

    # -- Patient and ResearchSubject

    def patient(self, res: _Resource) -> None:
        if self.patient_seen is not None:
            message = f"the patient is given twice (also at {self.patient_seen})"
            self.error(res.where, "", res.label, message, "duplicate-id")
            return
        self.patient_seen = res.where
        m, mapping = res.model, self.mapping
        if mapping.birth_date is not None and m.birthDate is not None:
            self.put_fact(mapping.birth_date, m.birthDate, None, _Origin(
                res.where, res.label, {"": "birthDate"}))  # fmt: skip
        if mapping.gender is not None and m.gender is not None:
            item = mapping.items[mapping.gender]
            gender = str(m.gender)
            if gender in item.values:
                origin = _Origin(res.where, res.label, {"": "gender"})
                self.put_fact(item.name, gender, None, origin)
            elif gender != "unknown":
                message = f"gender '{gender}' is not one of {', '.join(item.values)} ({item.name})"
                self.error(res.where, "gender", res.label, message, "bad-value")
        if mapping.deceased is not None:
            origin = _Origin(res.where, res.label, {"date": "deceasedDateTime"})
            if m.deceasedDateTime is not None:
                self.events.setdefault(mapping.deceased, []).append(
                    ({"date": m.deceasedDateTime}, origin)
                )
            elif m.deceasedBoolean is True:
                self.events.setdefault(mapping.deceased, []).append(({"date": None}, origin))
            elif m.deceasedBoolean is False:
                self.negated.add(mapping.deceased)

    def research_subject(self, res: _Resource) -> None:
        name = self.mapping.enrollment
        period = res.model.period
        if name is None or period is None or period.start is None:
            self.warn(
                Diagnostic(
                    "unmapped",
                    f"{res.label}: no period.start, or no anchor to put it in",
                    record_id=self.pid,
                    field=res.where,
                    severity="warning",
                )
            )
            return
        origin = _Origin(res.where, res.label, {"": "period.start"})
        self.anchors.setdefault(name, []).append((period.start, origin))

    # -- coded resources

    def resource(self, res: _Resource, medications: Mapping[str, Any]) -> None:
        status = _status(res)
        if status in _SKIP.get(res.type, ()):
            return
        negated = status in _NEGATED.get(res.type, ())
        not_current = False
        m = res.model
        if res.type == "Condition":
            verification = _condition_status(m.verificationStatus)
            if verification == "entered-in-error":
                return
            negated = verification == "refuted"
            not_current = _condition_status(m.clinicalStatus) in _NOT_CURRENT
        try:
            codes = self.codes(res, medications)
        except _ReadError as bad:
            self.error(res.where, bad.path, res.label, bad.message, "bad-value")
            return
        targets = self.mapping.match(codes)
        if not targets:
            self.warn(
                Diagnostic(
                    "unmapped",
                    f"{res.label}: no data item has any of its codes ({_describe(codes)})",
                    record_id=self.pid,
                    field=res.where,
                    severity="warning",
                )
            )
            return
        when = _when(res)
        for target in targets:
            try:
                self.feed(target, res, when, negated=negated, not_current=not_current)
            except _ReadError as bad:
                self.error(res.where, bad.path, res.label, bad.message, "bad-value")

    def codes(self, res: _Resource, medications: Mapping[str, Any]) -> list[Code]:
        m = res.model
        if res.type == "Encounter":
            return [c for concept in m.type or () for c in _codings(concept)]
        if res.type in ("MedicationAdministration", "MedicationStatement"):
            if m.medicationCodeableConcept is not None:
                return _codings(m.medicationCodeableConcept)
            ref = m.medicationReference.reference if m.medicationReference is not None else None
            medication = None
            if isinstance(ref, str) and ref.startswith("#"):
                for contained in m.contained or ():
                    if contained.get_resource_type() == "Medication" and contained.id == ref[1:]:
                        medication = contained
            elif isinstance(ref, str):
                medication = medications.get(ref) or medications.get(_tail(ref, "Medication"))
            if medication is None:
                message = f"medication {ref!r} is not in the input"
                raise _ReadError("medicationReference", message)
            return _codings(medication.code)
        return _codings(m.code)

    def feed(
        self, target: Target, res: _Resource, when: _When, *, negated: bool, not_current: bool
    ) -> None:
        origin = _Origin(res.where, res.label, {"date": when.date_path, "end": when.end_path})
        order = self.order = self.order + 1
        sort = _day(when.date) or _day(when.sort)
        if target.attestation:
            said = self.truth(target, res, negated)
            if said is not None:
                path = self.value_path(res) or ""
                origin = dataclasses.replace(origin, paths={"": path})
                self.attest.setdefault(target.name, []).append((sort, order, said, origin))
            return
        item = self.mapping.items[target.name]
        if item.kind == "anchor":
            if negated:
                return
            if when.date is None:
                raise _ReadError("", f"no date for anchor '{item.name}'")
            origin = dataclasses.replace(origin, paths={"": when.date_path})
            self.anchors.setdefault(item.name, []).append((when.date, origin))
        elif item.kind == "event":
            truth = self.truth(target, res, negated) if res.type == "Observation" else not negated
            if truth is False:
                self.negated.add(item.name)
            elif truth:
                occurrence: dict[str, Any] = {"date": when.date}
                if when.end is not None and when.date is not None:
                    occurrence["end"] = when.end
                self.events.setdefault(item.name, []).append((occurrence, origin))
        elif item.kind == "observation":
            if negated:
                return
            element = self.observation(item, target, res)
            if element is None:
                return
            element["date"] = when.date
            self.series.setdefault(item.name, []).append((element, self.obs_origin(res, origin)))
        else:
            if item.type == "boolean" and res.type != "Observation":
                value: object = not (negated or not_current)
            elif negated:
                return
            else:
                element = self.observation(item, target, res)
                if element is None:
                    return
                value = element["value"]
                if "unit" in element:
                    value = {"value": element["value"], "unit": element["unit"]}
            self.put_fact(item.name, value, sort, self.obs_origin(res, origin), order)

    def obs_origin(self, res: _Resource, origin: _Origin) -> _Origin:
        path = self.value_path(res)
        paths = dict(origin.paths)
        if path is not None:
            paths.update({"": path, "value": path})
            if path == "valueQuantity":
                paths.update({"value": "valueQuantity.value", "unit": "valueQuantity.code"})
        paths["reference_range"] = "referenceRange[0]"
        return dataclasses.replace(origin, paths=paths)

    def put_fact(
        self, name: str, value: object, sort: dt.date | None, origin: _Origin, order: int = 0
    ) -> None:
        self.facts.setdefault(name, []).append((sort, order, value, origin))

    @staticmethod
    def value_path(res: _Resource) -> str | None:
        if res.type != "Observation":
            return None
        for name in _VALUE_FIELDS:
            if getattr(res.model, name, None) is not None:
                return name
        return None

    def truth(self, target: Target, res: _Resource, negated: bool) -> bool | None:
        """Whether a resource says yes or no (an attestation, an event from an Observation)."""
        if res.type != "Observation":
            return not negated
        m = res.model
        if m.valueBoolean is not None:
            return bool(m.valueBoolean)
        if m.valueCodeableConcept is not None:
            for code in _codings(m.valueCodeableConcept):
                word = ANSWERS.get(code)
                if word in TRUE_WORDS:
                    return True
                if word in FALSE_WORDS:
                    return False
            codes = _describe(_codings(m.valueCodeableConcept))
            raise _ReadError("valueCodeableConcept", f"not a yes/no answer ({codes})")
        if self.value_path(res) is None:
            return True
        raise _ReadError(self.value_path(res) or "", "expected valueBoolean or a yes/no code")

    def observation(self, item: DataItem, target: Target, res: _Resource) -> dict[str, Any] | None:
        """{value, unit?, reference_range?} of one reading for `item`, or None (no value)."""
        path = self.value_path(res)
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
            raise _ReadError("code", message)
        m = res.model
        raw = getattr(m, path)
        numeric = item.type in ("integer", "number", "quantity")
        out: dict[str, Any] = {}
        if path == "valueQuantity":
            if not numeric:
                raise _ReadError(path, f"'{item.name}' is of type {item.type}, not a number")
            if raw.comparator is not None:
                message = f"a value '{raw.comparator} {raw.value}' is not an exact number"
                raise _ReadError(f"{path}.comparator", message)
            if raw.value is None:
                raise _ReadError(f"{path}.value", "no value")
            unit = _ucum(raw, path)
            out["value"] = raw.value
            if item.type == "quantity":
                if unit is not None:
                    out["unit"] = unit
            elif unit not in (None, "1") and not unit.startswith("{"):
                raise _ReadError(f"{path}.code", f"'{item.name}' has no unit, got '{unit}'")
            reference = self.reference(m, unit, item)
            if reference is not None:
                out["reference_range"] = reference
        elif path == "valueInteger":
            if not numeric or item.type == "quantity":
                wanted = "valueQuantity with a UCUM unit" if numeric else f"a {item.type} value"
                raise _ReadError(path, f"'{item.name}' expects {wanted}")
            out["value"] = raw
        elif path == "valueBoolean":
            if item.type != "boolean":
                raise _ReadError(path, f"'{item.name}' is of type {item.type}, not boolean")
            out["value"] = bool(raw)
        elif path == "valueCodeableConcept":
            out["value"] = self.answer(item, raw)
        elif path == "valueString":
            if item.type not in ("code", "text"):
                raise _ReadError(path, f"'{item.name}' is of type {item.type}, not text")
            out["value"] = raw
        elif path == "valueDateTime":
            if item.type != "date":
                raise _ReadError(path, f"'{item.name}' is of type {item.type}, not a date")
            out["value"] = raw
        else:
            raise _ReadError(
                path, f"{path} is not read (use valueQuantity, valueCodeableConcept, …)"
            )
        return out

    def answer(self, item: DataItem, concept: Any) -> object:
        codes = _codings(concept)
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
            f"no value of '{item.name}' has the code {_describe(codes)} "
            f"(map it under items.{item.name}.values in the mapping file)"
        )
        raise _ReadError("valueCodeableConcept", message)

    def reference(self, m: Any, unit: str | None, item: DataItem) -> dict[str, Any] | None:
        for i, rr in enumerate(m.referenceRange or ()):
            if rr.low is None and rr.high is None:
                continue
            out: dict[str, Any] = {}
            for key in ("low", "high"):
                q = getattr(rr, key)
                if q is None or q.value is None:
                    continue
                path = f"referenceRange[{i}].{key}"
                other = _ucum(q, path)
                if other is not None and unit is not None and other != unit:
                    message = f"the reference range is in {other}, the value in {unit}"
                    raise _ReadError(f"{path}.code", message)
                if other is not None and unit is None and item.unit and other != item.unit:
                    message = f"the reference range is in {other}, the value has no unit"
                    raise _ReadError(f"{path}.code", message)
                out[key] = q.value
            return out
        return None

    # -- the record

    def build(self, reader: RecordReader) -> Record | RecordError:
        record = self.record
        for name, dates in self.anchors.items():
            days = {_day(d) or d for d, _ in dates}
            if len(days) > 1:
                shown = ", ".join(f"{_show_date(d)} ({o.where})" for d, o in dates)
                self.errors.append(
                    Diagnostic(
                        "conflict",
                        f"anchor '{name}' has several dates: {shown}",
                        record_id=self.pid,
                        field=dates[0][1].where,
                    )
                )
                continue
            record[name], self.origins[name] = dates[0]
        for name, candidates in self.facts.items():
            # The most recent value wins; undated ones count as oldest, ties go to the later.
            _, _, value, origin = max(
                candidates, key=lambda c: (c[0] is not None, c[0] or dt.date.min, c[1])
            )
            record[name], self.origins[name] = value, origin
        for name, elements in self.series.items():
            record[name] = [e for e, _ in elements]
            self.origins.update((f"{name}[{i}]", o) for i, (_, o) in enumerate(elements))
        for name in self.negated - set(self.events):
            record[name] = []
        for name, occurrences in self.events.items():
            record[name] = [o for o, _ in occurrences]
            self.origins.update((f"{name}[{i}]", o) for i, (_, o) in enumerate(occurrences))
        if self.attest:
            attestations: dict[str, bool] = {}
            for name, said in self.attest.items():
                _, _, value, origin = max(
                    said, key=lambda c: (c[0] is not None, c[0] or dt.date.min, c[1])
                )
                attestations[name] = value
                self.origins[f"attestations.{name}"] = origin
            record["attestations"] = attestations
        problems = list(self.errors)
        try:
            parsed = reader.parse(record)
        except RecordError as exc:
            problems.extend(self.rewrite(d) for d in exc.diagnostics)
        else:
            if not problems:
                return parsed
        return RecordError(problems)

    def rewrite(self, d: Diagnostic) -> Diagnostic:
        """A record diagnostic pointed at the resource and element the field came from."""
        match = _FIELD.fullmatch(d.field or "")
        origin = self.origins.get(match["key"]) if match else None
        if match is None or origin is None:
            return d
        rest = match["rest"] or ""
        sub = rest.split(".", 1)[0]
        path = origin.paths.get(sub) or origin.paths.get("", "")
        if sub == "reference_range" and "." in rest:
            path = f"{path}.{rest.split('.', 1)[1]}.value"
        message = f"{origin.label} ({d.field}): {d.message}"
        return dataclasses.replace(d, message=message, field=_at(origin.where, path))


_FIELD: Final = re.compile(r"(?P<key>attestations\.[^.]+|[^.\[]+(?:\[\d+\])?)(?:\.(?P<rest>.*))?")
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


def _ucum(q: Any, path: str) -> str | None:
    """The UCUM unit of a Quantity (its `code`), None when it has no unit."""
    if q.code is None:
        if q.unit is not None:
            raise _ReadError(f"{path}.code", f"unit '{q.unit}' has no UCUM code")
        return None
    if q.system is not None and q.system != _UCUM:
        raise _ReadError(f"{path}.system", f"unit system {q.system} is not UCUM ({_UCUM})")
    return str(q.code)


def _show_date(x: object) -> str:
    day = _day(x)
    return day.isoformat() if day is not None and not isinstance(x, str) else str(x)


def _tail(ref: str, rtype: str) -> str:
    """``Medication/x`` from an absolute or versioned reference."""
    parts = ref.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 and parts[-2] == rtype else ref


# --- grouping and the whole input --------------------------------------------------------


def records_from_resources(
    resources: Iterable[tuple[str, object] | tuple[str, object, str | None]],
    reader: RecordReader,
    mapping: FhirMapping | None = None,
    warn: Warn | None = None,
) -> Iterator[Record | RecordError]:
    """Records from resources given as (where, JSON object[, Bundle fullUrl]).

    One result per Patient, in input order, then one `RecordError` per resource that names
    no Patient of the input. `where` names a resource in diagnostics (``entry[3]``).
    """
    raws = [_Raw(r[0], r[1], r[2] if len(r) > 2 else None) for r in resources]
    return _records(raws, reader, mapping, warn)


def read_fhir(
    path: Path,
    reader: RecordReader,
    mapping: FhirMapping | None = None,
    warn: Warn | None = None,
) -> Iterator[Record | RecordError]:
    """The patients of a FHIR Bundle (``.json``), an NDJSON file, or a bulk-export folder.

    `mapping` defaults to the dictionary's own codes (`FhirMapping.build` without a file).
    A file that cannot be read at all raises one `RecordError` when iteration starts.
    """
    yield from _records(_resources(path), reader, mapping, warn)


def _ignore(_: Diagnostic) -> None:
    pass


def _records(
    raws: list[_Raw], reader: RecordReader, mapping: FhirMapping | None, warn: Warn | None
) -> Iterator[Record | RecordError]:
    if mapping is None:
        mapping = FhirMapping.build(reader.items.values(), reader.attestations)
    report = warn or _ignore
    checked = [_validate(raw) for raw in raws]
    patients: dict[str, _Patient] = {}
    keys: dict[str, str] = {}  # reference -> patient id
    medications: dict[str, Any] = {}
    orphans: list[RecordError] = []
    ignored: Counter[str] = Counter()
    for res in checked:
        if isinstance(res, _Resource) and res.type == "Patient":
            if not res.id:
                orphans.append(_orphan(res.where, res.label, "", "a Patient needs an id"))
                continue
            patient = patients.get(res.id)
            if patient is None:
                patient = patients[res.id] = _Patient(res.id, mapping, report)
            patient.patient(res)
            keys[f"Patient/{res.id}"] = res.id
            if res.full_url:
                keys[res.full_url] = res.id
        elif isinstance(res, _Resource) and res.type == "Medication":
            for key in (f"Medication/{res.id}" if res.id else None, res.full_url):
                if key:
                    medications[key] = res.model
        elif isinstance(res, _Bad) and res.patient_id is not None:
            if res.patient_id not in patients:
                patients[res.patient_id] = _Patient(res.patient_id, mapping, report)
            keys[f"Patient/{res.patient_id}"] = res.patient_id

    def owner(ref: str | None) -> _Patient | None:
        if ref is None:
            return None
        pid = keys.get(ref)
        if pid is None:
            match = _PATIENT_REF.search(ref)
            pid = keys.get(f"Patient/{match[1]}") if match else None
        return patients.get(pid) if pid is not None else None

    for res in checked:
        if isinstance(res, _Bad):
            patient = patients[res.patient_id] if res.patient_id else owner(res.patient_ref)
            problems = [
                Diagnostic(
                    "malformed",
                    f"{res.label}: {message}",
                    record_id=patient.pid if patient else res.where,
                    field=_at(res.where, path),
                )
                for path, message in res.problems
            ]
            if patient is not None:
                patient.errors.extend(problems)
            else:
                orphans.append(RecordError(problems))
            continue
        if res.type in ("Patient", "Medication"):
            continue
        if res.type not in READ_TYPES:
            ignored[res.type] += 1
            continue
        model = res.model
        reference = model.individual if res.type == "ResearchSubject" else model.subject
        ref = reference.reference if reference is not None else None
        patient = owner(ref)
        if patient is None:
            message = (
                f"its subject {ref!r} is no Patient of the input"
                if ref
                else "it names no subject (Patient)"
            )
            path = "individual" if res.type == "ResearchSubject" else "subject"
            orphans.append(_orphan(res.where, res.label, path, message, "unknown-patient"))
        elif res.type == "ResearchSubject":
            patient.research_subject(res)
        else:
            patient.resource(res, medications)
    for rtype, count in sorted(ignored.items()):
        report(
            Diagnostic(
                "unsupported-resource",
                f"{count} {rtype} resource{'s' if count > 1 else ''} not read "
                f"(read: {', '.join(READ_TYPES)})",
                severity="warning",
            )
        )
    for patient in patients.values():
        yield patient.build(reader)
    yield from orphans


def _orphan(
    where: str, label: str, path: str, message: str, code: str = "malformed"
) -> RecordError:
    diagnostic = Diagnostic(code, f"{label}: {message}", record_id=where, field=_at(where, path))
    return RecordError([diagnostic])
