"""The reviewer's report of an amendment (``protocode diff``): text, Markdown, HTML and JSON.

Every format renders one `DiffReport` in the same order: the header (registry id, old → new
version, whether the new version is marked illustrative); metadata changes; a summary table
of the criteria that changed in text or meaning or carry a declared intent; each of those
criteria in detail (word diff of its registry text and rule, rationale, verdict, witness
patients); the unchanged criteria in one line; definition changes; the overall eligibility
verdict; the cohort's status changes, when a cohort was given; and the problems, the false
or undeclared claims.

The HTML report is one self-contained page (inline CSS, no script, no external asset); every
string that comes from a protocol or a record is escaped, in HTML and in Markdown alike, so
protocol text can never become markup. `render_json` is the documented, versioned shape of
`DiffReport.to_json` (see docs/amendments.md).
"""

from __future__ import annotations

import html
import json
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from protocode.amendments import CriterionDiff, DiffReport, claim_problems, unified
from protocode.backends.smt import Comparison, Witness

__all__ = ["render_html", "render_json", "render_markdown", "render_text"]

_STATUS_RANK = {"ineligible": 0, "indeterminate": 1, "eligible": 2}
_WIDTH = 100

Op = Literal["equal", "delete", "insert"]


# --- what every format shows ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Problem:
    """One false or undeclared claim: the criterion it is about (if any), why, and a patient
    who shows it."""

    criterion: str | None
    message: str
    witness: Witness | None


def _is_changed(c: CriterionDiff) -> bool:
    """Whether a criterion earns a row and a section: changed wording or meaning, or a claim."""
    return c.text_changed or c.comparison.relation != "equivalent" or c.intent is not None


def _split(report: DiffReport) -> tuple[list[CriterionDiff], list[CriterionDiff]]:
    changed = [c for c in report.criteria if _is_changed(c)]
    unchanged = [c for c in report.criteria if not _is_changed(c)]
    return changed, unchanged


def _problems(report: DiffReport) -> list[_Problem]:
    """The criteria whose claim is false or missing, then every other problem `check` finds.

    `claim_problems` is what ``protocode check`` reports; its other diagnostics (a definition
    changed with nothing declared) are listed too, though the JSON ``problems`` key lists
    criteria only.
    """
    out = [_Problem(c.id, c.problem, _contradiction(c)) for c in report.problems if c.problem]
    criteria = tuple(p.message for p in out)
    out += [
        _Problem(None, d.message, None)
        for d in claim_problems(report)
        if not d.message.startswith(criteria)
    ]
    return out


def _contradiction(c: CriterionDiff) -> Witness | None:
    """The witness that refutes the claim: a narrower one refutes "relaxed", and so on."""
    wanted = {"relaxed": "narrower", "tightened": "broader"}.get(
        c.intent.intent if c.intent is not None else ""
    )
    for w in c.comparison.witnesses:
        if wanted is None or w.direction == wanted:
            return w
    return None


def _intent(c: CriterionDiff) -> str:
    return c.intent.intent if c.intent is not None else "none"


def _claim(c: CriterionDiff) -> str:
    return "✓" if c.problem is None else "✗"


def _verdict(comparison: Comparison) -> str:
    return f"{comparison.relation} ({comparison.method})"


def _versions(report: DiffReport, w: Witness) -> str:
    return f"v{report.old_version} {w.old} → v{report.new_version} {w.new}"


def _illustrative(report: DiffReport) -> bool:
    return report.new_protocol.checked.doc.metadata.illustrative


def _illustrative_line(report: DiffReport) -> str:
    if _illustrative(report):
        return (
            f"version {report.new_version} is marked illustrative: "
            "it is not a real amendment of the trial"
        )
    return f"version {report.new_version} is not marked illustrative"


def _texts(c: CriterionDiff) -> tuple[str | None, str | None]:
    """The registry text in the old and the new version (None where the criterion is absent)."""
    return (c.old.text if c.old else None), (c.new.text if c.new else None)


def _rules(c: CriterionDiff) -> tuple[str | None, str | None]:
    """The rule as `DiffReport.to_json` shows it (an attestation is named as such)."""
    rule = c.to_json()["rule"]
    return rule["old"], rule["new"]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _ops(old: str | None, new: str | None) -> list[tuple[Op, str]]:
    """`unified`'s word diff as (operation, words) pairs, for formats with real markup."""
    # One word diff for every format, so they never disagree. Only a run of unchanged words
    # that is itself bracketed like a mark would be misread, and it would still be escaped.
    out: list[tuple[Op, str]] = []
    for part in unified(old, new):
        if part.startswith("[-") and part.endswith("-]"):
            out.append(("delete", part[2:-2]))
        elif part.startswith("{+") and part.endswith("+}"):
            out.append(("insert", part[2:-2]))
        else:
            out.append(("equal", part))
    return out


def _number(value: Any) -> Any:
    """Exact numbers of a witness record as JSON numbers where they are decimals."""
    if isinstance(value, Fraction | Decimal):
        text = str(value)
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_number)


def _record(record: dict[str, Any], *, pretty: bool = False) -> str:
    """A witness record as JSON: one line, or (pretty) one line per item and per history entry.

    Fully indented JSON spreads a patient with a few lab histories over a hundred lines;
    a line per item and per dated entry is as valid and far quicker to read.
    """
    if not pretty:
        return _json(record)
    items = []
    for key, value in record.items():
        if isinstance(value, list) and value:
            entries = ",\n".join(f"    {_json(entry)}" for entry in value)
            items.append(f"  {_json(key)}: [\n{entries}\n  ]")
        else:
            items.append(f"  {_json(key)}: {_json(value)}")
    return "{\n" + ",\n".join(items) + "\n}" if items else "{}"


def _flip(old: str, new: str) -> str:
    """Whether a record fares better or worse under the new version."""
    return "better" if _STATUS_RANK.get(new, 0) > _STATUS_RANK.get(old, 0) else "worse"


def _unchanged_line(unchanged: list[CriterionDiff]) -> str:
    return "unchanged: " + (", ".join(c.id for c in unchanged) if unchanged else "none")


# --- JSON -------------------------------------------------------------------------------------


def render_json(report: DiffReport) -> str:
    """`DiffReport.to_json` as indented JSON (format 1, documented in docs/amendments.md)."""
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"


# --- plain text -------------------------------------------------------------------------------


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


def _text_witnesses(
    report: DiffReport, witnesses: Iterable[Witness], indent: str = "  "
) -> list[str]:
    lines = []
    for w in witnesses:
        lines.append(f"{indent}witness, {w.direction}: {_versions(report, w)}")
        lines.append(f"{indent}    {_record(w.record)}")
    return lines


def render_text(report: DiffReport) -> str:
    """The report for a terminal: aligned tables, wrapped prose, witnesses as one-line JSON."""
    changed, unchanged = _split(report)
    out = [
        f"protocode diff: {report.registry_id} version {report.old_version} → {report.new_version}",
        _illustrative_line(report),
        "",
        "metadata changes",
    ]
    out += [
        f"  {field}: {old or '(none)'} → {new or '(none)'}" for field, old, new in report.metadata
    ]
    if not report.metadata:
        out.append("  none")

    out += ["", "criteria that changed"]
    if changed:
        rows = [["id", "kind", "presence", "intent", "verdict", "claim"]]
        rows += [
            [c.id, c.kind, c.presence, _intent(c), _verdict(c.comparison), _claim(c)]
            for c in changed
        ]
        out += _table(rows)
    else:
        out.append("  none")

    for c in changed:
        out += ["", f"{c.id} ({c.kind}, {c.presence}): {_verdict(c.comparison)} {_claim(c)}"]
        out += _wrap("text: ", " ".join(unified(*_texts(c))))
        out += _wrap("rule: ", " ".join(unified(*_rules(c))))
        if c.intent is not None:
            out += _wrap(f"declared {c.intent.intent}: ", _one_line(c.intent.rationale))
        else:
            out.append("  declared: nothing")
        out += _wrap("verdict: ", c.comparison.note)
        if c.problem is not None:
            out += _wrap("✗ ", c.problem)
        out += _text_witnesses(report, c.comparison.witnesses)

    out += ["", _unchanged_line(unchanged), "", "definition changes"]
    for name, old, new, change in report.definitions:
        out.append(f"  {name}: {change.intent if change is not None else 'undeclared'}")
        out += _wrap("", " ".join(unified(old, new)), "    ")
        if change is not None:
            out += _wrap("rationale: ", _one_line(change.rationale), "    ")
    if not report.definitions:
        out.append("  none")

    out += ["", f"overall eligibility: {_verdict(report.eligibility)}"]
    out += _wrap("", report.eligibility.note)
    out += _text_witnesses(report, report.eligibility.witnesses)

    cohort = report.cohort
    if cohort is not None:
        out += [
            "",
            f"cohort: {cohort.total} records, {cohort.errors} with errors (not screened)",
        ]
        rows = [[f"v{report.old_version}", f"v{report.new_version}", "records"]]
        rows += [[a, b, str(n)] for a, b, n in cohort.transitions]
        out += _table(rows)
        out.append(f"  status changed: {len(cohort.flipped)}")
        if cohort.flipped:
            rows = [[i, f"{a} → {b}", f"({_flip(a, b)})"] for i, a, b in cohort.flipped]
            out += _table(rows, "    ")

    out += ["", "problems"]
    problems = _problems(report)
    for p in problems:
        out += _wrap("✗ ", p.message)
        if p.witness is not None:
            out += _text_witnesses(report, [p.witness], "    ")
    if not problems:
        out.append("  all declared intents hold")
    return "\n".join(out) + "\n"


