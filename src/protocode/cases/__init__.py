"""Stored test cases of a protocol version: load them, run them, measure their coverage.

A protocol folder keeps its cases beside its versions: ``cases/v1.yaml`` holds the cases of
``v1.yaml`` (the format is described in ``docs/cases.md``). Each case is a patient record,
built from a named base record with some fields set or removed, and the screening result
it must get: status, verdicts of some criteria, the items that would decide it, notes.

    >>> suite = load_cases(Path("protocol/NCT06125106/cases/v1.yaml"))  # doctest: +SKIP
    >>> report = run_cases(protocode.load("protocol/NCT06125106/v1.yaml"), suite)  # doctest: +SKIP
    >>> print(report.to_text())  # doctest: +SKIP

`coverage` replays the cases with tracing on and reports which verdicts every criterion
reached and which outcomes (true, false, unknown) every atomic sub-condition of the rules
reached, so that untested boundaries show up with their place in the protocol file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocode.core.errors import Diagnostic, LoadError, RecordError, UsageError, did_you_mean
from protocode.core.source import Source, Span
from protocode.document.history import VERSION_FILE
from protocode.document.yamlsource import (
    YAML_TAG,
    Entry,
    compose,
    mapping_entries,
    node_span,
    read_source,
)
from protocode.language import ir
from protocode.language.types import BOOL
from protocode.screening import Explanation, Protocol, Status, Verdict

__all__ = [
    "Case",
    "CaseReport",
    "CaseResult",
    "CaseSuite",
    "ConditionCoverage",
    "CoverageReport",
    "CriterionCoverage",
    "Expectation",
    "Gap",
    "Mismatch",
    "coverage",
    "find_case_files",
    "load_cases",
    "run_cases",
]

Outcome = Literal["true", "false", "unknown"]

FORMAT_VERSION = 1
"""The value of the ``protocode-cases`` key this module reads."""

_STATUSES: tuple[Status, ...] = ("eligible", "ineligible", "indeterminate")
_VERDICTS: tuple[Verdict, ...] = ("met", "not met", "unknown")
_OUTCOMES: tuple[Outcome, ...] = ("true", "false", "unknown")
_VERDICT_OF: dict[bool | None, Verdict] = {True: "met", False: "not met", None: "unknown"}
_OUTCOME_OF: dict[bool | None, Outcome] = {True: "true", False: "false", None: "unknown"}


# --- the suite ---------------------------------------------------------------------------------


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


def find_case_files(protocol_dir: str | Path) -> list[tuple[Path, Path]]:
    """Pairs (case file, protocol version file) of a protocol folder, oldest version first.

    ``cases/vN.yaml`` belongs to ``vN.yaml`` (``.yml`` works for either). Other files under
    ``cases/`` are ignored. A case file whose version file does not exist is a `UsageError`,
    so that no stored test is silently skipped.
    """
    protocol_dir = Path(protocol_dir)
    cases_dir = protocol_dir / "cases"
    if not cases_dir.is_dir():
        return []
    pairs: list[tuple[int, Path, Path]] = []
    for case_file in cases_dir.iterdir():
        match = VERSION_FILE.match(case_file.name)
        if match is None or not case_file.is_file():
            continue
        number = int(match.group(1))
        candidates = [protocol_dir / f"v{number}.{ext}" for ext in ("yaml", "yml")]
        version_file = next((c for c in candidates if c.is_file()), None)
        if version_file is None:
            message = f"{case_file}: no protocol version v{number}.yaml in {protocol_dir}"
            raise UsageError.at("usage", message, None)
        pairs.append((number, case_file, version_file))
    return [(case_file, version_file) for _, case_file, version_file in sorted(pairs)]


def load_cases(path: str | Path) -> CaseSuite:
    """Read and validate a case file.

    Raises `LoadError` carrying every problem found, each at ``path:line:col``: YAML
    syntax, unknown or missing keys, values of the wrong form, an unknown base, a field to
    unset that the base lacks, duplicate case names, bad statuses and verdicts. Whether
    the records are valid patient records, and whether the criterion ids exist, depends on
    the protocol: `run_cases` reports those per case.
    """
    path = Path(path)
    return _SuiteReader(read_source(path)).suite(path)


# --- reading the YAML --------------------------------------------------------------------------

_STR, _TIMESTAMP, _INT, _FLOAT = (YAML_TAG + t for t in ("str", "timestamp", "int", "float"))
_BOOL, _NULL = YAML_TAG + "bool", YAML_TAG + "null"
_CONSTRUCTOR = SafeConstructor()
# Numbers are read as exact decimals, like the JSON record reader does: 1.05 is 21/20.
_PLAIN_DECIMAL = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")

_TOP_KEYS = ("protocode-cases", "bases", "cases")
_CASE_KEYS = ("name", "description", "base", "set", "unset", "expect")
_EXPECT_KEYS = ("status", "criteria", "missing", "notes")


class _SuiteReader:
    """Walks the composed YAML node tree (never constructed objects), collecting problems."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        self._open: set[int] = set()

    def error(self, code: str, message: str, node: Node) -> None:
        self.report(code, message, self.span(node))

    def report(self, code: str, message: str, span: Span) -> None:
        self.diagnostics.append(Diagnostic(code, message, span))

    def span(self, node: Node) -> Span:
        """The node's span, cut at the end of its first line to keep carets readable."""
        return node_span(self.source, node)

    def suite(self, path: Path) -> CaseSuite:
        root = compose(self.source, "the case file")
        entries = self.mapping(root, "the case file", _TOP_KEYS)
        if entries is None:
            raise LoadError(self.diagnostics)
        self._format(entries, root)
        bases: dict[str, dict[str, Any]] = {}
        if "bases" in entries:
            bases = self._bases(entries["bases"][1])
        cases: list[Case] = []
        if "cases" not in entries:
            self.error("schema", "missing required key 'cases'", root)
        else:
            cases = self._cases(entries["cases"][1], bases)
        if self.diagnostics:
            raise LoadError(self.diagnostics)
        return CaseSuite(path, tuple(cases), bases)

    def _format(self, entries: dict[str, Entry], root: Node) -> None:
        if "protocode-cases" not in entries:
            self.error("schema", "missing required key 'protocode-cases' (the format, 1)", root)
            return
        node = entries["protocode-cases"][1]
        if not (isinstance(node, ScalarNode) and node.tag == _INT and node.value == "1"):
            message = f"'protocode-cases' must be {FORMAT_VERSION}, the only format version"
            self.error("schema", message, node)

    # --- generic shapes

    def mapping(
        self, node: Node, what: str, allowed: Sequence[str] | None = None
    ) -> dict[str, Entry] | None:
        """Entries (key node, value node) by key text; None when `node` is not a mapping."""
        if not isinstance(node, MappingNode):
            self.error("schema", f"{what} must be a mapping, not {_kind(node)}", node)
            return None

        def known(key_node: ScalarNode) -> bool:
            if allowed is None or key_node.value in allowed:
                return True
            hint = did_you_mean(key_node.value, allowed, expected=True)
            self.error("schema", f"unknown key '{key_node.value}' in {what}{hint}", key_node)
            return False

        return mapping_entries(
            self.source, node, self.report, merge=self._refuse_merge, check_key=known
        )

    def _refuse_merge(self, key_node: Node, value_node: Node) -> tuple[()]:
        message = "merge keys ('<<') are not supported in case files; use a base"
        self.error("schema", message, key_node)
        return ()

    def text(self, node: Node, what: str) -> str | None:
        """A non-empty scalar's text, as written."""
        if not isinstance(node, ScalarNode) or node.tag == _NULL or not node.value.strip():
            self.error("schema", f"{what} must be a non-empty string, not {_kind(node)}", node)
            return None
        value: str = node.value
        return value

    def texts(self, node: Node, what: str) -> list[tuple[str, Node]] | None:
        """A list of strings (a single string is a list of one)."""
        items = node.value if isinstance(node, SequenceNode) else [node]
        out: list[tuple[str, Node]] = []
        for item in items:
            text = self.text(item, f"each entry of {what}")
            if text is None:
                return None
            out.append((text, item))
        return out

    def choice(self, node: Node, what: str, choices: Sequence[str]) -> str | None:
        text = node.value if isinstance(node, ScalarNode) and node.tag != _NULL else None
        if text in choices:
            return text
        listing = ", ".join(choices)
        shown = f"'{text}'" if text is not None else _kind(node)
        self.error("schema", f"{what} must be one of {listing}, not {shown}", node)
        return None

    def plain(self, node: Node) -> Any:
        """A record value: mappings, lists and scalars, numbers as exact `Decimal`s.

        Dates stay text, as the record format wants them; `null` is missing data.
        """
        key = id(node)
        if key in self._open:
            self.error("yaml-alias", "an alias may not refer to a node containing it", node)
            return None
        self._open.add(key)
        try:
            if isinstance(node, SequenceNode):
                return [self.plain(item) for item in node.value]
            if isinstance(node, MappingNode):
                entries = self.mapping(node, "a record value") or {}
                return {name: self.plain(value) for name, (_, value) in entries.items()}
            return self._scalar(node)
        finally:
            self._open.discard(key)

    def _scalar(self, node: Node) -> Any:
        assert isinstance(node, ScalarNode)
        tag, text = node.tag, node.value
        try:
            if tag in (_STR, _TIMESTAMP):
                return text
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return _CONSTRUCTOR.bool_values[text.lower()]
            if tag == _INT:
                return _CONSTRUCTOR.construct_yaml_int(node)
            if tag == _FLOAT:
                if _PLAIN_DECIMAL.fullmatch(text):
                    return Decimal(text)
                return _CONSTRUCTOR.construct_yaml_float(node)
        except (KeyError, ValueError, ConstructorError):
            self.error("yaml-tag", f"'{text}' is not a valid {tag.removeprefix(YAML_TAG)}", node)
            return None
        self.error("yaml-tag", f"unsupported YAML tag '{tag}' in a case file", node)
        return None

    # --- sections

    def _bases(self, node: Node) -> dict[str, dict[str, Any]]:
        entries = self.mapping(node, "'bases'")
        bases: dict[str, dict[str, Any]] = {}
        for name, (_, value) in (entries or {}).items():
            fields = self.mapping(value, f"base '{name}'")
            if fields is None:
                continue
            if "id" in fields:
                message = "a base has no 'id': each case's record id is its name"
                self.error("schema", message, fields["id"][0])
            bases[name] = {
                key: self.plain(field_node)
                for key, (_, field_node) in fields.items()
                if key != "id"
            }
        return bases

    def _cases(self, node: Node, bases: dict[str, dict[str, Any]]) -> list[Case]:
        if not isinstance(node, SequenceNode):
            self.error("schema", f"'cases' must be a list, not {_kind(node)}", node)
            return []
        cases: list[Case] = []
        first_line: dict[str, int] = {}
        for item in node.value:
            case = self._case(item, bases)
            if case is None:
                continue
            if case.name in first_line:
                message = (
                    f"duplicate case name '{case.name}' (first on line {first_line[case.name]})"
                )
                self.report("duplicate-name", message, case.span)
                continue
            first_line[case.name] = case.span.line
            cases.append(case)
        return cases

    def _case(self, node: Node, bases: dict[str, dict[str, Any]]) -> Case | None:
        entries = self.mapping(node, "a case", _CASE_KEYS)
        if entries is None:
            return None
        before = len(self.diagnostics)
        for required in ("name", "expect"):
            if required not in entries:
                self.error("schema", f"missing required key '{required}' in a case", node)
        name = self.text(entries["name"][1], "'name'") if "name" in entries else None
        description = ""
        if "description" in entries:
            description = self.text(entries["description"][1], "'description'") or ""
        base_name: str | None = None
        record: dict[str, Any] = {}
        base_known = True
        if "base" in entries:
            base_node = entries["base"][1]
            base_name = self.text(base_node, "'base'")
            base_known = base_name in bases
            if base_name is not None and not base_known:
                hint = did_you_mean(base_name, bases, expected=True)
                message = f"unknown base '{base_name}'{hint}"
                self.error("unknown-base", message, base_node)
            record = dict(bases.get(base_name or "", {}))
        known = dict.fromkeys(record)
        changed: dict[str, None] = {}
        if "set" in entries:
            fields = self.mapping(entries["set"][1], "'set'") or {}
            for key, (key_node, value_node) in fields.items():
                if key == "id":
                    message = "'set' cannot change the record id: it is the case name"
                    self.error("schema", message, key_node)
                    continue
                record[key] = self.plain(value_node)
                changed[key] = None
        if "unset" in entries:
            for key, key_node in self.texts(entries["unset"][1], "'unset'") or ():
                if key in changed:
                    self.error("schema", f"'{key}' is both set and unset", key_node)
                elif key not in known and base_known:
                    where = f"base '{base_name}'" if base_name else "the record (no base)"
                    hint = did_you_mean(key, known, expected=True)
                    message = f"cannot unset '{key}': {where} has no such field{hint}"
                    self.error("schema", message, key_node)
                else:
                    record.pop(key, None)
        expect = self._expect(entries["expect"][1]) if "expect" in entries else None
        if name is None or expect is None or len(self.diagnostics) > before:
            return None
        record["id"] = name
        span = self.span(entries["name"][1])
        return Case(name, record, expect, span, base_name, description)

    def _expect(self, node: Node) -> Expectation | None:
        entries = self.mapping(node, "'expect'", _EXPECT_KEYS)
        if entries is None:
            return None
        if not entries:
            message = "'expect' needs at least one of status, criteria, missing, notes"
            self.error("schema", message, node)
            return None
        spans: dict[str, Span] = {}
        status: Status | None = None
        if "status" in entries:
            value = entries["status"][1]
            chosen = self.choice(value, "'status'", _STATUSES)
            status = next((s for s in _STATUSES if s == chosen), None)
            spans["status"] = self.span(value)
        criteria: list[tuple[str, Verdict]] = []
        if "criteria" in entries:
            for cid, (_, value) in (
                self.mapping(entries["criteria"][1], "'criteria'") or {}
            ).items():
                chosen = self.choice(value, f"the verdict of {cid}", _VERDICTS)
                criteria.extend((cid, v) for v in _VERDICTS if v == chosen)
                spans[f"criterion {cid}"] = self.span(value)
        missing: tuple[str, ...] | None = None
        if "missing" in entries:
            value = entries["missing"][1]
            if isinstance(value, SequenceNode) and not value.value:
                missing = ()
            else:
                listed = self.texts(value, "'missing'")
                missing = tuple(t for t, _ in listed) if listed is not None else None
            spans["missing"] = self.span(value)
        notes: list[tuple[str, tuple[str, ...]]] = []
        if "notes" in entries:
            for cid, (_, value) in (self.mapping(entries["notes"][1], "'notes'") or {}).items():
                listed = self.texts(value, f"the notes of {cid}")
                if listed is not None:
                    notes.append((cid, tuple(t for t, _ in listed)))
                spans[f"notes {cid}"] = self.span(value)
        return Expectation(status, tuple(criteria), missing, tuple(notes), spans)


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "empty"
    return f"'{node.value}'"


