"""The transpiled PostgreSQL query, run on a real PostgreSQL server, agrees with the row engine.

Optional (issue 6): a throwaway cluster is created with the machine's ``initdb`` in a
temporary folder and started on a unix socket there (no TCP port), for the whole session.
Without PostgreSQL server binaries or the ``psycopg`` driver the tests are skipped, saying
why. The three tables are created with the layout's DDL in the postgres dialect, records are
converted as ``protocode tables to-tables`` does and loaded with COPY (cells as data, never
pasted into SQL), and ``to_sql(checked, "postgres")`` runs as printed. Every patient's
verdicts and status must equal the row engine's and DuckDB's; nothing is mocked.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocode
from helpers import MINI, RULES, SEED
from protocode.errors import RecordError
from protocode.sql import layout, to_sql
from protocode.sql.convert import EVENT_COLUMNS, OBSERVATION_COLUMNS, RowWriter, TableRows
from protocode.sql.run import Connection
from protocode.testing import BASE_DATE, records

psycopg = pytest.importorskip("psycopg", reason="psycopg (PostgreSQL driver) not installed")
from psycopg import sql as pgsql  # noqa: E402 - only after the driver is known to exist

SEED_PROTOCOL = protocode.load(SEED)
MINI_PROTOCOL = protocode.load_text(MINI, "mini.yaml")
PATIENTS = SEED / "examples" / "patients.jsonl"

Verdicts = tuple[str, ...]


# ---- a throwaway PostgreSQL cluster


def _server_bin() -> Path | None:
    """The folder of ``initdb``, ``pg_ctl`` and ``postgres``, from PATH or Debian's layout."""
    found = shutil.which("initdb")
    candidates = [found] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    for initdb in candidates:
        folder = Path(initdb).resolve().parent
        if all((folder / name).exists() for name in ("pg_ctl", "postgres")):
            return folder
    return None


