"""Check stage: names, types, units and cycles; every error of a file, sorted, with spans."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import FIXTURES, MINI, assert_golden, check, mini_doc
from protocode.core.errors import CheckError, ProtocodeError
from protocode.document.loader import load_protocol, load_protocol_text
from protocode.language import ir
from protocode.language.check import check_protocol
from protocode.language.types import BOOL, NumType


def error_of(rule: str) -> tuple[str, str, int]:
    with pytest.raises(ProtocodeError) as info:
        check(rule)
    (diag,) = info.value.diagnostics
    assert diag.span is not None
    return diag.code, diag.message, diag.span.col


def test_mini_protocol_checks() -> None:
    checked = check_protocol(mini_doc())
    assert [c.id for c in checked.criteria] == ["I1", "I2", "I3", "E1", "E2"]
    assert checked.attestations == ("no_consent",)
    crcl = checked.definitions["crcl"]
    assert isinstance(crcl.type, NumType) and crcl.type.unit.text == "mL/min"


def test_literal_converted_to_the_data_unit_exactly() -> None:
    # 88.4 umol/L of creatinine (113.12 g/mol) is 1.0000... mg/dL: converted at compile time.
    node = check("latest creatinine <= 100 umol/L")
    assert isinstance(node, ir.Compare) and isinstance(node.right, ir.Const)
    assert node.right.value == Fraction(100) * Fraction("113.12") / 10000


def test_literal_on_the_left_is_flipped() -> None:
    node = check("40 kg < weight")
    assert isinstance(node, ir.Compare)
    assert node.op == ">" and isinstance(node.left, ir.Fact)


def test_between_lowers_to_two_inclusive_comparisons() -> None:
    node = check("weight between 40 kg and 90000 g")
    assert isinstance(node, ir.And) and node.type == BOOL
    assert isinstance(node.right, ir.Compare) and node.right.op == "<="
    assert isinstance(node.right.right, ir.Const) and node.right.right.value == 90


@pytest.mark.parametrize(
    ("rule", "code", "fragment", "col"),
    [
        ("agee >= 18 years", "name", "unknown name 'agee' (did you mean 'age'?)", 1),
        ("weight > 40 mL", "unit", "incompatible units: kg (mass) and mL (volume)", 10),
        ("weight > 40", "unit", "write the unit, e.g. '40 kg'", 10),
        ("crcl >= 60 mg", "unit", "mL/min (volume/time) and mg (mass)", 9),
        ('sex == "femal"', "code", "'femal' is not one of male, female (did you mean", 8),
        ("creatinine > 1 mg/dL", "name", "say which one", 1),
        ("chemo", "name", "'chemo' is an event", 1),
        ("weight > 40 kgg", "unit", "unknown unit 'kgg'", 13),
        ("weight * 2", "type", "a criterion must be true or false", 1),
        ("flag and weight", "type", "expected true/false here", 10),
        (
            "latest weight > 2 kg",
            "type",
            "'latest' needs an observation, but 'weight' is a fact",
            8,
        ),
        ("weight <= 3 x ULN", "type", "ULN is the reference limit of an observation", 11),
        ('sex < "male"', "type", "'<' needs numbers, quantities or dates", 5),
        ("any chemo within 36 hours before enrollment", "unit", "whole day", 21),
        ("any chemo within 7 kg before enrollment", "unit", "expected a duration", 20),
        ("any chemo within 7 days before sex", "type", "anchored on a date", 32),
        ("frobnicate(weight) > 1 kg", "name", "unknown function 'frobnicate'", 1),
        ("years_between(weight, enrollment) > 1 a", "type", "expects two dates", 1),
        ("(if flag then 1 kg else 2 mL) > 1 kg", "unit", "incompatible units", 25),
        ("enrollment + weight > birth_date", "type", "a date can be moved only", 1),
        ("latest lvef >= 50", "unit", "write the unit, e.g. '50 %'", 16),
        ("ecog >= 1 %", "unit", "plain number with a quantity in %", 9),
        ("round(weight, 100) > 1 kg", "type", "whole number of digits from 0 to 12", 15),
        ("round(weight, 1.5) > 1 kg", "type", "whole number of digits", 15),
        ("enrollment + 300 years > birth_date", "unit", "limited to 200 years", 14),
        ("ecog in {}", "type", "an empty set", 1),
        ("weight between 70 kg and 50 kg", "type", "the range is empty", 1),
    ],
)
def test_rule_errors(rule: str, code: str, fragment: str, col: int) -> None:
    actual_code, message, actual_col = error_of(rule)
    assert (actual_code, actual_col) == (code, col), message
    assert fragment in message


def test_definition_cycle_is_an_error() -> None:
    text = MINI.replace(
        "  age: years_between(birth_date, enrollment)\n",
        "  age: years_between(birth_date, enrollment) + older\n  older: age + 1 years\n",
    )
    with pytest.raises(CheckError) as info:
        check_protocol(load_protocol_text(text, "cyc.yaml"))
    messages = [d.message for d in info.value.diagnostics]
    assert any("definitions form a cycle: age -> older -> age" in m for m in messages)


def test_declared_unit_must_match_dimension() -> None:
    text = MINI.replace("(140 - age as years) * (weight as kg)", "(140 - age as years) * weight")
    with pytest.raises(CheckError) as info:
        check_protocol(load_protocol_text(text, "unit.yaml"))
    assert any(
        "'crcl' computes a mass (kg) but declares mL/min" in d.message
        for d in info.value.diagnostics
    )


def test_all_errors_of_a_file_sorted_and_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES.parent.parent)
    with pytest.raises(CheckError) as info:
        check_protocol(load_protocol(Path("tests/fixtures/check/errors.yaml")))
    diags = info.value.diagnostics
    assert len(diags) == 9, info.value.render()
    assert [d.span.line for d in diags if d.span] == sorted(d.span.line for d in diags if d.span)
    assert_golden(info.value.render() + "\n", FIXTURES / "check" / "errors.err")


RULE_TOKENS = st.sampled_from(
    [
        "weight",
        "age",
        "sex",
        "flag",
        "crcl",
        "creatinine",
        "chemo",
        "enrollment",
        "ecog",
        "1",
        "2.5",
        "60 mL/min",
        "40 kg",
        '"female"',
        "2024-01-01",
        "true",
        "(",
        ")",
        "and",
        "or",
        "not",
        "<=",
        "==",
        ">",
        "+",
        "*",
        "/",
        "-",
        "x",
        "ULN",
        "latest",
        "any",
        "ever",
        "within",
        "7 days",
        "before",
        "between",
        "in",
        "{",
        "}",
        ",",
        "is",
        "known",
        "missing",
        "if",
        "then",
        "else",
        "as",
        "kg",
        "years_between",
        "min",
    ]
)


def compiles_or_fails_inside(text: str) -> None:
    try:
        check(text)
    except ProtocodeError as exc:
        for diag in exc.diagnostics:
            assert diag.span is not None
            assert 0 <= diag.span.start <= diag.span.end <= len(text), diag.render()


@given(st.text(max_size=50))
def test_any_text_checks_or_fails_with_a_span_inside_it(text: str) -> None:
    compiles_or_fails_inside(text)


@given(st.lists(RULE_TOKENS, min_size=1, max_size=12).map(" ".join))
def test_rule_soup_checks_or_fails_with_a_span_inside_it(text: str) -> None:
    compiles_or_fails_inside(text)


def test_contradictions_inside_data_items_are_errors() -> None:
    text = MINI.replace(
        "  weight: {unit: kg}\n",
        "  weight: {unit: kg, minimum: 300, maximum: 20}\n  odd: {type: boolean, unit: kg}\n",
    ).replace("molar_mass: 113.12 g/mol", "molar_mass: 0 g/mol")
    with pytest.raises(CheckError) as info:
        check_protocol(load_protocol_text(text, "items.yaml"))
    messages = " | ".join(d.message for d in info.value.diagnostics)
    assert "minimum 300 is above maximum 20" in messages
    assert "molar_mass must be positive" in messages
    assert "'odd' has a unit but is of type boolean" in messages
