"""Parsers of one field of a record, by the kind of its data item: facts, observations
(lists of dated values) and events (lists of occurrences).

A field parser appends each problem it finds to a list and returns `INVALID` when it found
any, so that a record reports all its bad fields at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias

from protocode.document.model import DataItem
from protocode.records.model import Magnitude, Observation, Occurrence
from protocode.records.numbers import format_number, normal
from protocode.records.problems import (
    INVALID,
    FieldError,
    Invalid,
    Problem,
    is_mapping,
    show_value,
    unknown_field,
)
from protocode.records.quantities import Numeric
from protocode.records.rules import NUMERIC_TYPES, RULES
from protocode.records.values import held, number, parse_date, scalar_parser

__all__ = [
    "FieldParser",
    "ObservationParser",
    "event_parser",
    "fact_parser",
]

_OBS_KEYS: Final = ("value", "unit", "date", "reference_range")
_RANGE_KEYS: Final = ("low", "high")
_EVENT_KEYS: Final = ("date", "end")

FieldParser: TypeAlias = Callable[[object, str, list[Problem]], object]


def fact_parser(item: DataItem) -> FieldParser:
    """The parser of a fact (or anchor) item's field: one value."""
    if item.type in NUMERIC_TYPES:
        return Numeric(item).fact
    scalar = scalar_parser(item)

    def parse(raw: object, path: str, problems: list[Problem]) -> object:
        try:
            return scalar(raw)
        except FieldError as bad:
            problems.append((path, bad.code, bad.message))
            return INVALID

    return parse


def _by_date(o: Observation | Occurrence) -> tuple[bool, dt.date]:
    """Sort key: dated first in date order, then undated; ties keep the record's order."""
    return (o.date is None, o.date or dt.date.min)


def _not_a_list(raw: object, path: str, what: str, problems: list[Problem]) -> Invalid:
    message = f"expected a list of {what} ([] for none), got {show_value(raw)}"
    problems.append((path, "bad-value", message))
    return INVALID


def _optional_date(
    el: Mapping[Any, Any], key: str, path: str, problems: list[Problem]
) -> dt.date | Invalid | None:
    raw = el.get(key)
    if raw is None:
        return None
    try:
        return parse_date(raw)
    except FieldError as bad:
        problems.append((f"{path}.{key}", bad.code, bad.message))
        return INVALID


