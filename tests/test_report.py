"""The reviewer's report of an amendment (`protocode diff`): goldens, escaping, the JSON shape.

The goldens are the seed's v3 → v4 report with the examples cohort. Its witness patients come
from z3 models, which are deterministic for one z3 version but may differ on another; so the
goldens render a copy of the real report (`dataclasses.replace`) in which every witness record
is swapped for a fixed, hand-written one. Each fixed record is re-screened here under both
versions, and must move the criterion (or overall eligibility) in the witness's direction, so
the goldens show true witnesses. Everything else in them (texts, verdicts, methods, notes,
cohort) is the real report's.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from functools import cache
from html.parser import HTMLParser
from typing import Any

import pytest

import protocode
from helpers import FIXTURES, ROOT, SEED, assert_golden
from protocode.amendments import CohortDiff, DiffReport, diff
from protocode.amendments.compare import restrict
from protocode.amendments.report import render_html, render_json, render_markdown, render_text
from protocode.backends.smt import Comparison, Witness
from protocode.pipeline import load_text
from protocode.records import read_records
from protocode.screening import Protocol

GOLDEN = FIXTURES / "report"
PATIENTS = SEED / "examples" / "patients.jsonl"
AMENDMENTS = FIXTURES / "amendments"
RENDERERS = {"text": render_text, "markdown": render_markdown, "html": render_html}

_STATUS_RANK = {"ineligible": 0, "indeterminate": 1, "eligible": 2}


def example(record_id: str) -> dict[str, Any]:
    for line in PATIENTS.read_text(encoding="utf-8").splitlines():
        record: dict[str, Any] = json.loads(line)
        if record["id"] == record_id:
            return record
    raise KeyError(record_id)


def _fixed_witnesses() -> dict[tuple[str, str], dict[str, Any]]:
    """A hand-written witness per (criterion id or "eligibility", direction) of the seed diff."""
    aged_72 = {"birth_date": "1951-06-14", "enrollment": "2024-03-08"}
    # ZJU-001 is eligible under v3; at 72 (and without an infection) only v4 admits them.
    older = {**example("ZJU-001"), **aged_72, "active_infection_iv_antibiotics": False}
    return {
        ("I2", "broader"): {"id": "aged-72", **aged_72},
        ("I5", "narrower"): {
            "id": "ast-2.75-uln",
            "birth_date": "1985-06-14",
            "enrollment": "2024-03-08",
            "sex": "male",
            "weight": 72.5,
            "creatinine": [{"value": 0.9, "date": "2024-03-04"}],
            "ast": [{"value": 110, "date": "2024-03-04"}],
            "alt": [{"value": 28, "date": "2024-03-04"}],
            "bilirubin": [{"value": 0.8, "date": "2024-03-04"}],
            "lvef": [{"value": 62, "date": "2024-03-02"}],
        },
        ("E13", "broader"): {"id": "mab-allergy", "mab_severe_allergy": True},
        ("E15", "narrower"): {"id": "iv-antibiotics", "active_infection_iv_antibiotics": True},
        ("eligibility", "broader"): {**older, "id": "ZJU-001-aged-72"},
        # AST 95 U/L against the lab's ULN of 35: within 3 x ULN, beyond 2.5 x ULN.
        ("eligibility", "narrower"): example("ZJU-002"),
    }


def _effect(protocol: Protocol, record: dict[str, Any], cid: str) -> tuple[str, int]:
    """A criterion's verdict on a record, and its effect: 0 block, 1 unknown, 2 pass."""
    criterion = next((c for c in protocol.criteria if c.id == cid), None)
    if criterion is None:
        return "absent", 2
    verdict = protocol.screen(restrict(protocol, record)).verdict(cid)
    if verdict == "unknown":
        return verdict, 1
    blocks = (verdict == "met") == (criterion.kind == "exclusion")
    return verdict, 0 if blocks else 2


def _status(protocol: Protocol, record: dict[str, Any]) -> tuple[str, int]:
    status = protocol.screen(restrict(protocol, record)).status
    return status, _STATUS_RANK[status]


def _swap(target: str, comparison: Comparison, old: Protocol, new: Protocol) -> Comparison:
    fixed = _fixed_witnesses()
    witnesses = []
    for w in comparison.witnesses:
        record = fixed[target, w.direction]
        if target == "eligibility":
            (a, ra), (b, rb) = _status(old, record), _status(new, record)
        else:
            (a, ra), (b, rb) = _effect(old, record, target), _effect(new, record, target)
        assert (rb > ra) if w.direction == "broader" else (rb < ra), (target, w, a, b)
        witnesses.append(Witness(w.direction, record, a, b))
    return replace(comparison, witnesses=tuple(witnesses))


