"""Protocol history: declared changes in protocol files, the lock, the structural rules, release."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from helpers import FIXTURES, ROOT, SEED, assert_golden, run
from protocode.amendments.folder import check_folder, release
from protocode.core.errors import CheckError, Diagnostic, LoadError, UsageError, render
from protocode.document.history import (
    HistoryError,
    check_history,
    load_history,
    version_in_force,
)
from protocode.document.loader import load_protocol_text
from protocode.document.lock import LOCK_NAME
from protocode.document.model import Criterion

AMENDMENTS = FIXTURES / "amendments"

V1 = """\
protocode: 1
protocol:
  registry_id: TEST-H
  title: History test
  version: "1"
data:
  age: {type: integer}
  ecog: {type: integer, minimum: 0, maximum: 5}
  infection: {type: boolean}
definitions:
  fit: ecog <= 2
criteria:
  inclusion:
    - {id: I1, text: Aged 18 years or older., rule: age >= 18}
    - {id: I2, text: ECOG performance status 0 to 2., rule: fit}
  exclusion:
    - {id: E1, text: Active infection., rule: infection}
    - {id: E2, text: Older than 99 years., rule: age > 99}
"""


@pytest.fixture(autouse=True)
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, so paths in messages are the short relative ones."""
    monkeypatch.chdir(ROOT)


def amend(changes: str = "", *, version: str = "2", amends: str = "1", text: str = V1) -> str:
    """`text` as the given version amending `amends`, with a `changes:` block (YAML lines)."""
    header = f'  version: "{version}"\n  amends: "{amends}"\n'
    if changes:
        header += "  changes:\n" + "".join(f"    - {line}\n" for line in changes.splitlines())
    return text.replace('  version: "1"\n', header)


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def folder(tmp_path: Path, files: Mapping[str, str], released: Sequence[str] = ()) -> Path:
    """A protocol folder holding `files`, with a lock releasing `released` (file names)."""
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    if released:
        write_lock(tmp_path, released)
    return tmp_path


def write_lock(where: Path, released: Sequence[str], protocol: str = "TEST-H") -> None:
    entries = [
        {
            "version": name[1:].split(".")[0],
            "file": name,
            "sha256": hashlib.sha256((where / name).read_bytes()).hexdigest(),
        }
        for name in released
    ]
    lock = {"format": 1, "protocol": protocol, "released": entries}
    (where / LOCK_NAME).write_text(json.dumps(lock, indent=2) + "\n", encoding="utf-8")