def _as_server_user() -> tuple[list[str], str | None]:
    """The command prefix to run the server (PostgreSQL refuses root) and its owner."""
    if os.geteuid() != 0:
        return [], None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run the server as")
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root and runuser is not available to drop to 'postgres'")
    return [runuser, "-u", "postgres", "--"], "postgres"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A connection (autocommit) to a fresh PostgreSQL cluster, removed afterwards."""
    folder = _server_bin()
    if folder is None:
        pytest.skip(
            "PostgreSQL server binaries not found: no initdb on PATH or in /usr/lib/postgresql"
        )
    prefix, owner = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="protocode-pg-"))
    if owner is not None:
        shutil.chown(root, owner)
    data, log = root / "data", root / "server.log"

    def run(*argv: str | Path) -> None:
        subprocess.run([*prefix, *map(str, argv)], check=True, capture_output=True, timeout=120)

    started = False
    try:
        run(folder / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-locale", "--no-sync")  # fmt: skip
        # A unix socket in the temporary folder and no TCP port; nothing needs durability.
        options = f"-k {shlex.quote(str(root))} -c listen_addresses= -c fsync=off"
        run(folder / "pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "-t", "60", "start")
        started = True
        with psycopg.connect(host=str(root), user="postgres", dbname="postgres") as con:
            con.autocommit = True
            yield con
    except subprocess.CalledProcessError as failed:
        server_log = log.read_text(errors="replace") if log.exists() else ""
        raise RuntimeError(
            f"PostgreSQL did not start: {failed.stderr.decode(errors='replace')}\n{server_log}"
        ) from failed
    finally:
        if started:
            run(folder / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


# ---- loading tables and screening


def _copy(
    cursor: Any, table: str, columns: Sequence[str], rows: list[Sequence[str | None]]
) -> None:
    statement = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
        pgsql.Identifier(table), pgsql.SQL(", ").join(map(pgsql.Identifier, columns))
    )
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def convert(
    protocol: protocode.Protocol, cohort: list[dict[str, Any]]
) -> tuple[list[TableRows], list[str]]:
    """Table rows of the records the layout holds exactly, and the ids of the others."""
    rows, held = [], []
    for item in RowWriter(protocol).convert(cohort):
        if isinstance(item, RecordError):
            codes = {d.code for d in item.diagnostics}
            assert codes == {"sql-range"}, item.render()
            held.append(str(item.diagnostics[0].record_id))
        elif any("\x00" in (cell or "") for cell in _cells(item)):
            # PostgreSQL's text types cannot hold the NUL character (DuckDB's can).
            held.append(str(item.patient["id"]))
        else:
            rows.append(item)
    return rows, held


def _cells(rows: TableRows) -> Iterator[str | None]:
    yield from rows.patient.values()
    for row in [*rows.observations, *rows.events]:
        yield from row


def pg_results(
    con: Any, protocol: protocode.Protocol, rows: list[TableRows]
) -> dict[str, Verdicts]:
    """(status, verdicts…) per record id from the PostgreSQL query, in a rolled-back
    transaction (the tables exist only for this run)."""
    columns = [c.name for c in layout(protocol.checked).columns]
    query = to_sql(protocol.checked, "postgres")
    with con.transaction(force_rollback=True), con.cursor() as cur:
        for create in layout(protocol.checked).ddl():
            cur.execute(create.sql(dialect="postgres"))
        _copy(cur, "patients", columns, [[r.patient[c] for c in columns] for r in rows])
        _copy(cur, "observations", OBSERVATION_COLUMNS, [o for r in rows for o in r.observations])
        _copy(cur, "events", EVENT_COLUMNS, [e for r in rows for e in r.events])
        cur.execute(query)
        names = [d.name for d in cur.description or ()]
        result = cur.fetchall()
    assert names == ["id", *(c.id for c in protocol.criteria), "status"]
    out = {str(r[0]): (str(r[-1]), *map(str, r[1:-1])) for r in result}
    assert len(out) == len(result), "one row per patient"
    return out


def duckdb_results(
    protocol: protocode.Protocol, cohort: list[dict[str, Any]]
) -> dict[str, Verdicts]:
    """(status, verdicts…) per record id from DuckDB."""
    with Connection(protocol, threads=1) as con:
        con.load_records(cohort)
        con.validate()
        con.screen()
        rows = list(con.rows())
        assert not con.errors, [e.render() for e in con.errors]
    return {r[0]: tuple(r[1:-1]) for r in rows}


def row_results(protocol: protocode.Protocol, cohort: list[dict[str, Any]]) -> dict[str, Verdicts]:
    """(status, verdicts…) per record id from the row engine."""
    out: dict[str, Verdicts] = {}
    for data in cohort:
        s = protocol.screen(data)
        out[s.record_id] = (s.status, *(c.verdict for c in s.criteria))
    return out


def assert_agree(
    con: Any, protocol: protocode.Protocol, cohort: list[dict[str, Any]]
) -> dict[str, Verdicts]:
    """PostgreSQL, DuckDB and the row engine give every patient the same verdicts; returns
    PostgreSQL's (records the layout cannot hold exactly are not in it)."""
    rows, held = convert(protocol, cohort)
    expected = row_results(protocol, cohort)
    got = pg_results(con, protocol, rows)
    assert got.keys() == expected.keys() - set(held)
    assert duckdb_results(protocol, cohort) == expected
    ids = ["status", *(c.id for c in protocol.criteria)]
    for rid, verdicts in got.items():
        if verdicts != expected[rid]:
            diff = {
                name: (g, w)
                for name, g, w in zip(ids, verdicts, expected[rid], strict=True)
                if g != w
            }
            record = next(r for r in cohort if r["id"] == rid)
            raise AssertionError(
                f"{rid}: postgres vs row {diff}\n{json.dumps(record, default=str)}"
            )
    return got


# ---- the seed examples and boundary patients


def test_seed_examples_agree(postgres: Any) -> None:
    cohort = [json.loads(line) for line in PATIENTS.read_text(encoding="utf-8").splitlines()]
    got = assert_agree(postgres, SEED_PROTOCOL, cohort)
    # All but ZJU-003 (life expectancy 6 months in weeks: 26.089… has no exact decimal).
    assert len(got) == len(cohort) - 1 == 13
    assert {v[0] for v in got.values()} == {"eligible", "ineligible", "indeterminate"}


