"""Hardening of the front end (issue 11): every protocol, lock, case and FHIR-map file is read
through one reader and composed by one composer, so each bad file is one located error."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import MINIMAL, run
from protocode.backends.export.common import compiled_schema
from protocode.cases import load_cases
from protocode.core.errors import Diagnostic, LoadError, ProtocodeError
from protocode.core.exact import MAX_DIGITS
from protocode.core.files import MAX_FILE_BYTES, read_bytes
from protocode.core.source import Source
from protocode.document.history import load_history
from protocode.document.loader import load_protocol, load_protocol_text, protocol_schema
from protocode.document.lock import VERSION_FILE
from protocode.document.schema import SchemaValidator, ecma_regex
from protocode.document.yamlsource import MAX_ALIAS_VALUES, MAX_DEPTH, compose
from protocode.fmt.files import format_file, protocol_files
from protocode.language.units import UnitError, parse_unit
from protocode.records.fhir.mapfile import load_map


def _lock_problems(path: Path) -> tuple[Diagnostic, ...]:
    problems = load_history(path.parent).problems
    if not problems:
        raise AssertionError("the lock was read without a problem")
    raise LoadError(problems)


# Every kind of YAML file protocode reads, by the name it must have and how it is read.
READERS: dict[str, tuple[str, Callable[[Path], Any]]] = {
    "protocol": ("v1.yaml", load_protocol),
    "lock": ("protocode.lock", _lock_problems),
    "cases": ("v1.yaml", load_cases),
    "fhir-map": ("map.yaml", load_map),
    "fmt": ("v1.yaml", format_file),
}


def read_error(kind: str, path: Path) -> Diagnostic:
    """The one diagnostic reading `path` as a `kind` file gives, within 20 seconds."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            READERS[kind][1](path)
            outcome.append(None)
        except BaseException as exc:  # handed to the test thread below
            outcome.append(exc)

    # A reader that blocks (a named pipe opened for reading waits for a writer) must fail
    # this test, not hang the suite.
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    assert outcome, f"reading {path} as {kind} did not finish"
    error = outcome[0]
    assert isinstance(error, ProtocodeError), f"{kind}: {error!r}"
    (diagnostic,) = error.diagnostics
    return diagnostic


def in_folder(tmp_path: Path, kind: str) -> Path:
    folder = tmp_path / kind
    folder.mkdir()
    return folder / READERS[kind][0]


KINDS = list(READERS)


# Item 3: only regular files, of bounded size.


@pytest.mark.parametrize("kind", KINDS)
def test_a_named_pipe_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    path = in_folder(tmp_path, kind)
    os.mkfifo(path)
    diagnostic = read_error(kind, path)
    assert diagnostic.code == "io"
    assert diagnostic.message == f"cannot read {path}: it is a named pipe, not a regular file"


@pytest.mark.parametrize("kind", KINDS)
def test_a_link_to_a_device_is_refused(tmp_path: Path, kind: str) -> None:
    path = in_folder(tmp_path, kind)
    path.symlink_to("/dev/zero")
    diagnostic = read_error(kind, path)
    assert diagnostic.message == f"cannot read {path}: it is a device, not a regular file"


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_over_the_size_limit_is_refused(tmp_path: Path, kind: str) -> None:
    path = in_folder(tmp_path, kind)
    with path.open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is written
    diagnostic = read_error(kind, path)
    assert diagnostic.message == (
        f"cannot read {path}: it is 8.0 MB; protocode reads files of at most 8 MB"
    )


def test_a_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "v1.yaml"
    with path.open("wb") as file:
        file.truncate(MAX_FILE_BYTES)
    assert len(read_bytes(path)) == MAX_FILE_BYTES


def test_a_named_pipe_version_is_listed_without_content(tmp_path: Path) -> None:
    (tmp_path / "v1.yaml").write_text(MINIMAL, encoding="utf-8")
    os.mkfifo(tmp_path / "v2.yaml")
    history = load_history(tmp_path)
    assert [(v.name, v.doc is None) for v in history.versions] == [
        ("v1.yaml", False),
        ("v2.yaml", True),
    ]
    assert protocol_files(tmp_path) == [tmp_path / "v1.yaml", tmp_path / "v2.yaml"]


# Item 16: a file that is not UTF-8 is located at its first bad byte.


@pytest.mark.parametrize("kind", KINDS)
def test_not_utf8_points_at_the_byte(tmp_path: Path, kind: str) -> None:
    path = in_folder(tmp_path, kind)
    path.write_bytes(b"a: 1\r\nb: caf\xe9\n")
    diagnostic = read_error(kind, path)
    assert diagnostic.code == "io"
    assert diagnostic.message == (
        "not UTF-8 text: byte 0xe9 cannot be read as UTF-8 (save the file as UTF-8)"
    )
    assert diagnostic.location == f"{path}:2:7"
    assert diagnostic.render().splitlines()[1:] == ["   2 | b: caf\ufffd", "     |       ^"]


