"""Benchmark: protocode screening throughput against a hand-written baseline.

    PYTHONPATH=src python benchmarks/bench_screen.py [--n 100000] [--seed 1] [--json OUT]

Steps, all in one process (see ``benchmarks/README.md``):

1. generate N synthetic records for NCT06125106 (`generate.py`);
2. parse them once with `Protocol.record` -- timed: ingestion throughput;
3. check that `Protocol.status` and the hand-written `screen_baseline` agree on every record
   (a disagreement is a bug in one of them: the examples are printed with what is needed to
   reproduce them, and the benchmark exits with status 1 before timing anything);
4. time `Protocol.status`, `screen_baseline` and `Protocol.screen` over all records, each
   the best of `--repeat` interleaved repetitions (``time.perf_counter``, garbage collector
   off during a repetition as `timeit` does);
5. time a cold `protocode.load` (parse + check + compile) of the protocol in fresh
   subprocesses, with Lark's on-disk grammar cache as found and with an empty one;
6. report peak memory: the process's maximum RSS, and (tracemalloc, on a sample) the memory
   a parsed record holds and the peak of a screening pass.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("protocode") is None:  # run without PYTHONPATH=src
    sys.path.insert(0, str(ROOT / "src"))

from baseline import screen_baseline  # noqa: E402
from generate import generate_records  # noqa: E402

import protocode  # noqa: E402
from protocode.core.errors import RecordError  # noqa: E402
from protocode.records import Record  # noqa: E402

PROTOCOL = ROOT / "protocol" / "NCT06125106"
TARGET_RATIO = 2.0
MAX_EXAMPLES = 5
MEMORY_SAMPLE = 10_000

# Run in a fresh interpreter: nothing is cached in memory, so this is the true start-up cost.
_COLD_SCRIPT = """
import sys, time
t0 = time.perf_counter()
import protocode
t1 = time.perf_counter()
protocode.load(sys.argv[1])
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def _best_of(
    fns: dict[str, Callable[[Record], object]], records: Sequence[Record], repeat: int
) -> dict[str, list[float]]:
    """Seconds per pass over `records` for each function, repetitions interleaved."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                for record in records:
                    fn(record)
                times[name].append(time.perf_counter() - start)
            finally:
                gc.enable()
    return times


def _cold_load(runs: int, grammar_cache: bool) -> dict[str, float]:
    """Import and `protocode.load` times (median, min) over `runs` fresh subprocesses."""
    env = dict(os.environ)
    package_root = str(Path(protocode.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (package_root, env.get("PYTHONPATH"))))
    imports: list[float] = []
    loads: list[float] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            if not grammar_cache:
                env["TMPDIR"] = tmp  # Lark keeps its grammar cache in the temp directory
            done = subprocess.run(
                [sys.executable, "-c", _COLD_SCRIPT, str(PROTOCOL)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
        t_import, t_load = map(float, done.stdout.split())
        imports.append(t_import)
        loads.append(t_load)
    return {
        "import_seconds_median": statistics.median(imports),
        "load_seconds_median": statistics.median(loads),
        "load_seconds_min": min(loads),
    }


def _max_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _memory(protocol: protocode.Protocol, raw: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Bytes a parsed record holds, and the peak a status pass allocates (tracemalloc)."""
    sample = raw[:MEMORY_SAMPLE]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        parsed = [protocol.record(d) for d in sample]
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        for record in parsed:
            protocol.status(record)
        status_peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return {
        "record_bytes_mean": held / len(sample),
        "status_pass_peak_bytes": float(status_peak),
        "sample": float(len(sample)),
    }


