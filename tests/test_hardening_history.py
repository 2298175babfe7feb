"""Issue 11 hardening of versions, locks and history: every command enforces the lock, and
odd folders and locks get located errors, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import ROOT
from protocode.check import check_protocol
from protocode.errors import CheckError, LoadError
from protocode.history import LOCK_NAME, check_folder
from protocode.loader import load_protocol_text
from test_history import V1, amend, at, folder


@pytest.fixture(autouse=True)
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, so paths in messages are the short relative ones."""
    monkeypatch.chdir(ROOT)


def lock_entry(where: Path, occurrence: int) -> str:
    """``path:line:col`` of the lock's `occurrence`-th release entry."""
    lock = where / LOCK_NAME
    # The lock's own object is the first '{'; release entries follow it.
    return at(lock, lock.read_text(encoding="utf-8"), "{", occurrence + 1)


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
