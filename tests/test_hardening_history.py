"""Issue 11 hardening of versions, locks and history: every command enforces the lock, and
odd folders and locks get located errors, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

import protocode
from helpers import ROOT, SEED, run
from protocode.amendments.folder import check_folder, release
from protocode.core.errors import CheckError, LoadError
from protocode.document.history import HistoryError
from protocode.document.loader import load_protocol_text
from protocode.document.lock import LOCK_NAME
from protocode.language.check import check_protocol
from test_history import V1, amend, at, edit, folder

PATIENTS = SEED / "examples" / "patients.jsonl"


@pytest.fixture(autouse=True)
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, so paths in messages are the short relative ones."""
    monkeypatch.chdir(ROOT)


def lock_entry(where: Path, occurrence: int) -> str:
    """``path:line:col`` of the lock's `occurrence`-th release entry."""
    lock = where / LOCK_NAME
    # The lock's own object is the first '{'; release entries follow it.
    return at(lock, lock.read_text(encoding="utf-8"), "{", occurrence + 1)


# --- item 1: the lock is enforced by every command, not only by check -----------------------


@pytest.fixture
def edited_seed(tmp_path: Path) -> Path:
    """A copy of the seed whose version in force, v3.yaml, was edited after release."""
    where = tmp_path / "NCT06125106"
    shutil.copytree(SEED, where)
    v3 = where / "v3.yaml"
    text = v3.read_text(encoding="utf-8")
    assert text.count("age between 18 years and 70 years") == 1
    v3.write_text(text.replace("and 70 years", "and 75 years"), encoding="utf-8")
    return where


def test_load_refuses_an_edited_version_in_force(edited_seed: Path) -> None:
    for path in (edited_seed, edited_seed / "v3.yaml"):
        with pytest.raises(HistoryError) as caught:
            protocode.load(path)
        [problem] = caught.value.diagnostics
        assert (problem.code, problem.location) == ("release-edited", lock_entry(edited_seed, 3))
        assert problem.message.startswith("v3.yaml was edited after release (sha256 87c760cab2e6…")


def test_load_of_untouched_releases_and_of_drafts(edited_seed: Path) -> None:
    # Only the edited file is refused: the other releases and the draft v4 still load.
    for name in ("v1.yaml", "v2.yaml", "v4.yaml"):
        assert protocode.load(edited_seed / name).version == name[1]


@pytest.mark.parametrize(
    "command",
    [
        ["screen", "{folder}", str(PATIENTS)],
        ["screen", "{folder}/v3.yaml", str(PATIENTS)],
        ["explain", "{folder}", str(PATIENTS), "--id", "ZJU-001"],
        ["test", "{folder}"],
        ["compile", "{folder}", "--to", "json"],
        ["diff", "{folder}/v2.yaml", "{folder}/v3.yaml"],
        ["dosing", "plan", "{folder}", str(SEED / "examples" / "dosing.jsonl")],
    ],
)
def test_every_command_refuses_an_edited_release(
    capsys: pytest.CaptureFixture[str], edited_seed: Path, command: list[str]
) -> None:
    argv = [arg.replace("{folder}", str(edited_seed)) for arg in command]
    status, out, err = run(capsys, *argv)
    assert (status, out) == (1, "")
    assert err.startswith(f"{lock_entry(edited_seed, 3)}: release-edited: v3.yaml was edited")
    assert "Traceback" not in err


def test_check_of_an_edited_folder_reports_it_once(
    capsys: pytest.CaptureFixture[str], edited_seed: Path
) -> None:
    status, _, err = run(capsys, "check", edited_seed)
    assert status == 1
    assert err.count("release-edited") == 1
    assert err.startswith(f"{lock_entry(edited_seed, 3)}: release-edited: v3.yaml was edited")


def test_a_malformed_lock_verifies_nothing(tmp_path: Path) -> None:
    # Dropping a hash must not turn verification off.
    where = folder(tmp_path, {"v1.yaml": V1}, released=["v1.yaml"])
    lock = json.loads((where / LOCK_NAME).read_text(encoding="utf-8"))
    del lock["released"][0]["sha256"]
    (where / LOCK_NAME).write_text(json.dumps(lock, indent=2) + "\n", encoding="utf-8")
    with pytest.raises(HistoryError, match="release 1 lacks 'sha256'"):
        protocode.load(where / "v1.yaml")


