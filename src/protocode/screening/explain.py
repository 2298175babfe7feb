"""Explanations: a record evaluated with tracing, read back against the checked IR.

Screening runs untraced code and gives only the verdicts. An explanation (which values
decided each criterion, which missing items would decide an indeterminate one, which
observations fell outside their window) re-runs the record once with tracing on, so it costs
nothing unless asked for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from protocode.backends.python import Env, Evaluator
from protocode.core.exact import approximate, decimal_places, decimal_text, is_rational, to_fraction
from protocode.language import ir
from protocode.language.check import CheckedProtocol
from protocode.language.types import NumType, Type
from protocode.records import Record
from protocode.screening.results import (
    VERDICTS,
    CriterionExplanation,
    Explanation,
    Finding,
    overall,
)


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


def explain(checked: CheckedProtocol, trace: Trace) -> Explanation:
    """Every criterion of `checked` explained from one traced evaluation of a record."""
    values = list(trace.verdicts)
    tracer = Explainer(trace.evaluator, trace.env)
    explained = []
    for c, v in zip(checked.criteria, values, strict=True):
        if c.rule is None:
            recorded = "not recorded" if v is None else ("true" if v else "false")
            finding = Finding(f"attestation {c.attestation}", recorded, ())
            findings: tuple[Finding, ...] = (finding,)
            missing: tuple[str, ...] = () if v is not None else (f"attestation '{c.attestation}'",)
            notes: tuple[str, ...] = ()
        else:
            findings, missing, notes = tracer.criterion(c.rule)
        explained.append(
            CriterionExplanation(
                c.id, c.kind, c.text, c.source, VERDICTS[v], findings, missing, notes
            )
        )
    status = overall(zip((c.kind for c in checked.criteria), values, strict=True))
    return Explanation(trace.record.id, status, tuple(explained))


class Explainer:
    """Reads a traced evaluation back against the IR."""

    def __init__(self, evaluator: Evaluator, env: Env) -> None:
        self.ev = evaluator
        self.env = env
        self.defs = evaluator.checked.definitions
        assert env.trace is not None
        self.trace = env.trace

    def value(self, node: ir.Expr) -> Any:
        """The value `node` had in the traced evaluation (None: unknown or not reached)."""
        return self.trace.get(self.ev.node_ids.get(id(node), -1))

    def evaluated(self, node: ir.Expr) -> bool:
        """Whether the traced evaluation reached `node`."""
        return self.ev.node_ids.get(id(node), -1) in self.trace

    def criterion(
        self, root: ir.Expr
    ) -> tuple[tuple[Finding, ...], tuple[str, ...], tuple[str, ...]]:
        """A criterion's findings, the items that would decide it, and notes on its data."""
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
            " ".join(node.span.text.split()), show(self.value(node), node.type), tuple(data)
        )

    def _reads(self, node: ir.Expr, out: dict[str, None], seen: set[str]) -> None:
        """Describe every data value the node read, through definitions."""
        if not self.evaluated(node):
            return
        match node:
            case ir.Fact(item=item):
                out[f"{item} = {show(self.value(node), node.type)}"] = None
            case ir.Select(item=item):
                key = self.ev.node_ids.get(id(node), -1)
                obs = self.env.picked.get(key)
                when = f" on {obs.date.isoformat()}" if obs is not None and obs.date else ""
                out[f"{select_text(node)} = {show(self.value(node), node.type)}{when}"] = None
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
                out[f"{name} = {show(self.value(node), node.type)}"] = None
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
                out[f"{node.limit} = {show(limit, node.select.type)} ({source})"] = None
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


def select_text(node: ir.Select) -> str:
    """An observation selection as written in the rule, on one line."""
    return " ".join(node.span.text.split())


def show(value: Any, type_: Type) -> str:
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
