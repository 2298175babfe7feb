"""Patient records: parsing, exact units, diagnostics, file formats and the record schema."""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocode.core.errors import RecordError
from protocode.core.exact import Rational
from protocode.core.source import Source
from protocode.document.model import DataItem, Quantity
from protocode.records import (
    Observation,
    Occurrence,
    Record,
    RecordReader,
    iter_records,
    read_records,
)

FIXTURES = Path(__file__).parent / "fixtures" / "records"
SPAN = Source("<t>", "").whole


def item(name: str, kind: str, type_: str, **kw: Any) -> DataItem:
    return DataItem(name, kind, type_, SPAN, **kw)  # type: ignore[arg-type]


ITEMS = (
    item("enrollment", "anchor", "date"),
    item("birth_date", "fact", "date"),
    item("sex", "fact", "code", values=("male", "female")),
    item("weight", "fact", "quantity", unit="kg", minimum="1", maximum="400"),
    item("height", "fact", "quantity", unit="cm", minimum="30", maximum="250"),
    item("ecog", "fact", "integer", minimum="0", maximum="5"),
    item("lvef", "fact", "number", minimum="0", maximum="100"),
    item("cd19_positive", "fact", "boolean"),
    item("diagnosis", "fact", "text"),
    item(
        "creatinine",
        "observation",
        "quantity",
        unit="mg/dL",
        minimum="0",
        maximum="30",
        molar_mass=Quantity("113.12", "g/mol", SPAN),
    ),
    item("ast", "observation", "quantity", unit="U/L"),
    item("mutation", "observation", "code", values=("positive", "negative")),
    item("chemotherapy", "event", "boolean"),
    item("hsct", "event", "boolean"),
)
ATTESTATIONS = ("informed_consent", "contraception")

GOOD: dict[str, Any] = {
    "id": "P001",
    "enrollment": "2024-03-01",
    "sex": "female",
    "weight": 42.0,
    "height": {"value": 65, "unit": "[in_i]"},
    "ecog": 1,
    "lvef": 55.5,
    "cd19_positive": True,
    "diagnosis": "B-ALL",
    "creatinine": [
        {"value": 1.05, "unit": "mg/dL", "date": "2024-02-28"},
        {"value": 93, "unit": "umol/L", "date": "2024-01-10"},
    ],
    "ast": [{"value": 50, "date": "2024-02-28", "reference_range": {"low": 0, "high": 40}}],
    "mutation": [{"value": "positive", "date": None}],
    "chemotherapy": [{"date": "2024-02-10", "end": "2024-02-14"}],
    "hsct": [],
    "attestations": {"informed_consent": True},
}


@pytest.fixture(scope="module")
def reader() -> RecordReader:
    return RecordReader(ITEMS, ATTESTATIONS)


def errors_of(reader: RecordReader, obj: object) -> list[tuple[str | None, str, str]]:
    with pytest.raises(RecordError) as info:
        reader.parse(obj)
    return [(d.field, d.code, d.message) for d in info.value.diagnostics]


# --- happy path ---------------------------------------------------------------------------------


def test_good_record_every_type(reader: RecordReader) -> None:
    r = reader.parse(GOOD)
    assert r.id == "P001"
    assert r.values == {
        "enrollment": dt.date(2024, 3, 1),
        "sex": "female",
        "weight": 42,
        "height": Fraction("165.1"),
        "ecog": 1,
        "lvef": Fraction("55.5"),
        "cd19_positive": True,
        "diagnosis": "B-ALL",
    }
    assert type(r.values["weight"]) is int
    # Sorted by date: the umol/L value from January comes first, converted exactly.
    assert r.series["creatinine"] == (
        Observation(Fraction("1.052016"), dt.date(2024, 1, 10)),
        Observation(Fraction(21, 20), dt.date(2024, 2, 28)),
    )
    assert r.series["ast"] == (Observation(50, dt.date(2024, 2, 28), 0, 40),)
    assert r.series["mutation"] == (Observation("positive", None),)
    assert r.events == {
        "chemotherapy": (Occurrence(dt.date(2024, 2, 10), dt.date(2024, 2, 14)),),
        "hsct": (),
    }
    assert r.attestations == {"informed_consent": True}


def test_missing_is_absent_and_empty_list_is_known_none(reader: RecordReader) -> None:
    r = reader.parse({"id": "P9", "sex": None, "creatinine": None, "hsct": [], "ast": []})
    assert r == Record("P9", {}, {"ast": ()}, {"hsct": ()}, {})


def test_integer_id_becomes_text(reader: RecordReader) -> None:
    assert reader.parse({"id": 17}).id == "17"


