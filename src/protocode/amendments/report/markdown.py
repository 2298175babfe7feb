"""The diff report as GitHub-flavoured Markdown: tables, rules in code spans, JSON witnesses.

Every string that comes from a protocol or a record is escaped, so protocol text can never
become markup; the only raw HTML is the report's own (``<del>``, ``<ins>``, ``<details>``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from protocode.amendments.report.model import WitnessView, Words, one_line, view
from protocode.amendments.semantic_diff import DiffReport

# Punctuation that can start markup anywhere in a line on GitHub; the rest only matters at
# the start of a line, and every line here starts with the renderer's own text.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#!])")


def _md(text: str | None) -> str:
    """Protocol text as literal Markdown: one line, every markup character escaped."""
    return _MD_SPECIAL.sub(r"\\\1", one_line(text))


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _code(text: str | None) -> str:
    """A code span that holds any text, backticks included (CommonMark's longer-fence rule)."""
    body = one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    if body.startswith("`") or body.endswith("`"):
        body = f" {body} "
    return f"{fence}{body}{fence}"


def _diff(change: Words) -> str:
    # GitHub renders <del> and <ins>, which read better than [-…-]{+…+} in prose.
    marks = {"equal": "{}", "delete": "<del>{}</del>", "insert": "<ins>{}</ins>"}
    return " ".join(marks[op].format(_md(words)) for op, words in change.runs)


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _witnesses(witnesses: Iterable[WitnessView]) -> list[str]:
    out = []
    for w in witnesses:
        # The summary is raw HTML, where Markdown escapes do not apply.
        summary = html.escape(f"witness, {w.direction}: {w.versions}")
        out += [
            f"<details><summary>{summary}</summary>",
            "",
            "```json",
            w.block,
            "```",
            "",
            "</details>",
            "",
        ]
    return out


def render_markdown(report: DiffReport) -> str:
    """The report as GitHub-flavoured Markdown: tables, rules in code spans, JSON witnesses."""
    r = view(report)
    v_old, v_new = f"v{r.old_version}", f"v{r.new_version}"
    out = [
        f"# Amendment report: {_md(r.registry_id)}, version {_md(r.old_version)} → "
        f"{_md(r.new_version)}",
        "",
    ]
    if r.illustrative:
        out += [f"> **Illustrative.** {_md(_cap(r.illustrative_line))}.", ""]
    else:
        out += [f"{_md(_cap(r.illustrative_line))}.", ""]

    out += ["## Metadata changes", ""]
    if r.metadata:
        out += [_row(["field", _md(v_old), _md(v_new)]), "|---|---|---|"]
        out += [
            _row([_md(m.field), _md(m.old) or "*none*", _md(m.new) or "*none*"]) for m in r.metadata
        ]
    else:
        out.append("None.")

    out += ["", "## Criteria that changed", ""]
    if r.changed:
        out += [
            _row(["id", "kind", "presence", "declared intent", "verdict", "method", "claim"]),
            "|---|---|---|---|---|---|:-:|",
        ]
        out += [
            _row(
                [
                    f"**{_md(c.id)}**",
                    c.kind,
                    c.presence,
                    c.intent_label,
                    c.verdict.relation,
                    c.verdict.method,
                    c.claim,
                ]
            )
            for c in r.changed
        ]
    else:
        out.append("None.")
    out.append("")

    for c in r.changed:
        out += [f"### {_md(c.id)} · {c.kind} · {c.verdict.label} {c.claim}", ""]
        out += [f"- **Text:** {_diff(c.text)}"]
        out += [f"- **Rule:** {_code(c.rule.marked)}"]
        if c.intent is not None:
            out.append(f"- **Declared {c.intent}:** {_md(c.rationale)}")
        else:
            out.append("- **Declared:** nothing")
        out.append(f"- **Verdict:** {_md(c.verdict.note)}")
        if c.problem is not None:
            out.append(f"- **✗ {_md(c.problem)}**")
        out.append("")
        out += _witnesses(c.verdict.witnesses)

    out += [_md(_cap(r.unchanged_line)) + ".", "", "## Definition changes", ""]
    if r.definitions:
        out += [_row(["definition", "declared", "change", "rationale"]), "|---|---|---|---|"]
        out += [
            _row(
                [
                    f"**{_md(d.name)}**",
                    d.intent if d.intent is not None else "undeclared ✗",
                    _diff(d.change),
                    _md(d.rationale) if d.intent is not None else "",
                ]
            )
            for d in r.definitions
        ]
    else:
        out.append("None.")

    eligibility = r.eligibility
    out += [
        "",
        "## Overall eligibility",
        "",
        f"**{eligibility.relation}** ({eligibility.method}): {_md(eligibility.note)}",
        "",
    ]
    out += _witnesses(eligibility.witnesses)

    cohort = r.cohort
    if cohort is not None:
        out += [
            "## Cohort",
            "",
            f"{cohort.total} records, {cohort.errors} with errors (not screened).",
            "",
            _row([_md(v_old), _md(v_new), "records"]),
            "|---|---|--:|",
        ]
        out += [_row([t.old, t.new, str(t.count)]) for t in cohort.transitions]
        out += ["", f"Status changed: {len(cohort.flipped)}.", ""]
        if cohort.flipped:
            out += [_row(["record", _md(v_old), _md(v_new), "fares"]), "|---|---|---|---|"]
            out += [_row([_md(f.id), f.old, f.new, f.fares]) for f in cohort.flipped]
            out.append("")

    out += ["## Problems", ""]
    for p in r.problems:
        out.append(f"- ✗ **{_md(p.message)}**")
        if p.witness is not None:
            out.append(
                f"  witness, {p.witness.direction}: {_md(p.witness.versions)} — "
                f"{_code(p.witness.line)}"
            )
    if not r.problems:
        out.append("All declared intents hold.")
    return "\n".join(out) + "\n"
