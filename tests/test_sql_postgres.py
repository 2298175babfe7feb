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

import glob
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
import sql_engines as se
from helpers import RULES
from protocode.backends.sql import layout, to_sql
from protocode.tables.convert import TableRows
from protocode.tables.files import EVENT_COLUMNS, OBSERVATION_COLUMNS

psycopg = pytest.importorskip("psycopg", reason="psycopg (PostgreSQL driver) not installed")
from psycopg import sql as pgsql  # noqa: E402 - only after the driver is known to exist

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


def pg_results(
    con: Any, protocol: protocode.Protocol, rows: list[TableRows]
) -> dict[str, se.Verdicts]:
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


def agree(
    con: Any, protocol: protocode.Protocol, cohort: list[dict[str, Any]]
) -> dict[str, se.Verdicts]:
    """PostgreSQL, DuckDB and the row engine agree on every patient; PostgreSQL's verdicts.
    PostgreSQL's text types cannot hold the NUL character (DuckDB's can): records with one
    are left out of the PostgreSQL run."""

    def engine(protocol: protocode.Protocol, rows: list[TableRows]) -> dict[str, se.Verdicts]:
        return pg_results(con, protocol, rows)

    return se.assert_agree(engine, "postgres", protocol, cohort, nul=False)


# ---- the seed examples and boundary patients


def test_seed_examples_agree(postgres: Any) -> None:
    cohort = se.seed_examples()
    got = agree(postgres, se.SEED_PROTOCOL, cohort)
    # All but ZJU-003 (life expectancy 6 months in weeks: 26.089… has no exact decimal).
    assert len(got) == len(cohort) - 1 == 13
    assert {v[0] for v in got.values()} == {"eligible", "ineligible", "indeterminate"}


def test_cockcroft_gault_exactly_sixty_agrees(postgres: Any) -> None:
    got = agree(postgres, se.SEED_PROTOCOL, se.cockcroft_gault_boundary())
    i5 = se.criterion(se.SEED_PROTOCOL, "I5")
    # The rest of I5 (AST, ALT, bilirubin, LVEF) is missing: a met crcl leaves I5 unknown,
    # a failed one decides it.
    assert (got["at"][i5], got["below"][i5], got["above"][i5]) == ("unknown", "not met", "unknown")


@pytest.mark.parametrize("days", [-1, 0, 1, 6, 7, 8])
def test_window_edges_agree(postgres: Any, days: int) -> None:
    assert len(agree(postgres, se.SEED_PROTOCOL, se.window_edges(days))) == 5


def test_a_38_digit_product_is_exact(postgres: Any) -> None:
    got = agree(postgres, se.WIDE_PROTOCOL, se.WIDE)
    assert got["tiny"][1:3] == ("met", "met")


def test_month_ends_agree(postgres: Any) -> None:
    got = agree(postgres, se.MONTHS_PROTOCOL, se.MONTH_ENDS)
    m0 = se.criterion(se.MONTHS_PROTOCOL, "M0")
    assert {v[m0] for v in got.values()} == {"met", "not met"}


# ---- generated cohorts: each example is a whole cohort screened three ways


@settings(max_examples=30)
@given(cohort=se.cohort_of(se.SEED_PROTOCOL, 30))
def test_seed_protocol_agrees(postgres: Any, cohort: list[dict[str, Any]]) -> None:
    agree(postgres, se.SEED_PROTOCOL, cohort)


@settings(max_examples=30)
@given(cohort=se.cohort_of(se.MINI_PROTOCOL, 30))
def test_mini_protocol_agrees(postgres: Any, cohort: list[dict[str, Any]]) -> None:
    agree(postgres, se.MINI_PROTOCOL, cohort)


@settings(max_examples=30)
@given(cohort=se.cohort_of(se.TYPED_PROTOCOL, 20))
def test_observations_of_every_type_agree(postgres: Any, cohort: list[dict[str, Any]]) -> None:
    agree(postgres, se.TYPED_PROTOCOL, cohort)


@settings(max_examples=30)
@given(cohort=se.cohort_of(se.CONSTRUCTS_PROTOCOL, 20))
def test_more_constructs_agree(postgres: Any, cohort: list[dict[str, Any]]) -> None:
    agree(postgres, se.CONSTRUCTS_PROTOCOL, cohort)


# round()/floor()/ceil() of a quotient has no exact SQL form yet (a compile error).
SQL_RULES = RULES.filter(lambda rule: "round(weight / 3" not in rule)


@settings(max_examples=30)
@given(rules=st.lists(SQL_RULES, min_size=1, max_size=4), data=st.data())
def test_random_rules_agree(postgres: Any, rules: list[str], data: st.DataObject) -> None:
    protocol = se.with_rules(rules, "random.yaml")
    agree(postgres, protocol, data.draw(se.cohort_of(protocol, 8)))
