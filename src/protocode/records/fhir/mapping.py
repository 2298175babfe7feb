"""Which FHIR codes feed which data item: the protocol's own codes plus a mapping file.

A data item's ``codes:`` (LOINC, SNOMED CT, RxNorm, ATC) map every FHIR coding with that
system and code to the item. Items without codes, attestations, answer codes of coded values
and the Patient/ResearchSubject elements are given by a mapping file (YAML, see
``docs/fhir.md``):

.. code-block:: yaml

    protocode-fhir-map: 1
    item-system: https://example.org/fhir/CodeSystem/my-trial   # code = item name
    patient: {birthDate: birth_date, gender: sex, deceased: death}
    research-subject: {period.start: enrollment}
    items:
      diagnosis:
        - {snomed: "91857003", value: B-ALL}
      ecog:
        codes: [{loinc: "89247-1"}]
        values: {0: [{loinc: LA9622-7}], 1: [{loinc: LA9623-5}]}
    attestations:
      informed_consent: [{system: https://example.org/consent, code: signed}]

`FhirMapping.build` checks the file against the protocol's dictionary (unknown items, a
Patient element mapped to an item of the wrong kind, a value an item cannot take) and reports
every problem with its place in the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocode.core.errors import Diagnostic, LoadError, did_you_mean
from protocode.core.source import Source, Span
from protocode.document.model import DataItem
from protocode.document.yamlsource import compose, mapping_entries, node_span, read_source

__all__ = ["SYSTEMS", "FhirMapping", "MapFile", "Target", "load_map", "system_key"]

SYSTEMS: Final[dict[str, str]] = {
    "loinc": "http://loinc.org",
    "snomed": "http://snomed.info/sct",
    "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "atc": "http://www.whocc.no/atc",
}
"""The terminologies of the data dictionary's ``codes:`` and their FHIR system URIs."""

# Other spellings of the same systems seen in FHIR data (HL7 OIDs; a trailing slash).
_ALIASES: Final[dict[str, str]] = {
    "urn:oid:2.16.840.1.113883.6.1": "http://loinc.org",
    "urn:oid:2.16.840.1.113883.6.96": "http://snomed.info/sct",
    "urn:oid:2.16.840.1.113883.6.88": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "urn:oid:2.16.840.1.113883.6.73": "http://www.whocc.no/atc",
    "http://www.whocc.no/atc/": "http://www.whocc.no/atc",
    "http://snomed.info/sct/": "http://snomed.info/sct",
}

Code = tuple[str, str]
"""A coding as matched: (system URI, code)."""


def system_key(system: str) -> str:
    """The canonical URI of a code system (OID and slash spellings folded)."""
    return _ALIASES.get(system, system)


# Answer codes every mapping knows: they give `code` items the value of the same name (when
# the item has it) and `boolean` items true or false.
_SNOMED, _V2_0136 = SYSTEMS["snomed"], "http://terminology.hl7.org/CodeSystem/v2-0136"
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ANSWERS: Final[dict[Code, str]] = {
    (_SNOMED, "373066001"): "yes",
    (_SNOMED, "373067005"): "no",
    (_SNOMED, "10828004"): "positive",
    (_SNOMED, "260385009"): "negative",
    (_SNOMED, "52101004"): "present",
    (_SNOMED, "2667000"): "absent",
    (_V2_0136, "Y"): "yes",
    (_V2_0136, "N"): "no",
    (_INTERPRETATION, "POS"): "positive",
    (_INTERPRETATION, "NEG"): "negative",
    (_INTERPRETATION, "DET"): "positive",
    (_INTERPRETATION, "ND"): "negative",
}
TRUE_WORDS: Final = frozenset({"yes", "positive", "present"})
FALSE_WORDS: Final = frozenset({"no", "negative", "absent"})


@dataclass(frozen=True, slots=True)
class Target:
    """Where a matching resource goes: a data item, or an attestation.

    `value` is the item value a matching resource implies by being there (a Condition coded
    B-ALL gives ``diagnosis = "B-ALL"``); None when the resource carries its own value.
    """

    name: str
    attestation: bool = False
    value: str | int | bool | None = None


# --- the mapping file ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    """One code of the mapping file, with the item it maps to and where it was written."""

    target: str
    code: Code
    span: Span
    value: str | None = None


@dataclass(frozen=True, slots=True)
class MapFile:
    """A mapping file as written, before it is checked against a protocol."""

    path: str
    item_system: str | None = None
    patient: dict[str, tuple[str | None, Span]] = field(default_factory=dict)
    research_subject: dict[str, tuple[str | None, Span]] = field(default_factory=dict)
    items: tuple[_Entry, ...] = ()
    attestations: tuple[_Entry, ...] = ()
    # item -> (value text, code, span)
    values: tuple[tuple[str, str, Code, Span], ...] = ()
    item_spans: dict[str, Span] = field(default_factory=dict)


_PATIENT_KEYS: Final = ("birthDate", "gender", "deceased")
_SUBJECT_KEYS: Final = ("period.start",)
_TOP_KEYS: Final = (
    "protocode-fhir-map",
    "item-system",
    "patient",
    "research-subject",
    "items",
    "attestations",
)
_CODE_KEYS: Final = (*SYSTEMS, "system", "code", "value")


