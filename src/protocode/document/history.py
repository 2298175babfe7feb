"""A protocol folder's history: its versions, the lock of released ones, the rules between them.

A protocol folder holds one file per version, ``v1.yaml``, ``v2.yaml``, …, each amending the
one before it, and a lock file, ``protocode.lock``, that records the SHA-256 of every released
version. A released version is immutable: a change is made by writing an amendment. The lock is
JSON, written by `release` with a stable key order::

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

`check_history` states the structural rules of a history: released files unchanged and
present, versions numbered 1, 2, 3, … by their file names, each amending the one before, one
registry id throughout, and ids that stay stable between consecutive versions unless a
declared change (``protocol.changes``) says otherwise. Whether a declared change means what
it claims is a semantic question, not answered here. `check_folder` is everything
``protocode check`` verifies about a folder beyond each file on its own.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocode.core.errors import Diagnostic, LoadError, ProtocodeError, UsageError, did_you_mean
from protocode.core.source import Source, Span
from protocode.document.loader import load_protocol, load_protocol_text
from protocode.document.model import Change, ChangeTargetKind, Criterion, DataItem, ProtocolDoc
from protocode.document.yamlsource import (
    YAML_TAG,
    Entry,
    compose,
    mapping_entries,
    node_span,
    read_bytes,
    read_source,
)
from protocode.language.check import check_protocol

LOCK_NAME = "protocode.lock"
"""The name of the lock file in a protocol folder."""

LOCK_FORMAT = 1
"""The version of the lock file format that `release` writes and `load_history` reads."""

SIMILARITY_THRESHOLD = 0.5
"""Below this `difflib` ratio, two registry texts under one id read as different criteria."""

# A version file: v1.yaml, v2.yml, … (ASCII digits only).
VERSION_FILE = re.compile(r"^v([0-9]+)\.ya?ml\Z")
_SHORT_HASH = 12
_TARGET_NOUNS: dict[ChangeTargetKind, str] = {
    "criterion": "criterion",
    "definition": "definition",
    "data": "data item",
}


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
        if self.lock is None:
            return None
        return next((r for r in self.lock.released if r.file == version.name), None)


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
    lock_path = folder / LOCK_NAME
    lock: Lock | None = None
    problems: list[Diagnostic] = []
    if lock_path.exists():
        lock = _read_lock(lock_path, problems)
    return History(folder, tuple(versions), lock, tuple(problems))


def version_in_force(folder: Path) -> Path | None:
    """The file of the newest released version of `folder`, or None when its lock records none.

    This is the version to screen patients with: a newer file is a draft under review. Only
    the lock is read; raises `HistoryError` when it is malformed or names a missing file.
    """
    lock = _lock_of(folder)
    if lock is None or not lock.released:
        return None
    entry = lock.released[-1]
    file = folder / entry.file
    if not file.exists():
        raise HistoryError([_missing(entry)])
    return file


def verify_release(path: Path, data: bytes) -> None:
    """Refuse to use a released version file that differs from what its folder's lock records.

    Every command and `protocode.load` call this on the bytes `data` of the version file
    `path` they are about to use (the very bytes they then load, so nothing can change in
    between): when the lock beside `path` names it, their SHA-256 must be the one recorded.
    Raises `HistoryError` at the lock's entry for an edited file, and with the lock's own
    problems when the lock is malformed (a lock that cannot be read verifies nothing). A
    file the lock does not name (a draft) and a folder without a lock pass.
    """
    lock = _lock_of(path.parent)
    entry = None if lock is None else next((r for r in lock.released if r.file == path.name), None)
    if entry is None:
        return
    problem = _release_problem(entry, hashlib.sha256(data).hexdigest())
    if problem is not None:
        raise HistoryError([problem])


def _lock_of(folder: Path) -> Lock | None:
    """The lock of `folder`, None without one; raises `HistoryError` when it is malformed."""
    lock_path = folder / LOCK_NAME
    if not lock_path.exists():
        return None
    problems: list[Diagnostic] = []
    lock = _read_lock(lock_path, problems)
    if problems:
        raise HistoryError(problems)
    return lock


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


def check_folder(folder: Path) -> list[Diagnostic]:
    """Every problem of a protocol folder beyond each file's own, sorted by position.

    This is what ``protocode check`` adds for a folder and what `release` requires to be
    empty: the structural rules of `check_history`, then, once the history is sound, every
    amendment's declared intents checked against what its changes really mean.
    """
    history = load_history(folder)
    found = check_history(history)
    if not found:
        found = _check_claims(history)
    return sorted(found, key=Diagnostic.sort_key)


def _check_claims(history: History) -> list[Diagnostic]:
    # Imported here: proving claims needs z3, which `import protocode` should not load.
    from protocode.amendments import check_claims  # noqa: PLC0415
    from protocode.language.check import check_protocol  # noqa: PLC0415
    from protocode.screening import Protocol  # noqa: PLC0415

    compiled: dict[int, Protocol] = {}
    for version in history.versions:
        if version.doc is None:
            continue
        try:
            compiled[version.number] = Protocol(check_protocol(version.doc))
        except ProtocodeError:
            continue  # the file's own check reports it
    found: list[Diagnostic] = []
    for number, protocol in sorted(compiled.items()):
        previous = compiled.get(number - 1)
        if previous is not None:
            found += check_claims(previous, protocol)
    return found


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
            found += _check_ids(previous, version)
    return found


def release(folder: Path) -> str:
    """Record the oldest unreleased version of `folder` as released in its lock; its version.

    Versions are released in order, so drafts written after it (a v4 under review while v3
    is released) stay drafts. The version must load and check, and `check_folder` must find
    nothing. Raises `UsageError` when there is no version or every one is released already,
    the file's own `LoadError` or `CheckError`, and `HistoryError` for problems of the history.
    """
    history = load_history(folder)
    if not history.versions:
        raise UsageError.at("usage", f"{folder}: no protocol version file (v1.yaml, …) here", None)
    pending = [v for v in history.versions if history.released(v) is None]
    if not pending:
        newest = history.versions[-1]
        message = f"{newest.path} is already released; write v{newest.number + 1}.yaml to amend it"
        raise UsageError.at("usage", message, None)
    newest = pending[0]
    later = [v.name for v in history.versions if v.number > newest.number and history.released(v)]
    if later:
        message = (
            f"{folder}: {', '.join(later)} released before {newest.name}; "
            "versions are released in order"
        )
        raise UsageError.at("usage", message, None)
    check_protocol(load_protocol(newest.path))
    problems = check_folder(folder)
    if problems:
        raise HistoryError(problems)
    assert newest.doc is not None, "it loaded above"
    entries = [
        {"version": r.version, "file": r.file, "sha256": r.sha256}
        for r in (history.lock.released if history.lock is not None else ())
    ]
    entries.append(
        {"version": newest.doc.metadata.version, "file": newest.name, "sha256": newest.sha256}
    )
    lock = {"format": LOCK_FORMAT, "protocol": newest.doc.metadata.registry_id, "released": entries}
    _write_atomically(folder / LOCK_NAME, json.dumps(lock, indent=2, ensure_ascii=False) + "\n")
    return newest.doc.metadata.version


def _write_atomically(path: Path, text: str) -> None:
    # A lock half written by an interrupted release would fail every later check.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


# --- the lock --------------------------------------------------------------------------------


def _read_lock(path: Path, problems: list[Diagnostic]) -> Lock | None:
    try:
        source = read_source(path)
    except LoadError as exc:
        problems += exc.diagnostics
        return None
    try:
        # JSON is YAML here: composing it keeps every value's position in the file.
        root = compose(source, LOCK_NAME)
    except LoadError as exc:
        # Only a syntax error means the lock is not JSON; the depth limit says what it is.
        for d in exc.diagnostics:
            message = f"not JSON: {d.message}" if d.code == "yaml-syntax" else d.message
            problems.append(Diagnostic("lock", message, d.span))
        return None
    reader = _LockReader(source, problems)
    return reader.lock(path, root)


class _LockReader:
    """Reads the lock's node tree, reporting each misshapen part at its position."""

    def __init__(self, source: Source, problems: list[Diagnostic]) -> None:
        self.source = source
        self.problems = problems

    def problem(self, message: str, node: Node) -> None:
        self.problems.append(Diagnostic("lock", message, node_span(self.source, node)))

    def mapping(self, node: Node, keys: Sequence[str], what: str) -> dict[str, Entry] | None:
        if not isinstance(node, MappingNode):
            self.problem(f"{what} must be a JSON object", node)
            return None
        entries = mapping_entries(self.source, node, self._report, merge=self._no_merge)
        missing = [key for key in keys if key not in entries]
        if missing:
            self.problem(f"{what} lacks {', '.join(repr(k) for k in missing)}", node)
            return None
        for name, (key_node, _) in entries.items():
            if name not in keys:
                self.problem(f"unknown key '{name}' in {what}{did_you_mean(name, keys)}", key_node)
        return entries

    def _report(self, _code: str, message: str, span: Span) -> None:
        self.problems.append(Diagnostic("lock", message, span))

    def _no_merge(self, key_node: Node, _value: Node) -> Iterable[dict[str, Entry]]:
        self.problem("'<<' has no meaning in a lock file", key_node)
        return ()

    def text(self, node: Node, what: str) -> str | None:
        # Quoted scalars only: JSON strings, never YAML's bare words or numbers.
        if isinstance(node, ScalarNode) and node.style == '"':
            return str(node.value)
        self.problem(f"{what} must be a JSON string", node)
        return None

    def lock(self, path: Path, root: Node) -> Lock | None:
        entries = self.mapping(root, ("format", "protocol", "released"), LOCK_NAME)
        if entries is None:
            return None
        format_node = entries["format"][1]
        if not (
            isinstance(format_node, ScalarNode)
            and format_node.tag == YAML_TAG + "int"
            and format_node.value == str(LOCK_FORMAT)
        ):
            self.problem(f"'format' must be {LOCK_FORMAT}", format_node)
            return None
        protocol_node = entries["protocol"][1]
        protocol = self.text(protocol_node, "'protocol'")
        released_node = entries["released"][1]
        if not isinstance(released_node, SequenceNode):
            self.problem("'released' must be a JSON list", released_node)
            return None
        released = [self.release(index, node) for index, node in enumerate(released_node.value)]
        if protocol is None or None in released:
            return None
        return Lock(
            path,
            protocol,
            node_span(self.source, protocol_node),
            tuple(r for r in released if r is not None),
        )

    def release(self, index: int, node: Node) -> Release | None:
        what = f"release {index + 1}"
        entries = self.mapping(node, ("version", "file", "sha256"), what)
        if entries is None:
            return None
        version, file, sha256 = (
            self.text(entries[key][1], f"'{key}' of {what}")
            for key in ("version", "file", "sha256")
        )
        if version is None or file is None or sha256 is None:
            return None
        span = node_span(self.source, node)
        # Released in order from 1, each under its own file name: anything else is hand-made.
        if version != str(index + 1):
            self.problem(
                f"{what} must be version {index + 1}, not {version}; versions are released "
                "in order",
                entries["version"][1],
            )
            return None
        match = VERSION_FILE.match(file)
        # Compared as digits: the lock is any text, and int() refuses over 4,300 digits.
        if match is None or match[1].lstrip("0") != str(index + 1):
            self.problem(f"{what} is version {version}, so its file is v{version}.yaml", node)
            return None
        return Release(version, file, sha256, span)