# --- Markdown ---------------------------------------------------------------------------------

# Punctuation that can start markup anywhere in a line on GitHub; the rest only matters at
# the start of a line, and every line here starts with the renderer's own text.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#!])")


def _md(text: str | None) -> str:
    """Protocol text as literal Markdown: one line, every markup character escaped."""
    return _MD_SPECIAL.sub(r"\\\1", _one_line(text))


def _code(text: str | None) -> str:
    """A code span that holds any text, backticks included (CommonMark's longer-fence rule)."""
    body = _one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    if body.startswith("`") or body.endswith("`"):
        body = f" {body} "
    return f"{fence}{body}{fence}"


def _md_diff(old: str | None, new: str | None) -> str:
    # GitHub renders <del> and <ins>, which read better than [-…-]{+…+} in prose.
    marks = {"equal": "{}", "delete": "<del>{}</del>", "insert": "<ins>{}</ins>"}
    return " ".join(marks[op].format(_md(words)) for op, words in _ops(old, new))


def _md_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_witnesses(report: DiffReport, witnesses: Iterable[Witness]) -> list[str]:
    out = []
    for w in witnesses:
        # The summary is raw HTML, where Markdown escapes do not apply.
        summary = html.escape(f"witness, {w.direction}: {_versions(report, w)}")
        out += [
            f"<details><summary>{summary}</summary>",
            "",
            "```json",
            _record(w.record, pretty=True),
            "```",
            "",
            "</details>",
            "",
        ]
    return out