# Item 6: nesting is bounded where YAML is composed, for every kind of file.


@pytest.mark.parametrize("kind", KINDS)
def test_deep_nesting_is_one_located_error(tmp_path: Path, kind: str) -> None:
    path = in_folder(tmp_path, kind)
    path.write_text("a: " + "[" * 600 + "]" * 600 + "\n", encoding="utf-8")
    diagnostic = read_error(kind, path)
    assert diagnostic.code == ("lock" if kind == "lock" else "yaml-depth")
    assert diagnostic.message == f"lists and mappings nest more than {MAX_DEPTH} levels deep here"
    # The root mapping is level 1, so the list opened at column 3 + 64 is one too many.
    assert diagnostic.location == f"{path}:1:{3 + MAX_DEPTH}"


def test_nesting_at_the_limit_loads_as_far_as_the_schema() -> None:
    deep = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    with pytest.raises(LoadError) as info:
        load_protocol_text(MINIMAL + f"x: {deep}\n", "t.yaml")
    assert [d.message for d in info.value.diagnostics] == [
        "unknown key 'x' in protocol file (expected protocode, protocol, data, definitions,"
        " criteria, dosing, phases, endpoints, derived_events, grading)"
    ]


def test_block_style_nesting_is_bounded_too() -> None:
    text = "".join(f"{'  ' * level}k{level}:\n" for level in range(600))
    with pytest.raises(LoadError) as info:
        compose(Source("t.yaml", text), "the file")
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.code, diagnostic.location) == ("yaml-depth", f"t.yaml:{MAX_DEPTH}:127")


def test_aliases_cannot_nest_deeper_than_the_text() -> None:
    # Each anchor nests the previous one 40 levels further: two are 80 levels deep.
    text = "a: &a " + "[" * 40 + "]" * 40 + "\nb: &b " + "[" * 39 + "*a" + "]" * 39 + "\n"
    with pytest.raises(LoadError) as info:
        compose(Source("t.yaml", text), "the file")
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "yaml-depth"
    assert diagnostic.message == (
        f"this alias nests lists and mappings more than {MAX_DEPTH} levels deep"
    )
    assert (diagnostic.span is not None) and diagnostic.span.text == "*"


# Item 15: a large file is limited by its size, aliases by what they add.


def test_many_values_without_aliases_are_not_an_alias_bomb() -> None:
    values = MAX_ALIAS_VALUES + 1
    root = compose(Source("t.yaml", "[" + "0, " * values + "0]\n"), "the file")
    assert len(root.value) == values + 1


def test_an_alias_bomb_names_the_alias_limit() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 6)]
    with pytest.raises(LoadError) as info:
        compose(Source("t.yaml", "\n".join(lines) + "\n"), "the file")
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "yaml-alias"
    assert diagnostic.message == (
        "aliases expand the file from 23 to 1,234,573 values (aliases may add at most 100,000)"
    )


# Item 5: numbers are bounded where protocol text becomes a number.

SEED_V4 = Path(__file__).resolve().parents[1] / "protocol" / "NCT06125106" / "v4.yaml"
BIG = "9" * 5000
TOO_LONG = f"a number of 5,000 digits is too long (at most {MAX_DIGITS})"
WINDOW_RULE = "rule: any chemotherapy within 2 weeks before enrollment"
LAB_RULE = "rule: latest creatinine within 7 days before enrollment"


@pytest.mark.parametrize(
    ("old", "new", "at", "message"),
    [
        (LAB_RULE, f"{LAB_RULE} and age >= {BIG}", BIG, f"number: {TOO_LONG}"),
        (LAB_RULE, f"{LAB_RULE} and age >= 1.{BIG}", "1.", "number: a number of 5,001 digits"),
        (WINDOW_RULE, WINDOW_RULE.replace("2", BIG), BIG, f"number: {TOO_LONG}"),
        ("uln: 40 U/L", f"uln: {BIG} U/L", BIG, f"number: {TOO_LONG}"),
        ("molar_mass: 113.12 g/mol", f"molar_mass: {BIG} g/mol", BIG, f"number: {TOO_LONG}"),
        ("minimum: 20\n", f"minimum: {BIG}\n", BIG, f"number: {TOO_LONG}"),
        ("minimum: 20\n", f"minimum: 0x{BIG}\n", "0x", "number: a number of 5,002 digits"),
        ("dose: 28 ug", f"dose: {BIG} ug", BIG, f"number: {TOO_LONG}"),
        ("doses: 7", f"doses: {BIG}", BIG, f"number: {TOO_LONG}"),
        ("time: 2 h}", f"time: {BIG} h}}", BIG, f"number: {TOO_LONG}"),
        ("horizon: 100 days", f"horizon: {BIG} days", BIG, f"number: {TOO_LONG}"),
        ("doses: 7", "doses: 99999999999", "99999999999", "schedule: 99,999,999,999 doses"),
        ("horizon: 100 days", "horizon: 99999999999 days", "99999999999", "horizon: a horizon"),
    ],
)
def test_a_long_number_is_one_located_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    old: str,
    new: str,
    at: str,
    message: str,
) -> None:
    seed = SEED_V4.read_text(encoding="utf-8")
    assert old in seed
    text = seed.replace(old, new, 1)
    path = tmp_path / "v4.yaml"
    path.write_text(text, encoding="utf-8")
    status, _, err = run(capsys, "check", path)
    line, col = Source(str(path), text).position(text.index(at, text.index(new)))
    assert status == 1
    assert err.startswith(f"{path}:{line}:{col}: {message}"), err[:300]


