"""The diff report for a terminal: aligned tables, wrapped prose, witnesses as one-line JSON."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

from protocode.amendments.report.model import WitnessView, view
from protocode.amendments.semantic_diff import DiffReport

_WIDTH = 100


def _wrap(label: str, text: str, indent: str = "  ") -> list[str]:
    # Registry texts run to hundreds of characters; a terminal reads them better wrapped.
    return textwrap.wrap(
        f"{label}{text}",
        width=_WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "    ",
        break_long_words=False,
        break_on_hyphens=False,
    ) or [indent + label.rstrip()]


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        (indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))).rstrip()
        for row in rows
    ]


def _witnesses(witnesses: Iterable[WitnessView], indent: str = "  ") -> list[str]:
    lines = []
    for w in witnesses:
        lines.append(f"{indent}witness, {w.direction}: {w.versions}")
        lines.append(f"{indent}    {w.line}")
    return lines


def render_text(report: DiffReport) -> str:
    """The report for a terminal: aligned tables, wrapped prose, witnesses as one-line JSON."""
    r = view(report)
    out = [
        f"protocode diff: {r.registry_id} version {r.old_version} → {r.new_version}",
        r.illustrative_line,
        "",
        "metadata changes",
    ]
    out += [f"  {m.field}: {m.old or '(none)'} → {m.new or '(none)'}" for m in r.metadata]
    if not r.metadata:
        out.append("  none")

    out += ["", "criteria that changed"]
    if r.changed:
        rows = [["id", "kind", "presence", "intent", "verdict", "claim"]]
        rows += [
            [c.id, c.kind, c.presence, c.intent_label, c.verdict.label, c.claim] for c in r.changed
        ]
        out += _table(rows)
    else:
        out.append("  none")

    for c in r.changed:
        out += ["", f"{c.id} ({c.kind}, {c.presence}): {c.verdict.label} {c.claim}"]
        out += _wrap("text: ", c.text.marked)
        out += _wrap("rule: ", c.rule.marked)
        if c.intent is not None:
            out += _wrap(f"declared {c.intent}: ", c.rationale)
        else:
            out.append("  declared: nothing")
        out += _wrap("verdict: ", c.verdict.note)
        if c.problem is not None:
            out += _wrap("✗ ", c.problem)
        out += _witnesses(c.verdict.witnesses)

    out += ["", r.unchanged_line, "", "definition changes"]
    for d in r.definitions:
        out.append(f"  {d.name}: {d.intent if d.intent is not None else 'undeclared'}")
        out += _wrap("", d.change.marked, "    ")
        if d.intent is not None:
            out += _wrap("rationale: ", d.rationale, "    ")
    if not r.definitions:
        out.append("  none")

    out += ["", f"overall eligibility: {r.eligibility.label}"]
    out += _wrap("", r.eligibility.note)
    out += _witnesses(r.eligibility.witnesses)

    cohort = r.cohort
    if cohort is not None:
        out += [
            "",
            f"cohort: {cohort.total} records, {cohort.errors} with errors (not screened)",
        ]
        rows = [[f"v{r.old_version}", f"v{r.new_version}", "records"]]
        rows += [[t.old, t.new, str(t.count)] for t in cohort.transitions]
        out += _table(rows)
        out.append(f"  status changed: {len(cohort.flipped)}")
        if cohort.flipped:
            rows = [[f.id, f"{f.old} → {f.new}", f"({f.fares})"] for f in cohort.flipped]
            out += _table(rows, "    ")

    out += ["", "problems"]
    for p in r.problems:
        out += _wrap("✗ ", p.message)
        if p.witness is not None:
            out += _witnesses([p.witness], "    ")
    if not r.problems:
        out.append("  all declared intents hold")
    return "\n".join(out) + "\n"