# --- running -----------------------------------------------------------------------------------


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


def run_cases(protocol: Protocol, suite: CaseSuite) -> CaseReport:
    """Screen every case of `suite` with `protocol` and compare with its expectations.

    Each case gets a `CaseResult`; nothing raises for a bad case. A criterion id that the
    protocol does not have is a mismatch of that case.
    """
    results = tuple(_run_case(protocol, case) for case in suite.cases)
    return CaseReport(suite.path, protocol.registry_id, protocol.version, results)


def _run_case(protocol: Protocol, case: Case) -> CaseResult:
    try:
        record = protocol.record(case.record)
    except RecordError as error:
        return CaseResult(case, None, error=error)
    screening = protocol.screen(record)
    expect = case.expect
    where = {what: str(span) for what, span in expect.spans.items()}
    mismatches: list[Mismatch] = []
    if expect.status is not None and expect.status != screening.status:
        mismatches.append(Mismatch("status", expect.status, screening.status, where["status"]))
    verdicts = {c.id: c.verdict for c in screening.criteria}
    for cid, verdict in expect.criteria:
        what = f"criterion {cid}"
        actual = verdicts.get(cid)
        if actual is None:
            mismatches.append(Mismatch(what, verdict, "no such criterion", where[what]))
        elif actual != verdict:
            mismatches.append(Mismatch(what, verdict, actual, where[what]))
    explanation = protocol.explain(record) if expect.missing is not None or expect.notes else None
    if explanation is not None and expect.missing is not None:
        actual_missing = explanation.missing if screening.status == "indeterminate" else ()
        if set(actual_missing) != set(expect.missing):
            mismatches.append(
                Mismatch(
                    "missing",
                    _listing(expect.missing),
                    _listing(actual_missing),
                    where["missing"],
                )
            )
    if explanation is not None:
        notes = {c.id: c.notes for c in explanation.criteria}
        for cid, wanted in expect.notes:
            what = f"notes {cid}"
            if cid not in notes:
                mismatches.append(
                    Mismatch(what, _listing(wanted), "no such criterion", where[what])
                )
                continue
            absent = [w for w in wanted if not any(w in note for note in notes[cid])]
            if absent:
                shown = "; ".join(notes[cid]) or "no notes"
                mismatches.append(
                    Mismatch(what, "notes mentioning " + _listing(absent), shown, where[what])
                )
    if mismatches and explanation is None:
        explanation = protocol.explain(record)
    return CaseResult(
        case, screening.status, tuple(mismatches), explanation=explanation if mismatches else None
    )


