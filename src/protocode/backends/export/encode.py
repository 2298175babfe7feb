"""Checked protocol → JSON document: the typed IR as plain JSON, for tools in any language.

The document is described in ``docs/compiled-json.md`` and by the JSON Schema
``protocode/schemas/compiled.schema.json``. Every IR node becomes an object whose ``node``
key names its kind; every node keeps its result type and its source span. Numbers are exact
strings (see `protocode.backends.export.common`), dates ISO strings, and units are already resolved:
a ``scale`` node carries the exact factor, so a consumer only multiplies.
"""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, TextIO

from protocode.backends.export.common import FORMAT, VERSION, exact_number
from protocode.core.source import Source, Span
from protocode.document.model import DataItem, Metadata, Quantity
from protocode.language import ir
from protocode.language.check import CheckedCriterion, CheckedProtocol
from protocode.language.types import BoolType, CodeType, DateType, NumType, TextType, Type
from protocode.language.units import BASE_DIMENSIONS, Unit, conversion_factor, parse_unit

JSON = dict[str, Any]


class HasChecked(Protocol):
    """Anything that holds a checked protocol, such as a compiled `protocode.Protocol`."""

    @property
    def checked(self) -> CheckedProtocol:
        """The checked protocol."""
        ...


def export_json(protocol: HasChecked | CheckedProtocol) -> JSON:
    """The compiled protocol as a JSON-ready dict (format ``protocode-compiled``, version 1).

    `protocol` is a checked protocol or anything holding one as ``.checked`` (a `Protocol`).
    """
    checked = protocol if isinstance(protocol, CheckedProtocol) else protocol.checked
    doc = checked.doc
    roots = [*checked.definitions.values(), *(c.rule for c in checked.criteria if c.rule)]
    text = doc.source.text
    notes = {c.id: c.note for c in doc.criteria}
    return {
        "format": FORMAT,
        "version": VERSION,
        "protocol": _metadata(doc.metadata),
        "source": {
            "file": doc.source.path,
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "length": len(text),
            "excerpts": _excerpts(doc.source, roots),
        },
        "data": [_item(item, checked.item_types[item.name]) for item in doc.data],
        "definitions": [
            _definition(checked, name, node) for name, node in checked.definitions.items()
        ],
        "criteria": [_criterion(c, notes.get(c.id, "")) for c in checked.criteria],
        "attestations": list(checked.attestations),
    }


def write_json(
    protocol: HasChecked | CheckedProtocol, out: TextIO | str | Path, *, indent: int | None = 2
) -> None:
    """Write `export_json(protocol)` to a text stream or a file (UTF-8, newline-terminated)."""
    text = json.dumps(export_json(protocol), indent=indent, ensure_ascii=False) + "\n"
    if isinstance(out, str | Path):
        Path(out).write_text(text, encoding="utf-8")
    else:
        out.write(text)


# ---- pieces


def span_json(span: Span) -> JSON:
    """A source span: file, 1-based line/column of both ends, 0-based character offsets."""
    end_line, end_column = span.end_position
    return {
        "file": span.source.path,
        "line": span.line,
        "column": span.col,
        "end_line": end_line,
        "end_column": end_column,
        "start": span.start,
        "end": span.end,
    }


def unit_json(unit: Unit) -> JSON:
    """A resolved unit: UCUM text, exact size in coherent base units, dimension exponents."""
    return {
        "text": unit.text,
        "factor": exact_number(unit.factor),
        "dimension": {axis: n for axis, n in zip(BASE_DIMENSIONS, unit.dims, strict=True) if n},
    }


def type_json(type_: Type) -> JSON:
    """A rule-language type."""
    match type_:
        case BoolType():
            return {"kind": "boolean"}
        case NumType(unit=unit):
            return {"kind": "number", "unit": unit_json(unit)}
        case DateType():
            return {"kind": "date"}
        case CodeType(values=values):
            return {"kind": "code", "values": list(values)}
        case TextType():
            return {"kind": "text"}
    raise AssertionError(f"unknown type {type_!r}")  # pragma: no cover


