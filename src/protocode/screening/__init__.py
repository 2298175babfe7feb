"""Screening: the compiled `Protocol`, a record's status and verdicts, and explanations.

`protocol` holds everything compiled for a protocol version and screens with the chosen
backend, `results` is what screening gives, and `explain` reads a traced evaluation back
against the checked IR.
"""

from __future__ import annotations

from protocode.screening.explain import Trace, format_number
from protocode.screening.protocol import BACKENDS, Backend, Protocol
from protocode.screening.results import (
    CriterionExplanation,
    CriterionResult,
    Explanation,
    Finding,
    Screening,
    Status,
    Verdict,
    overall,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "CriterionExplanation",
    "CriterionResult",
    "Explanation",
    "Finding",
    "Protocol",
    "Screening",
    "Status",
    "Trace",
    "Verdict",
    "format_number",
    "overall",
]