def _check_lock(history: History) -> list[Diagnostic]:
    lock = history.lock
    if lock is None:
        return []
    by_name = {v.name: v for v in history.versions}
    found: list[Diagnostic] = []
    for entry in lock.released:
        version = by_name.get(entry.file)
        problem = _release_problem(entry, None if version is None else version.sha256)
        if problem is not None:
            found.append(problem)
    return found


def _release_problem(entry: Release, sha256: str | None) -> Diagnostic | None:
    """What is wrong with released `entry` when its file hashes to `sha256` (None: missing).

    Located at the entry in the lock, which is what the file is measured against: ``check``
    of a folder and every command using a released version report the same diagnostic.
    """
    if sha256 is None:
        return _missing(entry)
    if sha256 == entry.sha256:
        return None
    message = (
        f"{entry.file} was edited after release (sha256 {entry.sha256[:_SHORT_HASH]}… "
        f"in {LOCK_NAME}, now {sha256[:_SHORT_HASH]}…); released versions are "
        "immutable — write an amendment instead"
    )
    return Diagnostic("release-edited", message, entry.span)


def _missing(entry: Release) -> Diagnostic:
    message = (
        f"{entry.file} is released (in {LOCK_NAME}) but missing; released versions are kept "
        "for good"
    )
    return Diagnostic("release-missing", message, entry.span)


