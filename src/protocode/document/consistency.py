"""What the protocol file's JSON Schema cannot say, checked on its plain values.

Unique ids in every list section, names that are identifiers and not taken twice, a rule or
an attestation on every criterion, the declared changes of an amendment, quantity strings
and plain decimal bounds of data items, and a dose count or duration on every schedule. Each
check runs only where the schema's shape holds, so a malformed section is reported once, by
the schema.
"""

from __future__ import annotations

import re
from typing import Any

from protocode.core.exact import too_long
from protocode.core.source import Span
from protocode.document.model import CRITERION_KINDS, ChangeTargetKind, change_target
from protocode.document.names import name_problem
from protocode.document.plain import PlainTree

NAMED_SECTIONS = {"data": "data item", "definitions": "definition"}
"""Sections whose keys are names chosen by the author, and what one entry is called."""

_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
QUANTITY = re.compile(r"(-?[0-9]+(?:\.[0-9]+)?) +(\S+)")
"""A quantity string of a data item (``40 U/L``): a decimal, spaces, and a unit."""

_QUANTITY_FIELDS = ("uln", "lln", "molar_mass")
# Intents that compare eligible sets, which only a criterion decides.
_SET_INTENTS = frozenset({"relaxed", "tightened"})


def check_consistency(tree: PlainTree) -> None:
    """Check names, criterion ids and rules, and quantity strings, where well-formed.

    Problems are added to `tree.diagnostics`.
    """
    doc = tree.value
    if not isinstance(doc, dict):
        return
    checks = _Checks(tree)
    checks.names(doc)
    checks.criteria(doc.get("criteria"))
    if isinstance(doc.get("protocol"), dict):
        checks.changes(doc["protocol"])
    if isinstance(doc.get("data"), dict):
        for name, item in doc["data"].items():
            if isinstance(item, dict):
                checks.item(("data", name), item)
    if isinstance(doc.get("dosing"), list):
        checks.dosing(doc["dosing"])
    if isinstance(doc.get("phases"), list):
        checks.phases(doc)
    if isinstance(doc.get("endpoints"), list):
        checks.unique_ids("endpoints", doc["endpoints"], "endpoint")
    if isinstance(doc.get("derived_events"), list):
        checks.unique_ids("derived_events", doc["derived_events"], "derived event")
    if isinstance(doc.get("grading"), list):
        checks.unique_ids("grading", doc["grading"], "grading table")


