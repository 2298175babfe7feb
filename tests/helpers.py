"""Shared test helpers: the mini protocol, rule checking, and golden-file comparison."""

from __future__ import annotations

import os
from pathlib import Path

from protocode.check import check_rule
from protocode.ir import Expr
from protocode.loader import load_protocol_text
from protocode.model import ProtocolDoc, RuleText

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
MINI_PATH = FIXTURES / "check" / "mini.yaml"
MINI = MINI_PATH.read_text(encoding="utf-8")
SEED = ROOT / "protocol" / "NCT06125106"


def mini_doc() -> ProtocolDoc:
    """The mini protocol, loaded."""
    return load_protocol_text(MINI, "mini.yaml")


def check(text: str) -> Expr:
    """Check a standalone rule against the mini protocol's dictionary and definitions."""
    doc = mini_doc()
    return check_rule(RuleText.detached(text), doc.data, doc.definitions)


def assert_golden(actual: str, golden: Path) -> None:
    """Compare with a golden file; PROTOCODE_UPDATE_GOLDEN=1 rewrites it instead."""
    if os.environ.get("PROTOCODE_UPDATE_GOLDEN") == "1" or not golden.exists():
        if os.environ.get("CI"):
            raise AssertionError(f"golden file {golden} is missing")
        golden.write_text(actual, encoding="utf-8")
    assert actual == golden.read_text(encoding="utf-8"), f"differs from {golden}"