def render_markdown(report: DiffReport) -> str:
    """The report as GitHub-flavoured Markdown: tables, rules in code spans, JSON witnesses."""
    changed, unchanged = _split(report)
    v_old, v_new = f"v{report.old_version}", f"v{report.new_version}"
    out = [
        f"# Amendment report: {_md(report.registry_id)}, version {_md(report.old_version)} → "
        f"{_md(report.new_version)}",
        "",
    ]
    if _illustrative(report):
        out += [f"> **Illustrative.** {_md(_cap(_illustrative_line(report)))}.", ""]
    else:
        out += [f"{_md(_cap(_illustrative_line(report)))}.", ""]

    out += ["## Metadata changes", ""]
    if report.metadata:
        out += [_md_row(["field", _md(v_old), _md(v_new)]), "|---|---|---|"]
        out += [
            _md_row([_md(f), _md(a) or "*none*", _md(b) or "*none*"]) for f, a, b in report.metadata
        ]
    else:
        out.append("None.")

    out += ["", "## Criteria that changed", ""]
    if changed:
        out += [
            _md_row(["id", "kind", "presence", "declared intent", "verdict", "method", "claim"]),
            "|---|---|---|---|---|---|:-:|",
        ]
        out += [
            _md_row(
                [
                    f"**{_md(c.id)}**",
                    c.kind,
                    c.presence,
                    _intent(c),
                    c.comparison.relation,
                    c.comparison.method,
                    _claim(c),
                ]
            )
            for c in changed
        ]
    else:
        out.append("None.")
    out.append("")

    for c in changed:
        out += [f"### {_md(c.id)} · {c.kind} · {_verdict(c.comparison)} {_claim(c)}", ""]
        out += [f"- **Text:** {_md_diff(*_texts(c))}"]
        rule = " ".join(unified(*_rules(c)))
        out += [f"- **Rule:** {_code(rule)}"]
        if c.intent is not None:
            out.append(f"- **Declared {c.intent.intent}:** {_md(c.intent.rationale)}")
        else:
            out.append("- **Declared:** nothing")
        out.append(f"- **Verdict:** {_md(c.comparison.note)}")
        if c.problem is not None:
            out.append(f"- **✗ {_md(c.problem)}**")
        out.append("")
        out += _md_witnesses(report, c.comparison.witnesses)

    out += [_md(_cap(_unchanged_line(unchanged))) + ".", "", "## Definition changes", ""]
    if report.definitions:
        out += [_md_row(["definition", "declared", "change", "rationale"]), "|---|---|---|---|"]
        out += [
            _md_row(
                [
                    f"**{_md(name)}**",
                    change.intent if change is not None else "undeclared ✗",
                    _md_diff(old, new),
                    _md(change.rationale) if change is not None else "",
                ]
            )
            for name, old, new, change in report.definitions
        ]
    else:
        out.append("None.")

    eligibility = report.eligibility
    out += [
        "",
        "## Overall eligibility",
        "",
        f"**{eligibility.relation}** ({eligibility.method}): {_md(eligibility.note)}",
        "",
    ]
    out += _md_witnesses(report, eligibility.witnesses)

    cohort = report.cohort
    if cohort is not None:
        out += [
            "## Cohort",
            "",
            f"{cohort.total} records, {cohort.errors} with errors (not screened).",
            "",
            _md_row([_md(v_old), _md(v_new), "records"]),
            "|---|---|--:|",
        ]
        out += [_md_row([a, b, str(n)]) for a, b, n in cohort.transitions]
        out += ["", f"Status changed: {len(cohort.flipped)}.", ""]
        if cohort.flipped:
            out += [_md_row(["record", _md(v_old), _md(v_new), "fares"]), "|---|---|---|---|"]
            out += [_md_row([_md(i), a, b, _flip(a, b)]) for i, a, b in cohort.flipped]
            out.append("")

    out += ["## Problems", ""]
    problems = _problems(report)
    for p in problems:
        out.append(f"- ✗ **{_md(p.message)}**")
        if p.witness is not None:
            witness = _record(p.witness.record)
            out.append(
                f"  witness, {p.witness.direction}: {_md(_versions(report, p.witness))} — "
                f"{_code(witness)}"
            )
    if not problems:
        out.append("All declared intents hold.")
    return "\n".join(out) + "\n"


# --- HTML -------------------------------------------------------------------------------------

_CSS = """\
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --rule: #d1d9e0; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f8fa; color: var(--ink);
  font: 16px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 62rem; margin: 0 auto; padding: 2rem 1.5rem 4rem; background: #fff;
  min-height: 100vh; }
h1 { font-size: 1.7rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .8rem; padding-bottom: .3rem;
  border-bottom: 1px solid var(--rule); }
h3 { font-size: 1.05rem; margin: 0 0 .6rem; display: flex; flex-wrap: wrap; gap: .5rem;
  align-items: center; }
code, pre { font: .88em/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code { background: #f6f8fa; border-radius: 4px; padding: .1em .3em; }
pre { background: #f6f8fa; border: 1px solid var(--rule); border-radius: 6px; padding: .8rem;
  overflow-x: auto; margin: .5rem 0 0; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; font-size: .94rem; }
th, td { border: 1px solid var(--rule); padding: .35rem .6rem; text-align: left;
  vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
a { color: #0969da; text-decoration: none; }
a:hover { text-decoration: underline; }
.muted { color: var(--muted); }
.banner { border-radius: 6px; padding: .6rem .9rem; margin: .8rem 0 0; }
.banner.illustrative { background: #fff8c5; border: 1px solid #d4a72c; }
.banner.real { background: #f6f8fa; border: 1px solid var(--rule); }
.badge { display: inline-block; border-radius: 999px; padding: .05rem .6rem; font-size: .85rem;
  font-weight: 600; border: 1px solid; white-space: nowrap; }
.broader { background: #dafbe1; color: #116329; border-color: #4ac26b; }
.narrower { background: #fff1c2; color: #7d4e00; border-color: #d4a72c; }
.incomparable { background: #ffebe9; color: #a40e26; border-color: #ff8182; }
.equivalent { background: #eff2f5; color: #59636e; border-color: #d1d9e0; }
.ok { color: #116329; font-weight: 700; }
.bad { color: #a40e26; font-weight: 700; }
.better { color: #116329; }
.worse { color: #7d4e00; }
article { border: 1px solid var(--rule); border-left-width: 6px; border-radius: 6px;
  padding: .9rem 1.1rem; margin: 1rem 0; }
article.v-broader { border-left-color: #4ac26b; }
article.v-narrower { border-left-color: #d4a72c; }
article.v-incomparable { border-left-color: #ff8182; }
article.v-equivalent { border-left-color: #d1d9e0; }
dl { display: grid; grid-template-columns: 7.5rem 1fr; gap: .35rem 1rem; margin: 0; }
dt { color: var(--muted); font-weight: 600; }
dd { margin: 0; }
del { background: #ffebe9; color: #82071e; text-decoration: line-through; }
ins { background: #dafbe1; color: #116329; text-decoration: none; }
details { margin: .6rem 0 0; }
summary { cursor: pointer; }
.legend { font-size: .85rem; }
.problems li { margin: .4rem 0; }
.allgood { background: #dafbe1; border: 1px solid #4ac26b; border-radius: 6px;
  padding: .6rem .9rem; }
.problem { background: #ffebe9; border: 1px solid #ff8182; border-radius: 6px;
  padding: .6rem .9rem; list-style: none; }
ul.problems { padding: 0; }
footer { margin-top: 3rem; color: var(--muted); font-size: .85rem; }
"""