@cache
def seed_report() -> DiffReport:
    """The real v3 → v4 diff of the seed, with the examples cohort."""
    old, new = protocode.load(SEED / "v3.yaml"), protocode.load(SEED / "v4.yaml")
    return diff(old, new, cohort=read_records(PATIENTS, old.reader))


@cache
def golden_report() -> DiffReport:
    """`seed_report` with every witness record replaced by a fixed, re-checked one."""
    report = seed_report()
    # A z3 timeout (10 s a question) would turn a proof into a search with other verdicts.
    undecided = [c.id for c in report.criteria if c.comparison.method != "proved"]
    undecided += ["eligibility"] * (report.eligibility.method != "proved")
    assert not undecided, f"not proved by z3 (timeout?): {undecided}; the goldens show proofs"
    old, new = protocode.load(SEED / "v3.yaml"), report.new_protocol
    criteria = tuple(
        replace(c, comparison=_swap(c.id, c.comparison, old, new)) for c in report.criteria
    )
    eligibility = _swap("eligibility", report.eligibility, old, new)
    return replace(report, criteria=criteria, eligibility=eligibility)


@pytest.mark.parametrize(("fmt", "suffix"), [("text", "txt"), ("markdown", "md"), ("html", "html")])
def test_seed_report_golden(fmt: str, suffix: str) -> None:
    assert_golden(RENDERERS[fmt](golden_report()), GOLDEN / f"seed-v3-v4.{suffix}")


def test_seed_report_content() -> None:
    text = render_text(golden_report())
    assert text.startswith("protocode diff: NCT06125106 version 3 → 4\n")
    assert "version 4 is marked illustrative" in text
    # The age bound 70 → 75 is broader, with a witness aged over 70 and at most 75.
    assert re.search(r"^I2 \(inclusion, both\): broader \(proved\) ✓$", text, re.M)
    assert "age between 18 years and [-70-] {+75+} years" in text
    assert "E15 (exclusion, added): narrower (proved) ✓" in text
    assert "\nunchanged: I1, I4, I6, I7, E1, " in text
    assert "ZJU-002  eligible → ineligible" in text
    assert text.endswith("problems\n  all declared intents hold\n")
    # Sections come in the documented order.
    order = [
        "metadata changes",
        "criteria that changed",
        "I2 (",
        "unchanged:",
        "definition changes",
        "overall eligibility:",
        "cohort:",
        "problems",
    ]
    positions = [text.index(f"\n{heading}") for heading in order]
    assert positions == sorted(positions)


def test_real_witnesses_are_rendered() -> None:
    """Without the swap, the report shows z3's own witnesses (not pinned: they vary by z3)."""
    report = seed_report()
    i2 = next(c for c in report.criteria if c.id == "I2")
    (witness,) = i2.comparison.witnesses
    assert json.dumps(witness.record["birth_date"]) in render_text(report)


# --- the HTML page --------------------------------------------------------------------------

_VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source"}


class _Balance(HTMLParser):
    """Checks that every non-void element is closed, in order, and records the tags used."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.external += [v or "" for k, v in attrs if k in {"src", "href"} and v and v[0] != "#"]
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


def parsed(page: str) -> _Balance:
    parser = _Balance()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    return parser


def test_html_is_one_self_contained_page() -> None:
    page = render_html(golden_report())
    tags = parsed(page).tags
    assert page.startswith("<!DOCTYPE html>\n")
    assert {"style", "details", "del", "ins", "table"} <= tags
    assert not tags & {"script", "link", "img", "iframe", "object"}
    assert parsed(page).external == []
    for relation in ("broader", "narrower", "equivalent"):
        assert f'<span class="badge {relation}">{relation}</span>' in page
    assert "incomparable" in page and ".incomparable {" in page


V1 = """\
protocode: 1
protocol:
  registry_id: TEST-ESC
  title: Escaping <i>test</i>
  version: "1"
data:
  age: {type: integer}
  infection: {type: boolean}
criteria:
  inclusion:
    - {id: I1, text: "Aged <b>18</b> years or older & able.", rule: age >= 18}
  exclusion:
    - {id: E1, text: Active infection., rule: infection}
