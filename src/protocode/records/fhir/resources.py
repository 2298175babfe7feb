"""Each FHIR resource validated on its own against the ``fhir.resources`` R4B models.

One malformed resource does not spoil the rest: it becomes a `Bad` carrying its problems,
and the patient it names (when it can be told) gets them as its record's errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from protocode.core.jsontext import MAX_DEPTH, too_deep
from protocode.records.fhir.files import Raw, Unreadable

_MAX_PROBLEMS: Final = 10  # validation problems shown per resource
_PATIENT_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR's id type


@dataclass(frozen=True, slots=True)
class Resource:
    """A valid resource: its model object (untyped here), type, id and place."""

    where: str
    type: str
    id: str | None
    model: Any
    full_url: str | None

    @property
    def label(self) -> str:
        """``Type/id``, or the type and its place when it has no id."""
        return f"{self.type}/{self.id}" if self.id else f"{self.type} at {self.where}"


@dataclass(frozen=True, slots=True)
class Bad:
    """A resource that could not be validated: its problems as (field, message).

    `patient_id` is the id of a Patient resource that is itself bad: its patient is still
    known by that id, so its result and its other resources stay together.
    """

    where: str
    label: str
    problems: tuple[tuple[str, str], ...]
    patient_ref: str | None
    patient_id: str | None = None


def element_path(where: str, path: str) -> str:
    """The path of an element inside the resource at `where`."""
    return f"{where}.{path}" if path else where


def _loc(loc: Iterable[object]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("", "resource_type"):
            out += f".{part}" if out else str(part)
        elif part == "resource_type":
            out += ".resourceType" if out else "resourceType"
    return out


def validate(raw: Raw) -> Resource | Bad:
    """The resource checked against its R4B model, or its problems."""
    data = raw.data
    if isinstance(data, Unreadable):
        return Bad(raw.where, f"line {raw.where}", (("", data.message),), None)
    if not isinstance(data, dict):
        message = "no resource" if data is None else "a resource must be a JSON object"
        return Bad(raw.where, raw.where, (("", message),), None)
    rtype = data.get("resourceType")
    ref = _raw_subject(data)
    if not isinstance(rtype, str):
        # Shown by its place only: str() of a resource built in Python may even raise.
        message = "missing resourceType" if rtype is None else "resourceType is not a string"
        return Bad(raw.where, raw.where, (("resourceType", message),), ref)
    rid = data.get("id") if isinstance(data.get("id"), str) else None
    label = f"{rtype}/{rid}" if rid else f"{rtype} at {raw.where}"
    own = rid if rtype == "Patient" and rid and _PATIENT_ID.fullmatch(rid) else None
    deep = too_deep(data)
    if deep is not None:
        message = f"nested deeper than {MAX_DEPTH} levels: not read"
        return Bad(raw.where, label, ((deep, message),), ref, own)
    # fhir.resources (pydantic models of every resource type) takes about half a second to
    # import: only FHIR input pays it, not every command that reads plain records.
    from fhir.resources.R4B import get_fhir_model_class  # noqa: PLC0415

    try:
        cls = get_fhir_model_class(rtype)
    except (ValueError, KeyError):
        message = f"'{rtype}' is not a FHIR R4 resource type"
        return Bad(raw.where, label, (("resourceType", message),), ref)
    try:
        model = cls.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError, or a validator's own error
        errors = getattr(exc, "errors", None)
        found: list[tuple[str, str]] = []
        if callable(errors):
            for e in errors()[:_MAX_PROBLEMS]:
                message = " ".join(str(e.get("msg", "invalid")).split())
                found.append((_loc(e.get("loc", ())), message))
        return Bad(raw.where, label, tuple(found) or (("", str(exc)),), ref, own)
    return Resource(raw.where, rtype, rid, model, raw.full_url)


def _raw_subject(data: Mapping[str, Any]) -> str | None:
    for key in ("subject", "individual", "patient"):
        value = data.get(key)
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            ref: str = value["reference"]
            return ref
    return None