def at(path: Path | str, text: str, needle: str, occurrence: int = 1) -> str:
    """``path:line:col`` of the `occurrence`-th `needle` in `text`."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"{path}:{line}:{col}"


def problems(where: Path) -> list[tuple[str, str, str]]:
    """(code, location, message) of every problem `check_folder` finds."""
    return [(d.code, d.location, d.message) for d in check_folder(where)]


def only(where: Path) -> Diagnostic:
    [diagnostic] = check_folder(where)
    return diagnostic


# --- declared changes in the protocol file -------------------------------------------------


def test_changes_are_loaded_with_their_targets() -> None:
    text = amend(
        "{target: I1, intent: relaxed, rationale: Adolescents too.}\n"
        "{target: definition fit, intent: editorial, rationale: Same.}\n"
        "{target: data infection, intent: removed, rationale: Unused.}"
    )
    meta = load_protocol_text(text, "v2.yaml").metadata
    assert [(c.target_kind, c.target, c.intent, c.label) for c in meta.changes] == [
        ("criterion", "I1", "relaxed", "I1"),
        ("definition", "fit", "editorial", "definition fit"),
        ("data", "infection", "removed", "data infection"),
    ]
    assert meta.changes[0].rationale == "Adolescents too."
    assert [str(c.span) for c in meta.changes] == [
        at("v2.yaml", text, "I1, intent"),
        at("v2.yaml", text, "definition fit"),
        at("v2.yaml", text, "data infection"),
    ]
    assert (meta.amends, str(meta.amends_span), str(meta.version_span)) == (
        "1",
        at("v2.yaml", text, '"1"'),
        at("v2.yaml", text, '"2"'),
    )
    assert str(meta.registry_id_span) == at("v2.yaml", text, "TEST-H")
    assert meta.illustrative is False


def test_a_version_without_changes_has_none() -> None:
    meta = load_protocol_text(V1).metadata
    assert (meta.changes, meta.amends, meta.amends_span, meta.illustrative) == (
        (),
        None,
        None,
        False,
    )


def test_illustrative_is_read() -> None:
    text = edit(V1, '  version: "1"\n', '  version: "1"\n  illustrative: true\n')
    assert load_protocol_text(text).metadata.illustrative is True


def load_errors(text: str) -> list[tuple[str, str, str]]:
    with pytest.raises(LoadError) as caught:
        load_protocol_text(text, "v2.yaml")
    return [(d.code, d.location, d.message) for d in caught.value.diagnostics]


def test_unknown_intent() -> None:
    text = amend("{target: I1, intent: relaxd, rationale: Why.}")
    assert load_errors(text) == [
        (
            "schema",
            at("v2.yaml", text, "relaxd"),
            "'intent' must be one of editorial, relaxed, tightened, added, removed"
            " (did you mean 'relaxed'?)",
        )
    ]


def test_duplicate_target() -> None:
    text = amend(
        "{target: I1, intent: relaxed, rationale: Why.}\n"
        "{target: I2, intent: editorial, rationale: Why.}\n"
        "{target: I1, intent: tightened, rationale: Why not.}"
    )
    line = at("v2.yaml", text, "I1, intent").split(":")[1]
    assert load_errors(text) == [
        (
            "duplicate-change",
            at("v2.yaml", text, "I1, intent", 2),
            f"duplicate change target 'I1' (first declared on line {line})",
        )
    ]


@pytest.mark.parametrize("target", ["definition fit", "data ecog"])
@pytest.mark.parametrize("intent", ["relaxed", "tightened"])
def test_relaxed_and_tightened_apply_to_criteria_only(target: str, intent: str) -> None:
    text = amend(f"{{target: {target}, intent: {intent}, rationale: Why.}}")
    assert load_errors(text) == [
        (
            "change-intent",
            at("v2.yaml", text, intent),
            "relaxed/tightened apply to criteria; a definition change is editorial or is"
            " declared on the criteria it affects",
        )
    ]


@pytest.mark.parametrize("intent", ["editorial", "added", "removed"])
def test_other_intents_apply_to_definitions_and_data(intent: str) -> None:
    text = amend(
        f"{{target: definition fit, intent: {intent}, rationale: Why.}}\n"
        f"{{target: data ecog, intent: {intent}, rationale: Why.}}"
    )
    assert len(load_protocol_text(text).metadata.changes) == 2


def test_a_rationale_is_required() -> None:
    text = amend("{target: I1, intent: relaxed}\n{target: I2, intent: editorial, rationale: ''}")
    assert load_errors(text) == [
        ("schema", at("v2.yaml", text, "target: I1"), "missing required key 'rationale' in change"),
        ("schema", at("v2.yaml", text, "''"), "'rationale' must not be empty"),
    ]


def test_a_target_names_a_criterion_definition_or_data_item() -> None:
    text = amend("{target: definitions fit, intent: editorial, rationale: Why.}")
    assert load_errors(text) == [
        (
            "schema",
            at("v2.yaml", text, "definitions fit"),
            "invalid target 'definitions fit': a change target is a criterion id (I2),"
            " 'definition NAME' or 'data NAME'",
        )
    ]


def test_changes_need_an_amended_version() -> None:
    text = edit(
        V1,
        '  version: "1"\n',
        '  version: "1"\n  changes:\n    - {target: I1, intent: added, rationale: Why.}\n',
    )
    assert load_errors(text) == [
        (
            "change",
            at("v2.yaml", text, "changes"),
            "'changes' declares what an amendment changes, but this version amends nothing",
        )
    ]


# --- the seed ------------------------------------------------------------------------------


def test_seed_history_is_clean() -> None:
    history = load_history(SEED)
    assert [(v.name, v.doc is not None) for v in history.versions] == [
        ("v1.yaml", True),
        ("v2.yaml", True),
        ("v3.yaml", True),
        ("v4.yaml", True),
    ]
    assert [history.released(v) is not None for v in history.versions] == [
        True,
        True,
        True,
        False,
    ]
    assert check_history(history) == []
    assert check_folder(SEED) == []


def test_seed_real_amendment_adds_the_schedule_and_no_criterion_change() -> None:
    v1, v2 = load_history(SEED).versions[:2]
    assert v1.doc is not None and v2.doc is not None
    meta = v2.doc.metadata
    assert (meta.version, meta.amends, meta.illustrative) == ("2", "1", False)
    assert "ILLUSTRATIVE" not in v2.path.read_text(encoding="utf-8")
    assert {(c.label, c.intent) for c in meta.changes} == {
        ("data conditioning_start", "added"),
        ("data transplant", "added"),
    }
    assert all(c.rationale for c in meta.changes)

    def written(c: Criterion) -> tuple[object, ...]:
        return (c.id, c.kind, c.text, c.rule and c.rule.text, c.attestation, c.note)

    assert [written(c) for c in v2.doc.criteria] == [written(c) for c in v1.doc.criteria]
    assert [s.id for s in v2.doc.dosing] == ["BLINA"]


def test_seed_version_3_changes_no_criterion() -> None:
    v2, v3 = load_history(SEED).versions[1:3]
    assert v2.doc is not None and v3.doc is not None
    meta = v3.doc.metadata
    assert (meta.version, meta.amends, meta.illustrative) == ("3", "2", False)
    assert "ILLUSTRATIVE" not in v3.path.read_text(encoding="utf-8")
    assert "endpoint definitions" in meta.changelog[0]
    assert not [c for c in meta.changes if c.target_kind == "criterion"]

    def written(c: Criterion) -> tuple[object, ...]:
        return (c.id, c.kind, c.text, c.rule and c.rule.text, c.attestation, c.note)

    assert [written(c) for c in v3.doc.criteria] == [written(c) for c in v2.doc.criteria]
    assert [s.id for s in v3.doc.dosing] == ["BLINA"]


def test_seed_amendment_is_marked_illustrative_and_declares_every_intent() -> None:
    v4 = load_history(SEED).versions[3]
    assert v4.doc is not None
    meta = v4.doc.metadata
    assert (meta.version, meta.amends, meta.illustrative) == ("4", "3", True)
    assert "not an amendment of the real trial" in meta.changelog[0]
    assert "ILLUSTRATIVE AMENDMENT" in v4.path.read_text(encoding="utf-8").split("protocode:")[0]
    assert {(c.label, c.intent) for c in meta.changes} == {
        ("I2", "relaxed"),
        ("I3", "editorial"),
        ("I5", "tightened"),
        ("E12", "editorial"),
        ("E13", "removed"),
        ("E15", "added"),
        ("data mab_severe_allergy", "removed"),
        ("data active_infection_iv_antibiotics", "added"),
    }
    assert all(c.rationale for c in meta.changes)


def test_the_seed_in_force_is_its_released_version() -> None:
    assert version_in_force(SEED) == SEED / "v3.yaml"


# --- structural fixtures -------------------------------------------------------------------

STRUCTURAL = {
    "edited_release": (
        "release-edited",
        "tests/fixtures/amendments/edited_release/protocode.lock:5:5",
        "v1.yaml was edited after release (sha256 ",
    ),
    "missing_removed": (
        "undeclared-removal",
        "tests/fixtures/amendments/missing_removed/v2.yaml:3:1",
        "criterion E1 of version 1 is gone without a 'removed' change",
    ),
    "broken_chain": (
        "amends",
        "tests/fixtures/amendments/broken_chain/v2.yaml:7:11",
        "version 2 must amend version 1, not version 3",
    ),
}


@pytest.mark.parametrize("name", list(STRUCTURAL))
def test_structural_fixture(name: str) -> None:
    code, location, fragment = STRUCTURAL[name]
    diagnostics = check_folder(Path("tests/fixtures/amendments") / name)
    assert [(d.code, d.location) for d in diagnostics] == [(code, location)]
    assert fragment in diagnostics[0].message
    assert_golden(render(diagnostics) + "\n", AMENDMENTS / name / "history.err")


def test_edited_release_names_both_hashes() -> None:
    where = AMENDMENTS / "edited_release"
    lock = json.loads((where / LOCK_NAME).read_text(encoding="utf-8"))
    locked = lock["released"][0]["sha256"]
    now = hashlib.sha256((where / "v1.yaml").read_bytes()).hexdigest()
    assert only(where).message == (
        f"v1.yaml was edited after release (sha256 {locked[:12]}… in protocode.lock, now"
        f" {now[:12]}…); released versions are immutable — write an amendment instead"
    )


@pytest.mark.parametrize(
    "name",
    [
        "relaxed_but_excludes",
        "editorial_changes_meaning",
        "undeclared_change",
        "tightened_but_admits",
    ],
)
def test_false_claim_fixtures_are_structurally_clean(name: str) -> None:
    """Only a semantic comparison may refuse these, so nothing structural may get in the way."""
    history = load_history(AMENDMENTS / name)
    assert [history.released(v) is not None for v in history.versions] == [True, False]
    assert check_history(history) == []


# --- the lock ------------------------------------------------------------------------------


def test_released_file_missing(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1}, released=["v1.yaml"])
    (where / "v1.yaml").unlink()
    lock_text = (where / LOCK_NAME).read_text(encoding="utf-8")
    assert problems(where) == [
        (
            "release-missing",
            at(where / LOCK_NAME, lock_text, "{", 2),
            "v1.yaml is released (in protocode.lock) but missing; released versions are kept"
            " for good",
        )
    ]


def test_a_second_released_version_edited(tmp_path: Path) -> None:
    v2 = amend()
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": v2}, released=["v1.yaml", "v2.yaml"])
    (where / "v2.yaml").write_text(v2 + "# a comment is an edit too\n", encoding="utf-8")
    lock_text = (where / LOCK_NAME).read_text(encoding="utf-8")
    assert [(c, loc) for c, loc, _ in problems(where)] == [
        ("release-edited", at(where / LOCK_NAME, lock_text, "{", 3))
    ]


def test_lock_that_is_not_json(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1})
    (where / LOCK_NAME).write_text('{\n  "format": 1,\n  "released": [\n', encoding="utf-8")
    [(code, _, message)] = problems(where)
    assert code == "lock"
    assert message.startswith("not JSON: ")


def test_lock_of_unknown_shape(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1})
    text = '{"format": 2, "protocol": "TEST-H", "released": []}\n'
    (where / LOCK_NAME).write_text(text, encoding="utf-8")
    assert problems(where) == [("lock", at(where / LOCK_NAME, text, "2"), "'format' must be 1")]


def test_lock_entry_lacking_keys(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1})
    text = '{"format": 1, "protocol": "TEST-H", "released": [{"version": "1", "file": "v1.yaml"}]}'
    (where / LOCK_NAME).write_text(text, encoding="utf-8")
    assert problems(where) == [
        ("lock", at(where / LOCK_NAME, text, '{"version"'), "release 1 lacks 'sha256'")
    ]


def test_lock_values_are_json_strings(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1})
    text = '{"format": 1, "protocol": "TEST-H", "released": [{"version": 1, "file": "v1.yaml",'
    text += ' "sha256": "00"}]}\n'
    (where / LOCK_NAME).write_text(text, encoding="utf-8")
    assert problems(where) == [
        (
            "lock",
            at(where / LOCK_NAME, text, '1, "file"'),
            "'version' of release 1 must be a JSON string",
        )
    ]


def test_versions_are_released_in_order(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": amend()}, released=["v2.yaml"])
    text = (where / LOCK_NAME).read_text(encoding="utf-8")
    assert problems(where) == [
        (
            "lock",
            at(where / LOCK_NAME, text, '"2"'),
            "release 1 must be version 1, not 2; versions are released in order",
        )
    ]


def test_lock_of_another_protocol(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1})
    write_lock(where, ["v1.yaml"], protocol="TEST-X")
    text = (where / LOCK_NAME).read_text(encoding="utf-8")
    assert problems(where) == [
        (
            "registry-id",
            at(where / LOCK_NAME, text, '"TEST-X"'),
            "protocode.lock is the lock of TEST-X, but v1.yaml is TEST-H",
        )
    ]


# --- version numbers, the amends chain, the registry id ------------------------------------


def test_version_must_match_its_file_name(tmp_path: Path) -> None:
    v3 = amend(version="2", amends="2")
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": amend(), "v3.yaml": v3})
    assert problems(where) == [
        (
            "version",
            at(where / "v3.yaml", v3, '"2"'),
            'v3.yaml must say version "3", not "2": a version\'s number is its file name\'s'
            " (version 2 is v2.yaml)",
        )
    ]


def test_versions_have_no_gaps(tmp_path: Path) -> None:
    v3 = amend(version="3", amends="2")
    where = folder(tmp_path, {"v1.yaml": V1, "v3.yaml": v3})
    assert problems(where) == [
        (
            "version",
            f"{where}/v3.yaml:1:1",
            "v3.yaml follows v1.yaml: versions are numbered 1, 2, 3, … without gaps, so this"
            " must be v2.yaml",
        )
    ]


def test_versions_start_at_one(tmp_path: Path) -> None:
    v2 = amend()
    where = folder(tmp_path, {"v2.yaml": v2})
    assert problems(where) == [
        (
            "version",
            f"{where}/v2.yaml:1:1",
            "v2.yaml is the first version file: versions are numbered 1, 2, 3, … without gaps,"
            " so this must be v1.yaml",
        )
    ]


def test_a_version_has_one_file(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": amend(), "v2.yml": amend()})
    assert problems(where) == [
        ("version", f"{where}/v2.yml:1:1", "version 2 has two files, v2.yaml and v2.yml")
    ]


def test_the_first_version_amends_nothing(tmp_path: Path) -> None:
    v1 = edit(V1, '  version: "1"\n', '  version: "1"\n  amends: "0"\n')
    where = folder(tmp_path, {"v1.yaml": v1})
    assert problems(where) == [
        (
            "amends",
            at(where / "v1.yaml", v1, '"0"'),
            "version 1 is the first version and amends nothing, not version 0",
        )
    ]


def test_a_later_version_names_the_one_it_amends(tmp_path: Path) -> None:
    v2 = edit(V1, '  version: "1"\n', '  version: "2"\n')
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": v2})
    assert problems(where) == [
        (
            "amends",
            at(where / "v2.yaml", v2, "protocol:"),
            'version 2 must amend version 1 (add amends: "1")',
        )
    ]


def test_the_registry_id_stays(tmp_path: Path) -> None:
    v2 = edit(amend(), "registry_id: TEST-H", "registry_id: TEST-K")
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": v2})
    assert problems(where) == [
        (
            "registry-id",
            at(where / "v2.yaml", v2, "TEST-K"),
            "registry id TEST-K differs from TEST-H in v1.yaml; a protocol folder holds the"
            " versions of one protocol",
        )
    ]


def test_a_version_that_does_not_load_is_left_to_its_own_check(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": amend() + "oops: [\n"})
    assert problems(where) == []


# --- ids between versions ------------------------------------------------------------------


def test_a_criterion_removed_without_declaration(tmp_path: Path) -> None:
    v2 = edit(amend(), "    - {id: E1, text: Active infection., rule: infection}\n", "")
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": v2})
    assert problems(where) == [
        (
            "undeclared-removal",
            at(where / "v2.yaml", v2, "protocol:"),
            "criterion E1 of version 1 is gone without a 'removed' change; ids are stable:"
            " declare {target: E1, intent: removed, rationale: …} under protocol.changes",
        )
    ]


def test_a_criterion_added_without_declaration(tmp_path: Path) -> None:
    v2 = amend() + "    - {id: E3, text: Pregnancy., rule: age > 120}\n"
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": v2})
    assert problems(where) == [
        (
            "undeclared-addition",
            at(where / "v2.yaml", v2, "E3"),
            "criterion E3 is new in version 2 but no change declares it 'added'",
        )
    ]


def test_declared_addition_and_removal(tmp_path: Path) -> None:
    v2 = edit(
        amend(
            "{target: E1, intent: removed, rationale: Obsolete.}\n"
            "{target: E3, intent: added, rationale: New.}\n"
            "{target: data infection, intent: removed, rationale: Unused.}\n"
            "{target: data pregnant, intent: added, rationale: For E3.}"
        ),
        "    - {id: E1, text: Active infection., rule: infection}\n",
        "    - {id: E3, text: Pregnancy., rule: pregnant}\n",
    )
    v2 = edit(v2, "  infection: {type: boolean}\n", "  pregnant: {type: boolean}\n")
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": v2})
    assert problems(where) == []


def test_new_data_items_and_definitions_need_no_declaration(tmp_path: Path) -> None:
    v2 = edit(
        amend(),
        "  infection: {type: boolean}\n",
        "  infection: {type: boolean}\n  bmi: {type: number}\n",
    )
    v2 = edit(v2, "  fit: ecog <= 2\n", "  fit: ecog <= 2\n  obese: bmi >= 30\n")
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": v2})
    assert problems(where) == []


INTENT_MISMATCHES = {
    "added, present before": (
        "{target: I1, intent: added, rationale: Why.}",
        "I1, intent",
        "change-intent",
        "I1 is declared added, but version 1 already has it ('added' is for a new id)",
    ),
    "removed, still present": (
        "{target: I1, intent: removed, rationale: Why.}",
        "I1, intent",
        "change-intent",
        "I1 is declared removed, but this version still has it ('removed' is for an id that is"
        " gone)",
    ),
    "data added, present before": (
        "{target: data ecog, intent: added, rationale: Why.}",
        "data ecog",
        "change-intent",
        "data ecog is declared added, but version 1 already has it ('added' is for a new id)",
    ),
    "definition removed, still present": (
        "{target: definition fit, intent: removed, rationale: Why.}",
        "definition fit",
        "change-intent",
        "definition fit is declared removed, but this version still has it ('removed' is for an"
        " id that is gone)",
    ),
    "criterion in neither version": (
        "{target: I11, intent: editorial, rationale: Why.}",
        "I11",
        "change-target",
        "no criterion 'I11' in this version or version 1 (did you mean 'I1'?)",
    ),
    "data item in neither version": (
        "{target: data ecgo, intent: editorial, rationale: Why.}",
        "data ecgo",
        "change-target",
        "no data item 'ecgo' in this version or version 1 (did you mean 'ecog'?)",
    ),
}


@pytest.mark.parametrize("case", list(INTENT_MISMATCHES))
def test_a_change_must_fit_its_target(tmp_path: Path, case: str) -> None:
    change, needle, code, message = INTENT_MISMATCHES[case]
    v2 = amend(change)
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": v2})
    assert problems(where) == [(code, at(where / "v2.yaml", v2, needle), message)]


def test_an_intent_on_a_new_or_gone_criterion(tmp_path: Path) -> None:
    v2 = edit(
        amend(
            "{target: E1, intent: relaxed, rationale: Why.}\n"
            "{target: E3, intent: editorial, rationale: Why.}"
        ),
        "    - {id: E1, text: Active infection., rule: infection}\n",
        "    - {id: E3, text: Active infection., rule: infection}\n",
    )
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": v2})
    assert problems(where) == [
        (
            "change-intent",
            at(where / "v2.yaml", v2, "E1, intent"),
            "E1 is declared relaxed, but it is gone from this version: declare it 'removed'",
        ),
        (
            "change-intent",
            at(where / "v2.yaml", v2, "E3, intent"),
            "E3 is declared editorial, but it is new in this version: declare it 'added'",
        ),
    ]


def test_an_id_reused_for_a_different_criterion(tmp_path: Path) -> None:
    v2 = edit(
        amend(), "{id: I2, text: ECOG performance status 0 to 2.", "{id: I2, text: Signed consent."
    )
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": v2})
    [(code, location, message)] = problems(where)
    assert (code, location) == ("id-reused", at(where / "v2.yaml", v2, "I2"))
    assert message.startswith(
        "criterion I2's text has little in common with version 1's (similarity 0."
    )
    assert message.endswith(
        "and no change is declared: id reused for a different criterion? A new criterion needs"
        " a new id"
    )


def test_a_reworded_text_is_not_a_reused_id(tmp_path: Path) -> None:
    v2 = edit(
        amend(),
        "{id: I2, text: ECOG performance status 0 to 2.",
        "{id: I2, text: Performance status (ECOG) of 0, 1 or 2.",
    )
    assert problems(folder(tmp_path, {"v1.yaml": V1, "v2.yaml": v2})) == []


def test_a_declared_change_may_rewrite_the_text(tmp_path: Path) -> None:
    v2 = edit(
        amend("{target: I2, intent: tightened, rationale: Why.}"),
        "{id: I2, text: ECOG performance status 0 to 2., rule: fit}",
        "{id: I2, text: Fully active., rule: ecog == 0}",
    )
    assert problems(folder(tmp_path, {"v1.yaml": V1, "v2.yaml": v2})) == []


def test_a_criterion_keeps_its_kind(tmp_path: Path) -> None:
    v2 = edit(amend(), "    - {id: E1, text: Active infection., rule: infection}\n", "")
    v2 = edit(
        v2,
        "    - {id: I2, text: ECOG performance status 0 to 2., rule: fit}\n",
        "    - {id: I2, text: ECOG performance status 0 to 2., rule: fit}\n"
        "    - {id: E1, text: No active infection., rule: not infection}\n",
    )
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": v2})
    assert problems(where) == [
        (
            "criterion-kind",
            at(where / "v2.yaml", v2, "E1"),
            "criterion E1 is an inclusion criterion here but was an exclusion criterion in"
            " version 1; ids are stable: give it a new id (and declare the old one removed, the"
            " new one added)",
        )
    ]


# --- release -------------------------------------------------------------------------------


def test_release_round_trip(tmp_path: Path) -> None:
    shutil.copy(SEED / "v1.yaml", tmp_path / "v1.yaml")
    assert version_in_force(tmp_path) is None
    assert release(tmp_path) == "1"
    lock = (tmp_path / LOCK_NAME).read_text(encoding="utf-8")
    # The seed's own lock was written the same way, from the same bytes.
    assert lock.endswith("}\n")
    assert list(json.loads(lock)) == ["format", "protocol", "released"]
    assert version_in_force(tmp_path) == tmp_path / "v1.yaml"

    shutil.copy(SEED / "v2.yaml", tmp_path / "v2.yaml")
    assert release(tmp_path) == "2"
    assert version_in_force(tmp_path) == tmp_path / "v2.yaml"

    # Version 3 is released while the draft version 4 is under review.
    shutil.copy(SEED / "v3.yaml", tmp_path / "v3.yaml")
    shutil.copy(SEED / "v4.yaml", tmp_path / "v4.yaml")
    assert check_folder(tmp_path) == []
    assert version_in_force(tmp_path) == tmp_path / "v2.yaml"
    assert release(tmp_path) == "3"
    # The seed's own lock was written the same way, from the same bytes.
    lock = (tmp_path / LOCK_NAME).read_text(encoding="utf-8")
    assert lock == (SEED / LOCK_NAME).read_text(encoding="utf-8")
    assert version_in_force(tmp_path) == tmp_path / "v3.yaml"
    assert check_folder(tmp_path) == []

    v1 = tmp_path / "v1.yaml"
    v1.write_text(
        edit(v1.read_text(encoding="utf-8"), "and 70 years", "and 71 years"), encoding="utf-8"
    )
    [diagnostic] = check_folder(tmp_path)
    # Located at the lock's entry for v1, what the file is measured against.
    lock = tmp_path / LOCK_NAME
    assert (diagnostic.code, diagnostic.location) == ("release-edited", f"{lock}:5:5")
    assert diagnostic.message.startswith("v1.yaml was edited after release")
    with pytest.raises(HistoryError) as caught:
        release(tmp_path)
    assert [d.code for d in caught.value.diagnostics] == ["release-edited"]


def test_release_appends_to_the_lock(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1})
    release(where)
    (where / "v2.yaml").write_text(amend(), encoding="utf-8")
    assert release(where) == "2"
    lock = json.loads((where / LOCK_NAME).read_text(encoding="utf-8"))
    assert [(r["version"], r["file"]) for r in lock["released"]] == [
        ("1", "v1.yaml"),
        ("2", "v2.yaml"),
    ]
    assert lock["released"][1]["sha256"] == hashlib.sha256(amend().encode()).hexdigest()
    assert check_folder(where) == []


def test_release_twice(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1}, released=["v1.yaml"])
    with pytest.raises(
        UsageError, match=r"v1\.yaml is already released; write v2\.yaml to amend it"
    ):
        release(where)


def test_release_in_order(tmp_path: Path) -> None:
    # The oldest draft is released first; a newer draft stays under review.
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": amend()})
    assert release(where) == "1"
    assert version_in_force(where) == where / "v1.yaml"
    assert release(where) == "2"
    assert version_in_force(where) == where / "v2.yaml"
    with pytest.raises(UsageError, match=r"v2\.yaml is already released; write v3\.yaml"):
        release(where)


def test_release_refuses_a_broken_history(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": amend(amends="3")}, released=["v1.yaml"])
    with pytest.raises(HistoryError) as caught:
        release(where)
    assert [d.code for d in caught.value.diagnostics] == ["amends"]


def test_release_refuses_a_version_that_does_not_check(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": edit(V1, "rule: age >= 18", "rule: age >= 18 years")})
    with pytest.raises(CheckError):
        release(where)
    (where / "v1.yaml").write_text("protocode: 1\n", encoding="utf-8")
    with pytest.raises(LoadError):
        release(where)
    assert not (where / LOCK_NAME).exists()


def test_release_of_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no protocol version file"):
        release(tmp_path)


def test_version_in_force_with_a_broken_lock(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1})
    (where / LOCK_NAME).write_text("[]\n", encoding="utf-8")
    with pytest.raises(HistoryError, match=r"protocode\.lock must be a JSON object"):
        version_in_force(where)


# --- the command line ----------------------------------------------------------------------


def test_cli_check_seed_folder(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "check", "protocol/NCT06125106")
    assert (status, err) == (0, "")


def test_cli_check_edited_release(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "check", "tests/fixtures/amendments/edited_release")
    assert status == 1
    assert out == (
        "ok tests/fixtures/amendments/edited_release/v2.yaml (TEST-AMEND, version 2, 5 criteria)\n"
    )
    # Once, though loading v1.yaml and the folder's checks both find it.
    assert err.count("release-edited") == 1
    assert err.startswith(
        "tests/fixtures/amendments/edited_release/protocode.lock:5:5: release-edited: v1.yaml was"
        " edited after release"
    )


def test_cli_check_json_includes_history(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys, "check", "--format", "json", "tests/fixtures/amendments/broken_chain"
    )
    assert status == 1
    [found] = json.loads(out)
    assert (found["code"], found["file"], found["line"], found["column"]) == (
        "amends",
        "tests/fixtures/amendments/broken_chain/v2.yaml",
        7,
        11,
    )


def test_cli_check_a_file_leaves_the_history_alone(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "check", "tests/fixtures/amendments/broken_chain/v2.yaml")
    assert (status, err) == (0, "")


def test_cli_release(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1})
    status, out, err = run(capsys, "release", str(where))
    assert (status, err) == (0, "")
    assert out == f"released version 1 of {where} in {where / LOCK_NAME}\n"
    status, out, err = run(capsys, "release", str(where))
    assert (status, out) == (1, "")
    assert err == f"usage: {where / 'v1.yaml'} is already released; write v2.yaml to amend it\n"
