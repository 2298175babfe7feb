"""Tests of the protocol loader: YAML safety, schema errors, semantic checks, rule offsets."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from helpers import MINIMAL, assert_golden, undocumented
from protocode.core.errors import Diagnostic, LoadError
from protocode.document.loader import load_protocol, load_protocol_text, protocol_schema
from protocode.document.model import Criterion, DataItem, Definition, Quantity, RuleText
from protocode.document.names import RESERVED_WORDS

ROOT = Path(__file__).resolve().parents[1]
# Relative to ROOT, so that rendered errors show the path as the golden files expect.
FIXTURES = Path("tests/fixtures/loader")


def edit(old: str, new: str, text: str = MINIMAL) -> str:
    """`text` with the one occurrence of `old` replaced by `new`."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


def diagnostics(text: str) -> tuple[Diagnostic, ...]:
    with pytest.raises(LoadError) as info:
        load_protocol_text(text, "t.yaml")
    return info.value.diagnostics


def problems(text: str) -> list[tuple[str, int, int]]:
    """(code, line, column) of every diagnostic loading `text` gives, in reported order."""
    found = []
    for diagnostic in diagnostics(text):
        assert diagnostic.span is not None
        found.append((diagnostic.code, diagnostic.span.line, diagnostic.span.col))
    return found


def only_message(text: str) -> str:
    (diagnostic,) = diagnostics(text)
    return diagnostic.message


def rule_of(text: str, criterion: int = 0) -> RuleText:
    rule = load_protocol_text(text).criteria[criterion].rule
    assert rule is not None
    return rule


# A valid file.


def test_full_example_loads_into_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    doc = load_protocol(FIXTURES / "full.yaml")
    meta = doc.metadata
    assert (meta.registry_id, meta.version, meta.phase, meta.sponsor) == (
        "NCT06125106",
        "1",
        "1",
        "Zhejiang University",
    )
    assert meta.title.startswith("Hepatic arterial infusion")
    assert (meta.effective_date, meta.amends, meta.changelog) == (
        "2023-11-14",
        None,
        ("Initial version",),
    )
    assert (meta.span.line, meta.span.col, meta.span.text) == (3, 1, "protocol")

    items = {item.name: item for item in doc.data}
    assert list(items) == [
        "enrollment",
        "birth_date",
        "sex",
        "weight",
        "ecog",
        "creatinine",
        "ast",
        "albumin",
        "chemotherapy",
    ]
    assert items["enrollment"] == DataItem(
        "enrollment", "anchor", "date", items["enrollment"].span, description="Date of enrollment"
    )
    assert (items["enrollment"].span.line, items["enrollment"].span.col) == (13, 3)
    assert (items["birth_date"].kind, items["birth_date"].type) == ("fact", "date")
    assert items["sex"].type == "code"
    assert items["sex"].values == ("male", "female")
    assert items["sex"].codes == (("loinc", "76689-9"),)
    weight = items["weight"]
    assert (weight.type, weight.unit, weight.minimum, weight.maximum) == (
        "quantity",
        "kg",
        "20",
        "300",
    )
    assert (items["ecog"].type, items["ecog"].minimum, items["ecog"].maximum) == (
        "integer",
        "0",
        "5",
    )
    creatinine = items["creatinine"]
    assert (creatinine.kind, creatinine.type, creatinine.unit) == (
        "observation",
        "quantity",
        "mg/dL",
    )
    assert creatinine.molar_mass is not None
    assert (creatinine.molar_mass.value, creatinine.molar_mass.unit) == ("113.12", "g/mol")
    assert creatinine.molar_mass.span.text == "g/mol"
    ast = items["ast"]
    assert ast.uln is not None
    assert (ast.uln.value, ast.uln.unit, ast.uln.span.line, ast.uln.span.col) == (
        "40",
        "U/L",
        19,
        47,
    )
    albumin = items["albumin"]
    assert albumin.lln is not None
    assert (albumin.lln.value, albumin.lln.unit) == ("3.5", "g/dL")
    assert albumin.codes == (("loinc", "1751-7"), ("snomed", "26758005"))
    assert (items["chemotherapy"].kind, items["chemotherapy"].type) == ("event", "boolean")

    age, crcl = doc.definitions
    assert isinstance(age, Definition)
    assert (age.name, age.rule.text, age.unit, age.unit_span) == (
        "age",
        "years_between(birth_date, enrollment)",
        None,
        None,
    )
    assert (age.span.line, age.span.col) == (23, 3)
    assert (crcl.unit, crcl.description) == ("mL/min", "Cockcroft-Gault")
    assert crcl.unit_span is not None
    assert (crcl.unit_span.line, crcl.unit_span.col, crcl.unit_span.text) == (24, 66, "mL/min")

    ids = [(c.id, c.kind) for c in doc.criteria]
    assert ids == [
        ("I1", "inclusion"),
        ("I2", "inclusion"),
        ("I7", "inclusion"),
        ("E1", "exclusion"),
        ("E2.a", "exclusion"),
    ]
    i1, i2, i7, e1, _ = doc.criteria
    assert isinstance(i1, Criterion)
    assert i1.rule is not None
    assert (i1.text, i1.rule.text, i1.attestation, i1.note) == (
        "Age 18 to 75 years",
        "age between 18 and 75",
        None,
        "",
    )
    assert (i1.span.line, i1.span.col, i1.span.text) == (27, 11, "I1")
    assert i2.note == "Registry says 'ECOG 0-1'"
    assert (i7.rule, i7.attestation) == (None, "informed_consent")
    assert e1.rule is not None
    assert e1.rule.text == "latest ast within 28 days before enrollment > 5 x ULN"
    assert doc.source.path == str(FIXTURES / "full.yaml")


