"""Registry import: a ClinicalTrials.gov study record (API v2 JSON) becomes a draft protocol.

Three pure steps, each usable on its own:

1. `read_record` / `draft_from_record`: the study record's ``protocolSection`` read into a
   `RegistryDraft` (metadata, arms, interventions, outcome measures, criteria); a file that
   is not such a record raises one `LoadError` naming every problem;
2. `split_eligibility`: the registry's single eligibility text cut into numbered inclusion
   and exclusion criteria (I1…In, E1…Em), robust to the variants the registry holds;
3. `draft_yaml`: the draft as a protocol file that loads, each criterion ``draft: true``
   and without a rule, so that ``protocode check`` lists the criteria still to write.

Nothing in the record is executed or trusted: it is parsed as JSON, every field's type is
checked, and the YAML is written so that every text reads back exactly as imported.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from protocode.core.errors import Diagnostic, LoadError
from protocode.document.model import CriterionKind
from protocode.document.yamlsource import read_source

__all__ = [
    "Arm",
    "DraftCriterion",
    "Intervention",
    "Outcome",
    "RegistryDraft",
    "draft_from_record",
    "draft_yaml",
    "read_record",
    "schema_reference",
    "split_eligibility",
]

OutcomeKind = Literal["primary", "secondary", "other"]

_CODE = "registry"
_WIDTH = 92  # the longest line the writer aims for (ruff's 100 leaves room for editors)
_PHASES = {
    "EARLY_PHASE1": "early 1",
    "PHASE1": "1",
    "PHASE2": "2",
    "PHASE3": "3",
    "PHASE4": "4",
}
_OUTCOME_LISTS: tuple[tuple[OutcomeKind, str], ...] = (
    ("primary", "primaryOutcomes"),
    ("secondary", "secondaryOutcomes"),
    ("other", "otherOutcomes"),
)


# --- the draft ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DraftCriterion:
    """One criterion cut from the eligibility text: its id (I1, E3), kind and text.

    `heading` is the sub-heading the registry lists it under (``For women:``), if any.
    """

    id: str
    kind: CriterionKind
    text: str
    heading: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One outcome measure of the record, with its time frame as written."""

    kind: OutcomeKind
    measure: str
    time_frame: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm group of the record; `interventions` as the registry names them."""

    label: str
    type: str = ""
    description: str = ""
    interventions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Intervention:
    """One intervention of the record and the labels of the arms that receive it."""

    name: str
    type: str = ""
    description: str = ""
    arms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RegistryDraft:
    """What a registry record says that a protocol file starts from."""

    registry_id: str
    title: str
    criteria: tuple[DraftCriterion, ...]
    phase: str = ""
    sponsor: str = ""
    status: str = ""
    study_type: str = ""
    conditions: tuple[str, ...] = ()
    enrollment: str = ""
    sex: str = ""
    minimum_age: str = ""
    maximum_age: str = ""
    healthy_volunteers: bool | None = None
    arms: tuple[Arm, ...] = ()
    interventions: tuple[Intervention, ...] = ()
    outcomes: tuple[Outcome, ...] = field(default=())

    @property
    def inclusion(self) -> tuple[DraftCriterion, ...]:
        """The inclusion criteria, in registry order."""
        return tuple(c for c in self.criteria if c.kind == "inclusion")

    @property
    def exclusion(self) -> tuple[DraftCriterion, ...]:
        """The exclusion criteria, in registry order."""
        return tuple(c for c in self.criteria if c.kind == "exclusion")


# --- reading the record ---------------------------------------------------------------------


def read_record(path: Path) -> RegistryDraft:
    """Read the ClinicalTrials.gov API v2 study record (JSON) at `path` into a draft.

    Raises `LoadError`: with the position of a JSON syntax error, or naming every field
    that is missing or of the wrong type.
    """
    source = read_source(path)
    try:
        data = json.loads(source.text)
    except json.JSONDecodeError as exc:
        # At the end of the text, point at its last character rather than past it.
        at = min(exc.pos, max(0, len(source.text.rstrip()) - 1))
        span = source.span(at, min(at + 1, len(source.text)))
        raise LoadError([Diagnostic(_CODE, f"not JSON: {exc.msg}", span)]) from None
    return draft_from_record(data, str(path))


def draft_from_record(data: Any, path: str = "<record>") -> RegistryDraft:
    """The draft of a parsed study record: one study object, or a search result of one.

    `path` names the record in error messages.
    """
    fields = _Fields(path)
    study = data
    if isinstance(data, dict) and "studies" in data and "protocolSection" not in data:
        studies = data["studies"]
        if not isinstance(studies, list) or len(studies) != 1:
            count = len(studies) if isinstance(studies, list) else "no"
            fields.fail(f"'studies' holds {count} studies; import takes exactly one")
        study = studies[0]
    if not isinstance(study, dict) or not isinstance(study.get("protocolSection"), dict):
        fields.fail(
            "not a ClinicalTrials.gov study record: no 'protocolSection' object"
            " (expected the JSON of https://clinicaltrials.gov/api/v2/studies/NCT…)"
        )
    section: dict[str, Any] = study["protocolSection"]
    draft = fields.draft(section)
    fields.raise_problems()
    assert draft is not None
    return draft


class _Fields:
    """Typed access to the record's fields, collecting every problem by its JSON path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []

    def fail(self, message: str) -> None:
        """Stop at once: the record is not something the other fields can be read from."""
        self.problems.append(message)
        self.raise_problems()

    def raise_problems(self) -> None:
        if self.problems:
            raise LoadError(
                [Diagnostic(_CODE, f"{self.path}: {message}") for message in self.problems]
            )

    def get(self, node: Any, where: str, key: str, kind: type, required: bool = False) -> Any:
        """``node[key]`` when it is a `kind` (None when absent); else note the problem."""
        value = node.get(key) if isinstance(node, dict) else None
        if value is None:
            if required:
                self.problems.append(f"missing {where}.{key}")
            return None
        if kind is str and isinstance(value, str):
            value = value.strip()
            if required and not value:
                self.problems.append(f"{where}.{key} is empty")
                return None
            return value
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        self.problems.append(f"{where}.{key} must be {_NOUNS[kind]}, not {_noun(value)}")
        return None

    def text(self, node: Any, where: str, key: str) -> str:
        value: str | None = self.get(node, where, key, str)
        return value or ""

    def texts(self, node: Any, where: str, key: str) -> tuple[str, ...]:
        values = self.get(node, where, key, list) or []
        out = []
        for i, value in enumerate(values):
            if isinstance(value, str):
                out.append(value.strip())
            else:
                self.problems.append(f"{where}.{key}[{i}] must be a string, not {_noun(value)}")
        return tuple(value for value in out if value)

    def module(self, section: dict[str, Any], name: str) -> dict[str, Any]:
        module: dict[str, Any] | None = self.get(section, "protocolSection", name, dict)
        return module or {}

    def objects(self, node: Any, where: str, key: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for i, value in enumerate(self.get(node, where, key, list) or []):
            if isinstance(value, dict):
                yield f"{where}.{key}[{i}]", value
            else:
                self.problems.append(f"{where}.{key}[{i}] must be an object, not {_noun(value)}")

    def draft(self, section: dict[str, Any]) -> RegistryDraft | None:
        ps = "protocolSection"
        ident = self.module(section, "identificationModule")
        where = f"{ps}.identificationModule"
        nct_id = self.get(ident, where, "nctId", str, required=True)
        known = len(self.problems)
        title = self.text(ident, where, "officialTitle") or self.text(ident, where, "briefTitle")
        if not title and len(self.problems) == known:
            self.problems.append(f"missing {where}.officialTitle (or briefTitle)")
        status_module = self.module(section, "statusModule")
        status = self.text(status_module, f"{ps}.statusModule", "overallStatus")
        sponsor_module = self.module(section, "sponsorCollaboratorsModule")
        where = f"{ps}.sponsorCollaboratorsModule"
        lead = self.get(sponsor_module, where, "leadSponsor", dict)
        sponsor = self.text(lead, f"{where}.leadSponsor", "name")
        conditions = self.texts(
            self.module(section, "conditionsModule"), f"{ps}.conditionsModule", "conditions"
        )
        design = self.module(section, "designModule")
        where = f"{ps}.designModule"
        phases = [_PHASES.get(p, p) for p in self.texts(design, where, "phases") if p != "NA"]
        study_type = self.text(design, where, "studyType")
        enrollment_info = self.get(design, where, "enrollmentInfo", dict)
        count = self.get(enrollment_info, f"{where}.enrollmentInfo", "count", int)
        eligibility = self.module(section, "eligibilityModule")
        where = f"{ps}.eligibilityModule"
        criteria_text = self.get(eligibility, where, "eligibilityCriteria", str, required=True)
        criteria: tuple[DraftCriterion, ...] = ()
        if criteria_text:
            criteria = split_eligibility(criteria_text)
            if not criteria:
                self.problems.append(f"{where}.eligibilityCriteria holds no criteria")
        healthy = self.get(eligibility, where, "healthyVolunteers", bool)
        sex = self.text(eligibility, where, "sex")
        minimum_age = self.text(eligibility, where, "minimumAge")
        maximum_age = self.text(eligibility, where, "maximumAge")
        arms, interventions = self._arms(section), self._interventions(section)
        outcomes = self._outcomes(section)
        if self.problems or nct_id is None:
            return None
        return RegistryDraft(
            registry_id=nct_id,
            title=" ".join(title.split()),
            criteria=criteria,
            phase="/".join(phases),
            sponsor=sponsor,
            status=status,
            study_type=study_type,
            conditions=conditions,
            enrollment="" if count is None else str(count),
            sex=sex,
            minimum_age=minimum_age,
            maximum_age=maximum_age,
            healthy_volunteers=healthy,
            arms=arms,
            interventions=interventions,
            outcomes=outcomes,
        )

    def _arms(self, section: dict[str, Any]) -> tuple[Arm, ...]:
        module = self.module(section, "armsInterventionsModule")
        where = "protocolSection.armsInterventionsModule"
        return tuple(
            Arm(
                label=self.text(arm, at, "label"),
                type=self.text(arm, at, "type"),
                description=self.text(arm, at, "description"),
                interventions=self.texts(arm, at, "interventionNames"),
            )
            for at, arm in self.objects(module, where, "armGroups")
        )

    def _interventions(self, section: dict[str, Any]) -> tuple[Intervention, ...]:
        module = self.module(section, "armsInterventionsModule")
        where = "protocolSection.armsInterventionsModule"
        return tuple(
            Intervention(
                name=self.text(item, at, "name"),
                type=self.text(item, at, "type"),
                description=self.text(item, at, "description"),
                arms=self.texts(item, at, "armGroupLabels"),
            )
            for at, item in self.objects(module, where, "interventions")
        )

    def _outcomes(self, section: dict[str, Any]) -> tuple[Outcome, ...]:
        module = self.module(section, "outcomesModule")
        out = []
        for kind, key in _OUTCOME_LISTS:
            for at, item in self.objects(module, "protocolSection.outcomesModule", key):
                measure = self.get(item, at, "measure", str, required=True)
                out.append(
                    Outcome(
                        kind=kind,
                        measure=measure or "",
                        time_frame=self.text(item, at, "timeFrame"),
                        description=self.text(item, at, "description"),
                    )
                )
        return tuple(out)


_NOUNS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    list: "a list",
    dict: "an object",
}


