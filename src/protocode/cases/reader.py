"""Reading a case file: its YAML node tree walked into a `CaseSuite`, every problem located."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocode.cases.suite import STATUSES, VERDICTS, Case, CaseSuite, Expectation
from protocode.core.errors import Diagnostic, LoadError, did_you_mean
from protocode.core.source import Source, Span
from protocode.document.yamlsource import (
    YAML_TAG,
    Entry,
    compose,
    mapping_entries,
    node_span,
    read_source,
)
from protocode.screening import Status, Verdict

FORMAT_VERSION = 1
"""The value of the ``protocode-cases`` key this module reads."""


def load_cases(path: str | Path) -> CaseSuite:
    """Read and validate a case file.

    Raises `LoadError` carrying every problem found, each at ``path:line:col``: YAML
    syntax, unknown or missing keys, values of the wrong form, an unknown base, a field to
    unset that the base lacks, duplicate case names, bad statuses and verdicts. Whether
    the records are valid patient records, and whether the criterion ids exist, depends on
    the protocol: `run_cases` reports those per case.
    """
    path = Path(path)
    return _SuiteReader(read_source(path)).suite(path)


_STR, _TIMESTAMP, _INT, _FLOAT = (YAML_TAG + t for t in ("str", "timestamp", "int", "float"))
_BOOL, _NULL = YAML_TAG + "bool", YAML_TAG + "null"
_CONSTRUCTOR = SafeConstructor()
# Numbers are read as exact decimals, like the JSON record reader does: 1.05 is 21/20.
_PLAIN_DECIMAL = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")

_TOP_KEYS = ("protocode-cases", "bases", "cases")
_CASE_KEYS = ("name", "description", "base", "set", "unset", "expect")
_EXPECT_KEYS = ("status", "criteria", "missing", "notes")


class _SuiteReader:
    """Walks the composed YAML node tree (never constructed objects), collecting problems."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        self._open: set[int] = set()

    def error(self, code: str, message: str, node: Node) -> None:
        self.report(code, message, self.span(node))

    def report(self, code: str, message: str, span: Span) -> None:
        self.diagnostics.append(Diagnostic(code, message, span))

    def span(self, node: Node) -> Span:
        """The node's span, cut at the end of its first line to keep carets readable."""
        return node_span(self.source, node)

    def suite(self, path: Path) -> CaseSuite:
        root = compose(self.source, "the case file")
        entries = self.mapping(root, "the case file", _TOP_KEYS)
        if entries is None:
            raise LoadError(self.diagnostics)
        self._format(entries, root)
        bases: dict[str, dict[str, Any]] = {}
        if "bases" in entries:
            bases = self._bases(entries["bases"][1])
        cases: list[Case] = []
        if "cases" not in entries:
            self.error("schema", "missing required key 'cases'", root)
        else:
            cases = self._cases(entries["cases"][1], bases)
        if self.diagnostics:
            raise LoadError(self.diagnostics)
        return CaseSuite(path, tuple(cases), bases)

    def _format(self, entries: dict[str, Entry], root: Node) -> None:
        if "protocode-cases" not in entries:
            self.error("schema", "missing required key 'protocode-cases' (the format, 1)", root)
            return
        node = entries["protocode-cases"][1]
        if not (isinstance(node, ScalarNode) and node.tag == _INT and node.value == "1"):
            message = f"'protocode-cases' must be {FORMAT_VERSION}, the only format version"
            self.error("schema", message, node)

    # --- generic shapes

    def mapping(
        self, node: Node, what: str, allowed: Sequence[str] | None = None
    ) -> dict[str, Entry] | None:
        """Entries (key node, value node) by key text; None when `node` is not a mapping."""
        if not isinstance(node, MappingNode):
            self.error("schema", f"{what} must be a mapping, not {_kind(node)}", node)
            return None

        def known(key_node: ScalarNode) -> bool:
            if allowed is None or key_node.value in allowed:
                return True
            hint = did_you_mean(key_node.value, allowed, expected=True)
            self.error("schema", f"unknown key '{key_node.value}' in {what}{hint}", key_node)
            return False

        return mapping_entries(
            self.source, node, self.report, merge=self._refuse_merge, check_key=known
        )

    def _refuse_merge(self, key_node: Node, value_node: Node) -> tuple[()]:
        message = "merge keys ('<<') are not supported in case files; use a base"
        self.error("schema", message, key_node)
        return ()

    def text(self, node: Node, what: str) -> str | None:
        """A non-empty scalar's text, as written."""
        if not isinstance(node, ScalarNode) or node.tag == _NULL or not node.value.strip():
            self.error("schema", f"{what} must be a non-empty string, not {_kind(node)}", node)
            return None
        value: str = node.value
        return value

    def texts(self, node: Node, what: str) -> list[tuple[str, Node]] | None:
        """A list of strings (a single string is a list of one)."""
        items = node.value if isinstance(node, SequenceNode) else [node]
        out: list[tuple[str, Node]] = []
        for item in items:
            text = self.text(item, f"each entry of {what}")
            if text is None:
                return None
            out.append((text, item))
        return out

    def choice(self, node: Node, what: str, choices: Sequence[str]) -> str | None:
        text = node.value if isinstance(node, ScalarNode) and node.tag != _NULL else None
        if text in choices:
            return text
        listing = ", ".join(choices)
        shown = f"'{text}'" if text is not None else _kind(node)
        self.error("schema", f"{what} must be one of {listing}, not {shown}", node)
        return None

    def plain(self, node: Node) -> Any:
        """A record value: mappings, lists and scalars, numbers as exact `Decimal`s.

        Dates stay text, as the record format wants them; `null` is missing data.
        """
        key = id(node)
        if key in self._open:
            self.error("yaml-alias", "an alias may not refer to a node containing it", node)
            return None
        self._open.add(key)
        try:
            if isinstance(node, SequenceNode):
                return [self.plain(item) for item in node.value]
            if isinstance(node, MappingNode):
                entries = self.mapping(node, "a record value") or {}
                return {name: self.plain(value) for name, (_, value) in entries.items()}
            return self._scalar(node)
        finally:
            self._open.discard(key)

    def _scalar(self, node: Node) -> Any:
        assert isinstance(node, ScalarNode)
        tag, text = node.tag, node.value
        try:
            if tag in (_STR, _TIMESTAMP):
                return text
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return _CONSTRUCTOR.bool_values[text.lower()]
            if tag == _INT:
                return _CONSTRUCTOR.construct_yaml_int(node)
            if tag == _FLOAT:
                if _PLAIN_DECIMAL.fullmatch(text):
                    return Decimal(text)
                return _CONSTRUCTOR.construct_yaml_float(node)
        except (KeyError, ValueError, ConstructorError):
            self.error("yaml-tag", f"'{text}' is not a valid {tag.removeprefix(YAML_TAG)}", node)
            return None
        self.error("yaml-tag", f"unsupported YAML tag '{tag}' in a case file", node)
        return None

    # --- sections

    def _bases(self, node: Node) -> dict[str, dict[str, Any]]:
        entries = self.mapping(node, "'bases'")
        bases: dict[str, dict[str, Any]] = {}
        for name, (_, value) in (entries or {}).items():
            fields = self.mapping(value, f"base '{name}'")
            if fields is None:
                continue
            if "id" in fields:
                message = "a base has no 'id': each case's record id is its name"
                self.error("schema", message, fields["id"][0])
            bases[name] = {
                key: self.plain(field_node)
                for key, (_, field_node) in fields.items()
                if key != "id"
            }
        return bases

    def _cases(self, node: Node, bases: dict[str, dict[str, Any]]) -> list[Case]:
        if not isinstance(node, SequenceNode):
            self.error("schema", f"'cases' must be a list, not {_kind(node)}", node)
            return []
        cases: list[Case] = []
        first_line: dict[str, int] = {}
        for item in node.value:
            case = self._case(item, bases)
            if case is None:
                continue
            if case.name in first_line:
                message = (
                    f"duplicate case name '{case.name}' (first on line {first_line[case.name]})"
                )
                self.report("duplicate-name", message, case.span)
                continue
            first_line[case.name] = case.span.line
            cases.append(case)
        return cases

    def _case(self, node: Node, bases: dict[str, dict[str, Any]]) -> Case | None:
        entries = self.mapping(node, "a case", _CASE_KEYS)
        if entries is None:
            return None
        before = len(self.diagnostics)
        for required in ("name", "expect"):
            if required not in entries:
                self.error("schema", f"missing required key '{required}' in a case", node)
        name = self.text(entries["name"][1], "'name'") if "name" in entries else None
        description = ""
        if "description" in entries:
            description = self.text(entries["description"][1], "'description'") or ""
        base_name: str | None = None
        record: dict[str, Any] = {}
        base_known = True
        if "base" in entries:
            base_node = entries["base"][1]
            base_name = self.text(base_node, "'base'")
            base_known = base_name in bases
            if base_name is not None and not base_known:
                hint = did_you_mean(base_name, bases, expected=True)
                message = f"unknown base '{base_name}'{hint}"
                self.error("unknown-base", message, base_node)
            record = dict(bases.get(base_name or "", {}))
        known = dict.fromkeys(record)
        changed: dict[str, None] = {}
        if "set" in entries:
            fields = self.mapping(entries["set"][1], "'set'") or {}
            for key, (key_node, value_node) in fields.items():
                if key == "id":
                    message = "'set' cannot change the record id: it is the case name"
                    self.error("schema", message, key_node)
                    continue
                record[key] = self.plain(value_node)
                changed[key] = None
        if "unset" in entries:
            for key, key_node in self.texts(entries["unset"][1], "'unset'") or ():
                if key in changed:
                    self.error("schema", f"'{key}' is both set and unset", key_node)
                elif key not in known and base_known:
                    where = f"base '{base_name}'" if base_name else "the record (no base)"
                    hint = did_you_mean(key, known, expected=True)
                    message = f"cannot unset '{key}': {where} has no such field{hint}"
                    self.error("schema", message, key_node)
                else:
                    record.pop(key, None)
        expect = self._expect(entries["expect"][1]) if "expect" in entries else None
        if name is None or expect is None or len(self.diagnostics) > before:
            return None
        record["id"] = name
        span = self.span(entries["name"][1])
        return Case(name, record, expect, span, base_name, description)

    def _expect(self, node: Node) -> Expectation | None:
        entries = self.mapping(node, "'expect'", _EXPECT_KEYS)
        if entries is None:
            return None
        if not entries:
            message = "'expect' needs at least one of status, criteria, missing, notes"
            self.error("schema", message, node)
            return None
        spans: dict[str, Span] = {}
        status: Status | None = None
        if "status" in entries:
            value = entries["status"][1]
            chosen = self.choice(value, "'status'", STATUSES)
            status = next((s for s in STATUSES if s == chosen), None)
            spans["status"] = self.span(value)
        criteria: list[tuple[str, Verdict]] = []
        if "criteria" in entries:
            for cid, (_, value) in (
                self.mapping(entries["criteria"][1], "'criteria'") or {}
            ).items():
                chosen = self.choice(value, f"the verdict of {cid}", VERDICTS)
                criteria.extend((cid, v) for v in VERDICTS if v == chosen)
                spans[f"criterion {cid}"] = self.span(value)
        missing: tuple[str, ...] | None = None
        if "missing" in entries:
            value = entries["missing"][1]
            if isinstance(value, SequenceNode) and not value.value:
                missing = ()
            else:
                listed = self.texts(value, "'missing'")
                missing = tuple(t for t, _ in listed) if listed is not None else None
            spans["missing"] = self.span(value)
        notes: list[tuple[str, tuple[str, ...]]] = []
        if "notes" in entries:
            for cid, (_, value) in (self.mapping(entries["notes"][1], "'notes'") or {}).items():
                listed = self.texts(value, f"the notes of {cid}")
                if listed is not None:
                    notes.append((cid, tuple(t for t, _ in listed)))
                spans[f"notes {cid}"] = self.span(value)
        return Expectation(status, tuple(criteria), missing, tuple(notes), spans)


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "empty"
    return f"'{node.value}'"
