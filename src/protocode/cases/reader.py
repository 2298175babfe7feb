"""Reading a case file: validated against ``cases.schema.json``, then built into a `CaseSuite`.

The form of the file (keys, types, statuses, verdicts) is the JSON Schema's, validated the way
protocol files are (`document.schema.validate`), each problem at its place with the case
file's own words (`CaseWording`). What a schema cannot say is checked here: that a base
exists, that a field to unset is in the base and not also set, that case names are unique.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocode.cases.suite import STATUSES, VERDICTS, Case, CaseSuite, Expectation
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
from protocode.screening import Status, Verdict

FORMAT_VERSION = 1
"""The value of the ``protocode-cases`` key this module reads."""

_FLOAT, _NULL = YAML_TAG + "float", YAML_TAG + "null"
# Numbers are read as exact decimals, like the JSON record reader does: 1.05 is 21/20.
_PLAIN_DECIMAL = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_READING = Reading(
    files="case files",
    merge_refused="merge keys ('<<') are not supported in case files; use a base",
)
_REQUIRED = {
    "protocode-cases": "missing required key 'protocode-cases' (the format, 1)",
    "cases": "missing required key 'cases'",
}
_EXPECTED = {"status": STATUSES, "verdict": VERDICTS}


def load_cases(path: str | Path) -> CaseSuite:
    """Read and validate a case file.

    Raises `LoadError` carrying every problem found, each at ``path:line:col``: YAML
    syntax, unknown or missing keys, values of the wrong form, an unknown base, a field to
    unset that the base lacks, duplicate case names, bad statuses and verdicts. Whether
    the records are valid patient records, and whether the criterion ids exist, depends on
    the protocol: `run_cases` reports those per case.
    """
    path = Path(path)
    source = read_source(path)
    tree = PlainTree(source, compose(source, "the case file"), _READING)
    validate(tree, shipped_validator("cases"), CaseWording())
    builder = _SuiteBuilder(tree)
    cases = builder.cases()
    if tree.diagnostics:
        raise LoadError(tree.diagnostics)
    return CaseSuite(path, tuple(cases), builder.bases)


class CaseWording(Wording):
    """The case file's messages for schema errors (``'status' must be one of …, not 'x'``)."""

    def describe(self, path: ValuePath) -> str:
        """A value by its place: ``'cases'``, ``a case``, ``the verdict of I1``, …"""
        if not path:
            return "the case file"
        if len(path) == 1:
            return f"'{path[0]}'"
        if len(path) == 2:
            return f"base '{path[1]}'" if path[0] == "bases" else "a case"
        last, parent = path[-1], path[-2]
        if parent == "criteria" and len(path) == 5:
            return f"the verdict of {last}"
        if parent == "notes" and len(path) == 5:
            return f"each entry of the notes of {last}"
        if len(path) == 6 and path[-3] == "notes":
            return f"each entry of the notes of {parent}"
        if last in ("unset", "missing"):
            return f"each entry of '{last}'"
        if isinstance(last, int):
            return f"each entry of '{parent}'"
        return f"'{last}'"

    def on_type(self, error: SchemaError) -> Worded:
        """A value of the wrong form: a mapping, a list, or text, as the schema asks."""
        if error.path == ("protocode-cases",):
            return self.on_const(error)
        expected = error.expected
        if isinstance(expected, list):
            return self.on_pattern(error)
        wanted = "a mapping" if expected == "object" else "a list"
        message = f"{self.describe(error.path)} must be {wanted}, not {_kind(error.node)}"
        return [(message, error.span())]

    def on_pattern(self, error: SchemaError) -> Worded:
        """Text that is missing or blank."""
        what = self.describe(error.path)
        return [(f"{what} must be a non-empty string, not {_kind(error.node)}", error.span())]

    def on_const(self, error: SchemaError) -> Worded:
        """The format version, which only one value has."""
        message = f"'protocode-cases' must be {FORMAT_VERSION}, the only format version"
        return [(message, error.span())]

    def on_enum(self, error: SchemaError) -> Worded:
        """A status or verdict that is none of the choices, shown as written."""
        node = error.node
        listing = ", ".join(map(str, error.expected))
        written = isinstance(node, ScalarNode) and node.tag != _NULL
        shown = f"'{node.value}'" if written else _kind(node)
        return [
            (f"{self.describe(error.path)} must be one of {listing}, not {shown}", error.span())
        ]

    def on_required(self, error: SchemaError) -> Worded:
        """Each missing key, at the mapping that lacks it."""
        return [
            (_REQUIRED.get(name, f"missing required key '{name}' in a case"), error.span())
            for name in error.expected
            if name not in error.instance
        ]

    def on_min_properties(self, error: SchemaError) -> Worded:
        """An empty ``expect``."""
        message = "'expect' needs at least one of status, criteria, missing, notes"
        return [(message, error.span())]

    def on_not(self, error: SchemaError) -> Worded:
        """An ``id`` in a record: the case name is its id."""
        key_node = error.tree.entries(error.node)["id"][0]
        if error.path[-1] == "set":
            message = "'set' cannot change the record id: it is the case name"
        else:
            message = "a base has no 'id': each case's record id is its name"
        return [(message, error.span(key_node))]


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "empty"
    return f"'{node.value}'"


