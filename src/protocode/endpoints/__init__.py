"""Endpoints: the protocol's endpoint definitions checked, and their per-patient derivation.

A protocol's optional ``endpoints`` section (see ``docs/endpoints.md``) lists time-to-event
endpoints: an origin and a censoring date written in the rule language, event items or derived
events (a composite event is the first of them), competing events and a horizon. The optional
``derived_events`` section defines events from observations (relapse from blast counts): each
occurs on the first date one of its alternatives holds. This package

1. gives the definitions `load` checked against the data dictionary (`endpoints`; the
   passes are in `protocode.language.check`, run alone by `check_endpoints`); errors point
   at the file, line and column;
2. derives each patient's row of each endpoint (`derive`, `derive_many`): time from origin in
   days, status (event, competing event or censored), what happened and which item said so.
"""

from protocode.endpoints.definitions import check_endpoints, endpoints
from protocode.endpoints.derive import EndpointRow, Status, derive, derive_many
from protocode.language.check import CheckedClause, CheckedDerivedEvent, CheckedEndpoint, Horizon

__all__ = [
    "CheckedClause",
    "CheckedDerivedEvent",
    "CheckedEndpoint",
    "EndpointRow",
    "Horizon",
    "Status",
    "check_endpoints",
    "derive",
    "derive_many",
    "endpoints",
]
