"""The diff report as JSON: the documented, versioned shape of `DiffReport.to_json`."""

from __future__ import annotations

import json

from protocode.amendments.semantic_diff import DiffReport


def render_json(report: DiffReport) -> str:
    """`DiffReport.to_json` as indented JSON (format 1, documented in docs/amendments.md)."""
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
