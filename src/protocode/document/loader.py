"""Load a protocol YAML file into a `ProtocolDoc`, reporting every problem with its position.

Loading works on PyYAML's node tree, never its object constructor, so no tag in a file can
make the loader build arbitrary Python objects. It runs in passes:

1. compose the YAML into nodes (which carry source marks) and convert them to plain
   JSON-like values, checking tags and duplicate keys on the way (`plain`);
2. validate the plain values against the shipped JSON Schema, mapping each error's path
   back to the node it concerns (`schema`);
3. check what the schema cannot express: unique criterion ids, names, quantity strings
   (`consistency`).

Only when no pass found a problem is the `ProtocolDoc` built (`build`); otherwise one
`LoadError` carries all diagnostics.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from protocode.core.errors import LoadError
from protocode.core.files import read_source
from protocode.core.source import Source
from protocode.document.build import build_protocol
from protocode.document.consistency import NAMED_SECTIONS, check_consistency
from protocode.document.model import ProtocolDoc
from protocode.document.plain import PlainTree, ValuePath
from protocode.document.schema import (
    SchemaError,
    Wording,
    shipped_schema,
    shipped_validator,
    validate,
)
from protocode.document.yamlsource import compose

__all__ = ["ProtocolWording", "load_protocol", "load_protocol_text", "protocol_schema"]


def protocol_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of protocol files, as shipped in ``protocode/schemas``."""
    return shipped_schema("protocol")


class ProtocolWording(Wording):
    """The protocol file's schema messages: entries of named sections are named for them."""

    def describe(self, path: ValuePath) -> str:
        """``data item 'age'`` for an entry of a named section, else as `Wording` says."""
        if not path:
            return "the protocol file"
        if len(path) == 2 and path[0] in NAMED_SECTIONS:
            return f"{NAMED_SECTIONS[str(path[0])]} '{path[-1]}'"
        return super().describe(path)

    def key_owner(self, error: SchemaError) -> str:
        """An unknown key of a named section's entry is in that entry, not in its title."""
        if len(error.path) == 2 and error.path[0] in NAMED_SECTIONS:
            return self.describe(error.path)
        return self.title(error)


_WORDING = ProtocolWording()


def load_protocol(path: Path) -> ProtocolDoc:
    """Load and validate the protocol file at `path`.

    Raises `LoadError` carrying every problem found, sorted by position; a file that cannot
    be read or is not UTF-8 gives a single ``io`` diagnostic without a span.
    """
    return _load(read_source(path))


@functools.lru_cache(maxsize=64)
def load_protocol_text(text: str, path: str = "<protocol>") -> ProtocolDoc:
    """Load and validate protocol YAML given as text; `path` names it in diagnostics.

    The model is immutable, so a text loaded again (a folder check reads every version that
    the command loaded already) is the same object; composing YAML is most of a load.
    """
    return _load(Source(path, text))


def _load(source: Source) -> ProtocolDoc:
    tree = PlainTree(source, compose(source, "the protocol file"))
    validate(tree, shipped_validator("protocol"), _WORDING)
    check_consistency(tree)
    if tree.diagnostics:
        raise LoadError(tree.diagnostics)
    return build_protocol(tree)
