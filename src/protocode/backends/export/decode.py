"""JSON document → `CheckedProtocol`: the compiled IR read back, ready to compile and screen.

`checked_from_json` validates a document against the compiled schema and rebuilds the typed
IR (`protocode.language.ir` nodes with spans into the original file) and the data
dictionary; `protocode.pipeline.load_json` compiles them with the same backends as
`protocode.load`, so the result screens every record exactly as the exported protocol did.
Rules are not re-parsed or re-checked: the IR is trusted as protocode wrote it, but names,
node kinds and definition cycles are checked, so a hand-edited document fails with a
`LoadError`, not a crash.

Spans need the original text to show their lines. Given `source` (the text of the file the
document was exported from; its SHA-256 must match), spans point into it. Without it, the
reader builds a stand-in text from the document alone: the rule excerpts the document
carries sit at their original offsets, and blank lines fill the rest, so every span keeps
its file, offsets, line and column and still shows its rule text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping
from typing import Any, Literal, NoReturn, cast

from protocode.backends.export.common import FORMAT, VERSION, read_magnitude, read_number
from protocode.backends.export.validate import check_depth, expr_children, validate_json
from protocode.core.errors import Diagnostic, LoadError
from protocode.core.files import MAX_FILE_BYTES
from protocode.core.source import Source, Span
from protocode.document.model import (
    Criterion,
    DataItem,
    Definition,
    Metadata,
    ProtocolDoc,
    Quantity,
    RuleText,
)
from protocode.document.names import name_problem
from protocode.language import ir
from protocode.language.check import MAX_NESTING, CheckedCriterion, CheckedProtocol
from protocode.language.library import FUNCTIONS
from protocode.language.types import BOOL, DATE, TEXT, BoolType, CodeType, DateType, NumType, Type
from protocode.language.units import BASE_DIMENSIONS, Unit

JSON = Mapping[str, Any]


def checked_from_json(
    data: JSON, *, source: str | None = None, validate: bool = True
) -> CheckedProtocol:
    """The `CheckedProtocol` a compiled JSON document describes.

    `source` is the text of the exported file, if at hand (see the module docstring).
    Raises `LoadError` for a document of another format or a newer version, one that does
    not follow the schema (skip that check with `validate=False` only for documents just
    written by `export_json`), or one whose names do not resolve.
    """
    _check_header(data)
    # Every walk below is iterative, but the IR they build is not: the depth comes first.
    check_depth(data)
    if validate:
        validate_json(data)
    _check_names(data)
    return _Reader(data, _source(data, source)).protocol()


def _fail(message: str, pointer: str = "/") -> NoReturn:
    raise LoadError([Diagnostic("compiled-json", message, field=pointer)])


def _check_header(data: Any) -> None:
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        _fail(f"not a compiled protocol: expected an object with format {FORMAT!r}")
    version = data.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        _fail(
            f"compiled format version {version} is newer than this protocode reads "
            f"(version {VERSION}); upgrade protocode",
            "/version",
        )


def _check_names(data: JSON) -> None:
    """Refuse the data item and definition names a protocol file could not declare, by the
    loader's own rule (`name_problem`), and names used twice; every problem, each located by
    its JSON pointer."""
    diagnostics: list[Diagnostic] = []
    items: set[str] = set()
    definitions: set[str] = set()
    for section, noun, names in (
        ("data", "data item", items),
        ("definitions", "definition", definitions),
    ):
        for i, obj in enumerate(data[section]):
            name, pointer = obj["name"], f"/{section}/{i}/name"
            problem = name_problem(name, noun)
            if problem is None and name in names:
                problem = f"{noun} '{name}' is listed twice"
            elif problem is None and section == "definitions" and name in items:
                problem = f"definition '{name}' has the same name as a data item"
            if problem is not None:
                diagnostics.append(Diagnostic("compiled-json", problem, field=pointer))
            names.add(name)
    if diagnostics:
        raise LoadError(diagnostics)


# ---- the source text


def _span_points(data: Any) -> Iterator[tuple[int, int, int]]:
    """Every (offset, line, column) the document's spans state."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            if "start" in node and "end_line" in node:
                yield node["start"], node["line"], node["column"]
                yield node["end"], node["end_line"], node["end_column"]
            stack.extend(list(node.values())[::-1])
        elif isinstance(node, list):
            stack.extend(reversed(node))