_LEGEND = (
    '<p class="muted legend">'
    '<span class="badge broader">broader</span> someone fares better, nobody worse · '
    '<span class="badge narrower">narrower</span> someone fares worse, nobody better · '
    '<span class="badge incomparable">incomparable</span> both · '
    '<span class="badge equivalent">equivalent</span> nobody fares differently'
    "</p>"
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _anchor(cid: str) -> str:
    return "c-" + re.sub(r"[^A-Za-z0-9_.-]", "_", cid)


def _badge(comparison: Comparison, *, method: bool = True) -> str:
    relation = comparison.relation
    badge = f'<span class="badge {relation}">{relation}</span>'
    return f'{badge} <span class="muted">{comparison.method}</span>' if method else badge


def _html_claim(c: CriterionDiff) -> str:
    if c.problem is None:
        return '<span class="ok" title="the claim holds">✓</span>'
    return f'<span class="bad" title="{_e(c.problem)}">✗</span>'


def _html_diff(old: str | None, new: str | None) -> str:
    tags = {"equal": "{}", "delete": "<del>{}</del>", "insert": "<ins>{}</ins>"}
    return " ".join(tags[op].format(_e(words)) for op, words in _ops(old, new))


def _html_witnesses(
    report: DiffReport, witnesses: Iterable[Witness], *, expanded: bool = False
) -> list[str]:
    out = []
    for w in witnesses:
        out += [
            "<details open>" if expanded else "<details>",
            f'<summary>witness patient, <span class="badge {w.direction}">{w.direction}</span>'
            f": {_e(_versions(report, w))}</summary>",
            f"<pre>{_e(_record(w.record, pretty=True))}</pre>",
            "</details>",
        ]
    return out


def _html_table(head: list[str], rows: list[list[str]], numeric: int | None = None) -> list[str]:
    """A table whose cells are HTML already (escaped by the caller); column `numeric` is
    right-aligned."""
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead>"]
    out.append("<tbody>")
    for row in rows:
        cells = (
            f'<td class="num">{cell}</td>' if i == numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        out.append("<tr>" + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    return out


def render_html(report: DiffReport) -> str:
    """The report as one self-contained HTML page: inline CSS, no script, escaped content."""
    changed, unchanged = _split(report)
    v_old, v_new = f"v{_e(report.old_version)}", f"v{_e(report.new_version)}"
    title = f"{_e(report.registry_id)}, version {_e(report.old_version)} → {_e(report.new_version)}"
    kind = "illustrative" if _illustrative(report) else "real"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Amendment report — {title}</title>",
        f"<style>\n{_CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        "<header>",
        f"<h1>Amendment report: {title}</h1>",
        f'<p class="banner {kind}">{_e(_cap(_illustrative_line(report)))}.</p>',
        "</header>",
        '<section id="metadata">',
        "<h2>Metadata changes</h2>",
    ]
    if report.metadata:
        out += _html_table(
            ["field", v_old, v_new],
            [
                [_e(f), _e(a) or "<em>none</em>", _e(b) or "<em>none</em>"]
                for f, a, b in report.metadata
            ],
        )
    else:
        out.append('<p class="muted">None.</p>')
    out += ["</section>", '<section id="summary">', "<h2>Criteria that changed</h2>"]
    if changed:
        out += _html_table(
            ["id", "kind", "presence", "declared intent", "verdict", "claim"],
            [
                [
                    f'<a href="#{_anchor(c.id)}"><strong>{_e(c.id)}</strong></a>',
                    c.kind,
                    c.presence,
                    _e(_intent(c)),
                    _badge(c.comparison),
                    _html_claim(c),
                ]
                for c in changed
            ],
        )
        out.append(_LEGEND)
    else:
        out.append('<p class="muted">None.</p>')
    out.append("</section>")

    out.append('<section id="criteria">')
    for c in changed:
        out += [
            f'<article id="{_anchor(c.id)}" class="v-{c.comparison.relation}">',
            f'<h3>{_e(c.id)} <span class="muted">{c.kind} · {c.presence}</span> '
            f"{_badge(c.comparison)} {_html_claim(c)}</h3>",
            "<dl>",
            f"<dt>Text</dt><dd>{_html_diff(*_texts(c))}</dd>",
            f"<dt>Rule</dt><dd><code>{_html_diff(*_rules(c))}</code></dd>",
        ]
        if c.intent is not None:
            out.append(
                f"<dt>Declared</dt><dd><strong>{_e(c.intent.intent)}</strong>: "
                f"{_e(_one_line(c.intent.rationale))}</dd>"
            )
        else:
            out.append('<dt>Declared</dt><dd class="muted">nothing</dd>')
        out.append(f"<dt>Verdict</dt><dd>{_e(c.comparison.note)}</dd>")
        if c.problem is not None:
            out.append(f'<dt class="bad">Problem</dt><dd class="bad">✗ {_e(c.problem)}</dd>')
        out.append("</dl>")
        out += _html_witnesses(report, c.comparison.witnesses)
        out.append("</article>")
    out += [f'<p class="muted">{_e(_cap(_unchanged_line(unchanged)))}.</p>', "</section>"]

    out += ['<section id="definitions">', "<h2>Definition changes</h2>"]
    if report.definitions:
        out += _html_table(
            ["definition", "declared", "change", "rationale"],
            [
                [
                    f"<strong>{_e(name)}</strong>",
                    _e(change.intent)
                    if change is not None
                    else '<span class="bad">undeclared ✗</span>',
                    f"<code>{_html_diff(old, new)}</code>",
                    _e(_one_line(change.rationale)) if change is not None else "",
                ]
                for name, old, new, change in report.definitions
            ],
        )
    else:
        out.append('<p class="muted">None.</p>')
    out.append("</section>")

    eligibility = report.eligibility
    out += [
        '<section id="eligibility">',
        "<h2>Overall eligibility</h2>",
        f"<p>{_badge(eligibility, method=False)} {_e(eligibility.note)}</p>",
        *_html_witnesses(report, eligibility.witnesses),
        "</section>",
    ]

    cohort = report.cohort
    if cohort is not None:
        out += [
            '<section id="cohort">',
            "<h2>Cohort</h2>",
            f"<p>{cohort.total} records, {cohort.errors} with errors (not screened).</p>",
        ]
        out += _html_table(
            [v_old, v_new, "records"],
            [[_e(a), _e(b), str(n)] for a, b, n in cohort.transitions],
            numeric=2,
        )
        out.append(f"<p>Status changed: {len(cohort.flipped)}.</p>")
        if cohort.flipped:
            out += _html_table(
                ["record", v_old, v_new, "fares"],
                [
                    [_e(i), _e(a), _e(b), f'<span class="{_flip(a, b)}">{_flip(a, b)}</span>']
                    for i, a, b in cohort.flipped
                ],
            )
        out.append("</section>")

    out += ['<section id="problems">', "<h2>Problems</h2>"]
    problems = _problems(report)
    if problems:
        out.append('<ul class="problems">')
        for p in problems:
            link = (
                "" if p.criterion is None else f' (<a href="#{_anchor(p.criterion)}">details</a>)'
            )
            out.append(f'<li class="problem"><strong>✗ {_e(p.message)}</strong>{link}')
            if p.witness is not None:
                out += _html_witnesses(report, [p.witness], expanded=True)
            out.append("</li>")
        out.append("</ul>")
    else:
        out.append('<p class="allgood">✓ All declared intents hold.</p>')
    out += [
        "</section>",
        "<footer>Generated by <code>protocode diff</code>.</footer>",
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(out) + "\n"