def test_a_file_outside_any_lock_loads(tmp_path: Path) -> None:
    (tmp_path / "v1.yaml").write_text(V1, encoding="utf-8")
    assert protocode.load(tmp_path).version == "1"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_under_a_released_name_is_refused_unread(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1}, released=["v1.yaml"])
    (where / "v1.yaml").unlink()
    os.mkfifo(where / "v1.yaml")
    # Should the hash be read from the pipe, a writer that comes and goes ends the read (as an
    # edited file) rather than blocking the test for ever.
    unblock = threading.Timer(5, lambda: (where / "v1.yaml").open("wb").close())
    unblock.start()
    try:
        with pytest.raises(LoadError, match=r"v1\.yaml: it is a named pipe"):
            protocode.load(where)
    finally:
        unblock.cancel()


# --- item 16: a lock entry naming a missing file ---------------------------------------------


def test_a_missing_version_in_force_is_located_in_the_lock(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    where = folder(tmp_path, {"v1.yaml": V1, "v2.yaml": amend()}, released=["v1.yaml", "v2.yaml"])
    (where / "v2.yaml").unlink()
    with pytest.raises(HistoryError) as caught:
        protocode.load(where)
    [problem] = caught.value.diagnostics
    assert (problem.code, problem.location) == ("release-missing", lock_entry(where, 2))
    status, out, err = run(capsys, "screen", where, PATIENTS)
    assert (status, out) == (1, "")
    assert err.startswith(f"{lock_entry(where, 2)}: release-missing: v2.yaml is released")


# --- item 5: numbers past Python's int() limit in a lock --------------------------------------


def test_a_lock_file_name_of_5000_digits(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1}, released=["v1.yaml"])
    lock = json.loads((where / LOCK_NAME).read_text(encoding="utf-8"))
    lock["released"][0]["file"] = "v" + "9" * 5000 + ".yaml"
    (where / LOCK_NAME).write_text(json.dumps(lock, indent=2) + "\n", encoding="utf-8")
    expected = ("lock", lock_entry(where, 1), "release 1 is version 1, so its file is v1.yaml")
    assert [(d.code, d.location, d.message) for d in check_folder(where)] == [expected]
    with pytest.raises(HistoryError) as caught:
        protocode.load(where)
    assert [(d.code, d.location, d.message) for d in caught.value.diagnostics] == [expected]


def test_a_lock_file_name_with_leading_zeros_is_its_number(tmp_path: Path) -> None:
    # What `release` writes for a v01.yaml reads back: the digits are compared, not ints.
    where = folder(tmp_path, {"v01.yaml": V1})
    assert release(where) == "1"
    assert check_folder(where) == []
    assert protocode.load(where).version == "1"


# --- item 8: history rules on odd folders -----------------------------------------------------


def problems(where: Path) -> list[tuple[str, str, str]]:
    return [(d.code, d.location, d.message) for d in check_folder(where)]


def test_a_stray_v0(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v0.yaml": V1, "v1.yaml": V1, "v2.yaml": amend()})
    assert problems(where) == [
        (
            "version",
            f"{where}/v0.yaml:1:1",
            "v0.yaml is the first version file: versions are numbered 1, 2, 3, … without gaps,"
            " so this must be v1.yaml",
        )
    ]


def test_a_deleted_first_release(tmp_path: Path) -> None:
    v3 = amend(version="3", amends="2")
    where = folder(
        tmp_path, {"v1.yaml": V1, "v2.yaml": amend(), "v3.yaml": v3}, released=["v1.yaml"]
    )
    (where / "v1.yaml").unlink()
    # One error for the missing release and one for the numbering, not one per later file.
    assert [(code, location) for code, location, _ in problems(where)] == [
        ("release-missing", lock_entry(where, 1)),
        ("version", f"{where}/v2.yaml:1:1"),
    ]


def test_a_gap_names_the_file_before_it(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1, "v3.yaml": amend(version="3", amends="2")})
    [(code, location, message), *_] = problems(where)
    assert (code, location) == ("version", f"{where}/v3.yaml:1:1")
    assert message.startswith("v3.yaml follows v1.yaml: ") and message.endswith("v2.yaml")


def test_an_intent_that_is_a_list() -> None:
    text = amend("{target: data ecog, intent: [editorial], rationale: Wider range.}")
    with pytest.raises(LoadError) as caught:
        load_protocol_text(text, "v2.yaml")
    assert [(d.code, d.location) for d in caught.value.diagnostics] == [
        ("schema", at("v2.yaml", text, "[editorial]"))
    ]


def test_an_item_of_an_unknown_unit_used_as_a_multiple_of_its_uln() -> None:
    text = V1.replace(
        "  infection: {type: boolean}\n",
        "  infection: {type: boolean}\n"
        "  enrollment: {kind: anchor}\n"
        "  ast: {kind: observation, unit: Ufoo/L, uln: 40 U/L}\n",
    ).replace("rule: age > 99}", "rule: latest ast within 7 days before enrollment > 3 x ULN}")
    with pytest.raises(CheckError) as caught:
        check_protocol(load_protocol_text(text, "v1.yaml"))
    # The item's unit, once, where it is written; nothing about the ULN that uses it.
    assert [(d.code, d.location, d.message) for d in caught.value.diagnostics] == [
        ("unit", at("v1.yaml", text, "ast:"), "item 'ast': unknown unit 'Ufoo'")
    ]


