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

The form of the file is the JSON Schema ``schemas/fhir-map.schema.json``, validated the way
protocol files are (`document.schema.validate`) with the mapping file's own words
(`MapWording`). `FhirMapping.build` then checks the file against the protocol's dictionary
(unknown items, a Patient element mapped to an item of the wrong kind, a value an item cannot
take) and reports every problem with its place in the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocode.core.errors import LoadError, did_you_mean
from protocode.core.files import read_source
from protocode.core.source import Span
from protocode.document.plain import PlainTree, Reading, ValuePath
from protocode.document.schema import (
    SchemaError,
    Worded,
    Wording,
    shipped_validator,
    validate,
)
from protocode.document.yamlsource import YAML_TAG, compose
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


_NULL = YAML_TAG + "null"
_READING: Final = Reading(
    files="FHIR mapping files", merge_refused="merge keys are not allowed here"
)
_MISSING_VERSION: Final = "missing 'protocode-fhir-map: 1' (the format version)"
_UNKNOWN_VERSION: Final = "unknown format version (expected 1)"
_CODE_SHAPE: Final = (
    "a code is one of {loinc: X}, {snomed: X}, {rxnorm: X}, {atc: X} or {system: URI, code: X}"
)

_PATIENT_KEYS: Final = ("birthDate", "gender", "deceased")
_SUBJECT_KEYS: Final = ("period.start",)
_CODE_KEYS: Final = (*SYSTEMS, "system", "code", "value")


def load_map(path: Path) -> MapFile:
    """Read a mapping file; raises `LoadError` with every problem of its form."""
    source = read_source(path)
    tree = PlainTree(source, compose(source, "the FHIR mapping file"), _READING)
    validate(tree, shipped_validator("fhir-map"), MapWording())
    top = tree.entries(tree.root) if isinstance(tree.root, MappingNode) else {}
    version = top.get("protocode-fhir-map")
    if version is not None and isinstance(version[1], ScalarNode) and version[1].value != "1":
        # JSON Schema compares numbers by value (1.0 and 01 are 1); the version is written 1.
        tree.error("schema", _UNKNOWN_VERSION, tree.span(version[1]))
    found = _MapReader(tree).read(str(path), top)
    if tree.diagnostics:
        raise LoadError(tree.diagnostics)
    return found


class MapWording(Wording):
    """The mapping file's messages for schema errors (``'codes' must be a list of codes``)."""

    def describe(self, path: ValuePath) -> str:
        """A value by its place: ``item 'ecog'``, ``value '1'``, ``a code``, ``'loinc'``."""
        if not path:
            return "the mapping file"
        last = path[-1]
        if path == ("protocode-fhir-map",):
            return "the format version"
        if path == ("item-system",):
            return "item-system"
        if isinstance(last, int):
            return "a code"
        if len(path) == 2 and path[0] in ("items", "attestations"):
            return f"{'item' if path[0] == 'items' else 'attestation'} '{last}'"
        if len(path) == 4 and path[2] == "values":
            return f"value '{last}'"
        return f"'{last}'"

    def on_type(self, error: SchemaError) -> Worded:
        """A value of the wrong form: a mapping, a list of codes, or a single value."""
        what = self.describe(error.path)
        if error.expected == "object":
            worded = [(f"{what} must be a mapping", error.span())]
            if not error.path:
                worded.append((_MISSING_VERSION, error.span()))
            elif isinstance(error.path[-1], int):
                worded.append((_CODE_SHAPE, error.span()))
            return worded
        if error.expected == "array":
            return [(f"{what} must be a list of codes", error.span())]
        return [(f"{what} must be a single value", error.span())]

    def on_additional_properties(self, error: SchemaError) -> Worded:
        """Each unknown key, at the key, with the closest known one or the known ones."""
        allowed = list(error.schema.get("properties", {}))
        return [
            (f"unknown key '{name}'{did_you_mean(name, allowed, expected=True)}", error.span(key))
            for name, (key, _) in error.tree.entries(error.node).items()
            if name not in allowed
        ]

    def on_required(self, error: SchemaError) -> Worded:
        """The format version, the one key a mapping file needs."""
        return [(_MISSING_VERSION, error.span())]

    def on_enum(self, error: SchemaError) -> Worded:
        """A format version that is not 1 (one that is no single value is said so already)."""
        if not isinstance(error.node, ScalarNode):
            return []
        return [(_UNKNOWN_VERSION, error.span())]

    def on_any_of(self, error: SchemaError) -> Worded:
        """A code in none of its forms."""
        return [(_CODE_SHAPE, error.span())]


