"""The endpoints pass: origins and censoring dates are dates, events name event items or
derived events, horizons and windows are whole durations (see ``docs/endpoints.md``)."""

from __future__ import annotations

import re
from dataclasses import replace

from protocode.core.errors import Diagnostic, did_you_mean, unique
from protocode.core.exact import too_long
from protocode.document.model import Endpoint, Name, ProportionEndpoint, RuleText
from protocode.language import ir
from protocode.language.check.derived import ClauseChecker
from protocode.language.check.expressions import article
from protocode.language.check.results import (
    AnyEndpoint,
    CheckedClause,
    CheckedEndpoint,
    CheckedProportion,
    CheckedProtocol,
    Horizon,
)
from protocode.language.check.sections import Rejected, headline
from protocode.language.types import DATE

_HORIZON = re.compile(r"([0-9]+) +(day|days|week|weeks|month|months|year|years)")
_DAYS_PER = {"day": 1, "week": 7}
_MONTHS_PER = {"month": 1, "year": 12}
# Dates move at most 200 years, as in rules: records hold dates from 1800 to 2200.
_MAX_DAYS, _MAX_MONTHS = 200 * 366, 200 * 12


class EndpointChecker(ClauseChecker):
    """Checks time-to-event and proportion endpoints against the checked derived events."""

    def date(self, text: RuleText, what: str) -> ir.Expr:
        """An origin or censoring date."""
        return self.expression(
            text, DATE, lambda found: f"an endpoint's {what} is a date, but this is a {found}"
        )

    def horizon(self, text: RuleText) -> Horizon:
        """A whole number of days, weeks, months or years."""
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
        """An assessment window in whole days."""
        horizon = self.horizon(text)
        if horizon.months:
            message = (
                f"an assessment window is a whole number of days or weeks (e.g. '30 days'), "
                f"not '{text.text}': months differ in length"
            )
            raise self.fail("horizon", message, text)
        return horizon.amount

    def assessment(self, name: Name, response: RuleText) -> CheckedClause:
        """A proportion's assessed observation item and its response condition."""
        item = self.items.get(name.text)
        if item is None:
            choices = [n for n, i in self.items.items() if i.kind == "observation"]
            hint = did_you_mean(name.text, choices)
            raise self.fail("name", f"unknown observation item '{name.text}'{hint}", name)
        if item.kind != "observation":
            message = (
                f"an assessment is an observation item, but '{name.text}' is {article(item.kind)}"
            )
            raise self.fail("kind", message, name)
        return self.condition(name.text, response)

    def proportion(self, e: ProportionEndpoint) -> CheckedProportion | None:
        """A checked proportion endpoint, or None with its problems recorded."""
        parts = self.attempt(
            lambda: self.date(e.origin, "origin"),
            lambda: self.horizon(e.horizon),
            lambda: self.window(e.window),
            lambda: self.assessment(e.assessment, e.response),
            lambda: self.names(e.failure, "failure events"),
        )
        if any(p is None for p in parts):
            return None
        origin, horizon, window, response, failure = parts
        descriptions = {n: self.description(n) for n in failure}
        derived = {
            n: self.checked.derived_events[n] for n in failure if n in self.checked.derived_events
        }
        return CheckedProportion(
            e, origin, horizon, window, response, failure, descriptions, derived
        )

    def event(self, name: Name, role: str, derived: bool = True) -> str:
        """An event item (or, when `derived`, a derived event) named in `role`."""
        derived_ids = {d.id for d in self.checked.doc.derived_events}
        if derived and name.text in derived_ids:
            if name.text not in self.checked.derived_events:
                raise Rejected()  # the derived event's own errors are already recorded
            return name.text
        item = self.items.get(name.text)
        if item is None:
            choices = [n for n, i in self.items.items() if i.kind == "event"]
            hint = did_you_mean(name.text, [*choices, *(derived_ids if derived else ())])
            what = "event item or derived event" if derived and derived_ids else "event item"
            message = f"unknown {what} '{name.text}' in {role}{hint}"
            raise self.fail("name", message, name)
        if item.kind != "event":
            message = (
                f"{role} name event items, but '{name.text}' is {article(item.kind)}; "
                "declare it with 'kind: event'"
            )
            raise self.fail("kind", message, name)
        return name.text

    def names(self, names: tuple[Name, ...], role: str) -> tuple[str, ...]:
        """The events named in `role`; rejected when any of them is wrong."""
        out: list[str] = []
        for name in names:
            try:
                out.append(self.event(name, role))
            except Rejected:
                continue
        if len(out) < len(names):
            raise Rejected()
        return tuple(out)

    def endpoint(self, e: Endpoint) -> CheckedEndpoint | None:
        """A checked time-to-event endpoint, or None with its problems recorded."""
        parts = self.attempt(
            lambda: self.date(e.origin, "origin"),
            lambda: self.date(e.censor, "censoring date"),
            lambda: self.horizon(e.horizon),
            lambda: self.names(e.events, "events"),
            lambda: self.names(e.competing, "competing events"),
            lambda: self.death(e),
        )
        if any(p is None for p in parts[:5]) or (e.death is not None and parts[5] is None):
            return None
        origin, censor, horizon, events, competing, death = parts
        both = [n for n in e.competing if n.text in events]
        if both:
            message = f"'{both[0].text}' is both an event and a competing event of {e.id}"
            self.fail("endpoint", message, both[0])
            return None
        descriptions = {n: self.description(n) for n in (*events, *competing)}
        known = self.checked.derived_events
        derived = {n: known[n] for n in (*events, *competing) if n in known}
        return CheckedEndpoint(
            e, origin, censor, horizon, events, competing, death, descriptions, derived
        )

    def description(self, name: str) -> str:
        """An event's description in words (its name when it has none)."""
        if name in self.checked.derived_events:
            return headline(self.checked.derived_events[name].event.description) or name
        return headline(self.items[name].description) or name

    def death(self, e: Endpoint) -> str | None:
        """The endpoint's death event: named, or the dictionary's event item 'death'."""
        if e.death is not None:
            return self.event(e.death, "death", derived=False)
        item = self.items.get("death")
        return "death" if item is not None and item.kind == "event" else None


def check_endpoints(checked: CheckedProtocol) -> tuple[CheckedProtocol, list[Diagnostic]]:
    """The endpoints pass: the protocol with its checked endpoints, and every problem."""
    checker = EndpointChecker(checked)
    out: list[AnyEndpoint | None] = [
        checker.proportion(e) if isinstance(e, ProportionEndpoint) else checker.endpoint(e)
        for e in checked.doc.endpoints
    ]
    endpoints = tuple(e for e in out if e is not None)
    return replace(checked, endpoints=endpoints), unique(checker.diagnostics)
