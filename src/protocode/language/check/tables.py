"""Checked grading tables: the grade, or the possible grades, of one assessment.

A `CheckedTable` holds the grade of every possible tuple of its columns' values (the
grading pass decided them all, see `grading`), so grading an assessment is a look-up; with
unknown item values, every completion is looked up and the grade is decided only when
they agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any

from protocode.document.model import Aggregate, GradingTable

Value = Fraction | str | bool
"""A value an input can take: integers as exact fractions, codes as text, booleans."""


@dataclass(frozen=True, slots=True)
class CheckedInput:
    """An input column: the items it reads and how their values make the column's value."""

    column: str
    items: tuple[str, ...]
    aggregate: Aggregate | None
    counted: frozenset[Value] | None
    """For `count`: the item values that are counted."""

    def value(self, values: Mapping[str, Any]) -> Any:
        """The column's value from its items' values (numbers may be int, mpq or Fraction)."""
        if self.aggregate is None:
            return values[self.items[0]]
        if self.aggregate == "count":
            assert self.counted is not None
            return Fraction(sum(1 for item in self.items if values[item] in self.counted))
        numbers = [values[item] for item in self.items]
        return max(numbers) if self.aggregate == "max" else min(numbers)

    def step(self, acc: Any, item: str, value: Value) -> Any:
        """The running state of `value` after `item` takes `value` (`None` before any item).

        Folding `step` over every item and then `finish` gives `value`'s result.
        """
        if item not in self.items:
            return acc
        if self.aggregate is None:
            return value
        if self.aggregate == "count":
            assert self.counted is not None
            return (acc or 0) + (self.items.count(item) if value in self.counted else 0)
        if acc is None:
            return value
        return max(acc, value) if self.aggregate == "max" else min(acc, value)

    def finish(self, acc: Any) -> Any:
        """The column's value from the state `step` left after the last item."""
        return Fraction(acc or 0) if self.aggregate == "count" else acc


@dataclass(frozen=True, slots=True, eq=False)
class CheckedTable:
    """A checked grading table: complete, unambiguous under its hit policy, every row used.

    `grade` gives the possible grades of an assessment whose item values are partly unknown,
    so a grade is only decided when every way of filling the gaps agrees.
    """

    table: GradingTable
    grades: tuple[str, ...]
    """The grades, lowest first."""
    inputs: tuple[CheckedInput, ...]
    items: tuple[str, ...]
    """The observation items the table reads, in order, without repeats."""
    domains: Mapping[str, tuple[Value, ...]]
    """Each item's possible values."""
    winners: Mapping[tuple[Value, ...], str] = field(repr=False)
    """The grade of each possible tuple of column values."""

    @property
    def id(self) -> str:
        return self.table.id

    def rank(self, grade: str) -> int:
        """The position of a grade, lowest first."""
        return self.grades.index(grade)

    def grade(self, values: Mapping[str, object]) -> frozenset[str]:
        """The grades the assessment can have; items absent or None are unknown.

        One grade when the known values decide it; several when the unknown ones matter.
        Raises ValueError for a value outside an item's domain.
        """
        known = tuple(values.get(item) for item in self.items)
        try:
            return possible_grades(self, known)
        except (KeyError, TypeError):
            for item, value in zip(self.items, known, strict=True):
                if value is not None and value not in self.domains[item]:
                    raise ValueError(f"{value!r} is not a possible value of '{item}'") from None
            raise

    def column_values(self, values: Mapping[str, Any]) -> tuple[Value, ...]:
        """The input columns' values for complete item values."""
        return tuple(i.value(values) for i in self.inputs)


# Records hold integers as int or gmpy2 mpq, which hash and compare equal to the tables'
# Fractions, so raw record values key the cache and the winners directly.
@lru_cache(maxsize=4096)
def possible_grades(table: CheckedTable, known: tuple[object, ...]) -> frozenset[str]:
    """The grades a table gives over every completion of `known` (None: unknown value)."""
    choices = [
        table.domains[item] if value is None else (value,)
        for item, value in zip(table.items, known, strict=True)
    ]
    grades: set[str] = set()
    for combination in itertools.product(*choices):
        grades.add(
            table.winners[table.column_values(dict(zip(table.items, combination, strict=True)))]
        )
        if len(grades) == len(table.grades):
            break
    return frozenset(grades)
