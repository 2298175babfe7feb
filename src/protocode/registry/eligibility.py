"""The registry's single eligibility text cut into numbered inclusion and exclusion criteria."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from protocode.document.model import CriterionKind
from protocode.registry.draft import DraftCriterion

# A list item: bullet, number (1. 1) (1) 1.2), or letter/roman numeral (a. b) (c) iv.).
_ITEM = re.compile(
    r"(?P<indent>[ ]*)"
    r"(?P<marker>[*\-+•◦▪‣·]|\(?\d{1,3}[.)]|\(\d{1,3}\)|\d{1,3}(?:\.\d{1,3})+\.?"
    r"|\(?[A-Za-z][.)]|\([A-Za-z]\)|\(?[ivxIVX]{2,5}[.)]|\([ivxIVX]{2,5}\))"
    r"[ \t]+(?P<text>\S.*)"
)
_HEADING = re.compile(
    r"(?:(?:key|main|major|general|additional)\s+)?(?P<kind>inclusion|exclusion)"
    r"(?P<criteria>\s+criteri(?:a|on))?(?P<rest>.*)",
    re.IGNORECASE,
)
# A character escaped by the registry's Markdown (``\>= 18``, ``\*``).
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|~=^])")
_SPACES = re.compile(r"[ \t]+")


def split_eligibility(text: str) -> tuple[DraftCriterion, ...]:
    """The criteria of a registry eligibility text, numbered I1…In and E1…Em.

    Sections start at headings such as ``Inclusion Criteria:`` or ``EXCLUSION CRITERIA``
    (any case, colon optional, ``Key …`` and a parenthesised qualifier allowed); items
    before any heading count as inclusion. In a section that uses list markers (``*``,
    ``-``, ``1.``, ``1)``, ``a.`` …), each top-level item is a criterion: lines that
    continue it are joined with a space, and nested items (indented, or of another marker
    style) stay in its text on lines of their own. An unmarked line ending in ``:`` after a
    blank line is a sub-heading, kept as the `heading` of the items under it; another
    unmarked paragraph is a criterion of its own. A section without list markers has one
    criterion per line. Markdown escapes are undone and runs of spaces collapsed.
    """
    out: list[DraftCriterion] = []
    counts = {"inclusion": 0, "exclusion": 0}
    for kind, heading, lines in _sections(text):
        for item_text, sub_heading in _items(lines):
            counts[kind] += 1
            prefix = "I" if kind == "inclusion" else "E"
            label = sub_heading or heading
            out.append(DraftCriterion(f"{prefix}{counts[kind]}", kind, item_text, label))
    return tuple(out)


def _heading(line: str) -> tuple[CriterionKind, str] | None:
    """The kind of a section heading line, and its qualifier as written if it has one."""
    content = line.strip().strip("*_#").strip()
    match = _HEADING.fullmatch(content)
    if match is None:
        return None
    kind: CriterionKind = "inclusion" if match["kind"].lower() == "inclusion" else "exclusion"
    rest = match["rest"].strip().strip("*_").strip()
    if rest.strip(":-–— ") == "":
        return kind, ""
    # A qualified heading ("Inclusion Criteria (Part A):") names criteria and ends in ':'.
    if match["criteria"] and rest.endswith(":") and len(rest) <= 60:
        return kind, content.rstrip("*_ ")
    return None


def _sections(text: str) -> Iterator[tuple[CriterionKind, str, list[str]]]:
    """The text cut at its headings: (kind, qualified heading or "", lines)."""
    kind: CriterionKind = "inclusion"
    heading = ""
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.expandtabs(4).rstrip()
        item = _ITEM.fullmatch(line)
        found = _heading(item["text"] if item else line)
        if found is None:
            lines.append(line)
            continue
        if lines:
            yield kind, heading, lines
        (kind, heading), lines = found, []
    if lines:
        yield kind, heading, lines


@dataclass(slots=True)
class _Item:
    parts: list[str]
    heading: str
    subs: list[tuple[int, str, list[str]]] = field(default_factory=list)

    def add(self, text: str) -> None:
        (self.subs[-1][2] if self.subs else self.parts).append(text)

    def render(self) -> str:
        lines = [" ".join(self.parts)]
        for depth, marker, parts in self.subs:
            lines.append("  " * (depth - 1) + f"{marker} {' '.join(parts)}")
        return "\n".join(lines)


def _style(marker: str) -> str:
    """Markers of one style are siblings; another style at the same indent nests."""
    core = marker.strip("()")
    if core[:1].isdigit():
        return "decimal" if "." in core.rstrip(".") else "number"
    if core[:1].isalpha():
        return "letter"
    return "bullet"


def _clean(text: str) -> str:
    return _SPACES.sub(" ", _ESCAPE.sub(r"\1", text)).strip()


def _items(lines: Sequence[str]) -> Iterator[tuple[str, str]]:
    """The criteria of one section's lines: (text, sub-heading)."""
    if not any(_ITEM.fullmatch(line) for line in lines):
        heading = ""
        texts = [_clean(line) for line in lines]
        texts = [t for t in texts if t]
        for text in texts:
            if text.endswith(":"):
                heading = text
            else:
                yield text, heading
        return
    items: list[_Item] = []
    stack: list[tuple[int, str]] = []  # (indent, style) of the open item and its parents
    heading = ""
    blank = False
    for line in lines:
        if not line.strip():
            blank = True
            continue
        indent = len(line) - len(line.lstrip(" "))
        match = _ITEM.fullmatch(line)
        if match is not None:
            marker, text = match["marker"], _clean(match["text"])
            depth = _place(stack, indent, _style(marker))
            if depth == 0 or not items:
                items.append(_Item([text], heading))
                del stack[:-1]
            else:
                items[-1].subs.append((depth, marker, [text]))
        else:
            text = _clean(line)
            continues = bool(items) and (not blank or bool(stack and indent > stack[0][0]))
            if continues:
                items[-1].add(text)
            elif text.endswith(":"):
                heading = text
                stack.clear()
            else:
                items.append(_Item([text], heading))
                stack.clear()
        blank = False
    for item in items:
        text = item.render()
        if text:
            yield text, item.heading


def _place(stack: list[tuple[int, str]], indent: int, style: str) -> int:
    """The nesting depth of a new item (0: a criterion) and the stack updated for it."""
    for j in range(len(stack) - 1, -1, -1):
        if stack[j] == (indent, style):
            del stack[j + 1 :]
            return j
    while stack and indent < stack[-1][0]:
        stack.pop()
    stack.append((indent, style))
    return len(stack) - 1
