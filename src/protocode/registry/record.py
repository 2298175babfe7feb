"""Reading a ClinicalTrials.gov study record (API v2 JSON) into a `RegistryDraft`.

The part of the record the importer reads is validated against the JSON Schema
``schemas/registry-record.schema.json`` (with `document.schema.SchemaValidator`, as protocol
files are), every problem named by its JSON path (``protocolSection.designModule.phases[2]
must be a string, not null``). The registry writes ``null`` for a field it has no value for,
so a null member is read as an absent one. Once the record is valid, its fields are read
without further checks.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import jsonschema
from jsonschema.exceptions import ValidationError

from protocode.core.errors import Diagnostic, LoadError
from protocode.core.files import read_source
from protocode.document.schema import SchemaValidator, shipped_schema
from protocode.registry.draft import (
    Arm,
    DraftCriterion,
    Intervention,
    Outcome,
    OutcomeKind,
    RegistryDraft,
)
from protocode.registry.eligibility import split_eligibility

CODE: Final = "registry"
"""The diagnostic code of every problem of a registry record."""

_PHASES: Final = {
    "EARLY_PHASE1": "early 1",
    "PHASE1": "1",
    "PHASE2": "2",
    "PHASE3": "3",
    "PHASE4": "4",
}
_OUTCOME_LISTS: tuple[tuple[OutcomeKind, str], ...] = (
    ("primary", "primaryOutcomes"),
    ("secondary", "secondaryOutcomes"),
    ("other", "otherOutcomes"),
)
_NOUNS: Final = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
}
# Modules whose fields are required: a module that is not an object lacks them all.
_REQUIRED_IN: Final = {
    "identificationModule": ("nctId", "officialTitle (or briefTitle)"),
    "eligibilityModule": ("eligibilityCriteria",),
}


def read_record(path: Path) -> RegistryDraft:
    """Read the ClinicalTrials.gov API v2 study record (JSON) at `path` into a draft.

    Raises `LoadError`: with the position of a JSON syntax error, or naming every field
    that is missing or of the wrong type.
    """
    source = read_source(path)
    try:
        data = json.loads(source.text)
    except json.JSONDecodeError as exc:
        # At the end of the text, point at its last character rather than past it.
        at = min(exc.pos, max(0, len(source.text.rstrip()) - 1))
        span = source.span(at, min(at + 1, len(source.text)))
        raise LoadError([Diagnostic(CODE, f"not JSON: {exc.msg}", span)]) from None
    return draft_from_record(data, str(path))


def draft_from_record(data: Any, path: str = "<record>") -> RegistryDraft:
    """The draft of a parsed study record: one study object, or a search result of one.

    `path` names the record in error messages.
    """
    study = data
    if isinstance(data, dict) and "studies" in data and "protocolSection" not in data:
        studies = data["studies"]
        if not isinstance(studies, list) or len(studies) != 1:
            count = len(studies) if isinstance(studies, list) else "no"
            _fail(path, [f"'studies' holds {count} studies; import takes exactly one"])
        study = studies[0]
    if not isinstance(study, dict) or not isinstance(study.get("protocolSection"), dict):
        _fail(
            path,
            [
                "not a ClinicalTrials.gov study record: no 'protocolSection' object"
                " (expected the JSON of https://clinicaltrials.gov/api/v2/studies/NCT…)"
            ],
        )
    section = _present(study["protocolSection"])
    for name in _REQUIRED_IN:
        section.setdefault(name, {})
    record = {"protocolSection": section}
    problems = [
        message
        for error in _validator().iter_errors(record)
        for message in _messages(error, record)
    ]
    if problems:
        _fail(path, problems)
    return _draft(section)


def _fail(path: str, problems: Sequence[str]) -> None:
    raise LoadError([Diagnostic(CODE, f"{path}: {message}") for message in problems])


def _present(value: Any) -> Any:
    """`value` with every null member of an object left out, at any depth (list items stay)."""
    if isinstance(value, dict):
        return {k: _present(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_present(v) for v in value]
    return value


def _holds_criteria(
    validator: Any, holds: bool, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    # The one rule of the record no schema keyword says: the text cuts into criteria.
    text = instance.strip() if holds and isinstance(instance, str) else ""
    if text and not split_eligibility(text):
        yield ValidationError("holds no criteria")


@functools.cache
def _validator() -> Any:
    # JSON numbers keep their kind: 5.0 is no integer here, as Python reads it.
    checker = SchemaValidator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    validator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        SchemaValidator, {"holdsCriteria": _holds_criteria}, type_checker=checker
    )
    return validator(shipped_schema("registry-record"))


def _where(path: Sequence[str | int]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def _messages(error: ValidationError, record: dict[str, Any]) -> list[str]:
    """The problems one schema error stands for, worded by the field's JSON path."""
    path = tuple(error.absolute_path)
    where = _where(path)
    keyword = error.validator
    instance: Any = error.instance
    expected: Any = error.validator_value
    if keyword == "required":
        return [f"missing {where}.{key}" for key in expected if key not in instance]
    if keyword == "pattern":
        return [f"{where} is empty"]
    if keyword == "anyOf":
        return [f"missing {where}.officialTitle (or briefTitle)"]
    if keyword == "holdsCriteria":
        return [f"{where} holds no criteria"]
    if path[-1] == "briefTitle":
        official = record["protocolSection"]["identificationModule"].get("officialTitle")
        if isinstance(official, str) and official.strip():
            return []  # the official title is read; the brief one is not
    message = f"{where} must be {_NOUNS[str(expected)]}, not {_noun(instance)}"
    missing = _REQUIRED_IN.get(str(path[-1]), ()) if len(path) == 2 else ()
    return [message, *(f"missing {where}.{key}" for key in missing)]