def _noun(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    for kind, noun in _NOUNS.items():
        if isinstance(value, kind):
            return noun
    return "a number" if isinstance(value, float) else "null"


# --- the eligibility text -------------------------------------------------------------------

# A list item: bullet, number (1. 1) (1) 1.2), or letter/roman numeral (a. b) (c) iv.).
_ITEM = re.compile(
    r"(?P<indent>[ ]*)"
    r"(?P<marker>[*\-+•◦▪‣·]|\(?\d{1,3}[.)]|\(\d{1,3}\)|\d{1,3}(?:\.\d{1,3})+\.?"
    r"|\(?[A-Za-z][.)]|\([A-Za-z]\)|\(?[ivxIVX]{2,5}[.)]|\([ivxIVX]{2,5}\))"
    r"[ \t]+(?P<text>\S.*)"
)
_HEADING = re.compile(
    r"(?:(?:key|main|major|general|additional)\s+)?(?P<kind>inclusion|exclusion)"
    r"(?P<criteria>\s+criteri(?:a|on))?(?P<rest>.*)",
    re.IGNORECASE,
)
# A character escaped by the registry's Markdown (``\>= 18``, ``\*``).
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|~=^])")
_SPACES = re.compile(r"[ \t]+")


def split_eligibility(text: str) -> tuple[DraftCriterion, ...]:
    """The criteria of a registry eligibility text, numbered I1…In and E1…Em.

    Sections start at headings such as ``Inclusion Criteria:`` or ``EXCLUSION CRITERIA``
    (any case, colon optional, ``Key …`` and a parenthesised qualifier allowed); items
    before any heading count as inclusion. In a section that uses list markers (``*``,
    ``-``, ``1.``, ``1)``, ``a.`` …), each top-level item is a criterion: lines that
    continue it are joined with a space, and nested items (indented, or of another marker
    style) stay in its text on lines of their own. An unmarked line ending in ``:`` after a
    blank line is a sub-heading, kept as the `heading` of the items under it; another
    unmarked paragraph is a criterion of its own. A section without list markers has one
    criterion per line. Markdown escapes are undone and runs of spaces collapsed.
    """
    out: list[DraftCriterion] = []
    counts = {"inclusion": 0, "exclusion": 0}
    for kind, heading, lines in _sections(text):
        for item_text, sub_heading in _items(lines):
            counts[kind] += 1
            prefix = "I" if kind == "inclusion" else "E"
            label = sub_heading or heading
            out.append(DraftCriterion(f"{prefix}{counts[kind]}", kind, item_text, label))
    return tuple(out)