def _listing(items: Iterable[str]) -> str:
    shown = [f"'{i}'" for i in items]
    return "[" + ", ".join(shown) + "]"


# --- coverage ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CriterionCoverage:
    """Which verdicts one criterion reached over the cases, of those it can reach."""

    id: str
    kind: Literal["inclusion", "exclusion"]
    location: str
    reached: frozenset[Verdict]
    possible: frozenset[Verdict]

    @property
    def gaps(self) -> tuple[Verdict, ...]:
        """Possible verdicts no case reached."""
        return tuple(v for v in _VERDICTS if v in self.possible and v not in self.reached)


@dataclass(frozen=True, slots=True)
class ConditionCoverage:
    """Which outcomes one atomic sub-condition reached over the cases.

    `owner` is the criterion id, or ``definition NAME`` for a condition inside a
    definition. `text` is the condition's source text; `detail` tells apart the two halves
    of a `between` (``>= 18 years``), which share their text.
    """

    owner: str
    text: str
    detail: str
    location: str
    reached: frozenset[Outcome]
    possible: frozenset[Outcome]

    @property
    def label(self) -> str:
        """The text, with the detail when there is one."""
        return f"{self.text} ({self.detail})" if self.detail else self.text

    @property
    def gaps(self) -> tuple[Outcome, ...]:
        """Possible outcomes no case reached."""
        return tuple(o for o in _OUTCOMES if o in self.possible and o not in self.reached)


