"""A composed YAML node tree as plain JSON-like values, and the way back to the nodes.

Validating against a JSON Schema needs plain values (dicts, lists, strings, numbers); a
located message needs the node a value came from. `PlainTree` converts a node tree once,
checking tags, duplicate keys, merge keys and alias cycles on the way, and keeps the entries
of every mapping so that a path of the plain values (``("data", "age", "unit")``) leads back
to its key node and value node. Every file format read through a JSON Schema (protocol files,
the lock) shares it; `Reading` holds what differs between them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocode.core.errors import Diagnostic
from protocode.core.exact import too_long
from protocode.core.source import Source, Span
from protocode.document.yamlsource import MERGE_TAG, YAML_TAG, Entry, mapping_entries, node_span

_STR, _INT, _FLOAT, _BOOL, _NULL = (YAML_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = YAML_TAG + "map", YAML_TAG + "seq"
# Scalars kept as their text. Timestamps stay strings so that dates are interpreted in one
# place downstream; 'value' and 'merge' are what '=' and '<<' resolve to as plain values.
_TEXT_TAGS = frozenset({_STR, YAML_TAG + "timestamp", YAML_TAG + "value", MERGE_TAG})
_SCALAR_TAGS = _TEXT_TAGS | {_INT, _FLOAT, _BOOL, _NULL}
_STANDARD_TAGS = "!!str, !!int, !!float, !!bool, !!null, !!map and !!seq"
_CONSTRUCTOR = SafeConstructor()

ValuePath = tuple[str | int, ...]
"""A path into plain values: mapping keys and list indexes, from the root."""


@dataclass(frozen=True, slots=True)
class BareWord:
    """An unquoted text scalar read where only JSON is allowed: YAML, but not a JSON string.

    It is no JSON type, so a schema asking for a string (or anything) refuses it.
    """

    text: str


@dataclass(frozen=True, slots=True)
class Reading:
    """How one file format reads YAML: what its files are called in messages, its rules.

    `files` names the format in the tag message (``protocol files``); `code`, when set,
    replaces the code of every diagnostic the reading reports; `merge_refused`, when set, is
    the message for a merge key (``<<``) where the format has none; `json_strings` makes an
    unquoted text scalar a `BareWord` rather than a string, for formats that are JSON.
    """

    files: str = "protocol files"
    code: str | None = None
    merge_refused: str | None = None
    json_strings: bool = False


class PlainTree:
    """One file's node tree as plain values (`value`), with the problems found converting it.

    Each node is converted once, keyed by identity: an alias is the very node it refers to,
    so its problems are reported once however often it is referenced.
    """

    def __init__(self, source: Source, root: Node, reading: Reading | None = None) -> None:
        self.source = source
        self.root = root
        self.reading = reading or Reading()
        self.diagnostics: list[Diagnostic] = []
        self._reported: set[tuple[str, int, int, str]] = set()
        self._plain: dict[int, Any] = {}
        self._entries: dict[int, dict[str, Entry]] = {}
        self._open: set[int] = set()
        # Nodes already reported as bad YAML; schema errors about them would be noise.
        self._bad: set[int] = set()
        self.value: Any = self.plain(root)

    def error(self, code: str, message: str, span: Span | None) -> None:
        """Record a diagnostic, once: aliases and overlapping schema keywords repeat them."""
        code = self.reading.code or code
        key = (code, span.start if span else -1, span.end if span else -1, message)
        if key not in self._reported:
            self._reported.add(key)
            self.diagnostics.append(Diagnostic(code, message, span))

    def is_bad(self, node: Node) -> bool:
        """Whether converting `node` already reported it as bad YAML."""
        return id(node) in self._bad

    def entries(self, node: Node) -> dict[str, Entry]:
        """The entries of a mapping node by key, merged ones included (as converted)."""
        return self._entries[id(node)]

    # Nodes to plain values.

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
            entries = mapping_entries(
                self.source, node, self.error, merge=self._merged, check_key=self._check_key
            )
            self._entries[id(node)] = entries
            return {name: self.plain(value) for name, (_, value) in entries.items()}
        if not self._check_tag(node, _SCALAR_TAGS, "scalar"):
            return node.value
        assert isinstance(node, ScalarNode)
        if node.tag in _TEXT_TAGS:
            if self.reading.json_strings and node.style != '"':
                return BareWord(node.value)
            return node.value
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
            message = f"'{node.value}' is not a valid {short_tag(node.tag)}"
            self.error("yaml-tag", message, self.span(node))
            return node.value

    def _check_tag(self, node: Node, allowed: Iterable[str], noun: str) -> bool:
        if node.tag in allowed:
            return True
        self._bad.add(id(node))
        tag = short_tag(node.tag)
        if node.tag in _SCALAR_TAGS | {_MAP, _SEQ}:
            message = f"YAML tag '{tag}' cannot be used on a {noun}"
        else:
            message = (
                f"unsupported YAML tag '{tag}': {self.reading.files} use only {_STANDARD_TAGS}"
            )
        self.error("yaml-tag", message, self.span(node))
        return False

    def _check_key(self, key_node: ScalarNode) -> bool:
        # Converted for its tag check only: keys are kept as written, so a data item
        # named `true` or `1` is a name to check, not a boolean or number.
        self.plain(key_node)
        return True

    def _merged(self, key_node: Node, value_node: Node) -> list[dict[str, Entry]]:
        if self.reading.merge_refused is not None:
            self.error("schema", self.reading.merge_refused, self.span(key_node))
            return []
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

    # Paths back to nodes.

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

    def start_span(self, path: Sequence[str | int]) -> Span:
        """Where the mapping at `path` starts: its first key, or itself when empty."""
        _, node = self.locate(path)
        return self.span(node.value[0][0] if node.value else node)


def short_tag(tag: str) -> str:
    """A tag as written in YAML: ``!!int`` for YAML's own, else the tag itself."""
    return "!!" + tag.removeprefix(YAML_TAG) if tag.startswith(YAML_TAG) else tag
