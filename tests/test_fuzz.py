"""The fuzz suite, on a budget: mutated seed files through the real entry points.

Each category (protocol files, protocol folders with their lock, stored cases, record files,
API records, tables, FHIR input, compiled JSON) draws mutated cases from `fuzz_inputs` and
runs them in a worker process (`fuzz_worker`) that bounds time and memory. A case fails on a
traceback, a hang, a batch whose results plus errors differ from the records in, or an error
without a location (`fuzz_oracle`). A failing case is saved as a reproducer folder, named in
the failure message; copied under ``tests/fixtures/fuzz/`` it is replayed by
`test_reproducer` from then on.

The budget is about a minute with ``CI`` set, half that without. `fuzz/run.py` runs the same
generators for as long as asked (docs/fuzzing.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, given, settings

from fuzz_inputs import CATEGORIES, Case
from fuzz_oracle import Failure
from fuzz_worker import Worker, load_case, save_case
from helpers import FIXTURES

# Examples per category with CI set; the costlier categories (a folder check proves the
# amendments' claims with z3, a table run starts DuckDB) get fewer.
CI_BUDGET = {
    "protocol": 15,
    "folder": 6,
    "cases": 20,
    "records": 60,
    "api": 40,
    "tables": 8,
    "fhir": 25,
    "compiled": 8,
}
REPRODUCERS = FIXTURES / "fuzz"
# Generous: the machine is shared and loaded; a real hang never answers at all.
TIMEOUT = 60.0


def budget(category: str) -> int:
    """Examples of `category` in this run."""
    full = CI_BUDGET[category]
    return full if os.environ.get("CI") else max(3, full // 2)


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    """One worker process for the module: it keeps the compiled seed protocol warm."""
    with Worker(timeout=TIMEOUT) as w:
        yield w


def describe(case: Case, failures: list[Failure], saved: Path) -> str:
    """A failure message: what broke, how the input was made, where it is saved."""
    lines = [
        f"{case.category} case broke {len(failures)} propert{'y' if len(failures) == 1 else 'ies'}"
    ]
    lines.append(f"  input: {case.note[:300]} (args {list(case.args)})")
    lines.append(f"  reproducer: {saved} (replay: copy it under {REPRODUCERS})")
    for f in failures:
        lines.append(f"  {f.kind}: {f.signature}")
        lines += ["      " + line for line in f.detail[-1500:].splitlines()]
    return "\n".join(lines)


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_fuzz(category: str, worker: Worker, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Mutated inputs of one category: no traceback, hang, lost record or unlocated error."""

    # No shrinking: each step is a run in the worker, and a hang costs the whole timeout.
    @settings(
        max_examples=budget(category),
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
    )
    @given(CATEGORIES[category]())
    def run(case: Case) -> None:
        failures = worker.run(case)
        if failures:
            saved = tmp_path_factory.mktemp(f"fuzz-{category}")
            save_case(case, failures, saved)
            raise AssertionError(describe(case, failures, saved))

    run()


def _reproducers() -> list[Path]:
    return sorted(p.parent for p in REPRODUCERS.glob("*/case.json"))


@pytest.mark.parametrize("folder", _reproducers(), ids=lambda p: p.name)
def test_reproducer(folder: Path, worker: Worker) -> None:
    """Inputs the fuzzer once broke protocode with: each must now pass every property."""
    case = load_case(folder)
    failures = worker.run(case)
    assert not failures, describe(case, failures, folder)