def test_creatinine_umol_per_litre_is_exact(reader: RecordReader) -> None:
    r = reader.parse({"id": "x", "creatinine": [{"value": 93, "unit": "umol/L"}]})
    value = r.series["creatinine"][0].value
    assert value == Fraction(93) * Fraction("113.12") / 10_000
    assert isinstance(value, Rational)  # exact GMP rational, never a float


def test_weight_in_pounds_is_exact(reader: RecordReader) -> None:
    r = reader.parse({"id": "x", "weight": {"value": 154, "unit": "[lb_av]"}})
    assert r.values["weight"] == 154 * Fraction("0.45359237")


def test_reference_range_converted_with_the_value(reader: RecordReader) -> None:
    obs = {"value": 88.4, "unit": "umol/L", "reference_range": {"low": 44, "high": 106}}
    r = reader.parse({"id": "x", "creatinine": [obs]})
    factor = Fraction("113.12") / 10_000
    assert r.series["creatinine"][0] == Observation(
        Fraction("88.4") * factor, None, 44 * factor, 106 * factor
    )


def test_python_float_is_read_through_its_repr(reader: RecordReader) -> None:
    r = reader.parse({"id": "x", "creatinine": [{"value": 1.05}], "lvef": 0.1})
    assert r.series["creatinine"][0].value == Fraction(21, 20)
    assert r.values["lvef"] == Fraction(1, 10)


def test_integral_fraction_is_stored_as_int(reader: RecordReader) -> None:
    r = reader.parse({"id": "x", "ecog": Fraction(2), "weight": Fraction(140, 2)})
    assert type(r.values["ecog"]) is int
    assert type(r.values["weight"]) is int


def test_undated_observations_sort_last(reader: RecordReader) -> None:
    obs = [{"value": 1}, {"value": 2, "date": "2024-02-01"}, {"value": 3, "date": "2024-01-01"}]
    r = reader.parse({"id": "x", "creatinine": obs})
    assert [o.value for o in r.series["creatinine"]] == [3, 2, 1]


def test_event_shorthand_and_undated_occurrence(reader: RecordReader) -> None:
    r = reader.parse({"id": "x", "chemotherapy": ["2024-01-05", {"date": None}]})
    assert r.events["chemotherapy"] == (Occurrence(dt.date(2024, 1, 5)), Occurrence(None))


# --- errors -------------------------------------------------------------------------------------

ERROR_CASES = [
    ({"enrollment": "2024-13-01"}, "enrollment", "expected a date YYYY-MM-DD, got '2024-13-01'"),
    ({"birth_date": "2024-3-1"}, "birth_date", "expected a date YYYY-MM-DD, got '2024-3-1'"),
    ({"weight": "42"}, "weight", "expected a number in kg or {value, unit}, got '42'"),
    ({"weight": {"value": 42, "unit": "mgg/dL"}}, "weight.unit", "unknown unit 'mgg"),
    ({"weight": {"value": 42, "unit": "mL"}}, "weight.unit", "cannot convert mL to kg"),
    ({"weight": {"unit": "kg"}}, "weight.value", "missing value"),
    ({"weight": {"value": 1, "units": "kg"}}, "weight.units", "unknown field 'units'"),
    (
        {"weight": {"value": 1000, "unit": "[lb_av]"}},
        "weight.value",
        "453.59237 kg is outside the plausible range 1 to 400 kg",
    ),
    ({"sex": "malee"}, "sex", "'malee' is not one of male, female"),
    ({"sex": 1}, "sex", "expected one of male, female, got 1"),
    ({"ecog": 1.5}, "ecog", "expected an integer, got 1.5"),
    ({"ecog": True}, "ecog", "expected an integer, got true"),
    ({"ecog": 7}, "ecog", "7 is outside the plausible range 0 to 5"),
    ({"lvef": float("nan")}, "lvef", "expected a number, got nan"),
    ({"cd19_positive": "yes"}, "cd19_positive", "expected true or false, got 'yes'"),
    ({"cd19_positive": 1}, "cd19_positive", "expected true or false, got 1"),
    ({"diagnosis": 3}, "diagnosis", "expected text, got 3"),
    ({"creatinin": []}, "creatinin", "unknown field 'creatinin' (did you mean 'creatinine'?)"),
    ({"creatinine": 1.2}, "creatinine", "expected a list of observations"),
    ({"creatinine": [1.2]}, "creatinine[0]", "expected an observation {value, date}, got 1.2"),
    ({"creatinine": [{"date": "2024-01-01"}]}, "creatinine[0].value", "missing value"),
    (
        {"creatinine": [{"value": 1, "unit": "mL"}]},
        "creatinine[0].unit",
        "cannot convert mL to mg/dL: volume is not mass/volume",
    ),
    ({"creatinine": [{"value": 1, "unit": "mgg/dL"}]}, "creatinine[0].unit", "unknown unit"),
    ({"creatinine": [{"value": 1, "unit": 3}]}, "creatinine[0].unit", "expected a unit"),
    ({"creatinine": [{"value": 1, "date": "yesterday"}]}, "creatinine[0].date", "YYYY-MM-DD"),
    ({"creatinine": [{"value": 40}]}, "creatinine[0].value", "outside the plausible range"),
    ({"creatinine": [{"value": 1, "dat": "2024-01-01"}]}, "creatinine[0].dat", "'date'?"),
    (
        {"ast": [{"value": 1, "unit": "mg/dL"}]},
        "ast[0].unit",
        "cannot convert mg/dL to U/L",
    ),
    (
        {"ast": [{"value": 5, "reference_range": {"low": 40, "high": 0}}]},
        "ast[0].reference_range",
        "low 40 is above high 0",
    ),
    (
        {"ast": [{"value": 5, "reference_range": {"low": "0"}}]},
        "ast[0].reference_range.low",
        "expected a number, got '0'",
    ),
    ({"mutation": [{"value": "positive", "unit": "mg"}]}, "mutation[0].unit", "has no unit"),
    ({"mutation": [{"value": "pos"}]}, "mutation[0].value", "'pos' is not one of positive"),
    (
        {"mutation": [{"value": "positive", "reference_range": {}}]},
        "mutation[0].reference_range",
        "not numeric",
    ),
    ({"chemotherapy": "2024-01-01"}, "chemotherapy", "expected a list of occurrences"),
    ({"chemotherapy": ["2024-02-30"]}, "chemotherapy[0]", "got '2024-02-30'"),
    ({"chemotherapy": [3]}, "chemotherapy[0]", "expected an occurrence"),
    (
        {"chemotherapy": [{"date": "2024-02-14", "end": "2024-02-10"}]},
        "chemotherapy[0].end",
        "end 2024-02-10 is before date 2024-02-14",
    ),
    ({"chemotherapy": [{"end": "2024-02-10"}]}, "chemotherapy[0].end", "undated"),
    ({"attestations": []}, "attestations", "expected an object"),
    (
        {"attestations": {"informed_consnt": True}},
        "attestations.informed_consnt",
        "unknown attestation 'informed_consnt' (did you mean 'informed_consent'?)",
    ),
    (
        {"attestations": {"informed_consent": "yes"}},
        "attestations.informed_consent",
        "expected true or false, got 'yes'",
    ),
]