"""

V2 = (
    V1.replace('version: "1"', 'version: "2"\n  amends: "1"\n  changes:\n' + "    - {CHANGE}\n")
    .replace("<b>18</b>", "<b>16</b>")
    .replace("age >= 18", "age >= 16")
    .replace("<i>test</i>", "<i>test</i> again")
)


def pair(change: str) -> DiffReport:
    old = load_text(V1, "v1.yaml")
    new = load_text(V2.replace("{CHANGE}", change), "v2.yaml")
    return diff(old, new)


def test_protocol_text_is_escaped() -> None:
    rationale = '"Adolescents <script>alert(1)</script> too | *really*"'
    report = pair(f"{{target: I1, intent: relaxed, rationale: {rationale}}}")
    page = render_html(report)
    parsed(page)
    assert "<script" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;b&gt;" in page and "&lt;script&gt;" in page and "&amp; able" in page
    markdown = render_markdown(report)
    # Backslash-escaped, a < is literal text on GitHub; an unescaped one would be markup.
    assert not re.search(r"(?<!\\)<(script|b|i)\b", markdown)
    assert r"\<b\>16\</b\>" in markdown and r"\| \*really\*" in markdown
    assert "<b>16</b>" in render_text(report)


HOSTILE = "<script>alert(\"x&y\")</script> & 'q' <img src=x onerror=alert(1)>"

# Every element the page's template writes; any other one came from a value.
PAGE_TAGS = {
    *("html", "head", "meta", "title", "style", "body", "main", "header", "footer", "h1"),
    *("h2", "h3", "p", "section", "article", "table", "thead", "tbody", "tr", "th", "td"),
    *("a", "em", "strong", "span", "code", "pre", "del", "ins", "dl", "dt", "dd", "ul", "li"),
    *("details", "summary"),
}
PAGE_ATTRIBUTES = {"lang", "charset", "name", "content", "class", "id", "href", "title", "open"}


def hostile_report() -> DiffReport:
    """A report whose every free text holds HOSTILE: registry id, title, criterion text and
    rationale from the files; then, past the schema, a criterion id (which also lands in an
    attribute), witness records and the cohort's record ids and statuses."""
    quoted = json.dumps(HOSTILE)
    v1 = f"""\
protocode: 1
protocol:
  registry_id: {quoted}
  title: {quoted}
  version: "1"
data:
  age: {{type: integer}}
criteria:
  inclusion:
    - {{id: I1, text: {quoted}, rule: age >= 18}}
"""
    change = f"    - {{target: I1, intent: tightened, rationale: {quoted}}}\n"
    v2 = (
        v1.replace('version: "1"', f'version: "2"\n  amends: "1"\n  changes:\n{change}')
        .replace(f"title: {quoted}", f"title: {json.dumps(HOSTILE + '!')}")
        .replace(f"text: {quoted}", f"text: {json.dumps(HOSTILE + ' v2')}")
        .replace("age >= 18", "age >= 16")
    )
    report = diff(load_text(v1, "v1.yaml"), load_text(v2, "v2.yaml"))
    record = {"id": HOSTILE, "age": 17, HOSTILE: [{"value": HOSTILE}]}

    def hostile(c: Comparison) -> Comparison:
        return replace(c, witnesses=tuple(replace(w, record=record) for w in c.witnesses))

    (criterion,) = report.criteria
    criterion = replace(criterion, id=HOSTILE, comparison=hostile(criterion.comparison))
    assert criterion.problem is not None and criterion.comparison.witnesses
    cohort = CohortDiff(2, 0, ((HOSTILE, HOSTILE, 1),), ((HOSTILE, HOSTILE, HOSTILE),))
    return replace(
        report, criteria=(criterion,), eligibility=hostile(report.eligibility), cohort=cohort
    )


