"""Semantic comparison of two protocol versions, criterion by criterion and overall.

A criterion's *effect* on a patient is block < unknown < pass (an inclusion passes when
met, an exclusion when not met). Version B is *broader* than A for a criterion when some
patient fares better under B and none worse, *narrower* in the opposite case,
*incomparable* when both happen, *equivalent* when neither can. Each direction is one
satisfiability question to z3 over a shared symbolic patient; a satisfiable one yields a
witness patient, decoded into a real record and re-checked with the reference backend, so
a reported witness is never wrong. Where the encoding does not reach (or z3 gives up), a
hypothesis search over generated records decides instead, and says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import z3

from protocode.backends.smt.encode import (
    Encoder,
    ObsSlot,
    OccSlot,
    Patient,
    Reading,
    Strings,
    SymDate,
    Unsupported,
    decoded_number,
)
from protocode.backends.smt.search import search
from protocode.backends.smt.shared import restated
from protocode.backends.smt.verdict import Comparison, Direction, Witness, relation
from protocode.language import ir
from protocode.language.check import CheckedCriterion
from protocode.records import RecordReader
from protocode.screening import Protocol, Screening

SLOTS = 2
TIMEOUT_MS = 30_000
PREFERENCE_TIMEOUT_MS = 2_000


class _Versions:
    """Both versions encoded over one symbolic patient.

    A quantity whose unit changed is held in one canonical unit (`shared.restated`), which
    each version's encoder scales into its own and witnesses state explicitly.
    """

    def __init__(self, old: Protocol, new: Protocol, slots: int = SLOTS) -> None:
        shifts = restated(old.checked.items, new.checked.items, old.version)
        self.units = {name: shift.unit for name, shift in shifts.items()}
        readings = (
            Reading(old.checked.items, {n: s.old for n, s in shifts.items() if s.old != 1}),
            Reading(new.checked.items, {n: s.new for n, s in shifts.items() if s.new != 1}),
        )
        items = {**old.checked.items, **new.checked.items}
        types = {**old.checked.item_types, **new.checked.item_types}
        self.patient = Patient(items, types, Strings(), slots, readings)
        self.old_encoder = Encoder(self.patient, old.checked.definitions, readings[0].scales)
        self.new_encoder = Encoder(self.patient, new.checked.definitions, readings[1].scales)

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

    def status(self, encoder: Encoder, protocol: Protocol) -> z3.ArithRef:
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
        reals = _real_vars(self.patient)
        if all(_terminates(decoded_number(model.eval(v, model_completion=True))) for v in reals):
            return model
        fixed = [
            var == model.eval(var, model_completion=True)
            for var in _bool_and_int_vars(self.patient)
        ]
        for places in (2, 4, 6):
            decimals = [z3.IsInt(var * 10**places) for var in reals]
            _, found = self._solve([*facts, *fixed, *decimals], PREFERENCE_TIMEOUT_MS)
            if found is not None:
                return found
        return model

    def record(self, model: z3.ModelRef) -> dict[str, Any]:
        """The model as a patient record in the documented format."""
        return _decode(self.patient, model, self.units)


def _terminates(f: Fraction) -> bool:
    d = f.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def _bool_and_int_vars(patient: Patient) -> list[Any]:
    """Everything but the reals: kept as they were while the reals are pinned to decimals."""
    out: list[Any] = []
    for val in patient.facts.values():
        out.append(val.known)
        if isinstance(val.value, SymDate):
            out.append(val.value.day)
        elif not (z3.is_arith(val.value) and val.value.is_real()):
            out.append(val.value)
    for h in [*patient.series.values(), *patient.events.values()]:
        out.append(h.present)
        for s in h.slots:
            out += [s.exists, s.dated, s.date.day]
            if isinstance(s, ObsSlot):
                out += [s.low_known, s.high_known]
            else:
                out += [s.has_end, s.end.day]
    return out


def _real_vars(patient: Patient) -> list[z3.ArithRef]:
    out: list[z3.ArithRef] = []
    for val in patient.facts.values():
        if z3.is_arith(val.value) and val.value.is_real():
            out.append(val.value)
    for h in patient.series.values():
        for s in h.slots:
            if z3.is_arith(s.value) and s.value.is_real():
                out.append(s.value)
            out += [s.low, s.high]
    return out


def _decode(patient: Patient, model: z3.ModelRef, units: dict[str, str]) -> dict[str, Any]:
    """The record a model stands for; a quantity in `units` is stated with its unit there."""

    def ev(term: Any) -> Any:
        return model.eval(term, model_completion=True)

    def is_true(term: Any) -> bool:
        return bool(z3.is_true(ev(term)))

    def date(d: SymDate) -> str:
        return (_EPOCH + dt.timedelta(days=ev(d.day).as_long())).isoformat()

    def scalar(name: str, value: Any) -> Any:
        if isinstance(value, SymDate):
            return date(value)
        v = ev(value)
        if z3.is_bool(v):
            return z3.is_true(v)
        item = patient.items[name]
        if item.type in {"code", "text"}:
            return patient.strings.text(v.as_long())
        return _number(decoded_number(v))

    record: dict[str, Any] = {"id": "witness"}
    for name, val in patient.facts.items():
        if is_true(val.known):
            value = scalar(name, val.value)
            record[name] = {"value": value, "unit": units[name]} if name in units else value
    for name, h in patient.series.items():
        if not is_true(h.present):
            continue
        entries = []
        for s in h.slots:
            assert isinstance(s, ObsSlot)
            if not is_true(s.exists):
                break
            entry: dict[str, Any] = {"value": scalar(name, s.value)}
            if name in units:
                # Its reference range, if any, is read in this unit too.
                entry["unit"] = units[name]
            entry["date"] = date(s.date) if is_true(s.dated) else None
            limits = {}
            if is_true(s.low_known):
                limits["low"] = _number(decoded_number(ev(s.low)))
            if is_true(s.high_known):
                limits["high"] = _number(decoded_number(ev(s.high)))
            if limits:
                entry["reference_range"] = limits
            entries.append(entry)
        record[name] = entries
    for name, h in patient.events.items():
        if not is_true(h.present):
            continue
        occurrences = []
        for s in h.slots:
            assert isinstance(s, OccSlot)
            if not is_true(s.exists):
                break
            occ: dict[str, Any] = {"date": date(s.date) if is_true(s.dated) else None}
            if is_true(s.has_end):
                occ["end"] = date(s.end)
            occurrences.append(occ)
        record[name] = occurrences
    attestations = {
        name: is_true(val.value) for name, val in patient.attestations.items() if is_true(val.known)
    }
    if attestations:
        record["attestations"] = attestations
    return record


def _number(f: Fraction) -> int | Decimal | Fraction:
    """Exact and JSON-friendly: int, terminating decimal, or (rarely) a fraction."""
    if f.denominator == 1:
        return f.numerator
    if _terminates(f):
        return Decimal(f.numerator) / Decimal(f.denominator)
    return f


def restrict(protocol: Protocol, record: dict[str, Any]) -> dict[str, Any]:
    """The part of a record a protocol version knows (versions may add or drop items)."""
    items = protocol.checked.items
    out = {k: v for k, v in record.items() if k == "id" or k in items}
    attested = record.get("attestations")
    if isinstance(attested, dict):
        known = set(protocol.checked.attestations)
        out["attestations"] = {k: v for k, v in attested.items() if k in known}
    return out


class _Reading:
    """Reads one patient record for each version, as the shared symbolic patient means it.

    Each version reads with its own dictionary (its units), but also admits the code values
    the other version lists for an item both have: a diagnosis an amendment adds is, for the
    old version's rules, one more code outside their sets, as in the SMT encoding, not an
    invalid record.
    """

    def __init__(self, old: Protocol, new: Protocol) -> None:
        self.old, self.new = old, new
        self._old_reader, self._new_reader = _reader(old, new), _reader(new, old)

    def _screen(self, record: dict[str, Any]) -> tuple[Screening, Screening]:
        old, new = self.old, self.new
        return (
            old.screen(self._old_reader.parse(restrict(old, record))),
            new.screen(self._new_reader.parse(restrict(new, record))),
        )

    def verdicts(
        self, record: dict[str, Any], old_c: CheckedCriterion | None, new_c: CheckedCriterion | None
    ) -> tuple[str, str]:
        """The criterion's verdict under each version ("absent" where it has none)."""
        a, b = self._screen(record)
        return (
            "absent" if old_c is None else a.verdict(old_c.id),
            "absent" if new_c is None else b.verdict(new_c.id),
        )

    def statuses(self, record: dict[str, Any]) -> tuple[str, str]:
        """The overall status under each version."""
        a, b = self._screen(record)
        return a.status, b.status


