"""Records and FHIR input under hostile content (issue 11, items 6, 10, 12 and 16).

Every bad record gets one `RecordError` naming the record and the field, and every other
record of the batch is still read: results plus errors always equal the records given.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from helpers import SEED, run
from protocode.core.errors import RecordError
from protocode.core.jsontext import MAX_DEPTH, TooDeep, loads, too_deep
from protocode.pipeline import load
from protocode.records import Record, read_records
from protocode.records.fhir import (
    FhirMapping,
    is_fhir_input,
    load_map,
    read_fhir,
    records_from_resources,
)
from protocode.records.values import date_text as _date_text
from protocode.screening import Screening
from protocode.tables.convert import RowWriter

FHIR = SEED / "examples" / "fhir"
BUNDLE = FHIR / "patients.bundle.json"
HUGE = 10**5000  # str() of it raises ValueError (more than 4,300 digits)
TOO_LONG = "is too long: a record number has at most 300 digits"


@pytest.fixture(scope="module")
def protocol() -> Any:
    return load(SEED)


@pytest.fixture(scope="module")
def mapping(protocol: Any) -> FhirMapping:
    return FhirMapping.build(
        protocol.reader.items.values(), protocol.reader.attestations, load_map(FHIR / "map.yaml")
    )


def screened(protocol: Any, *records: object) -> list[Screening | RecordError]:
    """Screen a batch: the first record is the bad one, a good one follows it."""
    results = list(protocol.screen_many([*records, {"id": "GOOD", "sex": "male"}]))
    assert len(results) == len(records) + 1
    assert isinstance(results[-1], Screening) and results[-1].record_id == "GOOD"
    return results


def problems(result: object) -> list[tuple[str | None, str | None, str, str]]:
    assert isinstance(result, RecordError), result
    return [(d.record_id, d.field, d.code, d.message) for d in result.diagnostics]


# --- item 10: keys that are not strings -------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "field", "shown"),
    [
        ({"attestations": {HUGE: True}}, "attestations.a 16610-bit integer", "a 16610-bit integer"),
        ({HUGE: 1}, "a 16610-bit integer", "a 16610-bit integer"),
        ({"weight": {"value": 70, Fraction(HUGE, 3): "kg"}}, None, "a number too large to show"),
        ({"creatinine": [{"value": 1, "date": "2024-01-01", 12: 3}]}, "creatinine[0].12", "12"),
        ({"ast": [{"value": 1, "reference_range": {None: 1}}]}, None, "null"),
        ({"hsct": [{"date": "2024-01-01", 1.5: 2}]}, "hsct[0].1.5", "1.5"),
        ({"attestations": {("a", 1): True}}, "attestations.a list", "a list"),
    ],
    ids=["attestation", "top", "quantity", "observation", "range", "event", "tuple"],
)
def test_a_key_that_is_not_a_string_is_a_record_error(
    protocol: Any, record: dict[object, object], field: str | None, shown: str
) -> None:
    bad, _ = screened(protocol, {"id": "P1", **record})
    ((rid, where, code, message),) = problems(bad)
    assert (rid, code) == ("P1", "unknown-field")
    assert message.endswith(f"names must be strings, got {shown}")
    if field is not None:
        assert where == field


# --- numbers too long to be record values -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (HUGE, "life_expectancy"),
        (10**400, "life_expectancy"),
        (10**300, "life_expectancy"),
        (Fraction(1, HUGE), "life_expectancy"),
        (Fraction(HUGE + 1, 3), "life_expectancy"),
        (Decimal("1e500"), "life_expectancy"),
        ({"value": 10**4000, "unit": "d"}, "life_expectancy.value"),
    ],
    ids=["huge", "1e400", "1e300", "tiny", "huge/3", "decimal", "quantity"],
)
def test_a_number_too_long_is_a_record_error(protocol: Any, value: object, field: str) -> None:
    bad, _ = screened(protocol, {"id": "P1", "life_expectancy": value})
    ((rid, where, code, message),) = problems(bad)
    assert (rid, where, code) == ("P1", field, "out-of-range")
    assert TOO_LONG in message


def test_a_reference_limit_too_long_is_a_record_error(protocol: Any) -> None:
    element = {"value": 40, "date": "2024-03-01", "reference_range": {"low": 0, "high": HUGE}}
    bad, _ = screened(protocol, {"id": "P1", "ast": [element]})
    ((_, where, _, message),) = problems(bad)
    assert where == "ast[0].reference_range.high"
    assert TOO_LONG in message


def test_numbers_short_enough_are_read_and_explained(protocol: Any) -> None:
    # Non-terminating and just under the bound: the explanation still shows it.
    value = Fraction(10**299 + 1, 3)
    record = protocol.record({"id": "P1", "life_expectancy": value})
    assert record.values["life_expectancy"] == value
    assert "life_expectancy" in protocol.explain(record).to_text()


def lines(*records: str) -> str:
    return "".join(f"{r}\n" for r in records)


DIGITS = "9" * 5000


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("int.json", f'[{{"id": "A", "life_expectancy": {DIGITS}}}, {{"id": "B"}}]'),
        ("float.json", f'[{{"id": "A", "life_expectancy": {DIGITS}.5}}, {{"id": "B"}}]'),
        ("exponent.json", '[{"id": "A", "life_expectancy": 1e999999}, {"id": "B"}]'),
        ("int.jsonl", lines(f'{{"id": "A", "life_expectancy": {DIGITS}}}', '{"id": "B"}')),
        ("cell.csv", lines("id,life_expectancy", f"A,{DIGITS}", "B,")),
        ("decimal.csv", lines("id,life_expectancy", f"A,0.{DIGITS}1", "B,")),
    ],
    ids=["json-int", "json-float", "json-exponent", "jsonl-int", "csv-int", "csv-decimal"],
)
def test_a_number_too_long_in_a_file_spoils_only_its_record(
    tmp_path: Path, protocol: Any, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    bad, good = read_records(path, protocol.reader)
    assert isinstance(good, Record) and good.id == "B"
    ((rid, where, code, message),) = problems(bad)
    assert (rid, where, code) == ("A", "life_expectancy", "out-of-range")
    assert TOO_LONG in message


def fhir_input(folder: Path, suffix: str, place: str, value: str) -> Path:
    """The example Bundle (``.json``) or its resources (``.ndjson``), with `value` (JSON
    text) put at `place` of the first patient's life-expectancy Observation: 'value' (its
    valueQuantity.value) or 'extension'.

    Written by text replacement: `json.dumps` cannot write what is nested too deep.
    """
    doc = json.loads(BUNDLE.read_text(encoding="utf-8"))
    resource = next(
        e["resource"]
        for e in doc["entry"]
        if e["resource"].get("valueQuantity", {}).get("code") == "mo"
    )
    assert resource["subject"]["reference"] == "Patient/FHIR-001"
    if place == "value":
        resource["valueQuantity"]["value"] = "@@"
    else:
        resource["extension"] = "@@"
    if suffix == ".json":
        text = json.dumps(doc)
    else:
        text = "".join(f"{json.dumps(e['resource'])}\n" for e in doc["entry"])
    path = folder / f"input{suffix}"
    path.write_text(text.replace('"@@"', value), encoding="utf-8")
    return path


def nested_extensions(depth: int) -> str:
    inner = '{"url": "http://example.org/x", "valueString": "v"}'
    return (
        "[" + '{"url": "http://example.org/x", "extension": [' * depth + inner + "]}" * depth + "]"
    )


def fhir_results(protocol: Any, mapping: FhirMapping, path: Path) -> dict[str, object]:
    found = list(read_fhir(path, protocol.reader, mapping))
    assert len(found) == 4  # the example's four patients, whatever happens to one
    return {(r.id if isinstance(r, Record) else r.diagnostics[0].record_id) or "": r for r in found}


@pytest.mark.parametrize("suffix", [".json", ".ndjson"])
@pytest.mark.parametrize(
    "digits", [DIGITS, f"{DIGITS}.5", "1e999999"], ids=["int", "decimal", "exponent"]
)
def test_a_fhir_value_too_long_spoils_only_its_patient(
    tmp_path: Path, protocol: Any, mapping: FhirMapping, digits: str, suffix: str
) -> None:
    results = fhir_results(protocol, mapping, fhir_input(tmp_path, suffix, "value", digits))
    assert all(isinstance(r, Record) for pid, r in results.items() if pid != "FHIR-001")
    ((_, where, code, message),) = problems(results["FHIR-001"])
    assert where is not None and where.endswith("valueQuantity.value")
    assert code == "out-of-range" and TOO_LONG in message


# --- item 6: nesting --------------------------------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.json", f'[{{"id": "A", "weight": {DEEP}}}, {{"id": "B"}}]'),
        ("deep.jsonl", lines(f'{{"id": "A", "weight": {DEEP}}}', '{"id": "B"}')),
        ("deep-key.jsonl", lines(f'{{"id": "A", "x": {{"y": {DEEP}}}}}', '{"id": "B"}')),
    ],
    ids=["json", "jsonl", "jsonl-unknown-field"],
)
def test_a_record_nested_too_deep_spoils_only_itself(
    tmp_path: Path, protocol: Any, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert not is_fhir_input(path)
    bad, good = read_records(path, protocol.reader)
    assert isinstance(good, Record) and good.id == "B"
    found = problems(bad)
    assert {rid for rid, *_ in found} == {"A"}
    deep = [(where, message) for _, where, code, message in found if code == "too-deep"]
    assert deep == [(deep[0][0], f"nested deeper than {MAX_DEPTH} levels: not read")]
    assert deep[0][0] is not None and deep[0][0].endswith("[0][0]")


def test_cli_screens_the_other_records_of_a_deep_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text(lines(f'{{"id": "A", "weight": {DEEP}}}', '{"id": "B"}'), encoding="utf-8")
    status, out, err = run(capsys, "screen", SEED, path, "--format", "json")
    assert status == 1, err
    results = json.loads(out)
    assert [(r["id"], r["status"]) for r in results] == [("A", "error"), ("B", "indeterminate")]
    assert "Traceback" not in err


@pytest.mark.parametrize("suffix", [".json", ".ndjson"])
@pytest.mark.parametrize("depth", [49, 300, 1000, 50_000])
def test_a_fhir_resource_nested_too_deep_spoils_only_its_patient(
    tmp_path: Path, protocol: Any, mapping: FhirMapping, depth: int, suffix: str
) -> None:
    # 49 extensions reach 101 levels inside the resource; 300 pass the JSON parser but not
    # the FHIR validators; 1000 and more are too deep for the JSON parser itself.
    path = fhir_input(tmp_path, suffix, "extension", nested_extensions(depth))
    assert is_fhir_input(path)
    results = fhir_results(protocol, mapping, path)
    assert all(isinstance(r, Record) for pid, r in results.items() if pid != "FHIR-001")
    ((_, where, code, message),) = problems(results["FHIR-001"])
    assert code == "malformed"
    assert message.endswith(f"nested deeper than {MAX_DEPTH} levels: not read")
    assert where is not None and ".extension[0].extension[0]" in where
    assert len(where) < 150


def test_a_fhir_ndjson_whose_first_line_is_too_deep_is_still_detected(tmp_path: Path) -> None:
    path = tmp_path / "deep.ndjson"
    path.write_text(
        lines(f'{{"resourceType": "Patient", "id": "P1", "extension": {DEEP}}}'), encoding="utf-8"
    )
    assert is_fhir_input(path)


def test_loads_reads_what_is_not_too_deep() -> None:
    text = '{"a": [' + DEEP + ', 1, "[[{"], "b": {"c": 2}}'
    doc, pruned = loads(text)
    assert pruned
    assert doc["a"][1:] == [1, "[[{"] and doc["b"] == {"c": 2}
    value = doc["a"][0]
    for _ in range(MAX_DEPTH - 3):  # the object and its list are levels 1 and 2
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == [TooDeep()]
    path = too_deep(doc)
    assert path is not None and path.startswith("a[0][0][0]") and "…" in path
    assert loads('{"a": [[1]]}') == ({"a": [[1]]}, False)
    assert too_deep({"a": [[1]]}, limit=2) == "a[0]"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[" + "[" * 3000 + "]" * 3000 + " x]", 6002),
        ("[" * 3000 + "]" * 3000 + "]", 6000),
        ('{"a": ' + "[" * 3000 + "]" * 3000 + ' "b": 1}', 6007),
    ],
    ids=["bad-value", "extra-bracket", "missing-comma"],
)
def test_loads_locates_a_syntax_error_in_deep_text(text: str, where: int) -> None:
    with pytest.raises(json.JSONDecodeError) as info:
        loads(text)
    assert info.value.pos == where
    assert info.value.doc == text


# --- item 12: long CSV cells ------------------------------------------------------------------


@pytest.fixture
def default_csv_limit() -> Iterator[None]:
    # The csv module's limit is process-wide: start from its default, put back what was.
    saved = csv.field_size_limit(131_072)
    yield
    csv.field_size_limit(saved)


@pytest.mark.usefixtures("default_csv_limit")
def test_a_long_quoted_cell_invents_no_record(tmp_path: Path, protocol: Any) -> None:
    cell = ("x" * 999 + "\n") * 140  # 140,000 characters over 140 lines
    path = tmp_path / "long.csv"
    path.write_text(lines("id,sex", "A,male", f'B,"{cell}"', "C,female"), encoding="utf-8")
    results = list(read_records(path, protocol.reader))
    assert [r.id if isinstance(r, Record) else "error" for r in results] == ["A", "error", "C"]
    ((rid, where, code, _),) = problems(results[1])
    assert (rid, where, code) == ("B", "sex", "bad-value")


# --- FHIR resources built through the API ----------------------------------------------------


def test_a_resource_type_that_is_not_a_string_is_an_error_of_its_resource(protocol: Any) -> None:
    found = list(
        records_from_resources(
            [("e0", {"resourceType": "Patient", "id": "P1"}), ("e1", {"resourceType": HUGE})],
            protocol.reader,
        )
    )
    assert isinstance(found[0], Record) and found[0].id == "P1"
    ((rid, where, code, message),) = problems(found[1])
    assert (rid, where, code) == ("e1", "e1.resourceType", "malformed")
    assert message == "e1: resourceType is not a string"


def test_a_bad_patient_resource_is_still_its_patient(protocol: Any) -> None:
    # A bad Patient resource and its Observation make one error named by the patient's id
    # (it was an error per resource, named by place, the Observation's saying "no Patient").
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": "Patient/P1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "valueQuantity": {"value": "abc"},
    }
    found = list(
        records_from_resources(
            [
                ("e0", {"resourceType": "Patient", "id": "P1", "birthDate": "someday"}),
                ("e1", observation),
                ("e2", {"resourceType": "Patient", "id": "P2"}),
            ],
            protocol.reader,
        )
    )
    assert len(found) == 2
    assert isinstance(found[1], Record) and found[1].id == "P2"
    assert [(rid, where) for rid, where, _, _ in problems(found[0])] == [
        ("P1", "e0.birthDate"),
        ("P1", "e1.valueQuantity.value"),
    ]


def test_a_long_number_the_sql_layout_cannot_hold_is_shown_briefly(protocol: Any) -> None:
    (bad,) = RowWriter(protocol).convert([{"id": "P1", "life_expectancy": 10**299}])
    ((rid, where, code, message),) = problems(bad)
    assert (rid, where, code) == ("P1", "life_expectancy", "sql-range")
    assert message.startswith("≈1e+299 has more than 9 integer digits")


def test_long_text_in_a_date_field_is_not_kept(protocol: Any) -> None:
    # Date texts are cached; text no date can be is refused before it reaches the cache,
    # which would otherwise keep up to 65,536 such keys alive.
    before = _date_text.cache_info().currsize
    texts = [f"2024-01-01T00:00:00.{'0' * 100}{i}Z" for i in range(50)]
    results = list(
        protocol.screen_many({"id": f"P{i}", "enrollment": t} for i, t in enumerate(texts))
    )
    assert _date_text.cache_info().currsize == before
    for result in results:
        ((_, where, code, message),) = problems(result)
        assert (where, code) == ("enrollment", "bad-value")
        assert message.startswith("expected a date YYYY-MM-DD, got '2024-01-01T00:00:00.000")


@pytest.mark.parametrize("unit", ["g/" * 50_000 + "g", "k" * 101], ids=["slow-to-parse", "long"])
def test_a_unit_longer_than_any_unit_is_refused_briefly(protocol: Any, unit: str) -> None:
    bad, _ = screened(protocol, {"id": "P1", "weight": {"value": 70, "unit": unit}})
    ((_, where, code, message),) = problems(bad)
    assert (where, code) == ("weight.unit", "unknown-unit")
    assert message.endswith(f"{len(unit)} characters is too long for a unit")
    assert len(message) < 120


def test_a_long_text_is_clipped_in_its_message(protocol: Any) -> None:
    bad, _ = screened(protocol, {"id": "P1", "sex": "x" * 100_000})
    ((_, where, _, message),) = problems(bad)
    assert where == "sex"
    assert message.startswith("'xxx") and "..." in message and len(message) < 120


# --- item 16: a file bad as a whole is located in its text ----------------------------------


def file_problem(path: Path, read: Any) -> tuple[str, str, tuple[int, int], list[str]]:
    """The one located diagnostic of a file that cannot be read as a whole: its code,
    message, line and column, and its rendered source line and caret."""
    with pytest.raises(RecordError) as info:
        list(read(path))
    (d,) = info.value.diagnostics
    assert d.span is not None, d.render()
    assert d.span.source.path == str(path)
    return d.code, d.message, (d.span.line, d.span.col), d.render().splitlines()[1:]


NOT_UTF8 = "not UTF-8 text: byte 0x{:02x} cannot be read as UTF-8 (save the file as UTF-8)"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", ("malformed", "not valid JSON: Expecting value", (1, 1), ["   1 | ", "     | ^"])),
        (b"  \n", ("malformed", "not valid JSON: Expecting value", (2, 1), None)),
        (
            b'[\n  {"id": "A", "sex": "m\xffle"}\n]',
            (
                "unreadable",
                NOT_UTF8.format(0xFF),
                (2, 24),
                ['   2 |   {"id": "A", "sex": "m\ufffdle"}', "     | " + " " * 23 + "^"],
            ),
        ),
        # The byte-order mark is no column.
        (b'\xef\xbb\xbf\xe9{"id": "A"}', ("unreadable", NOT_UTF8.format(0xE9), (1, 1), None)),
        (b'\n  "text"', ("malformed", "expected a record object or an array", (2, 3), None)),
        (
            b'[{"id": "A"},\n {"id" 1}]',
            ("malformed", "not valid JSON: Expecting ':'", (2, 8), None),
        ),
    ],
    ids=["empty", "blank", "not-utf8", "bom-not-utf8", "scalar", "not-json"],
)
def test_a_bad_records_json_file_is_located(
    tmp_path: Path,
    protocol: Any,
    content: bytes,
    expected: tuple[str, str, tuple[int, int], list[str] | None],
) -> None:
    """Each at its line and column, with a caret (code, start of message, place, lines)."""
    path = tmp_path / "records.json"
    path.write_bytes(content)
    code, message, where, shown = file_problem(path, lambda p: read_records(p, protocol.reader))
    assert code == expected[0] and message.startswith(expected[1]) and where == expected[2]
    if expected[3] is not None:
        assert shown == expected[3]


def test_a_bad_csv_header_is_located(tmp_path: Path, protocol: Any) -> None:
    path = tmp_path / "records.csv"
    path.write_bytes(b"")
    got = file_problem(path, lambda p: read_records(p, protocol.reader))
    assert got[:3] == ("malformed", "empty CSV file: expected a header row", (1, 1))
    path.write_bytes(b"\xef\xbb\xbfid,s\xe9x\nA,male\n")
    got = file_problem(path, lambda p: read_records(p, protocol.reader))
    assert got[:3] == ("unreadable", NOT_UTF8.format(0xE9), (1, 5))


def test_line_errors_of_records_ndjson_name_line_and_column(tmp_path: Path, protocol: Any) -> None:
    path = tmp_path / "records.ndjson"
    path.write_bytes(b'{"id": "A"}\n{"id": "\xc3\xa9\xff"}\n{"id" "C"}\n')
    _, bad_byte, not_json = read_records(path, protocol.reader)
    assert problems(bad_byte) == [
        ("line 2", None, "malformed", "not UTF-8 text (byte 0xff at column 10)")
    ]
    assert problems(not_json) == [
        ("line 3", None, "malformed", "not valid JSON: Expecting ':' delimiter (column 7)")
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"resourceType": "Bundle",\n "entry": [}', ("malformed", "not valid JSON", (2, 12))),
        (b"", ("malformed", "not valid JSON: Expecting value", (1, 1))),
        (
            b'{"resourceType": "Bundle",\n "id": "\xff"}',
            ("unreadable", NOT_UTF8.format(0xFF), (2, 9)),
        ),
        # At the value of the last "entry": the one the parser keeps.
        (
            b'{"resourceType": "Bundle", "entry": [],\n "meta": {"entry": 1},\n "entry" :\t5}',
            ("malformed", "Bundle.entry is not a list", (3, 12)),
        ),
        (b'\n {"id": "x"}', ("malformed", "not a FHIR resource (no 'resourceType')", (2, 2))),
        (b"  [1, 2]", ("malformed", "not a FHIR resource (no 'resourceType')", (1, 3))),
    ],
    ids=["not-json", "empty", "not-utf8", "entry-not-list", "no-resource-type", "array"],
)
def test_a_bad_fhir_file_is_located(
    tmp_path: Path,
    protocol: Any,
    mapping: FhirMapping,
    content: bytes,
    expected: tuple[str, str, tuple[int, int]],
) -> None:
    """Each at its line and column (code, start of message, place)."""
    path = tmp_path / "patients.json"
    path.write_bytes(content)
    code, message, where, _ = file_problem(path, lambda p: read_fhir(p, protocol.reader, mapping))
    assert code == expected[0] and message.startswith(expected[1]) and where == expected[2]


def test_line_errors_of_fhir_ndjson_name_line_and_column(protocol: Any, tmp_path: Path) -> None:
    path = tmp_path / "Patient.ndjson"
    path.write_bytes(
        b'{"resourceType": "Patient", "id": "A"}\n{"resourceType": "Patient", "id": "\xff"}\n'
        b'{"resourceType": "Patient",\n'
    )
    good, bad_byte, not_json = read_fhir(path, protocol.reader)
    assert isinstance(good, Record)
    for found, line, message in [
        (bad_byte, 2, "not UTF-8 text (byte 0xff at column 36)"),
        (not_json, 3, "not valid JSON: Expecting property name enclosed in double quotes"),
    ]:
        ((rid, _, code, text),) = problems(found)
        assert (rid, code) == (f"Patient.ndjson:{line}", "malformed")
        assert text.startswith(f"line Patient.ndjson:{line}: {message}")


def test_a_fhir_decimal_beyond_any_exponent_spoils_only_its_resource(
    protocol: Any, mapping: FhirMapping, tmp_path: Path
) -> None:
    # Decimal() raised InvalidOperation (no ValueError) out of the JSON parser: every patient
    # of the Bundle was lost to a traceback.
    text = BUNDLE.read_text(encoding="utf-8")
    value = re.search(r'"value": (\d+(?:\.\d+)?)', text)
    assert value is not None
    path = tmp_path / "patients.json"
    path.write_text(text[: value.start(1)] + "1e99999999999999999999" + text[value.end(1) :])
    results = list(read_fhir(path, protocol.reader, mapping))
    assert len(results) == len(list(read_fhir(BUNDLE, protocol.reader, mapping)))
    [bad] = [r for r in results if isinstance(r, RecordError)]
    assert any(d.field and d.field.endswith("valueQuantity.value") for d in bad.diagnostics)


@pytest.mark.parametrize("brk", ["\u2028", "\u2029", "\x85"])
def test_jsonl_output_is_one_line_per_record_for_any_line_reader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], brk: str
) -> None:
    # A key holding U+2028 came back in the error's field path, raw: str.splitlines (and
    # other line readers) saw two lines, the second not JSON. Found by the FHIR fuzzer.
    path = tmp_path / "records.jsonl"
    records = [{"id": "A", f"se{brk}x": "male"}, {"id": "B", "sex": "male"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    status, out, _ = run(capsys, "screen", SEED, path, "--format", "jsonl")
    assert status == 1
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["id"] for line in lines] == ["A", "B"]
    assert lines[0]["errors"][0]["field"] == f"se{brk}x"
