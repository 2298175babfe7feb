"""What a registry record says that a protocol file starts from: the draft and its parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from protocode.document.model import CriterionKind

OutcomeKind = Literal["primary", "secondary", "other"]
"""The list an outcome measure is in."""


@dataclass(frozen=True, slots=True)
class DraftCriterion:
    """One criterion cut from the eligibility text: its id (I1, E3), kind and text.

    `heading` is the sub-heading the registry lists it under (``For women:``), if any.
    """

    id: str
    kind: CriterionKind
    text: str
    heading: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One outcome measure of the record, with its time frame as written."""

    kind: OutcomeKind
    measure: str
    time_frame: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm group of the record; `interventions` as the registry names them."""

    label: str
    type: str = ""
    description: str = ""
    interventions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Intervention:
    """One intervention of the record and the labels of the arms that receive it."""

    name: str
    type: str = ""
    description: str = ""
    arms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RegistryDraft:
    """What a registry record says that a protocol file starts from."""

    registry_id: str
    title: str
    criteria: tuple[DraftCriterion, ...]
    phase: str = ""
    sponsor: str = ""
    status: str = ""
    study_type: str = ""
    conditions: tuple[str, ...] = ()
    enrollment: str = ""
    sex: str = ""
    minimum_age: str = ""
    maximum_age: str = ""
    healthy_volunteers: bool | None = None
    arms: tuple[Arm, ...] = ()
    interventions: tuple[Intervention, ...] = ()
    outcomes: tuple[Outcome, ...] = field(default=())

    @property
    def inclusion(self) -> tuple[DraftCriterion, ...]:
        """The inclusion criteria, in registry order."""
        return tuple(c for c in self.criteria if c.kind == "inclusion")

    @property
    def exclusion(self) -> tuple[DraftCriterion, ...]:
        """The exclusion criteria, in registry order."""
        return tuple(c for c in self.criteria if c.kind == "exclusion")
