"""Grading tables: the MAGIC and NIH tables give the published grades; the checker finds
missing, overlapping and unused rows and bad cells, with positions."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocode
from protocode.core.errors import ProtocodeError, RecordError
from protocode.endpoints import derive
from protocode.language.check.grading import CheckedTable, check_tables
from protocode.language.check.tables import CheckedInput

FIXTURE = Path(__file__).parent / "fixtures" / "endpoints" / "gvhd.yaml"
TEXT = FIXTURE.read_text(encoding="utf-8")
AGVHD = ("agvhd_skin_stage", "agvhd_liver_stage", "agvhd_upper_gi_stage", "agvhd_lower_gi_stage")
ORGANS = ("skin", "mouth", "eyes", "gi", "liver", "joints", "genital")
CGVHD = (*(f"cgvhd_{o}_score" for o in ORGANS), "cgvhd_lungs_score")


def tables(text: str = TEXT) -> dict[str, CheckedTable]:
    protocol = protocode.load_text(text, "gvhd.yaml")
    checked, problems = check_tables(protocol.checked.doc.grading, dict(protocol.checked.items))
    assert problems == []
    return checked


def problems(text: str) -> list[str]:
    """The rendered diagnostics of `protocode check` on a variant of the fixture."""
    with pytest.raises(ProtocodeError) as info:
        protocode.load_text(text, "gvhd.yaml")
    return [d.render().splitlines()[0] for d in info.value.diagnostics]


# --- the published grades ----------------------------------------------------------------------


def magic(skin: int, liver: int, upper_gi: int, lower_gi: int) -> str:
    """MAGIC overall grade as Harris et al. (2016) word it, written independently of the table."""
    if 4 in (skin, liver, lower_gi):
        return "IV"
    if liver in (2, 3) or lower_gi in (2, 3):
        return "III"
    if skin == 3 or liver == 1 or upper_gi == 1 or lower_gi == 1:
        return "II"
    if skin in (1, 2):
        return "I"
    return "0"


def nih(scores: dict[str, int]) -> str:
    """NIH 2014 global severity as Jagasia et al. (2015) word it."""
    lung = scores["lungs"]
    others = [scores[o] for o in ORGANS]
    if lung >= 2 or 3 in others:
        return "severe"
    if lung == 1 or 2 in others or sum(1 for s in others if s >= 1) >= 3:
        return "moderate"
    if any(others):
        return "mild"
    return "none"


def test_magic_gives_the_published_grade_for_every_stage_combination() -> None:
    table = tables()["magic_agvhd"]
    combinations = list(itertools.product(range(5), range(5), range(2), range(5)))
    assert len(combinations) == 250
    for stages in combinations:
        assert table.grade(dict(zip(AGVHD, stages, strict=True))) == {magic(*stages)}, stages


@pytest.mark.parametrize(
    ("stages", "grade"),
    [
        ((0, 0, 0, 0), "0"),
        ((2, 0, 0, 0), "I"),  # skin stage 1-2 alone
        ((3, 0, 0, 0), "II"),  # stage 3 rash
        ((1, 1, 0, 0), "II"),  # stage 1 liver
        ((0, 0, 1, 0), "II"),  # upper GI alone is grade II
        ((3, 3, 1, 0), "III"),  # stage 3 liver with stage 3 skin
        ((0, 0, 1, 3), "III"),
        ((4, 0, 0, 0), "IV"),
        ((0, 0, 1, 4), "IV"),
    ],
)
def test_magic_examples(stages: tuple[int, ...], grade: str) -> None:
    assert tables()["magic_agvhd"].grade(dict(zip(AGVHD, stages, strict=True))) == {grade}


def test_nih_gives_the_published_severity_for_every_score_combination() -> None:
    table = tables()["nih_cgvhd"]
    names = (*ORGANS, "lungs")
    seen = set()
    for scores in itertools.product(range(4), repeat=8):
        by_organ = dict(zip(names, scores, strict=True))
        grade = table.grade(dict(zip(CGVHD, scores, strict=True)))
        assert grade == {nih(by_organ)}, by_organ
        seen |= grade
    assert seen == {"none", "mild", "moderate", "severe"}


def test_unknown_stages_give_every_grade_they_allow() -> None:
    magic_table = tables()["magic_agvhd"]
    assert magic_table.grade({"agvhd_skin_stage": 4}) == {"IV"}  # decided by the skin alone
    assert magic_table.grade({"agvhd_skin_stage": 0}) == {"0", "II", "III", "IV"}
    assert magic_table.grade({}) == {"0", "I", "II", "III", "IV"}
    known = dict(zip(AGVHD[:3], (2, 0, 0), strict=True))
    assert magic_table.grade(known) == {"I", "II", "III", "IV"}
    assert tables()["nih_cgvhd"].grade({"cgvhd_lungs_score": 2}) == {"severe"}


# --- the checker ----------------------------------------------------------------------------


def variant(old: str, new: str) -> str:
    assert old in TEXT
    return TEXT.replace(old, new)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_missing_row_is_reported_with_the_combination_nobody_grades() -> None:
    text = variant("      - {skin: between 1 and 2, grade: I}\n", "")
    (message,) = problems(text)
    line = line_of(text, "- id: magic_agvhd")
    assert message == (
        f"gvhd.yaml:{line}:9: incomplete: grading table magic_agvhd gives no grade for "
        "skin = 1, liver = 0, upper_gi = 0, lower_gi = 0 (and 1 more combination)"
    )


def test_overlapping_rows_under_hit_policy_unique() -> None:
    extra = "      - {lung: 1, involved_other: 0, grade: moderate}"
    text = variant(
        "      - {lung: 0, worst_other: 0, grade: none}",
        "      - {lung: 0, worst_other: 0, grade: none}\n" + extra,
    )
    (message,) = problems(text)
    assert message.startswith(f"gvhd.yaml:{line_of(text, extra)}:9: ambiguous: rows 3 and 8")
    assert "both match lung = 1, worst_other = 0, involved_other = 0" in message
    assert "hit policy unique" in message


def test_hit_policy_any_allows_agreeing_overlaps_only() -> None:
    agreeing = variant("    hit: unique", "    hit: any").replace(
        "      - {lung: 0, worst_other: 0, grade: none}",
        "      - {lung: 0, worst_other: 0, grade: none}\n      - {lung: 3, grade: severe}",
    )
    assert tables(agreeing)["nih_cgvhd"].grade({"cgvhd_lungs_score": 3}) == {"severe"}
    clashing = agreeing.replace("{lung: 3, grade: severe}", "{lung: 3, grade: mild}")
    (message,) = problems(clashing)
    assert "hit policy any: matching rows must agree, and these give severe and mild" in message


def test_a_row_that_never_applies_is_reported() -> None:
    shadowed = "      - {skin: 4, grade: IV}"
    text = variant(
        '      - {skin: 0, liver: 0, upper_gi: 0, lower_gi: 0, grade: "0"}',
        '      - {skin: 0, liver: 0, upper_gi: 0, lower_gi: 0, grade: "0"}\n' + shadowed,
    )
    (message,) = problems(text)
    line = text.count("\n", 0, text.rindex(shadowed)) + 1  # the second {skin: 4} row
    assert message == (
        f"gvhd.yaml:{line}:9: unused-row: row 12 of grading table "
        "magic_agvhd never applies: earlier rows grade every combination it matches"
    )


def test_bad_cells_grades_and_columns_are_each_reported() -> None:
    text = (
        TEXT.replace("{skin: 3, grade: II}", '{skin: "== \\"x\\"", grade: II}')
        .replace("{liver: 1, grade: II}", "{livr: 1, grade: II}")
        .replace("{upper_gi: 1, grade: II}", "{upper_gi: 1, grade: Two}")
        .replace("{lower_gi: 1, grade: II}", "{lower_gi: '>= ', grade: II}")
    )
    messages = problems(text)
    assert len(messages) == 4
    assert "type: this column's values are integers: expected a number" in messages[0]
    assert (
        "unknown column 'livr' of grading table magic_agvhd (did you mean 'liver'?)"
        in (messages[1])
    )
    assert "'Two' is not a grade of table magic_agvhd (0, I, II, III, IV)" in messages[2]
    assert "syntax: the rule ends too early" in messages[3]


def test_inputs_must_be_observation_items_with_finitely_many_values() -> None:
    text = TEXT.replace("lung: cgvhd_lungs_score", "lung: cgvhd_lung_score").replace(
        "skin: agvhd_skin_stage", "skin: transplant"
    )
    messages = problems(text)
    assert any("'transplant' is an anchor" in m for m in messages)
    assert any("did you mean 'cgvhd_lungs_score'?" in m for m in messages)
    unbounded = TEXT.replace(
        "    maximum: 4\n    description: >-\n      Acute GVHD skin",
        ("    description: >-\n      Acute GVHD skin"),
    )
    (message,) = problems(unbounded)
    assert "grading input 'agvhd_skin_stage' needs finitely many values" in message


def test_code_cells_name_codes_of_the_item() -> None:
    text = TEXT.replace(
        "  agvhd_upper_gi_stage:\n    kind: observation\n    type: integer\n    minimum: 0\n"
        "    maximum: 1\n",
        "  agvhd_upper_gi_stage:\n    kind: observation\n    type: code\n"
        "    values: [none, persistent]\n",
    ).replace("{upper_gi: 1, grade: II}", "{upper_gi: persistant, grade: II}")
    bad_code, number = problems(text)
    assert "'persistant' is not one of this column's codes (none, persistent)" in bad_code
    assert "did you mean 'persistent'?" in bad_code
    # The grade 0 row still says `upper_gi: 0`: a number where the column holds codes.
    assert "type: this column's values are codes: expected a quoted code" in number
    fixed = text.replace("persistant", "persistent").replace("upper_gi: 0,", "upper_gi: none,")
    table = tables(fixed)["magic_agvhd"]
    assert table.grade({"agvhd_upper_gi_stage": "persistent", "agvhd_skin_stage": 0}) == {
        "II",
        "III",
        "IV",
    }


def test_at_least_names_a_grade_of_the_table() -> None:
    (message,) = problems(TEXT.replace("at_least: II", "at_least: V"))
    assert "'V' is not a grade of table magic_agvhd (0, I, II, III, IV) (did you mean 'IV'?)" in (
        message
    )


# --- graded events in endpoints -------------------------------------------------------------

T0 = dt.date(2024, 7, 1)


def day(n: int) -> str:
    return (T0 + dt.timedelta(days=n)).isoformat()


def assessment(n: int, *stages: int | None) -> Callable[[dict[str, Any]], None]:
    def add(record: dict[str, Any]) -> None:
        for item, stage in zip(AGVHD, stages, strict=True):
            if stage is not None:
                record[item].append({"value": stage, "date": day(n)})

    return add


def patient(*assessments: Callable[[dict[str, Any]], None], **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "P1",
        "transplant": T0.isoformat(),
        "last_follow_up": day(400),
        "death": [],
        "relapse": [],
        **{item: [] for item in (*AGVHD, *CGVHD)},
    }
    for add in assessments:
        add(record)
    record.update(extra)
    return record


def agvhd(record: dict[str, Any]) -> Any:
    protocol = protocode.load(FIXTURE)
    return {row.endpoint: row for row in derive(protocol, record)}["aGVHD"]


def test_the_event_is_the_first_assessment_of_grade_two_or_more() -> None:
    row = agvhd(patient(assessment(10, 1, 0, 0, 0), assessment(24, 3, 0, 0, 0)))
    assert (row.status, row.time, row.source) == ("event", 24, "agvhd_grade_2_4")
    assert row.description == "Acute GVHD of overall grade II to IV (MAGIC)"


def test_grade_one_only_is_censored_and_day_100_counts() -> None:
    row = agvhd(patient(assessment(10, 2, 0, 0, 0)))
    assert (row.status, row.time) == ("censored", 100)
    row = agvhd(patient(assessment(100, 0, 1, 0, 0)))
    assert (row.status, row.time) == ("event", 100)
    row = agvhd(patient(assessment(101, 0, 1, 0, 0)))
    assert (row.status, row.time) == ("censored", 100)


def test_an_assessment_decided_by_the_stages_it_has_counts() -> None:
    row = agvhd(patient(assessment(30, 4, None, None, None)))
    assert (row.status, row.time) == ("event", 30)


def test_an_assessment_the_missing_stages_could_decide_is_an_error() -> None:
    with pytest.raises(RecordError) as info:
        agvhd(patient(assessment(30, 2, None, 0, 0), assessment(50, 3, 0, 0, 0)))
    message = info.value.diagnostics[0].message
    assert "the magic_agvhd grade on 2024-07-31 may be I, II, III, IV" in message
    assert "agvhd_liver_stage not known that day" in message
    # An undecided assessment after a decided event does not matter.
    row = agvhd(patient(assessment(20, 3, 0, 0, 0), assessment(30, 2, None, 0, 0)))
    assert (row.status, row.time) == ("event", 20)


def test_relapse_competes_with_acute_gvhd() -> None:
    row = agvhd(patient(assessment(40, 3, 0, 0, 0), relapse=[day(35)]))
    assert (row.status, row.time, row.source) == ("competing", 35, "relapse")


# The grading pass reaches every column tuple item by item (`CheckedInput.step`) instead of
# enumerating every combination of item values; the two agree when folding `step` over the
# items and then `finish` gives `value` for every combination.
_ITEMS = ("a", "b", "c")


@st.composite
def _inputs(draw: st.DrawFn) -> tuple[CheckedInput, dict[str, tuple[Fraction, ...]]]:
    aggregate = draw(st.sampled_from([None, "count", "max", "min"]))
    if aggregate is None:
        items: tuple[str, ...] = (draw(st.sampled_from(_ITEMS)),)
    else:
        items = tuple(draw(st.lists(st.sampled_from(_ITEMS), min_size=1, max_size=4)))
    values = st.integers(0, 4).map(Fraction)
    domains = {i: tuple(draw(st.sets(values, min_size=1, max_size=3))) for i in _ITEMS}
    counted = frozenset(draw(st.sets(values, max_size=3))) if aggregate == "count" else None
    return CheckedInput("column", items, aggregate, counted), domains


@given(_inputs())
def test_stepwise_column_value_is_the_value(case: tuple[CheckedInput, Any]) -> None:
    column, domains = case
    for combination in itertools.product(*(domains[i] for i in _ITEMS)):
        values = dict(zip(_ITEMS, combination, strict=True))
        acc: Any = None
        for item in _ITEMS:
            acc = column.step(acc, item, values[item])
        assert column.finish(acc) == column.value(values)
