"""The JSON export of compiled protocols: schema, exact numbers, spans, and the round trip.

A document written by `export_json`, passed through JSON text and read back by `load_json`,
must screen every record exactly as the protocol it came from.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
from fractions import Fraction
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocode
from helpers import FIXTURES, MINI, ROOT, RULES, SEED, undocumented
from protocode.backends.export import (
    FORMAT,
    VERSION,
    compiled_schema,
    export_json,
    validate_json,
    write_json,
)
from protocode.backends.export.common import exact_number, read_number
from protocode.backends.export.decode import stand_in_text
from protocode.cli import main
from protocode.core.errors import LoadError, ProtocodeError, RecordError
from protocode.language import ir
from protocode.pipeline import load_json
from protocode.testing import records

VERSIONS = {v: protocode.load(SEED / f"v{v}.yaml") for v in (1, 2, 3, 4)}
SEED_V3 = VERSIONS[3]
MINI_PROTOCOL = protocode.load_text(MINI, "mini.yaml")


def through_text(doc: dict[str, Any]) -> Any:
    """What a consumer in another language sees: the document as JSON text, parsed."""
    return json.loads(json.dumps(doc, allow_nan=False))


def fixture_protocols() -> list[Path]:
    """Every protocol file among the test fixtures that checks cleanly."""
    out = []
    for path in sorted(FIXTURES.rglob("*.yaml")):
        try:
            protocode.load(path)
        except ProtocodeError:
            continue
        out.append(path)
    return out


FIXTURE_FILES = fixture_protocols()


# ---- the schema


def test_schema_is_valid_draft_2020_12_and_shipped_as_package_data() -> None:
    schema = compiled_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    shipped = ROOT / "src/protocode/schemas/compiled.schema.json"
    assert schema == json.loads(shipped.read_text(encoding="utf-8"))
    assert schema["properties"]["version"]["const"] == VERSION
    assert schema["properties"]["format"]["const"] == FORMAT


def test_every_schema_property_and_definition_is_documented() -> None:
    schema = compiled_schema()
    assert undocumented(schema) == []
    assert undocumented({"properties": {"x": {}}}) == ["/properties/x"]
    for name, sub in schema["$defs"].items():
        assert sub.get("description"), f"$defs/{name} has no description"


def test_the_expression_schema_has_one_branch_per_ir_node_class() -> None:
    schema = compiled_schema()
    kinds = {ir.visitor_method(cls).rstrip("_") for cls in get_args(ir.Expr)}
    assert set(schema["$defs"]["expr"]["properties"]["node"]["enum"]) == kinds
    branches = {b["if"]["properties"]["node"]["const"] for b in schema["$defs"]["expr"]["allOf"]}
    assert branches == kinds
    assert all(f"node_{k}" in schema["$defs"] for k in kinds)


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_export_of_every_seed_version_validates(version: int) -> None:
    doc = through_text(export_json(VERSIONS[version]))
    validate_json(doc)
    assert (doc["format"], doc["version"]) == ("protocode-compiled", 1)
    assert doc["protocol"]["registry_id"] == "NCT06125106"
    assert doc["protocol"]["version"] == str(version)
    assert len(doc["criteria"]) == 21


def test_fixture_protocols_export_and_validate() -> None:
    assert len(FIXTURE_FILES) >= 5
    assert FIXTURES / "check" / "mini.yaml" in FIXTURE_FILES
    for path in FIXTURE_FILES:
        doc = through_text(export_json(protocode.load(path)))
        validate_json(doc)
        assert load_json(doc).checked.doc.metadata.registry_id == doc["protocol"]["registry_id"]


def test_no_json_float_anywhere() -> None:
    def walk(node: Any) -> None:
        assert not isinstance(node, float), node
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for protocol in (*VERSIONS.values(), MINI_PROTOCOL):
        walk(export_json(protocol))


def test_schema_violations_are_load_errors_naming_the_field() -> None:
    doc = through_text(export_json(MINI_PROTOCOL))
    doc["criteria"][1]["expr"]["left"]["node"] = "bogus"
    doc["data"][5]["minimum"] = "1.50"
    del doc["definitions"][0]["span"]["file"]
    with pytest.raises(LoadError) as info:
        load_json(doc)
    fields = {d.field for d in info.value.diagnostics}
    assert fields == {"/criteria/1/expr/left/node", "/data/5/minimum", "/definitions/0/span"}
    assert all(d.code == "compiled-json" for d in info.value.diagnostics)


# ---- exact numbers


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (60, "60"),
        (0, "0"),
        (-3, "-3"),
        (Fraction(7, 10), "0.7"),
        (Fraction(21, 20), "1.05"),
        (Fraction(-5, 4), "-1.25"),
        (Fraction(1, 3), "1/3"),
        (Fraction(-10000, 11312), "-625/707"),
        (Fraction(1, 1024), "0.0009765625"),
    ],
)
def test_exact_numbers_have_one_canonical_form(value: Fraction, text: str) -> None:
    assert exact_number(value) == text
    assert read_number(text) == value


NUMBER_SCHEMA = {"$defs": compiled_schema()["$defs"], "$ref": "#/$defs/number"}
NUMBER_VALIDATOR = jsonschema.Draft202012Validator(NUMBER_SCHEMA)  # built once: it is slow


@given(st.fractions())
def test_exact_numbers_round_trip_and_match_the_schema(value: Fraction) -> None:
    text = exact_number(value)
    assert read_number(text) == value
    NUMBER_VALIDATOR.validate(text)


def test_units_are_resolved_to_exact_scale_factors() -> None:
    doc = export_json(MINI_PROTOCOL)
    items = {i["name"]: i for i in doc["data"]}
    assert items["creatinine"]["molar_mass"] == "113.12"
    assert items["ast"]["uln"] == "40"
    assert items["weight"]["value_type"]["unit"] == {
        "text": "kg",
        "factor": "1000",
        "dimension": {"mass": 1},
    }
    # I2 compares crcl (declared mL/min) with 60 mL/min: the definition ends in a scale node
    # that makes the empirical formula's plain number a quantity in mL/min.
    crcl = next(d for d in doc["definitions"] if d["name"] == "crcl")
    assert crcl["unit"] == "mL/min"
    assert crcl["expr"]["node"] == "scale"
    assert crcl["expr"]["type"]["unit"]["text"] == "mL/min"


def cockcroft_gault(weight: str) -> dict[str, Any]:
    """A 32-year-old man with creatinine 1.05 mg/dL: weight 42.0 kg gives exactly 60 mL/min."""
    return {
        "id": f"cg-{weight}",
        "enrollment": "2024-03-01",
        "screening": "2024-02-28",
        "birth_date": "1991-06-01",
        "sex": "male",
        "weight": float(weight),
        "creatinine": [{"value": 1.05, "date": "2024-02-27"}],
    }


@pytest.mark.parametrize(("weight", "verdict"), [("42.0", "met"), ("41.99", "not met")])
def test_cockcroft_gault_boundary_survives_the_round_trip(weight: str, verdict: str) -> None:
    imported = load_json(through_text(export_json(MINI_PROTOCOL)))
    record = json.loads(json.dumps(cockcroft_gault(weight)))
    assert MINI_PROTOCOL.screen(record).verdict("I2") == verdict
    assert imported.screen(record).verdict("I2") == verdict


# ---- spans


def test_spans_point_at_the_criterion_in_the_protocol_file() -> None:
    doc = through_text(export_json(SEED_V3))
    i2 = next(c for c in doc["criteria"] if c["id"] == "I2")
    path = str(SEED / "v3.yaml")
    assert (i2["span"]["file"], i2["span"]["line"], i2["span"]["column"]) == (path, 372, 11)
    rule = i2["expr"]["span"]
    assert (rule["line"], rule["column"]) == (374, 13)
    text = (SEED / "v3.yaml").read_text(encoding="utf-8")
    assert text[i2["span"]["start"] : i2["span"]["end"]] == "I2"
    assert text[rule["start"] : rule["end"]] == "age between 18 years and 70 years"
    assert i2["rule"] == "age between 18 years and 70 years"
    assert text.splitlines()[rule["line"] - 1][rule["column"] - 1 :].startswith("age between")

    imported = load_json(doc)
    criterion = next(c for c in imported.criteria if c.id == "I2")
    assert str(criterion.span) == f"{path}:372:11"
    assert criterion.rule is not None
    assert str(criterion.rule.span) == f"{path}:374:13"
    assert criterion.rule.span.text == "age between 18 years and 70 years"


def test_stand_in_text_keeps_every_position_and_every_rule_text() -> None:
    doc = through_text(export_json(MINI_PROTOCOL))
    real = MINI
    text = stand_in_text(doc)
    assert len(text) == len(real)
    for ex in doc["source"]["excerpts"]:
        assert text[ex["start"] : ex["start"] + len(ex["text"])] == ex["text"]
    # Multi-line rules keep their line breaks; lines in between are blank.
    assert text.count("\n") <= real.count("\n")
    crcl = next(d for d in doc["definitions"] if d["name"] == "crcl")
    assert "\n" in real[crcl["expr"]["span"]["start"] : crcl["expr"]["span"]["end"]]


def test_the_original_text_can_be_given_and_must_match() -> None:
    doc = through_text(export_json(MINI_PROTOCOL))
    imported = load_json(doc, source=MINI)
    assert imported.checked.doc.source.text == MINI
    assert imported.criteria[0].span.source.line_text(1) == MINI.splitlines()[0]
    with pytest.raises(LoadError, match="not the text"):
        load_json(doc, source=MINI + "\n")


# ---- the round trip


@pytest.mark.parametrize("protocol", [SEED_V3, MINI_PROTOCOL], ids=["seed-v3", "mini"])
def test_re_export_of_an_import_is_the_same_document(protocol: protocode.Protocol) -> None:
    doc = through_text(export_json(protocol))
    again = through_text(export_json(load_json(doc)))
    # The stand-in text has another hash; everything else, excerpts included, is identical.
    assert again["source"].pop("sha256") != doc["source"].pop("sha256")
    assert again == doc


SEED_IMPORTED = load_json(through_text(export_json(SEED_V3)))
MINI_IMPORTED = load_json(through_text(export_json(MINI_PROTOCOL)))


def same_screening(original: protocode.Protocol, imported: protocode.Protocol, data: Any) -> None:
    a, b = original.screen(data), imported.screen(data)
    assert b.status == a.status
    assert [(c.id, c.kind, c.verdict) for c in b.criteria] == [
        (c.id, c.kind, c.verdict) for c in a.criteria
    ]


@given(data=records(SEED_V3, missing=True))
def test_round_trip_screens_seed_records_identically(data: dict[str, Any]) -> None:
    same_screening(SEED_V3, SEED_IMPORTED, json.loads(json.dumps(data)))


@given(data=records(MINI_PROTOCOL, missing=True))
def test_round_trip_screens_mini_records_identically(data: dict[str, Any]) -> None:
    same_screening(MINI_PROTOCOL, MINI_IMPORTED, json.loads(json.dumps(data)))


@settings(max_examples=25)
@given(data=records(SEED_V3, missing=True))
def test_round_trip_explains_identically(data: dict[str, Any]) -> None:
    # Explanations quote rule text through spans: the stand-in source must carry it.
    assert SEED_IMPORTED.explain(data).to_json() == SEED_V3.explain(data).to_json()


@settings(max_examples=40)
@given(rule=RULES, data=st.data())
def test_round_trip_of_random_rules(rule: str, data: st.DataObject) -> None:
    text = MINI.replace("rule: age >= 18 years}", f"rule: {json.dumps(rule)}}}")
    protocol = protocode.load_text(text, "random.yaml")
    doc = through_text(export_json(protocol))
    validate_json(doc)
    imported = load_json(doc, validate=False)
    same_screening(protocol, imported, data.draw(records(protocol)))


def test_example_patients_screen_identically_for_every_seed_version() -> None:
    lines = (SEED / "examples" / "patients.jsonl").read_text(encoding="utf-8").splitlines()
    patients = [json.loads(line) for line in lines if line.strip()]
    for protocol in VERSIONS.values():
        imported = load_json(through_text(export_json(protocol)))
        for patient in patients:
            try:
                protocol.record(patient)
            except RecordError as error:
                # A record this version's dictionary refuses is refused the same way.
                with pytest.raises(RecordError) as info:
                    imported.record(patient)
                assert info.value.diagnostics == error.diagnostics
                continue
            same_screening(protocol, imported, patient)


# ---- writing and refusing


def test_write_json_to_a_stream_and_a_file(tmp_path: Path) -> None:
    out = io.StringIO()
    write_json(MINI_PROTOCOL, out)
    assert out.getvalue().endswith("\n")
    assert json.loads(out.getvalue()) == through_text(export_json(MINI_PROTOCOL))
    path = tmp_path / "mini.json"
    write_json(MINI_PROTOCOL.checked, path, indent=None)
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(out.getvalue())


def test_other_formats_and_newer_versions_are_refused() -> None:
    doc = through_text(export_json(MINI_PROTOCOL))
    with pytest.raises(LoadError, match="not a compiled protocol"):
        load_json({**doc, "format": "something-else"})
    with pytest.raises(LoadError, match="version 2 is newer"):
        load_json({**doc, "version": 2})


def test_unresolved_names_and_cycles_are_refused() -> None:
    doc = through_text(export_json(MINI_PROTOCOL))
    bad = copy.deepcopy(doc)
    bad["criteria"][0]["expr"]["left"]["name"] = "nonesuch"
    with pytest.raises(LoadError, match="unknown definition 'nonesuch'") as info:
        load_json(bad)
    assert info.value.diagnostics[0].field == "/criteria/0/expr/left/name"

    cyclic = copy.deepcopy(doc)
    scr = next(d for d in cyclic["definitions"] if d["name"] == "scr")
    age = next(d for d in cyclic["definitions"] if d["name"] == "age")
    scr["expr"] = {**age["expr"], "node": "def_ref", "name": "age"}
    age["expr"] = {**age["expr"], "node": "def_ref", "name": "scr"}
    for expr in (scr["expr"], age["expr"]):
        del expr["func"], expr["args"]
    with pytest.raises(LoadError, match="cycle"):
        load_json(cyclic)

    wrong_kind = copy.deepcopy(doc)
    i3 = next(c for c in wrong_kind["criteria"] if c["id"] == "I3")
    i3["expr"]["select"]["item"] = "weight"
    with pytest.raises(LoadError, match="'weight' is fact, expected observation"):
        load_json(wrong_kind)


def _renamed(node: Any, key: str, old: str, new: str) -> Any:
    """A copy of a document with every `key` equal to `old` (a name and its uses) set to `new`."""
    if isinstance(node, dict):
        return {
            k: new if k == key and v == old else _renamed(v, key, old, new) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_renamed(v, key, old, new) for v in node]
    return node


@pytest.mark.parametrize("name", ["a b", "1st", "age\n", "crcl;drop", "and", "ULN", "é", ""])
def test_names_follow_the_protocol_files_rule(name: str) -> None:
    # Renamed consistently (declaration and every use), so only the name rule can refuse it.
    doc = through_text(export_json(MINI_PROTOCOL))
    definition = next(i for i, d in enumerate(doc["definitions"]) if d["name"] == "age")
    with pytest.raises(LoadError) as info:
        load_json(_renamed(doc, "name", "age", name))
    [d] = info.value.diagnostics
    assert d.field == f"/definitions/{definition}/name"
    assert f"definition name '{name}' is" in d.message
    item = next(i for i, d in enumerate(doc["data"]) if d["name"] == "weight")
    renamed = _renamed(_renamed(doc, "name", "weight", name), "item", "weight", name)
    with pytest.raises(LoadError) as info:
        load_json(renamed)
    [d] = info.value.diagnostics
    assert d.field == f"/data/{item}/name"
    assert f"data item name '{name}' is" in d.message


def test_names_used_twice_are_refused_each_at_its_pointer() -> None:
    doc = through_text(export_json(MINI_PROTOCOL))
    clash = copy.deepcopy(doc)
    clash["definitions"][0]["name"] = clash["data"][0]["name"]
    clash["definitions"][1]["name"] = "bad name"
    clash["data"].append(copy.deepcopy(clash["data"][1]))
    with pytest.raises(LoadError) as info:
        load_json(clash)
    found = {(d.field, d.message) for d in info.value.diagnostics}
    first, second = clash["data"][0]["name"], clash["data"][1]["name"]
    assert found == {
        (f"/data/{len(clash['data']) - 1}/name", f"data item '{second}' is listed twice"),
        ("/definitions/0/name", f"definition '{first}' has the same name as a data item"),
        (
            "/definitions/1/name",
            "definition name 'bad name' is not an identifier"
            " (letters, digits and '_', not starting with a digit)",
        ),
    }


def test_dates_are_iso_strings() -> None:
    text = MINI.replace("rule: age >= 18 years}", "rule: enrollment >= 2024-01-31}")
    doc = export_json(protocode.load_text(text, "dates.yaml"))
    const = doc["criteria"][0]["expr"]["right"]
    assert (const["node"], const["value"], const["type"]) == (
        "const",
        "2024-01-31",
        {"kind": "date"},
    )
    imported = load_json(through_text(doc))
    rule = imported.criteria[0].rule
    assert isinstance(rule, ir.Compare) and isinstance(rule.right, ir.Const)
    assert rule.right.value == dt.date(2024, 1, 31)


# ---- the command line


def test_cli_compile_to_json_writes_the_document_that_round_trips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    status = main(["compile", "protocol/NCT06125106", "--to", "json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    doc = json.loads(out)
    validate_json(doc)
    # the folder's version in force, the file named relative to where the command ran
    assert doc == through_text(export_json(protocode.load("protocol/NCT06125106/v3.yaml")))
    assert doc["source"]["file"] == "protocol/NCT06125106/v3.yaml"

    path = tmp_path / "seed.json"
    status = main(["compile", "protocol/NCT06125106", "--to", "json", "-o", str(path)])
    assert status == 0 and capsys.readouterr().out == ""
    text = (ROOT / "protocol/NCT06125106/v3.yaml").read_text(encoding="utf-8")
    imported = load_json(json.loads(path.read_text(encoding="utf-8")), source=text)
    lines = (SEED / "examples" / "patients.jsonl").read_text(encoding="utf-8").splitlines()
    for patient in (json.loads(line) for line in lines if line.strip()):
        same_screening(SEED_V3, imported, patient)
        assert imported.explain(patient).to_json() == SEED_V3.explain(patient).to_json()


def test_cli_compile_to_json_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    status = main(["compile", "protocol/NCT06125106", "--to", "json", "--dialect", "postgres"])
    assert status != 0 and "--dialect applies to --to sql only" in capsys.readouterr().err
    status = main(["compile", "tests/fixtures/cli/unit_mismatch.yaml", "--to", "json"])
    out, err = capsys.readouterr()
    assert status == 1 and out == ""
    assert "unit_mismatch.yaml:24:21: unit: incompatible units" in err
    status = main(
        ["compile", "protocol/NCT06125106", "--to", "json", "-o", str(tmp_path / "no" / "x.json")]
    )
    _, err = capsys.readouterr()
    assert status == 1 and "No such file or directory" in err and "Traceback" not in err