class _MapReader:
    """Reads the entries of a mapping file whose form the schema accepted, as written."""

    def __init__(self, tree: PlainTree) -> None:
        self.tree = tree

    def mapping(self, node: Node | None) -> dict[str, tuple[Node, Node]]:
        """The entries of a mapping node; none for any other node."""
        return dict(self.tree.entries(node)) if isinstance(node, MappingNode) else {}

    def read(self, path: str, top: dict[str, tuple[Node, Node]]) -> MapFile:
        """The mapping file as written; problems left are the attestations' values."""
        tree = self.tree
        item_system = _text(top["item-system"][1]) if "item-system" in top else None
        patient = self.names(top, "patient", _PATIENT_KEYS)
        subject = self.names(top, "research-subject", _SUBJECT_KEYS)
        items: list[MapEntry] = []
        values: list[tuple[str, str, Code, Span]] = []
        item_spans: dict[str, Span] = {}
        for name, (key_node, value_node) in self.mapping(top.get("items", (None, None))[1]).items():
            item_spans[name] = tree.span(key_node)
            if isinstance(value_node, MappingNode):
                entries = self.mapping(value_node)
                if "codes" in entries:
                    for code, span, value in self.codes(entries["codes"][1]):
                        items.append(MapEntry(name, code, span, value))
                answers = self.mapping(entries["values"][1]) if "values" in entries else {}
                for text, (_, codes_node) in answers.items():
                    for code, span, _ in self.codes(codes_node):
                        values.append((name, text, code, span))
            else:
                for code, span, value in self.codes(value_node):
                    items.append(MapEntry(name, code, span, value))
        attestations: list[MapEntry] = []
        attested = self.mapping(top.get("attestations", (None, None))[1])
        for name, (_, value_node) in attested.items():
            for code, span, value in self.codes(value_node):
                if value is not None:
                    tree.error("schema", "an attestation's code takes no 'value'", span)
                attestations.append(MapEntry(name, code, span))
        return MapFile(
            path, item_system, patient, subject, tuple(items), tuple(attestations),
            tuple(values), item_spans,
        )  # fmt: skip

    def names(
        self, top: dict[str, tuple[Node, Node]], key: str, known: Sequence[str]
    ) -> dict[str, tuple[str | None, Span]]:
        """Where each element of ``patient`` or ``research-subject`` goes (None: nowhere)."""
        entries = self.mapping(top[key][1]) if key in top else {}
        return {
            k: (None if v.tag == _NULL else _text(v), self.tree.span(v))
            for k, (_, v) in entries.items()
            if k in known
        }

    def codes(self, node: Node) -> list[tuple[Code, Span, str | None]]:
        """The well-formed codes of a list: (system, code), where, and the implied value."""
        out: list[tuple[Code, Span, str | None]] = []
        for element in node.value if isinstance(node, SequenceNode) else ():
            given = {k: _text(v) for k, (_, v) in self.mapping(element).items() if k in _CODE_KEYS}
            short = [k for k in SYSTEMS if k in given]
            span = self.tree.span(element)
            value = given.get("value")
            if len(short) == 1 and "system" not in given and "code" not in given:
                code = given[short[0]]
                if code is not None:
                    out.append(((SYSTEMS[short[0]], code), span, value))
            elif not short and given.get("system") and given.get("code"):
                system, code = given["system"], given["code"]
                assert system is not None and code is not None
                out.append(((system_key(system), code), span, value))
        return out


def _text(node: Node) -> str | None:
    """A scalar's text as written; None for a list or a mapping."""
    return str(node.value) if isinstance(node, ScalarNode) else None
