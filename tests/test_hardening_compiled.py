"""Compiled JSON of deeply nested rules (issue 11, item 6): what `check` accepts round-trips
through ``compile --to json`` and `load_json`, and a document nested deeper is one located
error, never a RecursionError."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

import protocode
from fuzz_inputs import compiled_seed
from fuzz_mutate import deep_expression, dumps
from protocode.backends.export import compiled_schema, validate_json
from protocode.backends.export.validate import MAX_DEPTH, pointer
from protocode.cli import main
from protocode.core.errors import LoadError
from protocode.language import ir
from protocode.language.check import MAX_NESTING
from protocode.pipeline import load_json

CHAIN = 100  # definitions d1..d100, each one level above the last: the rule nests 200 deep

_CHAIN_LINES = "".join(f"  d{k}: {{rule: d{k - 1} + 1}}\n" for k in range(2, CHAIN + 1))

DEEP = f"""\
protocode: 1
protocol:
  registry_id: NCT00000001
  title: Deep
  version: "1"
data:
  enrollment: {{kind: anchor}}
  age: {{type: integer}}
  flag: {{type: boolean}}
definitions:
  d1: {{rule: age + 1}}
{_CHAIN_LINES}\
criteria:
  inclusion:
    - id: I1
      text: Through a chain of definitions
      rule: d{CHAIN} - {CHAIN} >= 18 and {"not " * 60}flag
    - id: I2
      text: As deep as one rule's text may go
      rule: {"(" * 30}age{" + 1)" * 30} >= 48
"""

NODE_KINDS = compiled_schema()["$defs"]["expr"]["properties"]["node"]["enum"]

RECORDS = [
    {"id": "adult", "age": 40, "flag": True},
    {"id": "minor", "age": 10, "flag": True},
    {"id": "flag-off", "age": 40, "flag": False},
    {"id": "unknown"},
]


def _verdicts(protocol: protocode.Protocol) -> list[tuple[str, list[str]]]:
    return [
        (r.status, [c.verdict for c in r.criteria])
        for r in (protocol.screen(record) for record in RECORDS)
    ]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The deep protocol through the command line's ``compile --to json``."""
    folder = tmp_path_factory.mktemp("deep")
    (folder / "deep.yaml").write_text(DEEP, encoding="utf-8")
    out = folder / "deep.json"
    assert main(["compile", str(folder / "deep.yaml"), "--to", "json", "-o", str(out)]) == 0
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc


def test_a_rule_nesting_200_levels_round_trips(compiled: dict[str, Any]) -> None:
    original = protocode.load_text(DEEP, "deep.yaml")
    imported = load_json(compiled)
    assert _verdicts(imported) == _verdicts(original)
    assert [s for s, _ in _verdicts(imported)] == [
        "eligible",
        "ineligible",
        "ineligible",
        "indeterminate",
    ]


def _wrapped(doc: dict[str, Any], levels: int, index: int = 0) -> dict[str, Any]:
    """`doc` with a criterion's rule inside `levels` `not` nodes (built in a loop: copying or
    printing the result would recurse)."""
    out = copy.copy(doc)
    out["criteria"] = copy.deepcopy(doc["criteria"])
    expr = out["criteria"][index]["expr"]
    for _ in range(levels):
        expr = {"node": "not", "operand": expr, "type": expr["type"], "span": expr["span"]}
    out["criteria"][index]["expr"] = expr
    return out


def _nesting(doc: dict[str, Any], index: int = 0) -> int:
    """How deep a criterion's rule nests, counting the definitions it uses."""
    checked = load_json(doc).checked
    rule = checked.criteria[index].rule
    assert rule is not None
    return ir.nesting(rule, ir.depths(checked.definitions))[0]


def test_a_document_at_the_bound_loads_and_screens(compiled: dict[str, Any]) -> None:
    # I2's rule, wrapped in pairs of `not` (same meaning) up to the bound: one expression
    # nesting 256 levels, far past what jsonschema could recurse through (about 80).
    levels = MAX_NESTING - _nesting(compiled, 1)
    assert levels % 2 == 0
    deep = _wrapped(compiled, levels, 1)
    assert _nesting(deep, 1) == MAX_NESTING
    assert _verdicts(load_json(deep)) == _verdicts(load_json(compiled))


