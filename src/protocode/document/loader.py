"""Load a protocol YAML file into a `ProtocolDoc`, reporting every problem with its position.

Loading works on PyYAML's node tree, never its object constructor, so no tag in a file can
make the loader build arbitrary Python objects. It runs in passes:

1. compose the YAML into nodes (which carry source marks) and convert them to plain
   JSON-like values, checking tags and duplicate keys on the way;
2. validate the plain values against the shipped JSON Schema, mapping each error's path
   back to the node it concerns;
3. check what the schema cannot express: unique criterion ids, names, quantity strings.

Only when no pass found a problem is the `ProtocolDoc` built; otherwise one `LoadError`
carries all diagnostics. Rule strings keep the file offset of every character, so later
stages can point into quoted, escaped and block scalars.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocode.core.errors import Diagnostic, LoadError, did_you_mean
from protocode.core.exact import too_long
from protocode.core.source import Source, Span
from protocode.document.model import (
    Aggregate,
    Change,
    ChangeTargetKind,
    Criterion,
    CriterionKind,
    DataItem,
    Definition,
    DerivedClause,
    DerivedEvent,
    Endpoint,
    GradingTable,
    ItemKind,
    Metadata,
    Name,
    Phase,
    ProportionEndpoint,
    ProtocolDoc,
    Quantity,
    RuleText,
    Schedule,
    TableInput,
    TableRow,
    ValueType,
)
from protocode.document.yamlsource import (
    MERGE_TAG,
    YAML_TAG,
    Entry,
    compose,
    mapping_entries,
    node_span,
    read_source,
    scalar_offsets,
)

RESERVED_WORDS: frozenset[str] = frozenset(
    {
        *("and", "or", "not", "if", "then", "else", "true", "false", "between", "in", "is"),
        *("known", "missing", "within", "before", "after", "of", "latest", "earliest", "any"),
        *("no", "count", "ever", "as", "x", "ULN", "LLN"),
    }
)
"""Words of the rule language that cannot name a data item or a definition."""

_STR, _INT, _FLOAT, _BOOL, _NULL = (YAML_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = YAML_TAG + "map", YAML_TAG + "seq"
# Scalars kept as their text. Timestamps stay strings so that dates are interpreted in one
# place downstream; 'value' and 'merge' are what '=' and '<<' resolve to as plain values.
_TEXT_TAGS = frozenset({_STR, YAML_TAG + "timestamp", YAML_TAG + "value", MERGE_TAG})
_SCALAR_TAGS = _TEXT_TAGS | {_INT, _FLOAT, _BOOL, _NULL}
_STANDARD_TAGS = "!!str, !!int, !!float, !!bool, !!null, !!map and !!seq"
_CONSTRUCTOR = SafeConstructor()

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_QUANTITY = re.compile(r"(-?[0-9]+(?:\.[0-9]+)?) +(\S+)")
_QUANTITY_FIELDS = ("uln", "lln", "molar_mass")
_CRITERION_KINDS: tuple[CriterionKind, ...] = ("inclusion", "exclusion")
# Intents that compare eligible sets, which only a criterion decides.
_SET_INTENTS = frozenset({"relaxed", "tightened"})
# Sections whose keys are names chosen by the author, and what one entry is called.
_NAMED_SECTIONS = {"data": "data item", "definitions": "definition"}


def name_problem(name: str, noun: str) -> str | None:
    """Why `name` cannot name a data item or a definition (`noun` says which), or None.

    The one name rule of protocol files and of compiled JSON documents.
    """
    if not _IDENTIFIER.fullmatch(name):
        return (
            f"{noun} name '{name}' is not an identifier"
            " (letters, digits and '_', not starting with a digit)"
        )
    if name in RESERVED_WORDS:
        return f"{noun} name '{name}' is a reserved word of the rule language"
    return None


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def protocol_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of protocol files, as shipped in ``protocode/schemas``."""
    resource = resources.files("protocode") / "schemas" / "protocol.schema.json"
    schema: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return schema


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """A JSON Schema pattern compiled to read as ECMA-262 reads it: ``$`` ends the text.

    Python's ``$`` also matches before a final newline, so ``"I1\\n"`` would pass
    ``^[A-Za-z0-9]+$``; each ``$`` outside a character class becomes ``\\Z``.
    """
    out: list[str] = []
    at, in_class = 0, False
    while at < len(pattern):
        char = pattern[at]
        if char == "\\":
            out.append(pattern[at : at + 2])
            at += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
        at += 1
    return re.compile("".join(out))


