"""The whole pipeline in one call: YAML file → loaded → checked → compiled `Protocol`.

Every command that uses a protocol file or folder comes through `load`, which refuses a
released version that differs from its folder's lock. Compiled protocols are cached by
content hash, so loading the same file twice (a screening service, a test suite) compiles
it once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from protocode.backends.export.decode import checked_from_json
from protocode.core.errors import UsageError
from protocode.core.files import read_bytes, text_source
from protocode.document.history import FolderLock
from protocode.document.loader import load_protocol_text
from protocode.document.lock import VERSION_FILE
from protocode.language.check import check_protocol
from protocode.screening import Backend, Protocol

_CACHE: dict[tuple[str, str, str], Protocol] = {}


def protocol_file(path: str | Path, lock: FolderLock | None = None) -> Path:
    """The YAML file a path names: itself, or a protocol folder's version in force.

    The version in force is the newest one released in the folder's lock file (`lock`, when
    the caller has read it already); a folder without a lock has no release yet, and its
    newest `vN.yaml` is used.
    """
    p = Path(path)
    if p.is_dir():
        in_force = (lock or FolderLock.read(p)).version_in_force()
        if in_force is not None:
            return in_force
        versions = sorted(
            (int(m.group(1)), f)
            for f in p.iterdir()
            if (m := VERSION_FILE.match(f.name)) is not None
        )
        if not versions:
            raise UsageError.at("usage", f"{p}: no protocol version file (v1.yaml, …) here", None)
        return versions[-1][1]
    if not p.exists():
        raise UsageError.at("usage", f"{p}: no such file or folder", None)
    return p


def load(path: str | Path, backend: Backend = "fast") -> Protocol:
    """Load, check and compile a protocol file (or a folder's version in force).

    Every section is checked (criteria, definitions, grading tables, derived events,
    endpoints, dosing): a `CheckError` carries every problem of the file. The returned
    `Protocol` screens with `backend` (see `protocode.screening.Backend`).

    Raises `HistoryError` (a `ProtocodeError`) at the lock's entry when the file is a
    released version that was edited since its release, before anything else is read.
    """
    p = Path(path)
    # The folder's lock is read once: it names the version in force and verifies it.
    lock = FolderLock.read(p if p.is_dir() else p.parent)
    file = protocol_file(p, lock)
    # One guarded read (a named pipe or a device under a released name is refused, not
    # read): the bytes verified against the lock are the bytes loaded.
    data = read_bytes(file)
    lock.verify(file, data)
    return load_text(text_source(str(file), data).text, str(file), backend)


def load_text(text: str, path: str = "<protocol>", backend: Backend = "fast") -> Protocol:
    """Load, check and compile protocol YAML given as text, to screen with `backend`."""
    key = (path, hashlib.sha256(text.encode()).hexdigest(), backend)
    cached = _CACHE.get(key)
    if cached is None:
        checked = check_protocol(load_protocol_text(text, path))
        cached = _CACHE[key] = Protocol(checked, backend)
    return cached


def load_json(
    data: Mapping[str, Any], *, source: str | None = None, validate: bool = True
) -> Protocol:
    """A `Protocol` from a compiled JSON document (as `json.load` returns it).

    `source` is the text of the exported file, if at hand (see
    `protocode.backends.export.decode`). Raises `LoadError` for a document of another format
    or a newer version, one that does not follow the schema (skip that check with
    `validate=False` only for documents just written by `export_json`), or one whose names do
    not resolve.
    """
    return Protocol(checked_from_json(data, source=source, validate=validate))
