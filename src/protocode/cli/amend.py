"""`protocode diff` (the reviewer's report of an amendment) and `release` (the lock file)."""

from __future__ import annotations

import argparse
import sys

from protocode import cli
from protocode.amendments import claim_problems, cohort_reader
from protocode.amendments import diff as semantic_diff
from protocode.amendments import report as reports
from protocode.amendments.folder import release as release_version
from protocode.document.lock import LOCK_NAME
from protocode.records import read_records


def diff(args: argparse.Namespace) -> int:
    """Write the reviewer's report of NEW against OLD."""
    old, new = cli.load(args.old), cli.load(args.new)
    cohort = None
    if args.cohort is not None:
        cohort = list(read_records(args.cohort, cohort_reader(old, new)))
    report = semantic_diff(old, new, cohort)
    render = {
        "text": reports.render_text,
        "markdown": reports.render_markdown,
        "html": reports.render_html,
        "json": reports.render_json,
    }[args.format]
    text = render(report)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 1 if claim_problems(report) else 0


def release(args: argparse.Namespace) -> int:
    """Record the newest version of a protocol folder in its lock file."""
    version = release_version(args.protocol_dir)
    print(f"released version {version} of {args.protocol_dir} in {args.protocol_dir / LOCK_NAME}")
    return 0
