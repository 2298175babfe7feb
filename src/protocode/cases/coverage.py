"""Coverage of a protocol version by its cases: replay them traced, see what was reached."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

from protocode.cases.coverage_report import ConditionCoverage, CoverageReport, CriterionCoverage
from protocode.cases.suite import VERDICTS, CaseSuite, Outcome
from protocode.core.errors import RecordError
from protocode.language import ir
from protocode.language.types import BOOL
from protocode.screening import Protocol, Verdict

_VERDICT_OF: dict[bool | None, Verdict] = {True: "met", False: "not met", None: "unknown"}
_OUTCOME_OF: dict[bool | None, Outcome] = {True: "true", False: "false", None: "unknown"}


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
                for v in VERDICTS
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
