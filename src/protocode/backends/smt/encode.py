"""SMT encoding: checked IR over a symbolic patient (`patient`), as z3 terms.

Three-valued logic is a pair (known, value) of z3 booleans, so "missing" is just another
input the solver may choose. Encodings are exact:

- numbers are z3 reals (exact rationals; integer items carry an `IsInt` constraint), unit
  conversions are rational constants, Cockcroft-Gault is nonlinear real arithmetic;
- dates are (year, month, day) triples within 1900–2100 with their day number derived by
  the proleptic Gregorian formula, so day windows, calendar months and completed years are
  all exact;
- a quantity whose unit changes between the versions compared is held in one canonical
  unit and each version's encoder scales it exactly into its own (`Reading`, and
  `protocode.records.restate`);
- observation and event histories are bounded: each item has at most `slots` entries
  (default 2), sorted by date as records are. Verdicts proved under this bound say so.

A construct outside the encoding raises `Unsupported`; callers then fall back to a search.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import z3

from protocode.backends.smt.patient import (
    FALSE,
    TRUE,
    ObsSlot,
    OccSlot,
    Patient,
    SymDate,
    Unsupported,
    Val,
    add_months,
    real,
    same,
)
from protocode.language import ir


def _kleene_and(a: Val, b: Val) -> Val:
    known = z3.Or(
        z3.And(a.known, b.known), z3.And(a.known, z3.Not(a.value)), z3.And(b.known, z3.Not(b.value))
    )
    return Val(known, z3.And(z3.Or(z3.Not(a.known), a.value), z3.Or(z3.Not(b.known), b.value)))


def _kleene_not(a: Val) -> Val:
    return Val(a.known, z3.Not(a.value))


def _differ(a: Any, b: Any) -> z3.BoolRef:
    return z3.Not(same(a, b))


def _ite(c: z3.BoolRef, a: Any, b: Any) -> Any:
    if isinstance(a, SymDate):
        # A chosen date has no calendar fields of its own (calendar ops on it: unsupported).
        return SymDate(z3.If(c, a.day, b.day))
    return z3.If(c, a, b)


_COMPARE: dict[str, Callable[[Any, Any], z3.BoolRef]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


class Encoder(ir.Visitor[Val]):
    """Encodes the rules of one protocol version over a shared symbolic patient.

    `scales` (see `Reading`) turn the patient's canonical quantities into this version's
    units, where they differ: its rules and constants are in its own units.
    """

    def __init__(
        self,
        patient: Patient,
        definitions: Mapping[str, ir.Expr],
        scales: Mapping[str, Fraction] | None = None,
    ) -> None:
        self.patient = patient
        self.definitions = definitions
        self.scales = scales or {}
        self._defs: dict[str, Val] = {}

    def encode(self, node: ir.Expr) -> Val:
        """The symbolic value of an IR expression."""
        return self.visit(node)

    # ---- leaves

    def const(self, node: ir.Const) -> Val:
        return Val(TRUE, self._literal(node.value))

    def _literal(self, value: ir.Value) -> Any:
        return self.patient.literal(value)

    def fact(self, node: ir.Fact) -> Val:
        val = self.patient.fact(node.item)
        return Val(val.known, self._own(node.item, val.value))

    def _own(self, item: str, value: Any) -> Any:
        """A quantity of the shared patient in this version's unit for `item`."""
        scale = self.scales.get(item)
        return value if scale is None else value * real(scale)

    def def_ref(self, node: ir.DefRef) -> Val:
        if node.name not in self._defs:
            self._defs[node.name] = self.visit(self.definitions[node.name])
        return self._defs[node.name]

    def _window(self, w: ir.Window | None) -> tuple[z3.BoolRef, z3.ArithRef, z3.ArithRef]:
        """(known, first day, last day) of a window; the whole range when there is none."""
        if w is None:
            return TRUE, z3.IntVal(-(10**6)), z3.IntVal(10**6)
        anchor = self.visit(w.anchor)
        at: SymDate = anchor.value

        def shift(n: int) -> z3.ArithRef:
            return add_months(at, n, self.patient).day if w.unit == "mo" else at.day + n

        match w.kind:
            case "within_before":
                lo, hi = shift(-w.amount), at.day
            case "within_after":
                lo, hi = at.day, shift(w.amount)
            case "within_of":
                lo, hi = shift(-w.amount), shift(w.amount)
            case "before":
                lo, hi = z3.IntVal(-(10**6)), at.day - 1
            case _:
                lo, hi = at.day + 1, z3.IntVal(10**6)
        return anchor.known, lo, hi

    def _pick(self, node: ir.Select) -> tuple[z3.BoolRef, list[tuple[z3.BoolRef, ObsSlot]]]:
        """Whether an observation is picked, and which: (condition, slot) pairs.

        As `runtime.pick`: unknown when any value is undated, or when the picked day holds
        two different observations.
        """
        slots: list[ObsSlot] = self.patient.history(node.item).slots
        known, lo, hi = self._window(node.window)
        choices: list[tuple[z3.BoolRef, ObsSlot]] = []
        taken: list[z3.BoolRef] = []
        for s in slots if node.earliest else list(reversed(slots)):
            inside = z3.And(s.exists, s.dated)
            if node.window is not None:
                inside = z3.And(inside, lo <= s.date.day, s.date.day <= hi)
            choices.append((z3.And(inside, *[z3.Not(t) for t in taken]), s))
            taken.append(inside)
        undated = z3.Or([z3.And(s.exists, z3.Not(s.dated)) for s in slots])
        clear = [z3.And(cond, z3.Not(self._tied(s, slots))) for cond, s in choices]
        return z3.And(known, z3.Not(undated), z3.Or(clear)), choices

    @staticmethod
    def _tied(chosen: ObsSlot, slots: Sequence[ObsSlot]) -> z3.BoolRef:
        """Another, different observation on the same day as `chosen`."""
        ties = []
        for other in slots:
            if other is chosen:
                continue
            differs = z3.Or(
                _differ(other.value, chosen.value),
                other.low_known != chosen.low_known,
                z3.And(other.low_known, other.low != chosen.low),
                other.high_known != chosen.high_known,
                z3.And(other.high_known, other.high != chosen.high),
            )
            same_day = z3.And(other.exists, other.dated, other.date.day == chosen.date.day)
            ties.append(z3.And(same_day, differs))
        return z3.Or(ties) if ties else FALSE

    def select(self, node: ir.Select) -> Val:
        known, choices = self._pick(node)
        value = choices[-1][1].value
        for cond, slot in reversed(choices[:-1]):
            value = _ite(cond, slot.value, value)
        return Val(known, self._own(node.item, value))

    def ref_compare(self, node: ir.RefCompare) -> Val:
        known, choices = self._pick(node.select)
        upper = node.limit == "ULN"
        value = choices[-1][1].value
        limit_known: Any = FALSE
        limit: Any = z3.RealVal(0)
        default = real(node.default) if node.default is not None else None
        for cond, slot in reversed(choices):
            own_known = slot.high_known if upper else slot.low_known
            # A record's reference range is stated in its value's unit.
            own = self._own(node.select.item, slot.high if upper else slot.low)
            slot_known = own_known if default is None else TRUE
            slot_limit = own if default is None else z3.If(own_known, own, default)
            value = _ite(cond, slot.value, value)
            limit_known = z3.If(cond, slot_known, limit_known)
            limit = z3.If(cond, slot_limit, limit)
        value = self._own(node.select.item, value)
        test = _COMPARE[node.op](value, real(node.factor) * limit)
        return Val(z3.And(known, limit_known), test)

    def events(self, node: ir.Events) -> Val:
        h = self.patient.history(node.item)
        if not h.slots:
            raise Unsupported("an empty history bound")
        empty = z3.Not(h.slots[0].exists)
        empty_answer = {"any": FALSE, "ever": FALSE, "no": TRUE, "count": z3.RealVal(0)}[node.op]
        if node.op == "ever":
            return Val(h.present, z3.Not(empty))
        window_known, lo, hi = self._window(node.window)
        hits: list[z3.BoolRef] = []
        undated: list[z3.BoolRef] = []
        for s in h.slots:
            start = s.date.day
            end = z3.If(s.has_end, s.end.day, start) if isinstance(s, OccSlot) else start
            hits.append(z3.And(s.exists, s.dated, start <= hi, end >= lo))
            undated.append(z3.And(s.exists, z3.Not(s.dated)))
        any_undated = z3.Or(undated)
        if node.op == "count":
            count = z3.Sum([z3.If(hit, z3.RealVal(1), z3.RealVal(0)) for hit in hits])
            known = z3.And(h.present, z3.Or(empty, z3.And(window_known, z3.Not(any_undated))))
            return Val(known, z3.If(empty, empty_answer, count))
        found = z3.Or(hits)
        known = z3.And(
            h.present, z3.Or(empty, z3.And(window_known, z3.Or(found, z3.Not(any_undated))))
        )
        value = z3.If(empty, empty_answer, found if node.op == "any" else z3.Not(found))
        return Val(known, value)

    # ---- arithmetic

    def arith(self, node: ir.Arith) -> Val:
        a, b = self.visit(node.left), self.visit(node.right)
        known = z3.And(a.known, b.known)
        match node.op:
            case "+":
                return Val(known, a.value + b.value)
            case "-":
                return Val(known, a.value - b.value)
            case "*":
                return Val(known, a.value * b.value)
            case _:
                return Val(z3.And(known, b.value != 0), a.value / b.value)

    def neg(self, node: ir.Neg) -> Val:
        a = self.visit(node.operand)
        return Val(a.known, -a.value)

    def scale(self, node: ir.Scale) -> Val:
        a = self.visit(node.operand)
        return Val(a.known, a.value * real(node.factor))

    def date_shift(self, node: ir.DateShift) -> Val:
        a = self.visit(node.operand)
        date: SymDate = a.value
        if node.unit == "mo":
            return Val(a.known, add_months(date, node.amount, self.patient))
        return Val(a.known, SymDate(date.day + node.amount, None))

    def call(self, node: ir.Call) -> Val:
        args = [self.visit(x) for x in node.args]
        known = z3.And([a.known for a in args]) if args else TRUE
        values = [a.value for a in args]
        match node.func:
            case "min" | "max":
                best = values[0]
                for v in values[1:]:
                    better = v < best if node.func == "min" else v > best
                    best = z3.If(better, v, best)
                return Val(known, best)
            case "abs":
                return Val(known, z3.If(values[0] >= 0, values[0], -values[0]))
            case "floor":
                return Val(known, z3.ToReal(z3.ToInt(values[0])))
            case "ceil":
                return Val(known, -z3.ToReal(z3.ToInt(-values[0])))
            case "round":
                return Val(known, self._round(node, values))
            case "days_between":
                return Val(known, z3.ToReal(values[1].day - values[0].day))
            case "years_between" | "months_between":
                start, end = values
                y1, m1, d1 = self.patient.calendar(start)
                y2, m2, d2 = self.patient.calendar(end)
                if node.func == "years_between":
                    before = z3.Or(m2 < m1, z3.And(m2 == m1, d2 < d1))
                    years = y2 - y1 - z3.If(before, 1, 0)
                    return Val(known, z3.ToReal(years))
                months = (y2 - y1) * 12 + m2 - m1 - z3.If(d2 < d1, 1, 0)
                return Val(known, z3.ToReal(months))
        raise Unsupported(f"function {node.func}")

    def _round(self, node: ir.Call, values: Sequence[Any]) -> Any:
        digits = node.args[1] if len(node.args) > 1 else None
        if digits is not None and not isinstance(digits, ir.Const):
            raise Unsupported("round() with computed digits")
        places = int(str(digits.value)) if isinstance(digits, ir.Const) else 0
        scale = real(Fraction(10) ** places)
        x = values[0] * scale
        half = z3.Q(1, 2)
        up = z3.ToReal(z3.ToInt(x + half))
        down = -z3.ToReal(z3.ToInt(-x + half))
        return z3.If(x >= 0, up, down) / scale

    # ---- predicates and logic

    def compare(self, node: ir.Compare) -> Val:
        a, b = self.visit(node.left), self.visit(node.right)
        left, right = a.value, b.value
        if isinstance(left, SymDate):
            left, right = left.day, right.day
        return Val(z3.And(a.known, b.known), _COMPARE[node.op](left, right))

    def member(self, node: ir.Member) -> Val:
        a = self.visit(node.operand)
        options = [same(a.value, self._literal(v)) for v in node.items]
        inside = z3.Or(options) if options else FALSE
        return Val(a.known, z3.Not(inside) if node.negated else inside)

    def is_known(self, node: ir.IsKnown) -> Val:
        a = self.visit(node.operand)
        return Val(TRUE, a.known if node.known else z3.Not(a.known))

    def and_(self, node: ir.And) -> Val:
        return _kleene_and(self.visit(node.left), self.visit(node.right))

    def or_(self, node: ir.Or) -> Val:
        a, b = _kleene_not(self.visit(node.left)), _kleene_not(self.visit(node.right))
        return _kleene_not(_kleene_and(a, b))

    def not_(self, node: ir.Not) -> Val:
        return _kleene_not(self.visit(node.operand))

    def if_(self, node: ir.If) -> Val:
        c, t, e = self.visit(node.cond), self.visit(node.then), self.visit(node.orelse)
        taken_known = z3.If(c.value, t.known, e.known)
        agree = z3.And(t.known, e.known, same(t.value, e.value))
        known = z3.Or(z3.And(c.known, taken_known), z3.And(z3.Not(c.known), agree))
        value = _ite(z3.And(c.known, z3.Not(c.value)), e.value, t.value)
        return Val(known, value)
