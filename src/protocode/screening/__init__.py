"""Screening: the compiled `Protocol`, a record's status and verdicts, and explanations.

`protocol` holds everything compiled for a protocol version and screens with the chosen
backend, `results` is what screening gives, `explain` reads a traced evaluation back
against the checked IR, and `summary` counts a run.
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
from protocode.screening.summary import Summary

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
    "Summary",
    "Trace",
    "Verdict",
    "format_number",
    "overall",
]
