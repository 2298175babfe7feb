"""`protocode import`: a draft protocol file from a ClinicalTrials.gov study record."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protocode.cli.output import error
from protocode.core.errors import UsageError
from protocode.registry import draft_yaml, read_record, schema_reference


def draft(args: argparse.Namespace) -> int:
    """Write the draft protocol of a registry record to stdout or a new file."""
    study = read_record(args.record)
    output: Path | None = args.output
    if output is None:
        sys.stdout.write(draft_yaml(study, schema_reference(Path.cwd())))
        return 0
    if output.exists() and not args.force:
        raise UsageError.at("usage", f"{output} exists; pass --force to overwrite it", None)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(draft_yaml(study, schema_reference(output.parent)), encoding="utf-8")
    error(
        f"wrote {output} ({study.registry_id}: {len(study.inclusion)} inclusion and "
        f"{len(study.exclusion)} exclusion criteria, all drafts without a rule); "
        f"'protocode check {output}' lists them"
    )
    return 0