# --- versions --------------------------------------------------------------------------------


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


# --- ids between consecutive versions --------------------------------------------------------


def _check_ids(before: Version, after: Version) -> list[Diagnostic]:
    assert before.doc is not None and after.doc is not None
    old, new = before.doc, after.doc
    prev = before.number
    old_criteria = {c.id: c for c in old.criteria}
    new_criteria = {c.id: c for c in new.criteria}
    names: dict[ChangeTargetKind, tuple[set[str], set[str]]] = {
        "criterion": (set(old_criteria), set(new_criteria)),
        "definition": ({d.name for d in old.definitions}, {d.name for d in new.definitions}),
        "data": ({i.name for i in old.data}, {i.name for i in new.data}),
    }
    found: list[Diagnostic] = []
    # A criterion with any declared change is accounted for: a wrong intent is its own error.
    declared = {c.target for c in new.metadata.changes if c.target_kind == "criterion"}
    for change in new.metadata.changes:
        in_old, in_new = (change.target in side for side in names[change.target_kind])
        problem = _intent_problem(change, in_old, in_new, prev)
        if problem is None:
            continue
        code, message = problem
        if code == "change-target":
            message += did_you_mean(
                change.target, names[change.target_kind][0] | names[change.target_kind][1]
            )
        found.append(Diagnostic(code, message, change.span))
    for gone in old.criteria:
        if gone.id not in new_criteria and gone.id not in declared:
            message = (
                f"criterion {gone.id} of version {prev} is gone without a 'removed' change; "
                f"ids are stable: declare {{target: {gone.id}, intent: removed, rationale: …}} "
                "under protocol.changes"
            )
            found.append(Diagnostic("undeclared-removal", message, new.metadata.span))
    found += item_changes(old, new, str(prev))
    for criterion in new.criteria:
        earlier = old_criteria.get(criterion.id)
        if earlier is None:
            if criterion.id not in declared:
                message = (
                    f"criterion {criterion.id} is new in version {after.number} but no change "
                    "declares it 'added'"
                )
                found.append(Diagnostic("undeclared-addition", message, criterion.span))
            continue
        found += _check_same_id(earlier, criterion, criterion.id in declared, prev)
    return found


