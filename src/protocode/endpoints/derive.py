"""Per-patient derivation of time-to-event endpoints: one ADaM-like row per patient and endpoint.

For each endpoint, the first dated occurrence on or after the origin among its events and its
competing events decides the status. On one day, death comes last (a patient who relapses and
dies the same day relapsed first, so that death is not a non-relapse death), and otherwise the
endpoint's events come before its competing events; every endpoint orders a day alike, so
cumulative incidences of complementary endpoints (relapse, non-relapse mortality) add up with
the event-free probability to 1. Follow-up past the horizon is censored at the horizon; an
event exactly at the horizon counts. Inconsistent timelines are per-patient errors
(`RecordError`), never fixed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from protocode.backends.python import SectionFunctions
from protocode.core.errors import Diagnostic, RecordError
from protocode.endpoints.definitions import endpoints
from protocode.language.check import (
    AnyEndpoint,
    CheckedClause,
    CheckedDerivedEvent,
    CheckedProportion,
)
from protocode.records import Observation, Record
from protocode.screening import Protocol

Status = Literal["event", "competing", "censored", "responder", "non_responder", "not_evaluable"]


@dataclass(frozen=True, slots=True)
class EndpointRow:
    """One patient's value of one time-to-event endpoint (the shape of an ADaM ADTTE row).

    `time` is whole days from `origin` to `date`; `censored` is 0 for an event, 1 when
    censored and 2 for a competing event (None for a proportion's row, whose status is
    responder, non_responder or not_evaluable). `source` is the item that decided the row
    (None when censored) and `description` says what happened in words.
    """

    id: str
    endpoint: str
    name: str
    origin: dt.date
    date: dt.date
    time: int
    status: Status
    description: str
    source: str | None

    @property
    def censored(self) -> int | None:
        return {"event": 0, "censored": 1, "competing": 2}.get(self.status)

    def to_json(self) -> dict[str, Any]:
        """The row as JSON-ready values (dates as ISO text), in the ADaM spirit."""
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "name": self.name,
            "origin": self.origin.isoformat(),
            "date": self.date.isoformat(),
            "time": self.time,
            "status": self.status,
            "censored": self.censored,
            "description": self.description,
            "source": self.source,
        }


class _Underivable(Exception):  # noqa: N818 - carries the per-record message
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message


def _record(protocol: Protocol, data: Record | Mapping[str, Any]) -> Record:
    return data if isinstance(data, Record) else protocol.record(data)


def derive(protocol: Protocol, data: Record | Mapping[str, Any]) -> list[EndpointRow]:
    """One row per endpoint of the protocol for one patient, in the protocol's order.

    `data` is a `Record` or a record object. A patient whose timeline is inconsistent or
    incomplete raises `RecordError` with one diagnostic per problem, naming the endpoints it
    affects ("PFS, OS: death on … is before the origin …").
    """
    record = _record(protocol, data)
    # Several endpoints read the same derived event (relapse): find its date once.
    firsts: Firsts = {}
    rows: list[EndpointRow] = []
    problems: dict[tuple[str, str], list[str]] = {}
    for e in endpoints(protocol):
        try:
            rows.append(derive_endpoint(protocol.sections, e, record, firsts))
        except _Underivable as exc:
            problems.setdefault((exc.field, exc.message), []).append(e.id)
    if problems:
        raise RecordError(
            [
                Diagnostic(
                    "endpoint", f"{', '.join(ids)}: {message}", record_id=record.id, field=field
                )
                for (field, message), ids in problems.items()
            ]
        )
    return rows


def derive_many(
    protocol: Protocol, records: Iterable[Record | Mapping[str, Any]]
) -> tuple[list[EndpointRow], list[Diagnostic]]:
    """Rows of every patient whose endpoints can be derived, and the others' problems."""
    rows: list[EndpointRow] = []
    problems: list[Diagnostic] = []
    for data in records:
        try:
            rows.extend(derive(protocol, data))
        except RecordError as exc:
            problems.extend(exc.diagnostics)
    return rows, problems


