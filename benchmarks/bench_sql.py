"""Screening at scale: the seed protocol compiled to SQL, run in DuckDB on generated Parquet.

    PYTHONPATH=src python benchmarks/bench_sql.py                # N = 1,000,000
    PYTHONPATH=src python benchmarks/bench_sql.py --n 10000000   # ten million
    PYTHONPATH=src python benchmarks/bench_sql.py --big          # the same, as a flag

Steps, all in one run:

1. **Generate** N patients for NCT06125106 straight into the three Parquet tables of
   ``docs/sql.md`` with DuckDB SQL (seeded hashes, no Python loop): adult B-ALL patients
   with labs around the enrollment window, treatment histories, a few percent missing
   values, and boundary patients (Cockcroft-Gault exactly 60 mL/min, AST at 3 x ULN, LVEF
   at 50 %, chemotherapy ending exactly 14 days before enrollment).
2. **protocode**: `protocode.tables.run.Connection` stages the Parquet files, validates every
   cell, and runs the compiled query into a results table; the query alone is timed too.
3. **Hand-written**: one DuckDB query for the same 21 criteria written by hand (below),
   timed on the same views in the same process.
4. **Agreement**: compiled and hand-written verdicts are compared for every patient and
   criterion; a sample is read back as records and screened by the row engine
   (`Protocol.screen`), which must agree with DuckDB on every criterion.
5. **Memory**: DuckDB's own peak (sampled from ``duckdb_memory()`` while queries run) and
   the process's peak RSS.

Exit status 1 on any disagreement. ``--json OUT`` writes every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

import protocode
from protocode.backends.sql.layout import layout
from protocode.tables.run import Connection

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "protocol" / "NCT06125106"

# ---- generation (DuckDB SQL; `i` is the patient number, `u(k)` a uniform draw in [0, 1))

_BASE = """
CREATE TABLE base AS
SELECT
  i,
  'P' || lpad(CAST(i AS VARCHAR), 9, '0') AS id,
  DATE '2023-01-02' + CAST(hash(i, {seed}, 1) % 900 AS INTEGER) AS enrollment,
  hash(i, {seed}, 2) % 1000 AS u_sex,
  hash(i, {seed}, 3) % 1000 AS u_age,
  hash(i, {seed}, 4) % 1000 AS u_lab,
  hash(i, {seed}, 5) % 1000 AS u_miss,
  hash(i, {seed}, 6) % 1000 AS u_bound,
  hash(i, {seed}, 7) % 1000 AS u_hist,
  hash(i, {seed}, 8) % 1000 AS u_ill,
  hash(i, {seed}, 9) % 1000 AS u_days
FROM range({n}) AS t(i)
"""

# Boundary patients (u_bound < 20): a 32-year-old man of 42.0 kg with creatinine 1.05 mg/dL,
# Cockcroft-Gault exactly 60 mL/min; float arithmetic would exclude him.
_FACTS = """
CREATE TABLE facts AS
SELECT
  *,
  CASE WHEN u_bound < 20 THEN 'male' WHEN u_sex < 480 THEN 'female' ELSE 'male' END AS sex,
  CASE WHEN u_bound < 20 THEN 32
       WHEN u_age < 30 THEN 14 + u_age % 4
       WHEN u_age > 970 THEN 71 + u_age % 9
       ELSE 18 + u_age % 53 END AS age,
  CASE WHEN u_bound < 20 THEN CAST(42.0 AS DECIMAL(12, 9))
       ELSE CAST(400 + hash(i, {seed}, 10) % 800 AS DECIMAL(5, 0)) * 0.1 END AS weight_raw,
  CASE WHEN u_bound < 20 THEN CAST(1.05 AS DECIMAL(4, 2))
       ELSE CAST(50 + hash(i, {seed}, 11) % 110 AS DECIMAL(5, 0)) * 0.01 END AS scr_raw
