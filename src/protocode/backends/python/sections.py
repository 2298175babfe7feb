"""The optional sections' expressions (dosing dates, endpoint dates and conditions) as closures.

The checker gives every such expression as typed IR (`CheckedProtocol.expressions`);
`SectionFunctions` compiles them all once, with the reference closures, for the compiled
`Protocol` that holds it, and evaluates them for a record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from protocode.backends.python.closures import Env, Fn, compile_expressions
from protocode.language import ir
from protocode.language.check import CheckedProtocol
from protocode.records import Observation, Record

# `latest` of one undated value is unknown; a condition on one observation is decided by
# its value alone, so an undated observation is given a date.
_SOME_DAY = dt.date(2000, 1, 1)


class SectionFunctions:
    """Closures for every expression of a checked protocol's optional sections."""

    __slots__ = ("_functions", "checked")

    def __init__(self, checked: CheckedProtocol) -> None:
        self.checked = checked
        nodes = checked.expressions()
        # Keyed by node identity: the nodes live in `checked`, which this object holds.
        functions = compile_expressions(checked, nodes)
        self._functions: dict[int, Fn] = {
            id(node): fn for node, fn in zip(nodes, functions, strict=True)
        }

    def value(self, node: ir.Expr, record: Record) -> Any:
        """The value of one section expression for a record (None: unknown)."""
        return self._functions[id(node)](Env(record))

    def date(self, node: ir.Expr, record: Record) -> dt.date | None:
        """The date a section's date expression gives for a record, or None when unknown."""
        value = self.value(node, record)
        return value if isinstance(value, dt.date) else None

    def holds(self, condition: ir.Expr, item: str, observation: Observation) -> bool | None:
        """Whether one observation of `item` satisfies a checked condition (None: unknown)."""
        if observation.date is None:
            observation = dataclasses.replace(observation, date=_SOME_DAY)
        record = Record("", {}, {item: (observation,)}, {}, {})
        value = self.value(condition, record)
        return value if isinstance(value, bool) else None
