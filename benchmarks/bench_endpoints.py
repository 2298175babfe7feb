"""Benchmark: protocode endpoint derivation against a hand-written baseline.

    PYTHONPATH=src python benchmarks/bench_endpoints.py [--n 100000] [--seed 1] [--json OUT]

Steps, all in one process (see ``benchmarks/README.md``):

1. generate N synthetic post-transplant follow-up records (`cohort.py`);
2. parse them once with `Protocol.record` -- timed: ingestion throughput;
3. time `protocode.endpoints.derive` (the seven endpoints of ``protocol/NCT06125106/v3.yaml``)
   over the parsed records and the hand-written `derive_baseline` over the raw dicts, each
   the best of `--repeat` interleaved repetitions (``time.perf_counter``, garbage collector
   off during a timed pass as `timeit` does; ingestion is timed the same way);
4. check that protocode and the baseline give every patient the same rows (endpoint, status,
   date, time); a disagreement is a bug in one of them: up to five examples are printed with
   what is needed to reproduce them, and the benchmark exits with status 1 before reporting
   any timing;
5. time the estimation of the cohort once (`protocode.endpoints.estimate.estimate`:
   Kaplan-Meier, Aalen-Johansen or a proportion per endpoint, with lifelines and scipy).
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
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("protocode") is None:  # run without PYTHONPATH=src
    sys.path.insert(0, str(ROOT / "src"))

from baseline_endpoints import derive_baseline  # noqa: E402
from cohort import generate_cohort  # noqa: E402

import protocode  # noqa: E402
from protocode.core.errors import RecordError  # noqa: E402
from protocode.endpoints import EndpointRow, derive, endpoints  # noqa: E402
from protocode.endpoints.estimate import Estimate, estimate  # noqa: E402
from protocode.records import Record  # noqa: E402

PROTOCOL = ROOT / "protocol" / "NCT06125106" / "v3.yaml"
MAX_EXAMPLES = 5

T = TypeVar("T")
Row = tuple[str, str, dt.date, int]


def _derive_all(protocol: protocode.Protocol, records: Sequence[Record]) -> list[Any]:
    """protocode's rows of every patient (a `RecordError` in place of an underivable one)."""
    out: list[Any] = []
    for record in records:
        try:
            out.append(derive(protocol, record))
        except RecordError as exc:
            out.append(exc)
    return out


def _baseline_all(raw: Sequence[dict[str, Any]]) -> list[Any]:
    """The baseline's rows of every patient (the exception in place of a failed one)."""
    out: list[Any] = []
    for data in raw:
        try:
            out.append(derive_baseline(data))
        except Exception as exc:  # a baseline bug: reported as a disagreement
            out.append(exc)
    return out


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Seconds one call of `fn` takes with the garbage collector off, and its result."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result
    finally:
        gc.enable()


def _rows(result: object) -> list[Row] | str:
    """Comparable rows of one patient, or the error text."""
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {result}"
    assert isinstance(result, list)
    return [
        (r.endpoint, r.status, r.date, r.time) if isinstance(r, EndpointRow) else tuple(r)
        for r in result
    ]