def _heading(line: str) -> tuple[CriterionKind, str] | None:
    """The kind of a section heading line, and its qualifier as written if it has one."""
    content = line.strip().strip("*_#").strip()
    match = _HEADING.fullmatch(content)
    if match is None:
        return None
    kind: CriterionKind = "inclusion" if match["kind"].lower() == "inclusion" else "exclusion"
    rest = match["rest"].strip().strip("*_").strip()
    if rest.strip(":-–— ") == "":
        return kind, ""
    # A qualified heading ("Inclusion Criteria (Part A):") names criteria and ends in ':'.
    if match["criteria"] and rest.endswith(":") and len(rest) <= 60:
        return kind, content.rstrip("*_ ")
    return None


def _sections(text: str) -> Iterator[tuple[CriterionKind, str, list[str]]]:
    """The text cut at its headings: (kind, qualified heading or "", lines)."""
    kind: CriterionKind = "inclusion"
    heading = ""
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.expandtabs(4).rstrip()
        item = _ITEM.fullmatch(line)
        found = _heading(item["text"] if item else line)
        if found is None:
            lines.append(line)
            continue
        if lines:
            yield kind, heading, lines
        (kind, heading), lines = found, []
    if lines:
        yield kind, heading, lines


@dataclass(slots=True)
class _Item:
    parts: list[str]
    heading: str
    subs: list[tuple[int, str, list[str]]] = field(default_factory=list)

    def add(self, text: str) -> None:
        (self.subs[-1][2] if self.subs else self.parts).append(text)

    def render(self) -> str:
        lines = [" ".join(self.parts)]
        for depth, marker, parts in self.subs:
            lines.append("  " * (depth - 1) + f"{marker} {' '.join(parts)}")
        return "\n".join(lines)


