"""Source files and spans: every diagnostic points into a file by character offset.

A `Span` is a half-open character range in a `Source`. Line and column are derived on
demand (1-based, as editors show them), so spans stay cheap to create during parsing.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True, eq=False)
class Source:
    """The text of one file (or an in-memory snippet) that spans point into."""

    path: str
    text: str
    _line_starts: list[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts = [0]
        starts.extend(i + 1 for i, ch in enumerate(self.text) if ch == "\n")
        object.__setattr__(self, "_line_starts", starts)

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        start = self._line_starts[line - 1]
        end = self._line_starts[line] - 1 if line < len(self._line_starts) else len(self.text)
        return self.text[start:end]

    def span(self, start: int, end: int) -> Span:
        """A span over `[start, end)` in this source."""
        return Span(self, start, end)

    @cached_property
    def whole(self) -> Span:
        """A span covering the start of the file (for file-level diagnostics)."""
        return Span(self, 0, 0)


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open range `[start, end)` of character offsets in a `Source`."""

    source: Source
    start: int
    end: int

    @property
    def line(self) -> int:
        """1-based line of the first character."""
        return self.source.position(self.start)[0]

    @property
    def col(self) -> int:
        """1-based column of the first character."""
        return self.source.position(self.start)[1]

    @property
    def end_position(self) -> tuple[int, int]:
        """1-based (line, column) just past the last character."""
        return self.source.position(self.end)

    @property
    def text(self) -> str:
        """The source text the span covers."""
        return self.source.text[self.start : self.end]

    def to(self, other: Span) -> Span:
        """The smallest span covering this one and `other` (same source)."""
        return Span(self.source, min(self.start, other.start), max(self.end, other.end))

    def __str__(self) -> str:
        return f"{self.source.path}:{self.line}:{self.col}"
