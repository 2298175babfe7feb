"""FHIR R4 input: mapping of each resource type, units and reference ranges, problems
reported per resource, the mapping file, and the bundled example patients screened exactly
as their equivalent JSON records."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from helpers import ROOT, SEED, run
from protocode.core.errors import Diagnostic, LoadError, RecordError
from protocode.pipeline import load
from protocode.records import Observation, Occurrence, Record, read_records
from protocode.records.fhir import (
    FhirMapping,
    is_fhir_input,
    load_map,
    read_fhir,
    records_from_resources,
)

EXAMPLES = SEED / "examples"
BUNDLE = EXAMPLES / "fhir" / "patients.bundle.json"
BULK = EXAMPLES / "fhir" / "bulk"
MAP = EXAMPLES / "fhir" / "map.yaml"
EQUIVALENT = EXAMPLES / "fhir-equivalent.jsonl"

LOINC, SNOMED, ATC = "http://loinc.org", "http://snomed.info/sct", "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"
LOCAL = "https://protocode.example/fhir/CodeSystem/NCT06125106"
REFUTED = {"coding": [{"code": "refuted"}]}


@pytest.fixture(scope="module")
def protocol() -> Any:
    return load(SEED)


@pytest.fixture(scope="module")
def mapping(protocol: Any) -> FhirMapping:
    return FhirMapping.build(
        protocol.reader.items.values(), protocol.reader.attestations, load_map(MAP)
    )


def cc(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def patient(pid: str = "P1", **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, **fields}


def res(rtype: str, pid: str = "P1", **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": rtype, "subject": {"reference": f"Patient/{pid}"}}
    if rtype == "Observation":
        out["status"] = "final"
    if rtype in ("Procedure", "MedicationAdministration", "MedicationStatement"):
        out["status"] = "completed"
    return out | fields


def lab(
    code: str, value: Any, unit: str, date: str = "2024-03-04", **fields: Any
) -> dict[str, Any]:
    """A LOINC-coded lab Observation; `fields` override or add elements (e.g. a
    `valueQuantity` with a comparator)."""
    quantity = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    base = {"code": cc(LOINC, code), "effectiveDateTime": date, "valueQuantity": quantity}
    return res("Observation", **(base | fields))


def screening(start: str) -> dict[str, Any]:
    """A screening Encounter; `class` is required (1..1) in R4, unlike R5."""
    ambulatory = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}
    fields: dict[str, Any] = {"class": ambulatory, "period": {"start": start}}
    return res("Encounter", status="finished", type=[cc(LOCAL, "screening")], **fields)


def read(
    protocol: Any, mapping: FhirMapping | None, *resources: dict[str, Any]
) -> tuple[list[Record | RecordError], list[Diagnostic]]:
    warnings: list[Diagnostic] = []
    found = list(
        records_from_resources(
            [(f"entry[{i}].resource", r) for i, r in enumerate(resources)],
            protocol.reader,
            mapping,
            warnings.append,
        )
    )
    return found, warnings


def one(protocol: Any, mapping: FhirMapping | None, *resources: dict[str, Any]) -> Record:
    found, _ = read(protocol, mapping, *resources)
    assert len(found) == 1
    result = found[0]
    assert isinstance(result, Record), result
    return result


def error(protocol: Any, mapping: FhirMapping | None, *resources: dict[str, Any]) -> RecordError:
    found, _ = read(protocol, mapping, *resources)
    bad = [r for r in found if isinstance(r, RecordError)]
    assert len(bad) == 1, found
    return bad[0]


# --- the bundled examples ------------------------------------------------------------------


@pytest.mark.parametrize("source", [BUNDLE, BULK], ids=["bundle", "bulk-ndjson"])
def test_cli_screens_fhir_like_the_equivalent_records(
    capsys: pytest.CaptureFixture[str], source: Path
) -> None:
    status, out, err = run(capsys, "screen", SEED, source, "--fhir-map", MAP, "--format", "json")
    assert status == 0, err
    from_fhir = json.loads(out)
    status, out, _ = run(capsys, "screen", SEED, EQUIVALENT, "--format", "json")
    assert status == 0
    from_records = json.loads(out)
    assert from_fhir == from_records
    statuses = {r["id"]: r["status"] for r in from_fhir}
    assert statuses == {
        "FHIR-001": "eligible",
        "FHIR-002": "ineligible",
        "FHIR-003": "ineligible",
        "FHIR-004": "indeterminate",
    }
    # The one resource no item uses is reported, not dropped silently.
    assert err.count("warning:") == 1
    assert "unmapped: Observation/fhir-004-obs-38" in err and "8867-4" in err


def test_fhir_records_equal_the_equivalent_records(protocol: Any, mapping: FhirMapping) -> None:
    expected = {r.id: r for r in read_records(EQUIVALENT, protocol.reader) if isinstance(r, Record)}
    for source in (BUNDLE, BULK):
        found = list(read_fhir(source, protocol.reader, mapping))
        assert all(isinstance(r, Record) for r in found)
        assert {r.id: r for r in found if isinstance(r, Record)} == expected


def test_explain_reads_fhir(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "explain", SEED, BUNDLE, "--fhir-map", MAP, "--id", "FHIR-002")
    assert status == 0
    assert "ULN = 35 U/L (reference range)" in out


def test_input_detection(tmp_path: Path) -> None:
    assert is_fhir_input(BUNDLE)
    assert is_fhir_input(BULK)
    assert is_fhir_input(BULK / "Observation.ndjson")
    assert not is_fhir_input(EQUIVALENT)
    assert not is_fhir_input(EXAMPLES / "patients.jsonl")
    assert not is_fhir_input(tmp_path)


def test_fhir_map_needs_fhir_input(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "screen", SEED, EQUIVALENT, "--fhir-map", MAP)
    assert status == 1
    assert "--fhir-map applies to FHIR input only" in err


def test_forced_fhir_input_on_records_reports_them(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "screen", SEED, EQUIVALENT, "--input", "fhir", "--format", "json")
    assert status == 1
    results = json.loads(out)
    assert {r["status"] for r in results} == {"error"}
    assert "missing resourceType" in results[0]["errors"][0]["message"]


# --- mapping each resource type ------------------------------------------------------------


def test_patient_and_research_subject(protocol: Any) -> None:
    record = one(
        protocol,
        None,
        patient(birthDate="1985-06-14", gender="female"),
        {
            "resourceType": "ResearchSubject",
            "status": "on-study",
            "study": {"display": "NCT06125106"},
            "individual": {"reference": "Patient/P1"},
            "period": {"start": "2024-03-08T10:00:00+08:00"},
        },
    )
    assert record.values == {
        "birth_date": record.values["birth_date"],
        "sex": "female",
        "enrollment": record.values["enrollment"],
    }
    assert str(record.values["birth_date"]) == "1985-06-14"
    assert str(record.values["enrollment"]) == "2024-03-08"


def test_gender_unknown_is_missing_and_other_is_an_error(protocol: Any) -> None:
    assert "sex" not in one(protocol, None, patient(gender="unknown")).values
    bad = error(protocol, None, patient(gender="other"))
    (d,) = bad.diagnostics
    assert (d.code, d.field, d.record_id) == ("bad-value", "entry[0].resource.gender", "P1")
    assert "gender 'other' is not one of male, female" in d.message


def test_observation_units_and_reference_range(protocol: Any) -> None:
    """Creatinine in µmol/L (UCUM) is converted exactly through the molar mass, with its
    reference range; a ULN item keeps the lab's range."""
    record = one(
        protocol,
        None,
        patient(),
        lab(
            "2160-0",
            80,
            "umol/L",
            referenceRange=[
                {
                    "low": {"value": 62, "system": UCUM, "code": "umol/L"},
                    "high": {"value": 106, "system": UCUM, "code": "umol/L"},
                }
            ],
        ),
        lab("1920-8", 95, "U/L", referenceRange=[{"high": {"value": 35, "code": "U/L"}}]),
        lab("29463-7", 128, "[lb_av]", date="2024-03-01"),
    )
    (creatinine,) = record.series["creatinine"]
    factor = Fraction(11312, 1_000_000)  # umol/L -> mg/dL at 113.12 g/mol
    assert creatinine.value == 80 * factor
    assert (creatinine.low, creatinine.high) == (62 * factor, 106 * factor)
    assert str(creatinine.date) == "2024-03-04"
    assert record.series["ast"] == (Observation(95, creatinine.date, None, 35),)
    assert record.values["weight"] == 128 * Fraction("0.45359237")