FROM base
"""

_PATIENTS = """
SELECT
  id,
  enrollment - CAST(u_days % 15 AS INTEGER) AS screening,
  enrollment,
  enrollment + 20 AS conditioning_start,
  enrollment + 30 AS transplant,
  CASE WHEN u_miss < 10 THEN NULL
       WHEN u_bound BETWEEN 20 AND 24 THEN CAST(enrollment - INTERVAL (18) YEAR AS DATE)
       ELSE CAST(enrollment - INTERVAL (age) YEAR - INTERVAL (u_days % 360) DAY AS DATE)
  END AS birth_date,
  CASE WHEN u_miss BETWEEN 10 AND 14 THEN NULL ELSE sex END AS sex,
  CAST(CASE WHEN u_miss BETWEEN 15 AND 19 THEN NULL ELSE weight_raw END AS {weight}) AS weight,
  CASE WHEN u_ill < 960 THEN 'B-ALL' WHEN u_ill < 980 THEN 'T-ALL' ELSE 'MPAL' END AS diagnosis,
  CASE WHEN u_miss BETWEEN 20 AND 24 THEN NULL ELSE u_ill % 97 <> 0 END AS cd19_positive,
  u_ill % 89 <> 0 AS hematologic_cr,
  u_ill % 83 = 0 AS extramedullary_disease,
  CAST(CASE WHEN u_miss BETWEEN 25 AND 29 THEN NULL ELSE u_lab % 4 END AS BIGINT) AS ecog,
  CAST(CASE WHEN u_miss BETWEEN 30 AND 34 THEN NULL ELSE 6 + u_lab % 100 END AS {life}) AS life_expectancy,
  CASE WHEN sex = 'female' THEN age < 50 ELSE FALSE END AS childbearing_potential,
  CASE WHEN u_miss BETWEEN 35 AND 39 THEN NULL ELSE u_days % 50 <> 0 END AS contraception_agreed,
  CASE WHEN sex = 'female' THEN u_ill % 71 = 0 ELSE FALSE END AS pregnant,
  CASE WHEN sex = 'female' THEN u_ill % 73 = 0 ELSE FALSE END AS lactating,
  u_ill % 61 = 0 AS active_autoimmune_disease,
  u_ill % 67 = 0 AS uncontrolled_arrhythmia,
  CASE WHEN u_miss BETWEEN 40 AND 44 THEN NULL ELSE u_ill % 59 = 0 END AS uncontrolled_hypertension,
  u_ill % 53 = 0 AS congestive_heart_failure,
  CAST(1 + u_hist % 4 AS BIGINT) AS nyha_class,
  u_ill % 47 = 0 AS copd_lung_dysfunction,
  u_ill % 43 = 0 AS serious_comorbidity,
  u_ill % 41 = 0 AS thrombosis_or_hypercoagulable,
  u_ill % 101 = 0 AS hiv_infection,
  CASE WHEN u_ill % 37 = 0 THEN 'positive' ELSE 'negative' END AS hbsag,
  u_hist % 2 = 0 AS hbv_controlled,
  CASE WHEN u_miss BETWEEN 45 AND 49 THEN NULL
       WHEN u_ill % 31 = 0 THEN 'positive' ELSE 'negative' END AS anti_hcv,
  u_hist % 3 <> 0 AS hcv_controlled,
  u_ill % 29 = 0 AS mab_severe_allergy,
  CASE WHEN u_miss BETWEEN 50 AND 54 THEN NULL ELSE u_days % 40 <> 0 END
    AS attest__informed_consent,
  u_days % 45 = 0 AS attest__unable_to_comply,
  {known}
FROM facts
"""

# Labs: a value dated 0-9 days before enrollment (8 and 9 fall outside the 7-day window),
# an older creatinine for half the patients, reference ranges on some AST/ALT/bilirubin rows.
_OBSERVATIONS = """
WITH labs AS (
  SELECT id, enrollment, sex, scr_raw, u_lab, u_miss, u_bound, u_days,
         enrollment - CAST(u_days % 10 AS INTEGER) AS lab_date,
         childbearing_potential
  FROM facts JOIN (SELECT id, childbearing_potential FROM patients_out) USING (id)
)
SELECT id, 'mrd_flow' AS item, enrollment - 20 AS date,
       CASE WHEN u_lab % 7 = 0 THEN 'negative' ELSE 'positive' END AS value,
       NULL::VARCHAR AS low, NULL::VARCHAR AS high
FROM labs
UNION ALL
SELECT id, 'creatinine', CASE WHEN u_bound < 20 THEN enrollment - 2 ELSE lab_date END,
       CAST(scr_raw AS VARCHAR), NULL, NULL
FROM labs WHERE u_miss NOT BETWEEN 55 AND 69
UNION ALL
SELECT id, 'creatinine', enrollment - 30, '0.8', NULL, NULL FROM labs WHERE u_lab % 2 = 0
UNION ALL
SELECT id, 'ast', lab_date,
       CASE WHEN u_bound BETWEEN 25 AND 29 THEN '120' ELSE CAST(10 + u_lab % 140 AS VARCHAR) END,
       CASE WHEN u_lab % 3 = 0 THEN '5' END, CASE WHEN u_lab % 3 = 0 THEN '35' END