def test_scalars_resolve_like_yaml_1_1_except_timestamps() -> None:
    text = edit('  version: "1"\n', "  version: 1.10\n  phase: 2\n  effective_date: 2024-02-29\n")
    meta = load_protocol_text(text).metadata
    # Raw text: a float would have made the version "1.1".
    assert (meta.version, meta.phase, meta.effective_date) == ("1.10", "2", "2024-02-29")
    # A YAML 1.1 boolean is not a string.
    message = only_message(edit("title: Minimal", "title: yes"))
    assert message == "'title' must be a string, not a boolean"


def test_amends_keeps_the_version_text() -> None:
    meta = load_protocol_text(edit('  version: "1"\n', '  version: "2"\n  amends: 1.0\n')).metadata
    assert (meta.version, meta.amends) == ("2", "1.0")


def test_definition_as_mapping_without_unit() -> None:
    text = MINIMAL + "definitions:\n  adult: {rule: age >= 18, description: grown up}\n"
    (adult,) = load_protocol_text(text).definitions
    assert (adult.rule.text, adult.description, adult.unit, adult.unit_span) == (
        "age >= 18",
        "grown up",
        None,
        None,
    )


def test_anchors_aliases_and_merge_keys_are_allowed() -> None:
    text = edit(
        "  age: {type: integer}\n",
        "  age: {type: integer}\n"
        "  alt: &lab {kind: observation, unit: U/L, uln: 40 U/L}\n"
        "  ast: *lab\n"
        "  ggt: {<<: *lab, uln: 60 U/L}\n"
        "  bili: {<<: [{unit: mg/dL}, *lab], kind: fact}\n",
    )
    items = {item.name: item for item in load_protocol_text(text).data}
    assert (items["ast"].kind, items["ast"].unit) == ("observation", "U/L")
    ggt = items["ggt"]
    assert ggt.uln is not None
    assert (ggt.kind, ggt.unit, ggt.uln.value) == ("observation", "U/L", "60")
    # Earlier merge sources win over later ones; own keys win over all.
    bili = items["bili"]
    assert bili.uln is not None
    assert (bili.kind, bili.unit, bili.uln.value) == ("fact", "mg/dL", "40")


