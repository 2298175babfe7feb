"""protocode: clinical-trial protocols as code.

A protocol version is a YAML file whose rules are written in a small typed language.
`load` reads, parses, checks and compiles it; the returned `Protocol` screens patient
records (eligible / ineligible / indeterminate) and explains every verdict.

    >>> import protocode
    >>> trial = protocode.load("protocol/NCT06125106")
    >>> result = trial.screen(record)          # doctest: +SKIP
    >>> result.status, result.explain().to_text()  # doctest: +SKIP
"""

from __future__ import annotations

from protocode.errors import (
    CheckError,
    Diagnostic,
    LoadError,
    ProtocodeError,
    RecordError,
    RuleSyntaxError,
    UsageError,
)
from protocode.pipeline import load, load_text, protocol_file
from protocode.records import Record
from protocode.screen import Explanation, Protocol, Screening

__all__ = [
    "CheckError",
    "Diagnostic",
    "Explanation",
    "LoadError",
    "ProtocodeError",
    "Protocol",
    "Record",
    "RecordError",
    "RuleSyntaxError",
    "Screening",
    "UsageError",
    "load",
    "load_text",
    "protocol_file",
]
