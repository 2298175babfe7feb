"""JSON Schema validation of YAML and JSON files, each error a located diagnostic.

The one way protocode validates the structure of a file it reads: compose the file
(`yamlsource.compose`), convert the nodes to plain values (`plain.PlainTree`), then::

    problems = validate(tree, schema)

Each JSON Schema error becomes a diagnostic at the node it is about: an unknown key at the
key, a missing key at the mapping, a wrong value at the value. `Wording` says how the
errors read; its defaults are the protocol file's messages (``unknown key 'x' in data item
(expected …)``, ``'unit' must be a string, not the number 5``), and a file format with
messages of its own overrides a method or two (see `document.lock`). A schema may word a
pattern's error itself with ``patternErrorMessage`` and name a mapping with ``title``.

Schemas are draft 2020-12, with patterns read as ECMA-262 reads them (`ecma_regex`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError
from yaml.nodes import Node

from protocode.core.errors import Diagnostic, did_you_mean
from protocode.core.source import Span
from protocode.document.plain import PlainTree, ValuePath

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def shipped_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``protocode/schemas/{name}.schema.json`` shipped with the package."""
    resource = resources.files("protocode") / "schemas" / f"{name}.schema.json"
    schema: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return schema


@functools.cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """A JSON Schema pattern compiled to read as ECMA-262 reads it: ``$`` ends the text.

    Python's ``$`` also matches before a final newline, so ``"I1\\n"`` would pass
    ``^[A-Za-z0-9]+$``; each ``$`` outside a character class becomes ``\\Z``.
    """
    out: list[str] = []
    at, in_class = 0, False
    while at < len(pattern):
        char = pattern[at]
        if char == "\\":
            out.append(pattern[at : at + 2])
            at += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
        at += 1
    return re.compile("".join(out))


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


SchemaValidator: Any = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, {"pattern": _ecma_pattern}
)
"""Draft 2020-12 validation with ECMA-262 patterns (see `ecma_regex`), for shipped schemas."""


@functools.cache
def shipped_validator(name: str) -> Any:
    """A `SchemaValidator` of the shipped schema `name`, built once per process.

    Building one compiles the schema's references and patterns, which costs more than
    validating a typical file.
    """
    return SchemaValidator(shipped_schema(name))


@dataclass(frozen=True, slots=True)
class SchemaError:
    """One JSON Schema error, placed in the tree: what `Wording` words.

    `path` leads to the value the error is about and `node` is that value's node; `keyword`
    is the failing schema keyword (``type``, ``required``, …), `expected` its value in the
    schema, `schema` the (sub)schema holding it, and `instance` the value that failed.
    """

    tree: PlainTree
    path: ValuePath
    node: Node
    keyword: str
    expected: Any
    schema: Any
    instance: Any
    message: str

    def span(self, node: Node | None = None) -> Span:
        """The span of `node`, by default the node the error is about."""
        return self.tree.span(self.node if node is None else node)


Worded = list[tuple[str, Span]]
"""Messages and where each one points."""


