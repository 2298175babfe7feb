"""The one walk over a `DiffReport` that every format renders: a small render model.

`view(report)` decides what the reader sees and in which order (which criteria count as
changed, the word diffs, the witness that refutes each claim, the cohort's better or worse
flips), as plain text in frozen dataclasses; the text, Markdown and HTML renderers only lay
it out and escape it for their format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from protocode.amendments.claims import claim_problems, contradiction
from protocode.amendments.compare import STATUS_RANK
from protocode.amendments.semantic_diff import CriterionDiff, DiffReport, rule_text
from protocode.amendments.words import unified
from protocode.backends.smt import Comparison, Witness

Op = Literal["equal", "delete", "insert"]


@dataclass(frozen=True, slots=True)
class Words:
    """A word diff as (operation, words) runs, from `unified`."""

    runs: tuple[tuple[Op, str], ...]

    @property
    def marked(self) -> str:
        """The diff as one line with ``[-old-]`` and ``{+new+}`` marks."""
        marks = {"equal": "{}", "delete": "[-{}-]", "insert": "{{+{}+}}"}
        return " ".join(marks[op].format(words) for op, words in self.runs)


@dataclass(frozen=True, slots=True)
class WitnessView:
    """A witness patient: its direction, both verdicts, and its record as JSON."""

    direction: str
    versions: str
    line: str
    block: str


@dataclass(frozen=True, slots=True)
class VerdictView:
    """A semantic verdict: relation, method, the solver's note, witness patients."""

    relation: str
    method: str
    note: str
    witnesses: tuple[WitnessView, ...]

    @property
    def label(self) -> str:
        """Relation and method, e.g. ``broader (proved)``."""
        return f"{self.relation} ({self.method})"


@dataclass(frozen=True, slots=True)
class CriterionView:
    """A criterion that changed in wording or meaning, or that carries a declared intent."""

    id: str
    anchor: str
    kind: str
    presence: str
    intent: str | None
    rationale: str
    verdict: VerdictView
    problem: str | None
    text: Words
    rule: Words

    @property
    def intent_label(self) -> str:
        """The declared intent, or ``none``."""
        return self.intent if self.intent is not None else "none"

    @property
    def claim(self) -> str:
        """✓ when the declared intent holds, ✗ when it is false or missing."""
        return "✓" if self.problem is None else "✗"


@dataclass(frozen=True, slots=True)
class MetadataRow:
    """A metadata field whose value changed ("" where a version has none)."""

    field: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class DefinitionView:
    """A definition whose rule changed, with its declared intent and rationale, if any."""

    name: str
    intent: str | None
    change: Words
    rationale: str


@dataclass(frozen=True, slots=True)
class Transition:
    """How many records of the cohort went from status `old` to `new`."""

    old: str
    new: str
    count: int


@dataclass(frozen=True, slots=True)
class Flip:
    """A record whose status changed, and whether it fares ``better`` or ``worse``."""

    id: str
    old: str
    new: str
    fares: str


@dataclass(frozen=True, slots=True)
class CohortView:
    """The cohort's status changes."""

    total: int
    errors: int
    transitions: tuple[Transition, ...]
    flipped: tuple[Flip, ...]


@dataclass(frozen=True, slots=True)
class ProblemView:
    """A false or undeclared claim: the criterion it is about (if any), why, a witness."""

    criterion: str | None
    anchor: str | None
    message: str
    witness: WitnessView | None


@dataclass(frozen=True, slots=True)
class ReportView:
    """Everything a report shows, in the order it shows it."""

    registry_id: str
    old_version: str
    new_version: str
    illustrative: bool
    metadata: tuple[MetadataRow, ...]
    changed: tuple[CriterionView, ...]
    unchanged: tuple[str, ...]
    definitions: tuple[DefinitionView, ...]
    eligibility: VerdictView
    cohort: CohortView | None
    problems: tuple[ProblemView, ...]

    @property
    def illustrative_line(self) -> str:
        """Whether the new version is marked illustrative, as a sentence without a period."""
        if self.illustrative:
            return (
                f"version {self.new_version} is marked illustrative: "
                "it is not a real amendment of the trial"
            )
        return f"version {self.new_version} is not marked illustrative"

    @property
    def unchanged_line(self) -> str:
        """The ids of the unchanged criteria, in one line."""
        return "unchanged: " + (", ".join(self.unchanged) if self.unchanged else "none")


