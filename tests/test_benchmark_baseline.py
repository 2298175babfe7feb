"""The benchmark's generator and hand-written baseline (``benchmarks/``) stay honest.

The baseline is only a fair yardstick if it computes what the engine computes: on a fixed
cohort of generated records, both must give every record the same status. The generator
must produce valid records and a cohort in which every status occurs. No timing here.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import protocode
from protocode.records import Record

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
N = 2_000
SEED = 20240301


def _load(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (the folder is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"protocode_bench_{name}", BENCHMARKS / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate_records: Callable[..., list[dict[str, Any]]] = _load("generate").generate_records
screen_baseline: Callable[[Record], str] = _load("baseline").screen_baseline


@pytest.fixture(scope="module")
def protocol() -> protocode.Protocol:
    return protocode.load(ROOT / "protocol" / "NCT06125106")


@pytest.fixture(scope="module")
def records(protocol: protocode.Protocol) -> list[Record]:
    # Protocol.record raises RecordError on any bad field: this is the "parses" check.
    return [protocol.record(data) for data in generate_records(N, SEED)]


def _disagreements(protocol: protocode.Protocol, records: list[Record]) -> list[str]:
    return [
        f"{r.id}: protocode {protocol.status(r)}, baseline {screen_baseline(r)}, "
        f"verdicts {protocol.screen(r).to_json()['criteria']}"
        for r in records
        if protocol.status(r) != screen_baseline(r)
    ]


def test_generator_is_deterministic() -> None:
    assert generate_records(50, SEED) == generate_records(50, SEED)
    assert generate_records(50, SEED) != generate_records(50, SEED + 1)
    # Record i does not depend on how many come after it (reproductions rely on this).
    assert generate_records(10, SEED) == generate_records(50, SEED)[:10]


def test_generated_records_parse(records: list[Record]) -> None:
    assert len(records) == N
    assert len({r.id for r in records}) == N


def test_all_statuses_occur(protocol: protocode.Protocol, records: list[Record]) -> None:
    counts = Counter(protocol.status(r) for r in records)
    assert set(counts) == {"eligible", "ineligible", "indeterminate"}, counts


def test_baseline_agrees_with_protocode(
    protocol: protocode.Protocol, records: list[Record]
) -> None:
    bad = _disagreements(protocol, records)
    assert not bad, f"{len(bad)} disagreement(s):\n" + "\n".join(bad[:5])


def test_baseline_agrees_when_much_is_missing(protocol: protocode.Protocol) -> None:
    # Every record lacks several items: exercises the three-valued logic of every criterion.
    cohort = generate_records(N, SEED, missing=1.0, most_missing=10)
    records = [protocol.record(data) for data in cohort]
    bad = _disagreements(protocol, records)
    assert not bad, f"{len(bad)} disagreement(s):\n" + "\n".join(bad[:5])