class _SuiteBuilder:
    """Checks what the schema cannot, then builds the cases of a file whose form is valid.

    Only the parts of the tree the schema accepted are read; a case with any problem inside
    it is left out, so that it is not also taken as the first of a duplicate name.
    """

    def __init__(self, tree: PlainTree) -> None:
        self.tree = tree
        self.top = tree.entries(tree.root) if isinstance(tree.root, MappingNode) else {}
        self.bases: dict[str, dict[str, Any]] = {}
        self._open: set[int] = set()
        version = self.top.get("protocode-cases")
        if version is not None and version[1].tag == _FLOAT:
            # JSON Schema reads 1.0 as the integer 1; the format version is written 1.
            message = f"'protocode-cases' must be {FORMAT_VERSION}, the only format version"
            tree.error("schema", message, self.span(version[1]))
        if "bases" in self.top and isinstance(self.top["bases"][1], MappingNode):
            for name, (_, node) in tree.entries(self.top["bases"][1]).items():
                if isinstance(node, MappingNode):
                    self.bases[name] = self.fields(node)

    def span(self, node: Node) -> Span:
        """The span of `node` in the case file."""
        return self.tree.span(node)

    def fields(self, node: MappingNode) -> dict[str, Any]:
        """A record's fields but ``id``, numbers as exact `Decimal`s."""
        entries = self.tree.entries(node)
        return {key: self.value(value) for key, (_, value) in entries.items() if key != "id"}

    def value(self, node: Node) -> Any:
        """A record value: mappings, lists and scalars, dates as text, null as missing."""
        key = id(node)
        if key in self._open or self.tree.is_bad(node):
            return None  # reported converting the tree
        self._open.add(key)
        try:
            if isinstance(node, SequenceNode):
                return [self.value(item) for item in node.value]
            if isinstance(node, MappingNode):
                entries = self.tree.entries(node)
                return {name: self.value(value) for name, (_, value) in entries.items()}
            if node.tag == _FLOAT and _PLAIN_DECIMAL.fullmatch(node.value):
                return Decimal(node.value)
            return self.tree.plain(node)
        finally:
            self._open.discard(key)

    def cases(self) -> list[Case]:
        """The valid cases in file order, reporting unknown bases, bad unsets, duplicates."""
        node = self.top["cases"][1] if "cases" in self.top else None
        if not isinstance(node, SequenceNode):
            return []
        cases: list[Case] = []
        first_line: dict[str, int] = {}
        for item in node.value:
            if not isinstance(item, MappingNode):
                continue
            before = len(self.tree.diagnostics)
            case = self._case(item)
            if case is None or self._has_problems(item) or len(self.tree.diagnostics) > before:
                continue
            if case.name in first_line:
                message = (
                    f"duplicate case name '{case.name}' (first on line {first_line[case.name]})"
                )
                self.tree.error("duplicate-name", message, case.span)
                continue
            first_line[case.name] = case.span.line
            cases.append(case)
        return cases

    def _has_problems(self, node: Node) -> bool:
        start, end = node.start_mark.index, node.end_mark.index
        return any(
            d.span is not None and start <= d.span.start < end for d in self.tree.diagnostics
        )

    def _case(self, node: MappingNode) -> Case | None:
        entries = self.tree.entries(node)
        name = _text(entries["name"][1]) if "name" in entries else None
        record: dict[str, Any] = {}
        base_name: str | None = None
        base_known = True
        if "base" in entries:
            base_node = entries["base"][1]
            base_name = _text(base_node)
            base_known = base_name in self.bases
            if base_name is not None and not base_known:
                hint = did_you_mean(base_name, self.bases, expected=True)
                message = f"unknown base '{base_name}'{hint}"
                self.tree.error("unknown-base", message, self.span(base_node))
            record = dict(self.bases.get(base_name or "", {}))
        known = dict.fromkeys(record)
        changed: dict[str, None] = {}
        if "set" in entries and isinstance(entries["set"][1], MappingNode):
            for key, (_, value_node) in self.tree.entries(entries["set"][1]).items():
                if key != "id":
                    record[key] = self.value(value_node)
                    changed[key] = None
        unset = _texts(entries["unset"][1]) if "unset" in entries else None
        for key, key_node in unset or ():
            if key in changed:
                self.tree.error("schema", f"'{key}' is both set and unset", self.span(key_node))
            elif key not in known and base_known:
                where = f"base '{base_name}'" if base_name else "the record (no base)"
                hint = did_you_mean(key, known, expected=True)
                message = f"cannot unset '{key}': {where} has no such field{hint}"
                self.tree.error("schema", message, self.span(key_node))
            else:
                record.pop(key, None)
        description = _text(entries["description"][1]) if "description" in entries else None
        expect = self._expect(entries["expect"][1]) if "expect" in entries else None
        if name is None or expect is None:
            return None
        record["id"] = name
        span = self.span(entries["name"][1])
        return Case(name, record, expect, span, base_name, description or "")

    def _expect(self, node: Node) -> Expectation | None:
        if not isinstance(node, MappingNode):
            return None
        entries = self.tree.entries(node)
        spans: dict[str, Span] = {}
        status: Status | None = None
        if "status" in entries:
            value = entries["status"][1]
            status = next((s for s in STATUSES if s == value.value), None)
            spans["status"] = self.span(value)
        criteria: list[tuple[str, Verdict]] = []
        if "criteria" in entries and isinstance(entries["criteria"][1], MappingNode):
            for cid, (_, value) in self.tree.entries(entries["criteria"][1]).items():
                criteria.extend((cid, v) for v in VERDICTS if v == value.value)
                spans[f"criterion {cid}"] = self.span(value)
        missing: tuple[str, ...] | None = None
        if "missing" in entries:
            value = entries["missing"][1]
            missing = tuple(text for text, _ in _texts(value) or ())
            spans["missing"] = self.span(value)
        notes: list[tuple[str, tuple[str, ...]]] = []
        if "notes" in entries and isinstance(entries["notes"][1], MappingNode):
            for cid, (_, value) in self.tree.entries(entries["notes"][1]).items():
                notes.append((cid, tuple(text for text, _ in _texts(value) or ())))
                spans[f"notes {cid}"] = self.span(value)
        return Expectation(status, tuple(criteria), missing, tuple(notes), spans)


def _text(node: Node) -> str | None:
    """A scalar's text as written; None when it is no text (null, blank, not a scalar)."""
    if not isinstance(node, ScalarNode) or node.tag == _NULL or not node.value.strip():
        return None
    text: str = node.value
    return text


def _texts(node: Node) -> Sequence[tuple[str, Node]] | None:
    """The texts of a list of them, or of a single one; None when one is no text."""
    items = node.value if isinstance(node, SequenceNode) else [node]
    texts = [(_text(item), item) for item in items]
    return (
        [(text, item) for text, item in texts if text is not None]
        if all(text is not None for text, _ in texts)
        else None
    )