def _reader(protocol: Protocol, other: Protocol) -> RecordReader:
    others = other.checked.items
    items = [
        dataclasses.replace(item, values=tuple(dict.fromkeys(item.values + others[name].values)))
        if item.type == "code" and (name := item.name) in others and others[name].type == "code"
        else item
        for item in protocol.checked.doc.data
    ]
    return RecordReader(items, protocol.checked.attestations)


def _effect_of(verdict: str, c: CheckedCriterion | None) -> int:
    if c is None or verdict == "absent":
        return 2
    if verdict == "unknown":
        return 1
    blocks = (verdict == "met") == (c.kind == "exclusion")
    return 0 if blocks else 2


def compare_criterion(
    old: Protocol, new: Protocol, old_c: CheckedCriterion | None, new_c: CheckedCriterion | None
) -> Comparison:
    """The semantic relation of one criterion across versions (either side may be absent)."""
    if old_c is not None and new_c is not None and same_meaning_by_text(old, new, old_c, new_c):
        return Comparison("equivalent", "proved", (), _IDENTICAL)
    reading = _Reading(old, new)
    try:
        v = _Versions(old, new)
        a = v.effect(v.old_encoder, old_c)
        b = v.effect(v.new_encoder, new_c)
    except Unsupported as exc:
        return _search_criterion(reading, old_c, new_c, str(exc))

    def check(record: dict[str, Any], direction: Direction) -> Witness | None:
        ov, nv = reading.verdicts(record, old_c, new_c)
        ea, eb = _effect_of(ov, old_c), _effect_of(nv, new_c)
        ok = eb > ea if direction == "broader" else eb < ea
        return Witness(direction, record, ov, nv) if ok else None

    return _decide(v, a, b, check, lambda: _search_criterion(reading, old_c, new_c, ""))


