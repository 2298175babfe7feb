"""Patient records: reading, validating and normalising the data rules are evaluated on.

A record is a JSON object per patient (see ``docs/records.md``). `RecordReader` checks it
against the data dictionary and turns it into a `Record` whose values are exact. Bad data
never escapes as a Python exception: a record with any bad field raises one `RecordError`
carrying a `Diagnostic` per field, and the file readers report a bad record and carry on.

Modules, by job: `model` (Record, Observation, Occurrence), `rules` (the table of field
rules both the reader and the SQL staging apply), `numbers` (exact numbers and how they are
shown), `values` (one value: numbers, dates, booleans, codes), `quantities` (units and
plausible ranges), `fields` (one field: facts, observations, events), `reader`
(RecordReader), `schema` (the record JSON Schema), `jsonfile`, `csvfile` and `files`
(reading files), `problems` (how problems are stated), `fhir` (FHIR bundles).
"""

from __future__ import annotations

from protocode.records.files import read_records
from protocode.records.jsonfile import read_jsonl_lines
from protocode.records.model import Observation, Occurrence, Record
from protocode.records.problems import FieldError, show_value
from protocode.records.reader import RecordReader, iter_records, unique_records
from protocode.records.values import record_number

__all__ = [
    "FieldError",
    "Observation",
    "Occurrence",
    "Record",
    "RecordReader",
    "iter_records",
    "read_jsonl_lines",
    "read_records",
    "record_number",
    "show_value",
    "unique_records",
]