def _style(marker: str) -> str:
    """Markers of one style are siblings; another style at the same indent nests."""
    core = marker.strip("()")
    if core[:1].isdigit():
        return "decimal" if "." in core.rstrip(".") else "number"
    if core[:1].isalpha():
        return "letter"
    return "bullet"


def _clean(text: str) -> str:
    return _SPACES.sub(" ", _ESCAPE.sub(r"\1", text)).strip()


def _items(lines: Sequence[str]) -> Iterator[tuple[str, str]]:
    """The criteria of one section's lines: (text, sub-heading)."""
    if not any(_ITEM.fullmatch(line) for line in lines):
        heading = ""
        texts = [_clean(line) for line in lines]
        texts = [t for t in texts if t]
        for text in texts:
            if text.endswith(":"):
                heading = text
            else:
                yield text, heading
        return
    items: list[_Item] = []
    stack: list[tuple[int, str]] = []  # (indent, style) of the open item and its parents
    heading = ""
    blank = False
    for line in lines:
        if not line.strip():
            blank = True
            continue
        indent = len(line) - len(line.lstrip(" "))
        match = _ITEM.fullmatch(line)
        if match is not None:
            marker, text = match["marker"], _clean(match["text"])
            depth = _place(stack, indent, _style(marker))
            if depth == 0 or not items:
                items.append(_Item([text], heading))
                del stack[:-1]
            else:
                items[-1].subs.append((depth, marker, [text]))
        else:
            text = _clean(line)
            continues = bool(items) and (not blank or bool(stack and indent > stack[0][0]))
            if continues:
                items[-1].add(text)
            elif text.endswith(":"):
                heading = text
                stack.clear()
            else:
                items.append(_Item([text], heading))
                stack.clear()
        blank = False
    for item in items:
        text = item.render()
        if text:
            yield text, item.heading