def value_json(value: ir.Value) -> Any:
    """A literal value: JSON boolean, exact-number string, ISO date string or string."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | Fraction):
        return exact_number(value)
    return value.isoformat()


def _sort_key(value: ir.Value) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, value)
    if isinstance(value, int | Fraction):
        return (1, value)
    if isinstance(value, str):
        return (3, value)
    return (2, value)


class _Encoder(ir.Visitor[JSON]):
    """One JSON object per IR node; `node` is the kind, `type` and `span` close every node."""

    def encode(self, node: ir.Expr) -> JSON:
        body = self.visit(node)
        kind = ir.visitor_method(type(node)).rstrip("_")
        return {"node": kind, **body, "type": type_json(node.type), "span": span_json(node.span)}

    def _window(self, w: ir.Window | None) -> JSON | None:
        if w is None:
            return None
        return {
            "kind": w.kind,
            "anchor": self.encode(w.anchor),
            "amount": w.amount,
            "unit": w.unit,
            "text": w.text,
            "span": span_json(w.span),
        }

    def const(self, node: ir.Const) -> JSON:
        return {"value": value_json(node.value)}

    def fact(self, node: ir.Fact) -> JSON:
        return {"item": node.item}

    def def_ref(self, node: ir.DefRef) -> JSON:
        return {"name": node.name}

    def select(self, node: ir.Select) -> JSON:
        return {"item": node.item, "earliest": node.earliest, "window": self._window(node.window)}

    def events(self, node: ir.Events) -> JSON:
        return {"op": node.op, "item": node.item, "window": self._window(node.window)}

    def arith(self, node: ir.Arith) -> JSON:
        return {"op": node.op, "left": self.encode(node.left), "right": self.encode(node.right)}

    def neg(self, node: ir.Neg) -> JSON:
        return {"operand": self.encode(node.operand)}

    def scale(self, node: ir.Scale) -> JSON:
        return {"operand": self.encode(node.operand), "factor": exact_number(node.factor)}

    def date_shift(self, node: ir.DateShift) -> JSON:
        return {"operand": self.encode(node.operand), "amount": node.amount, "unit": node.unit}

    def call(self, node: ir.Call) -> JSON:
        return {"func": node.func, "args": [self.encode(a) for a in node.args]}

    def compare(self, node: ir.Compare) -> JSON:
        return {"op": node.op, "left": self.encode(node.left), "right": self.encode(node.right)}

    def ref_compare(self, node: ir.RefCompare) -> JSON:
        return {
            "op": node.op,
            "select": self.encode(node.select),
            "factor": exact_number(node.factor),
            "limit": node.limit,
            "default": None if node.default is None else exact_number(node.default),
        }

    def member(self, node: ir.Member) -> JSON:
        return {
            "operand": self.encode(node.operand),
            "items": [value_json(v) for v in sorted(node.items, key=_sort_key)],
            "negated": node.negated,
        }

    def is_known(self, node: ir.IsKnown) -> JSON:
        return {"operand": self.encode(node.operand), "known": node.known}

    def and_(self, node: ir.And) -> JSON:
        return {"left": self.encode(node.left), "right": self.encode(node.right)}

    def or_(self, node: ir.Or) -> JSON:
        return {"left": self.encode(node.left), "right": self.encode(node.right)}

    def not_(self, node: ir.Not) -> JSON:
        return {"operand": self.encode(node.operand)}

    def if_(self, node: ir.If) -> JSON:
        return {
            "cond": self.encode(node.cond),
            "then": self.encode(node.then),
            "else": self.encode(node.orelse),
        }


_ENCODER = _Encoder()


def expr_json(node: ir.Expr) -> JSON:
    """One IR expression (and everything below it) as JSON."""
    return _ENCODER.encode(node)


def _metadata(m: Metadata) -> JSON:
    return {
        "registry_id": m.registry_id,
        "title": m.title,
        "version": m.version,
        "phase": m.phase,
        "sponsor": m.sponsor,
        "effective_date": m.effective_date,
        "amends": m.amends,
        "changelog": list(m.changelog),
        "illustrative": m.illustrative,
        "span": span_json(m.span),
    }


def _canonical_unit(text: str | None) -> str | None:
    return None if text is None else parse_unit(text).text


def _in_unit(q: Quantity | None, unit: str) -> str | None:
    """A dictionary quantity converted exactly into `unit`."""
    if q is None:
        return None
    factor = conversion_factor(parse_unit(q.unit), parse_unit(unit))
    return exact_number(Fraction(q.value) * factor)


def _bound(text: str | None) -> str | None:
    return None if text is None else exact_number(Fraction(text))


def _item(item: DataItem, value_type: Type) -> JSON:
    unit = item.unit or "1"
    return {
        "name": item.name,
        "kind": item.kind,
        "type": item.type,
        "description": item.description,
        "unit": _canonical_unit(item.unit),
        "value_type": type_json(value_type),
        "values": list(item.values),
        "minimum": _bound(item.minimum),
        "maximum": _bound(item.maximum),
        "uln": _in_unit(item.uln, unit),
        "lln": _in_unit(item.lln, unit),
        "molar_mass": _in_unit(item.molar_mass, "g/mol"),
        "codes": [{"system": system, "code": code} for system, code in item.codes],
        "span": span_json(item.span),
    }


def _definition(checked: CheckedProtocol, name: str, node: ir.Expr) -> JSON:
    d = next(d for d in checked.doc.definitions if d.name == name)
    return {
        "name": name,
        "description": d.description,
        "unit": _canonical_unit(d.unit),
        "rule": " ".join(d.rule.text.split()),
        "type": type_json(node.type),
        "expr": expr_json(node),
        "span": span_json(d.span),
    }


def _criterion(c: CheckedCriterion, note: str) -> JSON:
    return {
        "id": c.id,
        "kind": c.kind,
        "text": c.text,
        "note": note,
        "rule": c.source if c.rule is not None else None,
        "attestation": c.attestation,
        "expr": expr_json(c.rule) if c.rule is not None else None,
        "span": span_json(c.span),
    }


def _spans(node: ir.Expr) -> list[Span]:
    out = [node.span]
    w = node.window if isinstance(node, ir.Select | ir.Events) else None
    if w is not None:
        out.append(w.span)
    for child in ir.children(node):
        out.extend(_spans(child))
    return out


def _excerpts(source: Source, roots: list[ir.Expr]) -> list[JSON]:
    """The source text under every rule, as merged `[start, end)` slices of the file.

    With them a reader rebuilds a stand-in source whose spans show the rule text (for
    explanations) without shipping the whole file.
    """
    ranges: list[tuple[int, int]] = []
    for root in roots:
        spans = [s for s in _spans(root) if s.source is source]
        if spans:
            ranges.append((min(s.start for s in spans), max(s.end for s in spans)))
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out = []
    for start, end in merged:
        line, column = source.position(start)
        out.append({"start": start, "line": line, "column": column, "text": source.text[start:end]})
    return out