def _noun(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    for kind, noun in ((str, "a string"), (int, "an integer"), (list, "a list")):
        if isinstance(value, kind):
            return noun
    if isinstance(value, dict):
        return "an object"
    return "a number" if isinstance(value, float) else "null"


def _text(node: dict[str, Any], key: str) -> str:
    value = node.get(key)
    return value.strip() if isinstance(value, str) else ""


def _texts(node: dict[str, Any], key: str) -> tuple[str, ...]:
    return tuple(text for text in (v.strip() for v in node.get(key, ())) if text)


def _draft(section: dict[str, Any]) -> RegistryDraft:
    """The draft of a valid protocol section."""
    ident = section["identificationModule"]
    design = section.get("designModule", {})
    eligibility = section["eligibilityModule"]
    arms_module = section.get("armsInterventionsModule", {})
    outcomes_module = section.get("outcomesModule", {})
    count = design.get("enrollmentInfo", {}).get("count")
    criteria: tuple[DraftCriterion, ...] = split_eligibility(
        _text(eligibility, "eligibilityCriteria")
    )
    return RegistryDraft(
        registry_id=_text(ident, "nctId"),
        title=" ".join((_text(ident, "officialTitle") or _text(ident, "briefTitle")).split()),
        criteria=criteria,
        phase="/".join(_PHASES.get(p, p) for p in _texts(design, "phases") if p != "NA"),
        sponsor=_text(section.get("sponsorCollaboratorsModule", {}).get("leadSponsor", {}), "name"),
        status=_text(section.get("statusModule", {}), "overallStatus"),
        study_type=_text(design, "studyType"),
        conditions=_texts(section.get("conditionsModule", {}), "conditions"),
        enrollment="" if count is None else str(count),
        sex=_text(eligibility, "sex"),
        minimum_age=_text(eligibility, "minimumAge"),
        maximum_age=_text(eligibility, "maximumAge"),
        healthy_volunteers=eligibility.get("healthyVolunteers"),
        arms=tuple(
            Arm(
                label=_text(arm, "label"),
                type=_text(arm, "type"),
                description=_text(arm, "description"),
                interventions=_texts(arm, "interventionNames"),
            )
            for arm in arms_module.get("armGroups", ())
        ),
        interventions=tuple(
            Intervention(
                name=_text(item, "name"),
                type=_text(item, "type"),
                description=_text(item, "description"),
                arms=_texts(item, "armGroupLabels"),
            )
            for item in arms_module.get("interventions", ())
        ),
        outcomes=tuple(
            Outcome(
                kind=kind,
                measure=_text(item, "measure"),
                time_frame=_text(item, "timeFrame"),
                description=_text(item, "description"),
            )
            for kind, key in _OUTCOME_LISTS
            for item in outcomes_module.get(key, ())
        ),
    )
