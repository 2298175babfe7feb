"""Formatting protocol files: every rule scalar rewritten, every other byte kept.

How the YAML is rewritten. The file is not re-emitted: a YAML library's round-trip dump
(ruamel.yaml included) re-indents sequences, re-wraps long folded text and re-spaces flow
mappings, which on the seed protocol changes hundreds of lines nobody touched. Instead each
rule's new text is spliced into the original text at the rule scalar's own position, taken
from PyYAML's node marks (the positions the loader already uses for diagnostics). Comments,
key order, quoting, blank lines and line endings outside the rule scalars are therefore
kept byte for byte; only a rule scalar's style may change:

* a rule that fits on its key's line is a plain scalar (``rule: a and b``), quoted only
  where YAML needs it (single quotes; double quotes with escapes for unprintable text);
* a longer rule is a folded block scalar (``rule: >-``) indented two columns past its key,
  one line per line of the rule; an existing block scalar keeps its header (``|``, ``>``,
  a comment after it) and only its lines are replaced, and a comment after a plain rule
  moves onto the new header line;
* inside a flow mapping (``{…}``) a rule stays on one line.

Which scalars are rules: the whole expressions the loader hands to the parser, namely
criteria ``rule``, definitions (``name: expr`` or ``rule:``), phase ``start`` / ``end``,
dosing ``start`` and endpoint ``origin`` / ``censor``. Rule fragments (a derived event's
``condition``, grading cells and ``where``, horizons, doses, tolerances) are left as written.

Safety. A rule holding a ``#`` comment is left as written and reported, since the AST does
not keep comments. Before anything is returned, the new text is loaded again and every
rule parsed: if any rule's AST (spans aside) differs from the original's, formatting stops
with an internal error rather than change what a protocol means.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocode.core.errors import Diagnostic, LoadError, ProtocodeError, UsageError
from protocode.core.files import decode_source, read_bytes, read_source
from protocode.core.source import Source, Span
from protocode.document.history import HistoryError, load_history
from protocode.document.loader import load_protocol_text
from protocode.document.lock import LOCK_NAME, VERSION_FILE
from protocode.document.model import Endpoint, ProtocolDoc, RuleText
from protocode.document.yamlsource import LINE_BREAKS, scalar_start
from protocode.fmt.printer import WIDTH, has_comment, rule_printer, shape
from protocode.language.syntax import parse_rule

_PROTOCOL_KEY = re.compile(r"^protocode:", re.MULTILINE)
_TRAILING_COMMENT = re.compile(r"[ \t]+#[^\n\r]*")
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
_STR_TAG = "tag:yaml.org,2002:str"
_LINE_BREAK = re.compile("[" + "".join(sorted(LINE_BREAKS)) + "]")


@dataclass(frozen=True, slots=True)
class RuleField:
    """A rule scalar of a protocol: what it is (``criterion I5``) and its text."""

    what: str
    rule: RuleText


@dataclass(frozen=True, slots=True)
class Edit:
    """One rule rewritten: characters `[start, end)` of the file become `text`."""

    what: str
    span: Span
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Formatted:
    """A protocol file and its formatted text.

    `edits` are the rules that change (none when the file is canonical); `kept` are notes
    on rules left as written (they hold comments).
    """

    source: Source
    text: str
    edits: tuple[Edit, ...]
    kept: tuple[Diagnostic, ...]

    @property
    def changed(self) -> bool:
        """Whether formatting changes the file."""
        return self.text != self.source.text


def rule_fields(doc: ProtocolDoc) -> list[RuleField]:
    """Every whole-expression rule of a protocol, in file order of sections."""
    found = [RuleField(f"definition {d.name}", d.rule) for d in doc.definitions]
    found += [RuleField(f"criterion {c.id}", c.rule) for c in doc.criteria if c.rule]
    for phase in doc.phases:
        found.append(RuleField(f"phase {phase.id} start", phase.start))
        if phase.end is not None:
            found.append(RuleField(f"phase {phase.id} end", phase.end))
    found += [RuleField(f"schedule {s.id} start", s.start) for s in doc.dosing]
    for endpoint in doc.endpoints:
        found.append(RuleField(f"endpoint {endpoint.id} origin", endpoint.origin))
        if isinstance(endpoint, Endpoint):
            found.append(RuleField(f"endpoint {endpoint.id} censor", endpoint.censor))
    return found


def read_file(path: Path) -> Source:
    """A file's text exactly as stored (line endings included); `LoadError` if unreadable."""
    return decode_source(str(path), read_bytes(path))