def test_observation_exact_decimals(protocol: Any) -> None:
    record = one(protocol, None, patient(), lab("2160-0", 1.05, "mg/dL"))
    assert record.series["creatinine"][0].value == Fraction(21, 20)


def test_observation_problems_point_at_the_element(protocol: Any) -> None:
    bad = error(
        protocol,
        None,
        patient(),
        lab("2160-0", 1, "mL"),
        lab("1742-6", 5, "U/L", valueQuantity={"value": 5, "comparator": "<", "code": "U/L"}),
    )
    found = {d.field: d for d in bad.diagnostics}
    unit = found["entry[1].resource.valueQuantity.code"]
    assert unit.code == "unit-mismatch"
    assert "cannot convert mL to mg/dL" in unit.message
    assert "creatinine[0].unit" in unit.message
    comparator = found["entry[2].resource.valueQuantity.comparator"]
    assert "'< 5' is not an exact number" in comparator.message


def test_coded_values_and_facts(protocol: Any, mapping: FhirMapping) -> None:
    negative = {"coding": [{"system": SNOMED, "code": "260385009"}]}
    record = one(
        protocol,
        mapping,
        patient(),
        res("Observation", code=cc(LOINC, "5196-1"), valueCodeableConcept=negative),
        res("Observation", code=cc(LOINC, "89247-1"), valueInteger=2),
        res("Observation", code=cc(LOCAL, "hematologic_cr"), valueBoolean=True),
        res("Observation", code=cc(LOCAL, "diagnosis"), valueString="B-ALL"),
        res(
            "Observation",
            code=cc(LOCAL, "mrd_flow"),
            effectiveDateTime="2024-02-20",
            valueCodeableConcept={"coding": [{"system": SNOMED, "code": "10828004"}]},
        ),
    )
    assert record.values == {
        "hbsag": "negative",
        "ecog": 2,
        "hematologic_cr": True,
        "diagnosis": "B-ALL",
    }
    assert record.series["mrd_flow"][0].value == "positive"


