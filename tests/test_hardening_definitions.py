"""Long chains of definitions (issue 11, items 6 and 7): every stage answers, in linear size.

A chain of 400 definitions (`d2: d1 + 1`, …) is deeper than `check` allows: one located
error names the definition that crosses the bound, and nothing else is reported. A chain
within the bound, and definitions that each use the previous one twice (`d2: d1 + d1`),
give results from every stage, and the generated SQL grows linearly with the protocol.
"""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

import protocode
from helpers import FIXTURES, MINI, run
from protocode.backends.python.pycode import compile_fast
from protocode.core.errors import CheckError, LoadError, UsageError
from protocode.document.loader import load_protocol_text
from protocode.language.check import MAX_NESTING, check_protocol
from protocode.pipeline import load_json
from protocode.screening import BACKENDS, Backend
from sql_engines import cohort_of, duckdb_results, row_results

HEADER = """\
protocode: 1
protocol: {registry_id: TEST-DEFS, title: Definitions, version: "1"}
data:
  enrollment: {kind: anchor}
  v: {type: integer, minimum: 0, maximum: 10}
  lab: {kind: observation, unit: mg/dL}
definitions:
"""


def chain(
    n: int,
    step: str = "{d} + 1",
    *,
    doubled: bool = False,
    reverse: bool = False,
    cycle: bool = False,
) -> str:
    """A protocol whose definition d<k> is `step` of d<k-1> (`{d} + {d}` when `doubled`);
    one criterion reads d<n>. `reverse` lists the definitions last first; `cycle` makes d1
    use d<n>."""
    if doubled:
        step = "{d} + {d}"
    lines = [f"  d1: {f'd{n}' if cycle else 'v'} + 1"]
    lines += [f"  d{k}: {step.format(d=f'd{k - 1}')}" for k in range(2, n + 1)]
    if reverse or cycle:
        lines.reverse()
    criteria = f"criteria:\n  inclusion:\n    - {{id: I1, text: Deep, rule: d{n} >= 1}}\n"
    return HEADER + "\n".join(lines) + "\n" + criteria


def only_error(text: str) -> str:
    """The one diagnostic `check` gives for a protocol, rendered with its caret."""
    with pytest.raises(CheckError) as info:
        check_protocol(load_protocol_text(text, "deep.yaml"))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.span is not None
    return info.value.render()


# ---- check


@pytest.mark.parametrize("reverse", [False, True])
def test_a_chain_of_400_definitions_is_one_located_error(reverse: bool) -> None:
    # d<k> nests 2k levels deep: d129 is the first past the bound, and the only one
    # reported (those that use it, and the criterion, depend on its error).
    text = chain(400, reverse=reverse)
    rendered = only_error(text)
    line = text.splitlines().index("  d129: d128 + 1") + 1
    assert rendered.startswith(f"deep.yaml:{line}:9: too-deep: definition 'd129' nests 258 ")
    assert f"at most {MAX_NESTING}" in rendered
    assert "(through d128 -> d127 -> " in rendered and "-> d1)" in rendered
    assert "  d129: d128 + 1\n" in rendered and "^^^^" in rendered


def test_a_cycle_of_400_definitions_is_one_located_error() -> None:
    rendered = only_error(chain(400, cycle=True))
    assert "cycle: definitions form a cycle: d400 -> d399 -> " in rendered
    assert "… (394 more) -> d400" in rendered


def test_a_criterion_past_the_bound_through_definitions_is_located_at_it() -> None:
    # d127 nests 254 levels: within the bound; the criterion adds its own levels.
    text = chain(127).replace("rule: d127 >= 1", "rule: not (not (d127 >= 1))")
    rendered = only_error(text)
    assert "too-deep: the rule nests 258 levels deep" in rendered
    assert "not (not (d127 >= 1))" in rendered


def test_the_seed_protocol_is_far_within_the_bound() -> None:
    seed = Path(__file__).resolve().parent.parent / "protocol" / "NCT06125106" / "v4.yaml"
    checked = check_protocol(load_protocol_text(seed.read_text("utf-8"), str(seed)))
    assert list(checked.definitions) == ["age", "scr", "crcl"]