@pytest.mark.parametrize(("fields", "field", "message"), ERROR_CASES)
def test_field_error(
    reader: RecordReader, fields: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(RecordError) as info:
        reader.parse({"id": "P1", **fields})
    (diag,) = info.value.diagnostics
    assert diag.record_id == "P1"
    assert diag.field == field
    assert message in diag.message
    assert diag.location == f"record P1, field {field}"


def test_error_codes(reader: RecordReader) -> None:
    bad = {
        "id": "P1",
        "weight": {"value": 1, "unit": "mgg"},
        "height": {"value": 1, "unit": "mL"},
        "ecog": 9,
        "sexx": "male",
        "lvef": "x",
    }
    assert {f: c for f, c, _ in errors_of(reader, bad)} == {
        "weight.unit": "unknown-unit",
        "height.unit": "unit-mismatch",
        "ecog": "out-of-range",
        "sexx": "unknown-field",
        "lvef": "bad-value",
    }


def test_three_bad_fields_give_three_diagnostics(reader: RecordReader) -> None:
    bad = {**GOOD, "enrollment": "2024-13-01", "sex": "malee", "creatinine": [{"value": "x"}]}
    with pytest.raises(RecordError) as info:
        reader.parse(bad)
    diags = info.value.diagnostics
    assert [d.field for d in diags] == ["creatinine[0].value", "enrollment", "sex"]
    assert {d.record_id for d in diags} == {"P001"}


def test_missing_or_bad_id_uses_where(reader: RecordReader) -> None:
    with pytest.raises(RecordError) as info:
        reader.parse({"sex": "male"}, where="line 3")
    (diag,) = info.value.diagnostics
    assert (diag.record_id, diag.field, diag.code) == ("line 3", "id", "missing-id")
    assert errors_of(reader, {"id": True}) == [
        ("id", "bad-value", "expected a non-empty string or integer id, got true")
    ]
    assert errors_of(reader, {"id": " "})[0][0] == "id"


def test_non_object_record(reader: RecordReader) -> None:
    assert errors_of(reader, [1, 2]) == [
        (None, "bad-record", "expected a record object, got a list")
    ]


def test_dictionary_problems_raise_at_construction() -> None:
    from protocode.core.errors import LoadError

    with pytest.raises(LoadError, match="reserved"):
        RecordReader([item("id", "fact", "text")], ())
    with pytest.raises(LoadError, match="unknown unit"):
        RecordReader([item("w", "fact", "quantity", unit="kgg")], ())


def test_iter_records_never_stops(reader: RecordReader) -> None:
    results = list(iter_records([GOOD, {"id": "P2", "sex": "x"}, "junk", {"id": "P4"}], reader))
    assert [type(r).__name__ for r in results] == ["Record", "RecordError", "RecordError", "Record"]
    junk = results[2]
    assert isinstance(junk, RecordError)
    assert junk.diagnostics[0].record_id == "#3"
    # Earlier results pass through untouched.
    assert list(iter_records(results, reader)) == results


# --- files --------------------------------------------------------------------------------------


def test_jsonl_file_yields_a_result_per_line(reader: RecordReader) -> None:
    results = list(read_records(FIXTURES / "cohort.jsonl", reader))
    good = [r for r in results if isinstance(r, Record)]
    bad = [r for r in results if isinstance(r, RecordError)]
    # Seven non-blank lines: three good records, one malformed line, three bad records.
    assert len(results) == 7
    assert (len(good), len(bad)) == (3, 4)
    assert [r.id for r in good] == ["P001", "4", "P007"]
    assert [e.diagnostics[0].record_id for e in bad] == ["line 2", "P003", "line 6", "line 7"]
    assert bad[0].diagnostics[0].code == "malformed"
    assert [d.field for d in bad[1].diagnostics] == ["enrollment", "sex"]
    # JSON text is read exactly: 1.05 is 21/20, 1e2 is the integer 100.
    assert good[0].series["creatinine"][0].value == Fraction(21, 20)
    assert good[0].values["weight"] == 42
    assert good[2].series["ast"][0] == Observation(100, dt.date(2024, 2, 1), 0, 40)
    assert good[2].series["creatinine"][0].value == Fraction("1.052016")


def test_json_file_array(reader: RecordReader) -> None:
    first, second = read_records(FIXTURES / "cohort.json", reader)
    assert isinstance(first, Record)
    assert first.values["height"] == Fraction("165.1")
    assert first.series["creatinine"][1].value == Fraction(21, 20)
    assert isinstance(second, RecordError)
    assert second.diagnostics[0].message == "'other' is not one of male, female"


def test_json_file_single_object(tmp_path: Path, reader: RecordReader) -> None:
    path = tmp_path / "one.json"
    path.write_text('{"id": "A", "lvef": 0.1}', encoding="utf-8")
    (r,) = read_records(path, reader)
    assert isinstance(r, Record)
    assert r.values["lvef"] == Fraction(1, 10)


def test_json_constants_and_huge_exponents_are_field_errors(
    tmp_path: Path, reader: RecordReader
) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text('{"id": "A", "lvef": NaN, "ecog": 1e999999}\n', encoding="utf-8")
    (r,) = read_records(path, reader)
    assert isinstance(r, RecordError)
    assert [(d.field, d.message) for d in r.diagnostics] == [
        (
            "ecog",
            "1e999999 is too long: a record number has at most 300 digits before and after "
            "the decimal point",
        ),
        ("lvef", "expected a number, got NaN"),
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", '{"id": "A",', "not valid JSON"),
        ("scalar.json", "3", "expected a record object or an array"),
        ("records.txt", "", "unknown record file type '.txt'"),
        ("latin1.json", b'{"id": "\xe9"}', "not UTF-8"),
        ("empty.csv", "", "empty CSV file"),
    ],
)
def test_unreadable_file_raises_once(
    tmp_path: Path, reader: RecordReader, name: str, content: str | bytes, message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(RecordError, match=message):
        list(read_records(path, reader))


def test_malformed_json_file_points_at_the_position(tmp_path: Path, reader: RecordReader) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"id": "A"},\n  {"id" "B"}\n]\n', encoding="utf-8")
    with pytest.raises(RecordError) as info:
        list(read_records(path, reader))
    span = info.value.diagnostics[0].span
    assert span is not None
    assert (span.line, span.col) == (3, 9)


