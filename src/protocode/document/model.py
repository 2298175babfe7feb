"""The loaded protocol: what the YAML file says, with source positions, before any rule is parsed.

The loader (`protocode.document.loader`) builds these from a YAML file; the parser and checker
(`protocode.language.syntax`, `protocode.language.check`) turn the rule texts into typed IR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from protocode.core.source import Source, Span

ItemKind = Literal["anchor", "fact", "observation", "event"]
ValueType = Literal["boolean", "integer", "number", "quantity", "date", "code", "text"]
CriterionKind = Literal["inclusion", "exclusion"]
ChangeTargetKind = Literal["criterion", "definition", "data"]
ChangeIntent = Literal["editorial", "relaxed", "tightened", "added", "removed"]
Route = Literal["intravenous", "subcutaneous", "oral", "intramuscular", "intrathecal"]
BodyMeasure = Literal["weight", "bsa"]
HitPolicy = Literal["first", "unique", "any"]
Aggregate = Literal["max", "min", "count"]

CRITERION_KINDS: tuple[CriterionKind, ...] = ("inclusion", "exclusion")
"""The kinds of criterion, in the order a protocol file lists them."""


def change_target(target: str) -> tuple[ChangeTargetKind, str]:
    """What a change's target names: ``definition crcl``, ``data ast``, else a criterion id."""
    kind, _, name = target.partition(" ")
    if kind == "definition" and name:
        return "definition", name
    if kind == "data" and name:
        return "data", name
    return "criterion", target


@dataclass(frozen=True, slots=True)
class RuleText:
    """A rule string from the YAML file, with the file offset of each of its characters.

    `offsets[i]` is the offset in `source.text` of character `i` of `text`;
    `offsets[len(text)]` is the offset just past the last character. This survives YAML
    quoting, escapes and block scalars, so a parse error points at the right column.
    """

    text: str
    source: Source
    offsets: tuple[int, ...]

    def span(self, start: int, end: int) -> Span:
        """The file span of characters `[start, end)` of the rule text."""
        start = max(0, min(start, len(self.text)))
        end = max(start, min(end, len(self.text)))
        if end == start:
            at = self.offsets[start]
            return Span(self.source, at, at)
        return Span(self.source, self.offsets[start], self.offsets[end - 1] + 1)

    @property
    def whole(self) -> Span:
        """The span of the whole rule text."""
        return self.span(0, len(self.text))

    @classmethod
    def detached(cls, text: str, path: str = "<rule>") -> RuleText:
        """A rule text that is its own source (for the API, the REPL and tests)."""
        return cls(text, Source(path, text), tuple(range(len(text) + 1)))


@dataclass(frozen=True, slots=True)
class Quantity:
    """A decimal literal with a unit, as written in the YAML file (e.g. ``40 U/L``)."""

    value: str
    unit: str
    span: Span


@dataclass(frozen=True, slots=True)
class DataItem:
    """One entry of the data dictionary: something a rule may read from a patient record."""

    name: str
    kind: ItemKind
    type: ValueType
    span: Span
    description: str = ""
    unit: str | None = None
    values: tuple[str, ...] = ()
    minimum: str | None = None
    maximum: str | None = None
    uln: Quantity | None = None
    lln: Quantity | None = None
    molar_mass: Quantity | None = None
    codes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Definition:
    """A named derived value, e.g. creatinine clearance by Cockcroft-Gault."""

    name: str
    rule: RuleText
    span: Span
    description: str = ""
    unit: str | None = None
    unit_span: Span | None = None


@dataclass(frozen=True, slots=True)
class Criterion:
    """An inclusion or exclusion criterion: a rule, or an attestation no data can decide.

    A `draft` criterion (``draft: true``, e.g. imported from a registry record) may have
    neither yet; the checker reports every draft, so a protocol with one does not compile.
    """

    id: str
    kind: CriterionKind
    text: str
    span: Span
    rule: RuleText | None = None
    attestation: str | None = None
    note: str = ""
    draft: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    """One declared intent of an amendment: what changing a criterion, definition or data item
    is meant to do to the eligible population, and why.

    `editorial`: same meaning; `relaxed`: the eligible set may only grow; `tightened`: it may
    only shrink; `added` and `removed`: the target is new in this version, or gone from it.
    `span` is the target as written in the ``changes`` list.
    """

    target_kind: ChangeTargetKind
    target: str
    intent: ChangeIntent
    rationale: str
    span: Span

    @property
    def label(self) -> str:
        """The target as written: ``I2``, ``definition crcl`` or ``data ast``."""
        return (
            self.target if self.target_kind == "criterion" else f"{self.target_kind} {self.target}"
        )


@dataclass(frozen=True, slots=True)
class Metadata:
    """Who, what and which version; for an amendment, what it changes.

    `span` is the ``protocol`` key; the ``*_span`` fields are the values of those keys (None
    when the key is absent).
    """

    registry_id: str
    title: str
    version: str
    span: Span
    phase: str = ""
    sponsor: str = ""
    effective_date: str = ""
    amends: str | None = None
    changelog: tuple[str, ...] = ()
    illustrative: bool = False
    changes: tuple[Change, ...] = ()
    registry_id_span: Span | None = None
    version_span: Span | None = None
    amends_span: Span | None = None


