"""Registry import: a ClinicalTrials.gov study record (API v2 JSON) becomes a draft protocol.

Three pure steps, each usable on its own:

1. `read_record` / `draft_from_record` (`registry.record`): the study record's
   ``protocolSection``, validated against ``schemas/registry-record.schema.json``, read into a
   `RegistryDraft` (`registry.draft`: metadata, arms, interventions, outcome measures,
   criteria); a file that is not such a record raises one `LoadError` naming every problem;
2. `split_eligibility` (`registry.eligibility`): the registry's single eligibility text cut
   into numbered inclusion and exclusion criteria (I1…In, E1…Em), robust to the variants the
   registry holds;
3. `draft_yaml` (`registry.writer`): the draft as a protocol file that loads, each criterion
   ``draft: true`` and without a rule, so that ``protocode check`` lists the criteria still
   to write.

Nothing in the record is executed or trusted: it is parsed as JSON, every field's type is
checked, and the YAML is written so that every text reads back exactly as imported.
"""

from __future__ import annotations

from protocode.registry.draft import Arm, DraftCriterion, Intervention, Outcome, RegistryDraft
from protocode.registry.eligibility import split_eligibility
from protocode.registry.record import draft_from_record, read_record
from protocode.registry.writer import draft_yaml, schema_reference

__all__ = [
    "Arm",
    "DraftCriterion",
    "Intervention",
    "Outcome",
    "RegistryDraft",
    "draft_from_record",
    "draft_yaml",
    "read_record",
    "schema_reference",
    "split_eligibility",
]
