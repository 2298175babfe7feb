"""Registry import: a ClinicalTrials.gov record becomes a draft protocol that check lists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from helpers import FIXTURES, ROOT, assert_golden, run
from protocode.core.errors import CheckError, LoadError, ProtocodeError
from protocode.document.loader import load_protocol_text
from protocode.language.check import check_protocol
from protocode.pipeline import load_text
from protocode.registry import (
    RegistryDraft,
    draft_from_record,
    draft_yaml,
    read_record,
    schema_reference,
    split_eligibility,
)

REGISTRY = FIXTURES / "registry"
RECORD = REGISTRY / "NCT06125106.json"
DRAFT = REGISTRY / "NCT06125106.draft.yaml"
# The modeline of the golden draft, as `import -o` writes it for a file in tests/fixtures/…
SCHEMA_REF = "../../../src/protocode/schemas/protocol.schema.json"
SEED_TEXT = Path("/work/shared/seed/NCT06125106.txt")


@pytest.fixture(autouse=True)
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, so paths in messages are the short relative ones."""
    monkeypatch.chdir(ROOT)


def record() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORD.read_text(encoding="utf-8"))
    return data


def registry_items(text: str, heading: str) -> list[str]:
    """The numbered items under one heading of the record's eligibility text, independently
    of the importer: the lines between the heading and the next blank line and heading."""
    section = text.split(heading, 1)[1].split("Criteria:", 1)[0]
    items = re.findall(r"^\d+\. (.+)$", section, flags=re.M)
    return [" ".join(item.split()) for item in items]


def normalised(text: str) -> str:
    return " ".join(text.split())


# --- the fixture record and its draft --------------------------------------------------------


def test_fixture_is_an_api_v2_study_record() -> None:
    section = record()["protocolSection"]
    assert section["identificationModule"]["nctId"] == "NCT06125106"
    assert section["designModule"]["phases"] == ["PHASE1"]
    assert section["eligibilityModule"]["eligibilityCriteria"].startswith(
        "Inclusion Criteria:\n\n1. "
    )
    assert set(section) <= {
        *("identificationModule", "statusModule", "sponsorCollaboratorsModule"),
        *("descriptionModule", "conditionsModule", "designModule", "armsInterventionsModule"),
        *("outcomesModule", "eligibilityModule", "contactsLocationsModule"),
    }


@pytest.mark.skipif(not SEED_TEXT.exists(), reason="the seed text is outside the repository")
def test_fixture_texts_are_verbatim_from_the_seed() -> None:
    seed = SEED_TEXT.read_text(encoding="utf-8")
    section = record()["protocolSection"]
    text = section["eligibilityModule"]["eligibilityCriteria"]
    for item in registry_items(text, "Inclusion Criteria:") + registry_items(
        text, "Exclusion Criteria:"
    ):
        assert item in seed
    outcomes = section["outcomesModule"]
    for outcome in outcomes["primaryOutcomes"] + outcomes["secondaryOutcomes"]:
        assert outcome["measure"] + outcome["timeFrame"] in seed
        for paragraph in outcome["description"].split("\n\n"):
            assert paragraph in seed


