"""Compile and run stages: exact arithmetic, Kleene logic, windows, explanations, laws."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocode
from helpers import MINI, SEED
from protocode.core.errors import RecordError
from protocode.core.exact import decimal_places, decimal_text, rational
from protocode.testing import records

MINI_PROTOCOL = protocode.load_text(MINI, "mini.yaml")


def patient(**fields: Any) -> dict[str, Any]:
    """An eligible mini-protocol patient, with fields overridden (None removes a field)."""
    record: dict[str, Any] = {
        "id": "p",
        "enrollment": "2024-03-01",
        "screening": "2024-02-25",
        "birth_date": "1992-01-01",
        "sex": "male",
        "weight": 42.0,
        "creatinine": [{"value": 1.05, "date": "2024-02-28"}],
        "ast": [{"value": 30, "date": "2024-02-28"}],
        "chemo": [],
        "attestations": {"no_consent": False},
    }
    for key, value in fields.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def verdict(criterion: str, **fields: Any) -> str:
    return MINI_PROTOCOL.screen(patient(**fields)).verdict(criterion)


def test_cockcroft_gault_exactly_60_is_met() -> None:
    # (140-32)*42.0/(72*1.05) is exactly 60; binary floats give 59.99999999999999.
    assert (140 - 32) * 42.0 / (72 * 1.05) < 60
    result = MINI_PROTOCOL.screen(patient())
    assert result.verdict("I2") == "met"
    assert result.status == "eligible"
    assert "crcl = 60 mL/min" in result.explain().to_text()


def test_cockcroft_gault_just_below_60_is_not_met() -> None:
    assert verdict("I2", creatinine=[{"value": 1.06, "date": "2024-02-28"}]) == "not met"


def test_creatinine_in_umol_per_litre_is_converted_exactly() -> None:
    # 10500/113.12 umol/L is exactly 1.05 mg/dL; its decimal expansion never ends, so a
    # record rounding it down lands just above 60 and one rounding it up just below.
    def crcl_verdict(umol: str) -> str:
        obs = [{"value": float(umol), "unit": "umol/L", "date": "2024-02-28"}]
        return verdict("I2", creatinine=obs)

    assert crcl_verdict("92.8217821782") == "met"
    assert crcl_verdict("92.8217821783") == "not met"
    assert crcl_verdict("100") == "not met"


def test_female_factor() -> None:
    assert verdict("I2", sex="female") == "not met"
    assert verdict("I2", sex="female", weight=50) == "met"  # 108*50*0.85/75.6 = 60.71


def test_age_boundary_on_the_birthday() -> None:
    assert verdict("I1", birth_date="2006-03-01") == "met"
    assert verdict("I1", birth_date="2006-03-02") == "not met"


def test_reference_limit_from_record_then_default() -> None:
    exact = [{"value": 120, "date": "2024-02-28"}]
    assert verdict("I3", ast=exact) == "met"  # 3 x 40 U/L default
    above = [{"value": 121, "date": "2024-02-28"}]
    assert verdict("I3", ast=above) == "not met"
    own_range = [{"value": 121, "date": "2024-02-28", "reference_range": {"high": 45}}]
    assert verdict("I3", ast=own_range) == "met"


def test_value_outside_window_is_unknown_and_explained() -> None:
    old = [{"value": 1.0, "date": "2024-02-18"}]
    result = MINI_PROTOCOL.screen(patient(creatinine=old))
    assert result.verdict("I2") == "unknown"
    assert result.status == "indeterminate"
    assert result.missing == ("creatinine",)
    text = result.explain().to_text()
    assert "creatinine measured on 2024-02-18, 5 days before the window opens" in text
    assert "the window is within 7 days before enrollment" in text


@pytest.mark.parametrize(
    ("end", "expected"),
    [("2024-02-17", "met"), ("2024-02-16", "met"), ("2024-02-15", "not met")],
)
def test_event_window_is_closed(end: str, expected: str) -> None:
    assert verdict("E1", chemo=[{"date": "2024-02-01", "end": end}]) == expected


def test_event_history_absent_is_unknown_empty_is_known() -> None:
    assert verdict("E1", chemo=None) == "unknown"
    assert verdict("E1", chemo=[]) == "not met"
    assert verdict("E1", chemo=[{"date": None}]) == "unknown"


def test_attestation_decides_and_absent_is_unknown() -> None:
    assert verdict("E2", attestations={"no_consent": True}) == "met"
    assert verdict("E2", attestations={}) == "unknown"


def test_missing_anchor_lists_the_anchor() -> None:
    result = MINI_PROTOCOL.screen(patient(enrollment=None))
    assert result.status == "indeterminate"
    assert "enrollment" in result.missing


def test_ineligible_wins_over_unknown() -> None:
    result = MINI_PROTOCOL.screen(patient(birth_date="2010-01-01", weight=None))
    assert result.verdict("I2") == "unknown"
    assert result.status == "ineligible"


def test_bad_record_in_a_batch_is_reported_and_the_rest_screened() -> None:
    batch = [patient(id="a"), patient(id="b", weight="heavy"), patient(id="c")]
    results = list(MINI_PROTOCOL.screen_many(batch))
    assert len(results) == 3
    assert isinstance(results[1], RecordError)
    assert results[1].diagnostics[0].record_id == "b"
    assert results[1].diagnostics[0].field == "weight"
    assert [getattr(r, "status", "error") for r in results] == ["eligible", "error", "eligible"]


# ---- Kleene laws, checked through real rules


def kleene_protocol(rule: str) -> protocode.Protocol:
    text = MINI.replace("rule: age >= 18 years}", f"rule: {rule}}}")
    return protocode.load_text(text, "kleene.yaml")


TRUTH = st.sampled_from([True, False, None])


def truth_record(a: bool | None, b: bool | None) -> dict[str, Any]:
    return patient(flag=a, other=b)


AND = kleene_protocol("flag and other")
OR = kleene_protocol("flag or other")
NOT = kleene_protocol("not flag")
IF = kleene_protocol("if flag then other else true")
V = {True: "met", False: "not met", None: "unknown"}


@given(TRUTH, TRUTH)
def test_kleene_tables(a: bool | None, b: bool | None) -> None:
    record = truth_record(a, b)
    expected_and = False if False in (a, b) else (None if None in (a, b) else True)
    expected_or = True if True in (a, b) else (None if None in (a, b) else False)
    assert AND.screen(record).verdict("I1") == V[expected_and]
    assert OR.screen(record).verdict("I1") == V[expected_or]
    assert NOT.screen(record).verdict("I1") == V[None if a is None else not a]
    expected_if = b if a is True else True if a is False else (True if b is True else None)
    assert IF.screen(record).verdict("I1") == V[expected_if]


SEED_PROTOCOL = protocode.load(SEED)


@given(records(SEED_PROTOCOL, missing=False), st.data())
def test_more_data_never_changes_a_decided_verdict(
    full: dict[str, Any], data: st.DataObject
) -> None:
    # No seed rule tests `is known`/`is missing`, so removing data may only turn
    # decisions into unknowns, never flip them.
    droppable = [k for k in full if k != "id"]
    dropped = data.draw(st.lists(st.sampled_from(droppable), unique=True, max_size=8))
    partial = {k: v for k, v in full.items() if k not in dropped}
    before = SEED_PROTOCOL.screen(partial)
    after = SEED_PROTOCOL.screen(full)
    for p, f in zip(before.criteria, after.criteria, strict=True):
        if p.verdict != "unknown":
            assert f.verdict == p.verdict, (p.id, dropped)
    if before.status != "indeterminate":
        assert after.status == before.status


@given(records(SEED_PROTOCOL))
def test_generated_records_screen_and_explain_consistently(record: dict[str, Any]) -> None:
    result = SEED_PROTOCOL.screen(record)
    explanation = result.explain()
    assert explanation.status == result.status
    assert [c.verdict for c in explanation.criteria] == [c.verdict for c in result.criteria]
    if result.status == "indeterminate":
        assert explanation.missing, "an indeterminate result must name what would decide it"
    else:
        assert result.missing == ()


def test_an_undated_value_leaves_the_latest_unknown() -> None:
    # Dating the 500 U/L value inside the window would make I3 not met: until then the
    # latest value is not known, so neither is the verdict.
    ast = [{"value": 32, "date": "2024-02-28"}, {"value": 500}]
    result = MINI_PROTOCOL.screen(patient(ast=ast))
    assert result.verdict("I3") == "unknown"
    assert "ast has an undated value" in result.explain().to_text()
    dated = [{"value": 32, "date": "2024-02-28"}, {"value": 500, "date": "2024-02-29"}]
    assert verdict("I3", ast=dated) == "not met"


def test_two_different_values_on_the_latest_day_are_ambiguous() -> None:
    same_day = [{"value": 1.05, "date": "2024-02-28"}, {"value": 2.0, "date": "2024-02-28"}]
    assert verdict("I2", creatinine=same_day) == "unknown"
    repeated = [{"value": 1.05, "date": "2024-02-28"}, {"value": 1.05, "date": "2024-02-28"}]
    assert verdict("I2", creatinine=repeated) == "met"
    # An older value on a day of its own does not matter.
    older = [{"value": 9, "date": "2024-02-20"}, {"value": 1.05, "date": "2024-02-28"}]
    assert verdict("I2", creatinine=older) == "met"


def test_missing_lists_every_input_of_an_unknown_formula() -> None:
    result = MINI_PROTOCOL.screen(patient(birth_date=None, weight=None, creatinine=None))
    assert set(result.missing) == {"birth_date", "weight", "creatinine"}


def test_generated_code_compiles_without_warnings() -> None:
    import warnings

    text = MINI.replace("rule: age >= 18 years}", 'rule: "(if flag then 1 else 2) > 1"}')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        protocol = protocode.load_text(text, "warn.yaml")
    assert protocol.screen(patient(flag=True)).verdict("I1") == "not met"
    assert protocol.screen(patient(flag=None)).verdict("I1") == "unknown"


def test_a_repeated_record_id_is_reported_not_merged() -> None:
    results = list(MINI_PROTOCOL.screen_many([patient(id="a"), patient(id="a")]))
    assert len(results) == 2
    assert isinstance(results[1], RecordError)
    assert results[1].diagnostics[0].code == "duplicate-id"


def test_division_by_zero_is_unknown_and_explained() -> None:
    text = MINI.replace("rule: age >= 18 years}", 'rule: "1 / (ecog - ecog) > 1"}')
    protocol = protocode.load_text(text, "div.yaml")
    result = protocol.screen(patient(ecog=1))
    assert result.verdict("I1") == "unknown"
    explanation = result.explain().to_text()
    assert "division by zero" in explanation


def test_a_tie_anywhere_on_the_latest_day_is_ambiguous() -> None:
    # Records sort stably by date; the differing value need not be next to the last one.
    three = [
        {"value": 2.0, "date": "2024-02-28"},
        {"value": 1.05, "date": "2024-02-28"},
        {"value": 1.05, "date": "2024-02-28"},
    ]
    assert verdict("I2", creatinine=three) == "unknown"


@given(st.fractions(max_denominator=10**6), st.sampled_from([Fraction, rational]))
def test_decimal_text_is_exact_whenever_the_decimal_terminates(x: Fraction, kind: Any) -> None:
    places = decimal_places(kind(x))
    if places is None:
        # Repeating: the denominator has a prime factor other than 2 and 5.
        d = x.denominator
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        assert d != 1
        return
    text = decimal_text(kind(x), places)
    assert Fraction(text) == x
    assert places == 0 or not text.endswith("0")  # no more places than it needs


def test_decimal_text_examples() -> None:
    assert decimal_text(Fraction(-1, 20), 2) == "-0.05"
    assert decimal_text(Fraction(105, 100), 2) == "1.05"
    assert decimal_text(7, 0) == "7"
    assert decimal_places(Fraction(1, 3)) is None
