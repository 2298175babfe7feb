"""What the JSON export's writer and reader share: the format's name and version, exact
numbers as strings, and the JSON Schema the documents follow.

Numbers are never JSON floats. An exact number is a string in one canonical form: an
integer (``"60"``), else a terminating decimal without trailing zeros (``"1.05"``), else a
fraction in lowest terms (``"7/3"``, ``"-625/707"``). Python's
`fractions.Fraction` reads all three forms; so do most decimal/rational libraries after
splitting on ``/``.
"""

from __future__ import annotations

import json
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any

from protocode.core.exact import decimal_places, decimal_text

FORMAT = "protocode-compiled"
"""The value of a document's ``format`` key."""

VERSION = 1
"""The version of the document shape this module writes (and the highest it reads)."""


def exact_number(x: int | Fraction) -> str:
    """`x` as the canonical exact-number string: integer, terminating decimal, or p/q."""
    q = Fraction(x)
    places = decimal_places(q)
    return f"{q.numerator}/{q.denominator}" if places is None else decimal_text(q, places)


def read_number(text: str) -> Fraction:
    """An exact-number string (any of the three forms) as a `Fraction`."""
    return Fraction(text)


def read_magnitude(text: str) -> int | Fraction:
    """An exact-number string as an `int` when integral, else a `Fraction` (as the IR keeps)."""
    q = Fraction(text)
    return int(q) if q.denominator == 1 else q


@cache
def _schema_text() -> str:
    resource = resources.files("protocode") / "schemas" / "compiled.schema.json"
    return resource.read_text(encoding="utf-8")


def compiled_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of compiled documents, shipped in ``protocode/schemas``."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema
