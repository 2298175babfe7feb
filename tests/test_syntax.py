"""Parse stage: rule text → AST, syntax errors with exact positions."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocode.core.errors import RuleSyntaxError
from protocode.document.model import RuleText
from protocode.language.syntax import ast, parse_rule
from protocode.language.syntax.parser import rule_parser


def parse(text: str) -> ast.Expr:
    return parse_rule(RuleText.detached(text))


def syntax_error(text: str) -> tuple[int, str]:
    with pytest.raises(RuleSyntaxError) as info:
        parse(text)
    (diag,) = info.value.diagnostics
    assert diag.span is not None
    return diag.span.col, diag.message


def test_grammar_is_lalr_and_lexer_collision_free() -> None:
    # strict=True makes Lark fail on any shift/reduce conflict or terminal collision.
    assert rule_parser(strict=True).options.parser == "lalr"


def test_precedence_and_over_or_and_not_binds_tighter() -> None:
    node = parse("not a or b and c")
    assert isinstance(node, ast.Or)
    assert isinstance(node.left, ast.Not)
    assert isinstance(node.right, ast.And)


def test_quantities_keep_exact_decimals_and_unit_text() -> None:
    node = parse("crcl >= 1.05 mg/dL")
    assert isinstance(node, ast.Compare)
    assert node.right == ast.Quantity(
        Fraction(21, 20),
        "mg/dL",
        node.right.unit_span,
        node.right.span,  # type: ignore[union-attr]
    )
    assert node.right.span.text == "1.05 mg/dL"


def test_unit_after_number_but_name_elsewhere() -> None:
    node = parse("kg > 2 kg")
    assert isinstance(node, ast.Compare)
    assert isinstance(node.left, ast.Name) and node.left.name == "kg"
    assert isinstance(node.right, ast.Quantity) and node.right.unit == "kg"


def test_reference_limit_multiple() -> None:
    node = parse("latest ast within 7 days before enrollment <= 3 x ULN")
    assert isinstance(node, ast.RefCompare)
    assert (node.factor, node.limit, node.op) == (3, "ULN", "<=")
    assert isinstance(node.left, ast.Temporal)
    window = node.left.window
    assert window is not None
    assert (window.kind, window.amount, window.unit, window.anchor) == (
        "within_before",
        7,
        "days",
        "enrollment",
    )


def test_unicode_operators() -> None:
    node = parse("a ≥ 2 and b ≠ 3 and c <= 2 × ULN")
    assert isinstance(node, ast.And)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("ever hsct", "ever"),
        ("no chemo within 2 weeks before enrollment", "no"),
        ("count chemo after enrollment >= 2", "count"),
        ("earliest ast before screening > 1 U/L", "earliest"),
        ("any mi within 6 months of screening", "any"),
    ],
)
def test_temporal_forms(text: str, kind: str) -> None:
    node = parse(text)
    temporal = node if isinstance(node, ast.Temporal) else node.left  # type: ignore[union-attr]
    assert isinstance(temporal, ast.Temporal)
    assert temporal.op == kind


def test_between_membership_known_and_if() -> None:
    assert isinstance(parse("ecog between 0 and 2"), ast.Between)
    member = parse('sex not in {"male", "female"}')
    assert isinstance(member, ast.Member) and member.negated and len(member.items) == 2
    assert isinstance(parse("weight is missing"), ast.IsKnown)
    assert isinstance(parse("if a then 1 else 2"), ast.If)


@pytest.mark.parametrize(
    ("text", "col", "message"),
    [
        ("a = 3", 3, "'=' is not an operator here; use '==' to compare"),
        ("a < b < c", 7, "comparisons cannot be chained"),
        ("a && b", 3, "'&' is not an operator; write 'and' / 'or'"),
        ("age >= 18 years and", 19, "the rule ends too early"),
        ("ast <= 3 x", 10, "the rule ends too early; expected 'LLN', 'ULN'"),
        ("d > 2024-02-30", 5, "2024-02-30 is not a calendar date"),
        ("(a and b", 8, "the rule ends too early"),
        ("a and ) b", 7, "unexpected ')'"),
        # A regex \d matches any script's digits; a limit is written in ASCII digits only.
        ("age >= \u0ce9\u0966 years", 8, "unexpected character '\u0ce9'"),
        ("d > \uff12\uff10\uff12\uff14-01-01", 5, "unexpected character '\uff12'"),
    ],
)
def test_syntax_errors_point_at_the_problem(text: str, col: int, message: str) -> None:
    actual_col, actual = syntax_error(text)
    assert message in actual
    assert actual_col == col


def test_error_inside_yaml_maps_to_file_position() -> None:
    from protocode.document.loader import load_protocol_text

    text = (
        "protocode: 1\n"
        "protocol: {registry_id: X, title: T, version: '1'}\n"
        "data: {a: {type: boolean}}\n"
        "criteria:\n"
        "  inclusion:\n"
        "    - id: I1\n"
        "      text: t\n"
        "      rule: >-\n"
        "        a and\n"
        "        a = true\n"
    )
    doc = load_protocol_text(text, "p.yaml")
    rule = doc.criteria[0].rule
    assert rule is not None
    with pytest.raises(RuleSyntaxError) as info:
        parse_rule(rule)
    span = info.value.diagnostics[0].span
    assert span is not None
    assert (span.source.path, span.line, span.col) == ("p.yaml", 10, 11)


def parses_or_fails_with_span_inside(text: str) -> None:
    rule = RuleText.detached(text)
    try:
        parse_rule(rule)
    except RuleSyntaxError as exc:
        for diag in exc.diagnostics:
            assert diag.span is not None
            assert 0 <= diag.span.start <= diag.span.end <= len(text)


@given(st.text(max_size=60))
def test_any_text_parses_or_fails_with_a_span_inside_it(text: str) -> None:
    parses_or_fails_with_span_inside(text)


ALPHABET = st.sampled_from(
    [
        "a",
        "b",
        "1",
        "2.5",
        " ",
        "and",
        "or",
        "not",
        "(",
        ")",
        "<=",
        "==",
        "mg",
        "x",
        "ULN",
        "latest",
        "within",
        "days",
        "before",
        "in",
        "{",
        "}",
        ",",
        "if",
        "then",
        "else",
        "-",
        "*",
    ]
)


@given(st.lists(ALPHABET, max_size=14).map(" ".join))
def test_token_soup_parses_or_fails_cleanly(text: str) -> None:
    parses_or_fails_with_span_inside(text)


def test_very_deep_rules_are_refused_with_advice_not_a_crash() -> None:
    long_or = " or ".join(f"ecog == {i}" for i in range(300))
    with pytest.raises(RuleSyntaxError) as info:
        parse(long_or)
    (diag,) = info.value.diagnostics
    assert diag.code == "too-deep"
    assert "x in {a, b, …}" in diag.message
    with pytest.raises(RuleSyntaxError):
        parse("not " * 1500 + "flag")