def test_unknown_answer_code_is_an_error(protocol: Any) -> None:
    bad = error(
        protocol,
        None,
        patient(),
        res("Observation", code=cc(LOINC, "5196-1"), valueCodeableConcept=cc(SNOMED, "1")),
    )
    (d,) = bad.diagnostics
    assert d.field == "entry[1].resource.valueCodeableConcept"
    assert "items.hbsag.values" in d.message


def test_latest_fact_wins(protocol: Any) -> None:
    record = one(
        protocol,
        None,
        patient(),
        lab("29463-7", 70, "kg", date="2024-03-01"),
        lab("29463-7", 71, "kg", date="2024-02-01"),
    )
    assert record.values["weight"] == 70


def test_condition(protocol: Any, mapping: FhirMapping) -> None:
    record = one(
        protocol,
        mapping,
        patient(),
        res("Condition", code=cc(SNOMED, "86406008")),
        res("Condition", code=cc(SNOMED, "77386006"), verificationStatus=REFUTED),
        res(
            "Condition",
            code=cc(LOCAL, "active_autoimmune_disease"),
            clinicalStatus={"coding": [{"code": "resolved"}]},
        ),
        res(
            "Condition",
            code=cc(SNOMED, "22298006"),
            onsetDateTime="2023-10-01",
            abatementDateTime="2023-10-20",
        ),
        res("Condition", code=cc(LOCAL, "cns_leukemia"), verificationStatus=REFUTED),
        res("Condition", code=cc(LOCAL, "B-ALL")),
    )
    assert record.values == {
        "hiv_infection": True,
        "pregnant": False,
        "active_autoimmune_disease": False,
        "diagnosis": "B-ALL",
    }
    (mi,) = record.events["myocardial_infarction"]
    assert (str(mi.date), str(mi.end)) == ("2023-10-01", "2023-10-20")
    assert record.events["cns_leukemia"] == ()


def test_condition_for_a_code_item_needs_a_value(protocol: Any, mapping: FhirMapping) -> None:
    bad = error(protocol, mapping, patient(), res("Condition", code=cc(LOCAL, "diagnosis")))
    assert "give the value in the mapping file" in bad.diagnostics[0].message


def test_medications(protocol: Any) -> None:
    medication = {"resourceType": "Medication", "id": "m1", "code": cc(ATC, "L01FX07")}
    record = one(
        protocol,
        None,
        patient(),
        medication,
        res(
            "MedicationAdministration",
            medicationReference={"reference": "Medication/m1"},
            effectivePeriod={"start": "2023-11-02", "end": "2023-11-08"},
        ),
        res(
            "MedicationStatement",
            contained=[{"resourceType": "Medication", "id": "c", "code": cc(ATC, "L01FX07")}],
            medicationReference={"reference": "#c"},
            effectiveDateTime="2023-12-01",
        ),
    )
    dates = [(str(o.date), str(o.end)) for o in record.events["blinatumomab"]]
    assert dates == [("2023-11-02", "2023-11-08"), ("2023-12-01", "None")]


