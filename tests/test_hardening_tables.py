"""Issue 11 hardening of table inputs (items 2 and 9): DuckDB reads exactly the named files,
any protocol runs, and a damaged or oddly typed table is one clear error or per-record errors,
never a traceback.

DuckDB runs for real in every test; nothing is mocked.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

import protocode
from helpers import SEED, run
from protocode.core.errors import RecordError, UsageError
from protocode.records import read_records
from protocode.tables.convert import write_tables
from protocode.tables.run import Connection, read_tables

SEED_PROTOCOL = protocode.load(SEED)
PATIENTS = SEED / "examples" / "patients.jsonl"

# A protocol with no observation item (and one with no item a table row can hold at all).
NO_OBSERVATIONS = """\
protocode: 1
protocol: {registry_id: TEST-NOOBS, title: No observations, version: "1"}
data:
  enrollment: {kind: anchor}
  weight: {unit: kg}
  chemo: {kind: event}
criteria:
  inclusion:
    - {id: I1, text: Heavy, rule: weight >= 50 kg}
  exclusion:
    - {id: E1, text: Recent chemo, rule: any chemo within 14 days before enrollment}
"""
ATTESTATIONS_ONLY = """\
protocode: 1
protocol: {registry_id: TEST-ATTEST, title: Attestations only, version: "1"}
data:
  enrollment: {kind: anchor}
criteria:
  inclusion:
    - {id: I1, text: Consent, attestation: consent}