class _Checks:
    """The checks of one file, reporting to its tree."""

    def __init__(self, tree: PlainTree) -> None:
        self.tree = tree
        self.error = tree.error

    def unique_ids(self, section: str, entries: list[Any], noun: str) -> dict[int, Span]:
        """The id span of each entry of a list section that first uses its id.

        A repeated id is reported as `duplicate-id`, pointing back at the first one.
        """
        first_lines: dict[str, int] = {}
        out: dict[int, Span] = {}
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                continue
            entry_id = entry["id"]
            span = self.tree.value_span((section, index, "id"))
            if entry_id in first_lines:
                first = first_lines[entry_id]
                message = f"duplicate {noun} id '{entry_id}' (first used on line {first})"
                self.error("duplicate-id", message, span)
            else:
                first_lines[entry_id] = span.line
                out[index] = span
        return out

    def entry_span(self, path: tuple[str | int, ...], entry: dict[str, Any]) -> Span:
        """Where a problem of a whole list entry points: its id, else its first key."""
        return self.tree.value_span((*path, "id")) if "id" in entry else self.tree.start_span(path)

    def phases(self, doc: dict[str, Any]) -> None:
        """Unique phase ids, none named as a data item or a definition."""
        names: dict[str, tuple[str, int]] = {}
        for section, noun in NAMED_SECTIONS.items():
            if isinstance(doc.get(section), dict):
                for name in doc[section]:
                    if isinstance(name, str) and name not in names:
                        names[name] = (noun, self.tree.key_span((section, name)).line)
        for index, span in self.unique_ids("phases", doc["phases"], "phase").items():
            phase_id = doc["phases"][index]["id"]
            if phase_id in names:
                noun, line = names[phase_id]
                message = f"phase '{phase_id}' has the same name as the {noun} on line {line}"
                self.error("duplicate-name", message, span)

    def dosing(self, schedules: list[Any]) -> None:
        """Unique schedule ids; each schedule gives a dose count or a duration, not both."""
        self.unique_ids("dosing", schedules, "schedule")
        for index, schedule in enumerate(schedules):
            if not isinstance(schedule, dict):
                continue
            path = ("dosing", index)
            schedule_id = schedule.get("id")
            label = f"schedule '{schedule_id}'" if isinstance(schedule_id, str) else "schedule"
            if "doses" in schedule and "duration" in schedule:
                message = f"{label} has both 'doses' and 'duration'; give exactly one"
                self.error("schedule", message, self.tree.key_span((*path, "duration")))
            elif "doses" not in schedule and "duration" not in schedule:
                at = self.entry_span(path, schedule)
                self.error("schedule", f"{label} needs 'doses' or 'duration'", at)

    def names(self, doc: dict[str, Any]) -> None:
        """Names that are identifiers, not reserved words, and not both item and definition."""
        item_lines: dict[str, int] = {}
        for section, noun in NAMED_SECTIONS.items():
            if not isinstance(doc.get(section), dict):
                continue
            for name in doc[section]:
                span = self.tree.key_span((section, name))
                if (problem := name_problem(name, noun)) is not None:
                    self.error("name", problem, span)
                if section == "data":
                    item_lines[name] = span.line
                elif name in item_lines:
                    message = (
                        f"definition '{name}' has the same name as"
                        f" the data item on line {item_lines[name]}"
                    )
                    self.error("duplicate-name", message, span)

    def criteria(self, criteria: Any) -> None:
        """Criterion ids unique across both kinds, each with a rule or an attestation."""
        if not isinstance(criteria, dict):
            return
        first_lines: dict[str, int] = {}
        for kind in CRITERION_KINDS:
            if not isinstance(criteria.get(kind), list):
                continue
            for index, criterion in enumerate(criteria[kind]):
                if not isinstance(criterion, dict):
                    continue
                path = ("criteria", kind, index)
                criterion_id = criterion.get("id")
                label = "criterion"
                if isinstance(criterion_id, str):
                    label = f"criterion '{criterion_id}'"
                    span = self.tree.value_span((*path, "id"))
                    if criterion_id in first_lines:
                        first = first_lines[criterion_id]
                        message = (
                            f"duplicate criterion id '{criterion_id}' (first used on line {first})"
                        )
                        self.error("duplicate-id", message, span)
                    else:
                        first_lines[criterion_id] = span.line
                self.rule_or_attestation(path, criterion, label)

    def rule_or_attestation(
        self, path: tuple[str | int, ...], criterion: dict[str, Any], label: str
    ) -> None:
        """Exactly one of 'rule' and 'attestation', except that a draft may have neither."""
        if "rule" in criterion and "attestation" in criterion:
            later = max(
                self.tree.key_span((*path, "rule")),
                self.tree.key_span((*path, "attestation")),
                key=lambda s: s.start,
            )
            message = f"{label} has both 'rule' and 'attestation'; give exactly one"
            self.error("criterion-rule", message, later)
        elif (
            "rule" not in criterion
            and "attestation" not in criterion
            and criterion.get("draft") is not True
        ):
            # A draft may have neither yet; the checker reports every draft.
            at = self.entry_span(path, criterion)
            self.error("criterion-rule", f"{label} needs a 'rule' or an 'attestation'", at)

    def changes(self, meta: dict[str, Any]) -> None:
        """Declared changes only in an amendment, each target once, set intents on criteria."""
        changes = meta.get("changes")
        if not isinstance(changes, list):
            return
        if changes and meta.get("amends") is None:
            message = (
                "'changes' declares what an amendment changes, but this version amends nothing"
            )
            self.error("change", message, self.tree.key_span(("protocol", "changes")))
        first_lines: dict[tuple[ChangeTargetKind, str], int] = {}
        for index, change in enumerate(changes):
            if not isinstance(change, dict) or not isinstance(change.get("target"), str):
                continue
            path = ("protocol", "changes", index)
            target = change["target"]
            key = change_target(target)
            span = self.tree.value_span((*path, "target"))
            if key in first_lines:
                first = first_lines[key]
                message = f"duplicate change target '{target}' (first declared on line {first})"
                self.error("duplicate-change", message, span)
            else:
                first_lines[key] = span.line
            # The schema reports an intent that is not one of the words (a list, a number).
            intent = change.get("intent")
            if key[0] != "criterion" and isinstance(intent, str) and intent in _SET_INTENTS:
                message = (
                    "relaxed/tightened apply to criteria; a definition change is editorial"
                    " or is declared on the criteria it affects"
                )
                self.error("change-intent", message, self.tree.value_span((*path, "intent")))

    def item(self, path: tuple[str, str], item: dict[str, Any]) -> None:
        """A data item's quantity strings, and bounds written as plain decimals."""
        for field in _QUANTITY_FIELDS:
            text = item.get(field)
            if not isinstance(text, str):
                continue
            match = QUANTITY.fullmatch(text)
            if match is None:
                message = f"'{field}' must be a decimal and a unit, like '40 U/L', not {text!r}"
                self.error("quantity", message, self.tree.value_span((*path, field)))
            elif (problem := too_long(match[1])) is not None:
                self.error("number", problem, self.tree.value_span((*path, field)))
            elif field == "molar_mass" and match[2] != "g/mol":
                message = f"'molar_mass' must be in g/mol, not {match[2]}"
                self.error("quantity", message, self.tree.value_span((*path, field)))
        for field in ("minimum", "maximum"):
            value = item.get(field)
            # Bounds are kept as written for exact decimal arithmetic downstream, so YAML's
            # other number spellings (0x1F, 1_000, .inf, 1:30) are refused here.
            if isinstance(value, int | float) and not isinstance(value, bool):
                _, node = self.tree.locate((*path, field))
                if not _DECIMAL.fullmatch(node.value):
                    message = (
                        f"'{field}' must be a plain decimal like 20 or 0.5, not {node.value!r}"
                    )
                    self.error("schema", message, self.tree.span(node))