def test_missing_file_raises(tmp_path: Path, reader: RecordReader) -> None:
    for suffix in (".json", ".jsonl", ".csv"):
        with pytest.raises(RecordError, match="cannot read records"):
            list(read_records(tmp_path / f"absent{suffix}", reader))


def test_jsonl_bad_utf8_line_is_a_record_error(tmp_path: Path, reader: RecordReader) -> None:
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b'{"id": "A"}\n{"id": "\xff"}\n{"id": "C"}\n')
    results = list(read_records(path, reader))
    assert [isinstance(r, Record) for r in results] == [True, False, True]


def test_csv_file(reader: RecordReader) -> None:
    results = list(read_records(FIXTURES / "cohort.csv", reader))
    assert len(results) == 5
    p1, p2, p3, p4, p5 = results
    assert isinstance(p1, Record)
    assert p1.values == {
        "enrollment": dt.date(2024, 3, 1),
        "sex": "female",
        "weight": 42,
        "ecog": 1,
        "cd19_positive": True,
    }
    assert p1.series == {
        "creatinine": (Observation(Fraction(21, 20), dt.date(2024, 2, 28)),),
        "ast": (Observation(50, dt.date(2024, 2, 28), 0, 40),),
    }
    assert p1.events == {
        "chemotherapy": (
            Occurrence(dt.date(2024, 2, 10), dt.date(2024, 2, 14)),
            Occurrence(dt.date(2024, 3, 20)),
        ),
        "hsct": (),
    }
    assert p1.attestations == {"informed_consent": True}
    assert isinstance(p2, Record)
    assert p2.values["weight"] == 154 * Fraction("0.45359237")
    assert p2.values["cd19_positive"] is False
    assert p2.series["creatinine"][0].value == Fraction("1.052016")
    assert "chemotherapy" not in p2.events and p2.attestations == {}
    # Field errors name the CSV column the bad cell is in.
    assert isinstance(p3, RecordError)
    assert [(d.record_id, d.field) for d in p3.diagnostics] == [
        ("P003", "cd19_positive"),
        ("P003", "creatinine_unit"),
        ("P003", "enrollment"),
        ("P003", "sex"),
        ("P003", "weight"),
    ]
    assert isinstance(p4, RecordError)
    assert p4.diagnostics[0].record_id == "P004"
    assert "cells" in p4.diagnostics[0].message
    assert isinstance(p5, RecordError)
    assert (p5.diagnostics[0].record_id, p5.diagnostics[0].field) == ("line 6", "id")


