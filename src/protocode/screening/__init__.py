"""Run stage: screen patient records against a compiled protocol, and explain the verdicts.

Screening runs the untraced closures: only the verdicts. An explanation (which values
decided each criterion, which missing items would decide an indeterminate one, which
observations fell outside their window) re-runs the record once with tracing on, so it
costs nothing unless asked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Any, Literal, TypeVar, cast, get_args

from protocode.backends.python import Env, Evaluator, SectionFunctions, compile_protocol
from protocode.backends.python.pycode import compile_fast
from protocode.core.errors import Diagnostic, RecordError, UsageError
from protocode.core.exact import (
    approximate,
    decimal_places,
    decimal_text,
    is_rational,
    to_fraction,
)
from protocode.language import ir
from protocode.language.check import CheckedCriterion, CheckedProtocol
from protocode.language.types import NumType, Type
from protocode.records import Record, RecordReader, iter_records

Verdict = Literal["met", "not met", "unknown"]
Status = Literal["eligible", "ineligible", "indeterminate"]
Backend = Literal["fast", "reference"]
"""How a `Protocol` screens: "fast" runs the generated Python function of every criterion
(`backends.python.pycode`), "reference" the closures that also trace explanations
(`backends.python.closures`). Both give the same verdicts."""

BACKENDS: tuple[Backend, ...] = get_args(Backend)
"""Every backend a `Protocol` can screen with, the default first."""

_T = TypeVar("_T")

_VERDICT: dict[bool | None, Verdict] = {True: "met", False: "not met", None: "unknown"}


@dataclass(frozen=True, slots=True)
class CriterionResult:
    """One criterion's verdict for one record."""

    id: str
    kind: Literal["inclusion", "exclusion"]
    verdict: Verdict

    @property
    def blocks(self) -> bool:
        """True when this verdict alone makes the patient ineligible."""
        return self.verdict == ("not met" if self.kind == "inclusion" else "met")


