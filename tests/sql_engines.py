"""Shared harness of the tests that run the transpiled query on other SQL engines.

`test_sql_postgres.py` (a throwaway PostgreSQL server) and `test_sql_spark.py` (PySpark in
local mode) load the same cohorts into their engine and compare every patient's verdicts and
status with the row engine and DuckDB. This module holds the protocols, the cohorts (seed
examples, boundary patients, generated ones) and the comparison; nothing is mocked.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import strategies as st

import protocode
from helpers import MINI, SEED
from protocode.core.errors import RecordError
from protocode.tables.convert import RowWriter, TableRows
from protocode.tables.run import Connection
from protocode.testing import BASE_DATE, records

# (status, verdict…) per record id, in the criteria's order.
Verdicts = tuple[str, ...]
# An engine: the table rows of a cohort → (status, verdicts…) per id.
Engine = Callable[[protocode.Protocol, list[TableRows]], dict[str, Verdicts]]

SEED_PROTOCOL = protocode.load(SEED)
MINI_PROTOCOL = protocode.load_text(MINI, "mini.yaml")
_I1 = "    - {id: I1, text: Adult, rule: age >= 18 years}"


def with_rules(rules: list[str], name: str = "rules.yaml", prefix: str = "R") -> protocode.Protocol:
    """The mini protocol with its first criterion replaced by `rules`."""
    lines = "\n".join(
        f"    - {{id: {prefix}{i}, text: Rule, rule: {json.dumps(rule)}}}"
        for i, rule in enumerate(rules)
    )
    return protocode.load_text(MINI.replace(_I1, lines), name)


# Observation items of every type (the seed protocol's are numbers and codes only).
TYPED_PROTOCOL = protocode.load_text(
    MINI.replace(
        "  chemo: {kind: event}",
        """  chemo: {kind: event}
  fit: {kind: observation, type: boolean}
  scan: {kind: observation, type: date}
  grade: {kind: observation, type: integer, minimum: 0, maximum: 4}
  result: {kind: observation, type: code, values: [pos, neg]}""",
    ).replace(
        _I1,
        f"""{_I1}
    - {{id: O1, text: Fit, rule: latest fit within 30 days before enrollment}}
    - {{id: O2, text: Scan, rule: latest scan within 30 days before enrollment >= screening}}
    - {{id: O3, text: Grade, rule: earliest grade <= 2}}
    - {{id: O4, text: Result, rule: 'latest result within 30 days before enrollment == "pos"'}}
    - {{id: O5, text: Any fit, rule: any fit within 10 days before enrollment}}""",
    ),
    "typed.yaml",
)

# More of the language: calendar arithmetic, rounding, quotients, numeric `if`, events.
CONSTRUCT_RULES = [
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
CONSTRUCTS_PROTOCOL = with_rules(CONSTRUCT_RULES, "constructs.yaml", "X")
# Its min(…) of a quotient needs DECIMAL(38, 18): within the 38 digits of DuckDB and
# PostgreSQL, beyond the 37 the compiler allows for Spark (see WIDE_PROTOCOL).
NEEDS_38_DIGITS = "min(weight, 50 kg, crcl * 1 min/mL * 1 kg) < 45 kg"

# Month arithmetic at month ends: January 31 + 1 month is February 29 (2024) or 28 (2023),
# clamped to the month's end as the row engine's add_months does.
MONTHS_PROTOCOL = with_rules(
    ["screening + 1 months >= enrollment", "enrollment - 1 months <= screening"],
    "months.yaml",
    "M",
)
MONTH_ENDS = [
    {"id": f"M{i}", "screening": s, "enrollment": e}
    for i, (s, e) in enumerate(
        [
            ("2024-01-31", "2024-02-29"),
            ("2024-01-31", "2024-03-01"),
            ("2023-01-31", "2023-02-28"),
            ("2023-01-31", "2023-03-01"),
            ("2024-03-31", "2024-04-30"),
            ("2024-03-31", "2024-05-01"),
            ("2023-12-31", "2024-01-31"),
        ]
    )
]


# ---- seed cohorts: the bundled examples and boundary patients


def seed_examples() -> list[dict[str, Any]]:
    """The bundled example records (``examples/patients.jsonl``)."""
    path = SEED / "examples" / "patients.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def seed_record(**changes: Any) -> dict[str, Any]:
    """A 32-year-old man, 42.0 kg, creatinine 1.05 mg/dL: Cockcroft-Gault exactly 60."""
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


def cockcroft_gault_boundary() -> list[dict[str, Any]]:
    """(140 - 32) * 42 / (72 * 1.05) = 60 mL/min exactly, and its neighbours."""
    return [
        seed_record(id="at"),
        seed_record(id="below", weight=41.99),
        seed_record(id="above", creatinine=[{"value": 1.04, "date": "2024-02-28"}]),
        seed_record(
            id="umol", creatinine=[{"value": 92.82, "unit": "umol/L", "date": "2024-02-28"}]
        ),
        # a day before the 32nd birthday: 31 years, so crcl is above 60
        seed_record(id="younger", enrollment="2024-01-14", screening="2024-01-14"),
    ]


def window_edges(days: int) -> list[dict[str, Any]]:
    """Creatinine `days` before enrollment (window: 7 days before), alone, with a
    different or an equal value the same day, with an undated value, or none."""
    date = (BASE_DATE - dt.timedelta(days=days)).isoformat()
    series = [
        [{"value": 1.05, "date": date}],
        [{"value": 1.05, "date": date}, {"value": 2.5, "date": date}],
        [{"value": 1.05, "date": date}, {"value": 1.05, "date": date}],
        [{"value": 1.05, "date": date}, {"value": 0.5}],
        [],
    ]
    return [
        seed_record(id=f"d{days}-{i}", enrollment=BASE_DATE.isoformat(), creatinine=s)
        for i, s in enumerate(series)
    ]


def cohort_of(
    protocol: protocode.Protocol, size: int, least: int = 1
) -> st.SearchStrategy[list[dict[str, Any]]]:
    """A generated cohort of `least` to `size` valid records with distinct ids."""

    def number(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**r, "id": f"P{i}"} for i, r in enumerate(rs)]

    return st.lists(records(protocol), min_size=least, max_size=size).map(number)


# ---- conversion and comparison


def _cells(rows: TableRows) -> Iterator[str | None]:
    yield from rows.patient.values()
    for row in [*rows.observations, *rows.events]:
        yield from row


def convert(
    protocol: protocode.Protocol, cohort: list[dict[str, Any]], *, nul: bool = True
) -> tuple[list[TableRows], list[str]]:
    """Table rows of the records the layout holds exactly, and the ids of the others (and,
    with `nul` False, of records with a NUL character in a text cell)."""
    rows, held = [], []
    for item in RowWriter(protocol).convert(cohort):
        if isinstance(item, RecordError):
            codes = {d.code for d in item.diagnostics}
            assert codes == {"sql-range"}, item.render()
            held.append(str(item.diagnostics[0].record_id))
        elif not nul and any("\x00" in (cell or "") for cell in _cells(item)):
            held.append(str(item.patient["id"]))
        else:
            rows.append(item)
    return rows, held


def row_results(protocol: protocode.Protocol, cohort: list[dict[str, Any]]) -> dict[str, Verdicts]:
    """(status, verdicts…) per record id from the row engine."""
    out: dict[str, Verdicts] = {}
    for data in cohort:
        s = protocol.screen(data)
        out[s.record_id] = (s.status, *(c.verdict for c in s.criteria))
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


def assert_agree(
    engine: Engine,
    name: str,
    protocol: protocode.Protocol,
    cohort: list[dict[str, Any]],
    *,
    nul: bool = True,
) -> dict[str, Verdicts]:
    """`engine`, DuckDB and the row engine give every patient the same verdicts and status;
    returns `engine`'s (without the records the layout cannot hold, see `convert`)."""
    rows, held = convert(protocol, cohort, nul=nul)
    expected = row_results(protocol, cohort)
    got = engine(protocol, rows)
    assert got.keys() == expected.keys() - set(held)
    assert duckdb_results(protocol, cohort) == expected
    ids = ["status", *(c.id for c in protocol.criteria)]
    for rid, verdicts in got.items():
        if verdicts != expected[rid]:
            diff = {
                column: (g, w)
                for column, g, w in zip(ids, verdicts, expected[rid], strict=True)
                if g != w
            }
            record = next(r for r in cohort if r["id"] == rid)
            raise AssertionError(f"{rid}: {name} vs row {diff}\n{json.dumps(record, default=str)}")
    return got