def test_merge_of_a_scalar_is_an_error() -> None:
    text = edit("  age: {type: integer}", "  age: {<<: 5, type: integer}")
    assert problems(text) == [("schema", 8, 13)]


# YAML-level errors.


def test_yaml_syntax_error_points_at_the_problem() -> None:
    (diagnostic,) = diagnostics(edit("title: Minimal", "title: Minimal: x"))
    assert diagnostic.code == "yaml-syntax"
    assert diagnostic.message == (
        """a value holding ': ' must be quoted (write 'title: "Minimal: x"')"""
    )
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.col, diagnostic.span.text) == (4, 17, ":")


def test_unclosed_quote_points_at_the_opening_quote() -> None:
    (diagnostic,) = diagnostics('protocode: 1\ntitle: "abc\n')
    assert diagnostic.code == "yaml-syntax"
    assert diagnostic.message == 'the string opened with " on line 2 is never closed'
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.col) == (2, 8)


def test_second_document_is_a_syntax_error() -> None:
    assert problems(MINIMAL + "---\nprotocode: 1\n") == [("yaml-syntax", 14, 1)]


def test_unprintable_character_is_a_syntax_error() -> None:
    (diagnostic,) = diagnostics(edit("title: Minimal", "title: Mini\x07mal"))
    assert diagnostic.code == "yaml-syntax"
    assert diagnostic.message == "character U+0007 is not allowed in YAML"
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.col) == (4, 14)


def test_duplicate_key_points_at_the_second_key() -> None:
    text = edit("  age: {type: integer}", "  age: {type: integer, type: text}")
    (diagnostic,) = diagnostics(text)
    assert diagnostic.code == "duplicate-key"
    assert diagnostic.message == "duplicate key 'type' (first on line 8)"
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.col, diagnostic.span.text) == (8, 24, "type")


def test_duplicate_top_level_key() -> None:
    assert problems(MINIMAL + "protocode: 1\n") == [("duplicate-key", 14, 1)]


def test_python_tag_is_refused_without_running_anything(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = edit("title: Minimal", f'title: !!python/object/apply:os.system ["touch {marker}"]')
    (diagnostic,) = diagnostics(text)
    assert diagnostic.code == "yaml-tag"
    assert "'!!python/object/apply:os.system'" in diagnostic.message
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.col) == (4, 10)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!custom Minimal", "unsupported YAML tag '!custom'"),
        ("!!binary aGVsbG8=", "unsupported YAML tag '!!binary'"),
        ("!!str [a]", "YAML tag '!!str' cannot be used on a list"),
        ("!!int many", "'many' is not a valid !!int"),
    ],
)
def test_non_standard_or_misused_tags(value: str, message: str) -> None:
    (diagnostic,) = diagnostics(edit("title: Minimal", f"title: {value}"))
    assert diagnostic.code == "yaml-tag"
    assert diagnostic.message.startswith(message)
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.col) == (4, 10)


def test_standard_tags_are_allowed() -> None:
    doc = load_protocol_text(edit('version: "1"', "version: !!str 1"))
    assert doc.metadata.version == "1"


def test_recursive_alias_is_an_error() -> None:
    text = MINIMAL + "definitions: &loop {again: *loop}\n"
    assert ("yaml-alias", 14, 14) in problems(text)


def test_empty_file() -> None:
    assert problems("# nothing here\n") == [("schema", 1, 1)]


def test_missing_file_is_an_io_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as info:
        load_protocol(tmp_path / "absent.yaml")
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.code, diagnostic.span) == ("io", None)
    assert diagnostic.message == f"cannot read {tmp_path / 'absent.yaml'}: no such file"