def test_csv_unknown_columns_are_one_file_error(tmp_path: Path, reader: RecordReader) -> None:
    path = tmp_path / "cols.csv"
    path.write_text(
        "id,creatinin,weight_date,ast_low,attest_consent\nP1,1,2024-01-01,0,true\n",
        encoding="utf-8",
    )
    with pytest.raises(RecordError) as info:
        list(read_records(path, reader))
    messages = [d.message for d in info.value.diagnostics]
    assert messages == [
        "unknown column 'creatinin' (did you mean 'creatinine'?)",
        "unknown column 'weight_date': 'weight' is a quantity fact, which has no _date column",
        "column 'ast_low' needs a column 'ast'",
        "unknown column 'attest_consent' (did you mean 'attest_informed_consent'?)",
    ]


def test_csv_needs_an_id_column(tmp_path: Path, reader: RecordReader) -> None:
    path = tmp_path / "noid.csv"
    path.write_text("sex\nmale\n", encoding="utf-8")
    with pytest.raises(RecordError, match="missing column 'id'"):
        list(read_records(path, reader))


def test_csv_round_trip_of_json_records(tmp_path: Path, reader: RecordReader) -> None:
    objs = [
        {"id": "A", "sex": "male", "weight": 70.5, "hsct": [], "creatinine": [{"value": 0.9}]},
        {"id": "B", "lvef": 60, "chemotherapy": ["2024-01-01", "2024-02-01"]},
    ]
    path = tmp_path / "round.csv"
    path.write_text(
        "id,sex,weight,lvef,creatinine,hsct,chemotherapy\n"
        "A,male,70.5,,0.9,none,\n"
        "B,,,60,,,2024-01-01;2024-02-01\n",
        encoding="utf-8",
    )
    from_csv = list(read_records(path, reader))
    from_json = list(iter_records(objs, reader))
    assert from_csv == from_json


# --- schema -------------------------------------------------------------------------------------


def test_schema_accepts_good_and_rejects_bad(reader: RecordReader) -> None:
    schema = reader.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = json.loads(json.dumps(GOOD))
    validator.validate(good)
    for bad in (
        {**good, "sex": "malee"},
        {**good, "creatinin": []},
        {**good, "attestations": {"informed_consent": "yes"}},
        {**good, "ecog": 9},
        {**good, "hsct": [{"date": "2024-1-1"}]},
        {key: value for key, value in good.items() if key != "id"},
    ):
        assert not validator.is_valid(bad), bad
    weight = schema["properties"]["weight"]
    assert "kg" in weight["description"]
    assert schema["properties"]["sex"]["anyOf"][0] == {"enum": ["male", "female"]}


