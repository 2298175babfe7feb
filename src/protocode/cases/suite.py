"""The cases of a protocol version as read: a suite of cases, each a record and its expectations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from protocode.core.source import Span
from protocode.screening import Status, Verdict

Outcome = Literal["true", "false", "unknown"]
"""What an atomic sub-condition evaluated to."""

STATUSES: tuple[Status, ...] = ("eligible", "ineligible", "indeterminate")
"""The screening statuses, in the order messages list them."""
VERDICTS: tuple[Verdict, ...] = ("met", "not met", "unknown")
"""The verdicts of a criterion, in the order messages and reports list them."""
OUTCOMES: tuple[Outcome, ...] = ("true", "false", "unknown")
"""The outcomes of a sub-condition, in the order reports list them."""


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a case must screen as. Only what is given is checked.

    `spans` locates each expectation in the case file, keyed like `Mismatch.what`:
    ``status``, ``criterion I5``, ``missing``, ``notes I5``.
    """

    status: Status | None = None
    criteria: tuple[tuple[str, Verdict], ...] = ()
    missing: tuple[str, ...] | None = None
    notes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    spans: Mapping[str, Span] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Case:
    """One stored case: a complete patient record and its expected screening.

    `record` is the base with `set` applied and `unset` removed, its ``id`` the case name;
    treat it as read-only (cases share the values of their base).
    """

    name: str
    record: Mapping[str, Any]
    expect: Expectation
    span: Span
    base: str | None = None
    description: str = ""

    @property
    def location(self) -> str:
        """``path:line:col`` of the case's name in its file."""
        return str(self.span)


@dataclass(frozen=True, slots=True)
class CaseSuite:
    """The cases of one case file, in file order."""

    path: Path
    cases: tuple[Case, ...]
    bases: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