def test_non_utf8_file_is_an_io_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.replace("Minimal", "Minimal caf\xe9").encode("latin-1"))
    with pytest.raises(LoadError) as info:
        load_protocol(path)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "io"
    assert diagnostic.location == f"{path}:4:21"
    assert diagnostic.message == (
        "not UTF-8 text: byte 0xe9 cannot be read as UTF-8 (save the file as UTF-8)"
    )


def test_directory_is_an_io_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as info:
        load_protocol(tmp_path)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "io"
    assert diagnostic.message.startswith(f"cannot read {tmp_path}: ")


# Schema errors.


def test_unknown_key_suggests_the_known_one() -> None:
    text = edit("      rule: age >= 18", "      rule: age >= 18\n      rul: x")
    (diagnostic,) = diagnostics(text)
    assert (diagnostic.code, diagnostic.message) == (
        "schema",
        "unknown key 'rul' in criterion (did you mean 'rule'?)",
    )
    assert problems(text) == [("schema", 14, 7)]


def test_unknown_key_without_close_match_lists_the_keys() -> None:
    message = only_message(edit("  age: {type: integer}", "  age: {type: integer, zzz: 1}"))
    assert message == (
        "unknown key 'zzz' in data item 'age' (expected kind, type, unit, values, minimum,"
        " maximum, uln, lln, molar_mass, codes, description)"
    )


def test_enum_message_lists_the_choices() -> None:
    text = edit("{kind: anchor}", "{kind: anchr}")
    (diagnostic,) = diagnostics(text)
    assert diagnostic.code == "schema"
    assert diagnostic.message == (
        "'kind' must be one of anchor, fact, observation, event (did you mean 'anchor'?)"
    )
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.col, diagnostic.span.text) == (7, 22, "anchr")


def test_required_points_at_the_first_key_of_the_mapping() -> None:
    (diagnostic,) = diagnostics(edit("      text: Adults\n", ""))
    assert diagnostic.message == "missing required key 'text' in criterion"
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.col, diagnostic.span.text) == (11, 7, "id")


def test_missing_type_is_required_only_without_a_default() -> None:
    text = edit("  age: {type: integer}", "  age: {minimum: 0}")
    (diagnostic,) = diagnostics(text)
    assert diagnostic.message == (
        "missing required key 'type' in data item of kind fact or observation without a unit"
    )
    assert problems(text) == [("schema", 8, 9)]
    doc = load_protocol_text(edit("  age: {type: integer}", "  age: {unit: a, minimum: 0}"))
    assert doc.data[1].type == "quantity"


def test_code_type_requires_values() -> None:
    assert problems(edit("{type: integer}", "{type: code}")) == [("schema", 8, 9)]


def test_type_error_points_at_the_value() -> None:
    (diagnostic,) = diagnostics(edit("{type: integer}", "{type: integer, minimum: low}"))
    assert diagnostic.message == "'minimum' must be a number, not the string 'low'"
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.col, diagnostic.span.text) == (8, 33, "low")


def test_item_of_a_list_is_named_by_position() -> None:
    text = edit("      rule: age >= 18\n", "      rule: age >= 18\n    - just text\n")
    assert (
        only_message(text) == "item 2 of 'inclusion' must be a mapping, not the string 'just text'"
    )


def test_empty_section_value() -> None:
    (diagnostic,) = diagnostics(
        edit("  age: {type: integer}\n", "  age: {type: integer}\ndefinitions:\n")
    )
    assert diagnostic.message == "'definitions' must be a mapping, not empty"


def test_format_version_must_be_1() -> None:
    (diagnostic,) = diagnostics(edit("protocode: 1", "protocode: 2"))
    assert (diagnostic.code, diagnostic.message) == ("schema", "'protocode' must be 1")


