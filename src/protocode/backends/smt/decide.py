"""Deciding how two protocol versions relate, criterion by criterion and overall, with z3.

A criterion's *effect* on a patient is block < unknown < pass (an inclusion passes when
met, an exclusion when not met). Version B is *broader* than A for a criterion when some
patient fares better under B and none worse, *narrower* in the opposite case,
*incomparable* when both happen, *equivalent* when neither can. Each direction is one
satisfiability question to z3 over a shared symbolic patient; a satisfiable one yields a
witness patient, decoded into a record that the caller confirms (by screening it with a
compiled protocol, which this layer does not know), so a reported witness is never wrong.
Where the encoding does not reach, z3 gives up, or a witness is not confirmed, the result
is `Undecided` and the caller decides otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from protocode.backends.smt.decode import (
    bool_and_int_vars,
    decode,
    decoded_number,
    real_vars,
    terminates,
)
from protocode.backends.smt.encode import Encoder
from protocode.backends.smt.patient import Patient, Reading, Strings, Unsupported
from protocode.backends.smt.verdict import Comparison, Direction, Witness, relation
from protocode.language.check import CheckedCriterion, CheckedProtocol
from protocode.records.restate import restated

SLOTS = 2
TIMEOUT_MS = 30_000
PREFERENCE_TIMEOUT_MS = 2_000

Confirm = Callable[[dict[str, Any], Direction], Witness | None]
"""Screens a decoded witness record in a direction: the witness, or None if it does not
move the way z3 said (then neither proof is trusted)."""


@dataclass(frozen=True, slots=True)
class Undecided:
    """z3 did not decide: `reason` is why the encoding does not reach the rule, or empty
    when z3 gave up or a witness was not confirmed."""

    reason: str


class Versions:
    """Both versions encoded over one symbolic patient.

    A quantity whose unit changed is held in one canonical unit (`protocode.records.restate`), which
    each version's encoder scales into its own and witnesses state explicitly.
    """

    def __init__(self, old: CheckedProtocol, new: CheckedProtocol, slots: int = SLOTS) -> None:
        shifts = restated(old.items, new.items, old.doc.metadata.version)
        self.units = {name: shift.unit for name, shift in shifts.items()}
        readings = (
            Reading(old.items, {n: s.old for n, s in shifts.items() if s.old != 1}),
            Reading(new.items, {n: s.new for n, s in shifts.items() if s.new != 1}),
        )
        items = {**old.items, **new.items}
        types = {**old.item_types, **new.item_types}
        self.patient = Patient(items, types, Strings(), slots, readings)
        self.old_encoder = Encoder(self.patient, old.definitions, readings[0].scales)
        self.new_encoder = Encoder(self.patient, new.definitions, readings[1].scales)

    def effect(self, encoder: Encoder, c: CheckedCriterion | None) -> z3.ArithRef:
        """0 block, 1 unknown, 2 pass; an absent criterion passes everyone."""
        if c is None:
            return z3.IntVal(2)
        v = (
            self.patient.attestation(c.attestation or "")
            if c.rule is None
            else encoder.encode(c.rule)
        )
        holds_blocks = c.kind == "exclusion"
        blocks = z3.And(v.known, v.value if holds_blocks else z3.Not(v.value))
        return z3.If(blocks, 0, z3.If(v.known, 2, 1))

    def status(self, encoder: Encoder, protocol: CheckedProtocol) -> z3.ArithRef:
        """0 ineligible, 1 indeterminate, 2 eligible."""
        effects = [self.effect(encoder, c) for c in protocol.criteria]
        if not effects:
            return z3.IntVal(2)
        return z3.If(
            z3.Or([e == 0 for e in effects]), 0, z3.If(z3.Or([e == 1 for e in effects]), 1, 2)
        )

    # ---- questions

    def ask(self, question: z3.BoolRef, contrast: z3.BoolRef) -> tuple[str, z3.ModelRef | None]:
        """Decide `question`; when satisfiable, find as telling a witness as is quick.

        The decision never depends on the preferences: they only choose among witnesses,
        preferring a stark contrast (one version passes, the other blocks) and a realistic
        patient (recent dates, no lab-specific reference range).
        """
        result, model = self._solve([question], TIMEOUT_MS)
        if model is None:
            return result, None
        realism = self.patient.realism()
        facts = [question]
        for preference in ([contrast, *realism], realism, [contrast]):
            _, preferred = self._solve([question, *preference], PREFERENCE_TIMEOUT_MS)
            if preferred is not None:
                model, facts = preferred, [question, *preference]
                break
        return "sat", self._decimal_model(facts, model)

    def _solve(self, facts: list[z3.BoolRef], timeout: int) -> tuple[str, z3.ModelRef | None]:
        # Simplifying and eliminating the many definitional equalities (day numbers, picks)
        # before search makes these problems several times faster than the default solver.
        solver = z3.Then("simplify", "propagate-values", "solve-eqs", "smt").solver()
        solver.set("timeout", timeout)
        solver.add(*self.patient.constraints, *facts)
        result = solver.check()
        if result == z3.sat:
            return "sat", solver.model()
        return ("unsat" if result == z3.unsat else "unknown"), None

    def _decimal_model(self, facts: list[z3.BoolRef], model: z3.ModelRef) -> z3.ModelRef:
        """A model whose numbers are short decimals, so the witness is a writable record.

        When some value has endless decimals (z3 likes 275/48), every number is asked to
        be a multiple of 0.01, then 0.0001, …; dates and flags stay as they were.
        """
        reals = real_vars(self.patient)
        if all(terminates(decoded_number(model.eval(v, model_completion=True))) for v in reals):
            return model
        fixed = [
            var == model.eval(var, model_completion=True) for var in bool_and_int_vars(self.patient)
        ]
        for places in (2, 4, 6):
            decimals = [z3.IsInt(var * 10**places) for var in reals]
            _, found = self._solve([*facts, *fixed, *decimals], PREFERENCE_TIMEOUT_MS)
            if found is not None:
                return found
        return model

    def record(self, model: z3.ModelRef) -> dict[str, Any]:
        """The model as a patient record in the documented format."""
        return decode(self.patient, model, self.units)


def prove_criterion(
    old: CheckedProtocol,
    new: CheckedProtocol,
    old_c: CheckedCriterion | None,
    new_c: CheckedCriterion | None,
    confirm: Confirm,
) -> Comparison | Undecided:
    """The relation of one criterion across versions (either side may be absent), proved."""
    try:
        v = Versions(old, new)
        a = v.effect(v.old_encoder, old_c)
        b = v.effect(v.new_encoder, new_c)
    except Unsupported as exc:
        return Undecided(str(exc))
    return _decide(v, a, b, confirm)


def prove_eligibility(
    old: CheckedProtocol, new: CheckedProtocol, confirm: Confirm
) -> Comparison | Undecided:
    """The relation of overall eligibility across versions, proved."""
    try:
        v = Versions(old, new)
        a, b = v.status(v.old_encoder, old), v.status(v.new_encoder, new)
    except Unsupported as exc:
        return Undecided(str(exc))
    return _decide(v, a, b, confirm)


def _decide(
    v: Versions, a: z3.ArithRef, b: z3.ArithRef, confirm: Confirm
) -> Comparison | Undecided:
    """Ask both directions of `b` (new rank) against `a` (old rank)."""
    witnesses: list[Witness] = []
    found: dict[str, bool] = {}
    questions: tuple[tuple[Direction, z3.BoolRef, z3.BoolRef], ...] = (
        ("broader", b > a, z3.And(a == 0, b == 2)),
        ("narrower", b < a, z3.And(a == 2, b == 0)),
    )
    for direction, question, contrast in questions:
        answer, model = v.ask(question, contrast)
        if answer == "unknown":
            return Undecided("")
        found[direction] = answer == "sat"
        if model is not None:
            witness = confirm(v.record(model), direction)
            if witness is None:
                # The encoding and the reference backend disagree: trust neither proof.
                return Undecided("")
            witnesses.append(witness)
    note = f"proved with z3 (histories bounded to {SLOTS} entries per item)"
    verdict = relation(found["broader"], found["narrower"])
    return Comparison(verdict, "proved", tuple(witnesses), note)