def _seed_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "B",
        "screening": "2024-03-01",
        "enrollment": "2024-03-01",
        "birth_date": "1992-01-15",
        "sex": "male",
        "weight": 42.0,
        "creatinine": [{"value": 1.05, "date": "2024-02-28"}],
    }
    record.update(changes)
    return record


def test_cockcroft_gault_exactly_sixty_agrees(postgres: Any) -> None:
    # 32 years, 42.0 kg, 1.05 mg/dL: (140 - 32) * 42 / (72 * 1.05) = 60 mL/min exactly.
    cohort = [
        _seed_record(id="at"),
        _seed_record(id="below", weight=41.99),
        _seed_record(id="above", creatinine=[{"value": 1.04, "date": "2024-02-28"}]),
        _seed_record(
            id="umol", creatinine=[{"value": 92.82, "unit": "umol/L", "date": "2024-02-28"}]
        ),
        # a day before the 32nd birthday: 31 years, so crcl is above 60
        _seed_record(id="younger", enrollment="2024-01-14", screening="2024-01-14"),
    ]
    got = assert_agree(postgres, SEED_PROTOCOL, cohort)
    i5 = 1 + [c.id for c in SEED_PROTOCOL.criteria].index("I5")
    # The rest of I5 (AST, ALT, bilirubin, LVEF) is missing: a met crcl leaves I5 unknown,
    # a failed one decides it.
    assert got["at"][i5] == "unknown"
    assert got["below"][i5] == "not met"
    assert got["above"][i5] == "unknown"


@pytest.mark.parametrize("days", [-1, 0, 1, 6, 7, 8])
def test_window_edges_agree(postgres: Any, days: int) -> None:
    date = (BASE_DATE - dt.timedelta(days=days)).isoformat()
    series = [
        [{"value": 1.05, "date": date}],
        [{"value": 1.05, "date": date}, {"value": 2.5, "date": date}],
        [{"value": 1.05, "date": date}, {"value": 1.05, "date": date}],
        [{"value": 1.05, "date": date}, {"value": 0.5}],
        [],
    ]
    cohort = [
        _seed_record(id=f"d{days}-{i}", enrollment=BASE_DATE.isoformat(), creatinine=s)
        for i, s in enumerate(series)
    ]
    assert len(assert_agree(postgres, SEED_PROTOCOL, cohort)) == len(series)


def test_month_ends_agree(postgres: Any) -> None:
    # `screening + 1 months >= enrollment`: January 31 + 1 month is February 29 (2024) or
    # 28 (2023), clamped to the month's end as the row engine's add_months does.
    text = MINI.replace(
        "    - {id: I1, text: Adult, rule: age >= 18 years}",
        '    - {id: M1, text: Month, rule: "screening + 1 months >= enrollment"}\n'
        '    - {id: M2, text: Back, rule: "enrollment - 1 months <= screening"}',
    )
    protocol = protocode.load_text(text, "months.yaml")
    pairs = [
        ("2024-01-31", "2024-02-29"),
        ("2024-01-31", "2024-03-01"),
        ("2023-01-31", "2023-02-28"),
        ("2023-01-31", "2023-03-01"),
        ("2024-03-31", "2024-04-30"),
        ("2024-03-31", "2024-05-01"),
        ("2023-12-31", "2024-01-31"),
    ]
    cohort = [{"id": f"M{i}", "screening": s, "enrollment": e} for i, (s, e) in enumerate(pairs)]
    got = assert_agree(postgres, protocol, cohort)
    m1 = 1 + [c.id for c in protocol.criteria].index("M1")
    assert {v[m1] for v in got.values()} == {"met", "not met"}


# ---- generated cohorts


def cohort_of(protocol: protocode.Protocol, size: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    """A cohort of valid records with distinct ids."""

    def number(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**r, "id": f"P{i}"} for i, r in enumerate(rs)]

    return st.lists(records(protocol), min_size=1, max_size=size).map(number)


# Each example is a whole cohort screened three ways (PostgreSQL, DuckDB, rows).
@settings(max_examples=30)
@given(cohort=cohort_of(SEED_PROTOCOL, 30))
def test_seed_protocol_agrees(postgres: Any, cohort: list[dict[str, Any]]) -> None:
    assert_agree(postgres, SEED_PROTOCOL, cohort)