def test_pattern_errors_explain_the_pattern() -> None:
    text = edit("id: I1", "id: 1a")
    assert only_message(text) == (
        "invalid id '1a': a criterion id starts with a letter and contains only letters,"
        " digits, '_', '.' and '-'"
    )
    text = edit('  version: "1"\n', '  version: "1"\n  effective_date: 14 Nov 2023\n')
    assert (
        only_message(text) == "invalid effective_date '14 Nov 2023': write the date as YYYY-MM-DD"
    )


def test_bounds_must_be_plain_decimals() -> None:
    text = edit("{type: integer}", "{type: integer, minimum: 0x10, maximum: .inf}")
    assert problems(text) == [("schema", 8, 33), ("schema", 8, 48)]


# Semantic checks.


def test_duplicate_id_across_lists() -> None:
    text = MINIMAL + "  exclusion:\n    - {id: I1, text: Children, rule: age < 18}\n"
    (diagnostic,) = diagnostics(text)
    assert diagnostic.code == "duplicate-id"
    assert diagnostic.message == "duplicate criterion id 'I1' (first used on line 11)"
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.col, diagnostic.span.text) == (15, 12, "I1")


def test_criterion_with_both_rule_and_attestation() -> None:
    text = edit("      rule: age >= 18\n", "      rule: age >= 18\n      attestation: consent\n")
    (diagnostic,) = diagnostics(text)
    assert diagnostic.code == "criterion-rule"
    assert (
        diagnostic.message == "criterion 'I1' has both 'rule' and 'attestation'; give exactly one"
    )
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.col) == (14, 7)


def test_criterion_with_neither_rule_nor_attestation() -> None:
    assert problems(edit("      rule: age >= 18\n", "")) == [("criterion-rule", 11, 11)]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("2nd", "data item name '2nd' is not an identifier"),
        ("heart-rate", "data item name 'heart-rate' is not an identifier"),
        ("count", "data item name 'count' is a reserved word of the rule language"),
        ("ULN", "data item name 'ULN' is a reserved word of the rule language"),
    ],
)
def test_bad_data_item_names(name: str, message: str) -> None:
    (diagnostic,) = diagnostics(
        edit("  age: {type: integer}", f"  age: {{type: integer}}\n  {name}: {{type: text}}")
    )
    assert diagnostic.code == "name"
    assert diagnostic.message.startswith(message)
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.col, diagnostic.span.text) == (9, 3, name)


def test_reserved_words_are_the_rule_language_keywords() -> None:
    assert {"and", "between", "within", "latest", "x", "ULN", "LLN"} <= RESERVED_WORDS
    assert len(RESERVED_WORDS) == 27


def test_bad_definition_name_and_clash_with_data_item() -> None:
    text = MINIMAL + 'definitions:\n  age: "1"\n  "true": "2"\n'
    found = diagnostics(text)
    assert [(d.code, d.message) for d in found] == [
        ("duplicate-name", "definition 'age' has the same name as the data item on line 8"),
        ("name", "definition name 'true' is a reserved word of the rule language"),
    ]
    assert problems(text) == [("duplicate-name", 15, 3), ("name", 16, 3)]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("uln", "40U/L", "'uln' must be a decimal and a unit, like '40 U/L', not '40U/L'"),
        ("lln", "low", "'lln' must be a decimal and a unit, like '40 U/L', not 'low'"),
        ("uln", "4.0.1 U/L", "'uln' must be a decimal and a unit, like '40 U/L', not '4.0.1 U/L'"),
        ("molar_mass", "113 mg", "'molar_mass' must be in g/mol, not mg"),
    ],
)
def test_bad_quantities(field: str, value: str, message: str) -> None:
    text = edit(
        "  age: {type: integer}",
        f"  age: {{type: integer}}\n  ast: {{unit: U/L, {field}: {value}}}",
    )
    (diagnostic,) = diagnostics(text)
    assert (diagnostic.code, diagnostic.message) == ("quantity", message)
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.text) == (9, value)


