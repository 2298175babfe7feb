"""Schema validation of compiled documents, without recursion through expressions.

jsonschema validates a ``$ref`` by calling itself, about a dozen Python frames for every
level of an expression, so a rule nested a hundred levels deep (which `check` accepts up
to `MAX_NESTING`) overflowed the interpreter's stack. Here the compiled schema is split
once at its expressions: in a shallow copy every reference to the expression schema only
asks for an object, and the places that held one (``left``, ``args/*``, ``window/anchor``, …) are
listed per node kind. The document is validated shallowly, then each expression node on
its own with an explicit stack, each error at its full JSON pointer. A document nested
deeper than any rule `check` accepts is refused first, with one error.
"""

from __future__ import annotations

import copy
import reprlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, TypeAlias

from jsonschema.exceptions import ValidationError, best_match

from protocode.backends.export.common import compiled_schema
from protocode.core.errors import Diagnostic, LoadError
from protocode.core.jsontext import short_path
from protocode.document.schema import SchemaValidator
from protocode.language.check import MAX_NESTING

MAX_DEPTH: Final = 2 * MAX_NESTING + 16
"""The deepest nesting of lists and objects read. A rule nesting `MAX_NESTING` levels takes
at most two JSON levels per level (a call's ``args`` list, a window around its anchor), and
a few more hold the rule and its leaves' types."""

_MAX_MESSAGE: Final = 200
_EXPR_REF: Final = "#/$defs/expr"

# The keys from an expression node to one of its sub-expressions; "*" is every list item.
Position: TypeAlias = tuple[str, ...]
# A JSON pointer kept as a linked list (parent, key), spelled out only for an error.
_Trail: TypeAlias = "tuple[_Trail, str | int] | None"

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist = 1, 3, 3
_SHORT.maxstring, _SHORT.maxother = 30, 30


@dataclass(frozen=True, slots=True)
class _Shallow:
    """The compiled schema split at expressions (see the module docstring)."""

    document: Any  # validates a document, its expressions left out
    node: Any  # validates one expression node, its sub-expressions left out
    roots: tuple[Position, ...]  # where the document holds expressions
    # Where each node kind holds its sub-expressions, and (under None) where any kind does:
    # the expression schema applies every kind's schema to an object without a `node`.
    children: dict[str | None, tuple[Position, ...]]


def _positions(schema: Any, defs: dict[str, Any], path: Position = ()) -> Iterator[Position]:
    """Where `schema` holds an expression: the keys leading there. Follows references to
    other definitions (never to the expression's own)."""
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if ref == _EXPR_REF:
        yield path
    elif isinstance(ref, str):
        yield from _positions(defs[ref.rsplit("/", 1)[1]], defs, path)
    for name, sub in schema.get("properties", {}).items():
        yield from _positions(sub, defs, (*path, name))
    yield from _positions(schema.get("items"), defs, (*path, "*"))
    for keyword in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(keyword, []):
            yield from _positions(branch, defs, path)


def _without_expr_refs(schema: Any) -> Any:
    """A copy of `schema` where every reference to the expression schema only asks for an
    object: what else is wrong with a value there is what the expression schema says (it
    opens with ``"type": "object"``, so its message for a value of another type is this one).
    """
    shallow = copy.deepcopy(schema)
    stack = [shallow]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("$ref") == _EXPR_REF:
                del node["$ref"]
                node["type"] = "object"
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return shallow


@cache
def _shallow() -> _Shallow:
    schema = compiled_schema()
    defs = schema["$defs"]
    shallow = _without_expr_refs({k: v for k, v in schema.items() if k != "$defs"})
    shallow_defs = {
        name: sub if name == "expr" else _without_expr_refs(sub) for name, sub in defs.items()
    }
    shallow["$defs"] = shallow_defs
    node = {"$schema": schema["$schema"], "$defs": shallow_defs, "$ref": _EXPR_REF}
    # Each branch of the expression schema reads: if `node` is K then node_K.
    children: dict[str | None, tuple[Position, ...]] = {
        branch["if"]["properties"]["node"]["const"]: tuple(_positions(branch["then"], defs))
        for branch in defs["expr"]["allOf"]
    }
    children[None] = tuple(dict.fromkeys(p for ps in children.values() for p in ps))
    return _Shallow(
        SchemaValidator(shallow),
        SchemaValidator(node),
        tuple(dict.fromkeys(_positions(schema, defs))),
        children,
    )