def _source(data: JSON, text: str | None) -> Source:
    info = data["source"]
    path = info["file"]
    if text is not None:
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != info["sha256"]:
            _fail(f"the source text given is not the text {path} was exported from", "/source")
        return Source(path, text)
    return Source(path, stand_in_text(data))


def stand_in_text(data: JSON) -> str:
    """A text with the document's rule excerpts at their offsets and every span's line and
    column where the spans say: blanks elsewhere, newlines where lines must start."""
    info = data["source"]
    starts: dict[int, int] = {1: 0}
    # For each line, the lowest offset its newline may sit at (past every known point).
    floor: dict[int, int] = {}

    def note(offset: int, line: int, column: int) -> None:
        # The text is rebuilt from these numbers: bound them by the largest protocol file
        # first (a line number of 10^11 was a loop of 10^11 lines, then a MemoryError).
        if max(offset, line, column) > MAX_FILE_BYTES:
            _fail(
                f"a span lies past {MAX_FILE_BYTES:,} characters, the largest protocol file "
                "protocode reads",
                "/source",
            )
        start = offset - (column - 1)
        if line < 1 or column < 1 or start < 0 or starts.setdefault(line, start) != start:
            _fail(f"spans disagree about where line {line} starts", "/source")
        floor[line] = max(floor.get(line, 0), offset)

    points = list(_span_points({k: v for k, v in data.items() if k != "source"}))
    for offset, line, column in points:
        note(offset, line, column)
    excerpts = info["excerpts"]
    for ex in excerpts:
        pos, line = ex["start"], ex["line"]
        note(pos, line, ex["column"])
        for ch in ex["text"]:
            if ch == "\n":
                note(pos + 1, line + 1, 1)
                line += 1
            else:
                floor[line] = max(floor.get(line, 0), pos + 1)
            pos += 1
    for line in range(2, max(starts) + 1):
        if line not in starts:
            previous = starts[line - 1]
            starts[line] = max(previous, floor.get(line - 1, previous)) + 1
    if info["length"] > MAX_FILE_BYTES:
        _fail(
            f"a source of {info['length']:,} characters is longer than the largest protocol "
            f"file protocode reads ({MAX_FILE_BYTES:,})",
            "/source/length",
        )
    size = max([info["length"], *starts.values(), *(o for o, _, _ in points)])
    size = max([size, *(ex["start"] + len(ex["text"]) for ex in excerpts)])
    chars = [" "] * size
    for line, start in starts.items():
        if line > 1:
            chars[start - 1] = "\n"
    for ex in excerpts:
        chars[ex["start"] : ex["start"] + len(ex["text"])] = ex["text"]
    text = "".join(chars)
    check = Source(info["file"], text)
    for offset, line, column in points:
        if check.position(offset) != (line, column):
            _fail(f"spans disagree about line {line}, column {column}", "/source")
    return text


# ---- the document


