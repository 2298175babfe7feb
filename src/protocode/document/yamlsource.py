"""Positioned YAML: what the protocol, lock, case and FHIR-map readers share.

Every reader works on PyYAML's node tree, never its object constructor, so that no tag can
make it build arbitrary Python objects and every value keeps its place in the file. This
module composes a `Source` (read by `protocode.core.files`) into nodes (bounded in depth and
alias expansion, turning YAML's own errors into located diagnostics), gives a node's span,
walks a mapping's entries, and maps each character of a scalar's value back to the file.
What differs between the file formats, such as whether merge keys are allowed, is left to
the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import yaml
from yaml.events import AliasEvent, NodeEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError
from yaml.scanner import Scanner

from protocode.core.errors import Diagnostic, LoadError
from protocode.core.source import Source, Span

YAML_TAG = "tag:yaml.org,2002:"
"""The prefix of YAML's standard tags (``!!str`` is ``tag:yaml.org,2002:str``)."""

MERGE_TAG = YAML_TAG + "merge"
"""The tag of a merge key (``<<``)."""

LINE_BREAKS = frozenset("\n\r\x85\u2028\u2029")
"""The characters YAML treats as line breaks."""

MAX_DEPTH = 64
"""How deeply lists and mappings may nest, aliases expanded.

Real files nest fewer than ten levels. Composing, converting and validating recurse once per
level, so without a bound a file under 1 KB exhausts Python's stack.
"""

MAX_ALIAS_VALUES = 100_000
"""How many values aliases may add to a file, beyond those written in it."""

Entry = tuple[Node, Node]
"""One entry of a mapping: its key node and its value node."""

Report = Callable[[str, str, Span], None]
"""Where a walker sends a problem: its code, its message and its span."""


def compose(source: Source, what: str) -> Node:
    """The root node of the single YAML document in `source`.

    Raises `LoadError` with one diagnostic: ``yaml-syntax`` when the text is not YAML,
    ``yaml-depth`` when it nests more than `MAX_DEPTH` levels, ``yaml-alias`` when aliases
    add more than `MAX_ALIAS_VALUES` values, and ``schema`` ``{what} is empty`` when it holds
    no document, `what` naming the file (``the protocol file``).
    """
    try:
        root = _compose(source.text)
    except _DepthError as exc:
        span = source.span(exc.at, exc.at + 1)
        raise LoadError([Diagnostic("yaml-depth", exc.message, span)]) from None
    except yaml.MarkedYAMLError as exc:
        raise LoadError([_syntax_diagnostic(source, exc)]) from None
    except ReaderError as exc:
        message = f"character U+{exc.character:04X} is not allowed in YAML"
        span = source.span(exc.position, exc.position + 1)
        raise LoadError([Diagnostic("yaml-syntax", message, span)]) from None
    if root is None:
        raise LoadError([Diagnostic("schema", f"{what} is empty", source.whole)])
    sizes: dict[int, int] = {}
    size = _expanded_size(root, sizes, set())
    # Memoised by node identity, `sizes` ends up with one entry per node written in the file.
    if size - len(sizes) > MAX_ALIAS_VALUES:
        # Nested aliases can multiply a small file into billions of values ("billion
        # laughs"); every later pass would walk them all.
        message = (
            f"aliases expand {what} from {len(sizes):,} to {size:,} values"
            f" (aliases may add at most {MAX_ALIAS_VALUES:,})"
        )
        raise LoadError([Diagnostic("yaml-alias", message, source.whole)])
    return root


