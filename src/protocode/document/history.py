"""A protocol folder's history: its versions, the lock of released ones, the rules between them.

A protocol folder holds one file per version, ``v1.yaml``, ``v2.yaml``, …, each amending the
one before it, and a lock file, ``protocode.lock`` (`document.lock`), that records the
SHA-256 of every released version. A released version is immutable: a change is made by
writing an amendment.

`FolderLock` reads a folder's lock once and answers which version is in force and whether a
file about to be used is the one released. `check_history` states the structural rules of a
history: released files unchanged and present, versions numbered 1, 2, 3, … by their file
names, each amending the one before, one registry id throughout, and ids that stay stable
between consecutive versions unless a declared change says otherwise (`document.changes`).
Whether a declared change means what it claims is checked above this package, by
`protocode.amendments.folder`.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from protocode.core.errors import Diagnostic, LoadError, ProtocodeError
from protocode.core.files import read_bytes
from protocode.core.source import Source, Span
from protocode.document.changes import check_ids
from protocode.document.loader import load_protocol_text
from protocode.document.lock import LOCK_NAME, VERSION_FILE, Lock, Release, read_lock
from protocode.document.model import ProtocolDoc

# LOCK_NAME and VERSION_FILE (`document.lock`) and item_changes (`document.changes`) are
# re-exported while cases.files, fmt.files, pipeline and amendments.diff import them from here.
__all__ = [
    "FolderLock",
    "History",
    "HistoryError",
    "Version",
    "check_history",
    "load_history",
    "missing_release",
    "release_problem",
    "verify_release",
    "version_in_force",
]

_SHORT_HASH = 12


class HistoryError(ProtocodeError):
    """A protocol folder's history breaks a rule: an edited release, a broken amends chain…"""


@dataclass(frozen=True, slots=True)
class Version:
    """One version file of a protocol folder.

    `doc` is None when the file does not load (its own errors are reported when the file is
    checked), `source` when it is not UTF-8 text; `sha256` is the hash of its bytes (empty
    when it is not a regular file or too large to read).
    """

    number: int
    path: Path
    sha256: str
    source: Source | None
    doc: ProtocolDoc | None

    @property
    def name(self) -> str:
        """The file name, e.g. ``v2.yaml``."""
        return self.path.name

    @property
    def start(self) -> Span | None:
        """The start of the file, for problems of the file as a whole."""
        return None if self.source is None else self.source.whole


@dataclass(frozen=True, slots=True)
class History:
    """A protocol folder as versions: every ``vN.yaml`` by N, the lock, and reading problems.

    `problems` are what made part of the folder unreadable as a history (a malformed lock);
    `check_history` reports them with the rest.
    """

    folder: Path
    versions: tuple[Version, ...]
    lock: Lock | None
    problems: tuple[Diagnostic, ...] = ()

    def released(self, version: Version) -> Release | None:
        """The lock's entry for `version`, if it is released."""
        return None if self.lock is None else self.lock.entry(version.name)


def load_history(folder: Path) -> History:
    """Read a protocol folder: its version files (loaded where they load) and its lock.

    Never raises for a bad version file or lock: a file that does not load has no `doc`, and
    a malformed lock is one of the history's `problems`.
    """
    versions = sorted(
        (
            _read_version(int(match[1]), path)
            for path in (folder.iterdir() if folder.is_dir() else ())
            if (match := VERSION_FILE.match(path.name)) is not None
        ),
        key=lambda v: (v.number, v.name),
    )
    folder_lock = FolderLock.read(folder)
    return History(folder, tuple(versions), folder_lock.lock, folder_lock.problems)


def _read_version(number: int, path: Path) -> Version:
    try:
        data = read_bytes(path)
    except LoadError:
        # Not a regular file, or too large: loading the file itself says so.
        return Version(number, path, "", None, None)
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Version(number, path, sha256, None, None)
    source = Source(str(path), text)
    try:
        doc: ProtocolDoc | None = load_protocol_text(text, str(path))
    except LoadError:
        doc = None
    return Version(number, path, sha256, source, doc)