def _check_agreement(
    protocol: protocode.Protocol,
    raw: Sequence[dict[str, Any]],
    records: Sequence[Record],
    seed: int,
) -> tuple[Counter[str], int]:
    """Status counts, and the number of records where protocode and the baseline differ."""
    counts: Counter[str] = Counter()
    bad: list[int] = []
    for i, record in enumerate(records):
        status = protocol.status(record)
        counts[status] += 1
        if screen_baseline(record) != status:
            bad.append(i)
    if bad:
        print(f"\nDISAGREEMENT: protocode and the baseline differ on {len(bad)} record(s).")
        for i in bad[:MAX_EXAMPLES]:
            record = records[i]
            verdicts = protocol.screen(record).to_json()["criteria"]
            print(
                f"\n  record #{i} {record.id}: protocode {protocol.status(record)}, "
                f"baseline {screen_baseline(record)}\n"
                f"  verdicts: {verdicts}\n"
                f"  reproduce: generate_records({i + 1}, seed={seed})[{i}] "
                "(benchmarks/generate.py), or the record below:\n"
                f"  {json.dumps(raw[i])}"
            )
    return counts, len(bad)


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when protocode and the baseline disagree."""
    parser = argparse.ArgumentParser(description="protocode screening benchmark")
    parser.add_argument("--n", type=int, default=100_000, help="records (default 100000)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (default 3)")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold-load subprocesses")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the figures as JSON")
    args = parser.parse_args(argv)
    n: int = args.n
    if n < 1 or args.repeat < 1 or args.cold_runs < 1:
        parser.error("--n, --repeat and --cold-runs must be at least 1")

    started = dt.datetime.now().astimezone()
    machine = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count() or 0,
    }
    print(
        f"protocode screening benchmark, {started:%Y-%m-%d %H:%M %Z}\n"
        f"{machine['implementation']} {machine['python']} on {machine['platform']}, "
        f"{machine['cpus']} CPUs; N = {n:,}, seed {args.seed}, best of {args.repeat}"
    )

    t0 = time.perf_counter()
    raw = generate_records(n, args.seed)
    generate_seconds = time.perf_counter() - t0
    protocol = protocode.load(PROTOCOL)

    gc.collect()
    t0 = time.perf_counter()
    records: list[Record] = []
    errors: list[tuple[int, RecordError]] = []
    for i, data in enumerate(raw):
        try:
            records.append(protocol.record(data))
        except RecordError as exc:
            errors.append((i, exc))
    ingest_seconds = time.perf_counter() - t0
    if errors:
        print(f"\nGENERATOR BUG: {len(errors)} generated record(s) do not parse:")
        for i, error in errors[:MAX_EXAMPLES]:
            print(f"  #{i}: {error}\n  {json.dumps(raw[i])}")
        return 1

    counts, disagreements = _check_agreement(protocol, raw, records, args.seed)
    if disagreements:
        return 1

    times = _best_of(
        {
            "status": protocol.status,
            "baseline": screen_baseline,
            "screen": protocol.screen,
        },
        records,
        args.repeat,
    )
    best = {name: min(ts) for name, ts in times.items()}
    cold = _cold_load(args.cold_runs, grammar_cache=True)
    cold_fresh = _cold_load(args.cold_runs, grammar_cache=False)
    memory = _memory(protocol, raw)
    memory["peak_rss_bytes"] = float(_max_rss_bytes())

    ratio = best["status"] / best["baseline"]
    screen_ratio = best["screen"] / best["baseline"]
    share = {s: counts[s] / n for s in ("eligible", "ineligible", "indeterminate")}
    rows = [
        ("generate records (not a target)", generate_seconds),
        ("ingest: Protocol.record", ingest_seconds),
        ("Protocol.status (explanations off)", best["status"]),
        ("baseline (hand-written)", best["baseline"]),
        ("Protocol.screen (per-criterion)", best["screen"]),
    ]
    print(
        "\nstatuses: "
        + ", ".join(f"{s} {counts[s]:,} ({share[s]:.1%})" for s in share)
        + f"; protocode and baseline agree on all {n:,}\n"
    )
    print(f"{'':38}{'seconds':>10}{'patients/s':>14}{'us/patient':>12}")
    for label, seconds in rows:
        print(f"{label:38}{seconds:>10.3f}{_rate(n, seconds):>14,.0f}{seconds / n * 1e6:>12.2f}")
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(
        f"\nprotocode status / baseline time: {ratio:.2f}x ({verdict} the {TARGET_RATIO:g}x target)"
        f"\nprotocode screen / baseline time: {screen_ratio:.2f}x"
        f"\ncold load (parse+check+compile), fresh process, median of {args.cold_runs}: "
        f"{cold['load_seconds_median'] * 1e3:.0f} ms (min {cold['load_seconds_min'] * 1e3:.0f}); "
        f"without Lark's grammar cache {cold_fresh['load_seconds_median'] * 1e3:.0f} ms; "
        f"import protocode {cold['import_seconds_median'] * 1e3:.0f} ms"
        f"\npeak RSS {memory['peak_rss_bytes'] / 2**20:.0f} MiB (whole run, raw + parsed records);"
        f" a parsed record holds {memory['record_bytes_mean'] / 1024:.1f} KiB;"
        f" a status pass peaks at {memory['status_pass_peak_bytes'] / 1024:.1f} KiB"
    )

    if args.json is not None:
        figures = {
            "date": started.isoformat(timespec="seconds"),
            "machine": machine,
            "n": n,
            "seed": args.seed,
            "repeat": args.repeat,
            "statuses": dict(counts),
            "disagreements": disagreements,
            "generate_seconds": generate_seconds,
            "ingest": {
                "seconds": ingest_seconds,
                "patients_per_second": _rate(n, ingest_seconds),
            },
            **{
                name: {
                    "best_seconds": best[name],
                    "all_seconds": times[name],
                    "patients_per_second": _rate(n, best[name]),
                }
                for name in times
            },
            "ratio_status_to_baseline": ratio,
            "ratio_screen_to_baseline": screen_ratio,
            "target_ratio": TARGET_RATIO,
            "within_target": ratio <= TARGET_RATIO,
            "cold_load": {"runs": args.cold_runs, **cold},
            "cold_load_no_grammar_cache": {"runs": args.cold_runs, **cold_fresh},
            "memory": memory,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
