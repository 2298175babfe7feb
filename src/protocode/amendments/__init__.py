"""Amendments: the reviewer's semantic diff of two versions, and the check of declared intents.

`diff(old, new)` compares every criterion (by stable id) and overall eligibility, attaches
the intent the amendment declares for each change, and, given a cohort, counts who changes
status. `claim_problems(report)` turns every false or missing claim into a diagnostic
pointing into the amendment's file, with a witness patient. The modules, by job:
`compare` (how one criterion or eligibility changes: z3 proof, or a `search`),
`semantic_diff` (the report's model), `cohort`, `claims`, `words` (the word diff), `report`
(text, Markdown, HTML and JSON renderings) and `folder` (a protocol folder's history).
"""

from protocode.amendments.claims import check_claims, claim_problems
from protocode.amendments.cohort import CohortDiff, cohort_reader
from protocode.amendments.semantic_diff import CriterionDiff, DiffReport, criterion_diffs, diff
from protocode.amendments.words import unified

__all__ = [
    "CohortDiff",
    "CriterionDiff",
    "DiffReport",
    "check_claims",
    "claim_problems",
    "cohort_reader",
    "criterion_diffs",
    "diff",
    "unified",
]