@settings(max_examples=30)
@given(cohort=cohort_of(MINI_PROTOCOL, 30))
def test_mini_protocol_agrees(postgres: Any, cohort: list[dict[str, Any]]) -> None:
    assert_agree(postgres, MINI_PROTOCOL, cohort)


# round()/floor()/ceil() of a quotient has no exact SQL form yet (a compile error).
SQL_RULES = RULES.filter(lambda rule: "round(weight / 3" not in rule)


@settings(max_examples=30)
@given(rules=st.lists(SQL_RULES, min_size=1, max_size=4), data=st.data())
def test_random_rules_agree(postgres: Any, rules: list[str], data: st.DataObject) -> None:
    lines = "\n".join(
        f"    - {{id: R{i}, text: Random, rule: {json.dumps(rule)}}}"
        for i, rule in enumerate(rules)
    )
    text = MINI.replace("    - {id: I1, text: Adult, rule: age >= 18 years}", lines)
    protocol = protocode.load_text(text, "random.yaml")
    assert_agree(postgres, protocol, data.draw(cohort_of(protocol, 8)))


# ---- observation items of every type (the seed protocol has numbers and codes only)

_TYPED = MINI.replace(
    "  chemo: {kind: event}",
    """  chemo: {kind: event}
  fit: {kind: observation, type: boolean}
  scan: {kind: observation, type: date}
  grade: {kind: observation, type: integer, minimum: 0, maximum: 4}
  result: {kind: observation, type: code, values: [pos, neg]}""",
).replace(
    "    - {id: I1, text: Adult, rule: age >= 18 years}",
    """    - {id: I1, text: Adult, rule: age >= 18 years}
    - {id: O1, text: Fit, rule: latest fit within 30 days before enrollment}
    - {id: O2, text: Scan, rule: latest scan within 30 days before enrollment >= screening}
    - {id: O3, text: Grade, rule: earliest grade <= 2}
    - {id: O4, text: Result, rule: 'latest result within 30 days before enrollment == "pos"'}
    - {id: O5, text: Days, rule: 'days_between(birth_date, enrollment) > 9000 days'}
    - {id: O6, text: Any fit, rule: any fit within 10 days before enrollment}""",
)
TYPED_PROTOCOL = protocode.load_text(_TYPED, "typed.yaml")


@settings(max_examples=30)
@given(cohort=cohort_of(TYPED_PROTOCOL, 20))
def test_observations_of_every_type_agree(postgres: Any, cohort: list[dict[str, Any]]) -> None:
    assert_agree(postgres, TYPED_PROTOCOL, cohort)


# ---- more of the language: calendar arithmetic, rounding, quotients, numeric `if`

_CONSTRUCTS = [
    "months_between(birth_date, enrollment) >= 240 months",
    "years_between(birth_date, screening) between 18 years and 65 years",
    "days_between(screening, enrollment) <= 28 days",
    "round(weight, 1) >= 70.5 kg",
    "round(weight) == 70 kg",
    "floor(weight) == 70 kg",
    "ceil(weight / 4) > 17 kg",
    "max(weight / ecog, 10 kg) > 20 kg",
    "min(weight, 50 kg, crcl * 1 min/mL * 1 kg) < 45 kg",
    "-weight < -50 kg",
    "no chemo within 3 months after screening",
    "count chemo >= 2",
    "any chemo within 1 months of enrollment",
    "(if flag then weight else 60 kg) >= 60 kg",
    "(if flag then 'a' else note) == 'a'",
]
CONSTRUCTS_PROTOCOL = protocode.load_text(
    MINI.replace(
        "    - {id: I1, text: Adult, rule: age >= 18 years}",
        "\n".join(
            f"    - {{id: X{i}, text: Construct, rule: {json.dumps(rule)}}}"
            for i, rule in enumerate(_CONSTRUCTS)
        ),
    ),
    "constructs.yaml",
)


@settings(max_examples=30)
@given(cohort=cohort_of(CONSTRUCTS_PROTOCOL, 20))
def test_more_constructs_agree(postgres: Any, cohort: list[dict[str, Any]]) -> None:
    assert_agree(postgres, CONSTRUCTS_PROTOCOL, cohort)