def test_a_long_unit_exponent_is_a_unit_error() -> None:
    with pytest.raises(UnitError) as info:
        parse_unit(f"10*{BIG}/L")
    assert (info.value.message, info.value.offset) == ("exponent of 5,000 digits is too large", 3)


# Item 13: in every pattern that validates an id or a name, `$` is the end of the text.


def _patterns(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
        return found.union(*(_patterns(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_patterns(value) for value in node))
    return set()


SCHEMA_PATTERNS = sorted(_patterns(protocol_schema()) | _patterns(compiled_schema()))


def test_the_schemas_have_patterns() -> None:
    assert len(SCHEMA_PATTERNS) >= 5


@pytest.mark.parametrize("pattern", SCHEMA_PATTERNS)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_no_schema_pattern_takes_a_final_newline(pattern: str, data: st.DataObject) -> None:
    value = data.draw(st.from_regex(ecma_regex(pattern), fullmatch=True))
    validator = SchemaValidator({"type": "string", "pattern": pattern})
    assert validator.is_valid(value)
    assert not validator.is_valid(value + "\n")


def test_a_criterion_id_with_a_final_newline_is_refused() -> None:
    text = MINIMAL.replace("- id: I1", '- id: "I1\\n"')
    with pytest.raises(LoadError) as info:
        load_protocol_text(text, "t.yaml")
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.location == "t.yaml:11:11"
    assert diagnostic.message.startswith("invalid id 'I1\\n': a criterion id starts with")


def test_a_version_file_name_with_a_final_newline_is_not_a_version() -> None:
    assert VERSION_FILE.match("v1.yaml") is not None
    assert VERSION_FILE.match("v1.yaml\n") is None


# Item 20: a YAML syntax error points at the mistake and says what to write.


@pytest.mark.parametrize(
    ("old", "new", "where", "message"),
    [
        ("criteria:", "criteria", "9:1", "missing ':' after 'criteria' (write 'criteria:')"),
        ("- id: I1", "- id I1", "11:7", "missing ':' after 'id' (write 'id: I1')"),
        ("text: Adults", "text Adults", "12:7", "missing ':' after 'text' (write 'text: Adults')"),
        (
            "rule: age >= 18",
            "rule age >= 18",
            "13:7",
            "missing ':' after 'rule' (write 'rule: age >= 18')",
        ),
        (
            "text: Adults",
            "text: Adults: aged 18",
            "12:19",
            """a value holding ': ' must be quoted (write 'text: "Adults: aged 18"')""",
        ),
        ("- id: I1", "-id: I1", "11:5", "a list item needs a space after '-' (write '- id: I1')"),
        (
            "      text: Adults",
            "\ttext: Adults",
            "12:1",
            "a tab cannot indent YAML; indent with spaces",
        ),
        (
            "      text: Adults",
            "     text: Adults",
            "12:6",
            "line 12 is indented differently from the lines before it: indent it as far as the"
            " keys or list items it belongs with",
        ),
        (
            "title: Minimal",
            'title: "Minimal',
            "4:10",
            'the string opened with " on line 4 runs on to line 5: is its closing " missing?',
        ),
        (
            "rule: age >= 18",
            "rule: 'age >= 18",
            "13:13",
            "the string opened with ' on line 13 is never closed",
        ),
    ],
)
def test_yaml_syntax_errors_say_what_to_write(old: str, new: str, where: str, message: str) -> None:
    with pytest.raises(LoadError) as info:
        load_protocol_text(MINIMAL.replace(old, new, 1), "t.yaml")
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.code, diagnostic.location, diagnostic.message) == (
        "yaml-syntax",
        f"t.yaml:{where}",
        message,
    )


def test_a_case_file_gets_the_same_syntax_help(tmp_path: Path) -> None:
    path = tmp_path / "v1.yaml"
    path.write_text("protocode-cases: 1\ncases\n  - name: a\n", encoding="utf-8")
    diagnostic = read_error("cases", path)
    assert diagnostic.location == f"{path}:2:1"
    assert diagnostic.message == "missing ':' after 'cases' (write 'cases:')"