def item_changes(old: ProtocolDoc, new: ProtocolDoc, old_version: str) -> list[Diagnostic]:
    """Data items of `new` that keep a name of `old` but hold another kind or type of value.

    Versions are compared on one patient record read by both, so an item must mean the same
    kind of value in each (its unit and code values may change); otherwise no claim about a
    criterion reading it can be checked. Each is located at the item in `new`.
    """
    before = {i.name: i for i in old.data}
    found = []
    for item in new.data:
        earlier = before.get(item.name)
        if earlier is None or (earlier.kind, earlier.type) == (item.kind, item.type):
            continue
        message = (
            f"data item {item.name} is {_holds(item)} here but was {_holds(earlier)} in "
            f"version {old_version}; one record cannot be read by both, so the versions cannot "
            "be compared: keep what it holds, or give the new item a new name"
        )
        found.append(Diagnostic("item-kind", message, item.span))
    return found


def _holds(item: DataItem) -> str:
    """What a data item holds, for messages: ``a code``, ``an observation of quantity``."""
    what = item.type if item.kind == "fact" else f"{item.kind} of {item.type}"
    return ("an " if what[0] in "aeiou" else "a ") + what


def _intent_problem(
    change: Change, in_old: bool, in_new: bool, prev: int
) -> tuple[str, str] | None:
    """What is wrong with a change, given whether its target is in the old and new version."""
    label, intent = change.label, change.intent
    noun = _TARGET_NOUNS[change.target_kind]
    if not in_old and not in_new:
        return "change-target", f"no {noun} '{change.target}' in this version or version {prev}"
    if in_old and in_new:
        if intent == "added":
            return (
                "change-intent",
                f"{label} is declared added, but version {prev} already has it "
                "('added' is for a new id)",
            )
        if intent == "removed":
            return (
                "change-intent",
                f"{label} is declared removed, but this version still has it "
                "('removed' is for an id that is gone)",
            )
        return None
    if in_new and intent != "added":
        return (
            "change-intent",
            f"{label} is declared {intent}, but it is new in this version: declare it 'added'",
        )
    if in_old and intent != "removed":
        return (
            "change-intent",
            f"{label} is declared {intent}, but it is gone from this version: declare it 'removed'",
        )
    return None


def _check_same_id(old: Criterion, new: Criterion, declared: bool, prev: int) -> list[Diagnostic]:
    if old.kind != new.kind:
        message = (
            f"criterion {new.id} is an {new.kind} criterion here but was an {old.kind} criterion "
            f"in version {prev}; ids are stable: give it a new id (and declare the old one "
            "removed, the new one added)"
        )
        return [Diagnostic("criterion-kind", message, new.span)]
    similarity = _similarity(old.text, new.text)
    if not declared and similarity < SIMILARITY_THRESHOLD:
        message = (
            f"criterion {new.id}'s text has little in common with version {prev}'s "
            f"(similarity {similarity:.2f}), and no change is declared: id reused for a "
            "different criterion? A new criterion needs a new id"
        )
        return [Diagnostic("id-reused", message, new.span)]
    return []


def _similarity(a: str, b: str) -> float:
    """How alike two registry texts are, 0 to 1, ignoring case and line wrapping."""

    def norm(text: str) -> str:
        return " ".join(text.split()).casefold()

    return difflib.SequenceMatcher(None, norm(a), norm(b), autojunk=False).ratio()