@dataclass(frozen=True, slots=True)
class Gap:
    """A verdict or outcome no case reached, located in the protocol file."""

    location: str
    owner: str
    text: str
    missing: tuple[str, ...]

    def __str__(self) -> str:
        what = f"{self.owner}: {self.text}" if self.text else f"{self.owner}"
        return f"{self.location}: {what}: never {' / '.join(self.missing)}"


@dataclass(frozen=True, slots=True)
class CoverageReport:
    """How thoroughly a case suite exercises a protocol version.

    Cases whose record is invalid are not counted (`invalid` names them).
    """

    path: Path
    protocol: str
    version: str
    cases: int
    invalid: tuple[str, ...]
    criteria: tuple[CriterionCoverage, ...]
    conditions: tuple[ConditionCoverage, ...]

    @property
    def gaps(self) -> tuple[Gap, ...]:
        """Every unreached verdict and outcome: each criterion's, then its sub-conditions',
        in criteria order; then those of sub-conditions inside definitions."""
        out: list[Gap] = []
        for crit in self.criteria:
            if crit.gaps:
                out.append(Gap(crit.location, crit.id, "", crit.gaps))
            out.extend(
                Gap(c.location, c.owner, c.label, c.gaps)
                for c in self.conditions
                if c.owner == crit.id and c.gaps
            )
        out.extend(
            Gap(c.location, c.owner, c.label, c.gaps)
            for c in self.conditions
            if c.owner.startswith("definition ") and c.gaps
        )
        return tuple(out)

    def condition(self, owner: str, text: str, detail: str = "") -> ConditionCoverage:
        """The coverage of the sub-condition of `owner` with this source text (and detail)."""
        for c in self.conditions:
            if c.owner == owner and c.text == text and c.detail == detail:
                return c
        raise KeyError((owner, text, detail))

    def to_text(self, verbose: bool = False) -> str:
        """Summary counts and every gap; with `verbose`, every criterion and sub-condition."""
        full_criteria = sum(not c.gaps for c in self.criteria)
        full_conditions = sum(not c.gaps for c in self.conditions)
        lines = [
            f"coverage of {self.protocol} version {self.version} by {self.path}"
            f" ({self.cases} cases)",
            f"  criteria: {full_criteria} of {len(self.criteria)} reached every verdict",
            f"  sub-conditions: {full_conditions} of {len(self.conditions)} reached every outcome",
        ]
        if self.invalid:
            lines.append(f"  not counted (invalid record): {', '.join(self.invalid)}")
        if verbose:
            for crit in self.criteria:
                marks = _marks(_VERDICTS, crit.reached, crit.possible)
                lines.append(f"  {crit.id} ({crit.kind}): {marks}")
                for cond in self.conditions:
                    if cond.owner == crit.id:
                        marks = _marks(_OUTCOMES, cond.reached, cond.possible)
                        lines.append(f"      {cond.label}: {marks}")
            for cond in self.conditions:
                if cond.owner.startswith("definition "):
                    marks = _marks(_OUTCOMES, cond.reached, cond.possible)
                    lines.append(f"  {cond.owner}: {cond.label}: {marks}")
        gaps = self.gaps
        lines.append(f"gaps: {len(gaps)}" if gaps else "gaps: none")
        lines.extend(f"  {g}" for g in gaps)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: every criterion and sub-condition with reached outcomes, gaps."""
        return {
            "file": str(self.path),
            "protocol": self.protocol,
            "version": self.version,
            "cases": self.cases,
            "invalid": list(self.invalid),
            "criteria": [
                {
                    "id": c.id,
                    "kind": c.kind,
                    "location": c.location,
                    "reached": [v for v in _VERDICTS if v in c.reached],
                    "gaps": list(c.gaps),
                }
                for c in self.criteria
            ],
            "conditions": [
                {
                    "owner": c.owner,
                    "text": c.text,
                    "detail": c.detail,
                    "location": c.location,
                    "reached": [o for o in _OUTCOMES if o in c.reached],
                    "gaps": list(c.gaps),
                }
                for c in self.conditions
            ],
            "gaps": [
                {
                    "location": g.location,
                    "owner": g.owner,
                    "text": g.text,
                    "missing": list(g.missing),
                }
                for g in self.gaps
            ],
        }


def _marks(order: Sequence[str], reached: frozenset[str], possible: frozenset[str]) -> str:
    shown = []
    for o in order:
        if o in reached:
            shown.append(f"{o} ✓")
        elif o in possible:
            shown.append(f"{o} ✗")
    return ", ".join(shown)


def coverage(protocol: Protocol, suite: CaseSuite) -> CoverageReport:
    """Replay the suite's cases with tracing and report what they reached.

    Per criterion: which verdicts (met, not met, unknown) some case produced. Per atomic
    sub-condition (a comparison, reference-limit comparison, set membership, `is known`,
    `any`/`no`/`ever`, or a boolean item, definition or observation used directly by
    `and`/`or`/`not`/`if` or as a whole rule), in criteria and definitions alike: which
    of true, false and unknown some case evaluated it to. Conditions skipped by
    short-circuiting count nothing. Outcomes no valid record can give are not expected:
    `is known` is never unknown, and `ecog >= 0` is never false when the data dictionary
    gives ecog the minimum 0.
    """
    defs = protocol.checked.definitions
    conditions: list[tuple[str, ir.Expr, str]] = []
    seen: set[int] = set()
    for c in protocol.criteria:
        if c.rule is not None:
            _collect(c.rule, c.id, True, conditions, seen)
    for name, body in defs.items():
        _collect(body, f"definition {name}", True, conditions, seen)
    verdicts: dict[str, set[Verdict]] = {c.id: set() for c in protocol.criteria}
    outcomes: dict[int, set[Outcome]] = {id(node): set() for _, node, _ in conditions}
    invalid: list[str] = []
    counted = 0
    for case in suite.cases:
        try:
            trace = protocol.trace(case.record)
        except RecordError:
            invalid.append(case.name)
            continue
        counted += 1
        for crit, value in zip(protocol.criteria, trace.verdicts, strict=True):
            verdicts[crit.id].add(_VERDICT_OF[value])
        for _, node, _ in conditions:
            if trace.evaluated(node):
                outcomes[id(node)].add(_OUTCOME_OF[trace.value(node)])
    unknowable: dict[int, bool] = {}
    criteria = tuple(
        CriterionCoverage(
            c.id,
            c.kind,
            str(c.span),
            frozenset(verdicts[c.id]),
            frozenset(
                v
                for v in _VERDICTS
                if v != "unknown" or c.rule is None or _may_be_unknown(c.rule, defs, unknowable)
            ),
        )
        for c in protocol.criteria
    )
    report_conditions = tuple(
        ConditionCoverage(
            owner,
            " ".join(node.span.text.split()),
            detail,
            str(node.span),
            frozenset(outcomes[id(node)]),
            _possible(node, protocol, unknowable),
        )
        for owner, node, detail in conditions
    )
    return CoverageReport(
        suite.path,
        protocol.registry_id,
        protocol.version,
        counted,
        tuple(invalid),
        criteria,
        report_conditions,
    )


_LOGIC = (ir.And, ir.Or, ir.Not, ir.If)
_PREDICATES = (ir.Compare, ir.RefCompare, ir.Member, ir.IsKnown)


def _collect(
    node: ir.Expr,
    owner: str,
    operand: bool,
    out: list[tuple[str, ir.Expr, str]],
    seen: set[int],
) -> None:
    """Atomic conditions under `node` in source order; `operand`: used directly as a truth
    value (a whole rule, or an operand of and/or/not/if)."""
    truth_value = isinstance(node, ir.Events) or (
        operand and isinstance(node, ir.Fact | ir.DefRef | ir.Select)
    )
    atomic = isinstance(node, _PREDICATES) or (truth_value and node.type == BOOL)
    # IR nodes may be shared (a `between` operand is): each counts once, where first met.
    if atomic and id(node) not in seen:
        seen.add(id(node))
        out.append((owner, node, ""))
    is_logic = isinstance(node, _LOGIC)
    for child in ir.children(node):
        _collect(child, owner, is_logic, out, seen)
    if isinstance(node, ir.And) and _is_between(node):
        # The halves of a `between` share the whole text: tell them apart by their bound.
        for half in (node.left, node.right):
            assert isinstance(half, ir.Compare)
            index = next(i for i, (_, n, _) in enumerate(out) if n is half)
            out[index] = (owner, half, f"{half.op} {' '.join(half.right.span.text.split())}")


def _is_between(node: ir.And) -> bool:
    left, right = node.left, node.right
    return (
        isinstance(left, ir.Compare)
        and isinstance(right, ir.Compare)
        and left.span == node.span == right.span
        and left.left is right.left
    )


def _possible(node: ir.Expr, protocol: Protocol, memo: dict[int, bool]) -> frozenset[Outcome]:
    """The outcomes some valid record can give `node`."""
    defs = protocol.checked.definitions
    possible: set[Outcome] = {"true", "false"}
    if isinstance(node, ir.Compare):
        possible = _compare_outcomes(node, protocol)
    if _may_be_unknown(node, defs, memo):
        possible.add("unknown")
    return frozenset(possible)


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _compare_outcomes(node: ir.Compare, protocol: Protocol) -> set[Outcome]:
    """True/false outcomes of `item op constant` that the item's plausible range allows.

    A record outside an item's `minimum`/`maximum` is rejected, so `ecog >= 0` with
    minimum 0 can never be false: expecting that outcome would report a gap no case can
    fill. The range is taken as continuous, which can only over-approximate.
    """
    op = str(node.op)
    fact, const = node.left, node.right
    if isinstance(fact, ir.Const) and isinstance(const, ir.Fact):
        fact, const, op = const, fact, _FLIP[op]
    both: set[Outcome] = {"true", "false"}
    if not (isinstance(fact, ir.Fact) and isinstance(const, ir.Const)):
        return both
    item = protocol.checked.items.get(fact.item)
    value = const.value
    if (
        item is None
        or const.type != protocol.checked.item_types.get(fact.item)
        or isinstance(value, bool)
        or not isinstance(value, int | Fraction)
    ):
        return both
    lo = Fraction(item.minimum) if item.minimum is not None else None
    hi = Fraction(item.maximum) if item.maximum is not None else None
    below = lo is None or lo < value  # some plausible value is below the constant
    above = hi is None or hi > value
    at = (lo is None or lo <= value) and (hi is None or value <= hi)
    only = lo is not None and lo == hi == value
    true_possible = {
        "<": below,
        "<=": below or at,
        ">": above,
        ">=": above or at,
        "==": at,
        "!=": not only,
    }[op]
    false_possible = {
        "<": above or at,
        "<=": above,
        ">": below or at,
        ">=": below,
        "==": not only,
        "!=": at,
    }[op]
    out: set[Outcome] = set()
    if true_possible:
        out.add("true")
    if false_possible:
        out.add("false")
    return out


def _may_be_unknown(node: ir.Expr, defs: Mapping[str, ir.Expr], memo: dict[int, bool]) -> bool:
    """Whether some record can make `node` unknown (conservative: True when unsure)."""
    key = id(node)
    if key in memo:
        return memo[key]
    # Provisionally True: definitions are acyclic, but a guard costs nothing.
    memo[key] = True
    match node:
        case ir.IsKnown() | ir.Const():
            result = False
        case ir.Fact() | ir.Select() | ir.Events() | ir.RefCompare():
            result = True
        case ir.Arith(op="/"):
            result = True  # division by zero is unknown
        case ir.DefRef(name=name):
            result = _may_be_unknown(defs[name], defs, memo)
        case _:
            result = any(_may_be_unknown(c, defs, memo) for c in ir.children(node))
    memo[key] = result
    return result
