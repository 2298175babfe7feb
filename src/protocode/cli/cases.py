"""`protocode test`: run a protocol folder's stored cases, and report their coverage."""

from __future__ import annotations

import argparse
from typing import Any

from protocode import cli
from protocode.cases import coverage, find_case_files, load_cases, run_cases
from protocode.cli.output import dumps
from protocode.core.errors import UsageError


def test(args: argparse.Namespace) -> int:
    """Run the stored cases of a protocol folder; optionally report their coverage."""
    pairs = find_case_files(args.protocol_dir)
    if not pairs:
        # Passing with nothing tested would hide a misplaced or misnamed case file.
        raise UsageError.at(
            "usage", f"{args.protocol_dir}: no case files (cases/vN.yaml beside vN.yaml)", None
        )
    texts: list[str] = []
    suites: list[dict[str, Any]] = []
    ok = True
    for case_file, version_file in pairs:
        protocol = cli.load(version_file)
        suite = load_cases(case_file)
        report = run_cases(protocol, suite)
        ok = ok and report.ok
        texts.append(report.to_text(verbose=args.verbose))
        suites.append(report.to_json())
        if args.coverage:
            covered = coverage(protocol, suite)
            texts.append(covered.to_text(verbose=args.verbose))
            suites[-1]["coverage"] = covered.to_json()
    print("\n\n".join(texts) if args.format == "text" else dumps({"ok": ok, "suites": suites}))
    return 0 if ok else 1
