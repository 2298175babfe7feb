"""Which FHIR codes feed which data item: the protocol's own codes plus a mapping file.

A data item's ``codes:`` (LOINC, SNOMED CT, RxNorm, ATC) map every FHIR coding with that
system and code to the item; a mapping file (`records.fhir.mapfile`) adds codes for items
without them, attestations, answer codes and the Patient/ResearchSubject elements.
`FhirMapping.build` checks the file against the protocol's dictionary (unknown items, a
Patient element mapped to an item of the wrong kind, a value an item cannot take) and reports
every problem with its place in the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from protocode.core.errors import Diagnostic, LoadError, did_you_mean
from protocode.core.source import Span
from protocode.document.model import DataItem
from protocode.records.fhir.codes import SYSTEMS, Code, system_key
from protocode.records.fhir.mapfile import MapFile


@dataclass(frozen=True, slots=True)
class Target:
    """Where a matching resource goes: a data item, or an attestation.

    `value` is the item value a matching resource implies by being there (a Condition coded
    B-ALL gives ``diagnosis = "B-ALL"``); None when the resource carries its own value.
    """

    name: str
    attestation: bool = False
    value: str | int | bool | None = None


@dataclass(frozen=True, slots=True)
class FhirMapping:
    """Codes → targets for one protocol's dictionary, and where Patient elements go."""

    items: Mapping[str, DataItem]
    attestations: tuple[str, ...]
    targets: Mapping[Code, tuple[Target, ...]]
    answers: Mapping[str, Mapping[Code, str | int | bool]]
    item_system: str | None
    birth_date: str | None
    gender: str | None
    deceased: str | None
    enrollment: str | None

    @classmethod
    def build(
        cls, items: Iterable[DataItem], attestations: Sequence[str], file: MapFile | None = None
    ) -> FhirMapping:
        """The mapping of a dictionary: its own codes, the defaults, and `file` if given.

        Raises `LoadError` when the file names an unknown item or attestation, maps a
        Patient element to an item of the wrong kind or type, or gives an impossible value.
        """
        by_name = {item.name: item for item in items}
        problems: list[Diagnostic] = []
        targets: dict[Code, dict[str, Target]] = {}

        def add(code: Code, target: Target) -> None:
            targets.setdefault(code, {})[target.name] = target

        for item in by_name.values():
            for system, code in item.codes:
                if system in SYSTEMS:
                    add((SYSTEMS[system], str(code)), Target(item.name))

        def check_name(name: str, span: Span, attestation: bool = False) -> bool:
            known = attestations if attestation else tuple(by_name)
            if name in known:
                return True
            what = "attestation" if attestation else "data item"
            problems.append(
                Diagnostic("unknown-item", f"no {what} '{name}'{did_you_mean(name, known)}", span)
            )
            return False

        answers: dict[str, dict[Code, str | int | bool]] = {}
        if file is not None:
            for entry in file.items:
                if not check_name(entry.target, entry.span):
                    continue
                value = None
                if entry.value is not None:
                    value = _item_value(by_name[entry.target], entry.value, entry.span, problems)
                add(entry.code, Target(entry.target, value=value))
            for entry in file.attestations:
                if check_name(entry.target, entry.span, attestation=True):
                    add(entry.code, Target(entry.target, attestation=True))
            for name, text, answer, span in file.values:
                if name not in by_name:
                    continue  # reported with the item's codes
                value = _item_value(by_name[name], text, span, problems)
                if value is not None:
                    answers.setdefault(name, {})[answer] = value
            for name, span in file.item_spans.items():
                if name not in by_name and not any(e.target == name for e in file.items):
                    check_name(name, span)

        def element(
            where: dict[str, tuple[str | None, Span]], key: str, default: str | None, kinds: str
        ) -> str | None:
            if key not in where:
                return default
            name, span = where[key]
            if name is None:
                return None
            if not check_name(name, span):
                return None
            item = by_name[name]
            if f"{item.kind}:{item.type}" not in kinds.split() and item.kind not in kinds.split():
                message = f"'{key}' cannot go to '{name}' ({item.kind} of type {item.type})"
                problems.append(Diagnostic("bad-mapping", message, span))
                return None
            return name

        patient = file.patient if file is not None else {}
        subject = file.research_subject if file is not None else {}
        birth = element(patient, "birthDate", _default_birth_date(by_name), "fact:date")
        gender = element(patient, "gender", _default_gender(by_name), "fact:code")
        deceased = element(patient, "deceased", None, "event")
        enrollment = element(subject, "period.start", _default_enrollment(by_name), "anchor")
        if problems:
            raise LoadError(problems)
        return cls(
            items=by_name,
            attestations=tuple(attestations),
            targets={code: tuple(found.values()) for code, found in targets.items()},
            answers=answers,
            item_system=file.item_system if file is not None else None,
            birth_date=birth,
            gender=gender,
            deceased=deceased,
            enrollment=enrollment,
        )

    def match(self, codes: Iterable[Code]) -> tuple[Target, ...]:
        """The targets of a resource's codings, each once, in coding order."""
        found: dict[tuple[bool, str], Target] = {}
        for system, code in codes:
            key = (system_key(system), code)
            for target in self.targets.get(key, ()):
                found.setdefault((target.attestation, target.name), target)
            if self.item_system is not None and key[0] == self.item_system:
                if code in self.items:
                    found.setdefault((False, code), Target(code))
                elif code in self.attestations:
                    found.setdefault((True, code), Target(code, attestation=True))
        return tuple(found.values())


def _item_value(
    item: DataItem, text: str, span: Span, problems: list[Diagnostic]
) -> str | int | bool | None:
    """A value written in the mapping file, read as `item` reads values."""
    if item.type == "code" and text in item.values:
        return text
    if item.type == "integer" and text.lstrip("-").isdigit():
        return int(text)
    if item.type == "boolean" and text in ("true", "false"):
        return text == "true"
    if item.type == "text":
        return text
    expected = {
        "code": f"one of {', '.join(item.values)}",
        "integer": "an integer",
        "boolean": "true or false",
    }.get(item.type)
    message = (
        f"'{text}' is not a value of '{item.name}' (expected {expected})"
        if expected
        else f"'{item.name}' is of type {item.type}: its values cannot be given as codes"
    )
    problems.append(Diagnostic("bad-value", message, span))
    return None


# LOINC "Sex" and "Sex assigned at birth".
_SEX_CODES: Final = frozenset({("loinc", "46098-0"), ("loinc", "76689-9")})


def _default_birth_date(items: Mapping[str, DataItem]) -> str | None:
    item = items.get("birth_date")
    fits = item is not None and item.kind == "fact" and item.type == "date"
    return "birth_date" if fits else None


def _default_gender(items: Mapping[str, DataItem]) -> str | None:
    for item in items.values():
        if item.kind == "fact" and item.type == "code" and _SEX_CODES & set(item.codes):
            return item.name
    sex = items.get("sex")
    return "sex" if sex is not None and sex.kind == "fact" and sex.type == "code" else None


def _default_enrollment(items: Mapping[str, DataItem]) -> str | None:
    item = items.get("enrollment")
    return "enrollment" if item is not None and item.kind == "anchor" else None
