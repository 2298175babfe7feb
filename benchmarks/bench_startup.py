"""How fast the `protocode` command starts: each command in fresh processes, and the imports.

    .venv/bin/python benchmarks/bench_startup.py            # 10 runs of each command
    .venv/bin/python benchmarks/bench_startup.py --runs 20 --json startup.json

Each command runs `--runs` times as a new process (the console script next to this Python,
from the repository root), after one unmeasured warm-up run that fills the OS file cache; the
median and 90th percentile of the wall times are printed beside the target. Then the import
time of the heaviest modules, each alone in a fresh process (`python -X importtime`).
Not a test: the figures depend on the machine and on what else runs on it (see
benchmarks/README.md, "Startup"). Exits 1 when a command fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = "protocol/NCT06125106"

# (what, arguments, target in seconds; None: no target, shown for reference)
COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("--help", ["--help"], 0.3),
    ("--version", ["--version"], 0.3),
    ("check", ["check", SEED], 1.0),
    ("screen 14 patients", ["screen", SEED, f"{SEED}/examples/patients.jsonl"], 1.0),
]

# Modules whose import a command may pay for: protocode's layers and the libraries it uses.
MODULES = [
    "protocode",
    "protocode.cli",
    "protocode.pipeline",
    "protocode.records.fhir",
    "protocode.amendments",
    "protocode.tables.run",
    "protocode.endpoints.estimate",
    "rich.table",
    "jsonschema",
    "lark",
    "fhir.resources.R4B",
    "z3",
    "duckdb",
    "sqlglot",
    "hypothesis",
    "lifelines",
    "jinja2",
]


def protocode_script() -> list[str]:
    """The `protocode` console script beside this Python, else `python -m protocode`."""
    script = Path(sys.executable).with_name("protocode")
    return [str(script)] if script.exists() else [sys.executable, "-m", "protocode"]


def wall_times(argv: list[str], runs: int) -> list[float]:
    """Wall-clock seconds of `runs` fresh processes running `argv` (after one warm-up)."""
    times = []
    for n in range(runs + 1):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            failure = done.stderr.decode()
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{failure}")
        if n:
            times.append(elapsed)
    return times


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank)."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(fraction * len(ranked)) - 1))]


def import_seconds(module: str) -> float:
    """The cumulative import time of `module` alone in a fresh process (-X importtime)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return float("nan")
    # The last line is the module itself: "import time: self | cumulative | name".
    last = done.stderr.strip().splitlines()[-1]
    return int(last.split("|")[1]) / 1e6


def main() -> int:
    """Run the benchmark; print the table and optionally write JSON."""
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--runs", type=int, default=10, help="runs per command (10)")
    options.add_argument("--json", type=Path, metavar="OUT", help="also write the figures here")
    args = options.parse_args()
    script = protocode_script()
    results = []
    print(f"{'command':<22} {'median':>8} {'p90':>8} {'target':>8}  verdict")
    for what, argv, target in COMMANDS:
        times = wall_times([*script, *argv], args.runs)
        median, p90 = statistics.median(times), percentile(times, 0.9)
        verdict = "" if target is None else "ok" if median < target else "over"
        shown = "" if target is None else f"{target:.2f}"
        print(f"{what:<22} {median:>7.3f}s {p90:>7.3f}s {shown:>8}  {verdict}")
        results.append({"command": what, "argv": argv, "times": times, "target": target})
    print(f"\n{'module':<32} {'import':>8}")
    imports = {}
    for module in MODULES:
        seconds = import_seconds(module)
        imports[module] = seconds
        print(f"{module:<32} {seconds:>7.3f}s")
    if args.json is not None:
        machine = {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load": os.getloadavg(),
            "date": time.strftime("%Y-%m-%d %H:%M"),
        }
        data = {"machine": machine, "commands": results, "imports": imports}
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
