"""Hypothesis strategies that generate valid patient records for a protocol.

For users' own property tests and for protocode's::

    from hypothesis import given
    from protocode.testing import records

    trial = protocode.load("protocol/NCT06125106")

    @given(records(trial))
    def test_never_crashes(record):
        trial.screen(record)

Records are dicts in the documented record format (see docs/records.md). Every item may
be missing (`missing=True`); dates cluster around the anchors so windows are exercised
from both sides; numbers are exact decimals within each item's plausible range. The
strategies themselves live in `protocode.records.strategies`, over a data dictionary.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from protocode.records import strategies
from protocode.records.strategies import BASE_DATE
from protocode.screening import Protocol

__all__ = ["BASE_DATE", "records"]


def records(protocol: Protocol, *, missing: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """Valid records for `protocol`; with `missing`, any item may be absent."""
    checked = protocol.checked
    return strategies.records(checked.doc.data, checked.attestations, missing=missing)
