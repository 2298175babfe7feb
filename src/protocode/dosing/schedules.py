"""A compiled protocol's dosing schedules (`schedules`), checked by `load` with every section.

The dosing pass itself is `protocode.language.check.dosing`.
"""

from __future__ import annotations

from protocode.language.check import CheckedSchedule
from protocode.screening import Protocol


def schedules(protocol: Protocol) -> tuple[CheckedSchedule, ...]:
    """The protocol's checked schedules, in file order."""
    return protocol.checked.schedules