def test_negated_medication_and_procedure_mean_known_none(protocol: Any) -> None:
    record = one(
        protocol,
        None,
        patient(),
        res(
            "MedicationStatement",
            status="not-taken",
            medicationCodeableConcept=cc(ATC, "L01FX07"),
        ),
        res("Procedure", status="not-done", code=cc(SNOMED, "234336002")),
    )
    assert record.events == {"blinatumomab": (), "hsct": ()}


def test_procedure(protocol: Any) -> None:
    record = one(
        protocol,
        None,
        patient(),
        res("Procedure", code=cc(SNOMED, "234336002"), performedDateTime="2020-05-01T08:00:00Z"),
        res("Procedure", status="not-done", code=cc(SNOMED, "234336002")),
        res("Procedure", status="entered-in-error", code=cc(SNOMED, "234336002")),
    )
    assert record.events["hsct"] == (Occurrence(record.events["hsct"][0].date),)
    assert str(record.events["hsct"][0].date) == "2020-05-01"


def test_anchors_and_attestations(protocol: Any, mapping: FhirMapping) -> None:
    record = one(
        protocol,
        mapping,
        patient(),
        screening("2024-03-01"),
        res("Observation", code=cc(LOCAL, "informed_consent"), valueBoolean=True),
        res(
            "Observation",
            code=cc(LOCAL, "unable_to_comply"),
            valueCodeableConcept=cc("http://terminology.hl7.org/CodeSystem/v2-0136", "N"),
        ),
    )
    assert str(record.values["screening"]) == "2024-03-01"
    assert record.attestations == {"informed_consent": True, "unable_to_comply": False}


def test_conflicting_anchor_dates(protocol: Any, mapping: FhirMapping) -> None:
    bad = error(
        protocol,
        mapping,
        patient(),
        screening("2024-03-01"),
        screening("2024-03-02"),
    )
    (d,) = bad.diagnostics
    assert d.code == "conflict"
    assert "2024-03-01 (entry[1].resource), 2024-03-02 (entry[2].resource)" in d.message


# --- problems: reported, never dropped ----------------------------------------------------


def test_malformed_resource_fails_its_patient_only(protocol: Any) -> None:
    found, _ = read(
        protocol,
        None,
        patient("P1"),
        patient("P2", gender="male"),
        lab("2160-0", "abc", "mg/dL"),
        res("Observation", pid="P2", code=cc(LOINC, "89247-1"), valueInteger=1),
    )
    p1, p2 = found
    assert isinstance(p1, RecordError)
    (d,) = p1.diagnostics
    assert (d.code, d.record_id) == ("malformed", "P1")
    assert d.field == "entry[2].resource.valueQuantity.value"
    assert isinstance(p2, Record) and p2.values == {"sex": "male", "ecog": 1}


def test_resource_of_no_patient_is_its_own_error(protocol: Any) -> None:
    found, _ = read(protocol, None, patient("P1"), lab("2160-0", 1, "mg/dL") | {"subject": None})
    assert isinstance(found[0], Record)
    orphan = found[1]
    assert isinstance(orphan, RecordError)
    (d,) = orphan.diagnostics
    assert (d.code, d.record_id, d.field) == ("unknown-patient", "entry[1].resource",
                                              "entry[1].resource.subject")  # fmt: skip


def test_unmapped_and_unsupported_resources_are_warnings(protocol: Any) -> None:
    found, warnings = read(
        protocol,
        None,
        patient(),
        lab("8867-4", 72, "/min"),
        {"resourceType": "Organization", "name": "ZJU"},
    )
    assert isinstance(found[0], Record)
    by_code = {w.code: w for w in warnings}
    assert all(w.severity == "warning" for w in warnings)
    unmapped = by_code["unmapped"]
    assert (unmapped.record_id, unmapped.field) == ("P1", "entry[1].resource")
    assert "http://loinc.org|8867-4" in unmapped.message
    assert "1 Organization resource not read" in by_code["unsupported-resource"].message


def test_cli_counts_bad_resources_and_goes_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bundle = json.loads(BUNDLE.read_text(encoding="utf-8"))
    entries = bundle["entry"]
    first_lab = next(
        i
        for i, e in enumerate(entries)
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"]["coding"][0]["code"] == "1920-8"
    )
    entries[first_lab]["resource"]["valueQuantity"]["value"] = "high"
    unmapped = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    entries.append({"resource": unmapped | {"subject": {"reference": "Patient/X"}}})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    status, out, err = run(capsys, "screen", SEED, path, "--fhir-map", MAP, "--format", "jsonl")
    assert status == 1
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["status"] for r in results] == [
        "error",
        "ineligible",
        "ineligible",
        "indeterminate",
        "error",
    ]
    assert results[0]["errors"][0]["field"] == f"entry[{first_lab}].resource.valueQuantity.value"
    assert results[4]["id"] == f"entry[{len(entries) - 1}].resource"
    assert "total               5" in err