Firsts = dict[tuple[str, dt.date], dt.date | None]
"""The first date of each derived event from an origin, for one record."""


def _dates(
    sections: SectionFunctions,
    e: AnyEndpoint,
    record: Record,
    item: str,
    *,
    origin: dt.date,
    firsts: Firsts,
) -> list[dt.date]:
    derived = e.derived.get(item)
    if derived is not None:
        key = (item, origin)
        if key not in firsts:
            firsts[key] = _first(sections, e, derived, record, origin)
        first = firsts[key]
        return [] if first is None else [first]
    occurrences = record.events.get(item)
    if occurrences is None:
        message = (
            f"event '{item}' is missing from the record (unknown history); "
            "give [] when it did not occur"
        )
        raise _Underivable(item, message)
    out: list[dt.date] = []
    for o in occurrences:
        if o.date is None:
            raise _Underivable(item, f"an occurrence of '{item}' is undated")
        out.append(o.date)
    return out


def _first(
    sections: SectionFunctions,
    e: AnyEndpoint,
    d: CheckedDerivedEvent,
    record: Record,
    origin: dt.date,
) -> dt.date | None:
    """The first date on or after the origin on which the derived event holds (None: never).

    A date is only known when no undated value, and no value whose condition cannot be
    decided, could come before it.
    """
    first: dt.date | None = None
    doubts: list[tuple[dt.date | None, str]] = []  # values that may hold, on unknown dates
    for clause in d.clauses:
        if clause.kind == "grade":
            # Dated assessments come in date order: grading stops at the first that reaches
            # the level, or once past an earlier alternative's date.
            for date, holds, why in _graded(e, d, clause, record, origin):
                if date is not None and first is not None and date > first:
                    break
                if holds is None:
                    doubts.append((date, why))
                elif holds and date is not None:
                    first = date
                    break
            continue
        item = clause.item
        if clause.condition_rule is None:
            occurrences = record.events.get(item)
            if occurrences is None:
                message = (
                    f"derived event '{d.id}' is unknown: event '{item}' is missing"
                    " from the record (unknown history); give [] when it did not occur"
                )
                raise _Underivable(item, message)
            for o in occurrences:
                if o.date is None:
                    message = f"{d.id}: an occurrence of '{item}' is undated"
                    raise _Underivable(item, message)
                if o.date >= origin and (first is None or o.date < first):
                    first = o.date
            continue
        observations = _series(e, d, record, item)
        for obs in observations:
            if obs.date is not None and obs.date < origin:
                continue
            holds = sections.holds(clause.condition_rule, item, obs)
            if holds is None:
                when = "undated" if obs.date is None else f"on {obs.date}"
                doubts.append((obs.date, f"'{clause.condition}' is unknown for '{item}' {when}"))
            elif holds and obs.date is None:
                doubts.append((None, f"an undated '{item}' satisfies '{clause.condition}'"))
            elif holds and obs.date is not None and (first is None or obs.date < first):
                first = obs.date
    for date, why in doubts:
        if date is None or first is None or date <= first:
            message = f"the date of derived event '{d.id}' is unknown: {why}"
            raise _Underivable(d.id, message)
    return first


def _series(
    e: AnyEndpoint, d: CheckedDerivedEvent, record: Record, item: str
) -> tuple[Observation, ...]:
    observations = record.series.get(item)
    if observations is None:
        message = (
            f"derived event '{d.id}' is unknown: observation '{item}' is missing"
            " from the record; give [] when there is none"
        )
        raise _Underivable(item, message)
    return observations


