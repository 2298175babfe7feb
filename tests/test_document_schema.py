"""The located JSON Schema validation of `protocode.document.schema`, and the lock read
through it (`document.lock`) once per folder (`document.history.FolderLock`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from protocode.core.source import Source
from protocode.document import history
from protocode.document.history import FolderLock, HistoryError
from protocode.document.lock import LOCK_NAME, read_lock
from protocode.document.plain import PlainTree
from protocode.document.schema import SchemaError, Worded, Wording, validate
from protocode.document.yamlsource import compose
from test_history import V1, at, folder, write_lock

SCHEMA: dict[str, Any] = {
    "title": "case file",
    "type": "object",
    "required": ["id", "expect"],
    "additionalProperties": False,
    "properties": {"id": {"type": "string"}, "expect": {"enum": ["eligible", "ineligible"]}},
}


def problems(text: str, wording: Wording | None = None) -> list[tuple[str, str, str]]:
    source = Source("case.yaml", text)
    tree = PlainTree(source, compose(source, "the case file"))
    return [(d.code, d.location, d.message) for d in validate(tree, SCHEMA, wording)]


def test_each_schema_error_is_located_at_its_node() -> None:
    text = "id: 7\nexpct: eligible\n"
    assert sorted(problems(text)) == [
        ("schema", "case.yaml:1:1", "missing required key 'expect' in case file"),
        ("schema", "case.yaml:1:5", "'id' must be a string, not the number 7"),
        ("schema", "case.yaml:2:1", "unknown key 'expct' in case file (did you mean 'expect'?)"),
    ]
    assert problems("id: a\nexpect: maybe\n") == [
        (
            "schema",
            "case.yaml:2:9",
            "'expect' must be one of eligible, ineligible (expected eligible, ineligible)",
        ),
    ]


def test_a_wording_keeps_a_file_format_s_own_messages() -> None:
    class Terse(Wording):
        def on_type(self, error: SchemaError) -> Worded:
            return [(f"{self.describe(error.path)}: wrong type", error.span())]

    assert problems("id: [1]\nexpect: eligible\n", Terse()) == [
        ("schema", "case.yaml:1:5", "'id': wrong type"),
    ]


def test_yaml_problems_come_first_and_silence_schema_errors_about_them() -> None:
    assert problems("id: !!int x\nexpect: eligible\n") == [
        ("yaml-tag", "case.yaml:1:5", "'x' is not a valid !!int"),
    ]


def lock_problems(where: Path, text: str) -> list[tuple[str, str, str]]:
    (where / LOCK_NAME).write_text(text, encoding="utf-8")
    lock, found = read_lock(where / LOCK_NAME)
    assert lock is None or found
    return [(d.code, d.location, d.message) for d in found]


def test_the_lock_s_format_is_written_1(tmp_path: Path) -> None:
    # JSON Schema's const compares numbers by value; the lock keeps the written 1.
    text = '{"format": 1.0, "protocol": "TEST-H", "released": []}\n'
    assert lock_problems(tmp_path, text) == [
        ("lock", at(tmp_path / LOCK_NAME, text, "1.0"), "'format' must be 1")
    ]


def test_a_bare_yaml_word_is_not_a_json_string(tmp_path: Path) -> None:
    text = "{format: 1, protocol: TEST-H, released: []}\n"
    assert lock_problems(tmp_path, text) == [
        ("lock", at(tmp_path / LOCK_NAME, text, "TEST-H"), "'protocol' must be a JSON string")
    ]


def test_an_unknown_lock_key_is_reported_where_it_is(tmp_path: Path) -> None:
    text = '{"format": 1, "protocol": "TEST-H", "released": [], "relased": []}\n'
    assert lock_problems(tmp_path, text) == [
        (
            "lock",
            at(tmp_path / LOCK_NAME, text, '"relased"'),
            "unknown key 'relased' in protocode.lock (did you mean 'released'?)",
        )
    ]


def test_a_folder_s_lock_is_read_once_for_both_questions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = folder(tmp_path, {"v1.yaml": V1}, released=["v1.yaml"])
    calls: list[Path] = []

    def counted(path: Path) -> Any:
        calls.append(path)
        return read_lock(path)

    monkeypatch.setattr(history, "read_lock", counted)
    lock = FolderLock.read(where)
    file = lock.version_in_force()
    assert file == where / "v1.yaml"
    lock.verify(file, file.read_bytes())
    with pytest.raises(HistoryError, match=r"v1\.yaml was edited after release"):
        lock.verify(file, b"edited")
    assert calls == [where / LOCK_NAME]


def test_a_malformed_lock_is_raised_when_asked_not_when_read(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1})
    (where / LOCK_NAME).write_text("[]\n", encoding="utf-8")
    lock = FolderLock.read(where)
    assert [d.message for d in lock.problems] == ["protocode.lock must be a JSON object"]
    with pytest.raises(HistoryError, match=r"protocode\.lock must be a JSON object"):
        lock.version_in_force()
    with pytest.raises(HistoryError, match=r"protocode\.lock must be a JSON object"):
        lock.verify(where / "v1.yaml", b"")


def test_a_draft_and_a_folder_without_a_lock_pass(tmp_path: Path) -> None:
    where = folder(tmp_path, {"v1.yaml": V1})
    assert FolderLock.read(where).version_in_force() is None
    FolderLock.read(where).verify(where / "v1.yaml", b"anything")
    write_lock(where, ["v1.yaml"])
    digest = hashlib.sha256((where / "v1.yaml").read_bytes()).hexdigest()
    assert FolderLock.read(where).checked() is not None
    assert digest in (where / LOCK_NAME).read_text(encoding="utf-8")
    FolderLock.read(where).verify(where / "v2.yaml", b"a draft")
