"""The lock file of a protocol folder, ``protocode.lock``: read, validated, written.

The lock records the SHA-256 of every released version. It is JSON, written by `write_lock`
with a stable key order::

    {
      "format": 1,
      "protocol": "NCT06125106",
      "released": [
        {
          "version": "1",
          "file": "v1.yaml",
          "sha256": "…"
        }
      ]
    }

Its structure is the JSON Schema ``schemas/lock.schema.json``, validated through
`document.schema` with the lock's own messages (``release 1 lacks 'sha256'``, ``'version' of
release 1 must be a JSON string``), every problem located in the file with the code ``lock``.
Two rules stay in code, as the schema cannot state them: release N is version N in the file
vN.yaml (a rule between an entry's position and its values), and 'format' is written ``1``
(JSON Schema compares numbers by value, so ``1.0`` would pass ``const: 1``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yaml.nodes import ScalarNode

from protocode.core.errors import Diagnostic, LoadError, did_you_mean
from protocode.core.files import read_source
from protocode.core.source import Span
from protocode.document.plain import PlainTree, Reading, ValuePath
from protocode.document.schema import (
    SchemaError,
    Worded,
    Wording,
    shipped_validator,
    validate,
)
from protocode.document.yamlsource import YAML_TAG, compose

LOCK_NAME = "protocode.lock"
"""The name of the lock file in a protocol folder."""

LOCK_FORMAT = 1
"""The version of the lock file format that `write_lock` writes and `read_lock` reads."""

VERSION_FILE = re.compile(r"^v([0-9]+)\.ya?ml\Z")
"""A version file's name: v1.yaml, v2.yml, … (ASCII digits only); group 1 is its number."""

_RELEASE_KEYS = ("version", "file", "sha256")
_READING = Reading(
    files="lock files",
    code="lock",
    merge_refused="'<<' has no meaning in a lock file",
    json_strings=True,
)
_JSON_TYPES = {"object": "a JSON object", "string": "a JSON string", "array": "a JSON list"}


@dataclass(frozen=True, slots=True)
class Release:
    """A released version as the lock records it; `span` is its entry in the lock file."""

    version: str
    file: str
    sha256: str
    span: Span


@dataclass(frozen=True, slots=True)
class Lock:
    """The lock file: which protocol, and its released versions, oldest first."""

    path: Path
    protocol: str
    protocol_span: Span
    released: tuple[Release, ...]

    def entry(self, file: str) -> Release | None:
        """The release recorded for the version file named `file`, if any."""
        return next((r for r in self.released if r.file == file), None)


class LockWording(Wording):
    """The lock's schema messages: JSON's names for types, an entry named by its position."""

    def describe(self, path: ValuePath) -> str:
        """``protocode.lock``, ``release 2``, ``'sha256' of release 2``, ``'format'``."""
        if not path:
            return LOCK_NAME
        if path[0] == "released" and len(path) > 1:
            release = f"release {int(path[1]) + 1}"
            return release if len(path) == 2 else f"'{path[2]}' of {release}"
        return f"'{path[-1]}'"

    def on_type(self, error: SchemaError) -> Worded:
        """A value of the wrong JSON type."""
        wanted = _JSON_TYPES[str(error.expected)]
        return [(f"{self.describe(error.path)} must be {wanted}", error.span())]

    def on_required(self, error: SchemaError) -> Worded:
        """The missing keys of an object, together, at the object."""
        missing = [key for key in error.expected if key not in error.instance]
        listed = ", ".join(repr(key) for key in missing)
        return [(f"{self.describe(error.path)} lacks {listed}", error.span())]

    def on_additional_properties(self, error: SchemaError) -> Worded:
        """Each unknown key, at the key; an object that lacks keys is reported for that only."""
        if any(key not in error.instance for key in error.schema.get("required", ())):
            return []
        allowed = list(error.schema.get("properties", {}))
        what = self.describe(error.path)
        return [
            (f"unknown key '{name}' in {what}{did_you_mean(name, allowed)}", error.span(key))
            for name, (key, _) in error.tree.entries(error.node).items()
            if name not in allowed
        ]