def test_ndjson_line_that_is_not_json(protocol: Any, tmp_path: Path) -> None:
    path = tmp_path / "Patient.ndjson"
    path.write_text('{"resourceType": "Patient", "id": "A"}\n{oops\n', encoding="utf-8")
    found = list(read_fhir(path, protocol.reader))
    assert isinstance(found[0], Record)
    assert isinstance(found[1], RecordError)
    assert found[1].diagnostics[0].record_id == "Patient.ndjson:2"
    # The column within the line: the parser's own "line 1" would contradict the line's number.
    assert (
        found[1]
        .diagnostics[0]
        .message.endswith(
            "not valid JSON: Expecting property name enclosed in double quotes (column 2)"
        )
    )


def test_unreadable_input_raises_once(protocol: Any, tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(RecordError, match="not a FHIR resource"):
        list(read_fhir(path, protocol.reader))


# --- the mapping file ---------------------------------------------------------------------


def test_mapping_file_problems_point_into_the_file(protocol: Any, tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(
        "protocode-fhir-map: 1\n"
        "patient: {gender: weight}\n"
        "items:\n"
        "  creatinin: [{loinc: '14682-9'}]\n"
        "  diagnosis: [{snomed: '1', value: AML}]\n"
        "  ecog: [{loinc: '1', system: x}]\n",
        encoding="utf-8",
    )
    with pytest.raises(LoadError) as shape:
        load_map(path)
    assert [d.span.line for d in shape.value.diagnostics if d.span] == [6]
    path.write_text(
        path.read_text(encoding="utf-8").replace("  ecog: [{loinc: '1', system: x}]\n", "")
    )
    with pytest.raises(LoadError) as meaning:
        FhirMapping.build(protocol.reader.items.values(), protocol.reader.attestations,
                          load_map(path))  # fmt: skip
    messages = {d.span.line if d.span else 0: d.message for d in meaning.value.diagnostics}
    assert "cannot go to 'weight'" in messages[2]
    assert "no data item 'creatinin' (did you mean 'creatinine'?)" in messages[4]
    assert "'AML' is not a value of 'diagnosis'" in messages[5]


def test_bundled_map_loads(mapping: FhirMapping) -> None:
    assert mapping.enrollment == "enrollment"
    assert mapping.deceased == "death"
    assert mapping.match([("http://loinc.org", "14682-9")])[0].name == "creatinine"
    assert mapping.match([(LOCAL, "informed_consent")])[0].attestation


def test_example_files_are_in_sync() -> None:
    """The NDJSON export holds exactly the Bundle's resources."""
    bundle = json.loads(BUNDLE.read_text(encoding="utf-8"))
    from_bundle = sorted(json.dumps(e["resource"], sort_keys=True) for e in bundle["entry"])
    from_bulk = sorted(
        json.dumps(json.loads(line), sort_keys=True)
        for f in BULK.glob("*.ndjson")
        for line in f.read_text(encoding="utf-8").splitlines()
        if line.strip()
    )
    assert from_bundle == from_bulk
    assert (ROOT / "docs" / "fhir.md").exists()


def test_the_mapping_file_schema_is_a_valid_schema() -> None:
    from protocode.document.schema import SchemaValidator, shipped_schema

    SchemaValidator.check_schema(shipped_schema("fhir-map"))


def test_mapping_file_form_problems(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(
        "protocode-fhir-map: 1.0\n"
        "patient: {gender: [sex], age: x}\n"
        "items:\n"
        "  ecog: {codes: [{loinc: '1', snomed: '2'}], value: 1}\n"
        "  sex: 5\n"
        "attestations:\n"
        "  consent: [{system: s, code: c, value: v}, [x]]\n",
        encoding="utf-8",
    )
    with pytest.raises(LoadError) as caught:
        load_map(path)
    shape = (
        "a code is one of {loinc: X}, {snomed: X}, {rxnorm: X}, {atc: X} or {system: URI, code: X}"
    )
    assert [(d.span.line if d.span else 0, d.message) for d in caught.value.diagnostics] == [
        (1, "unknown format version (expected 1)"),
        (2, "'gender' must be a single value"),
        (2, "unknown key 'age' (expected birthDate, gender, deceased)"),
        (4, shape),
        (4, "unknown key 'value' (did you mean 'values'?)"),
        (5, "item 'sex' must be a list of codes"),
        (7, "an attestation's code takes no 'value'"),
        (7, "a code must be a mapping"),
        (7, shape),
    ]