def test_quantity_span_is_the_unit() -> None:
    text = edit(
        "  age: {type: integer}", "  age: {type: integer}\n  ast: {unit: U/L, uln: '40   U/L'}"
    )
    uln = load_protocol_text(text).data[2].uln
    assert isinstance(uln, Quantity)
    assert (uln.value, uln.unit, uln.span.line, uln.span.col, uln.span.text) == (
        "40",
        "U/L",
        9,
        31,
        "U/L",
    )


# All problems at once, in order.


def test_all_problems_are_reported_sorted_by_position() -> None:
    text = (
        MINIMAL.replace("protocode: 1", "protocode: 3")
        .replace("{kind: anchor}", "{kind: anchor, unit: [kg]}")
        .replace("rule: age >= 18", "rul: age >= 18")
        + "  exclusion:\n    - {id: I1, text: x, rule: y}\n"
    )
    assert problems(text) == [
        ("schema", 1, 12),
        ("schema", 7, 36),
        ("criterion-rule", 11, 11),
        ("schema", 13, 7),
        ("duplicate-id", 15, 12),
    ]


# Golden files: rendered errors, paths relative to the repository root.

GOLDEN = ["duplicates", "several_errors", "unsafe_tag", "yaml_syntax"]


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_errors(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    with pytest.raises(LoadError) as info:
        load_protocol(FIXTURES / f"{name}.yaml")
    assert_golden(info.value.render() + "\n", FIXTURES / f"{name}.err")


# Rule text offsets: a token placed in each scalar style must map back to its place.


def token_position(rule: RuleText, token: str = "TOKEN") -> tuple[int, int, str]:
    start = rule.text.index(token)
    span = rule.span(start, start + len(token))
    return span.line, span.col, span.text


def with_rule(rule_yaml: str) -> str:
    return edit("      rule: age >= 18\n", f"      rule: {rule_yaml}\n")


@pytest.mark.parametrize(
    ("rule_yaml", "text", "position"),
    [
        ("a and TOKEN", "a and TOKEN", (13, 19)),
        ("a and\n        b or\n\n        TOKEN", "a and b or\nTOKEN", (16, 9)),
        ("'it''s a ''x'' TOKEN'", "it's a 'x' TOKEN", (13, 28)),
        (r'"\"q\" \u00e9\t\\ TOKEN"', '"q" é\t\\ TOKEN', (13, 31)),
        ('"a \\\n        b\n\n        TOKEN"', "a b\nTOKEN", (16, 9)),
        ("|\n        first\n          TOKEN\n", "first\n  TOKEN\n", (15, 11)),
        ("|-  # x TOKEN\n        x\n        TOKEN", "x\nTOKEN", (15, 9)),
        ("|2+\n          x\n        TOKEN\n", "  x\nTOKEN\n\n", (15, 9)),
        (">\n        a\n        b\n\n        TOKEN\n", "a b\nTOKEN\n", (17, 9)),
        (">-\n        a\n          more\n        TOKEN", "a\n  more\nTOKEN", (16, 9)),
        ("&r !!str 'TOKEN'", "TOKEN", (13, 23)),
    ],
    ids=[
        "plain",
        "plain-multiline",
        "single",
        "double",
        "double-escaped-break",
        "literal",
        "literal-strip-comment",
        "literal-indent-keep",
        "folded",
        "folded-more-indented",
        "tagged",
    ],
)
def test_rule_offsets_in_every_style(rule_yaml: str, text: str, position: tuple[int, int]) -> None:
    rule = rule_of(with_rule(rule_yaml))
    assert rule.text == text
    assert token_position(rule) == (*position, "TOKEN")
    if not rule_yaml.startswith('"'):
        assert_offsets_match(rule, text)


@pytest.mark.parametrize(
    ("rule_yaml", "text"), [("'''a'''", "'a'"), (r'"\"a\""', '"a"')], ids=["single", "double"]
)
def test_escaped_quotes_map_to_their_escapes(rule_yaml: str, text: str) -> None:
    rule = rule_of(with_rule(rule_yaml))
    assert rule.text == text
    # The value starts at column 13 with the opening quote; each quote is a 2-char escape.
    assert [rule.span(i, i + 1).col for i in range(3)] == [14, 16, 17]


def test_folded_line_break_maps_to_a_line_break() -> None:
    rule = rule_of(with_rule('"a  \n\n        b"'))
    assert rule.text == "a\nb"
    assert rule.source.text[rule.offsets[1]] == "\n"


def test_rule_offsets_with_crlf_line_breaks() -> None:
    text = with_rule("|\n        a\n        TOKEN").replace("\n", "\r\n")
    assert token_position(rule_of(text)) == (15, 9, "TOKEN")


def test_escape_offsets_point_at_the_backslash() -> None:
    rule = rule_of(with_rule(r'"x\u00e9y"'))
    assert rule.text == "xéy"
    assert [rule.source.text[at] for at in rule.offsets[:3]] == ["x", "\\", "y"]
    assert rule.span(1, 2).text == "\\"


def test_offset_past_the_end() -> None:
    rule = rule_of(with_rule('"a\\"b"'))
    assert rule.text == 'a"b'
    end = rule.offsets[3]
    assert rule.source.text[end] == '"'
    assert rule.source.text[end - 2 : end] == '"b'


def test_definition_rule_offsets() -> None:
    text = MINIMAL + "definitions:\n  adult: 'age >= TOKEN'\n"
    (adult,) = load_protocol_text(text).definitions
    assert token_position(adult.rule) == (15, 18, "TOKEN")


RULE_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Zl", "Zp"), max_codepoint=0xFFFF)
    | st.sampled_from("\t\n"),
    min_size=1,
    max_size=40,
)