@dataclass(frozen=True, slots=True)
class FolderLock:
    """A protocol folder's lock, read once: the version in force, and the check of a release.

    `lock` is None without a lock file or when it is unusable; `problems` are the lock's own
    (a malformed lock). Reading never raises: asking raises `HistoryError` with the problems.
    """

    folder: Path
    lock: Lock | None
    problems: tuple[Diagnostic, ...]

    @classmethod
    def read(cls, folder: Path) -> FolderLock:
        """The lock of `folder`, read once (no lock file: nothing released)."""
        lock_path = folder / LOCK_NAME
        if not lock_path.exists():
            return cls(folder, None, ())
        lock, problems = read_lock(lock_path)
        return cls(folder, lock, tuple(problems))

    def checked(self) -> Lock | None:
        """The lock, None without one; raises `HistoryError` when it is malformed."""
        if self.problems:
            raise HistoryError(list(self.problems))
        return self.lock

    def version_in_force(self) -> Path | None:
        """The file of the newest released version, or None when the lock records none.

        This is the version to screen patients with: a newer file is a draft under review.
        Raises `HistoryError` when the lock is malformed or names a missing file.
        """
        lock = self.checked()
        if lock is None or not lock.released:
            return None
        entry = lock.released[-1]
        file = self.folder / entry.file
        if not file.exists():
            raise HistoryError([missing_release(entry)])
        return file

    def verify(self, path: Path, data: bytes) -> None:
        """Refuse the bytes `data` of the version file `path` (in this folder) if they differ
        from what the lock records.

        When the lock names `path`, the SHA-256 of `data` must be the one recorded. Raises
        `HistoryError` at the lock's entry for an edited file, and with the lock's own
        problems when it is malformed (a lock that cannot be read verifies nothing). A file
        the lock does not name (a draft) and a folder without a lock pass.
        """
        lock = self.checked()
        entry = None if lock is None else lock.entry(path.name)
        if entry is None:
            return
        problem = release_problem(entry, hashlib.sha256(data).hexdigest())
        if problem is not None:
            raise HistoryError([problem])


def version_in_force(folder: Path) -> Path | None:
    """The file of the newest released version of `folder` (see `FolderLock.version_in_force`).

    Only the lock is read; raises `HistoryError` when it is malformed or names a missing file.
    """
    return FolderLock.read(folder).version_in_force()


def verify_release(path: Path, data: bytes) -> None:
    """Refuse to use a released version file that differs from what its folder's lock records.

    Every command and `protocode.load` call this on the bytes `data` of the version file
    `path` they are about to use (the very bytes they then load, so nothing can change in
    between); see `FolderLock.verify`, which does the same on a lock already read.
    """
    FolderLock.read(path.parent).verify(path, data)


def check_history(history: History) -> list[Diagnostic]:
    """The structural problems of a history (see the module docstring), in no set order.

    Rules that need a version's content skip a version that does not load.
    """
    found = list(history.problems)
    found += _check_lock(history)
    found += _check_numbers(history.versions)
    loaded = [v for v in history.versions if v.doc is not None]
    found += _check_registry_ids(history, loaded)
    by_number = {v.number: v for v in loaded}
    for version in loaded:
        found += _check_amends(version)
        previous = by_number.get(version.number - 1)
        if previous is not None and version.number > 1:
            assert previous.doc is not None and version.doc is not None
            found += check_ids(previous.doc, version.doc, previous.number, version.number)
    return found


def _check_lock(history: History) -> list[Diagnostic]:
    lock = history.lock
    if lock is None:
        return []
    by_name = {v.name: v for v in history.versions}
    found: list[Diagnostic] = []
    for entry in lock.released:
        version = by_name.get(entry.file)
        problem = release_problem(entry, None if version is None else version.sha256)
        if problem is not None:
            found.append(problem)
    return found


