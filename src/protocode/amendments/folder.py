"""A whole protocol folder checked: its history's rules, then every amendment's claims.

`check_folder` is everything ``protocode check`` verifies about a folder beyond each file on
its own, and what `release` requires to be empty before it records a version in the lock.
The structural rules of a history live with the document (`document.history`); proving
that each declared intent holds needs every version compiled and compared, which is why
this sits above screening and the SMT backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from protocode.core.errors import Diagnostic, ProtocodeError, UsageError
from protocode.document.history import History, HistoryError, check_history, load_history
from protocode.document.loader import load_protocol
from protocode.document.lock import write_lock
from protocode.language.check import check_protocol
from protocode.screening import Protocol


def check_folder(folder: Path, compiled: Mapping[Path, Protocol] | None = None) -> list[Diagnostic]:
    """Every problem of a protocol folder beyond each file's own, sorted by position.

    This is what ``protocode check`` adds for a folder and what `release` requires to be
    empty: the structural rules of `check_history`, then, once the history is sound, every
    amendment's declared intents checked against what its changes really mean. `compiled`
    holds versions the caller has compiled already (by resolved path), so that they are not
    compiled twice.
    """
    history = load_history(folder)
    found = check_history(history)
    if not found:
        found = _check_claims(history, compiled or {})
    return sorted(found, key=Diagnostic.sort_key)


def _check_claims(history: History, known: Mapping[Path, Protocol]) -> list[Diagnostic]:
    # Imported here: proving claims loads z3, which a command merely naming this module
    # (the CLI's parser) should not pay for.
    from protocode.amendments.claims import check_claims  # noqa: PLC0415

    compiled: dict[int, Protocol] = {}
    for version in history.versions:
        if version.doc is None:
            continue
        given = known.get(version.path.resolve())
        if given is not None and given.checked.doc is version.doc:
            compiled[version.number] = given
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
    lock = history.lock
    released = [(r.version, r.file, r.sha256) for r in (lock.released if lock is not None else ())]
    released.append((newest.doc.metadata.version, newest.name, newest.sha256))
    write_lock(folder, newest.doc.metadata.registry_id, released)
    return newest.doc.metadata.version
