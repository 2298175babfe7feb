"""A z3 model as a patient record: the witness a satisfiable question yields.

Numbers come back as exact fractions; a record states them as ints or decimals (or, when
they do not terminate, as fractions, which `decide` avoids by asking for decimals).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from typing import Any

import z3

from protocode.backends.smt.patient import EPOCH, ObsSlot, OccSlot, Patient, SymDate, Unsupported


def decoded_number(value: Any) -> Fraction:
    """A z3 numeral (model value) as an exact fraction."""
    if z3.is_int_value(value):
        return Fraction(value.as_long())
    if z3.is_rational_value(value):
        return Fraction(value.numerator_as_long(), value.denominator_as_long())
    raise Unsupported(f"non-rational model value {value}")


def terminates(f: Fraction) -> bool:
    """Whether `f` is a decimal with finitely many places."""
    d = f.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def bool_and_int_vars(patient: Patient) -> list[Any]:
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


def real_vars(patient: Patient) -> list[z3.ArithRef]:
    """The real-valued variables: numbers, and reference limits of observations."""
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


def decode(patient: Patient, model: z3.ModelRef, units: dict[str, str]) -> dict[str, Any]:
    """The record a model stands for; a quantity in `units` is stated with its unit there."""

    def ev(term: Any) -> Any:
        return model.eval(term, model_completion=True)

    def is_true(term: Any) -> bool:
        return bool(z3.is_true(ev(term)))

    def date(d: SymDate) -> str:
        return (EPOCH + dt.timedelta(days=ev(d.day).as_long())).isoformat()

    def scalar(name: str, value: Any) -> Any:
        if isinstance(value, SymDate):
            return date(value)
        v = ev(value)
        if z3.is_bool(v):
            return z3.is_true(v)
        item = patient.items[name]
        if item.type in {"code", "text"}:
            return patient.strings.text(v.as_long())
        return number(decoded_number(v))

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
                limits["low"] = number(decoded_number(ev(s.low)))
            if is_true(s.high_known):
                limits["high"] = number(decoded_number(ev(s.high)))
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


def number(f: Fraction) -> int | Decimal | Fraction:
    """Exact and JSON-friendly: int, terminating decimal, or (rarely) a fraction."""
    if f.denominator == 1:
        return f.numerator
    if terminates(f):
        return Decimal(f.numerator) / Decimal(f.denominator)
    return f
