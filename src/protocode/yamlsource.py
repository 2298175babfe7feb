"""Positioned YAML: what the protocol loader and the case loader share.

Both loaders work on PyYAML's node tree, never its object constructor, so that no tag can
make them build arbitrary Python objects and every value keeps its place in the file. This
module reads a file into a `Source`, composes it into nodes (turning YAML's own errors into
diagnostics), gives a node's span, and walks a mapping's entries. What differs between the
two file formats, such as whether merge keys are allowed, is left to the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from protocode.errors import Diagnostic, LoadError
from protocode.source import Source, Span

YAML_TAG = "tag:yaml.org,2002:"
"""The prefix of YAML's standard tags (``!!str`` is ``tag:yaml.org,2002:str``)."""

MERGE_TAG = YAML_TAG + "merge"
"""The tag of a merge key (``<<``)."""

LINE_BREAKS = frozenset("\n\r\x85\u2028\u2029")
"""The characters YAML treats as line breaks."""

Entry = tuple[Node, Node]
"""One entry of a mapping: its key node and its value node."""

Report = Callable[[str, str, Span], None]
"""Where a walker sends a problem: its code, its message and its span."""


def read_source(path: Path) -> Source:
    """Read the UTF-8 file at `path`.

    Raises `LoadError` with a single ``io`` diagnostic, without a span, when the file does not
    exist, cannot be read or is not UTF-8.
    """
    try:
        return Source.from_path(path)
    except FileNotFoundError:
        raise LoadError([Diagnostic("io", f"cannot read {path}: no such file")]) from None
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        message = f"cannot read {path}: not UTF-8 text (byte 0x{byte:02x} at offset {exc.start})"
        raise LoadError([Diagnostic("io", message)]) from None
    except OSError as exc:
        raise LoadError([Diagnostic("io", f"cannot read {path}: {exc.strerror}")]) from None


def compose(source: Source, what: str) -> Node:
    """The root node of the single YAML document in `source`.

    Raises `LoadError` with one ``yaml-syntax`` diagnostic when the text is not YAML, and
    with one ``schema`` diagnostic ``{what} is empty`` when it holds no document, `what`
    naming the file (``the protocol file``).
    """
    try:
        root = yaml.compose(source.text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise LoadError([_syntax_diagnostic(source, exc)]) from None
    except ReaderError as exc:
        message = f"character U+{exc.character:04X} is not allowed in YAML"
        span = source.span(exc.position, exc.position + 1)
        raise LoadError([Diagnostic("yaml-syntax", message, span)]) from None
    if root is None:
        raise LoadError([Diagnostic("schema", f"{what} is empty", source.whole)])
    size = _expanded_size(root, {}, set())
    if size > MAX_EXPANDED_NODES:
        # Nested aliases can multiply a small file into billions of values ("billion
        # laughs"); every later pass would walk them all.
        message = (
            f"aliases expand {what} to {size:,} values (at most {MAX_EXPANDED_NODES:,} allowed)"
        )
        raise LoadError([Diagnostic("yaml-alias", message, source.whole)])
    return root


MAX_EXPANDED_NODES = 100_000


def _expanded_size(node: Node, sizes: dict[int, int], open_: set[int]) -> int:
    """How many nodes the tree holds with every alias expanded, counted without expanding."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        return 1  # a self-referencing alias; the loaders report it
    open_.add(key)
    size = 1
    if isinstance(node, SequenceNode):
        size += sum(_expanded_size(item, sizes, open_) for item in node.value)
    elif isinstance(node, MappingNode):
        for k, v in node.value:
            size += _expanded_size(k, sizes, open_) + _expanded_size(v, sizes, open_)
    open_.discard(key)
    sizes[key] = min(size, MAX_EXPANDED_NODES + 1)
    return sizes[key]


def _syntax_diagnostic(source: Source, exc: yaml.MarkedYAMLError) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    message = exc.problem or "invalid YAML"
    if exc.context:
        # The context names what was open, often lines earlier: say where it began.
        context = exc.context
        if exc.context_mark is not None and (mark is None or exc.context_mark.line != mark.line):
            context += f" on line {exc.context_mark.line + 1}"
        message = f"{context}, {message}"
    if mark is None:
        return Diagnostic("yaml-syntax", message, source.whole)
    at = mark.index
    end = at + 1 if at < len(source.text) and source.text[at] not in LINE_BREAKS else at
    return Diagnostic("yaml-syntax", message, source.span(at, end))


def scalar_start(text: str, node: ScalarNode) -> int:
    """Where a scalar's own text starts in `text`, past a tag or an anchor in front of it.

    PyYAML's start mark of a tagged or anchored scalar is on the tag or anchor.
    """
    start, end = node.start_mark.index, node.end_mark.index
    while start < end and text[start] in "!&":
        while start < end and not text[start].isspace():
            start += 1
        while start < end and text[start].isspace():
            start += 1
    return start


def node_span(source: Source, node: Node) -> Span:
    """The node's span, cut at the end of its first line to keep carets readable."""
    text = source.text
    start, end = node.start_mark.index, node.end_mark.index
    line_end = text.find("\n", start, end)
    if line_end != -1:
        end = line_end
    while end > start and text[end - 1] in " \t\r":
        end -= 1
    return source.span(start, end)


def mapping_entries(
    source: Source,
    node: MappingNode,
    report: Report,
    *,
    merge: Callable[[Node, Node], Iterable[Mapping[str, Entry]]],
    check_key: Callable[[ScalarNode], bool] | None = None,
) -> dict[str, Entry]:
    """The entries of a mapping node by key text: merged ones first, then its own.

    A key that is not a scalar, or repeats an earlier key, is reported to `report` and its
    entry left out. `check_key`, when given, sees every scalar key before the duplicate check
    and leaves its entry out by returning False (having reported why). A merge key (``<<``)
    is handed with its value to `merge`, which returns the entries it brings in, in order, or
    nothing (reporting why) where the file format has no merge keys.
    """
    own: dict[str, Entry] = {}
    merged: dict[str, Entry] = {}
    for key_node, value_node in node.value:
        if key_node.tag == MERGE_TAG:
            # As in YAML 1.1 merge keys: earlier sources win, and own keys override.
            for entries in merge(key_node, value_node):
                for name, entry in entries.items():
                    merged.setdefault(name, entry)
            continue
        if not isinstance(key_node, ScalarNode):
            report("schema", "a key must be a plain scalar", node_span(source, key_node))
            continue
        if check_key is not None and not check_key(key_node):
            continue
        name = key_node.value
        if name in own:
            first = node_span(source, own[name][0]).line
            message = f"duplicate key '{name}' (first on line {first})"
            report("duplicate-key", message, node_span(source, key_node))
            continue
        own[name] = (key_node, value_node)
    return merged | own
