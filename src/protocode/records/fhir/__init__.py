"""FHIR R4 input: Bundles and bulk-data NDJSON read as patient records.

`read_fhir` reads a Bundle (``.json``), an NDJSON file or a bulk-export folder of ``.ndjson``
files and yields one `Record` or `RecordError` per patient, ready for
`Protocol.screen_many`. Resources map to data items through the standard codes the
protocol's data dictionary declares, plus an optional mapping file (`load_map`) for items
without codes; see ``docs/fhir.md``.

Modules, in reading order: `files` (files into raw resources), `resources` (each validated),
`codes` (code systems, answer codes), `mapfile` (the mapping file), `mapping` (codes to data
items), `values` (values out of a resource), `patient` (one patient's record), `read` (the
whole input).
"""

from __future__ import annotations

from protocode.records.fhir.files import is_fhir_input
from protocode.records.fhir.mapfile import MapFile, load_map
from protocode.records.fhir.mapping import FhirMapping
from protocode.records.fhir.read import read_fhir, records_from_resources

__all__ = [
    "FhirMapping",
    "MapFile",
    "is_fhir_input",
    "load_map",
    "read_fhir",
    "records_from_resources",
]