FROM labs
UNION ALL
SELECT id, 'alt', lab_date, CAST(8 + u_days % 130 AS VARCHAR),
       NULL, CASE WHEN u_days % 4 = 0 THEN '50' END
FROM labs
UNION ALL
SELECT id, 'bilirubin', lab_date, CAST(CAST(2 + u_lab % 28 AS DECIMAL(4, 0)) * 0.1 AS VARCHAR),
       NULL, CASE WHEN u_lab % 5 = 0 THEN '1.0' END
FROM labs
UNION ALL
SELECT id, 'lvef', enrollment - CAST(u_lab % 9 AS INTEGER),
       CASE WHEN u_bound BETWEEN 30 AND 34 THEN '50' ELSE CAST(40 + u_days % 30 AS VARCHAR) END,
       NULL, NULL
FROM labs WHERE u_miss NOT BETWEEN 70 AND 74
UNION ALL
SELECT id, 'pregnancy_test', enrollment - CAST(u_days % 9 AS INTEGER),
       CASE WHEN u_days % 30 = 0 THEN 'positive' ELSE 'negative' END, NULL, NULL
FROM labs WHERE childbearing_potential
"""

_EVENTS = """
SELECT id, 'chemotherapy' AS item,
       enrollment - CAST(16 + u_hist % 40 AS INTEGER) AS date,
       enrollment - CAST(14 + u_hist % 40 - u_days % 3 AS INTEGER) AS "end"
FROM facts WHERE u_hist % 10 < 7
UNION ALL
SELECT id, 'hsct', enrollment - 400, NULL FROM facts WHERE u_ill % 53 = 1
UNION ALL
SELECT id, 'blinatumomab', enrollment - 200, enrollment - 190 FROM facts WHERE u_ill % 51 = 1
UNION ALL
SELECT id, 'cns_leukemia', enrollment - 300, NULL FROM facts WHERE u_ill % 33 = 1
UNION ALL
SELECT id, 'myocardial_infarction', enrollment - CAST(30 + u_days % 300 AS INTEGER), NULL
FROM facts WHERE u_ill % 49 = 1
"""


def generate(protocol: protocode.Protocol, n: int, seed: int, directory: Path) -> dict[str, int]:
    """Write patients/observations/events.parquet for `n` patients; return row counts."""
    lay = layout(protocol.checked)
    types = {c.name: c.sql_type.sql("duckdb") for c in lay.columns}
    known = ",\n  ".join(f"TRUE AS {c.name}" for c in lay.columns if c.role == "known")
    con = duckdb.connect()
    con.execute(_BASE.format(n=int(n), seed=int(seed)))
    con.execute(_FACTS.format(seed=int(seed)))
    patients = _PATIENTS.format(weight=types["weight"], life=types["life_expectancy"], known=known)
    con.execute(f"CREATE TABLE patients_out AS {patients}")
    con.execute(f"CREATE TABLE observations_out AS {_OBSERVATIONS}")
    con.execute(f"CREATE TABLE events_out AS {_EVENTS}")
    counts = {}
    for name in ("patients", "observations", "events"):
        path = directory / f"{name}.parquet"
        con.execute(f"COPY {name}_out TO '{path}' (FORMAT parquet)")
        counts[name] = con.execute(f"SELECT count(*) FROM {name}_out").fetchone()[0]  # type: ignore[index]
    con.close()
    return counts


# ---- the hand-written query: the 21 criteria, as a person would write them for this data
# (one pass over the labs with arg_max, no same-day or undated values to worry about, every
# history flagged known). Kleene logic is SQL's own: NULL is unknown. The lab values are
# cast to DECIMAL after arg_max picks them (one cast per patient and lab); `--cast-rows`
# also times the first version, which cast every row's text inside each aggregate.

_WINDOW = "o.date BETWEEN p.enrollment - 7 AND p.enrollment"
_LABS = (
    ("scr", "value", "creatinine", "DECIMAL(11, 9)"),
    ("ast", "value", "ast", "DECIMAL(14, 9)"),
    ("ast_uln", "high", "ast", "DECIMAL(14, 9)"),
    ("alt", "value", "alt", "DECIMAL(14, 9)"),
    ("alt_uln", "high", "alt", "DECIMAL(14, 9)"),
    ("bili", "value", "bilirubin", "DECIMAL(11, 9)"),
    ("bili_uln", "high", "bilirubin", "DECIMAL(11, 9)"),
    ("lvef", "value", "lvef", "DECIMAL(12, 9)"),
)


def _lab(cast_rows: bool) -> str:
    """The labs CTE: cast after arg_max (default), or every row inside it (`cast_rows`)."""

    def pick(name: str, column: str, item: str, sql_type: str) -> str:
        where = f"WHERE o.item = '{item}' AND {_WINDOW}"
        if cast_rows:
            return f"arg_max(TRY_CAST(o.{column} AS {sql_type}), o.date) FILTER ({where}) AS {name}"
        return f"TRY_CAST(arg_max(o.{column}, o.date) FILTER ({where}) AS {sql_type}) AS {name}"

    picks = ",\n    ".join(pick(*lab) for lab in _LABS)
    return f"""
  SELECT o.id,
    arg_max(o.value, o.date) FILTER (WHERE o.item = 'mrd_flow') AS mrd,
    {picks},
    arg_max(o.value, o.date) FILTER (WHERE o.item = 'pregnancy_test' AND {_WINDOW}) AS preg
  FROM observations o JOIN patients p ON o.id = p.id
  GROUP BY o.id