def test_schema_and_parser_agree_on_the_fixture(reader: RecordReader) -> None:
    validator = jsonschema.Draft202012Validator(reader.schema())
    verdicts = []
    for line in (FIXTURES / "cohort.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        valid = validator.is_valid(obj)
        assert isinstance(next(iter_records([obj], reader)), Record) == valid, line
        verdicts.append(valid)
    # The fixture holds records on both sides, so neither direction passes on no record.
    assert True in verdicts and False in verdicts, verdicts


# --- robustness ---------------------------------------------------------------------------------

_NAMES = [i.name for i in ITEMS] + ["id", "attestations", "value", "unit", "date", "end"]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.fractions()
    | st.text(max_size=12)
    | st.sampled_from(["2024-02-29", "2023-02-29", "kg", "umol/L", "[lb_av]", "male", "mL"])
)
_KEYS = st.sampled_from(_NAMES) | st.text(max_size=8)
_JSONISH = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_KEYS, _JSONISH, max_size=8) | _JSONISH)
def test_any_input_parses_or_raises_record_error(obj: object) -> None:
    reader = RecordReader(ITEMS, ATTESTATIONS)
    try:
        result = reader.parse(obj)
    except RecordError as exc:
        assert exc.diagnostics
    else:
        assert isinstance(result, Record)
        for value in result.values.values():
            assert not isinstance(value, float)


# --- review fixes: date range, date-times, duplicate keys, CSV decoding, messages -------------

OUT_OF_RANGE = "is outside the supported range 1800-01-01 … 2200-12-31"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"enrollment": "0001-01-03"}, "enrollment"),
        ({"enrollment": "1799-12-31"}, "enrollment"),
        ({"birth_date": "2201-01-01"}, "birth_date"),
        ({"birth_date": "9999-12-31T23:59:59Z"}, "birth_date"),
        ({"creatinine": [{"value": 1, "date": "0001-01-03"}]}, "creatinine[0].date"),
        ({"chemotherapy": ["0001-01-03"]}, "chemotherapy[0]"),
        ({"chemotherapy": [{"date": "0001-01-03"}]}, "chemotherapy[0].date"),
        ({"chemotherapy": [{"date": "2024-01-01", "end": "9999-12-31"}]}, "chemotherapy[0].end"),
        ({"enrollment": dt.date(1, 1, 3)}, "enrollment"),
    ],
)
def test_dates_outside_the_supported_range_are_field_errors(
    reader: RecordReader, fields: dict[str, Any], field: str
) -> None:
    (problem,) = errors_of(reader, {"id": "P1", **fields})
    assert problem[:2] == (field, "out-of-range")
    assert problem[2].startswith("date ") and problem[2].endswith(OUT_OF_RANGE)
    if fields.get("enrollment") in ("0001-01-03", dt.date(1, 1, 3)):
        assert problem[2] == f"date 0001-01-03 {OUT_OF_RANGE}"


def test_dates_at_the_ends_of_the_range_are_accepted(reader: RecordReader) -> None:
    r = reader.parse(
        {
            "id": "P1",
            "enrollment": "1800-01-01",
            "birth_date": "2200-12-31",
            "chemotherapy": [{"date": "1800-01-01", "end": "2200-12-31"}],
        }
    )
    assert r.values == {"enrollment": dt.date(1800, 1, 1), "birth_date": dt.date(2200, 12, 31)}
    assert r.events["chemotherapy"] == (Occurrence(dt.date(1800, 1, 1), dt.date(2200, 12, 31)),)


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-05T10:00",
        "2024-03-05T10:00:00",
        "2024-03-05T10:00:00Z",
        "2024-03-05T10:00:00.123Z",
        "2024-03-05T10:00:00+08:00",
        # Late in the day west of UTC: still the 5th as written, no conversion to UTC.
        "2024-03-05T23:30:00-05:00",
        "2024-03-05T00:30+14:00",
        "2024-03-05T23:59:60Z",
    ],
)
def test_iso_date_times_keep_the_calendar_date_as_written(reader: RecordReader, text: str) -> None:
    r = reader.parse(
        {
            "id": "P1",
            "enrollment": text,
            "creatinine": [{"value": 1, "date": text}],
            "chemotherapy": [text, {"date": text, "end": text}],
        }
    )
    day = dt.date(2024, 3, 5)
    assert r.values["enrollment"] == day
    assert r.series["creatinine"][0].date == day
    assert r.events["chemotherapy"] == (Occurrence(day), Occurrence(day, day))


def test_python_datetime_keeps_its_date(reader: RecordReader) -> None:
    eight = dt.timezone(dt.timedelta(hours=8))
    r = reader.parse({"id": "P1", "enrollment": dt.datetime(2024, 3, 5, 1, 0, tzinfo=eight)})
    assert r.values["enrollment"] == dt.date(2024, 3, 5)


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-05T",
        "2024-03-05 10:00",
        "2024-03-05T25:00",
        "2024-03-05T10:60",
        "2024-03-05T10",
        "2024-03-05T10:00+0800",
        "2024-03-05T10:00+08:60",
        "2024-03-05Z",
        "2024-02-30T10:00",
        "20240305T1000",
    ],
)
def test_malformed_date_times_are_refused(reader: RecordReader, text: str) -> None:
    assert errors_of(reader, {"id": "P1", "enrollment": text}) == [
        ("enrollment", "bad-value", f"expected a date YYYY-MM-DD, got '{text}'")
    ]


