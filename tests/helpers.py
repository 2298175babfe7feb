"""Shared test helpers: the mini protocol, rule checking, and golden-file comparison."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from protocode.cli import main
from protocode.document.loader import load_protocol_text
from protocode.document.model import ProtocolDoc, RuleText
from protocode.language.check import check_rule
from protocode.language.ir import Expr

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
MINI_PATH = FIXTURES / "check" / "mini.yaml"
MINI = MINI_PATH.read_text(encoding="utf-8")
SEED = ROOT / "protocol" / "NCT06125106"

# The smallest protocol file; tests edit single lines of it, so mind its line numbers.
MINIMAL = """\
protocode: 1
protocol:
  registry_id: NCT00000001
  title: Minimal
  version: "1"
data:
  enrollment: {kind: anchor}
  age: {type: integer}
criteria:
  inclusion:
    - id: I1
      text: Adults
      rule: age >= 18
"""


def mini_doc() -> ProtocolDoc:
    """The mini protocol, loaded."""
    return load_protocol_text(MINI, "mini.yaml")


def check(text: str) -> Expr:
    """Check a standalone rule against the mini protocol's dictionary and definitions."""
    doc = mini_doc()
    return check_rule(RuleText.detached(text), doc.data, doc.definitions)


def in_ci() -> bool:
    """Whether the tests run in CI (``CI=true``, as CI services and ``.ci/run`` callers set)."""
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def assert_golden(actual: str, golden: Path) -> None:
    """Compare with a golden file; PROTOCODE_UPDATE_GOLDEN=1 rewrites it instead.

    Outside CI a missing golden file is written (with a warning saying so). In CI it fails,
    as does a rewrite: a golden file written by the run it checks would compare with itself.
    """
    update = os.environ.get("PROTOCODE_UPDATE_GOLDEN") == "1"
    if in_ci() and (update or not golden.exists()):
        why = "PROTOCODE_UPDATE_GOLDEN=1" if update else "missing"
        pytest.fail(f"golden file {golden}: {why} in CI; write it outside CI and commit it")
    if update or not golden.exists():
        golden.write_text(actual, encoding="utf-8")
        warnings.warn(f"wrote golden file {golden}; check and commit it", stacklevel=2)
        return
    assert actual == golden.read_text(encoding="utf-8"), f"differs from {golden}"


# Random well-typed boolean rules over the mini protocol's dictionary.
N = st.integers(0, 120).map(str)
ATOMS = st.one_of(
    st.sampled_from(
        [
            "flag",
            "other",
            'sex == "female"',
            "ecog in {0, 1, 2}",
            "ecog not in {3}",
            "weight is known",
            "ecog is missing",
            "ever chemo",
            "no chemo before enrollment",
            "latest ast within 7 days before enrollment <= 3 x ULN",
            "latest ast within 7 days before enrollment > LLN",
            "enrollment - 14 days > birth_date",
            "screening + 1 months >= enrollment",
        ]
    ),
    N.map(lambda n: f"weight > {n} kg"),
    N.map(lambda n: f"weight between {n} kg and {int(n) + 30} kg"),
    N.map(lambda n: f"crcl >= {n} mL/min"),
    N.map(lambda n: f"age >= {n} years"),
    N.map(lambda n: f"latest creatinine within 7 days before enrollment <= {n} umol/L"),
    N.map(lambda n: f"any chemo within {n} days before enrollment"),
    N.map(lambda n: f"count chemo within {n} days of enrollment >= 1"),
    N.map(lambda n: f"days_between(birth_date, enrollment) > {n} days"),
    N.map(lambda n: f"min(weight, 50 kg) < {n} kg"),
    N.map(lambda n: f"(weight as kg) * 2 - abs(ecog) > {n}"),
    N.map(lambda n: f"round(weight / 3, 1) >= {n} kg"),
)
RULES = st.recursive(
    ATOMS,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: f"({p[0]} and {p[1]})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]} or {p[1]})"),
        inner.map(lambda p: f"not ({p})"),
        st.tuples(inner, inner, inner).map(lambda p: f"(if {p[0]} then {p[1]} else {p[2]})"),
    ),
    max_leaves=6,
)


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one in-process run of the command line."""
    status = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def undocumented(node: Any, path: str = "") -> list[str]:
    """JSON Schema properties without a description, as pointers.

    An 'if' names properties only to test them (editors show no text for it), so it is exempt.
    """
    missing = []
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            if "description" not in sub:
                missing.append(f"{path}/properties/{name}")
        for key, value in node.items():
            if key != "if":
                missing += undocumented(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            missing += undocumented(value, f"{path}/{index}")
    return missing