# --- item 14: an amendment that adds a code value ---------------------------------------------

CODES_V1 = """\
protocode: 1
protocol:
  registry_id: TEST-CODES
  title: A diagnosis admitted by an amendment
  version: "1"
data:
  diagnosis: {type: code, values: [B-ALL, T-ALL]}
  age: {type: integer}
  enrollment: {kind: anchor}
  birth_date: {type: date}
criteria:
  inclusion:
    - {id: I1, text: B-ALL., rule: "diagnosis == 'B-ALL'"}
    - {id: I2, text: Adult., rule: "birth_date + 1 days + 18 years <= enrollment"}
"""


def codes_v2(intent: str) -> str:
    """Version 2: MPAL is a new diagnosis, and I1 admits it (declared as `intent`)."""
    text = amend(
        f"{{target: I1, intent: {intent}, rationale: MPAL admitted.}}\n"
        "{target: data diagnosis, intent: editorial, rationale: MPAL added.}",
        text=CODES_V1,
    )
    text = edit(text, "values: [B-ALL, T-ALL]", "values: [B-ALL, T-ALL, MPAL]")
    return edit(text, "rule: \"diagnosis == 'B-ALL'\"", "rule: \"diagnosis in {'B-ALL', 'MPAL'}\"")


def test_a_relaxed_criterion_admitting_a_new_code_is_proved(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": CODES_V1, "v2.yaml": codes_v2("relaxed")})
    assert check_folder(where) == []
    old, new = protocode.load(where / "v1.yaml"), protocode.load(where / "v2.yaml")
    i1 = protocode.diff(old, new).criteria[0]
    assert (i1.id, i1.comparison.relation, i1.comparison.method) == ("I1", "broader", "proved")
    [witness] = i1.comparison.witnesses
    # The new code is a value the old rule reads and rejects, not an invalid record.
    assert (witness.record["diagnosis"], witness.old, witness.new) == ("MPAL", "not met", "met")


def test_a_false_claim_about_a_new_code_is_refuted_with_a_witness(tmp_path: Path) -> None:
    v2 = codes_v2("tightened")
    where = folder(tmp_path, {"v1.yaml": CODES_V1, "v2.yaml": v2})
    [problem] = check_folder(where)
    assert (problem.code, problem.location) == ("intent", at(where / "v2.yaml", v2, "I1, intent"))
    assert problem.message.startswith("I1 is declared tightened, but the change is broader; ")
    assert '"diagnosis": "MPAL"' in problem.message


def test_the_search_fallback_reads_a_new_code_too(tmp_path: Path) -> None:
    # Years added to a date computed in days is outside the SMT encoding: a search decides.
    v2 = edit(codes_v2("relaxed"), 'rule: "birth_date', "rule: \"diagnosis == 'MPAL' or birth_date")
    v2 = v2.replace(
        "  changes:\n", "  changes:\n    - {target: I2, intent: relaxed, rationale: x}\n"
    )
    where = folder(tmp_path, {"v1.yaml": CODES_V1, "v2.yaml": v2})
    assert check_folder(where) == []
    old, new = protocode.load(where / "v1.yaml"), protocode.load(where / "v2.yaml")
    i2 = protocode.diff(old, new).criteria[1]
    assert (i2.comparison.relation, i2.comparison.method) == ("broader", "searched")


def test_an_item_that_changes_type_is_located_not_compared(tmp_path: Path) -> None:
    # A witness record cannot be read by both versions: say where, before comparing anything.
    v2 = edit(codes_v2("relaxed"), "{type: code, values: [B-ALL, T-ALL, MPAL]}", "{type: boolean}")
    v2 = edit(v2, "rule: \"diagnosis in {'B-ALL', 'MPAL'}\"", "rule: diagnosis")
    where = folder(tmp_path, {"v1.yaml": CODES_V1, "v2.yaml": v2})
    expected = [
        (
            "item-kind",
            at(where / "v2.yaml", v2, "diagnosis: {type: boolean}"),
            "data item diagnosis is a boolean here but was a code in version 1; one record cannot"
            " be read by both, so the versions cannot be compared: keep what it holds, or give"
            " the new item a new name",
        )
    ]
    assert problems(where) == expected
    old, new = protocode.load(where / "v1.yaml"), protocode.load(where / "v2.yaml")
    with pytest.raises(HistoryError) as caught:
        protocode.diff(old, new)
    assert [(d.code, d.location, d.message) for d in caught.value.diagnostics] == expected