SchemaValidator: Any = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, {"pattern": _ecma_pattern}
)
"""Draft 2020-12 validation with ECMA-262 patterns (see `ecma_regex`), for shipped schemas."""


@functools.cache
def _validator() -> Any:
    return SchemaValidator(protocol_schema())


def load_protocol(path: Path) -> ProtocolDoc:
    """Load and validate the protocol file at `path`.

    Raises `LoadError` carrying every problem found, sorted by position; a file that cannot
    be read or is not UTF-8 gives a single ``io`` diagnostic without a span.
    """
    return _load(read_source(path))


def load_protocol_text(text: str, path: str = "<protocol>") -> ProtocolDoc:
    """Load and validate protocol YAML given as text; `path` names it in diagnostics."""
    return _load(Source(path, text))


def _load(source: Source) -> ProtocolDoc:
    root = compose(source, "the protocol file")
    loader = _Loader(source, root)
    doc = loader.plain(root)
    for error in _validator().iter_errors(doc):
        loader.schema_error(error)
    loader.check(doc)
    if loader.diagnostics:
        raise LoadError(loader.diagnostics)
    return loader.build(doc)


class _Loader:
    """The passes over one file's node tree, collecting diagnostics as they go."""

    def __init__(self, source: Source, root: Node) -> None:
        self.source = source
        self.root = root
        self.diagnostics: list[Diagnostic] = []
        self._reported: set[tuple[str, int, int, str]] = set()
        # Keyed by node identity: an alias is the very node it refers to, so each node is
        # converted (and its problems reported) once however often it is referenced.
        self._plain: dict[int, Any] = {}
        self._entries: dict[int, dict[str, Entry]] = {}
        self._open: set[int] = set()
        # Nodes already reported as bad YAML; schema errors about them would be noise.
        self._bad: set[int] = set()
        self._required_done: set[tuple[tuple[str | int, ...], int]] = set()

    def error(self, code: str, message: str, span: Span) -> None:
        """Record a diagnostic, once: aliases and overlapping schema keywords repeat them."""
        key = (code, span.start, span.end, message)
        if key not in self._reported:
            self._reported.add(key)
            self.diagnostics.append(Diagnostic(code, message, span))

    # Pass 1: nodes to plain values.

    def plain(self, node: Node) -> Any:
        """The node as plain Python values, resolved as YAML 1.1 safe loading would."""
        key = id(node)
        if key in self._plain:
            return self._plain[key]
        if key in self._open:
            self._bad.add(key)
            self.error(
                "yaml-alias", "an alias may not refer to a node containing it", self.span(node)
            )
            return None
        self._open.add(key)
        value = self._convert(node)
        self._open.discard(key)
        self._plain[key] = value
        return value

    def _convert(self, node: Node) -> Any:
        if isinstance(node, SequenceNode):
            self._check_tag(node, {_SEQ}, "list")
            return [self.plain(item) for item in node.value]
        if isinstance(node, MappingNode):
            self._check_tag(node, {_MAP}, "mapping")
            entries = self._mapping_entries(node)
            return {name: self.plain(value) for name, (_, value) in entries.items()}
        if not self._check_tag(node, _SCALAR_TAGS, "scalar") or node.tag in _TEXT_TAGS:
            return node.value
        assert isinstance(node, ScalarNode)
        problem = too_long(node.value) if node.tag in (_INT, _FLOAT) else None
        if problem is not None:
            self._bad.add(id(node))
            self.error("number", problem, self.span(node))
            return node.value
        try:
            if node.tag == _NULL:
                return None
            if node.tag == _BOOL:
                return _CONSTRUCTOR.bool_values[node.value.lower()]
            if node.tag == _INT:
                return _CONSTRUCTOR.construct_yaml_int(node)
            return _CONSTRUCTOR.construct_yaml_float(node)
        except (KeyError, ValueError):
            self._bad.add(id(node))
            message = f"'{node.value}' is not a valid {_short_tag(node.tag)}"
            self.error("yaml-tag", message, self.span(node))
            return node.value

    def _check_tag(self, node: Node, allowed: Iterable[str], noun: str) -> bool:
        if node.tag in allowed:
            return True
        self._bad.add(id(node))
        tag = _short_tag(node.tag)
        if node.tag in _SCALAR_TAGS | {_MAP, _SEQ}:
            message = f"YAML tag '{tag}' cannot be used on a {noun}"
        else:
            message = f"unsupported YAML tag '{tag}': protocol files use only {_STANDARD_TAGS}"
        self.error("yaml-tag", message, self.span(node))
        return False

    def _mapping_entries(self, node: MappingNode) -> dict[str, Entry]:
        entries = mapping_entries(
            self.source, node, self.error, merge=self._merged, check_key=self._check_key
        )
        self._entries[id(node)] = entries
        return entries

    def _check_key(self, key_node: ScalarNode) -> bool:
        # Converted for its tag check only: keys are kept as written, so a data item
        # named `true` or `1` is a name to check, not a boolean or number.
        self.plain(key_node)
        return True

    def _merged(self, key_node: Node, value_node: Node) -> list[dict[str, Entry]]:
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        if not all(isinstance(source, MappingNode) for source in sources):
            message = "'<<' must merge a mapping or a list of mappings"
            self.error("schema", message, self.span(value_node))
            return []
        for source in sources:
            self.plain(source)
        # A source still being converted (an alias cycle) has no entries yet; that cycle
        # is reported on its own.
        return [self._entries.get(id(source), {}) for source in sources]

    # Pass 2: schema errors back to nodes.

    def locate(self, path: Sequence[str | int]) -> tuple[Node | None, Node]:
        """The key node (None for list items) and value node at a path of the plain tree."""
        key_node: Node | None = None
        node = self.root
        for step in path:
            if isinstance(step, int):
                key_node, node = None, node.value[step]
            else:
                key_node, node = self._entries[id(node)][step]
        return key_node, node

    def span(self, node: Node) -> Span:
        """The node's span, cut at the end of its first line to keep carets readable."""
        return node_span(self.source, node)

    def key_span(self, path: Sequence[str | int]) -> Span:
        """The span of the key of the entry at `path`."""
        key_node, _ = self.locate(path)
        assert key_node is not None, "paths to keys end in a key"
        return self.span(key_node)

    def value_span(self, path: Sequence[str | int]) -> Span:
        """The span of the value at `path`."""
        return self.span(self.locate(path)[1])

    def schema_error(self, error: ValidationError) -> None:
        """Turn one JSON Schema error into diagnostics at the nodes it is about."""
        path = tuple(error.absolute_path)
        _, node = self.locate(path)
        if id(node) in self._bad:
            return
        schema: Any = error.schema
        instance: Any = error.instance
        expected: Any = error.validator_value
        title = schema.get("title", "mapping")
        what = _describe(path)
        if error.validator == "additionalProperties":
            allowed = list(schema.get("properties", {}))
            where = what if len(path) == 2 and path[0] in _NAMED_SECTIONS else title
            for name, (key_node, _) in self._entries[id(node)].items():
                if name not in allowed:
                    hint = did_you_mean(name, allowed, expected=True)
                    message = f"unknown key '{name}' in {where}{hint}"
                    self.error("schema", message, self.span(key_node))
            return
        if error.validator == "required":
            # jsonschema reports each missing key separately; report them together, once.
            if (path, id(schema)) not in self._required_done:
                self._required_done.add((path, id(schema)))
                at = self.span(node.value[0][0] if node.value else node)
                for name in expected:
                    if name not in instance:
                        self.error("schema", f"missing required key '{name}' in {title}", at)
            return
        if error.validator == "type":
            types = [expected] if isinstance(expected, str) else expected
            wanted = " or ".join(_TYPE_NAMES[t] for t in types)
            message = f"{what} must be {wanted}, not {_kind_of(instance)}"
        elif error.validator == "enum":
            choices = [str(choice) for choice in expected]
            hint = (
                did_you_mean(instance, choices, expected=True) if isinstance(instance, str) else ""
            )
            message = f"{what} must be one of {', '.join(choices)}{hint}"
        elif error.validator == "const":
            message = f"{what} must be {json.dumps(expected)}"
        elif error.validator == "pattern":
            hint = schema.get("patternErrorMessage", f"it must match {expected}")
            message = f"invalid {path[-1]} {instance!r}: {hint}"
        elif error.validator in ("minLength", "minItems"):
            message = f"{what} must not be empty"
        elif error.validator == "uniqueItems":
            message = f"{what} must not list the same entry twice"
        else:
            message = f"{what}: {error.message}"
        self.error("schema", message, self.span(node))

    # Pass 3: what the schema cannot say.

    def check(self, doc: Any) -> None:
        """Check names, criterion ids and rules, and quantity strings, where well-formed."""
        if not isinstance(doc, dict):
            return
        self._check_names(doc)
        self._check_criteria(doc.get("criteria"))
        if isinstance(doc.get("protocol"), dict):
            self._check_changes(doc["protocol"])
        if isinstance(doc.get("data"), dict):
            for name, item in doc["data"].items():
                if isinstance(item, dict):
                    self._check_item(("data", name), item)
        if isinstance(doc.get("dosing"), list):
            self._check_dosing(doc["dosing"])
        if isinstance(doc.get("phases"), list):
            self._check_phases(doc)
        if isinstance(doc.get("endpoints"), list):
            self._check_endpoints(doc["endpoints"])
        if isinstance(doc.get("derived_events"), list):
            self._check_derived_events(doc["derived_events"])
        if isinstance(doc.get("grading"), list):
            self._unique_ids("grading", doc["grading"], "grading table")

    def _unique_ids(self, section: str, entries: list[Any], noun: str) -> dict[int, Span]:
        """The id span of each entry of a list section that first uses its id.

        A repeated id is reported as `duplicate-id`, pointing back at the first one.
        """
        first_lines: dict[str, int] = {}
        out: dict[int, Span] = {}
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                continue
            entry_id = entry["id"]
            span = self.value_span((section, index, "id"))
            if entry_id in first_lines:
                first = first_lines[entry_id]
                message = f"duplicate {noun} id '{entry_id}' (first used on line {first})"
                self.error("duplicate-id", message, span)
            else:
                first_lines[entry_id] = span.line
                out[index] = span
        return out

    def _check_derived_events(self, derived: list[Any]) -> None:
        self._unique_ids("derived_events", derived, "derived event")

    def _check_endpoints(self, endpoints: list[Any]) -> None:
        self._unique_ids("endpoints", endpoints, "endpoint")

    def _check_phases(self, doc: dict[str, Any]) -> None:
        names: dict[str, tuple[str, int]] = {}
        for section, noun in _NAMED_SECTIONS.items():
            if isinstance(doc.get(section), dict):
                for name in doc[section]:
                    if isinstance(name, str) and name not in names:
                        names[name] = (noun, self.key_span((section, name)).line)
        for index, span in self._unique_ids("phases", doc["phases"], "phase").items():
            phase_id = doc["phases"][index]["id"]
            if phase_id in names:
                noun, line = names[phase_id]
                message = f"phase '{phase_id}' has the same name as the {noun} on line {line}"
                self.error("duplicate-name", message, span)

    def _check_dosing(self, schedules: list[Any]) -> None:
        self._unique_ids("dosing", schedules, "schedule")
        for index, schedule in enumerate(schedules):
            if not isinstance(schedule, dict):
                continue
            path = ("dosing", index)
            schedule_id = schedule.get("id")
            label = f"schedule '{schedule_id}'" if isinstance(schedule_id, str) else "schedule"
            if "doses" in schedule and "duration" in schedule:
                message = f"{label} has both 'doses' and 'duration'; give exactly one"
                self.error("schedule", message, self.key_span((*path, "duration")))
            elif "doses" not in schedule and "duration" not in schedule:
                _, node = self.locate(path)
                at = (
                    self.value_span((*path, "id"))
                    if "id" in schedule
                    else self.span(node.value[0][0] if node.value else node)
                )
                self.error("schedule", f"{label} needs 'doses' or 'duration'", at)

    def _check_names(self, doc: dict[str, Any]) -> None:
        item_lines: dict[str, int] = {}
        for section, noun in _NAMED_SECTIONS.items():
            if not isinstance(doc.get(section), dict):
                continue
            for name in doc[section]:
                span = self.key_span((section, name))
                if (problem := name_problem(name, noun)) is not None:
                    self.error("name", problem, span)
                if section == "data":
                    item_lines[name] = span.line
                elif name in item_lines:
                    message = (
                        f"definition '{name}' has the same name as"
                        f" the data item on line {item_lines[name]}"
                    )
                    self.error("duplicate-name", message, span)

    def _check_criteria(self, criteria: Any) -> None:
        if not isinstance(criteria, dict):
            return
        first_lines: dict[str, int] = {}
        for kind in _CRITERION_KINDS:
            if not isinstance(criteria.get(kind), list):
                continue
            for index, criterion in enumerate(criteria[kind]):
                if not isinstance(criterion, dict):
                    continue
                path = ("criteria", kind, index)
                criterion_id = criterion.get("id")
                label = "criterion"
                if isinstance(criterion_id, str):
                    label = f"criterion '{criterion_id}'"
                    span = self.value_span((*path, "id"))
                    if criterion_id in first_lines:
                        first = first_lines[criterion_id]
                        message = (
                            f"duplicate criterion id '{criterion_id}' (first used on line {first})"
                        )
                        self.error("duplicate-id", message, span)
                    else:
                        first_lines[criterion_id] = span.line
                if "rule" in criterion and "attestation" in criterion:
                    later = max(
                        self.key_span((*path, "rule")),
                        self.key_span((*path, "attestation")),
                        key=lambda s: s.start,
                    )
                    message = f"{label} has both 'rule' and 'attestation'; give exactly one"
                    self.error("criterion-rule", message, later)
                elif (
                    "rule" not in criterion
                    and "attestation" not in criterion
                    and criterion.get("draft") is not True
                ):
                    # A draft may have neither yet; the checker reports every draft.
                    _, node = self.locate(path)
                    at = (
                        self.value_span((*path, "id"))
                        if "id" in criterion
                        else self.span(node.value[0][0] if node.value else node)
                    )
                    self.error("criterion-rule", f"{label} needs a 'rule' or an 'attestation'", at)

    def _check_changes(self, meta: dict[str, Any]) -> None:
        changes = meta.get("changes")
        if not isinstance(changes, list):
            return
        if changes and meta.get("amends") is None:
            message = (
                "'changes' declares what an amendment changes, but this version amends nothing"
            )
            self.error("change", message, self.key_span(("protocol", "changes")))
        first_lines: dict[tuple[ChangeTargetKind, str], int] = {}
        for index, change in enumerate(changes):
            if not isinstance(change, dict) or not isinstance(change.get("target"), str):
                continue
            path = ("protocol", "changes", index)
            target = change["target"]
            key = _change_target(target)
            span = self.value_span((*path, "target"))
            if key in first_lines:
                first = first_lines[key]
                message = f"duplicate change target '{target}' (first declared on line {first})"
                self.error("duplicate-change", message, span)
            else:
                first_lines[key] = span.line
            # The schema reports an intent that is not one of the words (a list, a number).
            intent = change.get("intent")
            if key[0] != "criterion" and isinstance(intent, str) and intent in _SET_INTENTS:
                message = (
                    "relaxed/tightened apply to criteria; a definition change is editorial"
                    " or is declared on the criteria it affects"
                )
                self.error("change-intent", message, self.value_span((*path, "intent")))

    def _check_item(self, path: tuple[str, str], item: dict[str, Any]) -> None:
        for field in _QUANTITY_FIELDS:
            text = item.get(field)
            if not isinstance(text, str):
                continue
            match = _QUANTITY.fullmatch(text)
            if match is None:
                message = f"'{field}' must be a decimal and a unit, like '40 U/L', not {text!r}"
                self.error("quantity", message, self.value_span((*path, field)))
            elif (problem := too_long(match[1])) is not None:
                self.error("number", problem, self.value_span((*path, field)))
            elif field == "molar_mass" and match[2] != "g/mol":
                message = f"'molar_mass' must be in g/mol, not {match[2]}"
                self.error("quantity", message, self.value_span((*path, field)))
        for field in ("minimum", "maximum"):
            value = item.get(field)
            # Bounds are kept as written for exact decimal arithmetic downstream, so YAML's
            # other number spellings (0x1F, 1_000, .inf, 1:30) are refused here.
            if isinstance(value, int | float) and not isinstance(value, bool):
                _, node = self.locate((*path, field))
                if not _DECIMAL.fullmatch(node.value):
                    message = (
                        f"'{field}' must be a plain decimal like 20 or 0.5, not {node.value!r}"
                    )
                    self.error("schema", message, self.span(node))

    # Pass 4: the model, from a document known to be valid.

    def build(self, doc: dict[str, Any]) -> ProtocolDoc:
        """The `ProtocolDoc` of a document that passed every check."""
        criteria = doc["criteria"]
        return ProtocolDoc(
            source=self.source,
            metadata=self._metadata(doc["protocol"]),
            data=tuple(self._data_item(name, item) for name, item in doc["data"].items()),
            definitions=tuple(
                self._definition(name, value) for name, value in doc.get("definitions", {}).items()
            ),
            criteria=tuple(
                self._criterion(kind, index, criterion)
                for kind in _CRITERION_KINDS
                for index, criterion in enumerate(criteria.get(kind, []))
            ),
            dosing=tuple(
                self._schedule(index, schedule)
                for index, schedule in enumerate(doc.get("dosing", ()))
            ),
            phases=tuple(
                self._phase(index, phase) for index, phase in enumerate(doc.get("phases", ()))
            ),
            endpoints=tuple(
                self._endpoint(index, endpoint)
                for index, endpoint in enumerate(doc.get("endpoints", ()))
            ),
            derived_events=tuple(
                self._derived_event(index, event)
                for index, event in enumerate(doc.get("derived_events", ()))
            ),
            grading=tuple(
                self._grading_table(index, table)
                for index, table in enumerate(doc.get("grading", ()))
            ),
        )

    def _derived_event(self, index: int, event: dict[str, Any]) -> DerivedEvent:
        path = ("derived_events", index)
        return DerivedEvent(
            id=event["id"],
            span=self.value_span((*path, "id")),
            when=tuple(
                self._derived_clause((*path, "when", i), clause)
                for i, clause in enumerate(event["when"])
            ),
            description=event.get("description", ""),
        )

    def _derived_clause(self, path: tuple[str | int, ...], clause: dict[str, Any]) -> DerivedClause:
        if "grade" in clause:
            return DerivedClause(
                Name(clause["grade"], self.value_span((*path, "grade"))),
                at_least=self._rule_text((*path, "at_least")),
            )
        return DerivedClause(
            Name(clause["item"], self.value_span((*path, "item"))),
            self._rule_text((*path, "condition")) if "condition" in clause else None,
        )

    def _names(self, path: tuple[str | int, ...], names: list[str]) -> tuple[Name, ...]:
        return tuple(Name(name, self.value_span((*path, i))) for i, name in enumerate(names))

    def _endpoint(self, index: int, endpoint: dict[str, Any]) -> Endpoint | ProportionEndpoint:
        path = ("endpoints", index)

        def names(key: str) -> tuple[Name, ...]:
            return self._names((*path, key), endpoint.get(key, []))

        if endpoint["kind"] == "proportion":
            return ProportionEndpoint(
                id=endpoint["id"],
                name=endpoint["name"],
                span=self.value_span((*path, "id")),
                origin=self._rule_text((*path, "origin")),
                horizon=self._rule_text((*path, "horizon")),
                window=self._rule_text((*path, "window")),
                assessment=Name(endpoint["assessment"], self.value_span((*path, "assessment"))),
                response=self._rule_text((*path, "response")),
                failure=names("failure"),
                description=endpoint.get("description", ""),
            )
        death = endpoint.get("death")
        return Endpoint(
            id=endpoint["id"],
            name=endpoint["name"],
            span=self.value_span((*path, "id")),
            origin=self._rule_text((*path, "origin")),
            events=names("events"),
            censor=self._rule_text((*path, "censor")),
            horizon=self._rule_text((*path, "horizon")),
            competing=names("competing"),
            death=None if death is None else Name(death, self.value_span((*path, "death"))),
            description=endpoint.get("description", ""),
        )

    def _grading_table(self, index: int, table: dict[str, Any]) -> GradingTable:
        path = ("grading", index)
        inputs: list[TableInput] = []
        for column, source in table["inputs"].items():
            at = (*path, "inputs", column)
            name = Name(column, self.key_span(at))
            if isinstance(source, str):
                inputs.append(TableInput(name, (Name(source, self.value_span(at)),)))
                continue
            aggregate: Aggregate = (
                "max" if "max" in source else "min" if "min" in source else "count"
            )
            inputs.append(
                TableInput(
                    name,
                    self._names((*at, aggregate), source[aggregate]),
                    aggregate,
                    self._rule_text((*at, "where")) if "where" in source else None,
                )
            )
        rows: list[TableRow] = []
        for i, row in enumerate(table["rules"]):
            at = (*path, "rules", i)
            cells = tuple(
                (Name(column, self.key_span((*at, column))), self._rule_text((*at, column)))
                for column, cell in row.items()
                if column != "grade" and cell != "-"
            )
            rows.append(TableRow(cells, self._rule_text((*at, "grade")), self.value_span(at)))
        return GradingTable(
            id=table["id"],
            name=table["name"],
            span=self.value_span((*path, "id")),
            hit=table.get("hit", "first"),
            inputs=tuple(inputs),
            grades=tuple(
                self._rule_text((*path, "grades", i)) for i in range(len(table["grades"]))
            ),
            rows=tuple(rows),
            description=table.get("description", ""),
        )

    def _phase(self, index: int, phase: dict[str, Any]) -> Phase:
        path = ("phases", index)
        return Phase(
            id=phase["id"],
            span=self.value_span((*path, "id")),
            start=self._rule_text((*path, "start")),
            end=self._rule_text((*path, "end")) if "end" in phase else None,
            description=phase.get("description", ""),
        )

    def _raw(self, path: Sequence[str | int]) -> str:
        """The text of the scalar at `path`, exactly as written (after unquoting)."""
        text: str = self.locate(path)[1].value
        return text

    def _rule_text(self, path: Sequence[str | int]) -> RuleText:
        node = self.locate(path)[1]
        assert isinstance(node, ScalarNode), "the schema makes rules and quantities strings"
        return RuleText(node.value, self.source, scalar_offsets(self.source.text, node))

    def _quantity(self, path: Sequence[str | int]) -> Quantity:
        text = self._rule_text(path)
        match = _QUANTITY.fullmatch(text.text)
        assert match is not None, "quantities were checked before building"
        return Quantity(match[1], match[2], text.span(match.start(2), match.end(2)))

    def _metadata(self, meta: dict[str, Any]) -> Metadata:
        path = ("protocol",)
        return Metadata(
            registry_id=meta["registry_id"],
            title=meta["title"],
            version=self._raw((*path, "version")),
            span=self.key_span(path),
            phase=self._raw((*path, "phase")) if "phase" in meta else "",
            sponsor=meta.get("sponsor", ""),
            effective_date=meta.get("effective_date", ""),
            amends=None if meta.get("amends") is None else self._raw((*path, "amends")),
            changelog=tuple(meta.get("changelog", ())),
            illustrative=meta.get("illustrative", False),
            changes=tuple(
                self._change(index, change) for index, change in enumerate(meta.get("changes", ()))
            ),
            registry_id_span=self.value_span((*path, "registry_id")),
            version_span=self.value_span((*path, "version")),
            amends_span=self.value_span((*path, "amends")) if "amends" in meta else None,
        )

    def _change(self, index: int, change: dict[str, Any]) -> Change:
        kind, target = _change_target(change["target"])
        return Change(
            target_kind=kind,
            target=target,
            intent=change["intent"],
            rationale=change["rationale"],
            span=self.value_span(("protocol", "changes", index, "target")),
        )

    def _data_item(self, name: str, item: dict[str, Any]) -> DataItem:
        path = ("data", name)
        kind: ItemKind = item.get("kind", "fact")
        unit = self._raw((*path, "unit")) if "unit" in item else None
        value_type: ValueType = item.get("type") or _default_type(kind, unit is not None)
        return DataItem(
            name=name,
            kind=kind,
            type=value_type,
            span=self.key_span(path),
            description=item.get("description", ""),
            unit=unit,
            values=tuple(
                self._raw((*path, "values", index)) for index in range(len(item.get("values", ())))
            ),
            minimum=self._raw((*path, "minimum")) if "minimum" in item else None,
            maximum=self._raw((*path, "maximum")) if "maximum" in item else None,
            uln=self._quantity((*path, "uln")) if "uln" in item else None,
            lln=self._quantity((*path, "lln")) if "lln" in item else None,
            molar_mass=self._quantity((*path, "molar_mass")) if "molar_mass" in item else None,
            codes=tuple(
                (system, self._raw((*path, "codes", system))) for system in item.get("codes", {})
            ),
        )

    def _definition(self, name: str, value: str | dict[str, Any]) -> Definition:
        path = ("definitions", name)
        span = self.key_span(path)
        if isinstance(value, str):
            return Definition(name, self._rule_text(path), span)
        has_unit = "unit" in value
        return Definition(
            name,
            self._rule_text((*path, "rule")),
            span,
            description=value.get("description", ""),
            unit=self._raw((*path, "unit")) if has_unit else None,
            unit_span=self.value_span((*path, "unit")) if has_unit else None,
        )

    def _criterion(self, kind: CriterionKind, index: int, criterion: dict[str, Any]) -> Criterion:
        path = ("criteria", kind, index)
        return Criterion(
            id=criterion["id"],
            kind=kind,
            text=criterion["text"],
            span=self.value_span((*path, "id")),
            rule=self._rule_text((*path, "rule")) if "rule" in criterion else None,
            attestation=criterion.get("attestation"),
            note=criterion.get("note", ""),
            draft=criterion.get("draft", False),
        )

    def _schedule(self, index: int, schedule: dict[str, Any]) -> Schedule:
        path = ("dosing", index)
        tolerance = schedule.get("tolerance", {})

        def text(*keys: str) -> RuleText | None:
            present = schedule if len(keys) == 1 else tolerance
            return self._rule_text((*path, *keys)) if keys[-1] in present else None

        def name(key: str) -> Name | None:
            if key not in schedule:
                return None
            return Name(schedule[key], self.value_span((*path, key)))

        dose, start = text("dose"), text("start")
        assert dose is not None and start is not None, "the schema requires dose and start"
        return Schedule(
            id=schedule["id"],
            arm=schedule["arm"],
            drug=schedule["drug"],
            span=self.value_span((*path, "id")),
            dose=dose,
            route=schedule["route"],
            frequency=schedule["frequency"],
            frequency_span=self.value_span((*path, "frequency")),
            start=start,
            per=schedule.get("per"),
            codes=tuple(
                (system, self._raw((*path, "codes", system)))
                for system in schedule.get("codes", {})
            ),
            doses=schedule.get("doses"),
            duration=text("duration"),
            ends_before=name("ends_before"),
            starts_after=name("starts_after"),
            dose_tolerance=text("tolerance", "dose"),
            time_tolerance=text("tolerance", "time"),
            holds=schedule.get("holds", 0),
            doses_span=self.value_span((*path, "doses")) if "doses" in schedule else None,
        )


def _change_target(target: str) -> tuple[ChangeTargetKind, str]:
    """What a change's target names: ``definition crcl``, ``data ast``, else a criterion id."""
    kind, _, name = target.partition(" ")
    if kind == "definition" and name:
        return "definition", name
    if kind == "data" and name:
        return "data", name
    return "criterion", target


def _default_type(kind: ItemKind, has_unit: bool) -> ValueType:
    if kind == "anchor":
        return "date"
    if has_unit:
        return "quantity"
    # The schema requires 'type' for facts and observations without a unit, so this is an event.
    return "boolean"


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(YAML_TAG) if tag.startswith(YAML_TAG) else tag


def _describe(path: Sequence[str | int]) -> str:
    if not path:
        return "the protocol file"
    last = path[-1]
    if isinstance(last, int):
        return f"item {last + 1} of '{path[-2]}'"
    if len(path) == 2 and path[0] in _NAMED_SECTIONS:
        return f"{_NAMED_SECTIONS[str(path[0])]} '{last}'"
    return f"'{last}'"


def _kind_of(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    return "a list" if isinstance(value, list) else "a mapping"