def _compose(text: str) -> Node | None:
    loader = _Composer(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


class _DepthError(Exception):
    def __init__(self, message: str, event: NodeEvent) -> None:
        super().__init__(message)
        self.message = message
        self.at = event.start_mark.index if event.start_mark is not None else 0


class _Composer(yaml.SafeLoader):
    """PyYAML's safe loader, refusing to compose nodes nested beyond `MAX_DEPTH`.

    An alias counts as deep as the node it names, so that aliases cannot nest a document
    deeper than its text does; the check runs before the nested node is composed, so the
    recursion never goes further than the limit.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0  # nodes open around the one being composed
        self._reach = 0  # the deepest level reached inside the node being composed
        self._heights: dict[int, int] = {}  # levels of each anchored node, by identity

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event: NodeEvent = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent):
            # An undefined alias is left to PyYAML, which reports it; an alias to a node
            # still open (a cycle) is reported by the readers, and counts as one level.
            height = self._heights.get(id(self.anchors.get(event.anchor or "")), 1)
            self._reach = max(self._reach, self._depth + height)
            if self._reach > MAX_DEPTH:
                message = f"this alias nests lists and mappings more than {MAX_DEPTH} levels deep"
                raise _DepthError(message, event)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            message = f"lists and mappings nest more than {MAX_DEPTH} levels deep here"
            raise _DepthError(message, event)
        outer, self._reach = self._reach, self._depth
        node = super().compose_node(parent, index)
        if event.anchor is not None:
            self._heights[id(node)] = self._reach - self._depth + 1
        self._reach = max(outer, self._reach)
        self._depth -= 1
        return node


def _expanded_size(node: Node, sizes: dict[int, int], open_: set[int]) -> int:
    """How many nodes the tree holds with every alias expanded, counted without expanding.

    Recursion stays within `MAX_DEPTH`: composition bounded the depth, aliases expanded.
    """
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
    sizes[key] = size
    return size


def _syntax_diagnostic(source: Source, exc: yaml.MarkedYAMLError) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return Diagnostic("yaml-syntax", exc.problem or "invalid YAML", source.whole)
    explained = _explain(source, exc, mark.index)
    if explained is not None:
        return Diagnostic("yaml-syntax", explained[0], explained[1])
    message = exc.problem or "invalid YAML"
    if exc.context:
        # The context names what was open, often lines earlier: say where it began.
        context = exc.context
        if exc.context_mark is not None and exc.context_mark.line != mark.line:
            context += f" on line {exc.context_mark.line + 1}"
        message = f"{context}, {message}"
    at = mark.index
    end = at + 1 if at < len(source.text) and source.text[at] not in LINE_BREAKS else at
    return Diagnostic("yaml-syntax", message, source.span(at, end))


# The mistakes behind most of PyYAML's errors, told from the text. PyYAML reports where it
# gave up, often the line after the mistake: a key without ':' runs on into the next line,
# and a string without its closing quote swallows the lines after it.


def _explain(source: Source, exc: yaml.MarkedYAMLError, at: int) -> tuple[str, Span] | None:
    """What to write instead, and where, for the common mistakes; None for the others."""
    text = source.text
    problem, context = exc.problem or "", exc.context or ""
    opened = exc.context_mark.index if exc.context_mark is not None else None
    if opened is not None and context == "while scanning a simple key":
        return _missing_colon(source, opened)
    if opened is not None and context == "while scanning a quoted scalar":
        quote = text[opened]
        line = exc.context_mark.line + 1 if exc.context_mark is not None else 0
        message = f"the string opened with {quote} on line {line} is never closed"
        return message, source.span(opened, opened + 1)
    if problem == "mapping values are not allowed here":
        line_start = text.rfind("\n", 0, at) + 1
        if ": " in text[line_start:at]:
            return _colon_in_value(source, line_start, at)
        previous = _previous_line(text, line_start)
        if previous is not None:
            above = text[previous : line_start - 1]
            content = above.lstrip()
            if content[:1] == "-" and content[1:2] not in (" ", ""):
                dash = previous + len(above) - len(content)
                message = f"a list item needs a space after '-' (write '- {content[1:].strip()}')"
                return message, source.span(dash, dash + 1)
            if ":" not in above:
                return _missing_colon(source, previous)
    if problem.startswith("expected <block end>") and _starts_line(text, at):
        number = source.position(at)[0]
        message = (
            f"line {number} is indented differently from the lines before it: indent it as far"
            " as the keys or list items it belongs with"
        )
        return message, source.span(at, at + 1)
    if "cannot start any token" in problem and text[at : at + 1] == "\t":
        return "a tab cannot indent YAML; indent with spaces", source.span(at, at + 1)
    quoted = _open_quote_before(text, at)
    if quoted is not None:
        quote, start = quoted
        line = source.position(start)[0]
        message = (
            f"the string opened with {quote} on line {line} runs on to line"
            f" {source.position(at)[0]}: is its closing {quote} missing?"
        )
        return message, source.span(start, start + 1)
    return None


def _missing_colon(source: Source, start: int) -> tuple[str, Span]:
    """A key written without its ':' at `start` (or the start of its line, past a '- ')."""
    text = source.text
    end = text.find("\n", start)
    line = text[start : len(text) if end == -1 else end]
    indent = len(line) - len(line.lstrip(" -"))
    words = line[indent:].split("#", 1)[0].split(None, 1)
    if not words:
        return "a key is missing its ':'", source.span(start, start + 1)
    key = words[0]
    write = f"{key}: {words[1].rstrip()}" if len(words) > 1 else f"{key}:"
    span = source.span(start + indent, start + indent + len(key))
    return f"missing ':' after '{key}' (write '{write}')", span


def _colon_in_value(source: Source, line_start: int, at: int) -> tuple[str, Span]:
    """A plain value holding ': ', which YAML reads as the start of a nested mapping."""
    text = source.text
    end = text.find("\n", at)
    line = text[line_start : len(text) if end == -1 else end].rstrip()
    key, _, value = line.lstrip(" -").partition(": ")
    quoted = f'"{value}"' if '"' not in value else "'" + value.replace("'", "''") + "'"
    message = f"a value holding ': ' must be quoted (write '{key}: {quoted}')"
    return message, source.span(at, at + 1)


def _starts_line(text: str, at: int) -> bool:
    """Whether only spaces come before `at` on its line."""
    return text[text.rfind("\n", 0, at) + 1 : at].strip(" ") == ""


def _previous_line(text: str, line_start: int) -> int | None:
    """Where the last line before `line_start` with content (not only a comment) starts."""
    end = line_start - 1
    while end > 0:
        start = text.rfind("\n", 0, end) + 1
        content = text[start:end].strip()
        if content and not content.startswith("#"):
            return start
        end = start - 1
    return None


def _open_quote_before(text: str, at: int) -> tuple[str, int] | None:
    """The quote and start of a quoted string ending just before `at` on an earlier line.

    PyYAML reads an unclosed string on until the next quote character, so the string it
    ends is one that spans lines; the error it then reports is right after it.
    """
    end = at
    while end > 0 and text[end - 1] in " \t":
        end -= 1
    if end == 0 or text[end - 1] not in "\"'":
        return None
    quote = text[end - 1]
    start = text.rfind(quote, 0, end - 1)
    if start == -1 or "\n" not in text[start:end]:
        return None
    return quote, start


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


# Rule text offsets. A scalar's value is aligned with its raw text: the raw text is cut into
# units that each contribute one character to the value (a double-quoted escape such as
# '\u00e9' or a single-quoted "''" is one unit) or none (an escaped line break). Walking the
# value, each non-space character matches the next unit contributing that character; the
# only raw text YAML drops is quotes, block headers, indentation and folded white space,
# so no unit is wrongly skipped. A space character matches the next white-space unit,
# preferring the same character, since YAML folds line breaks into spaces and back.

# Characters YAML may fold, strip or turn into one another (line breaks become '\n').
_SPACE = frozenset(" \t") | LINE_BREAKS


@dataclass(frozen=True, slots=True)
class _Unit:
    char: str
    start: int
    end: int


def scalar_offsets(text: str, node: ScalarNode) -> tuple[int, ...]:
    """The offset in `text` of each character of the scalar's value, and of its end.

    Later stages point into rule text through these, whatever the scalar's style.
    """
    units = _units(text, node)
    offsets: list[int] = []
    pos = 0
    for char in node.value:
        found = _match(units, pos, char)
        if found is None:
            # Value and raw text disagree (a YAML corner this alignment does not know):
            # keep pointing at the current place rather than fail the whole load.
            offsets.append(units[pos].start)
            continue
        offsets.append(units[found].start)
        pos = found + 1
    offsets.append(units[pos - 1].end if pos else units[0].start)
    return tuple(offsets)


def _units(text: str, node: ScalarNode) -> list[_Unit]:
    start, end = scalar_start(text, node), node.end_mark.index
    style = node.style
    if style in ("'", '"'):
        start, end = start + 1, end - 1
    elif style in ("|", ">"):
        while start < end and text[start] not in LINE_BREAKS:
            start += 1
        start += 2 if text.startswith("\r\n", start) else 1
    units: list[_Unit] = []
    at = start
    while at < end:
        if style == '"' and text[at] == "\\":
            char, size = _escape(text, at)
        elif style == "'" and text.startswith("''", at):
            char, size = "'", 2
        else:
            char, size = text[at], 1
        units.append(_Unit(char, at, at + size))
        at += size
    # A sentinel that matches nothing, so the position after the last unit has an offset.
    units.append(_Unit("", max(start, end), max(start, end)))
    return units


def _escape(text: str, at: int) -> tuple[str, int]:
    code = text[at + 1]
    if code in Scanner.ESCAPE_REPLACEMENTS:
        return Scanner.ESCAPE_REPLACEMENTS[code], 2
    if code in Scanner.ESCAPE_CODES:
        digits = Scanner.ESCAPE_CODES[code]
        return chr(int(text[at + 2 : at + 2 + digits], 16)), 2 + digits
    # An escaped line break joins the lines without a space.
    return "", 3 if text.startswith("\r\n", at + 1) else 2


def _match(units: Sequence[_Unit], pos: int, char: str) -> int | None:
    if char not in _SPACE:
        return next((j for j in range(pos, len(units)) if units[j].char == char), None)
    fallback = None
    for j in range(pos, len(units)):
        unit_char = units[j].char
        if unit_char == char:
            return j
        if unit_char in _SPACE:
            fallback = j if fallback is None else fallback
        elif unit_char:
            break
    return fallback