def _at(value: Any, position: Position) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """The objects at `position` under `value`, each with its keys; none where a step is
    missing or of the wrong shape, or the value there is not an object (the shallow
    validation reports those)."""
    found: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    for step in position:
        deeper: list[tuple[tuple[str | int, ...], Any]] = []
        for keys, v in found:
            if step == "*" and isinstance(v, list):
                deeper.extend(((*keys, i), item) for i, item in enumerate(v))
            elif isinstance(v, dict) and step in v:
                deeper.append(((*keys, step), v[step]))
        found = deeper
    return ((keys, v) for keys, v in found if isinstance(v, dict))


def expr_children(node: Any) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """The sub-expressions of an expression node, each with the keys leading to it, for
    every node kind whose schema applies to `node` (all of them when ``node`` is missing)."""
    if not isinstance(node, dict):
        return
    kind = node.get("node")
    if kind is None and "node" in node:
        return  # null is no kind: no branch applies
    positions = _shallow().children.get(kind, ()) if isinstance(kind, str | None) else ()
    for position in positions:
        yield from _at(node, position)


def too_deep(data: Any, limit: int = MAX_DEPTH) -> list[str | int] | None:
    """The keys to the first list or object in `data` nested deeper than `limit`, or None.

    Walked with an explicit stack, so any depth is safe.
    """
    stack: list[tuple[Any, int, _Trail]] = [(data, 1, None)]
    while stack:
        value, level, trail = stack.pop()
        if isinstance(value, dict | list):
            if level > limit:
                return _keys(trail)
            items = list(value.items() if isinstance(value, dict) else enumerate(value))
            # Reversed: the first value too deep in document order is found first.
            stack.extend((v, level + 1, (trail, k)) for k, v in reversed(items))
    return None


def _keys(trail: _Trail) -> list[str | int]:
    keys: list[str | int] = []
    while trail is not None:
        trail, key = trail
        keys.append(key)
    return keys[::-1]


def pointer(keys: Any) -> str:
    """The JSON pointer of `keys`, shortened as every field path in a diagnostic is."""
    parts = [str(k).replace("~", "~0").replace("/", "~1") for k in keys]
    return short_path("/" + "/".join(parts)) if parts else "/"


def _message(error: ValidationError) -> str:
    """jsonschema's message with the offending value shortened: it starts with the value's
    whole repr, megabytes for a large subtree."""
    message = error.message
    if len(message) > _MAX_MESSAGE and isinstance(error.instance, dict | list | str):
        whole = repr(error.instance)
        if message.startswith(whole):
            message = _SHORT.repr(error.instance) + message[len(whole) :]
    return message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE] + "…"


def validate_json(data: Any, *, limit: int = 20) -> None:
    """Check a document against the compiled schema; raise `LoadError` listing the problems.

    Each diagnostic names the JSON pointer of the offending value in its `field`. A
    document nested deeper than `MAX_DEPTH` is one error, where it goes too deep.
    """
    check_depth(data)
    shallow = _shallow()
    found: dict[tuple[str, str], None] = {}

    def note(errors: Iterator[ValidationError], trail: _Trail) -> None:
        for error in errors:
            # For anyOf/oneOf failures, the most relevant error among the alternatives.
            best = best_match([error]) or error
            found[(pointer([*_keys(trail), *best.absolute_path]), _message(best))] = None

    note(shallow.document.iter_errors(data), None)
    stack: list[tuple[Any, _Trail]] = []
    if isinstance(data, dict):
        for position in shallow.roots:
            for keys, expr in _at(data, position):
                trail: _Trail = None
                for key in keys:
                    trail = (trail, key)
                stack.append((expr, trail))
    while stack:
        node, trail = stack.pop()
        note(shallow.node.iter_errors(node), trail)
        for keys, child in expr_children(node):
            child_trail = trail
            for key in keys:
                child_trail = (child_trail, key)
            stack.append((child, child_trail))
    errors = sorted(found)
    if not errors:
        return
    diagnostics = [
        Diagnostic("compiled-json", message, field=field) for field, message in errors[:limit]
    ]
    if len(errors) > limit:
        more = f"… and {len(errors) - limit} more"
        diagnostics.append(Diagnostic("compiled-json", more, field="/"))
    raise LoadError(diagnostics)


def check_depth(data: Any) -> None:
    """Refuse a document nested deeper than `MAX_DEPTH` levels (one error, where it is)."""
    keys = too_deep(data)
    if keys is not None:
        message = (
            f"nested more than {MAX_DEPTH} levels deep (a rule nests at most {MAX_NESTING} "
            "levels, counting the definitions it uses)"
        )
        raise LoadError([Diagnostic("compiled-json", message, field=pointer(keys))])