def test_a_document_past_the_bound_is_one_located_error(compiled: dict[str, Any]) -> None:
    with pytest.raises(LoadError) as info:
        load_json(_wrapped(compiled, 300))
    [d] = info.value.diagnostics
    assert d.field == "/criteria/0/expr"
    assert d.message == (
        f"the rule nests {300 + _nesting(compiled)} levels deep counting the definitions it "
        f"uses, at most {MAX_NESTING}"
    )


@pytest.mark.parametrize("levels", [MAX_DEPTH, 5_000])
def test_a_document_nested_thousands_deep_is_one_short_error(
    compiled: dict[str, Any], levels: int
) -> None:
    for validate in (True, False):
        with pytest.raises(LoadError) as info:
            load_json(_wrapped(compiled, levels), validate=validate)
        [d] = info.value.diagnostics
        assert d.field is not None and d.field.startswith("/criteria/0/expr/operand/operand/")
        assert "…" in d.field and len(d.field) < 130
        assert d.message.startswith(f"nested more than {MAX_DEPTH} levels deep")
        assert len(info.value.render()) < 400


def test_schema_errors_deep_in_a_rule_are_each_at_their_pointer(
    compiled: dict[str, Any],
) -> None:
    doc = _wrapped(compiled, 150)
    keys: list[str | int] = ["criteria", 0, "expr"]
    node = doc["criteria"][0]["expr"]
    for depth in range(1, 121):
        node, keys = node["operand"], [*keys, "operand"]
        if depth == 40:
            del node["span"]
            span_at = pointer([*keys, "span"])
            missing_at = pointer(keys)
    node["node"] = "bogus"
    with pytest.raises(LoadError) as info:
        validate_json(doc)
    found = {(d.field, d.message) for d in info.value.diagnostics}
    assert found == {
        (missing_at, "'span' is a required property"),
        (pointer([*keys, "node"]), f"'bogus' is not one of {NODE_KINDS!r}"),
    }
    assert span_at.startswith("/criteria/0/expr/operand/") and "…" in span_at
    assert len(span_at) < 110


def test_messages_do_not_copy_a_large_value(compiled: dict[str, Any]) -> None:
    doc = copy.deepcopy(compiled)
    doc["data"][0]["minimum"] = {"k": ["x" * 1000] * 1000}
    doc["criteria"][0]["expr"]["type"] = [list(range(100_000))]
    with pytest.raises(LoadError) as info:
        validate_json(doc)
    messages = {d.field: d.message for d in info.value.diagnostics}
    assert messages["/data/0/minimum"].endswith("is not valid under any of the given schemas")
    assert messages["/criteria/0/expr/type"].endswith("is not valid under any of the given schemas")
    assert all(len(m) <= 201 for m in messages.values()), messages


@pytest.mark.parametrize("levels", [2, 300, 900])
def test_the_fuzz_suites_deep_mutation_is_refused_or_read(levels: int) -> None:
    # The mutation the fuzz suite's `compiled` category draws, through the JSON parser.
    doc, note = deep_expression(json.loads(compiled_seed()), 0, levels)
    assert note == f"json: I1 inside {levels} not nodes"
    parsed = json.loads(dumps(doc))
    if levels == 2:
        load_json(parsed)
        return
    with pytest.raises(LoadError) as info:
        load_json(parsed)
    [d] = info.value.diagnostics
    assert d.field is not None and d.field.startswith("/criteria/0/expr")


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("source", "excerpts", 0, "line"), 99_999_999_999, "/source"),
        (("source", "excerpts", 0, "start"), 10**12, "/source"),
        (("source", "length"), 10**12, "/source/length"),
    ],
)
def test_source_positions_past_any_protocol_file_are_one_error(
    compiled: dict[str, Any], path: tuple[str | int, ...], value: int, field: str
) -> None:
    """The stand-in source text is rebuilt from the document's positions: a huge one is
    refused before anything that size is built (a line of 10^11 hung, then ran out of
    memory; found by fuzz/run.py)."""
    doc = copy.deepcopy(compiled)
    parent: Any = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    with pytest.raises(LoadError) as info:
        load_json(doc)
    [d] = info.value.diagnostics
    assert d.field == field
    assert "the largest protocol file" in d.message
