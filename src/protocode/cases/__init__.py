"""Stored test cases of a protocol version: load them, run them, measure their coverage.

A protocol folder keeps its cases beside its versions: ``cases/v1.yaml`` holds the cases of
``v1.yaml`` (the format is described in ``docs/cases.md``). Each case is a patient record,
built from a named base record with some fields set or removed, and the screening result
it must get: status, verdicts of some criteria, the items that would decide it, notes.

    >>> suite = load_cases(Path("protocol/NCT06125106/cases/v1.yaml"))  # doctest: +SKIP
    >>> report = run_cases(protocode.load("protocol/NCT06125106/v1.yaml"), suite)  # doctest: +SKIP
    >>> print(report.to_text())  # doctest: +SKIP

`coverage` replays the cases with tracing on and reports which verdicts every criterion
reached and which outcomes (true, false, unknown) every atomic sub-condition of the rules
reached, so that untested boundaries show up with their place in the protocol file.

Modules: `suite` (what a case file holds), `files` (finding case files), `reader` (reading
one), `runner` and `results` (running a suite, its report), `coverage` and
`coverage_report` (what the cases reach).
"""

from __future__ import annotations

from protocode.cases.coverage import coverage
from protocode.cases.coverage_report import (
    ConditionCoverage,
    CoverageReport,
    CriterionCoverage,
    Gap,
)
from protocode.cases.files import find_case_files
from protocode.cases.reader import load_cases
from protocode.cases.results import CaseReport, CaseResult, Mismatch
from protocode.cases.runner import run_cases
from protocode.cases.suite import Case, CaseSuite, Expectation

__all__ = [
    "Case",
    "CaseReport",
    "CaseResult",
    "CaseSuite",
    "ConditionCoverage",
    "CoverageReport",
    "CriterionCoverage",
    "Expectation",
    "Gap",
    "Mismatch",
    "coverage",
    "find_case_files",
    "load_cases",
    "run_cases",
]
