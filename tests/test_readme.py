"""The README's console blocks run as written, so the README cannot drift from protocode.

The convention for a ```console block of README.md:

- a line ``$ protocode ARGS…`` is a command; ARGS are split as a POSIX shell would, a
  ``# comment`` ends the line, and ``> FILE`` sends standard output to FILE;
- the lines after a command, up to the next command or the end of the block, are what it
  prints: standard output and standard error interleaved as a terminal shows them, blank
  lines at the end ignored;
- in those lines, a line that is only ``…`` stands for any number of lines (none
  included), and ``…`` inside a line for any text on that line. Nothing else is elided: a
  command shown without lines must print nothing.

Each block runs in-process, its commands in order, in a scratch folder that sees the
repository's ``protocol/`` and ``tests/`` folders: paths read as from the repository root,
and the files a command writes (plots, tables, results) land in the scratch folder.
"""

from __future__ import annotations

import io
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import ROOT
from protocode.cli import main

README = ROOT / "README.md"
ELIDED = "…"


@dataclass(frozen=True, slots=True)
class Command:
    """One ``$ protocode …`` line of a console block and the output shown after it."""

    line: int
    argv: tuple[str, ...]
    stdout_to: str | None
    expected: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Block:
    """A console block: where it starts, and its commands in order."""

    line: int
    commands: tuple[Command, ...]


def console_blocks(text: str) -> list[Block]:
    """Every ```console block of a Markdown text, parsed into commands."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```console":
            index += 1
            continue
        start = index + 1
        end = next(i for i in range(start, len(lines)) if lines[i].strip() == "```")
        blocks.append(Block(start, tuple(_commands(lines[start:end], start + 1))))
        index = end + 1
    return blocks


def _commands(body: list[str], first_line: int) -> list[Command]:
    commands: list[Command] = []
    current: tuple[int, str] | None = None
    output: list[str] = []

    def close() -> None:
        if current is None:
            if any(line.strip() for line in output):
                raise AssertionError(f"README.md:{first_line}: output before any '$ protocode'")
            return
        where, text = current
        words = shlex.split(text, comments=True)
        if words[:1] != ["protocode"]:
            raise AssertionError(f"README.md:{where}: a console command must run protocode")
        stdout_to = None
        if ">" in words:
            at = words.index(">")
            stdout_to, words = words[at + 1], words[:at]
        while output and not output[-1].strip():
            output.pop()
        commands.append(Command(where, tuple(words[1:]), stdout_to, tuple(output)))

    for number, line in enumerate(body, first_line):
        if line.startswith("$ "):
            close()
            current, output = (number, line[2:]), []
        else:
            output.append(line)
    close()
    return commands


def pattern(expected: tuple[str, ...]) -> re.Pattern[str]:
    """The regular expression of an expected output, with the `…` convention."""
    parts = []
    for line in expected:
        if line.strip() == ELIDED:
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(map(re.escape, line.split(ELIDED))) + r"\n")
    return re.compile("".join(parts))


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder that reads like the repository root and takes whatever commands write."""
    for name in ("protocol", "tests"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    # Tables as a terminal of the usual width draws them, in plain text.
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("PROTOCODE_DEBUG", raising=False)
    return tmp_path


def run(command: Command, monkeypatch: pytest.MonkeyPatch) -> str:
    """What the command prints, stdout and stderr in the order written."""
    terminal = io.StringIO()
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", terminal)
        if command.stdout_to is None:
            patch.setattr(sys, "stdout", terminal)
            main(list(command.argv))
        else:
            with open(command.stdout_to, "w", encoding="utf-8") as file:
                patch.setattr(sys, "stdout", file)
                main(list(command.argv))
    lines = [line.rstrip() for line in terminal.getvalue().splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "".join(line + "\n" for line in lines)


BLOCKS = console_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_console_blocks() -> None:
    assert len(BLOCKS) >= 5
    assert all(block.commands for block in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
def test_readme_console_block(block: Block, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for command in block.commands:
        actual = run(command, monkeypatch)
        if pattern(command.expected).fullmatch(actual) is None:
            pytest.fail(mismatch(command, actual))


def mismatch(command: Command, actual: str) -> str:
    """Where the output departs from the README: its first line no output can follow."""
    head = f"README.md:{command.line}: $ protocode {' '.join(command.argv)}"
    for count in range(1, len(command.expected) + 1):
        if pattern(command.expected[:count]).match(actual) is None:
            line = command.line + count
            return f"{head}\nREADME.md:{line} is not what it prints:\n{actual}"
    return f"{head}\nit prints more than the README shows:\n{actual}"


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        (("a", "…", "d"), "a\nb\nc\nd\n", True),
        (("a", "…", "d"), "a\nd\n", True),
        (("a", "  …", "d"), "a\nb\nd\n", True),
        (("a … c",), "a b c\n", True),
        (("a … c",), "a b\nc\n", False),
        (("a", "d"), "a\nb\nd\n", False),
        ((), "", True),
        ((), "anything\n", False),
        (("x (1) [y]",), "x (1) [y]\n", True),
    ],
)
def test_the_elision_convention(expected: tuple[str, ...], actual: str, matches: bool) -> None:
    assert (pattern(expected).fullmatch(actual) is not None) == matches


def test_commands_are_parsed_like_a_shell() -> None:
    [block] = console_blocks(
        "```console\n"
        "$ protocode schema 'a b' > out.json   # a comment\n"
        "\n"
        "$ protocode check x\n"
        "ok x\n"
        "\n"
        "```\n"
    )
    first, second = block.commands
    assert (first.argv, first.stdout_to, first.expected) == (("schema", "a b"), "out.json", ())
    assert (second.argv, second.stdout_to, second.expected) == (("check", "x"), None, ("ok x",))