@dataclass(frozen=True, slots=True)
class Finding:
    """A sub-expression that decided a criterion, with its value and the data it read."""

    rule: str
    value: str
    data: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CriterionExplanation:
    """Why a criterion came out as it did."""

    id: str
    kind: Literal["inclusion", "exclusion"]
    text: str
    rule: str
    verdict: Verdict
    findings: tuple[Finding, ...]
    missing: tuple[str, ...]
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.id,
            "kind": self.kind,
            "verdict": self.verdict,
            "rule": self.rule,
            "findings": [
                {"rule": f.rule, "value": f.value, "data": list(f.data)} for f in self.findings
            ],
            "missing": list(self.missing),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    """A whole record's screening, criterion by criterion."""

    record_id: str
    status: Status
    criteria: tuple[CriterionExplanation, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        """Data items whose absence left some criterion undecided."""
        seen: dict[str, None] = {}
        for c in self.criteria:
            if c.verdict == "unknown":
                seen.update(dict.fromkeys(c.missing))
        return tuple(seen)

    def to_text(self) -> str:
        """A report for a coordinator: status, then each criterion with its reasons."""
        lines = [f"record {self.record_id}: {self.status.upper()}"]
        for c in self.criteria:
            # Marks show the effect on eligibility: an exclusion that is not met passes.
            blocks = c.verdict == ("not met" if c.kind == "inclusion" else "met")
            mark = "?" if c.verdict == "unknown" else "✗" if blocks else "✓"
            lines.append(f"  {mark} {c.id} ({c.kind}) {c.verdict}: {c.text}")
            if c.rule:
                lines.append(f"      rule: {c.rule}")
            for f in c.findings:
                data = f"  [{'; '.join(f.data)}]" if f.data else ""
                lines.append(f"      {f.rule} → {f.value}{data}")
            lines.extend(f"      note: {n}" for n in c.notes)
            if c.missing:
                lines.append(f"      missing: {', '.join(c.missing)}")
        if self.status == "indeterminate":
            deciding = ", ".join(self.missing) or "no missing item (see the notes above)"
            lines.append(f"  would be decided by: {deciding}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.record_id,
            "status": self.status,
            "missing": list(self.missing),
            "criteria": [c.to_json() for c in self.criteria],
        }


@dataclass(frozen=True, slots=True)
class Screening:
    """The result of screening one record: status and per-criterion verdicts."""

    record_id: str
    status: Status
    criteria: tuple[CriterionResult, ...]
    _record: Record = field(repr=False, compare=False)
    _protocol: Protocol = field(repr=False, compare=False)

    def explain(self) -> Explanation:
        """Why: the values that decided each criterion, and what is missing."""
        return self._protocol.explain(self._record)

    @property
    def missing(self) -> tuple[str, ...]:
        """Data items that would decide an indeterminate result (empty otherwise)."""
        if self.status != "indeterminate":
            return ()
        return self.explain().missing

    def verdict(self, criterion_id: str) -> Verdict:
        """The verdict of one criterion by id."""
        for c in self.criteria:
            if c.id == criterion_id:
                return c.verdict
        raise KeyError(criterion_id)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: id, status, verdicts by criterion id, missing items."""
        return {
            "id": self.record_id,
            "status": self.status,
            "criteria": {c.id: c.verdict for c in self.criteria},
            "missing": list(self.missing),
        }


def overall(criteria: Iterable[tuple[Literal["inclusion", "exclusion"], bool | None]]) -> Status:
    """Eligible iff every inclusion is met and no exclusion is met (Kleene)."""
    unknown = False
    for kind, value in criteria:
        if value is None:
            unknown = True
        elif value is (kind == "exclusion"):
            return "ineligible"
    return "indeterminate" if unknown else "eligible"


@dataclass(frozen=True, slots=True)
class Trace:
    """One record evaluated with every IR node's value recorded."""

    record: Record
    verdicts: tuple[bool | None, ...]
    evaluator: Evaluator
    env: Env

    def value(self, node: ir.Expr) -> Any:
        """The value `node` had (None: unknown or not evaluated, see `evaluated`)."""
        assert self.env.trace is not None
        return self.env.trace.get(self.evaluator.node_ids.get(id(node), -1))

    def evaluated(self, node: ir.Expr) -> bool:
        """Whether evaluation reached `node` (short-circuiting skips some)."""
        assert self.env.trace is not None
        return self.evaluator.node_ids.get(id(node), -1) in self.env.trace


class Protocol:
    """A checked and compiled protocol version: screen records, explain, read record files."""

    def __init__(self, checked: CheckedProtocol, backend: Backend = "fast") -> None:
        if backend not in BACKENDS:
            choices = ", ".join(BACKENDS)
            raise UsageError.at("usage", f"unknown backend {backend!r}; one of {choices}", None)
        self.checked = checked
        self.backend: Backend = backend
        self.reader = RecordReader(checked.doc.data, checked.attestations)
        self._kinds = tuple(c.kind for c in checked.criteria)
        self._verdicts, self._status = self._screeners(backend)
        # Plans a backend built for this protocol (e.g. SQL statements by input column types),
        # kept here so that they live and die with the protocol.
        self.plans: dict[Hashable, Any] = {}
        self._built: dict[Callable[[Protocol], Any], Any] = {}
        # Results are immutable: one shared object per criterion and verdict.
        self._results = tuple(
            {v: CriterionResult(c.id, c.kind, text) for v, text in _VERDICT.items()}
            for c in checked.criteria
        )

    def _screeners(
        self, backend: Backend
    ) -> tuple[Callable[[Record], tuple[bool | None, ...]], Callable[[Record], Status]]:
        """The verdicts and status functions of `backend`, each taking a record."""
        if backend == "reference":
            criteria, kinds = self.closures.criteria, self._kinds

            def reference_verdicts(record: Record) -> tuple[bool | None, ...]:
                env = Env(record)
                return tuple(fn(env) for fn in criteria)

            def reference_status(record: Record) -> Status:
                return overall(zip(kinds, reference_verdicts(record), strict=True))

            return reference_verdicts, reference_status
        program = compile_fast(self.checked)
        verdicts_fn, status_fn = program.verdicts_fn, program.status_fn

        def fast_verdicts(record: Record) -> tuple[bool | None, ...]:
            return verdicts_fn(record.values, record.series, record.events, record.attestations)

        def fast_status(record: Record) -> Status:
            return cast(
                Status,
                status_fn(record.values, record.series, record.events, record.attestations),
            )

        return fast_verdicts, fast_status

    @cached_property
    def closures(self) -> Evaluator:
        """The reference closures without tracing (the "reference" backend's screening)."""
        return compile_protocol(self.checked)

    @cached_property
    def traced(self) -> Evaluator:
        """The reference closures with tracing, for explanations and coverage (built once)."""
        return compile_protocol(self.checked, trace=True)

    @cached_property
    def sections(self) -> SectionFunctions:
        """The optional sections' expressions (dosing and endpoint dates, conditions),
        compiled once."""
        return SectionFunctions(self.checked)

    def built(self, factory: Callable[[Protocol], _T]) -> _T:
        """What `factory` builds for this protocol, built on first use and kept with it.

        For objects a later stage makes from a protocol (the dosing compliance reader): they
        live and die with the protocol, instead of in a table keyed by it.
        """
        if factory not in self._built:
            self._built[factory] = factory(self)
        return cast(_T, self._built[factory])

    @property
    def registry_id(self) -> str:
        """The registry id, e.g. NCT06125106."""
        return self.checked.doc.metadata.registry_id

    @property
    def version(self) -> str:
        """The protocol version."""
        return self.checked.doc.metadata.version

    @property
    def criteria(self) -> tuple[CheckedCriterion, ...]:
        """The checked criteria, inclusion first, in file order."""
        return self.checked.criteria

    def to_sql(self, dialect: str = "duckdb", *, pretty: bool = True) -> str:
        """The screening query over the documented table layout, in a sqlglot `dialect`."""
        from protocode.backends.sql import to_sql  # noqa: PLC0415 - sqlglot only when SQL is asked for

        return to_sql(self.checked, dialect, pretty=pretty)

    def to_json(self) -> dict[str, Any]:
        """The checked, typed rules as a ``protocode-compiled`` document (docs/compiled-json.md)."""
        from protocode.backends.export import export_json  # noqa: PLC0415 - the export imports Protocol

        return export_json(self)

    def record(self, data: Record | Mapping[str, Any]) -> Record:
        """A validated record (raises `RecordError` with every bad field)."""
        return data if isinstance(data, Record) else self.reader.parse(data)

    def verdicts(self, record: Record) -> tuple[bool | None, ...]:
        """Raw three-valued verdicts per criterion (True = the criterion holds)."""
        return self._verdicts(record)

    def status(self, record: Record) -> Status:
        """Only the overall status: the fastest path, for bulk screening."""
        return self._status(record)

    def screen(self, data: Record | Mapping[str, Any]) -> Screening:
        """Screen one record: overall status and every criterion's verdict."""
        record = self.record(data)
        values = self.verdicts(record)
        results = tuple(choices[v] for choices, v in zip(self._results, values, strict=True))
        status = overall(zip(self._kinds, values, strict=True))
        return Screening(record.id, status, results, record, self)

    def screen_many(
        self, records: Iterable[Record | RecordError | Mapping[str, Any]]
    ) -> Iterator[Screening | RecordError]:
        """Screen many records; a bad record yields its `RecordError` and the batch goes on.

        A record whose id was already seen is an error too: results are reported by id, so
        two patients under one id would be indistinguishable.
        """
        seen: dict[str, int] = {}
        for n, item in enumerate(iter_records(records, self.reader), 1):
            if isinstance(item, RecordError):
                yield item
            elif item.id in seen:
                message = f"record id {item.id!r} already used by record {seen[item.id]}"
                yield RecordError([Diagnostic("duplicate-id", message, record_id=item.id)])
            else:
                seen[item.id] = n
                yield self.screen(item)

    def trace(self, data: Record | Mapping[str, Any]) -> Trace:
        """Evaluate one record recording the value of every IR node (for coverage tools)."""
        record = self.record(data)
        traced = self.traced
        env = Env(record, trace=True)
        verdicts = tuple(fn(env) for fn in traced.criteria)
        return Trace(record, verdicts, traced, env)

    def explain(self, data: Record | Mapping[str, Any]) -> Explanation:
        """Screen one record with tracing, and explain every criterion."""
        record = self.record(data)
        trace = self.trace(record)
        values = list(trace.verdicts)
        tracer = _Explainer(trace.evaluator, trace.env)
        explained = []
        for c, v in zip(self.checked.criteria, values, strict=True):
            if c.rule is None:
                recorded = "not recorded" if v is None else ("true" if v else "false")
                finding = Finding(f"attestation {c.attestation}", recorded, ())
                findings: tuple[Finding, ...] = (finding,)
                missing: tuple[str, ...] = (
                    () if v is not None else (f"attestation '{c.attestation}'",)
                )
                notes: tuple[str, ...] = ()
            else:
                findings, missing, notes = tracer.criterion(c.rule)
            explained.append(
                CriterionExplanation(
                    c.id, c.kind, c.text, c.source, _VERDICT[v], findings, missing, notes
                )
            )
        status = overall(zip(self._kinds, values, strict=True))
        return Explanation(record.id, status, tuple(explained))


_ATOMIC = (ir.Compare, ir.RefCompare, ir.Member, ir.IsKnown, ir.Events, ir.Fact, ir.DefRef)


class _Explainer:
    """Reads a traced evaluation back against the IR."""

    def __init__(self, evaluator: Evaluator, env: Env) -> None:
        self.ev = evaluator
        self.env = env
        self.defs = evaluator.checked.definitions
        assert env.trace is not None
        self.trace = env.trace

    def value(self, node: ir.Expr) -> Any:
        return self.trace.get(self.ev.node_ids.get(id(node), -1))

    def evaluated(self, node: ir.Expr) -> bool:
        return self.ev.node_ids.get(id(node), -1) in self.trace

    def criterion(
        self, root: ir.Expr
    ) -> tuple[tuple[Finding, ...], tuple[str, ...], tuple[str, ...]]:
        # `between` lowers to two comparisons over one span: show such a pair once.
        findings = tuple(dict.fromkeys(self._finding(n) for n in self._deciding(root)))
        missing: dict[str, None] = {}
        if self.value(root) is None:
            self._missing(root, missing, set())
        notes: dict[str, None] = {}
        self._notes(root, notes, set())
        return findings, tuple(missing), tuple(notes)

    def _deciding(self, node: ir.Expr) -> list[ir.Expr]:
        """The atomic sub-expressions that decided `node`'s value."""
        v = self.value(node)
        match node:
            case ir.And(left=a, right=b) | ir.Or(left=a, right=b):
                decisive = v is False if isinstance(node, ir.And) else v is True
                parts = [a, b]
                if decisive:
                    parts = [p for p in parts if self.value(p) is v] or parts
                elif v is None:
                    parts = [p for p in parts if p is not None and self.value(p) is None]
                return [d for p in parts for d in self._deciding(p)]
            case ir.Not(operand=x):
                return self._deciding(x)
            case ir.If(cond=c, then=t, orelse=e):
                cv = self.value(c)
                branches = [t] if cv is True else [e] if cv is False else [t, e]
                return self._deciding(c) + [d for b in branches for d in self._deciding(b)]
            case _:
                return [node]

    def _finding(self, node: ir.Expr) -> Finding:
        data: dict[str, None] = {}
        self._reads(node, data, set())
        return Finding(
            " ".join(node.span.text.split()), _show(self.value(node), node.type), tuple(data)
        )

    def _reads(self, node: ir.Expr, out: dict[str, None], seen: set[str]) -> None:
        """Describe every data value the node read, through definitions."""
        if not self.evaluated(node):
            return
        match node:
            case ir.Fact(item=item):
                out[f"{item} = {_show(self.value(node), node.type)}"] = None
            case ir.Select(item=item):
                key = self.ev.node_ids.get(id(node), -1)
                obs = self.env.picked.get(key)
                when = f" on {obs.date.isoformat()}" if obs is not None and obs.date else ""
                out[f"{_select_text(node)} = {_show(self.value(node), node.type)}{when}"] = None
            case ir.Events(item=item):
                occurrences = self.env.events.get(item)
                shown = (
                    "not recorded"
                    if occurrences is None
                    else ", ".join(o.date.isoformat() if o.date else "undated" for o in occurrences)
                    or "none"
                )
                out[f"{item}: {shown}"] = None
            case ir.DefRef(name=name):
                out[f"{name} = {_show(self.value(node), node.type)}"] = None
                if name not in seen:
                    seen.add(name)
                    self._reads(self.defs[name], out, seen)
        if isinstance(node, ir.RefCompare):
            obs = self.env.picked.get(self.ev.node_ids.get(id(node.select), -1))
            limit = obs.high if obs is not None and node.limit == "ULN" else None
            if obs is not None and node.limit == "LLN":
                limit = obs.low
            source = "reference range" if limit is not None else "protocol default"
            limit = limit if limit is not None else node.default
            if limit is not None:
                out[f"{node.limit} = {_show(limit, node.select.type)} ({source})"] = None
        for child in ir.children(node):
            self._reads(child, out, seen)

    def _missing(self, node: ir.Expr, out: dict[str, None], seen: set[str]) -> None:
        """Data items under unknown sub-expressions: what would decide them.

        A definition is read once (`seen`), however often it is used: its items are the same.
        """
        match node:
            case ir.Fact(item=item):
                if self.value(node) is None:
                    out[item] = None
                return
            case ir.Select(item=item) | ir.Events(item=item):
                w = node.window
                if w is not None and self.evaluated(w.anchor) and self.value(w.anchor) is None:
                    self._missing(w.anchor, out, seen)
                elif self.value(node) is None:
                    out[item] = None
                return
            case ir.RefCompare(select=s):
                if self.value(s) is None:
                    self._missing(s, out, seen)
                else:
                    out[f"{s.item} {node.limit}"] = None
                return
            case ir.DefRef(name=name):
                if self.value(node) is None and name not in seen:
                    seen.add(name)
                    self._missing(self.defs[name], out, seen)
                return
        for child in ir.children(node):
            # Short-circuiting skips some children; only those evaluated to unknown matter.
            if self.evaluated(child) and self.value(child) is None:
                self._missing(child, out, seen)

    def _notes(self, node: ir.Expr, out: dict[str, None], seen: set[str]) -> None:
        note = self.env.notes.get(self.ev.node_ids.get(id(node), -1))
        if note:
            out[note] = None
        if isinstance(node, ir.RefCompare):
            self._notes(node.select, out, seen)
        if isinstance(node, ir.DefRef) and node.name not in seen:
            seen.add(node.name)
            self._notes(self.defs[node.name], out, seen)
        for child in ir.children(node):
            self._notes(child, out, seen)


def _select_text(node: ir.Select) -> str:
    return " ".join(node.span.text.split())


def _show(value: Any, type_: Type) -> str:
    """A value for people: exact decimals where finite, units, ISO dates, 'unknown'."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    if is_rational(value):
        text = format_number(value if isinstance(value, int) else to_fraction(value))
        if isinstance(type_, NumType) and not (type_.unit.dimensionless and type_.unit.factor == 1):
            return f"{text} {_TIME_WORDS.get(type_.unit.text, type_.unit.text)}"
        return text
    return repr(value) if isinstance(value, str) else str(value)


# Durations read better in words than in UCUM (`32 years`, not `32 a`).
_TIME_WORDS = {"a": "years", "mo": "months", "wk": "weeks", "d": "days", "h": "hours"}


def format_number(x: int | Fraction) -> str:
    """An exact decimal when the fraction terminates, else rounded to 2 places with ≈."""
    places = decimal_places(x)
    if places is not None:
        return decimal_text(x, places)
    return f"≈{approximate(x, lambda f: str(round(f, 2)))}"
