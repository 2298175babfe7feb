"""The one exception family of protocode, and the renderer that shows it to people.

Every stage reports problems as `Diagnostic`s (code, message, location). A stage collects
all diagnostics of a file and raises one `ProtocodeError` subclass carrying them, sorted by
position. The CLI renders them as ``path:line:col: code: message`` plus the source line and a
caret; the API lets callers inspect `.diagnostics`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from protocode.core.source import Span

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a protocol file or a patient record.

    `span` locates it in a file; records have no file, so record problems carry
    `record_id` and `field` instead.
    """

    code: str
    message: str
    span: Span | None = None
    record_id: str | None = None
    field: str | None = None
    severity: Severity = "error"

    @property
    def location(self) -> str:
        """``path:line:col`` for file problems, ``record ID, field F`` for record problems."""
        if self.span is not None:
            return str(self.span)
        parts = []
        if self.record_id is not None:
            parts.append(f"record {self.record_id}")
        if self.field is not None:
            parts.append(f"field {self.field}")
        return ", ".join(parts)

    def sort_key(self) -> tuple[str, int, str, str]:
        """Order by file and offset, then by record and field."""
        if self.span is not None:
            return (self.span.source.path, self.span.start, "", "")
        return ("", 0, self.record_id or "", self.field or "")

    def render(self) -> str:
        """The diagnostic as shown to a person: location, code, message, line and caret."""
        location = self.location
        head = (
            f"{location}: {self.code}: {self.message}"
            if location
            else (f"{self.code}: {self.message}")
        )
        if self.span is None:
            return head
        line_no, col = self.span.line, self.span.col
        line = self.span.source.line_text(line_no)
        end_line, end_col = self.span.end_position
        width = (end_col - col) if end_line == line_no else len(line) - col + 1
        at = col - 1
        if len(line) > _WINDOW:
            line, at = _window(line, at)
            # The caret stops where the shown text does (a span may run to the line's end).
            width = min(width, len(line) - at)
        caret = " " * at + "^" * max(1, width)
        gutter = f"{line_no:>4} | "
        return f"{head}\n{gutter}{line}\n{' ' * (len(gutter) - 2)}| {caret}"

    def to_json(self) -> dict[str, object]:
        """A machine-readable form, for ``--format json`` and editor integrations."""
        out: dict[str, object] = {
            "code": self.code,
            "message": self.message,
            "severity": self.severity,
        }
        if self.span is not None:
            end_line, end_col = self.span.end_position
            out.update(
                file=self.span.source.path,
                line=self.span.line,
                column=self.span.col,
                end_line=end_line,
                end_column=end_col,
            )
        if self.record_id is not None:
            out["record"] = self.record_id
        if self.field is not None:
            out["field"] = self.field
        return out


# The most characters of a source line a diagnostic shows: a file-level error in a JSON file
# written on one line would otherwise print the whole file. Longer lines show a window of
# this width around the caret, `_BEFORE` characters of it ahead of the caret.
_WINDOW = 120
_BEFORE = 40


def _window(line: str, at: int) -> tuple[str, int]:
    """The part of a long `line` shown around index `at`, with ``…`` where text is left out,
    and where `at` falls in it (the caret's column, from 0)."""
    start = max(0, min(at - _BEFORE, len(line) - _WINDOW))
    end = start + _WINDOW
    head = "…" if start else ""
    tail = "…" if end < len(line) else ""
    return f"{head}{line[start:end]}{tail}", at - start + len(head)


class ProtocodeError(Exception):
    """Root of every error protocode raises on bad input. Carries one or more diagnostics."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(
            sorted(diagnostics, key=Diagnostic.sort_key)
        )
        if not self.diagnostics:
            raise ValueError("ProtocodeError needs at least one diagnostic")
        super().__init__(self.diagnostics[0].render().split("\n", 1)[0])

    @classmethod
    def at(cls, code: str, message: str, span: Span | None) -> ProtocodeError:
        """An error with a single diagnostic at `span`."""
        return cls([Diagnostic(code, message, span)])

    def render(self, limit: int = 20) -> str:
        """All diagnostics rendered, capped at `limit` with an ``… and N more`` line."""
        return render(self.diagnostics, limit)


class LoadError(ProtocodeError):
    """The protocol file is not valid YAML or does not match the protocol schema."""


class RuleSyntaxError(ProtocodeError):
    """A rule's text does not parse."""


class CheckError(ProtocodeError):
    """A rule parses but is wrong: unknown names, type or unit mismatches, cycles."""


class RecordError(ProtocodeError):
    """A patient record is malformed: wrong type, unknown unit, bad date."""


class UsageError(ProtocodeError):
    """The caller asked for something that cannot be done (missing file, bad option)."""


def unique(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """The diagnostics without repeats (same place, same message), in their first order."""
    seen: set[tuple[str, int, str]] = set()
    out = []
    for d in diagnostics:
        key = (d.span.source.path if d.span else "", d.span.start if d.span else -1, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def render(diagnostics: Sequence[Diagnostic], limit: int = 20) -> str:
    """Render diagnostics in order, showing at most `limit` of them."""
    shown = [d.render() for d in diagnostics[:limit]]
    if len(diagnostics) > limit:
        shown.append(f"… and {len(diagnostics) - limit} more")
    return "\n".join(shown)


def did_you_mean(word: str, choices: Iterable[str], *, expected: bool = False) -> str:
    """A hint naming the choice closest to a misspelt `word`: `` (did you mean 'x'?)``.

    Empty when no choice is close, unless `expected` asks to list the choices instead:
    `` (expected a, b, c)`` (still empty when there are none).
    """
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (expected {', '.join(options)})" if expected and options else ""