"""


def seed_tables(directory: Path, table_format: str = "csv") -> int:
    """The seed examples as tables in `directory`; how many records were written."""
    records = read_records(PATIENTS, SEED_PROTOCOL.reader)
    return write_tables(SEED_PROTOCOL, records, directory, table_format).records


def screened_ids(directory: Path) -> list[str]:
    with Connection(SEED_PROTOCOL) as con:
        con.load(directory)
        con.validate()
        con.screen()
        return [str(row[0]) for row in con.rows()]


# ---- item 2: table paths are file names, not glob patterns


@pytest.mark.parametrize("name", ["t*", "t?", "t[x]", "~"])
@pytest.mark.parametrize("table_format", ["csv", "parquet"])
def test_a_folder_named_like_a_pattern_reads_only_its_own_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, table_format: str
) -> None:
    # Relative paths, as typed on a command line: a leading '~' is not the home folder.
    monkeypatch.chdir(tmp_path)
    count = seed_tables(Path(name), table_format)
    # A neighbour the pattern would match, with the same layout and a foreign patient.
    foreign = Path("tx")
    shutil.copytree(name, foreign)
    table = foreign / f"patients.{table_format}"
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT * REPLACE ('FOREIGN' AS id) FROM '{table}' LIMIT 1) "
            f"TO '{foreign}/p.{table_format}' (FORMAT {table_format})"
        )
    (foreign / f"p.{table_format}").replace(table)
    ids = screened_ids(Path(name))
    assert "FOREIGN" not in ids
    assert len(ids) == count


def test_a_neighbour_of_another_layout_does_not_break_a_pattern_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "tables*"
    count = seed_tables(folder)
    other = tmp_path / "tables-other"
    other.mkdir()
    (other / "patients.csv").write_text("id,foo\nFOREIGN,1\n", encoding="utf-8")
    (other / "observations.csv").write_text("id\nFOREIGN\n", encoding="utf-8")
    status, out, err = run(capsys, "screen", SEED, folder)
    assert status == 0, err
    assert "FOREIGN" not in out
    assert re.search(rf"^  total +{count}$", err, re.M)


def test_an_output_named_like_a_pattern_is_written_as_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in[1]*"
    count = seed_tables(folder)
    output = tmp_path / "out?*.csv"
    status, _, _ = run(capsys, "screen", SEED, folder, "--engine", "duckdb", "--output", output)
    assert status == 0
    lines = output.read_text(encoding="utf-8").splitlines()
    assert len(lines) == count + 1


# ---- item 9: any protocol, any Parquet column type, damaged files


@pytest.mark.parametrize(
    ("text", "records"),
    [
        (
            NO_OBSERVATIONS,
            [{"id": "a", "weight": 60, "enrollment": "2024-01-01", "chemo": []}, {"id": "b"}],
        ),
        (ATTESTATIONS_ONLY, [{"id": "a", "attestations": {"consent": True}}, {"id": "b"}]),
    ],
)
def test_a_protocol_without_observation_items_screens_in_duckdb(
    tmp_path: Path, text: str, records: list[dict[str, Any]]
) -> None:
    # Its bad-rows plan had a CASE with no WHEN (KeyError: 'ifs' in every DuckDB command).
    protocol = protocode.load_text(text, "small.yaml")
    expected = {s.record_id: s.status for s in protocol.screen_many(records)}
    for table_format in ("csv", "parquet"):
        folder = tmp_path / table_format
        written = write_tables(protocol, records, folder, table_format)
        assert written.records == 2
        with Connection(protocol) as con:
            con.load(folder)
            assert con.validate() == []
            summary = con.screen()
            got = {str(row[0]): str(row[1]) for row in con.rows()}
        assert got == expected
        assert summary.total == 2
        back = [r for r in read_tables(protocol, folder) if not isinstance(r, RecordError)]
        assert [r.id for r in back] == ["a", "b"]


def parquet_with(folder: Path, table: str, column: str, literal: str) -> None:
    """Rewrite one Parquet table of `folder` with `column` replaced by a SQL `literal`."""
    path = folder / f"{table}.parquet"
    changed = folder / "changed.parquet"
    with duckdb.connect() as con:
        con.execute(
            f'COPY (SELECT * REPLACE ({literal} AS "{column}") FROM read_parquet(?)) '
            f"TO '{changed}' (FORMAT parquet)",
            [str(path)],
        )
    changed.replace(path)


@pytest.mark.parametrize(
    ("table", "column", "literal", "expected"),
    [
        # The item column of another type was a ConversionException while validating.
        ("observations", "item", "42", "unknown-item"),
        ("observations", "item", "{'a': 1}", "unknown-item"),
        ("events", "item", "TIMESTAMP '2024-01-01 10:00:00'", "unknown-item"),
        ("patients", "weight", "{'kg': 60}", "weight"),
        ("patients", "birth_date", "TIMESTAMP '1990-01-01 10:00:00'", "birth_date"),
        ("patients", "sex", "['male']", "sex"),
        ("patients", "cd19_positive", "MAP {'a': 1}", "cd19_positive"),
        ("patients", "ecog", "'nan'::DOUBLE", "ecog"),
        ("observations", "date", "INTERVAL 3 DAY", "date"),
        ("observations", "value", "[1, 2]", "value"),
        ("events", "end", "'\\xAA'::BLOB", "end"),
    ],
)
def test_parquet_columns_of_unexpected_types_are_record_errors(
    tmp_path: Path, table: str, column: str, literal: str, expected: str
) -> None:
    # `expected`: the code, or a part of the field, that each record's error names.
    count = seed_tables(tmp_path, "parquet")
    parquet_with(tmp_path, table, column, literal)
    results = list(read_tables(SEED_PROTOCOL, tmp_path))
    errors = [r for r in results if isinstance(r, RecordError)]
    # Every record is answered once: screened or in error, with its id and the bad field.
    assert len(results) == count
    assert (
        len(
            {
                r.id if not isinstance(r, RecordError) else r.diagnostics[0].record_id
                for r in results
            }
        )
        == count
    )
    assert errors
    for error in errors:
        assert all(d.record_id for d in error.diagnostics)
        assert any(expected in f"{d.code} {d.field}" for d in error.diagnostics), error.render()


def test_a_damaged_parquet_page_is_one_error_naming_the_file_and_column(tmp_path: Path) -> None:
    seed_tables(tmp_path, "parquet")
    path = tmp_path / "patients.parquet"
    with duckdb.connect() as con:
        offset, size = con.execute(
            "SELECT data_page_offset, total_compressed_size FROM parquet_metadata(?) "
            "WHERE path_in_schema = 'birth_date'",
            [str(path)],
        ).fetchone() or (0, 0)
    data = bytearray(path.read_bytes())
    data[offset + size // 2 : offset + size] = b"\xff" * (size - size // 2)
    path.write_bytes(bytes(data))
    with Connection(SEED_PROTOCOL) as con:
        con.load(tmp_path)  # only the footer is read here
        with pytest.raises(UsageError) as info:
            con.validate()
    [d] = info.value.diagnostics
    assert d.code == "unreadable"
    assert d.message.startswith(f"{path}: column 'birth_date': DuckDB cannot read the table: ")


@pytest.mark.parametrize("cut", [0, 4, 100, -9])
def test_a_truncated_parquet_file_is_one_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cut: int
) -> None:
    seed_tables(tmp_path, "parquet")
    path = tmp_path / "observations.parquet"
    path.write_bytes(path.read_bytes()[:cut])
    status, out, err = run(capsys, "screen", SEED, tmp_path)
    assert status == 1 and out == ""
    assert err.startswith(f"unreadable: {path}: ") and err.count("\n") == 1, err
    assert all(c.isprintable() for c in err.rstrip("\n"))


@pytest.mark.parametrize("table", ["patients", "observations", "events"])
def test_a_csv_column_named_rowid_is_an_unknown_column(tmp_path: Path, table: str) -> None:
    # It hid DuckDB's row numbers: a row without an id was numbered by its text (ValueError).
    seed_tables(tmp_path)
    path = tmp_path / f"{table}.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines = [f"{lines[0]},rowid", *(f",{line.partition(',')[2]},x" for line in lines[1:2])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Connection(SEED_PROTOCOL) as con, pytest.raises(UsageError) as info:
        con.load(tmp_path)
    [d] = info.value.diagnostics
    assert d.message == f"{path}: unknown column 'rowid' in the {table} table"


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        # An empty file was read as one column named 'column0'.
        (b"", "usage", "empty file; a table starts with a header row of column names"),
        (b"id,,item\n", "usage", "column 2 of the header has no name"),
        (b"id,item,id\n", "usage", "column 'id' is in the header twice"),
        (b"id,it\xe9m\n", "unreadable", "the header row is not UTF-8 text"),
        # One ragged row failed DuckDB's dialect guess, naming no line.
        (
            b"id,item,date,value,low,high\nZJU-001,ast,2024-03-01,20\n",
            "unreadable",
            "CSV Error on Line: 2; Original Line: ZJU-001,ast,2024-03-01,20; "
            "Expected Number of Columns: 6 Found: 4",
        ),
    ],
)
def test_a_malformed_csv_table_is_one_error_naming_the_file(
    tmp_path: Path, content: bytes, code: str, message: str
) -> None:
    seed_tables(tmp_path)
    path = tmp_path / "observations.csv"
    path.write_bytes(content)
    with Connection(SEED_PROTOCOL) as con, pytest.raises(UsageError) as info:
        con.load(tmp_path)
    [d] = info.value.diagnostics
    assert d.code == code
    assert d.message.startswith(f"{path}: ") and d.message.endswith(message), d.message


def test_a_csv_table_with_a_bom_and_crlf_lines_reads_as_written(tmp_path: Path) -> None:
    count = seed_tables(tmp_path)
    expected = screened_ids(tmp_path)
    for name in ("patients", "observations", "events"):
        path = tmp_path / f"{name}.csv"
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert screened_ids(tmp_path) == expected
    assert len(expected) == count
