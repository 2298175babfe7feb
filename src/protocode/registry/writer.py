"""The draft written as a protocol file that loads: criteria ``draft: true``, the rest comments.

Every scalar is written so that it reads back as exactly the text imported.
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
from importlib import resources
from pathlib import Path

import yaml

from protocode.registry.draft import RegistryDraft

_WIDTH = 92  # the longest line the writer aims for (ruff's 100 leaves room for editors)


def draft_yaml(draft: RegistryDraft, schema: str | None = None) -> str:
    """The draft as a protocol file (version 1): it loads, and ``check`` lists its drafts.

    `schema` is the reference written in the ``yaml-language-server`` modeline (a path
    relative to the file, or a URL); None leaves the modeline out.
    """
    out = _Writer()
    if schema is not None:
        out.line(f"# yaml-language-server: $schema={schema}")
        out.line("#")
    out.comment(
        f"{draft.registry_id}, version 1: a DRAFT imported by 'protocode import' from the"
        " trial's ClinicalTrials.gov record. Every criterion is 'draft: true' and has no"
        " rule yet: give it a rule (or an attestation), then remove the flag; 'protocode"
        " check' lists the criteria still to do. The registry's arms, interventions and"
        " outcome measures are comments at the end, for writing 'dosing' and 'endpoints'"
        " (docs/import.md).",
        0,
    )
    out.line("protocode: 1")
    out.line("")
    out.line("protocol:")
    out.field("registry_id", draft.registry_id, 2)
    out.field("title", draft.title, 2)
    out.field("version", "1", 2)
    if draft.phase:
        out.field("phase", draft.phase, 2)
    if draft.sponsor:
        out.field("sponsor", draft.sponsor, 2)
    out.line("  changelog:")
    out.field("-", f"Draft imported from the ClinicalTrials.gov record {draft.registry_id}.", 4)
    facts = _facts(draft)
    if facts:
        out.line("")
        out.comment("From the registry record (protocode does not read these lines):", 0)
        for label, value in facts:
            out.comment(f"{label}: {value}", 2, hang=2)
    out.line("")
    out.comment("---- data dictionary: every item a rule reads (docs/language.md).", 0)
    out.line("data: {}")
    out.line("")
    out.line("criteria:")
    for kind in ("inclusion", "exclusion"):
        criteria = [c for c in draft.criteria if c.kind == kind]
        if not criteria:
            if kind == "inclusion":
                out.line("  inclusion: []")
            continue
        out.line(f"  {kind}:")
        for c in criteria:
            out.line(f"    - id: {c.id}")
            out.field("text", c.text, 6)
            if c.heading:
                out.field("note", f"Listed in the registry under: {c.heading}", 6)
            out.line("      draft: true")
    if draft.arms or draft.interventions:
        out.line("")
        out.comment(
            "---- dosing: not written yet (docs/dosing.md). The registry's arms and interventions:",
            0,
        )
        for arm in draft.arms:
            out.comment("", 0)
            out.comment(f"arm: {arm.label}{_kind(arm.type)}", 0)
            if arm.interventions:
                out.comment(f"interventions: {', '.join(arm.interventions)}", 2, hang=2)
            if arm.description:
                out.comment(arm.description, 2)
        for item in draft.interventions:
            out.comment("", 0)
            out.comment(f"intervention: {item.name}{_kind(item.type)}", 0)
            if item.arms:
                out.comment(f"arms: {', '.join(item.arms)}", 2, hang=2)
            if item.description:
                out.comment(item.description, 2)
    if draft.outcomes:
        out.line("")
        out.comment(
            "---- endpoints: not written yet (docs/endpoints.md). The registry's outcome measures:",
            0,
        )
        numbers = {"primary": 0, "secondary": 0, "other": 0}
        for outcome in draft.outcomes:
            numbers[outcome.kind] += 1
            out.comment("", 0)
            out.comment(f"{outcome.kind} outcome {numbers[outcome.kind]}: {outcome.measure}", 0)
            if outcome.time_frame:
                out.comment(f"time frame: {outcome.time_frame}", 2, hang=2)
            if outcome.description:
                out.comment(outcome.description, 2)
    return out.text()


def _kind(type_: str) -> str:
    return f" ({type_})" if type_ else ""


def _facts(draft: RegistryDraft) -> list[tuple[str, str]]:
    ages = ""
    if draft.minimum_age or draft.maximum_age:
        ages = f"{draft.minimum_age or 'no minimum'} to {draft.maximum_age or 'no maximum'}"
    healthy = {None: "", True: "accepted", False: "not accepted"}[draft.healthy_volunteers]
    facts = [
        ("status", draft.status),
        ("study type", draft.study_type),
        ("conditions", "; ".join(draft.conditions)),
        ("enrollment", draft.enrollment),
        ("eligible sex", draft.sex),
        ("eligible ages", ages),
        ("healthy volunteers", healthy),
    ]
    return [(label, value) for label, value in facts if value]


# Characters a YAML stream may not hold even in a comment, and the line breaks YAML knows.
_NOT_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


class _Writer:
    """Lines of YAML; every scalar is checked to read back as the exact text it holds."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def comment(self, text: str, indent: int, hang: int = 0) -> None:
        """`text` as comment lines `indent` deep, wrapped; continuation lines `hang` deeper.

        Each paragraph of `text` is wrapped on its own; empty text is an empty comment line.
        """
        for paragraph in _BREAKS.split(_NOT_PRINTABLE.sub(" ", text)):
            if not paragraph.strip():
                self.lines.append("#")
                continue
            wrapped = textwrap.wrap(
                paragraph,
                width=max(40, _WIDTH - indent - 2),
                initial_indent=" " * indent,
                subsequent_indent=" " * (indent + hang),
                break_long_words=False,
                break_on_hyphens=False,
            )
            self.lines.extend(f"# {part}".rstrip() for part in wrapped)

    def field(self, key: str, value: str, indent: int) -> None:
        """``key: value`` at `indent` (``- value`` for the key ``-``)."""
        head = " " * indent + ("- " if key == "-" else f"{key}: ")
        self.lines.append(head + _scalar(value, indent + 2, len(head)))