@dataclass(frozen=True, slots=True)
class Name:
    """A name as written in the YAML file (e.g. the anchor of ``ends_before``)."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Schedule:
    """One dosing schedule as written: a drug given to an arm (see ``docs/dosing.md``).

    Texts that later stages parse (`dose`, `duration`, `start`, the tolerances) keep their
    source positions; `protocode.dosing` checks them against the data dictionary. Exactly
    one of `doses` and `duration` is set; `doses_span` locates `doses`.
    """

    id: str
    arm: str
    drug: str
    span: Span
    dose: RuleText
    route: Route
    frequency: str
    frequency_span: Span
    start: RuleText
    per: BodyMeasure | None = None
    codes: tuple[tuple[str, str], ...] = ()
    doses: int | None = None
    duration: RuleText | None = None
    ends_before: Name | None = None
    starts_after: Name | None = None
    dose_tolerance: RuleText | None = None
    time_tolerance: RuleText | None = None
    holds: int = 0
    doses_span: Span | None = None


@dataclass(frozen=True, slots=True)
class Phase:
    """A named phase of the study (e.g. the conditioning regimen), dated by rule texts.

    `start` and `end` are rule-language date expressions over anchors; `end` (the last day,
    inclusive) is optional. A schedule's ``ends_before`` / ``starts_after`` may name it.
    """

    id: str
    span: Span
    start: RuleText
    end: RuleText | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint as written (see ``docs/endpoints.md``); `protocode.endpoints` checks it.

    `origin` and `censor` are rule-language date expressions; `events` and `competing` name
    event data items (a composite event is the first of its items); `horizon` is a duration
    text (``1 year``, ``100 days``); `death` names the event item after which no other event
    may occur (None: the data item ``death`` when the dictionary has such an event item).
    """

    id: str
    name: str
    span: Span
    origin: RuleText
    events: tuple[Name, ...]
    censor: RuleText
    horizon: RuleText
    competing: tuple[Name, ...] = ()
    death: Name | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class ProportionEndpoint:
    """A proportion endpoint as written, e.g. MRD negativity at 1 year (``docs/endpoints.md``).

    A patient responds when the latest `assessment` within `window` of the horizon date meets
    `response`; a `failure` event (relapse, death) on or before the window closes makes the
    patient a non-responder; no usable assessment leaves the patient not evaluable.
    """

    id: str
    name: str
    span: Span
    origin: RuleText
    horizon: RuleText
    window: RuleText
    assessment: Name
    response: RuleText
    failure: tuple[Name, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class DerivedClause:
    """One alternative of a derived event: an observation item with a condition, an event item,
    or a grading table's grade reaching a level.

    `condition` is the comparison of the observation's value as written (``>= 5 %``); None for
    an event item. For a grade, `item` names the grading table and `at_least` the lowest
    grade that counts.
    """

    item: Name
    condition: RuleText | None = None
    at_least: RuleText | None = None


@dataclass(frozen=True, slots=True)
class TableInput:
    """One input column of a grading table: an observation item, or an aggregate of several
    (``max``/``min`` of their values, ``count`` of those meeting `where`)."""

    column: Name
    items: tuple[Name, ...]
    aggregate: Aggregate | None = None
    where: RuleText | None = None


@dataclass(frozen=True, slots=True)
class TableRow:
    """One row of a grading table: a condition per input column (absent: any value) and a grade.

    A cell is the condition as written (``>= 2``, ``between 1 and 2``) or a single value."""

    cells: tuple[tuple[Name, RuleText], ...]
    grade: RuleText
    span: Span


@dataclass(frozen=True, slots=True)
class GradingTable:
    """A decision table that grades an assessment (MAGIC acute GVHD, NIH chronic GVHD)."""

    id: str
    name: str
    span: Span
    hit: HitPolicy
    inputs: tuple[TableInput, ...]
    grades: tuple[RuleText, ...]
    rows: tuple[TableRow, ...]
    description: str = ""


@dataclass(frozen=True, slots=True)
class DerivedEvent:
    """An event derived from data (see ``docs/endpoints.md``): it occurs on the first date on
    which any of its alternatives holds; endpoints name it like an event item."""

    id: str
    span: Span
    when: tuple[DerivedClause, ...]
    description: str = ""


@dataclass(frozen=True, slots=True)
class ProtocolDoc:
    """A protocol version as loaded from YAML: structure validated, rules not yet parsed."""

    source: Source
    metadata: Metadata
    data: tuple[DataItem, ...]
    definitions: tuple[Definition, ...]
    criteria: tuple[Criterion, ...]
    dosing: tuple[Schedule, ...] = ()
    phases: tuple[Phase, ...] = ()
    endpoints: tuple[Endpoint | ProportionEndpoint, ...] = ()
    derived_events: tuple[DerivedEvent, ...] = ()
    grading: tuple[GradingTable, ...] = ()
