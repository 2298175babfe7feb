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

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from protocode.core.errors import Diagnostic, RecordError
from protocode.records import Record, RecordReader
from protocode.records.fhir.files import Raw, raw_resources
from protocode.records.fhir.mapping import FhirMapping
from protocode.records.fhir.patient import Patient
from protocode.records.fhir.resources import Bad, Resource, element_path, validate
from protocode.records.fhir.values import Warn

__all__ = ["READ_TYPES", "read_fhir", "records_from_resources"]

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
_PATIENT_REF: Final = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]*)?\Z")


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
    raws = [Raw(r[0], r[1], r[2] if len(r) > 2 else None) for r in resources]
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
    yield from _records(raw_resources(path), reader, mapping, warn)


def _ignore(_: Diagnostic) -> None:
    pass


def _records(
    raws: list[Raw], reader: RecordReader, mapping: FhirMapping | None, warn: Warn | None
) -> Iterator[Record | RecordError]:
    if mapping is None:
        mapping = FhirMapping.build(reader.items.values(), reader.attestations)
    report = warn or _ignore
    checked = [validate(raw) for raw in raws]
    patients: dict[str, Patient] = {}
    keys: dict[str, str] = {}  # reference -> patient id
    medications: dict[str, Any] = {}
    orphans: list[RecordError] = []
    ignored: Counter[str] = Counter()
    for res in checked:
        if isinstance(res, Resource) and res.type == "Patient":
            if not res.id:
                orphans.append(_orphan(res.where, res.label, "", "a Patient needs an id"))
                continue
            patient = patients.get(res.id)
            if patient is None:
                patient = patients[res.id] = Patient(res.id, mapping, report)
            patient.patient(res)
            keys[f"Patient/{res.id}"] = res.id
            if res.full_url:
                keys[res.full_url] = res.id
        elif isinstance(res, Resource) and res.type == "Medication":
            for key in (f"Medication/{res.id}" if res.id else None, res.full_url):
                if key:
                    medications[key] = res.model
        elif isinstance(res, Bad) and res.patient_id is not None:
            if res.patient_id not in patients:
                patients[res.patient_id] = Patient(res.patient_id, mapping, report)
            keys[f"Patient/{res.patient_id}"] = res.patient_id

    def owner(ref: str | None) -> Patient | None:
        if ref is None:
            return None
        pid = keys.get(ref)
        if pid is None:
            match = _PATIENT_REF.search(ref)
            pid = keys.get(f"Patient/{match[1]}") if match else None
        return patients.get(pid) if pid is not None else None

    for res in checked:
        if isinstance(res, Bad):
            patient = patients[res.patient_id] if res.patient_id else owner(res.patient_ref)
            problems = [
                Diagnostic(
                    "malformed",
                    f"{res.label}: {message}",
                    record_id=patient.pid if patient else res.where,
                    field=element_path(res.where, path),
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
    diagnostic = Diagnostic(
        code, f"{label}: {message}", record_id=where, field=element_path(where, path)
    )
    return RecordError([diagnostic])