class Wording:
    """How schema errors read: the protocol file's messages, overridable per keyword.

    `word` dispatches on the keyword to ``on_`` and its snake-case name (``on_min_length``
    for ``minLength``), else to `other`; each
    returns the messages to report and where. `describe` names a value by its path and
    `title` names a mapping, for every message.
    """

    def word(self, error: SchemaError) -> Worded:
        """The messages for one error, with their spans (none to report nothing)."""
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", error.keyword).lower()
        method = getattr(self, f"on_{snake}", None)
        if method is None:
            return self.other(error)
        worded: Worded = method(error)
        return worded

    def describe(self, path: ValuePath) -> str:
        """The value at `path` in a message: ``'unit'``, ``item 2 of 'grades'``."""
        if not path:
            return "the file"
        last = path[-1]
        if isinstance(last, int):
            return f"item {last + 1} of '{path[-2]}'"
        return f"'{last}'"

    def title(self, error: SchemaError) -> str:
        """The mapping an error is in, for key messages: its schema's ``title``."""
        title: str = error.schema.get("title", "mapping")
        return title

    def key_owner(self, error: SchemaError) -> str:
        """The mapping an unknown key is in: by default its `title`."""
        return self.title(error)

    def on_additional_properties(self, error: SchemaError) -> Worded:
        """Each unknown key, at the key, with the closest allowed key or the allowed ones."""
        allowed = list(error.schema.get("properties", {}))
        where = self.key_owner(error)
        out: Worded = []
        for name, (key_node, _) in error.tree.entries(error.node).items():
            if name not in allowed:
                hint = did_you_mean(name, allowed, expected=True)
                out.append((f"unknown key '{name}' in {where}{hint}", error.span(key_node)))
        return out

    def on_required(self, error: SchemaError) -> Worded:
        """Each missing key, at the mapping's first key."""
        at = error.tree.start_span(error.path)
        title = self.title(error)
        return [
            (f"missing required key '{name}' in {title}", at)
            for name in error.expected
            if name not in error.instance
        ]

    def on_type(self, error: SchemaError) -> Worded:
        """A value of the wrong type, saying what it is."""
        expected = error.expected
        types = [expected] if isinstance(expected, str) else expected
        wanted = " or ".join(_TYPE_NAMES[t] for t in types)
        what = self.describe(error.path)
        return [(f"{what} must be {wanted}, not {kind_of(error.instance)}", error.span())]

    def on_enum(self, error: SchemaError) -> Worded:
        """A value that is none of the choices, with the closest one."""
        choices = [str(choice) for choice in error.expected]
        instance = error.instance
        hint = did_you_mean(instance, choices, expected=True) if isinstance(instance, str) else ""
        message = f"{self.describe(error.path)} must be one of {', '.join(choices)}{hint}"
        return [(message, error.span())]

    def on_const(self, error: SchemaError) -> Worded:
        """A value that must be the one the schema gives."""
        return [(f"{self.describe(error.path)} must be {json.dumps(error.expected)}", error.span())]

    def on_pattern(self, error: SchemaError) -> Worded:
        """Text not matching its pattern, worded by the schema's ``patternErrorMessage``."""
        hint = error.schema.get("patternErrorMessage", f"it must match {error.expected}")
        return [(f"invalid {error.path[-1]} {error.instance!r}: {hint}", error.span())]

    def on_min_length(self, error: SchemaError) -> Worded:
        """Empty text where some is required."""
        return [(f"{self.describe(error.path)} must not be empty", error.span())]

    on_min_items = on_min_length

    def on_unique_items(self, error: SchemaError) -> Worded:
        """A list repeating an entry."""
        return [(f"{self.describe(error.path)} must not list the same entry twice", error.span())]

    def other(self, error: SchemaError) -> Worded:
        """Any other keyword: jsonschema's own message, after the value's name."""
        return [(f"{self.describe(error.path)}: {error.message}", error.span())]


def validate(
    tree: PlainTree,
    schema: Mapping[str, Any] | Any,
    wording: Wording | None = None,
    code: str = "schema",
) -> list[Diagnostic]:
    """The diagnostics of `tree`: its YAML problems, then each schema error at its node.

    `schema` is a schema or a validator built from one (`SchemaValidator`, to reuse it);
    `wording` words the errors (default: the protocol file's messages); `code` is their
    diagnostic code, unless the tree's `Reading` sets one for all. An error about a value
    already reported as bad YAML is left out, and `required` errors of one mapping are
    worded once. The diagnostics are also added to `tree.diagnostics`, in order.
    """
    validator = SchemaValidator(schema) if isinstance(schema, Mapping) else schema
    words = wording or Wording()
    required_done: set[tuple[ValuePath, int]] = set()
    for error in validator.iter_errors(tree.value):
        placed = _place(tree, error)
        if placed is None:
            continue
        if placed.keyword == "required":
            # jsonschema reports each missing key separately; word them together, once.
            if (placed.path, id(error.schema)) in required_done:
                continue
            required_done.add((placed.path, id(error.schema)))
        for message, span in words.word(placed):
            tree.error(code, message, span)
    return tree.diagnostics


def _place(tree: PlainTree, error: ValidationError) -> SchemaError | None:
    path = tuple(error.absolute_path)
    _, node = tree.locate(path)
    if tree.is_bad(node):
        return None
    return SchemaError(
        tree,
        path,
        node,
        str(error.validator),
        error.validator_value,
        error.schema,
        error.instance,
        error.message,
    )


def kind_of(value: Any) -> str:
    """What a plain value is, for messages: ``the string 'x'``, ``a list``, ``empty``."""
    if value is None:
        return "empty"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    return "a mapping" if isinstance(value, dict) else "a bare word"