def test_schema_accepts_date_times_and_refuses_unsupported_years(reader: RecordReader) -> None:
    validator = jsonschema.Draft202012Validator(reader.schema())
    assert validator.is_valid({"id": "A", "enrollment": "2024-03-05T10:00:00+08:00"})
    assert validator.is_valid({"id": "A", "chemotherapy": ["2024-03-05T10:00Z"]})
    assert not validator.is_valid({"id": "A", "enrollment": "0001-01-03"})
    assert not validator.is_valid({"id": "A", "enrollment": "2024-03-05 10:00"})


def test_duplicate_keys_in_jsonl_are_field_errors(tmp_path: Path, reader: RecordReader) -> None:
    path = tmp_path / "dup.jsonl"
    path.write_text(
        '{"id":"H","enrollment":"2024-03-08","enrollment":"2024-03-09"}\n'
        '{"id":"I","lvef":0.1,"creatinine":[{"value":1.05,"value":2}],'
        '"attestations":{"contraception":true,"contraception":false}}\n'
        '{"id":"J","lvef":0.1}\n'
        '{"enrollment":"2024-13-01","enrollment":"2024-03-09"}\n',
        encoding="utf-8",
    )
    h, i, j, k = read_records(path, reader)
    assert isinstance(h, RecordError)
    assert [(d.record_id, d.field, d.code, d.message) for d in h.diagnostics] == [
        ("H", "enrollment", "duplicate-field", "duplicate field 'enrollment'")
    ]
    assert isinstance(i, RecordError)
    assert [(d.field, d.message) for d in i.diagnostics] == [
        ("attestations.contraception", "duplicate field 'contraception'"),
        ("creatinine[0].value", "duplicate field 'value'"),
    ]
    # Other records are unaffected, and decimals stay exact.
    assert isinstance(j, Record)
    assert j.values["lvef"] == Fraction(1, 10)
    # Duplicates are reported alongside the record's other problems.
    assert isinstance(k, RecordError)
    assert [(d.record_id, d.field, d.code) for d in k.diagnostics] == [
        ("line 4", "enrollment", "duplicate-field"),
        ("line 4", "id", "missing-id"),
    ]


def test_duplicate_keys_in_a_json_file(tmp_path: Path, reader: RecordReader) -> None:
    path = tmp_path / "dup.json"
    path.write_text(
        '[{"id": "A", "lvef": 0.1},\n'
        ' {"id": "B", "weight": {"value": 70, "unit": "g", "unit": "kg"}}]',
        encoding="utf-8",
    )
    a, b = read_records(path, reader)
    assert isinstance(a, Record) and a.values["lvef"] == Fraction(1, 10)
    assert isinstance(b, RecordError)
    assert [(d.record_id, d.field, d.message) for d in b.diagnostics] == [
        ("B", "weight.unit", "duplicate field 'unit'")
    ]
    path.write_text('{"id": "A", "id": "B"}', encoding="utf-8")
    (one,) = read_records(path, reader)
    assert isinstance(one, RecordError)
    assert one.diagnostics[0].field == "id"


def test_csv_bad_utf8_in_a_data_row_is_that_rows_error(
    tmp_path: Path, reader: RecordReader
) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        b"id,enrollment,diagnosis\r\n"
        b"A,2024-03-01,B-ALL\r\n"
        b"B,2024-03-02,Lymphom\xe9\r\n"
        b'C,2024-03-03,"two\r\nlines \xff"\r\n'
        b"D,2024-03-04,\r\n"
    )
    a, b, c, d = read_records(path, reader)
    assert isinstance(a, Record) and a.id == "A"
    assert isinstance(b, RecordError)
    assert [(x.record_id, x.message) for x in b.diagnostics] == [
        ("line 3", "not UTF-8 text (byte 0xe9 at column 21)")
    ]
    assert isinstance(c, RecordError)
    assert [(x.record_id, x.message) for x in c.diagnostics] == [
        ("line 4", "not UTF-8 text in line 5 (byte 0xff at column 7)")
    ]
    assert isinstance(d, Record) and d.id == "D"


def test_csv_bad_utf8_in_the_header_is_a_file_error(tmp_path: Path, reader: RecordReader) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes(b"\xef\xbb\xbfid,s\xe9x\nA,male\n")
    with pytest.raises(RecordError) as info:
        list(read_records(path, reader))
    (diag,) = info.value.diagnostics
    assert diag.code == "unreadable"
    # Located at the byte's line and column (the byte-order mark is no column).
    assert diag.message.startswith("not UTF-8 text: byte 0xe9 cannot be read as UTF-8")
    assert diag.span is not None
    assert (diag.span.line, diag.span.col) == (1, 5)