_IDENTICAL = "identical: the same rule over the same definitions and data items"


def same_meaning_by_text(
    old: Protocol, new: Protocol, old_c: CheckedCriterion, new_c: CheckedCriterion
) -> bool:
    """Whether two criteria are written identically, down to every definition and data item
    they read: then they mean the same, and no solver is needed (most of an amendment)."""
    if (old_c.kind, old_c.source, old_c.attestation) != (
        new_c.kind,
        new_c.source,
        new_c.attestation,
    ):
        return False
    if old_c.rule is None or new_c.rule is None:
        return old_c.rule is None and new_c.rule is None
    names_old, names_new = _names(old, old_c.rule), _names(new, new_c.rule)
    if names_old != names_new:
        return False
    old_defs = {d.name: " ".join(d.rule.text.split()) for d in old.checked.doc.definitions}
    new_defs = {d.name: " ".join(d.rule.text.split()) for d in new.checked.doc.definitions}
    for name in names_old:
        if name in old_defs or name in new_defs:
            if old_defs.get(name) != new_defs.get(name):
                return False
        elif _item_key(old, name) != _item_key(new, name):
            return False
    return True


def _names(protocol: Protocol, node: ir.Expr) -> frozenset[str]:
    """Every data item and definition a rule reads, through definitions."""
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        name = getattr(n, "item", None) if isinstance(n, ir.Fact | ir.Select | ir.Events) else None
        if isinstance(n, ir.DefRef):
            name = n.name
            if name not in found:
                stack.append(protocol.checked.definitions[name])
        if name is not None:
            found.add(name)
        if isinstance(n, ir.RefCompare):
            found.add(n.select.item)
        stack.extend(ir.children(n))
    return frozenset(found)


def _item_key(protocol: Protocol, name: str) -> tuple[object, ...] | None:
    item = protocol.checked.items.get(name)
    if item is None:
        return None
    quantities = tuple(
        None if q is None else (q.value, q.unit) for q in (item.uln, item.lln, item.molar_mass)
    )
    fields = (item.kind, item.type, item.unit, item.values, item.minimum, item.maximum)
    return (*fields, quantities)


def compare_eligibility(old: Protocol, new: Protocol) -> Comparison:
    """The semantic relation of overall eligibility across versions."""
    reading = _Reading(old, new)
    try:
        v = _Versions(old, new)
        a, b = v.status(v.old_encoder, old), v.status(v.new_encoder, new)
    except Unsupported as exc:
        return _search_status(reading, str(exc))

    def check(record: dict[str, Any], direction: Direction) -> Witness | None:
        sa, sb = reading.statuses(record)
        ra, rb = _STATUS_RANK[sa], _STATUS_RANK[sb]
        ok = rb > ra if direction == "broader" else rb < ra
        return Witness(direction, record, sa, sb) if ok else None

    return _decide(v, a, b, check, lambda: _search_status(reading, ""))


_STATUS_RANK = {"ineligible": 0, "indeterminate": 1, "eligible": 2}
_EPOCH = dt.date(1970, 1, 1)


def _decide(
    v: _Versions,
    a: z3.ArithRef,
    b: z3.ArithRef,
    check: Callable[[dict[str, Any], Direction], Witness | None],
    fallback: Callable[[], Comparison],
) -> Comparison:
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
            result: Comparison = fallback()
            return result
        found[direction] = answer == "sat"
        if model is not None:
            witness = check(v.record(model), direction)
            if witness is None:
                # The encoding and the reference backend disagree: trust neither proof.
                result = fallback()
                return result
            witnesses.append(witness)
    note = f"proved with z3 (histories bounded to {SLOTS} entries per item)"
    verdict = relation(found["broader"], found["narrower"])
    return Comparison(verdict, "proved", tuple(witnesses), note)


def _search_criterion(
    reading: _Reading, old_c: CheckedCriterion | None, new_c: CheckedCriterion | None, why: str
) -> Comparison:
    def effects(record: dict[str, Any]) -> tuple[int, int, str, str]:
        ov, nv = reading.verdicts(record, old_c, new_c)
        return _effect_of(ov, old_c), _effect_of(nv, new_c), ov, nv

    return search(reading.old, reading.new, effects, why)


def _search_status(reading: _Reading, why: str) -> Comparison:
    def effects(record: dict[str, Any]) -> tuple[int, int, str, str]:
        sa, sb = reading.statuses(record)
        return _STATUS_RANK[sa], _STATUS_RANK[sb], sa, sb

    return search(reading.old, reading.new, effects, why)
