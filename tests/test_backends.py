"""Every backend screens as the reference closures do, each loaded through one door:
`protocode.load(..., backend=b)`."""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocode
from helpers import MINI, RULES, SEED
from protocode.backends.python.pycode import compile_fast
from protocode.core.errors import UsageError
from protocode.screening import BACKENDS, Backend, overall
from protocode.testing import records

SEED_PROTOCOL = protocode.load(SEED)


def loaded(name: str, backend: Backend) -> protocode.Protocol:
    """The seed or the mini protocol, screening with `backend`."""
    if name == "seed":
        return protocode.load(SEED, backend=backend)
    return protocode.load_text(MINI, "mini.yaml", backend=backend)


def test_fast_is_the_default_and_every_backend_is_its_own_protocol() -> None:
    assert BACKENDS[0] == "fast" and "reference" in BACKENDS
    assert protocode.load(SEED).backend == "fast"
    assert protocode.load(SEED, backend="reference").backend == "reference"
    assert protocode.load(SEED, backend="reference") is not protocode.load(SEED)
    with pytest.raises(UsageError, match="unknown backend 'sql'; one of fast, reference"):
        protocode.load(SEED, backend="sql")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["seed", "mini"])
@given(data=records(SEED_PROTOCOL))
def test_every_backend_screens_as_the_reference(name: str, backend: Backend, data: Any) -> None:
    reference, protocol = loaded(name, "reference"), loaded(name, backend)
    if name == "mini":
        data = {k: v for k, v in data.items() if k in {i.name for i in protocol.checked.doc.data}}
        data["id"] = "x"
    record = protocol.record(data)
    expected = reference.verdicts(record)
    assert protocol.verdicts(record) == expected
    kinds = [c.kind for c in protocol.criteria]
    assert protocol.status(record) == overall(zip(kinds, expected, strict=True))
    assert protocol.screen(record) == reference.screen(record)


def test_generated_code_is_plain_python_without_protocol_identifiers() -> None:
    tree = compile_fast(SEED_PROTOCOL.checked).source_tree
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    # Item names only ever appear as string constants, never as identifiers.
    assert not names & {i.name for i in SEED_PROTOCOL.checked.doc.data}
    constants = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert "creatinine" in constants
    assert not any(isinstance(n, ast.Import | ast.ImportFrom) for n in ast.walk(tree))


# ---- random well-typed rules over the mini protocol, run by both backends


@pytest.mark.parametrize("backend", BACKENDS)
@given(rule=RULES, data=st.data())
def test_backends_agree_on_random_rules(backend: Backend, rule: str, data: st.DataObject) -> None:
    text = MINI.replace("rule: age >= 18 years}", f"rule: {json.dumps(rule)}}}")
    reference = protocode.load_text(text, "random.yaml", backend="reference")
    protocol = protocode.load_text(text, "random.yaml", backend=backend)
    record = protocol.record(data.draw(records(protocol)))
    assert protocol.verdicts(record) == reference.verdicts(record), rule


def test_every_ir_node_class_has_a_method_in_every_backend() -> None:
    from typing import get_args

    from protocode.backends.python.closures import _Compiler
    from protocode.backends.python.pycode import _Generator
    from protocode.language import ir

    for cls in get_args(ir.Expr):
        name = ir.visitor_method(cls)
        assert callable(getattr(_Compiler, name, None)), (cls, "closures")
        assert callable(getattr(_Generator, name, None)), (cls, "pycode")