def _graded(
    e: AnyEndpoint, d: CheckedDerivedEvent, clause: CheckedClause, record: Record, origin: dt.date
) -> Iterator[tuple[dt.date | None, bool | None, str]]:
    """Each assessment date on or after the origin, whether the grade reaches the level there
    (None: unknown), and why it is unknown.

    An assessment is the table's items observed on one date; an item not observed that day,
    or observed twice with different values, is unknown, and the grade is decided only when
    every value it could have gives the same answer.
    """
    table = clause.table
    assert table is not None
    # date -> item -> its value that day; None when two readings that day disagree.
    by_date: dict[dt.date, dict[str, object]] = {}
    for item in table.items:
        for obs in _series(e, d, record, item):
            if obs.date is None:
                yield None, None, f"an undated '{item}' may change the {table.id} grade"
            elif obs.date >= origin:
                day = by_date.get(obs.date)
                if day is None:
                    by_date[obs.date] = {item: obs.value}
                elif item not in day:
                    day[item] = obs.value
                elif day[item] != obs.value:
                    day[item] = None
    for date in sorted(by_date):
        values = by_date[date]
        grades = table.grade(values)
        reached = {table.rank(g) >= clause.at_least for g in grades}
        if len(reached) == 1:
            yield date, reached.pop(), ""
            continue
        unknown = [i for i in table.items if values.get(i) is None]
        shown = ", ".join(sorted(grades, key=table.rank))
        why = (
            f"the {table.id} grade on {date} may be {shown} "
            f"({', '.join(unknown)} not known that day)"
        )
        yield date, None, why


def derive_endpoint(
    sections: SectionFunctions, e: AnyEndpoint, record: Record, firsts: Firsts | None = None
) -> EndpointRow:
    """One patient's row of one endpoint; `_Underivable` when the timeline does not allow it.

    `sections` evaluates the protocol's dates and conditions; `firsts` caches derived events'
    dates across the endpoints of one record.
    """
    firsts = {} if firsts is None else firsts
    if isinstance(e, CheckedProportion):
        return derive_proportion(sections, e, record, firsts)
    origin = sections.date(e.origin, record)
    if origin is None:
        raise _Underivable(
            e.endpoint.origin.text, f"the origin ({e.endpoint.origin.text}) is unknown"
        )
    items = dict.fromkeys((*e.events, *e.competing, *((e.death,) if e.death else ())))
    dates = {
        item: _dates(sections, e, record, item, origin=origin, firsts=firsts) for item in items
    }
    for item, ds in dates.items():
        for d in ds:
            if d < origin:
                origin_text = e.endpoint.origin.text
                message = f"{item} on {d} is before the origin {origin} ({origin_text})"
                raise _Underivable(item, message)
    if e.death is not None:
        deaths = dates[e.death]
        if len(deaths) > 1:
            shown = ", ".join(str(d) for d in deaths)
            raise _Underivable(e.death, f"'{e.death}' occurs more than once ({shown})")
        if deaths:
            for item, ds in dates.items():
                late = [d for d in ds if d > deaths[0]]
                if late:
                    message = f"{item} on {late[0]} is after {e.death} on {deaths[0]}"
                    raise _Underivable(item, message)
    censor = sections.date(e.censor, record)
    censor_text = e.endpoint.censor.text
    if censor is not None and censor < origin:
        message = f"the censoring date {censor} ({censor_text}) is before the origin {origin}"
        raise _Underivable(censor_text, message)
    if censor is not None:
        for item, ds in dates.items():
            late = [d for d in ds if d > censor]
            if late:
                message = (
                    f"{item} on {late[0]} is after the censoring date {censor} ({censor_text})"
                )
                raise _Underivable(item, message)
    horizon = e.horizon.date(origin)
    first: tuple[dt.date, bool, int, str] | None = None
    for rank, group in ((0, e.events), (1, e.competing)):
        for item in group:
            for d in dates[item]:
                key = (d, item == e.death, rank, item)
                if first is None or key < first:
                    first = key
    name = e.endpoint.name
    if first is not None and first[0] <= horizon:
        d, _, rank, item = first
        status: Status = "event" if rank == 0 else "competing"
        return EndpointRow(
            record.id, e.id, name, origin, d, (d - origin).days, status, e.descriptions[item], item
        )
    if censor is None and e.death is not None and dates[e.death]:
        # Without a follow-up date, a known death ends the follow-up.
        censor, censor_text = dates[e.death][0], e.death
    if censor is None:
        message = f"the censoring date ({censor_text}) is unknown and no event decides the endpoint"
        raise _Underivable(censor_text, message)
    if censor >= horizon:
        description = f"censored at the horizon ({e.horizon.text})"
        return EndpointRow(
            record.id,
            e.id,
            name,
            origin,
            horizon,
            (horizon - origin).days,
            "censored",
            description,
            None,
        )
    description = f"censored at {censor_text}"
    return EndpointRow(
        record.id, e.id, name, origin, censor, (censor - origin).days, "censored", description, None
    )


