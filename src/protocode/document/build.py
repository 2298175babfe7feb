"""The protocol model built from a file's plain values, once they passed every check.

Each section's entries become the frozen dataclasses of `protocode.document.model`, every
name and rule text keeping its place in the file: rule strings keep the file offset of every
character, so later stages can point into quoted, escaped and block scalars.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from yaml.nodes import ScalarNode

from protocode.document.consistency import QUANTITY
from protocode.document.model import (
    CRITERION_KINDS,
    Aggregate,
    Change,
    Criterion,
    CriterionKind,
    DataItem,
    Definition,
    DerivedClause,
    DerivedEvent,
    Endpoint,
    GradingTable,
    ItemKind,
    Metadata,
    Name,
    Phase,
    ProportionEndpoint,
    ProtocolDoc,
    Quantity,
    RuleText,
    Schedule,
    TableInput,
    TableRow,
    ValueType,
    change_target,
)
from protocode.document.plain import PlainTree
from protocode.document.yamlsource import scalar_offsets


def build_protocol(tree: PlainTree) -> ProtocolDoc:
    """The `ProtocolDoc` of a file whose plain values passed every check."""
    doc: dict[str, Any] = tree.value
    criteria = doc["criteria"]
    return ProtocolDoc(
        source=tree.source,
        metadata=_metadata(tree, doc["protocol"]),
        data=tuple(_data_item(tree, name, item) for name, item in doc["data"].items()),
        definitions=tuple(
            _definition(tree, name, value) for name, value in doc.get("definitions", {}).items()
        ),
        criteria=tuple(
            _criterion(tree, kind, index, criterion)
            for kind in CRITERION_KINDS
            for index, criterion in enumerate(criteria.get(kind, []))
        ),
        dosing=tuple(
            _schedule(tree, index, schedule) for index, schedule in enumerate(doc.get("dosing", ()))
        ),
        phases=tuple(
            _phase(tree, index, phase) for index, phase in enumerate(doc.get("phases", ()))
        ),
        endpoints=tuple(
            _endpoint(tree, index, endpoint)
            for index, endpoint in enumerate(doc.get("endpoints", ()))
        ),
        derived_events=tuple(
            _derived_event(tree, index, event)
            for index, event in enumerate(doc.get("derived_events", ()))
        ),
        grading=tuple(
            _grading_table(tree, index, table) for index, table in enumerate(doc.get("grading", ()))
        ),
    )


def _derived_event(tree: PlainTree, index: int, event: dict[str, Any]) -> DerivedEvent:
    path = ("derived_events", index)
    return DerivedEvent(
        id=event["id"],
        span=tree.value_span((*path, "id")),
        when=tuple(
            _derived_clause(tree, (*path, "when", i), clause)
            for i, clause in enumerate(event["when"])
        ),
        description=event.get("description", ""),
    )


def _derived_clause(
    tree: PlainTree, path: tuple[str | int, ...], clause: dict[str, Any]
) -> DerivedClause:
    if "grade" in clause:
        return DerivedClause(
            Name(clause["grade"], tree.value_span((*path, "grade"))),
            at_least=_rule_text(tree, (*path, "at_least")),
        )
    return DerivedClause(
        Name(clause["item"], tree.value_span((*path, "item"))),
        _rule_text(tree, (*path, "condition")) if "condition" in clause else None,
    )


def _names(tree: PlainTree, path: tuple[str | int, ...], names: list[str]) -> tuple[Name, ...]:
    return tuple(Name(name, tree.value_span((*path, i))) for i, name in enumerate(names))


def _endpoint(
    tree: PlainTree, index: int, endpoint: dict[str, Any]
) -> Endpoint | ProportionEndpoint:
    path = ("endpoints", index)

    def names(key: str) -> tuple[Name, ...]:
        return _names(tree, (*path, key), endpoint.get(key, []))

    if endpoint["kind"] == "proportion":
        return ProportionEndpoint(
            id=endpoint["id"],
            name=endpoint["name"],
            span=tree.value_span((*path, "id")),
            origin=_rule_text(tree, (*path, "origin")),
            horizon=_rule_text(tree, (*path, "horizon")),
            window=_rule_text(tree, (*path, "window")),
            assessment=Name(endpoint["assessment"], tree.value_span((*path, "assessment"))),
            response=_rule_text(tree, (*path, "response")),
            failure=names("failure"),
            description=endpoint.get("description", ""),
        )
    death = endpoint.get("death")
    return Endpoint(
        id=endpoint["id"],
        name=endpoint["name"],
        span=tree.value_span((*path, "id")),
        origin=_rule_text(tree, (*path, "origin")),
        events=names("events"),
        censor=_rule_text(tree, (*path, "censor")),
        horizon=_rule_text(tree, (*path, "horizon")),
        competing=names("competing"),
        death=None if death is None else Name(death, tree.value_span((*path, "death"))),
        description=endpoint.get("description", ""),
    )


def _grading_table(tree: PlainTree, index: int, table: dict[str, Any]) -> GradingTable:
    path = ("grading", index)
    inputs: list[TableInput] = []
    for column, source in table["inputs"].items():
        at = (*path, "inputs", column)
        name = Name(column, tree.key_span(at))
        if isinstance(source, str):
            inputs.append(TableInput(name, (Name(source, tree.value_span(at)),)))
            continue
        aggregate: Aggregate = "max" if "max" in source else "min" if "min" in source else "count"
        inputs.append(
            TableInput(
                name,
                _names(tree, (*at, aggregate), source[aggregate]),
                aggregate,
                _rule_text(tree, (*at, "where")) if "where" in source else None,
            )
        )
    rows: list[TableRow] = []
    for i, row in enumerate(table["rules"]):
        at = (*path, "rules", i)
        cells = tuple(
            (Name(column, tree.key_span((*at, column))), _rule_text(tree, (*at, column)))
            for column, cell in row.items()
            if column != "grade" and cell != "-"
        )
        rows.append(TableRow(cells, _rule_text(tree, (*at, "grade")), tree.value_span(at)))
    return GradingTable(
        id=table["id"],
        name=table["name"],
        span=tree.value_span((*path, "id")),
        hit=table.get("hit", "first"),
        inputs=tuple(inputs),
        grades=tuple(_rule_text(tree, (*path, "grades", i)) for i in range(len(table["grades"]))),
        rows=tuple(rows),
        description=table.get("description", ""),
    )


def _phase(tree: PlainTree, index: int, phase: dict[str, Any]) -> Phase:
    path = ("phases", index)
    return Phase(
        id=phase["id"],
        span=tree.value_span((*path, "id")),
        start=_rule_text(tree, (*path, "start")),
        end=_rule_text(tree, (*path, "end")) if "end" in phase else None,
        description=phase.get("description", ""),
    )


def _raw(tree: PlainTree, path: Sequence[str | int]) -> str:
    """The text of the scalar at `path`, exactly as written (after unquoting)."""
    text: str = tree.locate(path)[1].value
    return text


def _rule_text(tree: PlainTree, path: Sequence[str | int]) -> RuleText:
    node = tree.locate(path)[1]
    assert isinstance(node, ScalarNode), "the schema makes rules and quantities strings"
    return RuleText(node.value, tree.source, scalar_offsets(tree.source.text, node))


def _quantity(tree: PlainTree, path: Sequence[str | int]) -> Quantity:
    text = _rule_text(tree, path)
    match = QUANTITY.fullmatch(text.text)
    assert match is not None, "quantities were checked before building"
    return Quantity(match[1], match[2], text.span(match.start(2), match.end(2)))


def _metadata(tree: PlainTree, meta: dict[str, Any]) -> Metadata:
    path = ("protocol",)
    return Metadata(
        registry_id=meta["registry_id"],
        title=meta["title"],
        version=_raw(tree, (*path, "version")),
        span=tree.key_span(path),
        phase=_raw(tree, (*path, "phase")) if "phase" in meta else "",
        sponsor=meta.get("sponsor", ""),
        effective_date=meta.get("effective_date", ""),
        amends=None if meta.get("amends") is None else _raw(tree, (*path, "amends")),
        changelog=tuple(meta.get("changelog", ())),
        illustrative=meta.get("illustrative", False),
        changes=tuple(
            _change(tree, index, change) for index, change in enumerate(meta.get("changes", ()))
        ),
        registry_id_span=tree.value_span((*path, "registry_id")),
        version_span=tree.value_span((*path, "version")),
        amends_span=tree.value_span((*path, "amends")) if "amends" in meta else None,
    )


def _change(tree: PlainTree, index: int, change: dict[str, Any]) -> Change:
    kind, target = change_target(change["target"])
    return Change(
        target_kind=kind,
        target=target,
        intent=change["intent"],
        rationale=change["rationale"],
        span=tree.value_span(("protocol", "changes", index, "target")),
    )


def _data_item(tree: PlainTree, name: str, item: dict[str, Any]) -> DataItem:
    path = ("data", name)
    kind: ItemKind = item.get("kind", "fact")
    unit = _raw(tree, (*path, "unit")) if "unit" in item else None
    value_type: ValueType = item.get("type") or _default_type(kind, unit is not None)
    return DataItem(
        name=name,
        kind=kind,
        type=value_type,
        span=tree.key_span(path),
        description=item.get("description", ""),
        unit=unit,
        values=tuple(
            _raw(tree, (*path, "values", index)) for index in range(len(item.get("values", ())))
        ),
        minimum=_raw(tree, (*path, "minimum")) if "minimum" in item else None,
        maximum=_raw(tree, (*path, "maximum")) if "maximum" in item else None,
        uln=_quantity(tree, (*path, "uln")) if "uln" in item else None,
        lln=_quantity(tree, (*path, "lln")) if "lln" in item else None,
        molar_mass=_quantity(tree, (*path, "molar_mass")) if "molar_mass" in item else None,
        codes=tuple(
            (system, _raw(tree, (*path, "codes", system))) for system in item.get("codes", {})
        ),
    )


def _definition(tree: PlainTree, name: str, value: str | dict[str, Any]) -> Definition:
    path = ("definitions", name)
    span = tree.key_span(path)
    if isinstance(value, str):
        return Definition(name, _rule_text(tree, path), span)
    has_unit = "unit" in value
    return Definition(
        name,
        _rule_text(tree, (*path, "rule")),
        span,
        description=value.get("description", ""),
        unit=_raw(tree, (*path, "unit")) if has_unit else None,
        unit_span=tree.value_span((*path, "unit")) if has_unit else None,
    )


def _criterion(
    tree: PlainTree, kind: CriterionKind, index: int, criterion: dict[str, Any]
) -> Criterion:
    path = ("criteria", kind, index)
    return Criterion(
        id=criterion["id"],
        kind=kind,
        text=criterion["text"],
        span=tree.value_span((*path, "id")),
        rule=_rule_text(tree, (*path, "rule")) if "rule" in criterion else None,
        attestation=criterion.get("attestation"),
        note=criterion.get("note", ""),
        draft=criterion.get("draft", False),
    )


def _schedule(tree: PlainTree, index: int, schedule: dict[str, Any]) -> Schedule:
    path = ("dosing", index)
    tolerance = schedule.get("tolerance", {})

    def text(*keys: str) -> RuleText | None:
        present = schedule if len(keys) == 1 else tolerance
        return _rule_text(tree, (*path, *keys)) if keys[-1] in present else None

    def name(key: str) -> Name | None:
        if key not in schedule:
            return None
        return Name(schedule[key], tree.value_span((*path, key)))

    dose, start = text("dose"), text("start")
    assert dose is not None and start is not None, "the schema requires dose and start"
    return Schedule(
        id=schedule["id"],
        arm=schedule["arm"],
        drug=schedule["drug"],
        span=tree.value_span((*path, "id")),
        dose=dose,
        route=schedule["route"],
        frequency=schedule["frequency"],
        frequency_span=tree.value_span((*path, "frequency")),
        start=start,
        per=schedule.get("per"),
        codes=tuple(
            (system, _raw(tree, (*path, "codes", system))) for system in schedule.get("codes", {})
        ),
        doses=schedule.get("doses"),
        duration=text("duration"),
        ends_before=name("ends_before"),
        starts_after=name("starts_after"),
        dose_tolerance=text("tolerance", "dose"),
        time_tolerance=text("tolerance", "time"),
        holds=schedule.get("holds", 0),
        doses_span=tree.value_span((*path, "doses")) if "doses" in schedule else None,
    )


def _default_type(kind: ItemKind, has_unit: bool) -> ValueType:
    if kind == "anchor":
        return "date"
    if has_unit:
        return "quantity"
    # The schema requires 'type' for facts and observations without a unit, so this is an event.
    return "boolean"
