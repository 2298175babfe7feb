"""What the checker gives the backends: a protocol's sections checked and lowered to typed IR.

Every expression is an `ir.Expr`, never a compiled function: running one is a backend's job
(`protocode.backends.python.sections` compiles them once per compiled `Protocol`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from protocode.core.source import Span
from protocode.document.model import (
    DataItem,
    DerivedEvent,
    Endpoint,
    ProportionEndpoint,
    ProtocolDoc,
    Schedule,
)
from protocode.language import ir
from protocode.language.check.tables import CheckedTable
from protocode.language.library import add_months
from protocode.language.types import Type
from protocode.language.units import Unit


@dataclass(frozen=True, slots=True)
class CheckedCriterion:
    """A criterion with its rule lowered to IR (or an attestation name)."""

    id: str
    kind: Literal["inclusion", "exclusion"]
    text: str
    span: Span
    rule: ir.Expr | None
    attestation: str | None
    source: str


@dataclass(frozen=True, slots=True)
class Horizon:
    """A horizon: a whole number of days or calendar months after the origin."""

    amount: int
    months: bool
    text: str

    def date(self, origin: dt.date) -> dt.date:
        """The horizon's date for an origin (months clamp to the month's end)."""
        if self.months:
            return add_months(origin, self.amount)
        return origin + dt.timedelta(days=self.amount)


@dataclass(frozen=True, slots=True)
class CheckedClause:
    """One checked alternative of a derived event (or a proportion endpoint's response).

    For an observation item, `condition_rule` is the condition as the boolean rule
    ``latest ITEM <condition>``, which decides one observation when the item's series holds
    only it; for an event item it is None. For a grade, `item` is the grading table's id,
    `table` the table and `at_least` the rank of the lowest grade that counts.
    """

    item: str
    kind: Literal["observation", "event", "grade"]
    condition: str | None
    condition_rule: ir.Expr | None
    table: CheckedTable | None = None
    at_least: int = 0


@dataclass(frozen=True, slots=True)
class CheckedDerivedEvent:
    """A derived event whose alternatives name observation or event items of the dictionary."""

    event: DerivedEvent
    clauses: tuple[CheckedClause, ...]

    @property
    def id(self) -> str:
        """The derived event's id."""
        return self.event.id

    @property
    def items(self) -> tuple[str, ...]:
        """The data items the derived event reads, in order, without repeats."""
        return tuple(
            dict.fromkeys(
                item
                for c in self.clauses
                for item in (c.table.items if c.table is not None else (c.item,))
            )
        )


@dataclass(frozen=True, slots=True)
class CheckedEndpoint:
    """A time-to-event endpoint whose dates check and whose events are event items."""

    endpoint: Endpoint
    origin: ir.Expr
    censor: ir.Expr
    horizon: Horizon
    events: tuple[str, ...]
    competing: tuple[str, ...]
    death: str | None
    descriptions: dict[str, str]
    """Event item -> its description in words (its name when the dictionary has none)."""
    derived: Mapping[str, CheckedDerivedEvent] = field(default_factory=dict)
    """The derived events among `events` and `competing`, by id."""

    @property
    def id(self) -> str:
        """The endpoint's id."""
        return self.endpoint.id


@dataclass(frozen=True, slots=True)
class CheckedProportion:
    """A proportion endpoint whose origin checks and whose assessment is an observation item."""

    endpoint: ProportionEndpoint
    origin: ir.Expr
    horizon: Horizon
    window: int
    """Days on either side of the horizon date within which an assessment counts."""
    response: CheckedClause
    failure: tuple[str, ...]
    descriptions: dict[str, str]
    """Failure event -> its description in words."""
    derived: Mapping[str, CheckedDerivedEvent] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The endpoint's id."""
        return self.endpoint.id


AnyEndpoint = CheckedEndpoint | CheckedProportion
"""A checked endpoint of either kind."""


@dataclass(frozen=True, slots=True)
class Boundary:
    """What a schedule's ``ends_before`` or ``starts_after`` names, as a date expression.

    `name` is the anchor or phase as written; for a phase, `phase` is set and `date` is its
    start (``ends_before``) or its end, else its start (``starts_after``). `anchors` are the
    anchors the date reads; `offset` is (anchor, days) when the date is always a fixed
    number of days from one anchor.
    """

    name: str
    role: str
    date: ir.Expr
    anchors: tuple[str, ...]
    offset: tuple[str, int] | None
    phase: str | None = None
    label: str = ""
    """How messages name the boundary: the anchor, or the start or end of the phase."""


@dataclass(frozen=True, slots=True)
class CheckedSchedule:
    """A schedule whose every field was checked; what planning and compliance work from.

    `amount` and `unit` are the dose as written (``15`` and ``mg/kg``); `dose_unit` is the
    unit of one resolved dose (``mg``). `interval` is None for a single dose. `start` is the
    start date's expression over anchors.
    """

    schedule: Schedule
    amount: Fraction
    unit: Unit
    dose_unit: Unit
    count: int
    interval: dt.timedelta | None
    start: ir.Expr
    anchors: tuple[str, ...]
    dose_tolerance: Fraction
    time_tolerance: dt.timedelta
    before: Boundary | None = None
    after: Boundary | None = None

    @property
    def id(self) -> str:
        """The schedule id."""
        return self.schedule.id


@dataclass(frozen=True, slots=True)
class CheckedProtocol:
    """A protocol whose every section checked; input to the backends.

    `definitions` lists each definition after the ones it uses, so a backend that handles
    them in this order never has to recurse from one definition into another. Every rule
    nests at most `MAX_NESTING` levels deep counting the definitions it uses. The optional
    sections (grading tables, derived events, endpoints, dosing schedules) are empty when
    the protocol has none.
    """

    doc: ProtocolDoc
    items: dict[str, DataItem]
    item_types: dict[str, Type]
    definitions: dict[str, ir.Expr]
    criteria: tuple[CheckedCriterion, ...]
    attestations: tuple[str, ...] = field(default=())
    tables: Mapping[str, CheckedTable] = field(default_factory=dict)
    """The grading tables, by id."""
    derived_events: Mapping[str, CheckedDerivedEvent] = field(default_factory=dict)
    """The derived events, by id."""
    endpoints: tuple[AnyEndpoint, ...] = ()
    schedules: tuple[CheckedSchedule, ...] = ()

    def expressions(self) -> tuple[ir.Expr, ...]:
        """Every expression of the optional sections, for a backend to compile once."""
        out: list[ir.Expr] = []
        for d in self.derived_events.values():
            out += [c.condition_rule for c in d.clauses if c.condition_rule is not None]
        for e in self.endpoints:
            if isinstance(e, CheckedEndpoint):
                out += [e.origin, e.censor]
            else:
                out.append(e.origin)
                if e.response.condition_rule is not None:
                    out.append(e.response.condition_rule)
        for s in self.schedules:
            out.append(s.start)
            out += [b.date for b in (s.before, s.after) if b is not None]
        return tuple(out)