class _Walker:
    """Reads the mapping file's node tree, collecting every problem with its span."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.problems: list[Diagnostic] = []

    def report(self, code: str, message: str, span: Span) -> None:
        self.problems.append(Diagnostic(code, message, span))

    def span(self, node: Node) -> Span:
        return node_span(self.source, node)

    def mapping(self, node: Node, what: str) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            self.report("schema", f"{what} must be a mapping", self.span(node))
            return {}

        def no_merge(key: Node, value: Node) -> list[Mapping[str, tuple[Node, Node]]]:
            self.report("schema", "merge keys are not allowed here", self.span(key))
            return []

        return mapping_entries(self.source, node, self.report, merge=no_merge)

    def scalar(self, node: Node, what: str) -> str | None:
        if isinstance(node, ScalarNode):
            return str(node.value)
        self.report("schema", f"{what} must be a single value", self.span(node))
        return None

    def name_or_null(self, node: Node, what: str) -> str | None:
        if isinstance(node, ScalarNode) and node.tag.endswith(":null"):
            return None
        return self.scalar(node, what)

    def unknown_keys(self, entries: Mapping[str, tuple[Node, Node]], known: Sequence[str]) -> None:
        for key, (key_node, _) in entries.items():
            if key not in known:
                message = f"unknown key '{key}'{did_you_mean(key, known, expected=True)}"
                self.report("schema", message, self.span(key_node))

    def codes(self, node: Node, what: str) -> list[tuple[Code, Span, str | None]]:
        """A list of codes ({loinc: X}, {system: URI, code: X}, optional value)."""
        if not isinstance(node, SequenceNode):
            self.report("schema", f"{what} must be a list of codes", self.span(node))
            return []
        out: list[tuple[Code, Span, str | None]] = []
        for element in node.value:
            entries = self.mapping(element, "a code")
            self.unknown_keys(entries, _CODE_KEYS)
            given = {
                k: self.scalar(v, f"'{k}'") for k, (_, v) in entries.items() if k in _CODE_KEYS
            }
            short = [k for k in SYSTEMS if k in given]
            value = given.get("value")
            span = self.span(element)
            if len(short) == 1 and "system" not in given and "code" not in given:
                code = given[short[0]]
                if code is not None:
                    out.append(((SYSTEMS[short[0]], code), span, value))
            elif not short and given.get("system") and given.get("code"):
                system, code = given["system"], given["code"]
                assert system is not None and code is not None
                out.append(((system_key(system), code), span, value))
            else:
                message = (
                    "a code is one of {loinc: X}, {snomed: X}, {rxnorm: X}, {atc: X} "
                    "or {system: URI, code: X}"
                )
                self.report("schema", message, span)
        return out


def load_map(path: Path) -> MapFile:
    """Read a mapping file; raises `LoadError` with every problem of its form."""
    source = read_source(path)
    walker = _Walker(source)
    root = compose(source, "the FHIR mapping file")
    top = walker.mapping(root, "the mapping file")
    walker.unknown_keys(top, _TOP_KEYS)
    if "protocode-fhir-map" not in top:
        walker.report(
            "schema", "missing 'protocode-fhir-map: 1' (the format version)", walker.span(root)
        )
    else:
        version_node = top["protocode-fhir-map"][1]
        if walker.scalar(version_node, "the format version") not in ("1", None):
            message = "unknown format version (expected 1)"
            walker.report("schema", message, walker.span(version_node))
    item_system = None
    if "item-system" in top:
        item_system = walker.scalar(top["item-system"][1], "item-system")

    def names(key: str, known: Sequence[str]) -> dict[str, tuple[str | None, Span]]:
        if key not in top:
            return {}
        entries = walker.mapping(top[key][1], f"'{key}'")
        walker.unknown_keys(entries, known)
        return {
            k: (walker.name_or_null(v, f"'{k}'"), walker.span(v))
            for k, (_, v) in entries.items()
            if k in known
        }

    patient = names("patient", _PATIENT_KEYS)
    subject = names("research-subject", _SUBJECT_KEYS)
    items: list[_Entry] = []
    values: list[tuple[str, str, Code, Span]] = []
    item_spans: dict[str, Span] = {}
    if "items" in top:
        for name, (key_node, value_node) in walker.mapping(top["items"][1], "'items'").items():
            item_spans[name] = walker.span(key_node)
            if isinstance(value_node, MappingNode):
                entries = walker.mapping(value_node, f"item '{name}'")
                walker.unknown_keys(entries, ("codes", "values"))
                if "codes" in entries:
                    for code, span, value in walker.codes(entries["codes"][1], "'codes'"):
                        items.append(_Entry(name, code, span, value))
                if "values" in entries:
                    answers = walker.mapping(entries["values"][1], "'values'")
                    for text, (_, codes_node) in answers.items():
                        for code, span, _ in walker.codes(codes_node, f"value '{text}'"):
                            values.append((name, text, code, span))
            else:
                for code, span, value in walker.codes(value_node, f"item '{name}'"):
                    items.append(_Entry(name, code, span, value))
    attestations: list[_Entry] = []
    if "attestations" in top:
        entries = walker.mapping(top["attestations"][1], "'attestations'")
        for name, (_, value_node) in entries.items():
            for code, span, value in walker.codes(value_node, f"attestation '{name}'"):
                if value is not None:
                    walker.report("schema", "an attestation's code takes no 'value'", span)
                attestations.append(_Entry(name, code, span))
    if walker.problems:
        raise LoadError(walker.problems)
    return MapFile(
        str(path), item_system, patient, subject, tuple(items), tuple(attestations),
        tuple(values), item_spans,
    )  # fmt: skip


# --- the mapping checked against a protocol ------------------------------------------------


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