def _place(stack: list[tuple[int, str]], indent: int, style: str) -> int:
    """The nesting depth of a new item (0: a criterion) and the stack updated for it."""
    for j in range(len(stack) - 1, -1, -1):
        if stack[j] == (indent, style):
            del stack[j + 1 :]
            return j
    while stack and indent < stack[-1][0]:
        stack.pop()
    stack.append((indent, style))
    return len(stack) - 1


# --- writing the draft ----------------------------------------------------------------------


def draft_yaml(draft: RegistryDraft, schema: str | None = None) -> str:
    """The draft as a protocol file (version 1): it loads, and ``check`` lists its drafts.

    `schema` is the reference written in the ``yaml-language-server`` modeline (a path
    relative to the file, or a URL); None leaves the modeline out.
    """
    out = _Writer()
    if schema is not None:
        out.line(f"# yaml-language-server: $schema={schema}")
        out.line("#")
    out.comment(
        f"{draft.registry_id}, version 1: a DRAFT imported by 'protocode import' from the"
        " trial's ClinicalTrials.gov record. Every criterion is 'draft: true' and has no"
        " rule yet: give it a rule (or an attestation), then remove the flag; 'protocode"
        " check' lists the criteria still to do. The registry's arms, interventions and"
        " outcome measures are comments at the end, for writing 'dosing' and 'endpoints'"
        " (docs/import.md).",
        0,
    )
    out.line("protocode: 1")
    out.line("")
    out.line("protocol:")
    out.field("registry_id", draft.registry_id, 2)
    out.field("title", draft.title, 2)
    out.field("version", "1", 2)
    if draft.phase:
        out.field("phase", draft.phase, 2)
    if draft.sponsor:
        out.field("sponsor", draft.sponsor, 2)
    out.line("  changelog:")
    out.field("-", f"Draft imported from the ClinicalTrials.gov record {draft.registry_id}.", 4)
    facts = _facts(draft)
    if facts:
        out.line("")
        out.comment("From the registry record (protocode does not read these lines):", 0)
        for label, value in facts:
            out.comment(f"{label}: {value}", 2, hang=2)
    out.line("")
    out.comment("---- data dictionary: every item a rule reads (docs/language.md).", 0)
    out.line("data: {}")
    out.line("")
    out.line("criteria:")
    for kind in ("inclusion", "exclusion"):
        criteria = [c for c in draft.criteria if c.kind == kind]
        if not criteria:
            if kind == "inclusion":
                out.line("  inclusion: []")
            continue
        out.line(f"  {kind}:")
        for c in criteria:
            out.line(f"    - id: {c.id}")
            out.field("text", c.text, 6)
            if c.heading:
                out.field("note", f"Listed in the registry under: {c.heading}", 6)
            out.line("      draft: true")
    if draft.arms or draft.interventions:
        out.line("")
        out.comment(
            "---- dosing: not written yet (docs/dosing.md). The registry's arms and interventions:",
            0,
        )
        for arm in draft.arms:
            out.comment("", 0)
            out.comment(f"arm: {arm.label}{_kind(arm.type)}", 0)
            if arm.interventions:
                out.comment(f"interventions: {', '.join(arm.interventions)}", 2, hang=2)
            if arm.description:
                out.comment(arm.description, 2)
        for item in draft.interventions:
            out.comment("", 0)
            out.comment(f"intervention: {item.name}{_kind(item.type)}", 0)
            if item.arms:
                out.comment(f"arms: {', '.join(item.arms)}", 2, hang=2)
            if item.description:
                out.comment(item.description, 2)
    if draft.outcomes:
        out.line("")
        out.comment(
            "---- endpoints: not written yet (docs/endpoints.md). The registry's outcome measures:",
            0,
        )
        numbers = {"primary": 0, "secondary": 0, "other": 0}
        for outcome in draft.outcomes:
            numbers[outcome.kind] += 1
            out.comment("", 0)
            out.comment(f"{outcome.kind} outcome {numbers[outcome.kind]}: {outcome.measure}", 0)
            if outcome.time_frame:
                out.comment(f"time frame: {outcome.time_frame}", 2, hang=2)
            if outcome.description:
                out.comment(outcome.description, 2)
    return out.text()


