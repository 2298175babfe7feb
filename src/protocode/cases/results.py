"""The results of running a case suite: per-case mismatches and the report over all cases."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocode.cases.suite import Case
from protocode.core.errors import RecordError
from protocode.screening import Explanation, Status


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One expectation a case did not meet.

    `what` is ``status``, ``criterion I5``, ``missing`` or ``notes I5``; `location` is
    ``path:line:col`` of the expectation in the case file.
    """

    what: str
    expected: str
    actual: str
    location: str

    def to_json(self) -> dict[str, str]:
        """A JSON-ready dict."""
        return {
            "what": self.what,
            "expected": self.expected,
            "actual": self.actual,
            "location": self.location,
        }


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one case.

    A case fails when an expectation is not met, or when its record is not a valid record
    for the protocol (`error`; then nothing was screened and `status` is None). A failed
    case with a valid record carries the record's `explanation`, to show why.
    """

    case: Case
    status: Status | None
    mismatches: tuple[Mismatch, ...] = ()
    error: RecordError | None = None
    explanation: Explanation | None = None

    @property
    def passed(self) -> bool:
        """True when the record was valid and every expectation held."""
        return self.error is None and not self.mismatches

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out: dict[str, Any] = {
            "name": self.case.name,
            "location": self.case.location,
            "passed": self.passed,
            "status": self.status,
            "mismatches": [m.to_json() for m in self.mismatches],
        }
        if self.error is not None:
            out["error"] = [d.to_json() for d in self.error.diagnostics]
        return out


@dataclass(frozen=True, slots=True)
class CaseReport:
    """The results of a case suite against one protocol version, in case order."""

    path: Path
    protocol: str
    version: str
    results: tuple[CaseResult, ...]

    @property
    def passed(self) -> int:
        """How many cases passed."""
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        """How many cases failed (mismatches or an invalid record)."""
        return len(self.results) - self.passed

    @property
    def ok(self) -> bool:
        """True when every case passed."""
        return self.failed == 0

    def to_text(self, verbose: bool = False) -> str:
        """Failures in detail (which case, which expectation, why), then the counts.

        With `verbose`, passing cases are listed too.
        """
        lines = [f"{self.path}: {self.protocol} version {self.version}"]
        for r in self.results:
            if r.passed:
                if verbose:
                    lines.append(f"  ✓ {r.case.name}")
                continue
            lines.append(f"  ✗ {r.case.name}  ({r.case.location})")
            if r.error is not None:
                lines.append("      invalid record:")
                lines.extend(
                    f"        {d.location}: {d.code}: {d.message}" for d in r.error.diagnostics
                )
            for m in r.mismatches:
                lines.append(
                    f"      {m.what}: expected {m.expected}, got {m.actual}  ({m.location})"
                )
            lines.extend(_why(r))
        lines.append(f"{len(self.results)} cases: {self.passed} passed, {self.failed} failed")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: file, protocol, counts and every case's result."""
        return {
            "file": str(self.path),
            "protocol": self.protocol,
            "version": self.version,
            "total": len(self.results),
            "passed": self.passed,
            "failed": self.failed,
            "cases": [r.to_json() for r in self.results],
        }


def _why(result: CaseResult) -> list[str]:
    """The explanation of the criteria a failure is about (all undecided or blocking ones
    when the status was wrong), so that a failing case can be judged without re-running it."""
    if result.explanation is None:
        return []
    named = {m.what.split(" ", 1)[1] for m in result.mismatches if " " in m.what}
    status_wrong = any(m.what in ("status", "missing") for m in result.mismatches)
    lines: list[str] = []
    for c in result.explanation.criteria:
        blocking = c.verdict in ("unknown", "not met" if c.kind == "inclusion" else "met")
        if c.id not in named and not (status_wrong and blocking):
            continue
        lines.append(f"      {c.id} {c.verdict}: {c.rule or c.text}")
        for f in c.findings:
            data = f"  [{'; '.join(f.data)}]" if f.data else ""
            lines.append(f"          {f.rule} → {f.value}{data}")
        lines.extend(f"          note: {n}" for n in c.notes)
        if c.missing:
            lines.append(f"          missing: {', '.join(c.missing)}")
    return lines


def listing(items: Iterable[str]) -> str:
    """Items quoted and bracketed, as expectations and results show them."""
    shown = [f"'{i}'" for i in items]
    return "[" + ", ".join(shown) + "]"