def release_problem(entry: Release, sha256: str | None) -> Diagnostic | None:
    """What is wrong with released `entry` when its file hashes to `sha256` (None: missing).

    Located at the entry in the lock, which is what the file is measured against: ``check``
    of a folder and every command using a released version report the same diagnostic.
    """
    if sha256 is None:
        return missing_release(entry)
    if sha256 == entry.sha256:
        return None
    message = (
        f"{entry.file} was edited after release (sha256 {entry.sha256[:_SHORT_HASH]}… "
        f"in {LOCK_NAME}, now {sha256[:_SHORT_HASH]}…); released versions are "
        "immutable — write an amendment instead"
    )
    return Diagnostic("release-edited", message, entry.span)


def missing_release(entry: Release) -> Diagnostic:
    """The problem of released `entry` whose file is gone, located at the entry in the lock."""
    message = (
        f"{entry.file} is released (in {LOCK_NAME}) but missing; released versions are kept "
        "for good"
    )
    return Diagnostic("release-missing", message, entry.span)


def _check_numbers(versions: Sequence[Version]) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    files: dict[int, str] = {}
    previous: Version | None = None
    for version in versions:
        if version.number in files:
            first = files[version.number]
            message = f"version {version.number} has two files, {first} and {version.name}"
            found.append(Diagnostic("version", message, version.start))
            continue
        # Each number is checked against the file before it, so one missing or stray file
        # (a deleted v1, a v0) is one error, not one per later version.
        expected = 1 if previous is None else previous.number + 1
        if version.number != expected:
            after = "is the first version file" if previous is None else f"follows {previous.name}"
            message = (
                f"{version.name} {after}: versions are numbered 1, 2, 3, … without gaps, so "
                f"this must be v{expected}.yaml"
            )
            found.append(Diagnostic("version", message, version.start))
        files[version.number] = version.name
        previous = version
        doc = version.doc
        # A v0.yaml is refused by its name above; what it says inside is beside the point.
        if doc is not None and version.number > 0 and doc.metadata.version != str(version.number):
            said = doc.metadata.version
            message = (
                f'{version.name} must say version "{version.number}", not "{said}": '
                "a version's number is its file name's"
            )
            same = next((v.name for v in versions if str(v.number) == said), None)
            if same is not None and same != version.name:
                message += f" (version {said} is {same})"
            found.append(Diagnostic("version", message, doc.metadata.version_span))
    return found


def _check_amends(version: Version) -> list[Diagnostic]:
    assert version.doc is not None
    meta = version.doc.metadata
    if version.number <= 1:  # v0.yaml is refused by `_check_numbers`
        if meta.amends is None:
            return []
        message = f"version 1 is the first version and amends nothing, not version {meta.amends}"
        return [Diagnostic("amends", message, meta.amends_span)]
    previous = str(version.number - 1)
    if meta.amends is None:
        message = (
            f'version {version.number} must amend version {previous} (add amends: "{previous}")'
        )
        return [Diagnostic("amends", message, meta.span)]
    if meta.amends != previous:
        message = (
            f"version {version.number} must amend version {previous}, not version {meta.amends}"
        )
        return [Diagnostic("amends", message, meta.amends_span)]
    return []


def _check_registry_ids(history: History, loaded: Sequence[Version]) -> list[Diagnostic]:
    if not loaded:
        return []
    found: list[Diagnostic] = []
    first = loaded[0]
    assert first.doc is not None
    if history.lock is not None and history.lock.protocol != first.doc.metadata.registry_id:
        message = (
            f"{LOCK_NAME} is the lock of {history.lock.protocol}, but {first.name} is "
            f"{first.doc.metadata.registry_id}"
        )
        found.append(Diagnostic("registry-id", message, history.lock.protocol_span))
    for before, after in itertools.pairwise(loaded):
        assert before.doc is not None and after.doc is not None
        old, new = before.doc.metadata.registry_id, after.doc.metadata.registry_id
        if old != new:
            message = (
                f"registry id {new} differs from {old} in {before.name}; a protocol folder "
                "holds the versions of one protocol"
            )
            found.append(Diagnostic("registry-id", message, after.doc.metadata.registry_id_span))
    return found
