"""Patient records as the commands read them: a records file, JSONL on stdin, or FHIR R4."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from protocode.cli.output import error
from protocode.core.errors import Diagnostic, RecordError, UsageError
from protocode.records import Record, RecordReader, read_jsonl_lines, read_records


def read(source: str, reader: RecordReader) -> Iterator[Record | RecordError]:
    """The records of a file, or of JSONL on stdin for '-'."""
    if source == "-":
        return read_jsonl_lines(sys.stdin.buffer, reader)
    return read_records(Path(source), reader)


def records(args: argparse.Namespace, reader: RecordReader) -> Iterator[Record | RecordError]:
    """The records named on the command line (``records``, ``--input``, ``--fhir-map``):
    record files, or FHIR R4 input."""
    # The FHIR reader loads fhir.resources, which plain records never need.
    from protocode.records.fhir import (  # noqa: PLC0415
        FhirMapping,
        is_fhir_input,
        load_map,
        read_fhir,
    )

    source: str = args.records
    fhir = args.input == "fhir" or (
        args.input == "auto" and source != "-" and is_fhir_input(Path(source))
    )
    if not fhir:
        if args.fhir_map is not None:
            raise UsageError.at("usage", "--fhir-map applies to FHIR input only", None)
        return read(source, reader)
    if source == "-":
        raise UsageError.at("usage", "FHIR input is read from a file or folder, not stdin", None)
    file = load_map(args.fhir_map) if args.fhir_map is not None else None
    mapping = FhirMapping.build(reader.items.values(), reader.attestations, file)

    def warn(diagnostic: Diagnostic) -> None:
        error(f"warning: {diagnostic.render()}")

    return read_fhir(Path(source), reader, mapping, warn)