def criterion(protocol: protocode.Protocol, cid: str) -> int:
    """The position of criterion `cid` in a `Verdicts` tuple."""
    return 1 + [c.id for c in protocol.criteria].index(cid)


# A product whose exact format is 38 digits wide: (weight + weight)² is DECIMAL(38, 18).
# Spark types a product one digit wider than its operands' sum and, past 38 digits, drops a
# decimal place by default (rounding 4e-18 to 0), so for Spark the compiler bounds exact
# formats at 37 digits: this rule is a compile error there, and WIDE_37_PROTOCOL's
# (weight + weight) * weight, DECIMAL(37, 18), is exact.
WIDE_PROTOCOL = with_rules(
    [
        "((weight as kg) + (weight as kg)) * ((weight as kg) + (weight as kg)) > 0",
        "((weight as kg) + (weight as kg)) * ((weight as kg) + (weight as kg))"
        " == 0.000000000000000004",
    ],
    "wide.yaml",
    "W",
)
WIDE_37_PROTOCOL = with_rules(
    [
        "((weight as kg) + (weight as kg)) * (weight as kg) > 0",
        "((weight as kg) + (weight as kg)) * (weight as kg) == 0.000000000000000002",
    ],
    "wide37.yaml",
    "W",
)
WIDE = [
    {"id": "tiny", "weight": 0.000000001},
    {"id": "zero", "weight": 0},
    {"id": "one", "weight": 1},
]
