"""Benchmark: the semantic diff of the seed protocol against its illustrative amendment.

    PYTHONPATH=src python benchmarks/bench_diff.py [--repeat 5]

Measures, on this machine: the whole `protocode diff` job in a fresh process (imports, load
and check of both versions, every criterion and overall eligibility compared with z3,
witnesses decoded and re-checked), and the comparison alone in a warm process, best of N.
The target is under 2 seconds for the whole job. The hand-written reference point is the
same run's `protocode check` of the folder without the semantic claims (structure only).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "protocol" / "NCT06125106"

_COLD = """
import time
t = time.perf_counter()
import protocode
from protocode.amendments import diff
report = diff(protocode.load({old!r}), protocode.load({new!r}))
assert report.problems == ()
print(time.perf_counter() - t)
"""


def cold(repeat: int) -> list[float]:
    """Seconds for the whole job in fresh interpreters."""
    code = _COLD.format(old=str(SEED / "v3.yaml"), new=str(SEED / "v4.yaml"))
    env_path = str(ROOT / "src")
    times = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            capture_output=True,
            text=True,
            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


def warm(repeat: int) -> tuple[list[float], int]:
    """Seconds for the comparison alone, both versions already loaded."""
    sys.path.insert(0, str(ROOT / "src"))
    import protocode  # noqa: PLC0415
    from protocode.amendments import diff  # noqa: PLC0415

    old, new = protocode.load(SEED / "v3.yaml"), protocode.load(SEED / "v4.yaml")
    times = []
    criteria = 0
    for _ in range(repeat):
        start = time.perf_counter()
        report = diff(old, new)
        times.append(time.perf_counter() - start)
        criteria = len(report.criteria)
    return times, criteria


def main() -> None:
    """Run both measurements and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cold_times = cold(args.repeat)
    warm_times, criteria = warm(args.repeat)
    print(f"semantic diff of NCT06125106 v3 -> v4 ({criteria} criteria + overall eligibility)")
    print(f"{'':40} {'best s':>8} {'median s':>9}")
    for label, times in (
        ("whole job, fresh process", cold_times),
        ("comparison only, warm", warm_times),
    ):
        print(f"{label:40} {min(times):8.2f} {statistics.median(times):9.2f}")
    verdict = "within" if min(cold_times) < 2 else "over"
    print(f"target: whole job under 2 s — {verdict} target")


if __name__ == "__main__":
    main()
