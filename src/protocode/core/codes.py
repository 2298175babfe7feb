"""Every diagnostic code protocode can report, with what it means and what to do about it.

A `Diagnostic`'s code is the stable part of an error: ``check --format json`` consumers and
editors key on it, while messages may be reworded. ``codes.toml`` beside this module declares
each code once, grouped by the stage that reports it; this module reads it. Some codes are
reported by more than one stage (``duplicate-id`` for a protocol file and for records): each
is declared once, under the stage it belongs to first, and its description covers every use.

``tests/test_diagnostics_registry.py`` reads the whole source and fails on a code reported
anywhere but not declared, and on a declared code that nothing reports. ``docs/diagnostics.md``
is generated from the registry (``python -m protocode.core.codes > docs/diagnostics.md``) and
a test keeps the two equal.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Stage:
    """A group of codes: the stage of protocode that reports them."""

    name: str
    title: str
    about: str


@dataclass(frozen=True, slots=True)
class Code:
    """One diagnostic code: its `name` (as in ``Diagnostic.code``), the `stage` it belongs
    to, what it `means` and what the user should `do`."""

    name: str
    stage: str
    means: str
    do: str


def _read() -> tuple[tuple[Stage, ...], tuple[Code, ...]]:
    text = resources.files(__package__).joinpath("codes.toml").read_text(encoding="utf-8")
    stages, codes = [], []
    for stage in tomllib.loads(text)["stage"]:
        stages.append(Stage(stage["name"], stage["title"], stage["about"]))
        for name, code in stage["codes"].items():
            codes.append(Code(name, stage["name"], code["means"], code["do"]))
    return tuple(stages), tuple(codes)


STAGES, CODES = _read()
BY_NAME: dict[str, Code] = {code.name: code for code in CODES}


def markdown() -> str:
    """``docs/diagnostics.md``: every code, grouped by stage, as Markdown."""
    lines = [
        "# Diagnostic codes",
        "",
        "Every error and warning protocode reports has a code (`path:line:col: code: message`;",
        "the `code` field of `--format json`). Codes are stable; messages may be reworded.",
        "This page is generated from `src/protocode/core/codes.toml`",
        "(`python -m protocode.core.codes > docs/diagnostics.md`); a test keeps the two equal.",
        "",
    ]
    for stage in STAGES:
        lines += [f"## {stage.title}", "", stage.about, "", "| code | meaning | what to do |"]
        lines.append("|---|---|---|")
        lines += [
            f"| `{code.name}` | {code.means} | {code.do} |"
            for code in CODES
            if code.stage == stage.name
        ]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown())
