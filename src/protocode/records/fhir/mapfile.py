"""The FHIR mapping file as written: read, its form checked, every problem located.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocode.core.errors import Diagnostic, LoadError, did_you_mean
from protocode.core.source import Source, Span
from protocode.document.yamlsource import compose, mapping_entries, node_span, read_source
from protocode.records.fhir.codes import SYSTEMS, Code, system_key


@dataclass(frozen=True, slots=True)
class MapEntry:
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
    items: tuple[MapEntry, ...] = ()
    attestations: tuple[MapEntry, ...] = ()
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
    items: list[MapEntry] = []
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
                        items.append(MapEntry(name, code, span, value))
                if "values" in entries:
                    answers = walker.mapping(entries["values"][1], "'values'")
                    for text, (_, codes_node) in answers.items():
                        for code, span, _ in walker.codes(codes_node, f"value '{text}'"):
                            values.append((name, text, code, span))
            else:
                for code, span, value in walker.codes(value_node, f"item '{name}'"):
                    items.append(MapEntry(name, code, span, value))
    attestations: list[MapEntry] = []
    if "attestations" in top:
        entries = walker.mapping(top["attestations"][1], "'attestations'")
        for name, (_, value_node) in entries.items():
            for code, span, value in walker.codes(value_node, f"attestation '{name}'"):
                if value is not None:
                    walker.report("schema", "an attestation's code takes no 'value'", span)
                attestations.append(MapEntry(name, code, span))
    if walker.problems:
        raise LoadError(walker.problems)
    return MapFile(
        str(path), item_system, patient, subject, tuple(items), tuple(attestations),
        tuple(values), item_spans,
    )  # fmt: skip
