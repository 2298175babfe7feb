"""The closure backend (reference) and the generated-code backend agree on everything."""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocode
from helpers import MINI, RULES, SEED
from protocode.backends.python import Env, compile_protocol
from protocode.backends.python.pycode import compile_fast
from protocode.screening import overall
from protocode.testing import records

SEED_PROTOCOL = protocode.load(SEED)
MINI_PROTOCOL = protocode.load_text(MINI, "mini.yaml")


def reference(protocol: protocode.Protocol, record: protocode.Record) -> tuple[Any, ...]:
    env = Env(record)
    return tuple(fn(env) for fn in compile_protocol(protocol.checked).criteria)


@pytest.mark.parametrize("protocol", [SEED_PROTOCOL, MINI_PROTOCOL], ids=["seed", "mini"])
@given(data=records(SEED_PROTOCOL))
def test_generated_code_agrees_with_closures(protocol: protocode.Protocol, data: Any) -> None:
    if protocol is MINI_PROTOCOL:
        data = {k: v for k, v in data.items() if k in {i.name for i in protocol.checked.doc.data}}
        data["id"] = "x"
    record = protocol.record(data)
    expected = reference(protocol, record)
    assert protocol.verdicts(record) == expected
    kinds = [c.kind for c in protocol.criteria]
    assert protocol.status(record) == overall(zip(kinds, expected, strict=True))


def test_generated_code_is_plain_python_without_protocol_identifiers() -> None:
    tree = compile_fast(SEED_PROTOCOL.checked).source_tree
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    # Item names only ever appear as string constants, never as identifiers.
    assert not names & {i.name for i in SEED_PROTOCOL.checked.doc.data}
    constants = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert "creatinine" in constants
    assert not any(isinstance(n, ast.Import | ast.ImportFrom) for n in ast.walk(tree))


# ---- random well-typed rules over the mini protocol, run by both backends


@given(rule=RULES, data=st.data())
def test_backends_agree_on_random_rules(rule: str, data: st.DataObject) -> None:
    text = MINI.replace("rule: age >= 18 years}", f"rule: {json.dumps(rule)}}}")
    protocol = protocode.load_text(text, "random.yaml")
    record = protocol.record(data.draw(records(protocol)))
    assert protocol.verdicts(record) == reference(protocol, record), rule


def test_every_ir_node_class_has_a_method_in_every_backend() -> None:
    from typing import get_args

    from protocode.backends.python.closures import _Compiler
    from protocode.backends.python.pycode import _Generator
    from protocode.language import ir

    for cls in get_args(ir.Expr):
        name = ir.visitor_method(cls)
        assert callable(getattr(_Compiler, name, None)), (cls, "closures")
        assert callable(getattr(_Generator, name, None)), (cls, "pycode")
