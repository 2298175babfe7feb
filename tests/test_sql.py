"""The SQL backend end to end: tables, validation, DuckDB screening, dialects, the CLI.

DuckDB runs for real in every test; nothing is mocked. Agreement with the row engine on
generated cohorts is in test_sql_agreement.py.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import re
import weakref
from pathlib import Path

import duckdb
import pytest
import sqlglot

import protocode
import sql_engines as se
from helpers import MINI, SEED
from protocode.backends.sql import to_sql
from protocode.cli import main
from protocode.core.errors import RecordError, UsageError
from protocode.document.loader import load_protocol_text
from protocode.language.check import check_protocol
from protocode.records import read_records
from protocode.screening import Protocol
from protocode.tables.convert import write_tables
from protocode.tables.run import Connection, read_tables

SEED_PROTOCOL = protocode.load(SEED)
PATIENTS = SEED / "examples" / "patients.jsonl"
WITH_ERRORS = SEED / "examples" / "with-errors.jsonl"
SUMMARY_LINE = re.compile(r"^  (eligible|ineligible|indeterminate|error|total) +(\d+)$", re.M)


def counts(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in SUMMARY_LINE.findall(text)}


def row_engine(path: Path) -> dict[str, tuple[str, ...]]:
    out = {}
    for s in SEED_PROTOCOL.screen_many(read_records(path, SEED_PROTOCOL.reader)):
        if not isinstance(s, RecordError):
            out[s.record_id] = (s.status, *(c.verdict for c in s.criteria))
    return out


# ---- dialects


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark", "bigquery", "snowflake"])
def test_transpiled_query_parses_back_in_its_dialect(dialect: str) -> None:
    text = SEED_PROTOCOL.to_sql(dialect)
    tree = sqlglot.parse_one(text, read=dialect)
    # Every criterion is an output column, and the query still reads the three tables.
    names = {e.alias_or_name for e in tree.expressions}
    assert {c.id for c in SEED_PROTOCOL.criteria} | {"id", "status"} <= names
    tables = {t.name for t in tree.find_all(sqlglot.exp.Table)}
    assert {"patients", "observations", "events"} <= tables


@pytest.mark.parametrize("dialect", ["spark", "databricks", "postgres", "duckdb"])
def test_spark_family_bounds_exact_decimals_at_37_digits(dialect: str) -> None:
    # Spark types a product one digit wider than its exact format (tests/test_sql_spark.py).
    assert "DECIMAL(37, 18)" in to_sql(se.WIDE_37_PROTOCOL.checked, dialect).upper()
    if dialect in {"spark", "databricks"}:
        with pytest.raises(UsageError, match="DECIMAL\\(38, 18\\), more than 37 digits"):
            to_sql(se.WIDE_PROTOCOL.checked, dialect)
    else:
        assert "DECIMAL(38, 18)" in to_sql(se.WIDE_PROTOCOL.checked, dialect).upper()


def test_rule_arithmetic_is_decimal_never_double() -> None:
    text = SEED_PROTOCOL.to_sql("duckdb").upper()
    assert "DECIMAL(" in text
    assert "DOUBLE" not in text and "FLOAT" not in text and "REAL" not in text


def test_unknown_dialect_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown SQL dialect 'nosuch'"):
        to_sql(SEED_PROTOCOL.checked, "nosuch")


def test_round_of_a_quotient_is_a_compile_error_with_the_rule_span() -> None:
    text = MINI.replace("rule: age >= 18 years}", 'rule: "round(weight / 3, 1) >= 20 kg"}')
    protocol = protocode.load_text(text, "mini.yaml")
    with pytest.raises(UsageError) as info:
        protocol.to_sql()
    assert "round() of a quotient" in info.value.render()
    assert "mini.yaml:" in info.value.render()


# ---- exact at the boundary


def test_cockcroft_gault_of_exactly_sixty_is_met_in_duckdb() -> None:
    text = MINI.replace("rule: age >= 18 years}", "rule: crcl >= 60 mL/min}")
    protocol = protocode.load_text(text, "mini.yaml")
    base = {"enrollment": "2024-03-01", "birth_date": "1992-01-15", "sex": "male"}
    cohort = [
        {**base, "id": "at", "weight": 42.0, "creatinine": [{"value": 1.05, "date": "2024-02-29"}]},
        {
            **base,
            "id": "below",
            "weight": 41.99,
            "creatinine": [{"value": 1.05, "date": "2024-02-29"}],
        },
        {
            **base,
            "id": "umol",
            "weight": 42.0,
            # 92.82 umol/L is 1.05 mg/dL for creatinine's molar mass 113.12 g/mol... nearly:
            # the exact conversion is kept, and both engines compare it exactly.
            "creatinine": [{"value": 92.82, "unit": "umol/L", "date": "2024-02-29"}],
        },
    ]
    with Connection(protocol, threads=1) as con:
        con.load_records(cohort)
        assert con.validate() == []
        con.screen()
        rows = {r[0]: r for r in con.rows()}
    i1 = 2  # id, status, I1 ...
    assert rows["at"][i1] == "met"
    assert rows["below"][i1] == "not met"
    assert rows["umol"][i1] == protocol.screen(cohort[2]).verdict("I1")


# ---- records ⇄ tables


@pytest.mark.parametrize("table_format", ["csv", "parquet"])
def test_records_round_trip_through_tables(tmp_path: Path, table_format: str) -> None:
    written = write_tables(
        SEED_PROTOCOL, read_records(PATIENTS, SEED_PROTOCOL.reader), tmp_path, table_format
    )
    # ZJU-003 gives 6 months of life expectancy, 26.0892857… weeks: no exact decimal.
    assert [e.diagnostics[0].record_id for e in written.errors] == ["ZJU-003"]
    assert "more than 9 decimal places" in written.errors[0].render()
    back = list(read_tables(SEED_PROTOCOL, tmp_path))
    assert all(not isinstance(r, RecordError) for r in back)
    original = {
        r.id: r
        for r in read_records(PATIENTS, SEED_PROTOCOL.reader)
        if not isinstance(r, RecordError)
    }
    assert [r.id for r in back] == sorted(set(original) - {"ZJU-003"})  # type: ignore[union-attr]
    for record in back:
        assert not isinstance(record, RecordError)
        assert record == original[record.id]


def test_parquet_tables_have_the_layout_types(tmp_path: Path) -> None:
    write_tables(SEED_PROTOCOL, read_records(PATIENTS, SEED_PROTOCOL.reader), tmp_path, "parquet")
    con = duckdb.connect()
    described = con.execute(
        "DESCRIBE SELECT * FROM read_parquet(?)", [str(tmp_path / "patients.parquet")]
    ).fetchall()
    types = {r[0]: r[1] for r in described}
    assert types["weight"] == "DECIMAL(12,9)"
    assert types["enrollment"] == "DATE"
    assert types["ecog"] == "BIGINT"
    assert types["cd19_positive"] == "BOOLEAN"


# ---- plans live and die with their protocol


def test_plans_are_kept_on_the_protocol_and_die_with_it() -> None:
    # A protocol of its own (load() caches its protocols): nothing else holds it.
    file = protocode.protocol_file(SEED)
    protocol = Protocol(check_protocol(load_protocol_text(file.read_text("utf-8"), str(file))))
    with Connection(protocol) as con:
        con.load_records(read_records(PATIENTS, protocol.reader))
        con.validate()
        assert con.screen().total == 14
    assert any(key[0] == "tables" for key in protocol.plans)
    with Connection(protocol) as con:
        # A second batch with the same column types reuses every statement.
        before = dict(protocol.plans)
        con.load_records(read_records(PATIENTS, protocol.reader))
        con.validate()
        con.screen()
        assert protocol.plans.keys() == before.keys()
    ref = weakref.ref(protocol)
    del protocol, con
    gc.collect()
    assert ref() is None


def test_a_repeated_id_is_said_as_the_row_engine_says_it() -> None:
    record = {"id": "A"}
    bad_rows = list(SEED_PROTOCOL.screen_many([record, dict(record)]))
    assert "record id 'A' already used by record 1" in str(bad_rows[1])
    with Connection(SEED_PROTOCOL) as con:
        con.load_records([record, dict(record)])
        con.validate()
        con.screen()
        assert [e.diagnostics for e in con.errors] == [
            e.diagnostics for e in bad_rows if isinstance(e, RecordError)
        ]


# ---- validation: a bad cell is an error of its record, the batch goes on


def _write(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def test_bad_cells_give_record_and_field_errors(tmp_path: Path) -> None:
    _write(
        tmp_path / "patients.csv",
        [
            ["id", "enrollment", "birth_date", "weight", "ecog", "sex", "known__creatinine"],
            ["ok", "2024-03-01", "1990-01-01", "70.5", "1", "male", "true"],
            ["good", "2024-03-01", "1990-01-01", "+70.50", "1", "male", "TRUE"],
            ["bad-date", "2024-02-30", "1990-01-01", "70", "1", "male", ""],
            ["bad-number", "2024-03-01", "1990-01-01", "seventy", "1", "male", ""],
            ["out-of-range", "2024-03-01", "1990-01-01", "700", "9", "male", ""],
            ["bad-code", "2024-03-01", "1990-01-01", "70", "1", "mail", ""],
            ["too-precise", "2024-03-01", "1990-01-01", "70.0000000001", "1", "male", ""],
            ["dup", "2024-03-01", "1990-01-01", "70", "1", "male", ""],
            ["dup", "2024-03-01", "1990-01-01", "71", "1", "male", ""],
            ["", "2024-03-01", "1990-01-01", "70", "1", "male", ""],
        ],
    )
    _write(
        tmp_path / "observations.csv",
        [
            ["id", "item", "date", "value", "low", "high"],
            ["ok", "creatinine", "2024-02-28", "1.05", "", ""],
            ["ok", "ast", "2024-02-28", "30", "50", "40"],
            ["ok", "creatinin", "2024-02-28", "1.05", "", ""],
            ["ghost", "creatinine", "2024-02-28", "1.05", "", ""],
        ],
    )
    with Connection(SEED_PROTOCOL, threads=1) as con:
        con.load(tmp_path)
        errors = con.validate()
        summary = con.screen()
    found = {(d.record_id, d.field, d.code) for e in errors for d in e.diagnostics}
    assert ("bad-date", "enrollment", "bad-date") in found
    assert ("bad-number", "weight", "bad-value") in found
    assert ("out-of-range", "weight", "out-of-range") in found
    assert ("out-of-range", "ecog", "out-of-range") in found
    assert ("bad-code", "sex", "bad-code") in found
    assert ("too-precise", "weight", "sql-range") in found
    assert ("dup", "id", "duplicate-id") in found
    assert ("patients row 10", "id", "bad-id") in found
    assert ("ok", "creatinin", "unknown-item") in found
    assert ("ok", "ast.reference_range", "bad-value") in found
    assert ("ghost", "id", "no-patient") in found
    messages = "\n".join(e.render() for e in errors)
    assert "did you mean 'creatinine'" in messages
    assert "low 50 is above high 40" in messages
    # Counts add up: the good records' results plus one error per bad record.
    assert summary.statuses["error"] == len(errors) == 9
    assert summary.total == 10  # "good" screened, and "ok" is in error (its bad rows)


def test_unknown_columns_are_a_usage_error(tmp_path: Path) -> None:
    _write(tmp_path / "patients.csv", [["id", "wieght"], ["a", "70"]])
    with Connection(SEED_PROTOCOL) as con, pytest.raises(UsageError, match="did you mean 'weight'"):
        con.load(tmp_path)


def test_files_duckdb_cannot_read_or_write_are_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latin1 = tmp_path / "latin1"
    latin1.mkdir()
    (latin1 / "patients.csv").write_bytes(b"id,sex\nP\xe9,male\n")
    not_parquet = tmp_path / "cohort.parquet"
    not_parquet.write_text("id,sex\n", encoding="utf-8")
    tables = tmp_path / "tables"
    assert main(["tables", "to-tables", str(SEED), str(PATIENTS), str(tables)]) == 1
    capsys.readouterr()
    cases = [
        ([str(latin1)], f"unreadable: {latin1 / 'patients.csv'}: ", "not utf-8"),
        ([str(not_parquet)], f"unreadable: {not_parquet}: ", "Parquet file"),
        (
            [str(tables), "--output", str(tmp_path / "no" / "such" / "r.parquet")],
            f"unreadable: {tmp_path / 'no' / 'such' / 'r.parquet'}: ",
            "No such file or directory",
        ),
    ]
    for args, start, reason in cases:
        assert main(["screen", str(SEED), *args]) == 1
        _, err = capsys.readouterr()
        assert err.startswith(start) and reason in err, err
        assert "Traceback" not in err and err.count("\n") == 1


# ---- the command line


def test_cli_duckdb_engine_matches_the_row_engine(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["screen", str(SEED), str(PATIENTS), "--engine", "duckdb", "--format", "csv"])
    out, err = capsys.readouterr()
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    ids = [c.id for c in SEED_PROTOCOL.criteria]
    assert rows[0] == ["id", "status", *ids, "missing", "errors", "protocol", "version"]
    assert {tuple(r[-2:]) for r in rows[1:]} == {("NCT06125106", "3")}
    got = {r[0]: tuple(r[1:-4]) for r in rows[1:]}
    assert got == row_engine(PATIENTS)
    assert counts(err) == {
        "eligible": 4,
        "ineligible": 7,
        "indeterminate": 3,
        "error": 0,
        "total": 14,
    }


def test_cli_summary_is_the_row_engines(capsys: pytest.CaptureFixture[str]) -> None:
    main(["screen", str(SEED), str(WITH_ERRORS), "--format", "jsonl"])
    row_err = capsys.readouterr().err
    code = main(["screen", str(SEED), str(WITH_ERRORS), "--engine", "duckdb", "--format", "jsonl"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip() == row_err.strip()
    lines = [json.loads(line) for line in out.splitlines()]
    errors = {x["id"] for x in lines if x["status"] == "error"}
    assert errors == {"ZJU-102", "ZJU-103", "ZJU-105", "line 6", "line 8", "ZJU-109"}
    bad = next(x for x in lines if x["id"] == "ZJU-105")
    assert bad["errors"][0]["field"] == "enrollment"


def test_cli_tables_and_parquet_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = tmp_path / "tables"
    assert main(["tables", "to-tables", str(SEED), str(PATIENTS), str(tables)]) == 1
    err = capsys.readouterr().err
    assert "ZJU-003" in err  # reported, not rounded
    assert "wrote 13 of 14 records to" in err and "1 with errors, not written" in err
    out = tmp_path / "results.parquet"
    # A folder of tables is screened in DuckDB without asking; the format follows --output.
    assert main(["screen", str(SEED), str(tables), "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert counts(err)["total"] == 13
    rows = duckdb.connect().execute("SELECT * FROM read_parquet(?)", [str(out)]).fetchall()
    expected = row_engine(PATIENTS)
    assert len(rows) == 13
    for row in rows:
        assert tuple(row[1:-3]) == expected[row[0]]
        assert tuple(row[-2:]) == ("NCT06125106", "3")
    back = tmp_path / "back.jsonl"
    assert main(["tables", "to-records", str(SEED), str(tables), "--output", str(back)]) == 0
    assert "13 written, 0 with errors" in capsys.readouterr().err
    assert main(["screen", str(SEED), str(back), "--format", "csv"]) == 0
    assert counts(capsys.readouterr().err)["total"] == 13


def test_cli_engine_row_reads_tables_as_records_is_not_needed_but_duckdb_table_format_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["screen", str(SEED), str(PATIENTS), "--engine", "duckdb", "--format", "table"])
    assert code == 1
    assert "the duckdb engine writes csv, parquet, jsonl, json" in capsys.readouterr().err
    code = main(["screen", str(SEED), str(PATIENTS), "--engine", "row", "--format", "parquet"])
    assert code == 1
    assert "--format parquet needs the duckdb engine" in capsys.readouterr().err
    code = main(["screen", str(SEED), str(PATIENTS), "--engine", "duckdb", "--format", "parquet"])
    assert code == 1
    assert "Parquet output needs --output FILE" in capsys.readouterr().err


def test_cli_compile_sql_dialects(capsys: pytest.CaptureFixture[str]) -> None:
    for dialect in ("postgres", "spark", "bigquery", "duckdb"):
        assert main(["compile", str(SEED), "--to", "sql", "--dialect", dialect]) == 0
        sqlglot.parse_one(capsys.readouterr().out, read=dialect)