def view(report: DiffReport) -> ReportView:
    """The render model of `report`."""
    changed = [c for c in report.criteria if _is_changed(c)]
    return ReportView(
        registry_id=report.registry_id,
        old_version=report.old_version,
        new_version=report.new_version,
        illustrative=report.new_protocol.checked.doc.metadata.illustrative,
        metadata=tuple(MetadataRow(f, a, b) for f, a, b in report.metadata),
        changed=tuple(_criterion(report, c) for c in changed),
        unchanged=tuple(c.id for c in report.criteria if not _is_changed(c)),
        definitions=tuple(
            DefinitionView(
                name,
                None if change is None else change.intent,
                words(old, new),
                "" if change is None else one_line(change.rationale),
            )
            for name, old, new, change in report.definitions
        ),
        eligibility=_verdict(report, report.eligibility),
        cohort=None if report.cohort is None else _cohort(report),
        problems=_problems(report),
    )


def _is_changed(c: CriterionDiff) -> bool:
    """Whether a criterion earns a row and a section: changed wording or meaning, or a claim."""
    return c.text_changed or c.comparison.relation != "equivalent" or c.intent is not None


def _criterion(report: DiffReport, c: CriterionDiff) -> CriterionView:
    return CriterionView(
        id=c.id,
        anchor=anchor(c.id),
        kind=c.kind,
        presence=c.presence,
        intent=None if c.intent is None else c.intent.intent,
        rationale="" if c.intent is None else one_line(c.intent.rationale),
        verdict=_verdict(report, c.comparison),
        problem=c.problem,
        text=words(c.old.text if c.old else None, c.new.text if c.new else None),
        rule=words(rule_text(c.old), rule_text(c.new)),
    )


def _verdict(report: DiffReport, comparison: Comparison) -> VerdictView:
    return VerdictView(
        comparison.relation,
        comparison.method,
        comparison.note,
        tuple(_witness(report, w) for w in comparison.witnesses),
    )


def _witness(report: DiffReport, w: Witness) -> WitnessView:
    versions = f"v{report.old_version} {w.old} → v{report.new_version} {w.new}"
    return WitnessView(w.direction, versions, _record(w.record), _record(w.record, pretty=True))


def _cohort(report: DiffReport) -> CohortView:
    cohort = report.cohort
    assert cohort is not None
    return CohortView(
        cohort.total,
        cohort.errors,
        tuple(Transition(a, b, n) for a, b, n in cohort.transitions),
        tuple(Flip(i, a, b, _fares(a, b)) for i, a, b in cohort.flipped),
    )


def _fares(old: str, new: str) -> str:
    """Whether a record fares better or worse under the new version."""
    return "better" if STATUS_RANK.get(new, 0) > STATUS_RANK.get(old, 0) else "worse"


def _problems(report: DiffReport) -> tuple[ProblemView, ...]:
    """The criteria whose claim is false or missing, then every other problem `check` finds.

    `claim_problems` is what ``protocode check`` reports; its other diagnostics (a definition
    changed with nothing declared) are listed too, though the JSON ``problems`` key lists
    criteria only.
    """
    out = []
    for c in report.problems:
        if c.problem:
            witness = contradiction(c)
            shown = None if witness is None else _witness(report, witness)
            out.append(ProblemView(c.id, anchor(c.id), c.problem, shown))
    criteria = tuple(p.message for p in out)
    out += [
        ProblemView(None, None, d.message, None)
        for d in claim_problems(report)
        if not d.message.startswith(criteria)
    ]
    return tuple(out)


def anchor(cid: str) -> str:
    """The HTML id of a criterion's section: ``c-`` and its id, other characters as ``_``."""
    return "c-" + re.sub(r"[^A-Za-z0-9_.-]", "_", cid)


def one_line(text: str | None) -> str:
    """`text` with every run of white space, line breaks included, as one space."""
    return " ".join((text or "").split())


def words(old: str | None, new: str | None) -> Words:
    """`unified`'s word diff as runs, for formats with real markup."""
    # One word diff for every format, so they never disagree. Only a run of unchanged words
    # that is itself bracketed like a mark would be misread, and it would still be escaped.
    runs: list[tuple[Op, str]] = []
    for part in unified(old, new):
        if part.startswith("[-") and part.endswith("-]"):
            runs.append(("delete", part[2:-2]))
        elif part.startswith("{+") and part.endswith("+}"):
            runs.append(("insert", part[2:-2]))
        else:
            runs.append(("equal", part))
    return Words(tuple(runs))


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
