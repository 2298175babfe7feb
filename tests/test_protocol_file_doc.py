"""docs/protocol-file.md documents every key of the protocol file's JSON Schema.

Every property name found anywhere in the schema (through ``properties``, ``items``,
``additionalProperties``, ``$defs``, ``oneOf``/``anyOf``/``allOf`` and the conditional
``if``/``then``/``else``) must appear in the page as `` `key` ``, and every ```yaml block of
the page must parse with ``yaml.safe_load`` (blocks may be fragments of a protocol file).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "src" / "protocode" / "schemas" / "protocol.schema.json"
PAGE = ROOT / "docs" / "protocol-file.md"

#: Keywords whose value is one subschema.
_ONE = ("items", "additionalProperties", "not", "if", "then", "else")
#: Keywords whose value is a list of subschemas.
_MANY = ("oneOf", "anyOf", "allOf", "prefixItems")
#: Keywords whose value maps names to subschemas.
_MAPS = ("$defs", "definitions", "patternProperties")


def _property_names(schema: Any) -> Iterator[str]:
    """Every property name declared in ``schema`` and its subschemas."""
    if not isinstance(schema, dict):
        return
    for name, sub in (schema.get("properties") or {}).items():
        yield name
        yield from _property_names(sub)
    for key in _ONE:
        yield from _property_names(schema.get(key))
    for key in _MANY:
        for sub in schema.get(key) or ():
            yield from _property_names(sub)
    for key in _MAPS:
        for sub in (schema.get(key) or {}).values():
            yield from _property_names(sub)


def _yaml_blocks(text: str) -> list[tuple[int, str]]:
    """The ```yaml blocks of a Markdown text, with the line number of each opening fence."""
    blocks = []
    for match in re.finditer(r"^```yaml[ \t]*\n(.*?)^```[ \t]*$", text, re.M | re.S):
        line = text.count("\n", 0, match.start()) + 1
        blocks.append((line, match.group(1)))
    return blocks


SCHEMA_KEYS = sorted(set(_property_names(json.loads(SCHEMA.read_text(encoding="utf-8")))))
PAGE_TEXT = PAGE.read_text(encoding="utf-8")
BLOCKS = _yaml_blocks(PAGE_TEXT)


def test_schema_walk_finds_nested_keys() -> None:
    # keys only reachable through $defs, additionalProperties and oneOf
    assert {"registry_id", "loinc", "where", "grade", "at_least", "window"} <= set(SCHEMA_KEYS)


@pytest.mark.parametrize("key", SCHEMA_KEYS)
def test_every_schema_key_is_documented(key: str) -> None:
    assert f"`{key}`" in PAGE_TEXT, f"docs/protocol-file.md does not mention `{key}`"


def test_page_has_yaml_examples() -> None:
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize(("line", "block"), BLOCKS, ids=[f"line{line}" for line, _ in BLOCKS])
def test_yaml_blocks_parse(line: int, block: str) -> None:
    try:
        yaml.safe_load(block)
    except yaml.YAMLError as error:
        pytest.fail(f"docs/protocol-file.md, block at line {line}: {error}")