def test_csv_old_mac_line_ends(tmp_path: Path, reader: RecordReader) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes(b"id,sex\rA,male\rB,female\r")
    assert [r.id for r in read_records(path, reader) if isinstance(r, Record)] == ["A", "B"]


def test_csv_header_diagnostics_point_at_the_column(tmp_path: Path, reader: RecordReader) -> None:
    path = tmp_path / "cols.csv"
    path.write_text('\ufeffid, sexx ,"weight",sexx\nP1,male,70,\n', encoding="utf-8")
    with pytest.raises(RecordError) as info:
        list(read_records(path, reader))
    first, second = info.value.diagnostics
    assert first.message == "unknown column 'sexx' (did you mean 'sex'?)"
    assert second.message == "duplicate column 'sexx'"
    assert first.span is not None and second.span is not None
    assert (first.span.line, first.span.col, first.span.text) == (1, 5, "sexx")
    assert (second.span.col, second.span.text) == (20, "sexx")
    assert first.render().splitlines()[1:] == [
        '   1 | id, sexx ,"weight",sexx',
        "     |     ^^^^",
    ]
    path.write_text("sex\nmale\n", encoding="utf-8")
    with pytest.raises(RecordError) as info:
        list(read_records(path, reader))
    assert info.value.diagnostics[0].render().splitlines()[1:] == ["   1 | sex", "     | ^^^"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ecog": 10**300}, "1e300 is outside the plausible range 0 to 5"),
        ({"ecog": -(10**300)}, "-1e300 is outside the plausible range 0 to 5"),
        ({"lvef": Fraction(25, 10**32)}, None),
        ({"lvef": -Fraction(25, 10**32)}, "-2.5e-31 is outside the plausible range 0 to 100"),
        ({"lvef": Fraction(10**300 + 1)}, "≈1e300 is outside the plausible range 0 to 100"),
        ({"lvef": 10**21 + 5}, "≈1e21 is outside"),
        ({"lvef": Fraction(10**7, 3)}, "≈3.33333e6 is outside the plausible range 0 to 100"),
        ({"lvef": Fraction(301, 3)}, "≈100.333 is outside the plausible range 0 to 100"),
        ({"lvef": Fraction(-1, 3 * 10**9)}, "≈-3.33333e-10 is outside"),
        ({"lvef": 10**20}, "100000000000000000000 is outside"),
        (
            {"lvef": Fraction("100.000000000000000000000000001")},
            "100.000000000000000000000000001 is outside",
        ),
        ({"weight": {"value": Fraction("1e-300"), "unit": "g"}}, "1e-303 kg is outside"),
    ],
)
def test_huge_and_tiny_values_are_shown_briefly(
    reader: RecordReader, fields: dict[str, Any], message: str | None
) -> None:
    if message is None:
        # Exactly compared: a positive value, however tiny, is above the minimum 0.
        assert reader.parse({"id": "P1", **fields}).values["lvef"] == Fraction(25, 10**32)
        return
    ((_, code, text),) = errors_of(reader, {"id": "P1", **fields})
    assert code == "out-of-range"
    assert text.startswith(message)


def test_huge_json_numbers_in_messages(tmp_path: Path, reader: RecordReader) -> None:
    path = tmp_path / "huge.jsonl"
    path.write_text('{"id": "A", "ecog": 1e300, "lvef": 1.5E+300}\n', encoding="utf-8")
    (r,) = read_records(path, reader)
    assert isinstance(r, RecordError)
    assert [d.message for d in r.diagnostics] == [
        "1e300 is outside the plausible range 0 to 5",
        "1.5e300 is outside the plausible range 0 to 100",
    ]


def test_not_utf8_names_the_byte_and_its_place(tmp_path: Path, reader: RecordReader) -> None:
    path = tmp_path / "latin1.json"
    for data, where in [(b'\xe9{"id": "A"}', (1, 1)), (b'\xef\xbb\xbf[\n{"id": "\xff"}]', (2, 9))]:
        path.write_bytes(data)
        with pytest.raises(RecordError, match=r"not UTF-8 text: byte 0x(e9|ff) cannot") as info:
            list(read_records(path, reader))
        span = info.value.diagnostics[0].span
        assert span is not None and (span.line, span.col) == where
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id": "A"}\n\xe9\n')
    _, bad = read_records(path, reader)
    assert isinstance(bad, RecordError)
    assert bad.diagnostics[0].record_id == "line 2"
    assert bad.diagnostics[0].message == "not UTF-8 text (byte 0xe9 at column 1)"