"""


HAND_WRITTEN = """
WITH lab AS ({lab}), ev AS (
  SELECT e.id,
    bool_or(e.item = 'hsct' AND e.date < p.enrollment) AS hsct,
    bool_or(e.item = 'chemotherapy' AND e.date <= p.enrollment
            AND coalesce(e."end", e.date) >= p.enrollment - 14) AS chemo,
    bool_or(e.item = 'blinatumomab' AND e.date < p.enrollment) AS blina,
    bool_or(e.item = 'cns_leukemia') AS cns,
    bool_or(e.item = 'myocardial_infarction' AND e.date <= p.screening
            AND coalesce(e."end", e.date) >= CAST(p.screening - INTERVAL 6 MONTH AS DATE)) AS mi
  FROM events e JOIN patients p ON e.id = p.id
  GROUP BY e.id
), x AS (
  SELECT p.*, lab.*, coalesce(ev.hsct, FALSE) AS any_hsct,
    coalesce(ev.chemo, FALSE) AS any_chemo, coalesce(ev.blina, FALSE) AS any_blina,
    coalesce(ev.cns, FALSE) AS any_cns, coalesce(ev.mi, FALSE) AS any_mi,
    year(p.enrollment) - year(p.birth_date)
      - CASE WHEN month(p.enrollment) * 100 + day(p.enrollment)
                  < month(p.birth_date) * 100 + day(p.birth_date) THEN 1 ELSE 0 END AS age
  FROM patients p LEFT JOIN lab ON lab.id = p.id LEFT JOIN ev ON ev.id = p.id
), c AS (
  SELECT id,
    diagnosis = 'B-ALL' AND cd19_positive AND hematologic_cr AND mrd = 'positive' AS I1,
    age BETWEEN 18 AND 70 AS I2,
    ecog BETWEEN 0 AND 2 AS I3,
    CASE WHEN sex = 'female' AND childbearing_potential
           THEN preg = 'negative' AND contraception_agreed
         WHEN NOT (sex = 'female' AND childbearing_potential) THEN TRUE
         WHEN preg = 'negative' AND contraception_agreed THEN TRUE END AS I4,
    -- Cockcroft-Gault >= 60 without division: (140 - age) * weight * f >= 60 * 72 * scr.
    CAST(140 - age AS DECIMAL(18, 0)) * weight
      * CASE WHEN sex = 'female' THEN 0.85 WHEN sex = 'male' THEN 1.00 END
      >= 4320 * scr
    AND ast <= 3 * coalesce(ast_uln, 40)
    AND alt <= 3 * coalesce(alt_uln, 40)
    AND bili <= 2 * coalesce(bili_uln, 1.2)
    AND lvef >= 50 AS I5,
    life_expectancy > 8 AS I6,
    attest__informed_consent AS I7,
    NOT hematologic_cr OR extramedullary_disease AS E1,
    any_hsct AS E2,
    any_chemo AS E3,
    any_blina AS E4,
    any_cns AS E5,
    active_autoimmune_disease AS E6,
    uncontrolled_arrhythmia OR uncontrolled_hypertension OR congestive_heart_failure
      OR nyha_class >= 3 OR any_mi AS E7,
    copd_lung_dysfunction AS E8,
    serious_comorbidity AS E9,
    thrombosis_or_hypercoagulable AS E10,
    hiv_infection OR (hbsag = 'positive' AND NOT hbv_controlled)
      OR (anti_hcv = 'positive' AND NOT hcv_controlled) AS E11,
    sex = 'female' AND (pregnant OR lactating) AS E12,
    mab_severe_allergy AS E13,
    attest__unable_to_comply AS E14
  FROM x
)
SELECT id,
  {verdicts},
  CASE WHEN {blocking} THEN 'ineligible'
       WHEN {undecided} THEN 'indeterminate' ELSE 'eligible' END AS status