def read_lock(path: Path) -> tuple[Lock | None, list[Diagnostic]]:
    """The lock file at `path` and its problems, each located in it (code ``lock``).

    The lock is None when a problem leaves it unusable (not JSON, a missing or mistyped
    value, a release out of order); an unknown key is a problem of a lock still read.
    """
    try:
        source = read_source(path)
    except LoadError as exc:
        return None, list(exc.diagnostics)
    try:
        # JSON is YAML here: composing it keeps every value's position in the file.
        root = compose(source, LOCK_NAME)
    except LoadError as exc:
        # Only a syntax error means the lock is not JSON; the depth limit says what it is.
        return None, [
            Diagnostic(
                "lock",
                f"not JSON: {d.message}" if d.code == "yaml-syntax" else d.message,
                d.span,
            )
            for d in exc.diagnostics
        ]
    tree = PlainTree(source, root, _READING)
    validate(tree, shipped_validator("lock"), LockWording())
    lock = _lock(path, tree)
    return lock, tree.diagnostics


def _lock(path: Path, tree: PlainTree) -> Lock | None:
    """The lock of a validated tree, checking what the schema cannot say; None if unusable."""
    doc = tree.value
    if not isinstance(doc, dict) or not _format_written_1(tree, doc):
        return None
    protocol, released = doc.get("protocol"), doc.get("released")
    entries = (
        [_release(tree, index, entry) for index, entry in enumerate(released)]
        if isinstance(released, list)
        else [None]
    )
    if not isinstance(protocol, str) or None in entries:
        return None
    return Lock(
        path,
        protocol,
        tree.value_span(("protocol",)),
        tuple(entry for entry in entries if entry is not None),
    )


def _format_written_1(tree: PlainTree, doc: dict[str, Any]) -> bool:
    if "format" not in doc:
        return False
    _, node = tree.locate(("format",))
    written = (
        isinstance(node, ScalarNode)
        and node.tag == YAML_TAG + "int"
        and node.value == str(LOCK_FORMAT)
    )
    value = doc["format"]
    # Any other value broke the schema's `const`, which reported it.
    if not written and value == LOCK_FORMAT and not isinstance(value, bool):
        tree.error("lock", f"'format' must be {LOCK_FORMAT}", tree.span(node))
    return written


def _release(tree: PlainTree, index: int, entry: Any) -> Release | None:
    """Release `index` of the lock, when its values are there and in order; else None."""
    if not isinstance(entry, dict) or not all(
        isinstance(entry.get(key), str) for key in _RELEASE_KEYS
    ):
        return None  # the schema reported it
    version, file, sha256 = (entry[key] for key in _RELEASE_KEYS)
    path = ("released", index)
    what = f"release {index + 1}"
    # Released in order from 1, each under its own file name: anything else is hand-made.
    if version != str(index + 1):
        message = (
            f"{what} must be version {index + 1}, not {version}; versions are released in order"
        )
        tree.error("lock", message, tree.value_span((*path, "version")))
        return None
    match = VERSION_FILE.match(file)
    # Compared as digits: the lock is any text, and int() refuses over 4,300 digits.
    if match is None or match[1].lstrip("0") != str(index + 1):
        message = f"{what} is version {version}, so its file is v{version}.yaml"
        tree.error("lock", message, tree.value_span(path))
        return None
    return Release(version, file, sha256, tree.value_span(path))


def write_lock(folder: Path, protocol: str, released: Sequence[tuple[str, str, str]]) -> None:
    """Write the lock of `folder`: `protocol` and its releases as (version, file, sha256).

    Written whole, then moved into place: a lock half written by an interrupted release would
    fail every later check.
    """
    lock = {
        "format": LOCK_FORMAT,
        "protocol": protocol,
        "released": [
            {"version": version, "file": file, "sha256": sha256}
            for version, file, sha256 in released
        ],
    }
    path = folder / LOCK_NAME
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(lock, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)
