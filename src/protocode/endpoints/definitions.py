"""Endpoint definitions in a protocol, checked against its data dictionary (`check_endpoints`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from protocode.backends.python.closures import Env, compile_expression
from protocode.backends.python.runtime import shift_date
from protocode.core.errors import CheckError, Diagnostic, did_you_mean, unique
from protocode.core.exact import too_long
from protocode.document.model import (
    DataItem,
    DerivedClause,
    DerivedEvent,
    Endpoint,
    Name,
    ProportionEndpoint,
    RuleText,
)
from protocode.endpoints.grading import CheckedTable, check_tables
from protocode.language import ir
from protocode.language.check.checker import CheckedProtocol, check_expression
from protocode.language.types import BOOL, DATE
from protocode.records import Observation, Record
from protocode.screening import Protocol

_HORIZON = re.compile(r"([0-9]+) +(day|days|week|weeks|month|months|year|years)")
_DAYS_PER = {"day": 1, "week": 7}
_MONTHS_PER = {"month": 1, "year": 12}
# Dates move at most 200 years, as in rules: records hold dates from 1800 to 2200.
_MAX_DAYS, _MAX_MONTHS = 200 * 366, 200 * 12


@dataclass(frozen=True, slots=True)
class Horizon:
    """A horizon: a whole number of days or calendar months after the origin."""

    amount: int
    months: bool
    text: str

    def date(self, origin: dt.date) -> dt.date:
        """The horizon's date for an origin (months clamp to the month's end)."""
        shifted = shift_date(origin, self.amount, self.months)
        assert shifted is not None
        return shifted


@dataclass(frozen=True, slots=True)
class CheckedClause:
    """One checked alternative of a derived event.

    For an observation item, `test` decides whether one observation satisfies the condition
    (True, False or None when unknown); for an event item it is None. For a grade, `item` is
    the grading table's id, `table` the table and `at_least` the rank of the lowest grade that
    counts.
    """

    item: str
    kind: Literal["observation", "event", "grade"]
    condition: str | None
    test: Callable[[Observation], bool | None] | None
    table: CheckedTable | None = None
    at_least: int = 0


@dataclass(frozen=True, slots=True)
class CheckedDerivedEvent:
    """A derived event whose alternatives name observation or event items of the dictionary."""

    event: DerivedEvent
    clauses: tuple[CheckedClause, ...]

    @property
    def id(self) -> str:
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
    """A time-to-event endpoint whose dates compile and whose events are event items."""

    endpoint: Endpoint
    origin_fn: Callable[[Env], Any]
    censor_fn: Callable[[Env], Any]
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
        return self.endpoint.id

    def origin(self, record: Record) -> dt.date | None:
        """The origin date of a record, or None when it is unknown."""
        value = self.origin_fn(Env(record))
        return value if isinstance(value, dt.date) else None

    def censor(self, record: Record) -> dt.date | None:
        """The censoring date of a record, or None when it is unknown."""
        value = self.censor_fn(Env(record))
        return value if isinstance(value, dt.date) else None


@dataclass(frozen=True, slots=True)
class CheckedProportion:
    """A proportion endpoint whose origin compiles and whose assessment is an observation item."""

    endpoint: ProportionEndpoint
    origin_fn: Callable[[Env], Any]
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
        return self.endpoint.id

    def origin(self, record: Record) -> dt.date | None:
        """The origin date of a record, or None when it is unknown."""
        value = self.origin_fn(Env(record))
        return value if isinstance(value, dt.date) else None


AnyEndpoint = CheckedEndpoint | CheckedProportion
"""A checked endpoint of either kind."""


class _Rejected(Exception):  # noqa: N818 - a signal: the diagnostic is already recorded
    """This part of an endpoint has an error."""


class _EndpointChecker:
    def __init__(self, checked: CheckedProtocol) -> None:
        self.checked = checked
        self.items: dict[str, DataItem] = dict(checked.items)
        self.diagnostics: list[Diagnostic] = []
        self.derived: dict[str, CheckedDerivedEvent] = {}
        self.derived_ids = {d.id for d in checked.doc.derived_events}
        self.tables, problems = check_tables(checked.doc.grading, self.items)
        self.diagnostics.extend(problems)
        self.table_ids = {t.id for t in checked.doc.grading}

    def fail(self, code: str, message: str, name: Name | RuleText) -> _Rejected:
        span = name.span if isinstance(name, Name) else name.whole
        self.diagnostics.append(Diagnostic(code, message, span))
        return _Rejected()

    def date(self, text: RuleText, what: str) -> Callable[[Env], Any]:
        try:
            node = check_expression(self.checked, text)
        except CheckError as exc:
            self.diagnostics.extend(exc.diagnostics)
            raise _Rejected() from None
        if node.type != DATE:
            message = f"an endpoint's {what} is a date, but this is a {node.type}"
            self.diagnostics.append(Diagnostic("type", message, node.span))
            raise _Rejected()
        return compile_expression(self.checked, node)

    def horizon(self, text: RuleText) -> Horizon:
        match = _HORIZON.fullmatch(text.text.strip())
        if match is None:
            message = (
                f"a horizon is a whole number of days, weeks, months or years "
                f"(e.g. '1 year', '100 days'), not '{text.text}'"
            )
            raise self.fail("horizon", message, text)
        problem = too_long(match[1])
        if problem is not None:
            raise self.fail("number", problem, text)
        amount, word = int(match[1]), match[2].rstrip("s")
        if amount == 0:
            raise self.fail("horizon", "a horizon must be longer than 0 days", text)
        months = word in _MONTHS_PER
        amount *= _MONTHS_PER[word] if months else _DAYS_PER[word]
        if amount > (_MAX_MONTHS if months else _MAX_DAYS):
            raise self.fail("horizon", "a horizon is at most 200 years after the origin", text)
        return Horizon(amount, months, text.text.strip())

    def window(self, text: RuleText) -> int:
        horizon = self.horizon(text)
        if horizon.months:
            message = (
                f"an assessment window is a whole number of days or weeks (e.g. '30 days'), "
                f"not '{text.text}': months differ in length"
            )
            raise self.fail("horizon", message, text)
        return horizon.amount

    def assessment(self, name: Name, response: RuleText) -> CheckedClause:
        item = self.items.get(name.text)
        if item is None:
            choices = [n for n, i in self.items.items() if i.kind == "observation"]
            hint = did_you_mean(name.text, choices)
            raise self.fail("name", f"unknown observation item '{name.text}'{hint}", name)
        if item.kind != "observation":
            message = (
                f"an assessment is an observation item, but '{name.text}' is "
                f"{'an' if item.kind[0] in 'aeiou' else 'a'} {item.kind}"
            )
            raise self.fail("kind", message, name)
        return self.condition(name.text, response)

    def proportion(self, e: ProportionEndpoint) -> CheckedProportion | None:
        parts: list[Any] = []
        steps: tuple[Callable[[], Any], ...] = (
            lambda: self.date(e.origin, "origin"),
            lambda: self.horizon(e.horizon),
            lambda: self.window(e.window),
            lambda: self.assessment(e.assessment, e.response),
            lambda: self.names(e.failure, "failure events"),
        )
        for step in steps:
            try:
                parts.append(step())
            except _Rejected:
                parts.append(None)
        if any(p is None for p in parts):
            return None
        origin_fn, horizon, window, response, failure = parts
        descriptions = {n: self.description(n) for n in failure}
        derived = {n: self.derived[n] for n in failure if n in self.derived}
        return CheckedProportion(
            e, origin_fn, horizon, window, response, failure, descriptions, derived
        )

    def event(self, name: Name, role: str, derived: bool = True) -> str:
        if derived and name.text in self.derived_ids:
            if name.text not in self.derived:
                raise _Rejected()  # the derived event's own errors are already recorded
            return name.text
        item = self.items.get(name.text)
        if item is None:
            choices = [n for n, i in self.items.items() if i.kind == "event"]
            hint = did_you_mean(name.text, [*choices, *(self.derived_ids if derived else ())])
            what = "event item or derived event" if derived and self.derived_ids else "event item"
            message = f"unknown {what} '{name.text}' in {role}{hint}"
            raise self.fail("name", message, name)
        if item.kind != "event":
            message = (
                f"{role} name event items, but '{name.text}' is "
                f"{'an' if item.kind[0] in 'aeiou' else 'a'} {item.kind}; "
                "declare it with 'kind: event'"
            )
            raise self.fail("kind", message, name)
        return name.text

    def names(self, names: tuple[Name, ...], role: str) -> tuple[str, ...]:
        out: list[str] = []
        for name in names:
            try:
                out.append(self.event(name, role))
            except _Rejected:
                continue
        if len(out) < len(names):
            raise _Rejected()
        return tuple(out)

    def endpoint(self, e: Endpoint) -> CheckedEndpoint | None:
        parts: list[Any] = []
        steps: tuple[Callable[[], Any], ...] = (
            lambda: self.date(e.origin, "origin"),
            lambda: self.date(e.censor, "censoring date"),
            lambda: self.horizon(e.horizon),
            lambda: self.names(e.events, "events"),
            lambda: self.names(e.competing, "competing events"),
            lambda: self.death(e),
        )
        for step in steps:
            try:
                parts.append(step())
            except _Rejected:
                parts.append(None)
        if any(p is None for p in parts[:5]) or (e.death is not None and parts[5] is None):
            return None
        origin_fn, censor_fn, horizon, events, competing, death = parts
        both = [n for n in e.competing if n.text in events]
        if both:
            message = f"'{both[0].text}' is both an event and a competing event of {e.id}"
            self.fail("endpoint", message, both[0])
            return None
        descriptions = {n: self.description(n) for n in (*events, *competing)}
        derived = {n: self.derived[n] for n in (*events, *competing) if n in self.derived}
        return CheckedEndpoint(
            e, origin_fn, censor_fn, horizon, events, competing, death, descriptions, derived
        )

    def description(self, name: str) -> str:
        if name in self.derived:
            return _headline(self.derived[name].event.description) or name
        return _headline(self.items[name].description) or name

    def derived_event(self, d: DerivedEvent) -> None:
        if d.id in self.items:
            message = f"derived event '{d.id}' has the name of a data item; rename one of them"
            self.diagnostics.append(Diagnostic("name", message, d.span))
            return
        clauses: list[CheckedClause] = []
        for clause in d.when:
            try:
                clauses.append(self.clause(clause))
            except _Rejected:
                continue
        if len(clauses) == len(d.when):
            self.derived[d.id] = CheckedDerivedEvent(d, tuple(clauses))

    def grade(self, clause: DerivedClause) -> CheckedClause:
        name, at_least = clause.item, clause.at_least
        assert at_least is not None
        table = self.tables.get(name.text)
        if table is None:
            if name.text in self.table_ids:
                raise _Rejected()  # the table's own errors are already recorded
            hint = did_you_mean(name.text, sorted(self.table_ids))
            raise self.fail("name", f"unknown grading table '{name.text}'{hint}", name)
        level = at_least.text.strip()
        if level not in table.grades:
            hint = did_you_mean(level, list(table.grades))
            grades = ", ".join(table.grades)
            message = f"'{level}' is not a grade of table {table.id} ({grades}){hint}"
            raise self.fail("grading", message, at_least)
        return CheckedClause(table.id, "grade", f">= {level}", None, table, table.rank(level))

    def clause(self, clause: DerivedClause) -> CheckedClause:
        if clause.at_least is not None:
            return self.grade(clause)
        name = clause.item
        item = self.items.get(name.text)
        if item is None:
            choices = [n for n, i in self.items.items() if i.kind in ("observation", "event")]
            hint = did_you_mean(name.text, choices)
            message = f"unknown observation or event item '{name.text}' in a derived event{hint}"
            raise self.fail("name", message, name)
        if item.kind == "event":
            if clause.condition is not None:
                message = (
                    f"'{name.text}' is an event item: its occurrence is the event, "
                    "so it takes no condition"
                )
                raise self.fail("condition", message, clause.condition)
            return CheckedClause(name.text, "event", None, None)
        if item.kind != "observation":
            message = (
                f"a derived event reads observation or event items, but '{name.text}' is "
                f"{'an' if item.kind[0] in 'aeiou' else 'a'} {item.kind}"
            )
            raise self.fail("kind", message, name)
        if clause.condition is None:
            message = (
                f"'{name.text}' is an observation item: give a condition on its value, "
                'e.g. condition: ">= 5 %"'
            )
            raise self.fail("condition", message, name)
        return self.condition(name.text, clause.condition)

    def condition(self, item: str, condition: RuleText) -> CheckedClause:
        # The condition compares the observation's value: check `latest ITEM <condition>` over
        # a series holding only that observation, so types and units are the rule language's.
        prefix = f"latest {item} "
        start = condition.offsets[0]
        text = RuleText(
            prefix + condition.text,
            condition.source,
            (start,) * len(prefix) + condition.offsets,
        )
        try:
            node = check_expression(self.checked, text)
        except CheckError as exc:
            self.diagnostics.extend(exc.diagnostics)
            raise _Rejected() from None
        reads = list(_reads(node))
        own = [r for r in reads if isinstance(r, ir.Select) and r.item == item and not r.window]
        if (
            node.type != BOOL
            or not isinstance(node, ir.Compare | ir.RefCompare | ir.Member)
            or len(own) != 1
            or len(reads) != 1
        ):
            message = (
                f"a condition compares the value of '{item}' with a constant "
                f"(e.g. '>= 5 %', '== \"present\"', 'in {{a, b}}'), not '{condition.text}'"
            )
            raise self.fail("condition", message, condition)
        fn = compile_expression(self.checked, node)

        def test(observation: Observation) -> bool | None:
            if observation.date is None:
                # `latest` of one undated value is unknown; the value alone decides here.
                observation = dataclasses.replace(observation, date=dt.date(2000, 1, 1))
            value = fn(Env(Record("", {}, {item: (observation,)}, {}, {})))
            return value if isinstance(value, bool) else None

        return CheckedClause(item, "observation", condition.text.strip(), test)

    def death(self, e: Endpoint) -> str | None:
        if e.death is not None:
            return self.event(e.death, "death", derived=False)
        item = self.items.get("death")
        return "death" if item is not None and item.kind == "event" else None


def check_endpoints(checked: CheckedProtocol) -> tuple[AnyEndpoint, ...]:
    """Check every endpoint, derived event and grading table of a checked protocol; raise one
    `CheckError` with all problems."""
    checker = _EndpointChecker(checked)
    for d in checked.doc.derived_events:
        checker.derived_event(d)
    out = tuple(
        checker.proportion(e) if isinstance(e, ProportionEndpoint) else checker.endpoint(e)
        for e in checked.doc.endpoints
    )
    if checker.diagnostics:
        raise CheckError(unique(checker.diagnostics))
    return tuple(e for e in out if e is not None)


def _headline(description: str) -> str:
    """What an event is called in a derived row: its description up to a colon or the end of
    its first sentence ("Disease recurrence: blasts reappear ..." is a "Disease recurrence")."""
    text = " ".join(description.split())
    for end in (": ", ". "):
        text = text.split(end, 1)[0]
    return text.rstrip(".")


def _reads(node: Any) -> Iterator[Any]:
    """The nodes of an IR expression that read data (items, definitions, events)."""
    if isinstance(node, ir.Fact | ir.DefRef | ir.Select | ir.Events):
        yield node
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            children = value if isinstance(value, tuple) else (value,)
            for child in children:
                if dataclasses.is_dataclass(child) and not isinstance(child, type):
                    yield from _reads(child)


_ENDPOINTS: dict[int, tuple[Protocol, tuple[AnyEndpoint, ...]]] = {}


def endpoints(protocol: Protocol) -> tuple[AnyEndpoint, ...]:
    """The protocol's checked endpoints (checked once per protocol object)."""
    cached = _ENDPOINTS.get(id(protocol))
    if cached is None or cached[0] is not protocol:
        cached = _ENDPOINTS[id(protocol)] = (protocol, check_endpoints(protocol.checked))
    return cached[1]