def _scalar(value: str, indent: int, column: int) -> str:
    """`value` written after a key at `column`: plain, folded or literal, else quoted.

    `indent` is where the lines of a block scalar start. The first form that reads back
    as exactly `value` wins; the double-quoted form always does.
    """
    candidates = []
    single_line = "\n" not in value
    if single_line and column + len(value) <= _WIDTH:
        candidates.append(value)
    elif single_line:
        wrapped = textwrap.wrap(
            value,
            width=max(40, _WIDTH - indent),
            break_long_words=False,
            break_on_hyphens=False,
        )
        candidates.append(">-\n" + "\n".join(" " * indent + part for part in wrapped))
    else:
        lines = value.split("\n")
        candidates.append("|-\n" + "\n".join((" " * indent + ln).rstrip() for ln in lines))
    quoted = yaml.dump(
        value, Dumper=yaml.SafeDumper, default_style='"', allow_unicode=True, width=sys.maxsize
    )
    candidates.append(quoted.removesuffix("\n").removesuffix("\n..."))
    for candidate in candidates:
        if _reads_back(candidate, value, indent):
            return candidate
    raise AssertionError(f"no YAML form reads back as {value!r}")  # pragma: no cover


def _reads_back(candidate: str, value: str, indent: int) -> bool:
    document = " " * (indent - 2) + "k: " + candidate + "\n"
    try:
        loaded = yaml.safe_load(document)
    except yaml.YAMLError:
        return False
    return isinstance(loaded, dict) and loaded.get("k") == value


def schema_reference(directory: Path) -> str | None:
    """The shipped protocol schema as the modeline of a file in `directory` refers to it.

    A path relative to `directory` (a ``file:`` URI where none exists, e.g. another
    drive); None when the package is not installed as files.
    """
    resource = resources.files("protocode") / "schemas" / "protocol.schema.json"
    schema = Path(str(resource))
    if not schema.is_file():
        return None  # pragma: no cover - a zipped install
    try:
        return Path(os.path.relpath(schema.resolve(), directory.resolve())).as_posix()
    except ValueError:  # pragma: no cover - Windows, another drive
        return schema.resolve().as_uri()
