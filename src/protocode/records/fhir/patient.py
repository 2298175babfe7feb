"""One patient's data collected from its resources, then built into its JSON record."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final

from protocode.core.errors import Diagnostic, RecordError
from protocode.records import Record, RecordReader
from protocode.records.fhir.codes import Code
from protocode.records.fhir.mapping import FhirMapping, Target
from protocode.records.fhir.resources import Resource, element_path
from protocode.records.fhir.values import (
    Origin,
    ReadError,
    ResourceValues,
    Warn,
    When,
    codings,
    condition_status,
    day,
    describe_codes,
    reference_tail,
    show_date,
    status_of,
    truth,
    value_path,
    when_of,
)

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


class Patient:
    """Collects one patient's data from its resources, then builds its JSON record."""

    def __init__(self, pid: str, mapping: FhirMapping, warn: Warn) -> None:
        self.pid = pid
        self.mapping = mapping
        self.warn = warn
        self.values = ResourceValues(mapping, warn, pid)
        self.record: dict[str, Any] = {"id": pid}
        self.origins: dict[str, Origin] = {}
        self.errors: list[Diagnostic] = []
        self.anchors: dict[str, list[tuple[object, Origin]]] = {}
        # item -> [(sort date, order, value, origin)]
        self.facts: dict[str, list[tuple[dt.date | None, int, object, Origin]]] = {}
        self.attest: dict[str, list[tuple[dt.date | None, int, bool, Origin]]] = {}
        self.series: dict[str, list[tuple[dict[str, Any], Origin]]] = {}
        self.events: dict[str, list[tuple[dict[str, Any], Origin]]] = {}
        self.negated: set[str] = set()
        self.order = 0
        self.patient_seen: str | None = None

    def error(self, where: str, path: str, label: str, message: str, code: str) -> None:
        """An error of this patient's record, at a resource's element."""
        self.errors.append(
            Diagnostic(
                code, f"{label}: {message}", record_id=self.pid, field=element_path(where, path)
            )
        )

    # -- Patient and ResearchSubject

    def patient(self, res: Resource) -> None:
        """Read the Patient resource: birth date, gender, death."""
        if self.patient_seen is not None:
            message = f"the patient is given twice (also at {self.patient_seen})"
            self.error(res.where, "", res.label, message, "duplicate-id")
            return
        self.patient_seen = res.where
        m, mapping = res.model, self.mapping
        if mapping.birth_date is not None and m.birthDate is not None:
            self.put_fact(mapping.birth_date, m.birthDate, None, Origin(
                res.where, res.label, {"": "birthDate"}))  # fmt: skip
        if mapping.gender is not None and m.gender is not None:
            item = mapping.items[mapping.gender]
            gender = str(m.gender)
            if gender in item.values:
                origin = Origin(res.where, res.label, {"": "gender"})
                self.put_fact(item.name, gender, None, origin)
            elif gender != "unknown":
                message = f"gender '{gender}' is not one of {', '.join(item.values)} ({item.name})"
                self.error(res.where, "gender", res.label, message, "bad-value")
        if mapping.deceased is not None:
            origin = Origin(res.where, res.label, {"date": "deceasedDateTime"})
            if m.deceasedDateTime is not None:
                self.events.setdefault(mapping.deceased, []).append(
                    ({"date": m.deceasedDateTime}, origin)
                )
            elif m.deceasedBoolean is True:
                self.events.setdefault(mapping.deceased, []).append(({"date": None}, origin))
            elif m.deceasedBoolean is False:
                self.negated.add(mapping.deceased)

    def research_subject(self, res: Resource) -> None:
        """Read a ResearchSubject: its period start is the enrollment anchor."""
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
        origin = Origin(res.where, res.label, {"": "period.start"})
        self.anchors.setdefault(name, []).append((period.start, origin))

    # -- coded resources

    def resource(self, res: Resource, medications: Mapping[str, Any]) -> None:
        """Read one coded resource into the items its codes map to."""
        status = status_of(res)
        if status in _SKIP.get(res.type, ()):
            return
        negated = status in _NEGATED.get(res.type, ())
        not_current = False
        m = res.model
        if res.type == "Condition":
            verification = condition_status(m.verificationStatus)
            if verification == "entered-in-error":
                return
            negated = verification == "refuted"
            not_current = condition_status(m.clinicalStatus) in _NOT_CURRENT
        try:
            codes = self.codes(res, medications)
        except ReadError as bad:
            self.error(res.where, bad.path, res.label, bad.message, "bad-value")
            return
        targets = self.mapping.match(codes)
        if not targets:
            self.warn(
                Diagnostic(
                    "unmapped",
                    f"{res.label}: no data item has any of its codes ({describe_codes(codes)})",
                    record_id=self.pid,
                    field=res.where,
                    severity="warning",
                )
            )
            return
        when = when_of(res)
        for target in targets:
            try:
                self.feed(target, res, when, negated=negated, not_current=not_current)
            except ReadError as bad:
                self.error(res.where, bad.path, res.label, bad.message, "bad-value")

    def codes(self, res: Resource, medications: Mapping[str, Any]) -> list[Code]:
        """The codings that identify a resource (a medication's through its reference)."""
        m = res.model
        if res.type == "Encounter":
            return [c for concept in m.type or () for c in codings(concept)]
        if res.type in ("MedicationAdministration", "MedicationStatement"):
            if m.medicationCodeableConcept is not None:
                return codings(m.medicationCodeableConcept)
            ref = m.medicationReference.reference if m.medicationReference is not None else None
            medication = None
            if isinstance(ref, str) and ref.startswith("#"):
                for contained in m.contained or ():
                    if contained.get_resource_type() == "Medication" and contained.id == ref[1:]:
                        medication = contained
            elif isinstance(ref, str):
                medication = medications.get(ref) or medications.get(
                    reference_tail(ref, "Medication")
                )
            if medication is None:
                message = f"medication {ref!r} is not in the input"
                raise ReadError("medicationReference", message)
            return codings(medication.code)
        return codings(m.code)

    def feed(
        self, target: Target, res: Resource, when: When, *, negated: bool, not_current: bool
    ) -> None:
        """Put what one resource says about one target into the record being built."""
        origin = Origin(res.where, res.label, {"date": when.date_path, "end": when.end_path})
        order = self.order = self.order + 1
        sort = day(when.date) or day(when.sort)
        if target.attestation:
            said = truth(res, negated)
            if said is not None:
                path = value_path(res) or ""
                origin = dataclasses.replace(origin, paths={"": path})
                self.attest.setdefault(target.name, []).append((sort, order, said, origin))
            return
        item = self.mapping.items[target.name]
        if item.kind == "anchor":
            if negated:
                return
            if when.date is None:
                raise ReadError("", f"no date for anchor '{item.name}'")
            origin = dataclasses.replace(origin, paths={"": when.date_path})
            self.anchors.setdefault(item.name, []).append((when.date, origin))
        elif item.kind == "event":
            says = truth(res, negated) if res.type == "Observation" else not negated
            if says is False:
                self.negated.add(item.name)
            elif says:
                occurrence: dict[str, Any] = {"date": when.date}
                if when.end is not None and when.date is not None:
                    occurrence["end"] = when.end
                self.events.setdefault(item.name, []).append((occurrence, origin))
        elif item.kind == "observation":
            if negated:
                return
            element = self.values.observation(item, target, res)
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
                element = self.values.observation(item, target, res)
                if element is None:
                    return
                value = element["value"]
                if "unit" in element:
                    value = {"value": element["value"], "unit": element["unit"]}
            self.put_fact(item.name, value, sort, self.obs_origin(res, origin), order)

    def obs_origin(self, res: Resource, origin: Origin) -> Origin:
        """`origin` with the element paths of an Observation's value."""
        path = value_path(res)
        paths = dict(origin.paths)
        if path is not None:
            paths.update({"": path, "value": path})
            if path == "valueQuantity":
                paths.update({"value": "valueQuantity.value", "unit": "valueQuantity.code"})
        paths["reference_range"] = "referenceRange[0]"
        return dataclasses.replace(origin, paths=paths)

    def put_fact(
        self, name: str, value: object, sort: dt.date | None, origin: Origin, order: int = 0
    ) -> None:
        """Note one candidate value of a fact; `build` keeps the most recent."""
        self.facts.setdefault(name, []).append((sort, order, value, origin))

    def build(self, reader: RecordReader) -> Record | RecordError:
        """The patient's JSON record read by `reader`, or every problem found."""
        record = self.record
        for name, dates in self.anchors.items():
            days = {day(d) or d for d, _ in dates}
            if len(days) > 1:
                shown = ", ".join(f"{show_date(d)} ({o.where})" for d, o in dates)
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
        return dataclasses.replace(d, message=message, field=element_path(origin.where, path))


_FIELD: Final = re.compile(r"(?P<key>attestations\.[^.]+|[^.\[]+(?:\[\d+\])?)(?:\.(?P<rest>.*))?")