def derive_proportion(
    sections: SectionFunctions,
    e: CheckedProportion,
    record: Record,
    firsts: Firsts | None = None,
) -> EndpointRow:
    """One patient's row of a proportion endpoint (responder, non-responder, not evaluable).

    A failure event on or before the window closes makes a non-responder, whatever the
    assessments say; otherwise the latest assessment in the window decides, and none (or one
    whose response is unknown) leaves the patient not evaluable.
    """
    origin = sections.date(e.origin, record)
    if origin is None:
        raise _Underivable(
            e.endpoint.origin.text, f"the origin ({e.endpoint.origin.text}) is unknown"
        )
    horizon = e.horizon.date(origin)
    window = dt.timedelta(days=e.window)
    start, end = horizon - window, horizon + window
    name = e.endpoint.name

    def row(date: dt.date, status: Status, description: str, source: str | None) -> EndpointRow:
        return EndpointRow(
            record.id, e.id, name, origin, date, (date - origin).days, status, description, source
        )

    failures: list[tuple[dt.date, str]] = []
    for item in e.failure:
        for date in _dates(
            sections, e, record, item, origin=origin, firsts={} if firsts is None else firsts
        ):
            if date < origin:
                origin_text = e.endpoint.origin.text
                message = f"{item} on {date} is before the origin {origin} ({origin_text})"
                raise _Underivable(item, message)
            if date <= end:
                failures.append((date, item))
    if failures:
        # Death comes last on its day, as in the time-to-event endpoints.
        date, item = min(failures, key=lambda f: (f[0], f[1] == "death", e.failure.index(f[1])))
        description = f"{e.descriptions[item]} on {date}, before the assessment window closed"
        return row(date, "non_responder", description, item)
    item = e.response.item
    observations = record.series.get(item)
    if observations is None:
        message = f"assessment '{item}' is missing from the record; give [] when none"
        raise _Underivable(item, message)
    if any(o.date is None for o in observations):
        raise _Underivable(item, f"an assessment of '{item}' is undated")
    within = [o for o in observations if o.date is not None and start <= o.date <= end]
    if not within:
        description = f"no assessment of '{item}' between {start} and {end}"
        return row(horizon, "not_evaluable", description, None)
    last = max(o.date for o in within if o.date is not None)
    condition_rule = e.response.condition_rule
    assert condition_rule is not None
    latest = [o for o in within if o.date == last]
    answers = {sections.holds(condition_rule, item, o) for o in latest}
    shown = " and ".join(sorted({_value_text(o.value) for o in latest}))
    condition = e.response.condition
    if answers == {True}:
        return row(last, "responder", f"{item} {shown} on {last} (response: {condition})", item)
    if answers == {False}:
        description = f"{item} {shown} on {last} (response: {condition})"
        return row(last, "non_responder", description, item)
    why = "disagree" if answers >= {True, False} else "cannot be decided"
    description = f"the assessments of '{item}' on {last} {why}"
    return row(last, "not_evaluable", description, item)


def _value_text(value: object) -> str:
    if isinstance(value, str):
        return value
    text = str(value)
    numerator, _, denominator = text.partition("/")
    return text if not denominator else str(int(numerator) / int(denominator))