class _Seen(HTMLParser):
    """What a browser would make of a page: its elements, attributes and text."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str]] = []
        self.text = ""
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes += [(k, v or "") for k, v in attrs]

    def handle_data(self, data: str) -> None:
        self.text += data


def markup_from_values(page: str) -> list[str]:
    """Elements or attributes of `page` that no template wrote: a value taken as markup."""
    seen = _Seen(page)
    found = sorted(seen.tags - PAGE_TAGS)
    found += [k for k, _ in seen.attributes if k not in PAGE_ATTRIBUTES]
    return found


def test_hostile_text_and_values_are_escaped_in_html() -> None:
    page = render_html(hostile_report())
    assert markup_from_values(page) == []
    seen = _Seen(page)
    # Each value reads as the text it is: title and h1, metadata (2), the criterion's word
    # diff and rationale, the problem, witness records, the cohort's ids and statuses.
    assert seen.text.count(HOSTILE) >= 12
    # A value in an attribute stays whole (an unescaped quote would cut it short).
    assert any(k == "title" and HOSTILE in v for k, v in seen.attributes)
    assert "&quot;x&amp;y&quot;" in page and "&#x27;q&#x27;" in page
    # The check fails on the same page with its values written unescaped.
    assert {"script", "img", "onerror"} <= set(markup_from_values(html.unescape(page)))


# --- JSON -------------------------------------------------------------------------------------

TOP = {
    "format",
    "registry_id",
    "old_version",
    "new_version",
    "metadata",
    "criteria",
    "definitions",
    "eligibility",
    "cohort",
    "problems",
}
CRITERION = {
    "id",
    "presence",
    "kind",
    "text",
    "rule",
    "text_changed",
    "intent",
    "verdict",
    "problem",
}
VERDICT = {"relation", "method", "note", "witnesses"}
WITNESS = {"direction", "old", "new", "record"}
COHORT = {"total", "errors", "transitions", "flipped"}


def test_json_has_the_documented_shape() -> None:
    text = render_json(seed_report())
    assert text.endswith("}\n")
    data = json.loads(text)
    assert set(data) == TOP and data["format"] == 1
    assert {k for m in data["metadata"] for k in m} == {"field", "old", "new"}
    for c in data["criteria"]:
        assert set(c) == CRITERION
        assert set(c["text"]) == set(c["rule"]) == {"old", "new"}
        assert set(c["verdict"]) == VERDICT
        assert all(set(w) == WITNESS for w in c["verdict"]["witnesses"])
        assert c["intent"] is None or set(c["intent"]) == {"intent", "rationale"}
    assert set(data["eligibility"]) == VERDICT
    assert set(data["cohort"]) == COHORT
    assert {k for t in data["cohort"]["transitions"] for k in t} == {"old", "new", "count"}
    assert {k for t in data["cohort"]["flipped"] for k in t} == {"id", "old", "new"}
    assert data["problems"] == []
    i2 = next(c for c in data["criteria"] if c["id"] == "I2")
    assert (i2["intent"]["intent"], i2["verdict"]["relation"]) == ("relaxed", "broader")


def test_json_keys_are_documented() -> None:
    docs = (ROOT / "docs" / "amendments.md").read_text(encoding="utf-8")
    section = docs[docs.index("## The JSON report") :]
    definitions = {"name", "old", "new", "intent"}
    for key in TOP | CRITERION | VERDICT | WITNESS | COHORT | definitions | {"count", "field"}:
        assert f"`{key}`" in section, key


def test_json_of_a_definition_change() -> None:
    old = load_text(V1.replace("data:", "definitions:\n  adult: age >= 18\ndata:"), "v1.yaml")
    text = V2.replace("{CHANGE}", "{target: definition adult, intent: editorial, rationale: Why.}")
    new = load_text(text.replace("data:", "definitions:\n  adult: 18 <= age\ndata:"), "v2.yaml")
    data = json.loads(render_json(diff(old, new)))
    assert data["definitions"] == [
        {"name": "adult", "old": "age >= 18", "new": "18 <= age", "intent": "editorial"}
    ]


# --- problems ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "problem"),
    [
        ("relaxed_but_excludes", "I1 is declared relaxed, but the change is incomparable"),
        ("undeclared_change", "E2 changed meaning (broader) but the amendment declares no change"),
    ],
)
def test_false_claims_are_listed_under_problems(folder: str, problem: str) -> None:
    path = AMENDMENTS / folder
    report = diff(protocode.load(path / "v1.yaml"), protocode.load(path / "v2.yaml"))
    for fmt, render in RENDERERS.items():
        out = render(report)
        tail = out[out.lower().rindex("problems") :]
        assert problem in tail, fmt
        assert "all declared intents hold" not in out.lower(), fmt
        assert "witness" in tail, fmt
    assert json.loads(render_json(report))["problems"] == [problem]


def test_an_undeclared_definition_change_is_a_problem() -> None:
    old = load_text(V1.replace("data:", "definitions:\n  adult: age >= 18\ndata:"), "v1.yaml")
    text = V2.replace("{CHANGE}", "{target: I1, intent: relaxed, rationale: Why.}")
    new = load_text(text.replace("data:", "definitions:\n  adult: age >= 17\ndata:"), "v2.yaml")
    report = diff(old, new)
    message = "definition adult changed but the amendment declares no change"
    for render in RENDERERS.values():
        assert message in render(report)