def _kind(type_: str) -> str:
    return f" ({type_})" if type_ else ""


def _facts(draft: RegistryDraft) -> list[tuple[str, str]]:
    ages = ""
    if draft.minimum_age or draft.maximum_age:
        ages = f"{draft.minimum_age or 'no minimum'} to {draft.maximum_age or 'no maximum'}"
    healthy = {None: "", True: "accepted", False: "not accepted"}[draft.healthy_volunteers]
    facts = [
        ("status", draft.status),
        ("study type", draft.study_type),
        ("conditions", "; ".join(draft.conditions)),
        ("enrollment", draft.enrollment),
        ("eligible sex", draft.sex),
        ("eligible ages", ages),
        ("healthy volunteers", healthy),
    ]
    return [(label, value) for label, value in facts if value]


# Characters a YAML stream may not hold even in a comment, and the line breaks YAML knows.
_NOT_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


class _Writer:
    """Lines of YAML; every scalar is checked to read back as the exact text it holds."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def comment(self, text: str, indent: int, hang: int = 0) -> None:
        """`text` as comment lines `indent` deep, wrapped; continuation lines `hang` deeper.

        Each paragraph of `text` is wrapped on its own; empty text is an empty comment line.
        """
        for paragraph in _BREAKS.split(_NOT_PRINTABLE.sub(" ", text)):
            if not paragraph.strip():
                self.lines.append("#")
                continue
            wrapped = textwrap.wrap(
                paragraph,
                width=max(40, _WIDTH - indent - 2),
                initial_indent=" " * indent,
                subsequent_indent=" " * (indent + hang),
                break_long_words=False,
                break_on_hyphens=False,
            )
            self.lines.extend(f"# {part}".rstrip() for part in wrapped)

    def field(self, key: str, value: str, indent: int) -> None:
        """``key: value`` at `indent` (``- value`` for the key ``-``)."""
        head = " " * indent + ("- " if key == "-" else f"{key}: ")
        self.lines.append(head + _scalar(value, indent + 2, len(head)))


def _scalar(value: str, indent: int, column: int) -> str:
    """`value` written after a key at `column`: plain, folded or literal, else quoted.

    `indent` is where the lines of a block scalar start. The first form that reads back
    as exactly `value` wins; the double-quoted form always does.
    """
    candidates = []
    single_line = "\n" not in value
    if single_line and column + len(value) <= _WIDTH:
        candidates.append(value)
    elif single_line:
        wrapped = textwrap.wrap(
            value,
            width=max(40, _WIDTH - indent),
            break_long_words=False,
            break_on_hyphens=False,
        )
        candidates.append(">-\n" + "\n".join(" " * indent + part for part in wrapped))
    else:
        lines = value.split("\n")
        candidates.append("|-\n" + "\n".join((" " * indent + ln).rstrip() for ln in lines))
    quoted = yaml.dump(
        value, Dumper=yaml.SafeDumper, default_style='"', allow_unicode=True, width=sys.maxsize
    )
    candidates.append(quoted.removesuffix("\n").removesuffix("\n..."))
    for candidate in candidates:
        if _reads_back(candidate, value, indent):
            return candidate
    raise AssertionError(f"no YAML form reads back as {value!r}")  # pragma: no cover


def _reads_back(candidate: str, value: str, indent: int) -> bool:
    document = " " * (indent - 2) + "k: " + candidate + "\n"
    try:
        loaded = yaml.safe_load(document)
    except yaml.YAMLError:
        return False
    return isinstance(loaded, dict) and loaded.get("k") == value


def schema_reference(directory: Path) -> str | None:
    """The shipped protocol schema as the modeline of a file in `directory` refers to it.

    A path relative to `directory` (a ``file:`` URI where none exists, e.g. another
    drive); None when the package is not installed as files.
    """
    resource = resources.files("protocode") / "schemas" / "protocol.schema.json"
    schema = Path(str(resource))
    if not schema.is_file():
        return None  # pragma: no cover - a zipped install
    try:
        return Path(os.path.relpath(schema.resolve(), directory.resolve())).as_posix()
    except ValueError:  # pragma: no cover - Windows, another drive
        return schema.resolve().as_uri()