class ObservationParser:
    """Reads an observation item: a list of {value, date, unit?, reference_range?}."""

    def __init__(self, item: DataItem) -> None:
        self.name = item.name
        self.numeric = Numeric(item) if item.type in NUMERIC_TYPES else None
        self.scalar = None if self.numeric is not None else scalar_parser(item)

    def __call__(self, raw: object, path: str, problems: list[Problem]) -> object:
        if not isinstance(raw, list | tuple):
            return _not_a_list(raw, path, "observations {value, date}", problems)
        before = len(problems)
        out: list[Observation] = []
        for i, el in enumerate(raw):
            obs = self.element(el, f"{path}[{i}]", problems)
            if obs is not None:
                out.append(obs)
        if len(problems) > before:
            return INVALID
        out.sort(key=_by_date)
        return tuple(out)

    def element(self, el: object, path: str, problems: list[Problem]) -> Observation | None:
        """One observation of the list, or None when it has problems."""
        if not is_mapping(el):
            problems.append(
                (
                    path,
                    "bad-value",
                    f"expected an observation {{value, date}}, got {show_value(el)}",
                )
            )
            return None
        before = len(problems)
        for key in el:
            if key not in _OBS_KEYS:
                problems.append(unknown_field(path, key, _OBS_KEYS))
        date = _optional_date(el, "date", path, problems)
        factor = self.factor(el.get("unit"), path, problems)
        value: object = INVALID
        raw_value = el.get("value")
        if raw_value is None:
            missing = RULES.missing_value.record
            problems.append((f"{path}.value", missing.code, missing.render()))
        elif not isinstance(factor, Invalid):
            value = self.value(raw_value, factor, f"{path}.value", problems)
        low = high = None
        reference = el.get("reference_range")
        if reference is not None and not isinstance(factor, Invalid):
            low, high = self.reference(reference, factor, f"{path}.reference_range", problems)
        if len(problems) > before or isinstance(date, Invalid):
            return None
        return Observation(value, date, low, high)

    def factor(
        self, unit: object, path: str, problems: list[Problem]
    ) -> Magnitude | Invalid | None:
        """The conversion factor of an observation's unit (None: the item's own)."""
        if unit is None:
            return None
        converter = self.numeric.converter if self.numeric is not None else None
        if converter is None:
            rule = RULES.unit.no_unit
            problems.append((f"{path}.unit", rule.code, rule.render(item=self.name)))
            return INVALID
        try:
            return converter.factor(unit)
        except FieldError as bad:
            problems.append((f"{path}.unit", bad.code, bad.message))
            return INVALID

    def value(
        self, raw: object, factor: Magnitude | None, path: str, problems: list[Problem]
    ) -> object:
        """An observation's value, in the item's unit."""
        try:
            if self.numeric is not None:
                return self.numeric.number(raw, factor)
            assert self.scalar is not None
            return self.scalar(raw)
        except FieldError as bad:
            problems.append((path, bad.code, bad.message))
            return INVALID

    def reference(
        self, raw: object, factor: Magnitude | None, path: str, problems: list[Problem]
    ) -> tuple[Magnitude | None, Magnitude | None]:
        """An observation's reference range {low, high}, in the item's unit."""
        rule = RULES.reference
        if self.numeric is None:
            bad = rule.not_numeric.record
            problems.append((path, bad.code, bad.render(item=self.name)))
            return None, None
        if not is_mapping(raw):
            problems.append((path, rule.form.code, rule.form.render(shown=show_value(raw))))
            return None, None
        bounds: list[Magnitude | None] = []
        for key in raw:
            if key not in _RANGE_KEYS:
                problems.append(unknown_field(path, key, _RANGE_KEYS))
        for key in _RANGE_KEYS:
            limit = raw.get(key)
            x = None
            if limit is not None:
                try:
                    x = number(limit, RULES.number.expected_number)
                    if factor is not None and factor != 1:
                        x = normal(x * factor)
                    x = held(x)
                except FieldError as bad:
                    problems.append((f"{path}.{key}", bad.code, bad.message))
                    x = None
            bounds.append(x)
        low, high = bounds
        if low is not None and high is not None and low > high:
            order = rule.order.record
            message = order.render(low=format_number(low), high=format_number(high))
            problems.append((path, order.code, message))
        return low, high


def event_parser(raw: object, path: str, problems: list[Problem]) -> object:
    """Reads an event item: a list of {date, end?} (or bare date strings)."""
    if not isinstance(raw, list | tuple):
        return _not_a_list(raw, path, "occurrences {date, end}", problems)
    before = len(problems)
    out: list[Occurrence] = []
    rule = RULES.occurrence
    for i, el in enumerate(raw):
        p = f"{path}[{i}]"
        if isinstance(el, str):
            try:
                out.append(Occurrence(parse_date(el)))
            except FieldError as bad:
                problems.append((p, bad.code, bad.message))
            continue
        if not is_mapping(el):
            problems.append(
                (p, "bad-value", f"expected an occurrence {{date, end}}, got {show_value(el)}")
            )
            continue
        for key in el:
            if key not in _EVENT_KEYS:
                problems.append(unknown_field(p, key, _EVENT_KEYS))
        date = _optional_date(el, "date", p, problems)
        end = _optional_date(el, "end", p, problems)
        if isinstance(end, dt.date):
            if date is None:
                undated = rule.undated_end.record
                problems.append((f"{p}.end", undated.code, undated.render()))
            elif isinstance(date, dt.date) and end < date:
                backwards = rule.backwards.record
                problems.append((f"{p}.end", backwards.code, backwards.render(end=end, date=date)))
        if not isinstance(date, Invalid) and not isinstance(end, Invalid):
            out.append(Occurrence(date, end))
    if len(problems) > before:
        return INVALID
    out.sort(key=_by_date)
    return tuple(out)
