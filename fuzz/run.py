"""Fuzz protocode for as long as asked: the test suite's generators, without its budget.

    python fuzz/run.py --inputs 10000                  # 10,000 inputs per category
    python fuzz/run.py --seconds 600 --categories records,fhir
    python fuzz/run.py --inputs 500 --seed 7 --out /tmp/fuzz-out

Every input runs in a worker process under a time bound (--timeout) and a memory bound. Per
category it reports the inputs run and the failures by kind: tracebacks, hangs, crashes of
the worker, batches whose results plus errors differ from the records in (lost or invented
records), and errors without a location; then each distinct failure (grouped by kind, and
for a traceback by exception type and innermost protocode frame) with how often it came and
where its first inputs are saved (--keep per failure, each a folder with ``case.json`` and
``files/``; copy one under ``tests/fixtures/fuzz/`` to replay it in the test suite).
A ``report.json`` with the same figures is written to --out. Exit status 1 when anything
failed. See docs/fuzzing.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed

from fuzz_inputs import CATEGORIES, Case
from fuzz_oracle import KINDS, Failure
from fuzz_worker import DEFAULT_TIMEOUT, Worker, save_case


class _OutOfTimeError(Exception):
    """Raised inside the generator loop when the category's seconds are spent."""


@dataclass
class Tally:
    """What one category's run found."""

    inputs: int = 0
    failed_inputs: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    signatures: Counter[tuple[str, str]] = field(default_factory=Counter)
    saved: dict[tuple[str, str], list[str]] = field(default_factory=dict)


def fuzz_category(
    category: str,
    worker: Worker,
    *,
    inputs: int | None,
    seconds: float | None,
    out: Path,
    keep: int,
    seed: int,
) -> Tally:
    """Run one category's generator until `inputs` or `seconds` is reached."""
    tally = Tally()
    deadline = time.monotonic() + seconds if seconds else None

    @hypothesis_seed(seed)
    @settings(
        max_examples=inputs or 10**9,
        phases=(Phase.generate,),
        database=None,
        deadline=None,
        derandomize=False,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
    )
    @given(CATEGORIES[category]())
    def run(case: Case) -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise _OutOfTimeError
        failures = worker.run(case)
        tally.inputs += 1
        if failures:
            tally.failed_inputs += 1
            record(tally, case, failures, out / category, keep)

    with contextlib.suppress(_OutOfTimeError):
        run()
    return tally


def record(tally: Tally, case: Case, failures: list[Failure], out: Path, keep: int) -> None:
    """Count a failing input; save it when its failure has fewer than `keep` saved inputs."""
    fresh = False
    for f in failures:
        key = (f.kind, f.signature)
        tally.kinds[f.kind] += 1
        tally.signatures[key] += 1
        saved = tally.saved.setdefault(key, [])
        if len(saved) < keep:
            fresh = True
    if fresh:
        folder = out / f"{tally.failed_inputs:05d}"
        save_case(case, failures, folder)
        for f in failures:
            saved = tally.saved[(f.kind, f.signature)]
            if len(saved) < keep:
                saved.append(str(folder))


def report(tallies: dict[str, Tally], elapsed: float) -> str:
    """The summary table and the list of distinct failures."""
    head = f"{'category':<10} {'inputs':>8} " + " ".join(f"{k:>10}" for k in KINDS)
    lines = [head]
    for category, t in tallies.items():
        lines.append(
            f"{category:<10} {t.inputs:>8} " + " ".join(f"{t.kinds[k]:>10}" for k in KINDS)
        )
    total = sum(t.inputs for t in tallies.values())
    lines.append(f"{total} inputs in {elapsed:.0f} s")
    distinct = [
        (key, n, t.saved.get(key, [])) for t in tallies.values() for key, n in t.signatures.items()
    ]
    if distinct:
        lines.append(f"\n{len(distinct)} distinct failures:")
        for (kind, signature), n, saved in sorted(
            distinct, key=lambda d: (KINDS.index(d[0][0]), d[0][1])
        ):
            lines.append(f"  {kind:<9} x{n:<5} {signature}")
            lines += [f"            {path}" for path in saved[:1]]
    else:
        lines.append("no failures")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, fuzz each category, print and save the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inputs", type=int, help="inputs per category")
    parser.add_argument("--seconds", type=float, help="seconds per category")
    parser.add_argument(
        "--categories",
        default=",".join(CATEGORIES),
        help=f"comma-separated, of: {', '.join(CATEGORIES)} (default: all)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "protocode-fuzz",
        help="folder for failing inputs and report.json (default: %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per input")
    parser.add_argument("--keep", type=int, default=3, help="inputs saved per distinct failure")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="random seed")
    args = parser.parse_args(argv)
    if args.inputs is None and args.seconds is None:
        parser.error("give --inputs N or --seconds S (or both: whichever comes first)")
    categories = [c.strip() for c in args.categories.split(",") if c.strip()]
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        parser.error(f"unknown categories: {', '.join(unknown)}")
    print(f"seed {args.seed}; failing inputs go to {args.out}", flush=True)
    start = time.monotonic()
    tallies: dict[str, Tally] = {}
    with Worker(timeout=args.timeout) as worker:
        for category in categories:
            began = time.monotonic()
            t = fuzz_category(
                category,
                worker,
                inputs=args.inputs,
                seconds=args.seconds,
                out=args.out,
                keep=args.keep,
                seed=args.seed,
            )
            tallies[category] = t
            print(
                f"{category}: {t.inputs} inputs in {time.monotonic() - began:.0f} s, "
                f"{t.failed_inputs} failing, {len(t.signatures)} distinct failures",
                flush=True,
            )
    text = report(tallies, time.monotonic() - start)
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    data = {
        "seed": args.seed,
        "categories": {
            c: {
                "inputs": t.inputs,
                "failing_inputs": t.failed_inputs,
                "failures": dict(t.kinds),
                "distinct": [
                    {"kind": k, "signature": s, "count": n, "saved": t.saved.get((k, s), [])}
                    for (k, s), n in t.signatures.items()
                ],
            }
            for c, t in tallies.items()
        },
    }
    (args.out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    return 1 if any(t.failed_inputs for t in tallies.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