def format_file(path: Path, width: int = WIDTH) -> Formatted:
    """The formatted text of the protocol file at `path` (the file is not written)."""
    return format_source(read_file(path), width)


def format_source(source: Source, width: int = WIDTH) -> Formatted:
    """The formatted text of a protocol file's text.

    Raises the loader's `LoadError` for a file that does not load, `RuleSyntaxError` with
    every rule that does not parse, and `ProtocodeError` (code ``fmt-internal``) if the
    formatted text would not mean what the original means.
    """
    doc = load_protocol_text(source.text, source.path)
    text = doc.source.text
    found = rule_fields(doc)
    problems: list[Diagnostic] = []
    for item in found:
        try:
            parse_rule(item.rule)
        except ProtocodeError as exc:
            problems += exc.diagnostics
    if problems:
        raise ProtocodeError(problems)
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    assert root is not None, "a file that loads as a protocol has a document"
    scalars = list(_scalars(root))
    newline = "\r\n" if "\r\n" in text else "\n"
    edits: list[Edit] = []
    kept: list[Diagnostic] = []
    done: set[int] = set()
    for item in found:
        key, node, flow = _scalar_of(scalars, item.rule)
        if id(node) in done:
            continue  # an alias: the anchored scalar is formatted once
        done.add(id(node))
        if has_comment(item.rule.text):
            message = f"{item.what}: rule left as written, since formatting would lose its comment"
            kept.append(Diagnostic("fmt", message, _first(item.rule), severity="warning"))
            continue
        edit = _edit(text, key, node, flow=flow, item=item, width=width, newline=newline)
        if edit is not None:
            edits.append(edit)
    new = text
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        new = new[: edit.start] + edit.text + new[edit.end :]
    if edits:
        _verify(doc.source, found, new)
    return Formatted(doc.source, new, tuple(edits), tuple(kept))


def _first(rule: RuleText) -> Span:
    """The rule's first character, for notes."""
    return rule.span(0, 1) if rule.text else rule.whole


# ---- finding a rule's scalar


def _scalars(root: Node) -> Iterator[tuple[ScalarNode, ScalarNode, bool]]:
    """Every scalar mapping value with its key and whether it sits in a flow collection."""
    stack: list[tuple[Node, bool]] = [(root, False)]
    seen: set[int] = set()
    while stack:
        node, flow = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        flow = flow or bool(getattr(node, "flow_style", False))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if isinstance(key, ScalarNode) and isinstance(value, ScalarNode):
                    yield key, value, flow
                stack.append((value, flow))
        elif isinstance(node, SequenceNode):
            stack += [(item, flow) for item in node.value]


def _scalar_of(
    scalars: list[tuple[ScalarNode, ScalarNode, bool]], rule: RuleText
) -> tuple[ScalarNode, ScalarNode, bool]:
    at = rule.offsets[0]
    holding = [s for s in scalars if s[1].start_mark.index <= at < s[1].end_mark.index]
    assert holding, "every rule text comes from a scalar"
    return min(holding, key=lambda s: s[1].end_mark.index - s[1].start_mark.index)


# ---- rewriting one scalar


def _edit(
    text: str,
    key: ScalarNode,
    node: ScalarNode,
    *,
    flow: bool,
    item: RuleField,
    width: int,
    newline: str,
) -> Edit | None:
    printer, tree = rule_printer(item.rule, width)
    start = scalar_start(text, node)
    first = start - (text.rfind("\n", 0, start) + 1)
    block = key.start_mark.column + 2
    header, content = _block_parts(text, start) if node.style in ("|", ">") else ("", None)
    one = _one_line(printer.flat(tree), flow)
    if flow or (first + len(one) <= width and "#" not in header):
        end = node.end_mark.index if content is None else content[1]
        new = one
    else:
        lines = printer.render(tree, block)
        body = newline.join([" " * block + lines[0], *lines[1:]])
        if content is not None:
            start, end = content
            new = body
        else:
            end = node.end_mark.index
            line_end = _line_end(text, end)
            comment = _TRAILING_COMMENT.fullmatch(text, end, line_end)
            if comment is not None:
                end = line_end
            new = ">-" + (comment[0] if comment else "") + newline + body
    if text[start:end] == new:
        return None
    return Edit(item.what, _first(item.rule), start, end, new)


