"""Per-patient derivation of time-to-event endpoints: one ADaM-like row per patient and endpoint.

For each endpoint, the first dated occurrence on or after the origin among its events and its
competing events decides the status; an event and a competing event on the same day count as
the event. Follow-up past the horizon is censored at the horizon; an event exactly at the
horizon counts. Inconsistent timelines are per-patient errors (`RecordError`), never fixed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from protocode.endpoints.definitions import CheckedDerivedEvent, CheckedEndpoint, endpoints
from protocode.errors import Diagnostic, RecordError
from protocode.records import Record
from protocode.screen import Protocol

Status = Literal["event", "competing", "censored"]


@dataclass(frozen=True, slots=True)
class EndpointRow:
    """One patient's value of one time-to-event endpoint (the shape of an ADaM ADTTE row).

    `time` is whole days from `origin` to `date`; `censored` is 0 for an event, 1 when
    censored and 2 for a competing event. `source` is the event item that decided the row
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
    def censored(self) -> int:
        return {"event": 0, "censored": 1, "competing": 2}[self.status]

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
    incomplete for an endpoint raises `RecordError` with one diagnostic per such endpoint.
    """
    record = _record(protocol, data)
    rows: list[EndpointRow] = []
    problems: list[Diagnostic] = []
    for e in endpoints(protocol):
        try:
            rows.append(derive_endpoint(e, record))
        except _Underivable as exc:
            problems.append(
                Diagnostic("endpoint", exc.message, record_id=record.id, field=exc.field)
            )
    if problems:
        raise RecordError(problems)
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


def _dates(e: CheckedEndpoint, record: Record, item: str, origin: dt.date) -> list[dt.date]:
    derived = e.derived.get(item)
    if derived is not None:
        first = _first(e, derived, record, origin)
        return [] if first is None else [first]
    occurrences = record.events.get(item)
    if occurrences is None:
        message = (
            f"{e.id}: event '{item}' is missing from the record (unknown history); "
            "give [] when it did not occur"
        )
        raise _Underivable(item, message)
    out: list[dt.date] = []
    for o in occurrences:
        if o.date is None:
            raise _Underivable(item, f"{e.id}: an occurrence of '{item}' is undated")
        out.append(o.date)
    return out


def _first(
    e: CheckedEndpoint, d: CheckedDerivedEvent, record: Record, origin: dt.date
) -> dt.date | None:
    """The first date on or after the origin on which the derived event holds (None: never).

    A date is only known when no undated value, and no value whose condition cannot be
    decided, could come before it.
    """
    first: dt.date | None = None
    doubts: list[tuple[dt.date | None, str]] = []  # values that may hold, on unknown dates
    for clause in d.clauses:
        item = clause.item
        if clause.test is None:
            occurrences = record.events.get(item)
            if occurrences is None:
                message = (
                    f"{e.id}: derived event '{d.id}' is unknown: event '{item}' is missing"
                    " from the record (unknown history); give [] when it did not occur"
                )
                raise _Underivable(item, message)
            for o in occurrences:
                if o.date is None:
                    message = f"{e.id}: {d.id}: an occurrence of '{item}' is undated"
                    raise _Underivable(item, message)
                if o.date >= origin and (first is None or o.date < first):
                    first = o.date
            continue
        observations = record.series.get(item)
        if observations is None:
            message = (
                f"{e.id}: derived event '{d.id}' is unknown: observation '{item}' is missing"
                " from the record; give [] when there is none"
            )
            raise _Underivable(item, message)
        for obs in observations:
            if obs.date is not None and obs.date < origin:
                continue
            holds = clause.test(obs)
            if holds is None:
                when = "undated" if obs.date is None else f"on {obs.date}"
                doubts.append((obs.date, f"'{clause.condition}' is unknown for '{item}' {when}"))
            elif holds and obs.date is None:
                doubts.append((None, f"an undated '{item}' satisfies '{clause.condition}'"))
            elif holds and obs.date is not None and (first is None or obs.date < first):
                first = obs.date
    for date, why in doubts:
        if date is None or first is None or date <= first:
            message = f"{e.id}: the date of derived event '{d.id}' is unknown: {why}"
            raise _Underivable(d.id, message)
    return first


def derive_endpoint(e: CheckedEndpoint, record: Record) -> EndpointRow:
    """One patient's row of one endpoint; `_Underivable` when the timeline does not allow it."""
    origin = e.origin(record)
    if origin is None:
        raise _Underivable(
            e.endpoint.origin.text, f"{e.id}: the origin ({e.endpoint.origin.text}) is unknown"
        )
    items = dict.fromkeys((*e.events, *e.competing, *((e.death,) if e.death else ())))
    dates = {item: _dates(e, record, item, origin) for item in items}
    for item, ds in dates.items():
        for d in ds:
            if d < origin:
                origin_text = e.endpoint.origin.text
                message = f"{e.id}: {item} on {d} is before the origin {origin} ({origin_text})"
                raise _Underivable(item, message)
    if e.death is not None:
        deaths = dates[e.death]
        if len(deaths) > 1:
            shown = ", ".join(str(d) for d in deaths)
            raise _Underivable(e.death, f"{e.id}: '{e.death}' occurs more than once ({shown})")
        if deaths:
            for item, ds in dates.items():
                late = [d for d in ds if d > deaths[0]]
                if late:
                    message = f"{e.id}: {item} on {late[0]} is after {e.death} on {deaths[0]}"
                    raise _Underivable(item, message)
    censor = e.censor(record)
    censor_text = e.endpoint.censor.text
    if censor is not None and censor < origin:
        message = (
            f"{e.id}: the censoring date {censor} ({censor_text}) is before the origin {origin}"
        )
        raise _Underivable(censor_text, message)
    if censor is not None:
        for item, ds in dates.items():
            late = [d for d in ds if d > censor]
            if late:
                message = (
                    f"{e.id}: {item} on {late[0]} is after the censoring date"
                    f" {censor} ({censor_text})"
                )
                raise _Underivable(item, message)
    horizon = e.horizon.date(origin)
    first: tuple[dt.date, int, str] | None = None
    for rank, group in ((0, e.events), (1, e.competing)):
        for item in group:
            for d in dates[item]:
                key = (d, rank, item)
                if first is None or key < first:
                    first = key
    name = e.endpoint.name
    if first is not None and first[0] <= horizon:
        d, rank, item = first
        status: Status = "event" if rank == 0 else "competing"
        return EndpointRow(
            record.id, e.id, name, origin, d, (d - origin).days, status, e.descriptions[item], item
        )
    if censor is None and e.death is not None and dates[e.death]:
        # Without a follow-up date, a known death ends the follow-up.
        censor, censor_text = dates[e.death][0], e.death
    if censor is None:
        message = (
            f"{e.id}: the censoring date ({censor_text}) is unknown"
            " and no event decides the endpoint"
        )
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