def test_import_matches_the_registry_criteria() -> None:
    draft = read_record(RECORD)
    text = record()["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
    inclusion = registry_items(text, "Inclusion Criteria:")
    exclusion = registry_items(text, "Exclusion Criteria:")
    assert (len(inclusion), len(exclusion)) == (7, 14)
    assert [c.id for c in draft.inclusion] == [f"I{i}" for i in range(1, 8)]
    assert [c.id for c in draft.exclusion] == [f"E{i}" for i in range(1, 15)]
    assert [normalised(c.text) for c in draft.inclusion] == inclusion
    assert [normalised(c.text) for c in draft.exclusion] == exclusion


def test_import_reads_metadata_arms_and_outcomes() -> None:
    draft = read_record(RECORD)
    assert draft.registry_id == "NCT06125106"
    assert draft.title.startswith("Prospective, Single-arm, Multicenter Clinical Study")
    assert (draft.phase, draft.sponsor, draft.status) == ("1", "Zhejiang University", "RECRUITING")
    assert (draft.enrollment, draft.sex, draft.conditions) == (
        "31",
        "ALL",
        ("Acute Lymphoblastic Leukemia",),
    )
    assert [a.label for a in draft.arms] == ["Blinatumomab Group"]
    assert "28ug of Blinatumomab" in draft.arms[0].description
    assert [(i.name, i.arms) for i in draft.interventions] == [
        ("Blinatumomab", ("Blinatumomab Group",))
    ]
    assert [(o.kind, o.measure, o.time_frame) for o in draft.outcomes] == [
        ("primary", "Progress-Free Survival", "At Year 1"),
        ("secondary", "chornic graft versus host disease", "At Year 1"),
        ("secondary", "Overall Survival", "At Year 1"),
        ("secondary", "Cumulative Incidence of Relapse", "At Year 1"),
        ("secondary", "acute graft versus host disease", "At Day 100"),
        ("secondary", "Minimal Residual Disease", "At Year 1"),
        ("secondary", "Non-relapse Mortality", "At Year 1"),
    ]


def test_draft_yaml_is_golden_and_loads() -> None:
    text = draft_yaml(read_record(RECORD), SCHEMA_REF)
    assert_golden(text, DRAFT)
    doc = load_protocol_text(text, "draft.yaml")
    assert (doc.metadata.registry_id, doc.metadata.version, doc.metadata.phase) == (
        "NCT06125106",
        "1",
        "1",
    )
    assert doc.metadata.sponsor == "Zhejiang University"
    assert doc.data == ()
    criteria = record()["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
    expected = registry_items(criteria, "Inclusion Criteria:") + registry_items(
        criteria, "Exclusion Criteria:"
    )
    assert [normalised(c.text) for c in doc.criteria] == expected
    assert all(c.draft and c.rule is None and c.attestation is None for c in doc.criteria)
    assert [c.kind for c in doc.criteria] == ["inclusion"] * 7 + ["exclusion"] * 14
    # The outcome measures and the arm are kept as comments, each with its time frame.
    for outcome in read_record(RECORD).outcomes:
        assert f"outcome {'1' if outcome.kind == 'primary' else ''}" in text
        assert f": {outcome.measure}\n#   time frame: {outcome.time_frame}\n" in text
    assert "# arm: Blinatumomab Group\n" in text
    assert all(len(line) <= 100 for line in text.splitlines())


def test_check_lists_every_draft_criterion(capsys: pytest.CaptureFixture[str]) -> None:
    path = DRAFT.relative_to(ROOT).as_posix()
    status, out, err = run(capsys, "check", path)
    assert status == 1
    assert out == ""
    assert_golden(err, REGISTRY / "NCT06125106.check.err")
    located = re.findall(rf"^{re.escape(path)}:(\d+):11: draft: criterion '(\w+)'", err, re.M)
    assert [cid for _, cid in located] == [f"I{i}" for i in range(1, 8)] + [
        f"E{i}" for i in range(1, 15)
    ]
    lines = DRAFT.read_text(encoding="utf-8").splitlines()
    for line, cid in located:
        assert lines[int(line) - 1] == f"    - id: {cid}"
    assert err.endswith(f"{path}: 21 draft criteria still need a rule\n")
    assert "… and" not in err


def test_check_json_lists_drafts(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "check", "--format", "json", str(DRAFT))
    assert status == 1
    found = json.loads(out)
    assert len(found) == 21
    assert {d["code"] for d in found} == {"draft"}
    assert found[1]["message"] == (
        "criterion 'I2' is a draft without a rule (text: Age range from 18 to 70 years old,"
        " regardless of gender;)"
    )
    assert (found[1]["line"], found[1]["column"]) == (40, 11)


def test_a_draft_protocol_does_not_screen() -> None:
    text = draft_yaml(read_record(RECORD))
    with pytest.raises(CheckError) as caught:
        load_text(text, "draft.yaml")
    assert len(caught.value.diagnostics) == 21
    assert caught.value.render().count("draft:") == 20  # capped like every error list


# --- drafts in any protocol ----------------------------------------------------------------

MINI = """\
protocode: 1
protocol: {registry_id: X, title: T, version: "1"}
data:
  age: {type: integer}
criteria:
  inclusion:
    - id: I1
      text: Adults.
      rule: age >= 18
    - id: I2
      text: Consent.
      attestation: consent
    - id: I3
      text: Written, not yet reviewed.
      rule: age <= 70
      draft: true
    - id: I4
      text: Not written yet.
      draft: true
    - id: I5
      text: Not a draft any more, no rule.
      draft: false
"""


def test_draft_flags_are_checked() -> None:
    # draft: false is no draft: the criterion needs its rule like any other.
    with pytest.raises(LoadError) as caught:
        load_protocol_text(MINI, "mini.yaml")
    assert [(d.code, d.span.line if d.span else 0) for d in caught.value.diagnostics] == [
        ("criterion-rule", 20)
    ]
    doc = load_protocol_text(MINI.replace("      draft: false\n", "      draft: true\n"))
    assert [c.draft for c in doc.criteria] == [False, False, True, True, True]
    with pytest.raises(CheckError) as checked:
        check_protocol(doc)
    assert [(d.code, d.message) for d in checked.value.diagnostics] == [
        ("draft", "criterion 'I3' is still a draft; remove 'draft: true' once it is final"),
        ("draft", "criterion 'I4' is a draft without a rule (text: Not written yet.)"),
        (
            "draft",
            "criterion 'I5' is a draft without a rule (text: Not a draft any more, no rule.)",
        ),
    ]


def test_a_draft_rule_is_still_checked() -> None:
    text = MINI.replace("age <= 70", "agee <= 70").replace("draft: false", "draft: true")
    doc = load_protocol_text(text)
    with pytest.raises(CheckError) as caught:
        check_protocol(doc)
    codes = [d.code for d in caught.value.diagnostics]
    assert codes.count("draft") == 3
    assert len(codes) == 4  # and the unknown name


def test_draft_must_be_a_boolean() -> None:
    with pytest.raises(LoadError) as caught:
        load_protocol_text(MINI.replace("draft: false", "draft: maybe"))
    assert [d.message for d in caught.value.diagnostics] == [
        "criterion 'I5' needs a 'rule' or an 'attestation'",
        "'draft' must be true or false, not the string 'maybe'",
    ]


def test_criteria_without_drafts_are_unchanged() -> None:
    text = MINI.replace("      draft: true\n", "").replace(
        "      text: Not written yet.\n", "      text: Not written yet.\n      rule: age > 1\n"
    )
    text = text.replace("      draft: false\n", "      attestation: other\n")
    checked = check_protocol(load_protocol_text(text))
    assert [c.id for c in checked.criteria] == ["I1", "I2", "I3", "I4", "I5"]


# --- the eligibility text ------------------------------------------------------------------


def split(text: str) -> list[tuple[str, str]]:
    return [(c.id, c.text) for c in split_eligibility(text)]


def test_bullets_and_headings_in_any_case() -> None:
    text = (
        "INCLUSION CRITERIA\n"
        "* Adults\n"
        "- Signed consent\n\n"
        "**Key Exclusion Criteria:**\n\n"
        "+ Pregnancy\n"
        "• Prior HSCT\n"
    )
    assert split(text) == [
        ("I1", "Adults"),
        ("I2", "Signed consent"),
        ("E1", "Pregnancy"),
        ("E2", "Prior HSCT"),
    ]


def test_numbered_items_and_lines_that_continue_them() -> None:
    text = (
        "Inclusion criteria :\n"
        "1) Age 18 to 70\n"
        "   years;\n"
        "2) ECOG 0-2\n"
        "(3) Consent\n\n"
        "   given in writing\n"
        "exclusion criteria\n"
        "1. Pregnant\n"
    )
    assert split(text) == [
        ("I1", "Age 18 to 70 years;"),
        ("I2", "ECOG 0-2"),
        ("I3", "Consent given in writing"),
        ("E1", "Pregnant"),
    ]


def test_nested_items_stay_with_their_parent() -> None:
    text = (
        "Inclusion Criteria:\n\n"
        "* Adequate organ function:\n\n"
        "  * ANC ≥ 1.5 x 10^9/L\n"
        "  * Platelets ≥ 100 x 10^9/L\n"
        "    * without transfusion\n"
        "* Consent\n"
        "1. Numbered items under a bullet\n"
        "a. lettered under a number\n"
        "2. Second number\n"
    )
    assert split(text) == [
        (
            "I1",
            "Adequate organ function:\n"
            "* ANC ≥ 1.5 x 10^9/L\n"
            "* Platelets ≥ 100 x 10^9/L\n"
            "  * without transfusion",
        ),
        (
            "I2",
            "Consent\n1. Numbered items under a bullet\n  a. lettered under a number\n"
            "2. Second number",
        ),
    ]


def test_numbered_with_lettered_sub_items_at_the_same_indent() -> None:
    text = "1. Organ function:\na) creatinine normal\nb) bilirubin normal\n2. Consent\n"
    assert split(text) == [
        ("I1", "Organ function:\na) creatinine normal\nb) bilirubin normal"),
        ("I2", "Consent"),
    ]


def test_missing_exclusion_section_and_text_before_any_heading() -> None:
    assert split("* Adults\n* Consent\n") == [("I1", "Adults"), ("I2", "Consent")]
    assert split("Exclusion Criteria:\n\n* Pregnancy\n") == [("E1", "Pregnancy")]


def test_sub_headings_are_kept_as_headings_not_criteria() -> None:
    text = (
        "Inclusion Criteria:\n\n"
        "Patients must meet all of the following:\n\n"
        "* Adults\n\n"
        "For women:\n\n"
        "* Negative pregnancy test\n\n"
        "Inclusion Criteria (Part B):\n\n"
        "* Prior therapy\n\n"
        "Exclusion Criteria:\n\n"
        "* Pregnancy\n\n"
        "Other protocol-defined criteria may apply\n"
    )
    criteria = split_eligibility(text)
    assert [(c.id, c.text, c.heading) for c in criteria] == [
        ("I1", "Adults", "Patients must meet all of the following:"),
        ("I2", "Negative pregnancy test", "For women:"),
        ("I3", "Prior therapy", "Inclusion Criteria (Part B):"),
        ("E1", "Pregnancy", ""),
        ("E2", "Other protocol-defined criteria may apply", ""),
    ]
    yaml_text = draft_yaml(draft_of(text))
    assert 'note: "Listed in the registry under: For women:"' in yaml_text
    load_protocol_text(yaml_text)


def test_lines_without_markers_are_one_criterion_each() -> None:
    text = "Inclusion Criteria:\nAge >= 18\nECOG 0-1\n\nExclusion Criteria:\n\nPregnant\r\nHIV\n"
    assert split(text) == [
        ("I1", "Age >= 18"),
        ("I2", "ECOG 0-1"),
        ("E1", "Pregnant"),
        ("E2", "HIV"),
    ]


def test_markdown_escapes_and_spaces() -> None:
    text = "Inclusion Criteria:\n\n* Age \\>= 18 years\n* ANC \\> 1500/\\*mm3  and   more\n"
    assert split(text) == [("I1", "Age >= 18 years"), ("I2", "ANC > 1500/*mm3 and more")]


def test_words_that_only_start_like_headings_are_criteria() -> None:
    text = (
        "Inclusion Criteria:\n* Inclusion in another trial is allowed\n"
        "Exclusion Criteria:\n* Exclusion criteria met at screening\n"
    )
    assert split(text) == [
        ("I1", "Inclusion in another trial is allowed"),
        ("E1", "Exclusion criteria met at screening"),
    ]


def test_an_empty_text_has_no_criteria() -> None:
    assert split("") == []
    assert split("Inclusion Criteria:\n\nExclusion Criteria:\n") == []


# --- writing YAML --------------------------------------------------------------------------


def draft_of(eligibility: str, **fields: Any) -> RegistryDraft:
    section: dict[str, Any] = {
        "identificationModule": {"nctId": "NCT00000001", "briefTitle": "A trial"},
        "eligibilityModule": {"eligibilityCriteria": eligibility},
    }
    section.update(fields)
    return draft_from_record({"protocolSection": section})


TRICKY = [
    "plain",
    "1",
    "yes",
    "null",
    "2024-01-01",
    "key: value",
    "# not a comment",
    "- not a list",
    "'quoted'",
    '"double"',
    "tab\there",
    "ends with colon:",
    "@at and `tick` and %percent and {brace} [bracket]",
    "non-breaking\xa0space, zero\u200bwidth, line\u2028separator, next\x85line",
    "bell\x07 and escape\x1b",
    "x" * 150,
    ("long words " * 20) + "a-very-long-" * 10,
    "first line\n  indented second line\n* bullet line",
    " leading space",
]


@pytest.mark.parametrize("text", TRICKY)
def test_every_text_reads_back_exactly(text: str) -> None:
    draft = draft_of(f"Inclusion Criteria:\n\n* {text}")
    assert draft.criteria
    written = draft_yaml(draft)
    doc = load_protocol_text(written)
    assert [c.text for c in doc.criteria] == [c.text for c in draft.criteria]


@given(st.text(min_size=1, max_size=200))
def test_any_title_reads_back_exactly(title: str) -> None:
    if not title.strip() or any(0xD800 <= ord(ch) < 0xE000 for ch in title):
        return
    draft = draft_of("* Adults", identificationModule={"nctId": "NCT1", "officialTitle": title})
    doc = load_protocol_text(draft_yaml(draft))
    assert doc.metadata.title == " ".join(title.split())


def test_comments_hold_any_text() -> None:
    draft = draft_of(
        "* Adults",
        outcomesModule={
            "primaryOutcomes": [
                {"measure": "PFS\nnew line", "timeFrame": "1 year", "description": "a\x00b\u2028c"}
            ]
        },
        armsInterventionsModule={
            "armGroups": [{"label": "A", "type": "EXPERIMENTAL", "interventionNames": ["D: x"]}],
            "interventions": [{"name": "x", "type": "DRUG", "description": "given daily"}],
        },
    )
    text = draft_yaml(draft)
    assert yaml.safe_load(text)["criteria"]["inclusion"][0]["text"] == "Adults"
    assert "# arm: A (EXPERIMENTAL)\n#   interventions: D: x\n" in text
    assert "# intervention: x (DRUG)\n#   given daily\n" in text
    load_protocol_text(text)


def test_phases_and_optional_fields() -> None:
    design = {"designModule": {"phases": ["PHASE2", "PHASE3"]}}
    assert draft_of("* A", **design).phase == "2/3"
    assert draft_of("* A", designModule={"phases": ["NA"]}).phase == ""
    assert draft_of("* A", designModule={"phases": ["EARLY_PHASE1"]}).phase == "early 1"
    draft = draft_of(
        "* A",
        eligibilityModule={
            "eligibilityCriteria": "* A",
            "minimumAge": "18 Years",
            "healthyVolunteers": False,
        },
    )
    text = draft_yaml(draft)
    assert "#   eligible ages: 18 Years to no maximum\n" in text
    assert "#   healthy volunteers: not accepted\n" in text
    assert "phase:" not in text and "sponsor:" not in text
    doc = load_protocol_text(text)
    assert doc.metadata.title == "A trial"


def test_a_search_result_of_one_study_is_accepted() -> None:
    assert draft_from_record({"studies": [record()]}) == read_record(RECORD)


def test_schema_reference_points_at_the_shipped_schema(tmp_path: Path) -> None:
    folder = tmp_path / "protocol" / "NCT1"
    folder.mkdir(parents=True)
    reference = schema_reference(folder)
    assert reference is not None
    schema = json.loads((folder / reference).read_text(encoding="utf-8"))
    assert "criterion" in schema["$defs"]


# --- the command ---------------------------------------------------------------------------


def test_import_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "import", str(RECORD.relative_to(ROOT)))
    assert (status, err) == (0, "")
    reference = out.split("\n", 1)[0].removeprefix("# yaml-language-server: $schema=")
    assert (ROOT / reference).is_file()
    assert out.split("\n", 1)[1] == DRAFT.read_text(encoding="utf-8").split("\n", 1)[1]


def test_import_to_a_file_then_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "NCT06125106" / "v1.yaml"
    status, out, err = run(capsys, "import", str(RECORD), "-o", str(target))
    assert (status, out) == (0, "")
    assert f"wrote {target} (NCT06125106: 7 inclusion and 14 exclusion criteria" in err
    text = target.read_text(encoding="utf-8")
    reference = text.split("\n", 1)[0].removeprefix("# yaml-language-server: $schema=")
    assert (target.parent / reference).is_file()
    assert text.split("\n", 1)[1] == DRAFT.read_text(encoding="utf-8").split("\n", 1)[1]
    status, out, err = run(capsys, "check", str(target.parent))
    assert status == 1
    assert err.count(": draft: ") == 21
    # A second import does not overwrite the file, unless forced.
    status, _, err = run(capsys, "import", str(RECORD), "-o", str(target))
    assert status == 1
    assert err == f"usage: {target} exists; pass --force to overwrite it\n"
    target.write_text("edited", encoding="utf-8")
    assert run(capsys, "import", str(RECORD), "-o", str(target), "--force")[0] == 0
    assert target.read_text(encoding="utf-8") == text


BAD_RECORDS: list[tuple[str, str]] = [
    ('{\n  "protocolSection": \n', "bad.json:2:20: registry: not JSON: Expecting value"),
    ("[1, 2]", "registry: bad.json: not a ClinicalTrials.gov study record: no 'protocolSection'"),
    ('{"studies": []}', "registry: bad.json: 'studies' holds 0 studies; import takes exactly one"),
    (
        '{"protocolSection": {"identificationModule": {"nctId": "NCT1", "briefTitle": "T"}}}',
        "registry: bad.json: missing protocolSection.eligibilityModule.eligibilityCriteria",
    ),
    (
        '{"protocolSection": {"identificationModule": {"nctId": "NCT1", "briefTitle": "T"},'
        ' "eligibilityModule": {"eligibilityCriteria": "Inclusion Criteria:\\n\\n"}}}',
        "registry: bad.json: protocolSection.eligibilityModule.eligibilityCriteria holds no"
        " criteria",
    ),
    (
        '{"protocolSection": {"identificationModule": {"briefTitle": 7},'
        ' "eligibilityModule": {"eligibilityCriteria": "* A"},'
        ' "outcomesModule": {"primaryOutcomes": [{"timeFrame": "1 y"}, 3]}}}',
        "registry: bad.json: missing protocolSection.identificationModule.nctId\n"
        "registry: bad.json: protocolSection.identificationModule.briefTitle must be a string,"
        " not an integer\n"
        "registry: bad.json: missing protocolSection.outcomesModule.primaryOutcomes[0].measure\n"
        "registry: bad.json: protocolSection.outcomesModule.primaryOutcomes[1] must be an"
        " object, not an integer",
    ),
    (
        '{"protocolSection": {"identificationModule": {"nctId": "NCT1"},'
        ' "eligibilityModule": {"eligibilityCriteria": "* A"}}}',
        "registry: bad.json: missing protocolSection.identificationModule.officialTitle"
        " (or briefTitle)",
    ),
]


@pytest.mark.parametrize(("content", "message"), BAD_RECORDS)
def test_bad_records_give_one_clear_error(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.json").write_text(content, encoding="utf-8")
    status, out, err = run(capsys, "import", "bad.json")
    assert (status, out) == (1, "")
    assert err.startswith(message)
    assert "Traceback" not in err
    with pytest.raises(ProtocodeError):
        read_record(Path("bad.json"))


def test_missing_record_file(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "import", "no/such.json")
    assert (status, err) == (1, "io: cannot read no/such.json: no such file\n")


def test_the_record_schema_is_a_valid_schema() -> None:
    from protocode.document.schema import SchemaValidator, shipped_schema

    SchemaValidator.check_schema(shipped_schema("registry-record"))


def test_null_fields_are_absent_and_kinds_are_kept() -> None:
    section: dict[str, Any] = {
        "identificationModule": {"nctId": "NCT1", "officialTitle": None, "briefTitle": "T"},
        "statusModule": None,
        "designModule": {"enrollmentInfo": {"count": 5.0}, "phases": ["PHASE2", None]},
        "eligibilityModule": {"eligibilityCriteria": "* A", "sex": None},
    }
    with pytest.raises(LoadError) as caught:
        draft_from_record({"protocolSection": section}, "r.json")
    assert [d.message for d in caught.value.diagnostics] == [
        "r.json: protocolSection.designModule.phases[1] must be a string, not null",
        "r.json: protocolSection.designModule.enrollmentInfo.count must be an integer,"
        " not a number",
    ]
    section["designModule"] = {"enrollmentInfo": {"count": 5}, "phases": ["PHASE2"]}
    draft = draft_from_record({"protocolSection": section})
    assert (draft.title, draft.status, draft.enrollment, draft.phase) == ("T", "", "5", "2")