def _check_agreement(
    raw: Sequence[dict[str, Any]], ours: Sequence[object], theirs: Sequence[object], seed: int
) -> int:
    """The number of patients on whose rows protocode and the baseline differ (examples shown)."""
    bad = [i for i in range(len(raw)) if _rows(ours[i]) != _rows(theirs[i])]
    if bad:
        print(f"\nDISAGREEMENT: protocode and the baseline differ on {len(bad)} patient(s).")
        for i in bad[:MAX_EXAMPLES]:
            print(
                f"\n  patient #{i} {raw[i]['id']}:\n"
                f"  protocode {_rows(ours[i])}\n"
                f"  baseline  {_rows(theirs[i])}\n"
                f"  reproduce: generate_cohort({i + 1}, seed={seed})[{i}] "
                "(benchmarks/cohort.py), or the record below:\n"
                f"  {json.dumps(raw[i])}"
            )
    return len(bad)


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _max_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _show_estimates(estimates: Sequence[Estimate]) -> None:
    print(
        f"\n{'endpoint':9}{'method':16}{'day':>5}{'estimate':>10}{'95 % CI':>18}"
        f"{'events':>9}{'competing':>11}{'censored':>10}"
    )
    for e in estimates:
        interval = f"{100 * e.lower:.1f}-{100 * e.upper:.1f} %"
        day = "" if e.horizon_days is None else str(e.horizon_days)
        print(
            f"{e.endpoint:9}{e.method:16}{day:>5}{100 * e.value:>8.1f} %{interval:>18}"
            f"{e.events:>9,}{e.competing:>11,}{e.censored:>10,}"
        )
    print("(a proportion's events are its responders; censored: patients not evaluable)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when protocode and the baseline disagree."""
    parser = argparse.ArgumentParser(description="protocode endpoint derivation benchmark")
    parser.add_argument("--n", type=int, default=100_000, help="patients (default 100000)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (default 3)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the figures as JSON")
    args = parser.parse_args(argv)
    n: int = args.n
    if n < 1 or args.repeat < 1:
        parser.error("--n and --repeat must be at least 1")

    started = dt.datetime.now().astimezone()
    machine = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count() or 0,
    }
    print(
        f"protocode endpoint benchmark, {started:%Y-%m-%d %H:%M %Z}\n"
        f"{machine['implementation']} {machine['python']} on {machine['platform']}, "
        f"{machine['cpus']} CPUs; N = {n:,}, seed {args.seed}, best of {args.repeat}"
    )

    t0 = time.perf_counter()
    raw = generate_cohort(n, args.seed)
    generate_seconds = time.perf_counter() - t0
    protocol = protocode.load(PROTOCOL)
    checked = endpoints(protocol)  # checked once per protocol: not part of any timing

    def ingest() -> tuple[list[Record], list[tuple[int, RecordError]]]:
        records: list[Record] = []
        errors: list[tuple[int, RecordError]] = []
        for i, data in enumerate(raw):
            try:
                records.append(protocol.record(data))
            except RecordError as exc:
                errors.append((i, exc))
        return records, errors

    ingest_seconds, (records, errors) = _timed(ingest)
    if errors:
        print(f"\nGENERATOR BUG: {len(errors)} generated record(s) do not parse:")
        for i, error in errors[:MAX_EXAMPLES]:
            print(f"  #{i}: {error}\n  {json.dumps(raw[i])}")
        return 1

    times: dict[str, list[float]] = {"derive": [], "baseline": []}
    ours: list[Any] = []
    theirs: list[Any] = []
    for _ in range(args.repeat):
        seconds, ours = _timed(lambda: _derive_all(protocol, records))
        times["derive"].append(seconds)
        seconds, theirs = _timed(lambda: _baseline_all(raw))
        times["baseline"].append(seconds)
    best = {name: min(ts) for name, ts in times.items()}

    disagreements = _check_agreement(raw, ours, theirs, args.seed)
    if disagreements:
        return 1

    rows = [row for patient in ours for row in patient]
    estimate_seconds, estimates = _timed(lambda: estimate(protocol, rows))
    peak_rss = _max_rss_bytes()

    statuses = Counter((row.endpoint, row.status) for row in rows)
    ratio = best["derive"] / best["baseline"]
    full_ratio = (ingest_seconds + best["derive"]) / best["baseline"]
    table = [
        ("generate cohort (not a target)", generate_seconds),
        ("ingest: Protocol.record", ingest_seconds),
        (f"derive: endpoints.derive ({len(checked)} endpoints)", best["derive"]),
        ("ingest + derive", ingest_seconds + best["derive"]),
        ("baseline (hand-written, raw dicts)", best["baseline"]),
        ("estimate the cohort (once)", estimate_seconds),
    ]
    print(
        f"\nprotocode and the baseline agree on all {n:,} patients "
        f"({len(rows):,} rows: endpoint, status, date, time)\n"
    )
    print(f"{'':38}{'seconds':>10}{'patients/s':>14}{'us/patient':>12}")
    for label, seconds in table:
        print(f"{label:38}{seconds:>10.3f}{_rate(n, seconds):>14,.0f}{seconds / n * 1e6:>12.2f}")
    print(
        f"\nprotocode derive / baseline time: {ratio:.2f}x"
        f"\nprotocode ingest + derive / baseline time: {full_ratio:.2f}x"
        f"\npeak RSS {peak_rss / 2**20:,.0f} MiB (whole run: raw dicts, parsed records, rows)"
    )
    _show_estimates(estimates)

    if args.json is not None:
        figures = {
            "date": started.isoformat(timespec="seconds"),
            "machine": machine,
            "n": n,
            "seed": args.seed,
            "repeat": args.repeat,
            "disagreements": disagreements,
            "statuses": {f"{e} {s}": count for (e, s), count in sorted(statuses.items())},
            "generate_seconds": generate_seconds,
            "ingest": {"seconds": ingest_seconds, "patients_per_second": _rate(n, ingest_seconds)},
            **{
                name: {
                    "best_seconds": best[name],
                    "all_seconds": times[name],
                    "patients_per_second": _rate(n, best[name]),
                }
                for name in times
            },
            "estimate_seconds": estimate_seconds,
            "ratio_derive_to_baseline": ratio,
            "ratio_ingest_derive_to_baseline": full_ratio,
            "peak_rss_bytes": peak_rss,
            "estimates": [e.to_json() | {"curve": len(e.curve)} for e in estimates],
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