def _line_end(text: str, at: int) -> int:
    """The offset of the line break ending the line `at` is on (or the text's end)."""
    found = _LINE_BREAK.search(text, at)
    return len(text) if found is None else found.start()


def _block_parts(text: str, start: int) -> tuple[str, tuple[int, int]]:
    """A block scalar's header line and the range of its content lines (from the first
    line's indentation to the last non-blank line's end)."""
    header_end = _line_end(text, start)
    header = text[start:header_end]
    content_start = text.find("\n", header_end) + 1
    indent: int | None = None
    content_end = content_start
    at = content_start
    while 0 < at < len(text):
        line_end = _line_end(text, at)
        line = text[at:line_end]
        if line.strip():
            width = len(line) - len(line.lstrip(" "))
            if indent is None:
                indent = width
            elif width < indent:
                break
            content_end = at + len(line.rstrip())
        nl = text.find("\n", line_end)
        at = nl + 1 if nl != -1 else len(text)
    return header, (content_start, content_end)


def _one_line(rule: str, flow: bool) -> str:
    """A one-line rule as a YAML scalar: plain where YAML reads it back as this string."""
    if _plain(rule, flow):
        return rule
    if rule.isprintable():
        return "'" + rule.replace("'", "''") + "'"
    return json.dumps(rule, ensure_ascii=False)


def _plain(rule: str, flow: bool) -> bool:
    if not rule or rule != rule.strip() or not rule.isprintable() or rule[0] in _INDICATORS:
        return False
    if ": " in rule or " #" in rule or rule.endswith(":"):
        return False
    if flow and any(char in rule for char in ",[]{}"):
        return False
    return _resolve(rule) == _STR_TAG


def _resolve(value: str) -> str:
    """The tag YAML's implicit resolvers give a plain scalar (``"true"`` is a bool)."""
    resolver: Any = yaml.resolver.Resolver()
    return str(resolver.resolve(ScalarNode, value, (True, False)))


def _verify(source: Source, before: list[RuleField], text: str) -> None:
    """Refuse a formatted text whose rules would not parse to the same ASTs."""
    try:
        after = rule_fields(load_protocol_text(text, source.path))
        same = len(after) == len(before) and all(
            a.what == b.what
            and shape(parse_rule(RuleText.detached(a.rule.text)))
            == shape(parse_rule(RuleText.detached(b.rule.text)))
            for a, b in zip(after, before, strict=True)
        )
    except ProtocodeError:
        same = False
    if not same:
        message = (
            "internal error: the formatted file would not mean what this one means, so it "
            "was left as it is; please report this with the file"
        )
        raise ProtocodeError([Diagnostic("fmt-internal", message, source.whole)])


# ---- which files, and writing them


def protocol_files(path: Path) -> list[Path]:
    """The protocol files `path` names: itself, or for a folder every YAML file under it
    (hidden folders aside) whose top-level keys include ``protocode``, in version order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UsageError([Diagnostic("usage", f"{path}: no such file or folder")])
    found = []
    for folder, subfolders, names in os.walk(path):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in names:
            file = Path(folder) / name
            if file.suffix in (".yaml", ".yml") and _is_protocol(file):
                found.append(file)
    return sorted(found, key=_order)


def _is_protocol(path: Path) -> bool:
    try:
        return _PROTOCOL_KEY.search(read_source(path).text) is not None
    except LoadError:
        return True  # let formatting report why it cannot be read


def _order(path: Path) -> tuple[str, int, str]:
    match = VERSION_FILE.match(path.name)
    return (str(path.parent), int(match[1]) if match else sys.maxsize, path.name)


def released_files(folder: Path) -> frozenset[str]:
    """The file names the folder's lock records as released; `HistoryError` if it is bad."""
    if not (folder / LOCK_NAME).exists():
        return frozenset()
    history = load_history(folder)
    if history.problems:
        raise HistoryError(history.problems)
    assert history.lock is not None
    return frozenset(release.file for release in history.lock.released)


def write(formatted: Formatted) -> None:
    """Replace the file with its formatted text (atomically, keeping its permissions)."""
    path = Path(formatted.source.path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(formatted.text.encode("utf-8"))
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
