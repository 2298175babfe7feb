"""Endpoints: the protocol's endpoint definitions checked, and their per-patient derivation.

A protocol's optional ``endpoints`` section (see ``docs/endpoints.md``) lists time-to-event
endpoints: an origin and a censoring date written in the rule language, event items or derived
events (a composite event is the first of them), competing events and a horizon. The optional
``derived_events`` section defines events from observations (relapse from blast counts): each
occurs on the first date one of its alternatives holds. This package

1. checks the definitions against the data dictionary (`check_endpoints`, `endpoints`);
   errors point at the file, line and column;
2. derives each patient's row of each endpoint (`derive`, `derive_many`): time from origin in
   days, status (event, competing event or censored), what happened and which item said so.
"""

from protocode.endpoints.definitions import (
    CheckedClause,
    CheckedDerivedEvent,
    CheckedEndpoint,
    Horizon,
    check_endpoints,
    endpoints,
)
from protocode.endpoints.derive import EndpointRow, Status, derive, derive_many

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