FROM c
"""


def hand_written(criteria: Sequence[tuple[str, str]], cast_rows: bool = False) -> str:
    """The hand-written query with its verdict columns spelled out for the 21 ids."""
    verdicts = ",\n  ".join(
        f"CASE WHEN {c} THEN 'met' WHEN NOT {c} THEN 'not met' ELSE 'unknown' END AS {c}"
        for c, _ in criteria
    )
    blocking = " OR ".join(
        f"{c} IS {'FALSE' if kind == 'inclusion' else 'TRUE'}" for c, kind in criteria
    )
    undecided = " OR ".join(f"{c} IS NULL" for c, _ in criteria)
    return HAND_WRITTEN.format(
        lab=_lab(cast_rows), verdicts=verdicts, blocking=blocking, undecided=undecided
    )


# ---- measuring


class MemoryWatch:
    """Samples DuckDB's memory use (``duckdb_memory()``) from a second cursor."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.cursor = con.cursor()
        self.peak = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.wait(0.05):
            row = self.cursor.execute(
                "SELECT sum(memory_usage_bytes) FROM duckdb_memory()"
            ).fetchone()
            if row and row[0]:
                self.peak = max(self.peak, int(row[0]))

    def __enter__(self) -> MemoryWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def timed(fn: Any, repeat: int) -> list[float]:
    """Wall-clock seconds of `repeat` calls."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def rss_peak_mb() -> float:
    """The process's peak resident set size so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="patients (1,000,000)")
    parser.add_argument("--big", action="store_true", help="10,000,000 patients")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (3)")
    parser.add_argument("--sample", type=int, default=20_000, help="row-engine sample (20,000)")
    parser.add_argument("--dir", type=Path, help="keep the Parquet files here")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument(
        "--cast-rows",
        action="store_true",
        help="also time the first hand-written query (casts every lab row inside arg_max)",
    )
    args = parser.parse_args(argv)
    n = 10_000_000 if args.big else args.n
    protocol = protocode.load(SEED)
    criteria = [(c.id, c.kind) for c in protocol.criteria]
    figures: dict[str, Any] = {
        "n": n,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    with tempfile.TemporaryDirectory(prefix="protocode-bench-") as tmp:
        directory = args.dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        counts = generate(protocol, n, args.seed, directory)
        figures["generate_s"] = time.perf_counter() - start
        figures["rows"] = counts
        print(f"generated {n:,} patients in {figures['generate_s']:.1f} s: {counts}")

        with Connection(protocol) as con:
            start = time.perf_counter()
            con.load(directory)
            errors = con.validate()
            figures["validate_s"] = time.perf_counter() - start
            if errors:
                print(f"{len(errors)} generated records failed validation, e.g.:")
                print(errors[0].render())
                return 1
            compiled = protocol.to_sql("duckdb", pretty=False)
            hand = hand_written(criteria)
            db = con.con
            with MemoryWatch(db) as memory:
                start = time.perf_counter()
                summary = con.screen()
                figures["screen_s"] = time.perf_counter() - start
            figures["duckdb_peak_mb"] = memory.peak / 2**20
            # The query alone, against the hand-written one, alternating, best of `repeat`.
            hand_rows = hand_written(criteria, cast_rows=True)
            compiled_times: list[float] = []
            hand_times: list[float] = []
            rows_times: list[float] = []
            for _ in range(args.repeat):
                compiled_times += timed(
                    lambda: db.execute(f"CREATE OR REPLACE TABLE c_out AS {compiled}"), 1
                )
                hand_times += timed(
                    lambda: db.execute(f"CREATE OR REPLACE TABLE h_out AS {hand}"), 1
                )
                if args.cast_rows:
                    rows_times += timed(
                        lambda: db.execute(f"CREATE OR REPLACE TABLE r_out AS {hand_rows}"), 1
                    )
            figures["compiled_s"] = compiled_times
            figures["hand_s"] = hand_times
            ids = ", ".join(c for c, _ in criteria)

            def mismatches(table: str) -> int:
                row = db.execute(
                    f"SELECT count(*) FROM (SELECT id, status, {ids} FROM c_out "
                    f"EXCEPT ALL SELECT id, status, {ids} FROM {table})"
                ).fetchone()
                return int(row[0]) if row else -1

            figures["hand_mismatches"] = mismatches("h_out")
            if args.cast_rows:
                figures["hand_cast_rows_s"] = rows_times
                figures["hand_mismatches"] += mismatches("r_out")
            start = time.perf_counter()
            out = directory / "results.parquet"
            con.write(out, "parquet")
            figures["write_parquet_s"] = time.perf_counter() - start
            figures["statuses"] = dict(summary.statuses)

            # Row engine on a sample, read back from the same tables.
            sample_ids = [
                r[0]
                for r in db.execute(
                    f"SELECT id FROM patients USING SAMPLE {int(args.sample)} ROWS "
                    "(reservoir, 42) ORDER BY id"
                ).fetchall()
            ]
            db.execute("CREATE TABLE sample_ids (id VARCHAR)")
            db.executemany("INSERT INTO sample_ids VALUES (?)", [(i,) for i in sample_ids])
            sql_rows = {
                r[0]: r[1:]
                for r in db.execute(
                    f"SELECT id, status, {ids} FROM results WHERE id IN (SELECT id FROM sample_ids)"
                ).fetchall()
            }
            wanted = set(sample_ids)
            records = [r for r in con.records() if r["id"] in wanted]
        start = time.perf_counter()
        parsed = [protocol.record(r) for r in records]
        figures["row_ingest_s"] = time.perf_counter() - start
        start = time.perf_counter()
        screened = [protocol.screen(r) for r in parsed]
        figures["row_screen_s"] = time.perf_counter() - start
        disagree = [
            s.record_id
            for s in screened
            if (s.status, *(c.verdict for c in s.criteria)) != tuple(sql_rows[s.record_id])
        ]
        figures["sample"] = len(screened)
        figures["row_mismatches"] = len(disagree)
    figures["rss_peak_mb"] = rss_peak_mb()
    best_c, best_h = min(figures["compiled_s"]), min(figures["hand_s"])
    figures["ratio"] = best_c / best_h
    end_to_end = figures["validate_s"] + figures["screen_s"]
    row_s = figures["row_screen_s"] / max(1, figures["sample"])
    print(f"validate (staging, every cell):      {figures['validate_s']:7.2f} s")
    print(f"screen (compiled query → table):     {figures['screen_s']:7.2f} s")
    print(f"write results.parquet:               {figures['write_parquet_s']:7.2f} s")
    print(
        f"compiled query, best of {args.repeat}:          {best_c:7.2f} s  "
        f"{n / best_c:>12,.0f} patients/s"
    )
    print(
        f"hand-written query, best of {args.repeat}:      {best_h:7.2f} s  "
        f"{n / best_h:>12,.0f} patients/s"
    )
    print(f"compiled / hand-written:             {figures['ratio']:7.2f}x")
    if args.cast_rows:
        best_r = min(figures["hand_cast_rows_s"])
        print(
            f"hand-written, cast every row, best of {args.repeat}: {best_r:7.2f} s  "
            f"{n / best_r:>12,.0f} patients/s  (compiled / this: {best_c / best_r:.2f}x)"
        )
    print(
        f"validate + screen:                   {end_to_end:7.2f} s  "
        f"{n / end_to_end:>12,.0f} patients/s"
    )
    print(
        f"row engine (Protocol.screen), sample: {figures['sample']:,} patients, "
        f"{1 / row_s:,.0f} patients/s (+ ingestion {figures['row_ingest_s']:.1f} s)"
    )
    print(f"DuckDB peak memory (screen):         {figures['duckdb_peak_mb']:7.0f} MB")
    print(f"process peak RSS:                    {figures['rss_peak_mb']:7.0f} MB")
    print(f"statuses: {figures['statuses']}")
    print(
        f"disagreements: hand-written {figures['hand_mismatches']}, "
        f"row engine {figures['row_mismatches']} of {figures['sample']}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0 if figures["hand_mismatches"] == 0 and figures["row_mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