class _Reader:
    """Rebuilds model objects and IR from a validated document."""

    def __init__(self, data: JSON, source: Source) -> None:
        self.data = data
        self.source = source
        self.items: dict[str, DataItem] = {}
        self.definition_names = {d["name"] for d in data["definitions"]}

    def span(self, obj: JSON) -> Span:
        return Span(self.source, obj["start"], obj["end"])

    def protocol(self) -> CheckedProtocol:
        data = self.data
        item_types: dict[str, Type] = {}
        for obj in data["data"]:
            item = self.item(obj)
            self.items[item.name] = item
            item_types[item.name] = self.type(obj["value_type"])
        definitions: dict[str, ir.Expr] = {}
        model_definitions = []
        for i, obj in enumerate(data["definitions"]):
            node = self.expr(obj["expr"], f"/definitions/{i}/expr")
            definitions[obj["name"]] = node
            model_definitions.append(
                Definition(
                    obj["name"],
                    self.rule_text(obj["rule"], node),
                    self.span(obj["span"]),
                    obj["description"],
                    obj["unit"],
                )
            )
        _acyclic(definitions)
        # The bound `check` enforces, which every backend relies on; definitions in the
        # order `CheckedProtocol` promises (each after those it uses).
        depths = ir.depths(definitions)
        for i, name in enumerate(definitions):
            _bounded(depths[name], f"definition '{name}'", f"/definitions/{i}/expr")
        definitions = {name: definitions[name] for name in ir.definition_order(definitions)}
        criteria = []
        model_criteria = []
        for i, obj in enumerate(data["criteria"]):
            rule = None if obj["expr"] is None else self.expr(obj["expr"], f"/criteria/{i}/expr")
            if rule is not None:
                _bounded(ir.nesting(rule, depths)[0], "the rule", f"/criteria/{i}/expr")
            if (rule is None) == (obj["attestation"] is None):
                _fail("a criterion has either a rule or an attestation", f"/criteria/{i}")
            span = self.span(obj["span"])
            text = obj["rule"] or ""
            criteria.append(
                CheckedCriterion(
                    obj["id"], obj["kind"], obj["text"], span, rule, obj["attestation"], text
                )
            )
            model_criteria.append(
                Criterion(
                    obj["id"],
                    obj["kind"],
                    obj["text"],
                    span,
                    None if rule is None else self.rule_text(text, rule),
                    obj["attestation"],
                    obj["note"],
                )
            )
        doc = ProtocolDoc(
            self.source,
            self.metadata(data["protocol"]),
            tuple(self.items.values()),
            tuple(model_definitions),
            tuple(model_criteria),
        )
        return CheckedProtocol(
            doc,
            dict(self.items),
            item_types,
            definitions,
            tuple(criteria),
            tuple(data["attestations"]),
        )

    def rule_text(self, text: str, node: ir.Expr) -> RuleText:
        # The exported rule is whitespace-normalised; its characters map onto the rule's
        # span as far as it reaches (for display: the IR, not this text, is what runs).
        start, end = node.span.start, node.span.end
        offsets = tuple(min(start + k, end) for k in range(len(text) + 1))
        return RuleText(text, self.source, offsets)

    def metadata(self, m: JSON) -> Metadata:
        return Metadata(
            m["registry_id"],
            m["title"],
            m["version"],
            self.span(m["span"]),
            phase=m["phase"],
            sponsor=m["sponsor"],
            effective_date=m["effective_date"],
            amends=m["amends"],
            changelog=tuple(m["changelog"]),
            illustrative=m["illustrative"],
        )

    def item(self, obj: JSON) -> DataItem:
        span = self.span(obj["span"])
        unit = obj["unit"]

        def quantity(key: str, in_unit: str) -> Quantity | None:
            value = obj[key]
            return None if value is None else Quantity(value, in_unit, span)

        return DataItem(
            obj["name"],
            obj["kind"],
            obj["type"],
            span,
            description=obj["description"],
            unit=unit,
            values=tuple(obj["values"]),
            minimum=obj["minimum"],
            maximum=obj["maximum"],
            uln=quantity("uln", unit or "1"),
            lln=quantity("lln", unit or "1"),
            molar_mass=quantity("molar_mass", "g/mol"),
            codes=tuple((c["system"], c["code"]) for c in obj["codes"]),
        )

    def type(self, obj: JSON) -> Type:
        match obj["kind"]:
            case "boolean":
                return BOOL
            case "number":
                u = obj["unit"]
                dims = tuple(u["dimension"].get(axis, 0) for axis in BASE_DIMENSIONS)
                return NumType(Unit(u["text"], read_number(u["factor"]), dims))
            case "date":
                return DATE
            case "code":
                return CodeType(tuple(obj["values"]))
            case _:
                return TEXT

    def value(self, raw: Any, type_: Type, pointer: str) -> ir.Value:
        if isinstance(type_, BoolType):
            if not isinstance(raw, bool):
                _fail("expected true or false", pointer)
            return raw
        if not isinstance(raw, str):
            _fail("expected a string", pointer)
        if isinstance(type_, NumType):
            return read_magnitude(raw)
        if isinstance(type_, DateType):
            try:
                return dt.date.fromisoformat(raw)
            except ValueError:
                _fail(f"{raw!r} is not an ISO date", pointer)
        return raw

    def _item_of(self, name: str, kinds: tuple[str, ...], pointer: str) -> None:
        item = self.items.get(name)
        if item is None:
            _fail(f"unknown data item '{name}'", pointer)
        if item.kind not in kinds:
            _fail(f"'{name}' is {item.kind}, expected {' or '.join(kinds)}", pointer)

    def window(
        self, obj: JSON | None, pointer: str, built: Mapping[str, ir.Expr]
    ) -> ir.Window | None:
        if obj is None:
            return None
        return ir.Window(
            obj["kind"],
            built[f"{pointer}/anchor"],
            obj["amount"],
            obj["unit"],
            obj["text"],
            self.span(obj["span"]),
        )

    def expr(self, root: JSON, pointer: str) -> ir.Expr:
        """An IR tree from JSON; `pointer` locates it for errors.

        Built bottom-up from a list of its nodes, not by recursion: the document's nesting
        is bounded (`check_depth`), its rule's nesting only once the IR is built.
        """
        nodes: list[tuple[JSON, str]] = []
        stack = [(root, pointer)]
        while stack:
            obj, at = stack.pop()
            nodes.append((obj, at))
            stack.extend(
                (child, "/".join([at, *map(str, keys)])) for keys, child in expr_children(obj)
            )
        built: dict[str, ir.Expr] = {}
        for obj, at in reversed(nodes):
            built[at] = self.node(obj, at, built)
        return built[pointer]

    def node(self, obj: JSON, pointer: str, built: Mapping[str, ir.Expr]) -> ir.Expr:
        """One IR node from JSON, its sub-expressions found in `built` by their pointers."""
        kind = obj["node"]
        t = self.type(obj["type"])
        span = self.span(obj["span"])

        def sub(key: str) -> ir.Expr:
            return built[f"{pointer}/{key}"]

        match kind:
            case "const":
                return ir.Const(self.value(obj["value"], t, f"{pointer}/value"), t, span)
            case "fact":
                self._item_of(obj["item"], ("anchor", "fact"), f"{pointer}/item")
                return ir.Fact(obj["item"], t, span)
            case "def_ref":
                if obj["name"] not in self.definition_names:
                    _fail(f"unknown definition '{obj['name']}'", f"{pointer}/name")
                return ir.DefRef(obj["name"], t, span)
            case "select":
                self._item_of(obj["item"], ("observation",), f"{pointer}/item")
                window = self.window(obj["window"], f"{pointer}/window", built)
                return ir.Select(obj["item"], obj["earliest"], window, t, span)
            case "events":
                self._item_of(obj["item"], ("event", "observation"), f"{pointer}/item")
                window = self.window(obj["window"], f"{pointer}/window", built)
                return ir.Events(obj["op"], obj["item"], window, t, span)
            case "arith":
                return ir.Arith(obj["op"], sub("left"), sub("right"), t, span)
            case "neg":
                return ir.Neg(sub("operand"), t, span)
            case "scale":
                return ir.Scale(sub("operand"), read_number(obj["factor"]), t, span)
            case "date_shift":
                return ir.DateShift(sub("operand"), obj["amount"], obj["unit"], t, span)
            case "call":
                if obj["func"] not in FUNCTIONS:
                    _fail(f"unknown function '{obj['func']}'", f"{pointer}/func")
                args = tuple(built[f"{pointer}/args/{k}"] for k in range(len(obj["args"])))
                return ir.Call(obj["func"], args, t, span)
            case "compare":
                return ir.Compare(obj["op"], sub("left"), sub("right"), span, t)
            case "ref_compare":
                select = sub("select")
                if not isinstance(select, ir.Select):
                    _fail("a ref_compare selects an observation", f"{pointer}/select")
                default = obj["default"]
                return ir.RefCompare(
                    obj["op"],
                    select,
                    read_number(obj["factor"]),
                    cast(Literal["ULN", "LLN"], obj["limit"]),
                    None if default is None else read_magnitude(default),
                    span,
                    t,
                )
            case "member":
                operand = sub("operand")
                items = frozenset(
                    self.value(v, operand.type, f"{pointer}/items/{k}")
                    for k, v in enumerate(obj["items"])
                )
                return ir.Member(operand, items, obj["negated"], span, t)
            case "is_known":
                return ir.IsKnown(sub("operand"), obj["known"], span, t)
            case "and":
                return ir.And(sub("left"), sub("right"), span, t)
            case "or":
                return ir.Or(sub("left"), sub("right"), span, t)
            case "not":
                return ir.Not(sub("operand"), span, t)
            case "if":
                return ir.If(sub("cond"), sub("then"), sub("else"), t, span)
        _fail(f"unknown node kind {kind!r}", f"{pointer}/node")


def _acyclic(definitions: dict[str, ir.Expr]) -> None:
    """Refuse definitions that use each other in a cycle (evaluation would not end)."""
    cycle = ir.cycle(definitions)
    if cycle is not None:
        _fail(f"definitions form a cycle: {' -> '.join(cycle)}", "/definitions")


def _bounded(depth: int, owner: str, pointer: str) -> None:
    """Refuse a rule nesting deeper than `check` allows (`MAX_NESTING`)."""
    if depth > MAX_NESTING:
        message = (
            f"{owner} nests {depth} levels deep counting the definitions it uses, "
            f"at most {MAX_NESTING}"
        )
        _fail(message, pointer)