def assert_offsets_match(rule: RuleText, text: str) -> None:
    assert rule.text == text
    assert len(rule.offsets) == len(text) + 1
    for index, char in enumerate(text):
        if not char.isspace():
            assert rule.source.text[rule.offsets[index]] == char


@given(RULE_TEXT)
@example('"quoted" \\ é\n\t')
def test_double_quoted_offsets_for_any_text(text: str) -> None:
    quoted = json.dumps(text)
    rule = rule_of(with_rule(quoted))
    assert rule.text == text
    assert len(rule.offsets) == len(text) + 1
    for index, char in enumerate(text):
        if not char.isspace():
            at = rule.offsets[index]
            # json.dumps escapes some characters; those map to their escape's backslash.
            escaped = json.dumps(char)[1:-1]
            assert rule.source.text[at : at + len(escaped)] == escaped


@given(RULE_TEXT)
def test_literal_block_offsets_for_any_text(text: str) -> None:
    # Strip chomping drops trailing empty lines, so such text cannot be written this way.
    assume(not text.endswith("\n"))
    block = "|2-\n" + "\n".join("        " + line for line in text.split("\n"))
    assert_offsets_match(rule_of(with_rule(block)), text)


# The schema itself.


def test_schema_is_valid_draft_2020_12() -> None:
    schema = protocol_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    shipped = ROOT / "src/protocode/schemas/protocol.schema.json"
    assert schema == json.loads(shipped.read_text(encoding="utf-8"))


def test_every_schema_property_has_a_description() -> None:
    assert undocumented(protocol_schema()) == []
    assert undocumented({"properties": {"x": {}}}) == ["/properties/x"]
    assert undocumented({"if": {"properties": {"x": {}}}}) == []


def test_alias_bombs_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 8):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    text = MINIMAL.replace("protocol:", "\n".join(lines) + "\nprotocol:", 1)
    with pytest.raises(LoadError) as info:
        load_protocol_text(text, "bomb.yaml")
    assert info.value.diagnostics[0].code == "yaml-alias"
    assert "aliases expand" in info.value.diagnostics[0].message