def test_definitions_come_after_the_ones_they_use() -> None:
    checked = check_protocol(load_protocol_text(chain(100, reverse=True), "deep.yaml"))
    assert list(checked.definitions) == [f"d{k}" for k in range(1, 101)]


# ---- every command, past the bound: the same one error, never a traceback


@pytest.mark.parametrize(
    "command",
    [
        ["check"],
        ["explain", "{file}", "{records}"],
        ["screen", "{file}", "{records}"],
        ["screen", "{file}", "{records}", "--engine", "duckdb"],
        ["compile", "--to", "sql"],
        ["compile", "--to", "json"],
    ],
)
def test_every_command_reports_a_too_deep_chain_once(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file, records = write(tmp_path, chain(400))
    argv = [a.format(file=file, records=records) for a in command]
    if "{file}" not in command:
        argv.append(str(file))
    status, _, err = run(capsys, *argv)
    assert status == 1, err
    assert err.count("too-deep") == 1 and "definition 'd129' nests 258 levels deep" in err
    assert "Traceback" not in err and "internal error" not in err


# ---- within the bound: every stage answers


def write(tmp_path: Path, text: str) -> tuple[Path, Path]:
    """The protocol file and a one-record JSONL file beside it."""
    file, records = tmp_path / "deep.yaml", tmp_path / "records.jsonl"
    file.write_text(text, "utf-8")
    records.write_text(json.dumps(RECORD) + "\n", "utf-8")
    return file, records


RECORD = {"id": "P1", "v": 3, "enrollment": "2024-01-01"}


def test_a_chain_at_the_bound_is_screened_and_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # d127 nests 254 levels, its criterion 256: the deepest a rule may go.
    file, records = write(tmp_path, chain(127))
    protocol = protocode.load(file)
    assert protocol.screen(RECORD).status == "eligible"
    assert protocol.explain(RECORD).criteria[0].findings[0].data[0] == "d127 = 130"
    status, out, err = run(capsys, "explain", file, records)
    assert status == 0, err
    assert "d127 >= 1 → true  [d127 = 130; d126 = 129; " in out and "d1 = 4; v = 3]" in out
    status, out, err = run(capsys, "screen", file, records, "--format", "csv")
    assert status == 0, err
    assert "P1,eligible" in out


def test_explaining_an_unknown_verdict_reads_each_definition_once() -> None:
    # Every definition is unknown: the missing item is found once, not 2^40 times.
    protocol = protocode.load_text(chain(40, doubled=True), "doubled.yaml")
    explanation = protocol.explain({"id": "P1", "enrollment": "2024-01-01"})
    assert explanation.status == "indeterminate"
    assert explanation.criteria[0].missing == ("v",)


def test_a_chain_at_the_bound_runs_in_duckdb_as_in_the_row_engine() -> None:
    # `max` keeps the exact DECIMAL format of its argument, so no digit limit is reached.
    protocol = protocode.load_text(chain(127, "max({d}, {d})"), "deep.yaml")
    cohort = [RECORD, {"id": "P2", "enrollment": "2024-01-01"}]
    expected = {"P1": ("eligible", "met"), "P2": ("indeterminate", "unknown")}
    assert duckdb_results(protocol, cohort) == row_results(protocol, cohort) == expected


def test_a_chain_at_the_bound_compiles_to_sql_or_says_where_it_is_too_wide() -> None:
    # Each `+ 1` widens the exact DECIMAL by a digit: past 38 digits a located error.
    protocol = protocode.load_text(chain(127), "deep.yaml")
    with pytest.raises(UsageError) as info:
        protocol.to_sql()
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.span is not None and diagnostic.span.text == "d36 + 1"
    assert "more than 38 digits" in diagnostic.message


def test_the_semantic_diff_of_a_chain_at_the_bound_is_proved() -> None:
    old = protocode.load_text(chain(127), "v1.yaml")
    new = protocode.load_text(chain(127).replace("d127 >= 1", "d127 >= 2"), "v2.yaml")
    comparison = protocode.diff(old, new).criteria[0].comparison
    assert (comparison.relation, comparison.method) == ("equivalent", "proved")


# ---- definitions that use the previous one twice: shared, linear in size


def test_doubled_definitions_give_results_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file, records = write(tmp_path, chain(25, doubled=True))
    status, out, err = run(capsys, "check", file)
    assert status == 0, err
    protocol = protocode.load(file)
    # d25 = 2^24 * (v + 1)
    assert protocol.explain(RECORD).criteria[0].findings[0].data[0] == "d25 = 67108864"
    cohort = [RECORD, {"id": "P2", "enrollment": "2024-01-01"}]
    assert duckdb_results(protocol, cohort) == row_results(protocol, cohort)
    status, out, err = run(capsys, "screen", file, records, "--engine", "duckdb", "--format", "csv")
    assert status == 0, err
    assert "P1,eligible" in out
    new = protocode.load_text(chain(25, doubled=True).replace("d25 >= 1", "d25 >= 2"), "v2.yaml")
    assert protocode.diff(protocol, new).criteria[0].comparison.relation == "equivalent"


@pytest.mark.parametrize("step", ["{d} + {d}", "max({d}, {d})"])
def test_sql_of_doubled_definitions_grows_linearly(step: str) -> None:
    # Copying each definition into its uses doubled the query at every line (3.9 GB): 16
    # more lines then added 2^8 times what 8 more did. Shared, they add about twice as much.
    size = {n: len(protocode.load_text(chain(n, step), "d.yaml").to_sql()) for n in (8, 16, 32)}
    assert size[32] - size[16] < 3 * (size[16] - size[8]), size


# ---- compiled JSON: the same bound, since it skips `check`


def test_compiled_json_with_a_chain_past_the_bound_is_one_located_error() -> None:
    # A chain longer than `check` lets through, made by extending an exported one.
    data = protocode.load_text(chain(100), "deep.yaml").to_json()
    step = data["definitions"][1]  # d2: d1 + 1
    for k in range(101, 401):
        d = copy.deepcopy(step)
        d["name"], d["rule"], d["expr"]["left"]["name"] = f"d{k}", f"d{k - 1} + 1", f"d{k - 1}"
        data["definitions"].append(d)
    data["criteria"][0]["expr"]["left"]["name"] = "d400"
    with pytest.raises(LoadError) as info:
        load_json(data)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.field == "/definitions/128/expr"
    assert diagnostic.message == (
        f"definition 'd129' nests 258 levels deep counting the definitions it uses, "
        f"at most {MAX_NESTING}"
    )
    # Within the bound it loads, with the definitions in the order the backends rely on.
    data["definitions"] = data["definitions"][:100][::-1]
    data["criteria"][0]["expr"]["left"]["name"] = "d100"
    protocol = load_json(data)
    assert list(protocol.checked.definitions) == [f"d{k}" for k in range(1, 101)]
    assert protocol.screen(RECORD).status == "eligible"


def test_a_dosing_start_through_definitions_that_branch_is_checked_once_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a<k> uses a<k-1> three times: reading definitions at every use took 3^30 steps.
    base = (FIXTURES / "dosing" / "base.yaml").read_text("utf-8")
    lines = ["  a1: transplant - 10 days"]
    lines += [f"  a{k}: if a{k - 1} > enrollment then a{k - 1} else a{k - 1}" for k in range(2, 31)]
    text = base.replace("definitions:\n", "definitions:\n" + "\n".join(lines) + "\n")
    text += DOSING.format(start="a30 - 7 days")
    file = tmp_path / "dosing.yaml"
    file.write_text(text, "utf-8")
    status, out, err = run(capsys, "check", file)
    assert status == 0, err
    assert "ok " in out


DOSING = """\
dosing:
  - id: BLINA
    arm: Blinatumomab Group
    drug: blinatumomab
    dose: 28 ug
    route: intravenous
    frequency: once daily
    doses: 7
    start: {start}
    tolerance: {{dose: 10 %, time: 2 h}}
"""


# ---- DuckDB agrees with the row engine through deep, shared definitions


def windowed(n: int) -> protocode.Protocol:
    """The mini protocol with three chains of `n` definitions, each using the previous one
    several times: a weight, a date that windows are anchored on, and a truth value."""
    lines = ["  w1: max(weight, 1 kg)", "  a1: enrollment - 1 days", "  b1: flag"]
    for k in range(2, n + 1):
        w, a, b = f"w{k - 1}", f"a{k - 1}", f"b{k - 1}"
        lines += [
            f"  w{k}: if {w} > 50 kg then {w} else max({w}, 40 kg)",
            f"  a{k}: if {w} > 50 kg then {a} else {a} - 1 days",
            f"  b{k}: {b} or ({b} and other)",
        ]
    rules = [
        f"w{n} > 60 kg",
        f"any chemo within 14 days before a{n}",
        f"latest creatinine within 7 days before a{n} <= 1.2 mg/dL",
        f"latest ast within 7 days before a{n} <= 3 x ULN",
        f"b{n}",
    ]
    text = MINI.replace("definitions:\n", "definitions:\n" + "\n".join(lines) + "\n").replace(
        "    - {id: I1, text: Adult, rule: age >= 18 years}",
        "\n".join(
            f"    - {{id: R{i}, text: Rule, rule: {rule!r}}}" for i, rule in enumerate(rules)
        ),
    )
    return protocode.load_text(text, f"windowed{n}.yaml")


WINDOWED = windowed(40)


@settings(max_examples=15)
@given(cohort_of(WINDOWED, 6))
def test_duckdb_agrees_with_the_row_engine_through_shared_definitions(
    cohort: list[dict[str, Any]],
) -> None:
    assert duckdb_results(WINDOWED, cohort) == row_results(WINDOWED, cohort)


def test_sql_of_windowed_definitions_grows_linearly() -> None:
    size = {n: len(windowed(n).to_sql()) for n in (10, 20, 40)}
    assert size[40] - size[20] < 3 * (size[20] - size[10]), size


# ---- nested `if` in one rule: each branch compiled once


def nested_ifs(n: int, backend: Backend = "fast") -> protocode.Protocol:
    """The mini protocol with a rule of `n` nested `if`s, each choosing the next or 1 kg."""
    rule = "weight"
    for _ in range(n):
        rule = f"(if flag then {rule} else 1 kg)"
    text = MINI.replace("rule: age >= 18 years}", f"rule: '{rule} > 2 kg'}}")
    return protocode.load_text(text, f"ifs{n}.yaml", backend)


def fast_code(n: int) -> ast.Module:
    """The generated Python of `nested_ifs(n)`."""
    return compile_fast(nested_ifs(n).checked).source_tree


def test_generated_code_of_nested_ifs_grows_linearly() -> None:
    # Emitting both branches again for an unknown condition doubled the code at each level
    # (14 levels: 20 MB of Python, a minute to compile).
    # Counted in syntax nodes: the text's indentation grows with the nesting on its own.
    size = {n: sum(1 for _ in ast.walk(fast_code(n))) for n in (5, 10, 20)}
    assert size[20] - size[10] < 3 * (size[10] - size[5]), size
    cases = [{"weight": 70}, {"weight": 70, "flag": True}, {"weight": 70, "flag": False}, {}]
    reference = nested_ifs(20, "reference")
    for backend in BACKENDS:
        protocol = nested_ifs(20, backend)
        for values in cases:
            record = protocol.record({"id": "P", "enrollment": "2024-01-01", **values})
            assert protocol.verdicts(record) == reference.verdicts(record), backend


def test_sql_of_nested_ifs_grows_linearly_and_runs_as_the_row_engine() -> None:
    # An if's arms were copied three times each (two cases and the test that they agree).
    size = {n: len(nested_ifs(n).to_sql()) for n in (5, 10, 20)}
    assert size[20] - size[10] < 3 * (size[10] - size[5]), size
    protocol = nested_ifs(20)
    cohort = [
        {"id": f"P{i}", "enrollment": "2024-01-01", **values}
        for i, values in enumerate([{"weight": 70}, {"weight": 70, "flag": True}, {"flag": False}])
    ]
    assert duckdb_results(protocol, cohort) == row_results(protocol, cohort)
