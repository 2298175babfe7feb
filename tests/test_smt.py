"""SMT backend: semantic comparison of versions, witnesses, and agreement with the runtime."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
import z3
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import protocode
from helpers import MINI, RULES, SEED
from protocode.amendments.compare import compare_criterion, compare_eligibility
from protocode.backends.smt.encode import Encoder
from protocode.backends.smt.patient import Patient, Strings
from protocode.language.library import completed_years
from protocode.testing import records

V1 = (SEED / "v1.yaml").read_text(encoding="utf-8")
SEED_V1 = protocode.load_text(V1, "v1.yaml")


def variant(text: str, old: str, new: str, name: str = "v2.yaml") -> protocode.Protocol:
    assert old in text, old
    return protocode.load_text(text.replace(old, new), name)


def compare(old: protocode.Protocol, new: protocode.Protocol, cid: str) -> Any:
    def find(p: protocode.Protocol) -> Any:
        return next((c for c in p.criteria if c.id == cid), None)

    return compare_criterion(old, new, find(old), find(new))


def test_widening_the_age_bound_is_broader_with_a_witness_aged_71_to_75() -> None:
    new = variant(V1, "age between 18 years and 70 years", "age between 18 years and 75 years")
    result = compare(SEED_V1, new, "I2")
    assert (result.relation, result.method) == ("broader", "proved")
    (witness,) = result.witnesses
    record = witness.record
    age = completed_years(
        dt.date.fromisoformat(record["birth_date"]), dt.date.fromisoformat(record["enrollment"])
    )
    assert 70 < age <= 75
    assert (witness.old, witness.new) == ("not met", "met")
    assert SEED_V1.screen(record).verdict("I2") == "not met"
    assert new.screen(record).verdict("I2") == "met"


def test_tightening_a_lab_limit_is_narrower() -> None:
    new = variant(
        V1,
        "latest ast within 7 days before enrollment <= 3 x ULN",
        "latest ast within 7 days before enrollment <= 2.5 x ULN",
    )
    result = compare(SEED_V1, new, "I5")
    assert result.relation == "narrower"
    (witness,) = result.witnesses
    assert (witness.old, witness.new) == ("met", "not met")
    # The witness is a real record: it parses and screens as claimed.
    assert new.screen(witness.record).verdict("I5") == "not met"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            'rule: sex == "female" and (pregnant or lactating)',
            'rule: not (sex != "female" or not pregnant and not lactating)',
        ),
        ("rule: ecog between 0 and 2", "rule: ecog in {0, 1, 2}"),
        ("rule: life_expectancy > 8 weeks", "rule: life_expectancy > 56 days"),
        ("crcl >= 60 mL/min", "crcl >= 3.6 L/h"),
        (
            "rule: any chemotherapy within 2 weeks before enrollment",
            "rule: not (no chemotherapy within 14 days before enrollment)",
        ),
    ],
)
def test_editorial_rewrites_are_proved_equivalent(old: str, new: str) -> None:
    result_new = variant(V1, old, new)
    cid = _criterion_containing(result_new, new)
    result = compare(SEED_V1, result_new, cid)
    assert (result.relation, result.method, result.witnesses) == ("equivalent", "proved", ())


def _criterion_containing(protocol: protocode.Protocol, text: str) -> str:
    rule = text.removeprefix("rule: ")
    for c in protocol.criteria:
        if rule in c.source:
            return c.id
    raise KeyError(text)


@pytest.mark.parametrize(
    ("old", "new", "relation"),
    [
        ("rule: ecog between 0 and 2", "rule: ecog < 2", "narrower"),
        ("crcl >= 60 mL/min", "crcl >= 3.6001 L/h", "narrower"),
        ("rule: life_expectancy > 8 weeks", "rule: life_expectancy >= 8 weeks", "broader"),
        ("or nyha_class >= 3", "or nyha_class >= 4", "broader"),
        ("within 6 months before screening", "within 3 months before screening", "broader"),
        (
            "rule: age between 18 years and 70 years",
            "rule: age between 16 years and 60 years",
            "incomparable",
        ),
    ],
)
def test_changes_in_meaning_are_found_with_witnesses(old: str, new: str, relation: str) -> None:
    changed = variant(V1, old, new)
    cid = _criterion_containing(changed, new)
    result = compare(SEED_V1, changed, cid)
    assert result.relation == relation
    directions = {w.direction for w in result.witnesses}
    assert directions == ({"broader", "narrower"} if relation == "incomparable" else {relation})


def test_added_exclusion_is_narrower_and_removed_inclusion_broader() -> None:
    added = variant(
        V1,
        "  exclusion:\n",
        "  exclusion:\n    - {id: E99, text: Obese, rule: weight > 150 kg}\n",
    )
    assert compare(SEED_V1, added, "E99").relation == "narrower"
    assert compare(added, SEED_V1, "E99").relation == "broader"


def test_overall_eligibility_verdict() -> None:
    new = variant(V1, "age between 18 years and 70 years", "age between 18 years and 75 years")
    result = compare_eligibility(SEED_V1, new)
    assert result.relation == "broader"
    (witness,) = result.witnesses
    assert (witness.old, witness.new) == ("ineligible", "eligible")
    assert compare_eligibility(SEED_V1, SEED_V1).relation == "equivalent"


# ---- law: the SMT verdict agrees with the runtime on every generated patient

MUTATIONS = [
    (r"<= ", "< "),
    (r"> ", ">= "),
    (r" and ", " or "),
    (r"(\d+)", "\\g<1>1"),
    (r"not \(", "("),
    (r"\{0, 1, 2\}", "{0, 1}"),
    (r"before", "after"),
]
RANK = {"met": 2, "not met": 0, "unknown": 1}


@settings(max_examples=25, deadline=None)
@given(rule=RULES, mutation=st.sampled_from(MUTATIONS), data=st.data())
def test_smt_verdict_agrees_with_the_runtime(rule: str, mutation: Any, data: Any) -> None:
    mutated = re.sub(mutation[0], mutation[1], rule, count=1)
    old = protocode.load_text(_mini_with(rule), "old.yaml")
    try:
        new = protocode.load_text(_mini_with(mutated), "new.yaml")
    except protocode.ProtocodeError:
        assume(False)  # the mutation broke the rule (e.g. `between … or …`)
    result = compare(old, new, "I1")
    for _ in range(10):
        record = data.draw(records(new))
        a = RANK[old.screen(record).verdict("I1")]
        b = RANK[new.screen(record).verdict("I1")]
        if result.relation in ("equivalent", "narrower"):
            assert b <= a, (rule, mutated, result.relation, record)
        if result.relation in ("equivalent", "broader"):
            assert b >= a, (rule, mutated, result.relation, record)


def _mini_with(rule: str) -> str:
    return MINI.replace("rule: age >= 18 years}", f"rule: {json.dumps(rule)}}}")


@settings(max_examples=60, deadline=None)
@given(rule=RULES, data=st.data())
def test_encoding_evaluates_like_the_runtime_on_generated_patients(rule: str, data: Any) -> None:
    # Pin the symbolic patient to a concrete record: z3 must then give the rule exactly
    # the verdict the reference backend gives.
    protocol = protocode.load_text(_mini_with(rule), "enc.yaml")
    criterion = protocol.criteria[0]
    assert criterion.rule is not None
    patient = Patient(protocol.checked.items, protocol.checked.item_types, Strings(), slots=3)
    value = Encoder(patient, protocol.checked.definitions).encode(criterion.rule)
    for _ in range(5):
        record = protocol.record(data.draw(records(protocol)))
        pins = patient.pin(record)
        assert pins is not None
        solver = z3.Solver()
        solver.add(*patient.constraints, *pins)
        assert solver.check() == z3.sat, (rule, record)
        model = solver.model()
        known = z3.is_true(model.eval(value.known, model_completion=True))
        holds = z3.is_true(model.eval(value.value, model_completion=True))
        verdict = ("met" if holds else "not met") if known else "unknown"
        assert verdict == protocol.screen(record).verdict("I1"), (rule, record)


@settings(max_examples=40, deadline=None)
@given(data=records(SEED_V1))
def test_encoding_of_every_seed_criterion_matches_the_runtime(data: dict[str, Any]) -> None:
    record = SEED_V1.record(data)
    patient = Patient(SEED_V1.checked.items, SEED_V1.checked.item_types, Strings(), slots=3)
    encoder = Encoder(patient, SEED_V1.checked.definitions)
    values = [
        patient.attestation(c.attestation or "") if c.rule is None else encoder.encode(c.rule)
        for c in SEED_V1.criteria
    ]
    pins = patient.pin(record)
    assert pins is not None
    solver = z3.Solver()
    solver.add(*patient.constraints, *pins)
    assert solver.check() == z3.sat
    model = solver.model()
    screening = SEED_V1.screen(record)
    for c, value in zip(SEED_V1.criteria, values, strict=True):
        known = z3.is_true(model.eval(value.known, model_completion=True))
        holds = z3.is_true(model.eval(value.value, model_completion=True))
        verdict = ("met" if holds else "not met") if known else "unknown"
        assert verdict == screening.verdict(c.id), (c.id, data)


def test_outside_the_encoding_a_search_decides_and_says_so() -> None:
    # Calendar years from a date computed in days are outside the encoding.
    old_rule = "years_between(birth_date, enrollment + 1 days) >= 18"
    old = protocode.load_text(_mini_with(old_rule + " years"), "old.yaml")
    new = protocode.load_text(_mini_with(old_rule.replace("18", "17") + " years"), "new.yaml")
    result = compare(old, new, "I1")
    assert result.method == "searched"
    assert result.relation in {"broader", "equivalent"}  # never narrower
    assert "no counterexample found in" in result.note
    for witness in result.witnesses:
        assert witness.direction == "broader"
        assert new.screen(witness.record).verdict("I1") == "met"
