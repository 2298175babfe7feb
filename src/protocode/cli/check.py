"""`protocode check`: load, check and compile protocol files, and a folder's history."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from protocode import cli
from protocode.amendments.folder import check_folder
from protocode.cli.output import dumps, error
from protocode.core.errors import Diagnostic, ProtocodeError, render
from protocode.document.lock import VERSION_FILE
from protocode.screening import Protocol


def check(args: argparse.Namespace) -> int:
    """Load every protocol file named; print diagnostics, and ok lines for files without any."""
    found: list[Diagnostic] = []
    # Loading an edited release fails at its lock entry, and the folder's checks find it
    # again (a malformed lock, for every file): each problem is reported once.
    seen: set[tuple[str, str, str]] = set()

    def fresh(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
        new = [d for d in diagnostics if (d.code, d.location, d.message) not in seen]
        seen.update((d.code, d.location, d.message) for d in new)
        return new

    for path in args.paths:
        good: list[tuple[Path, Protocol]] = []
        for file in _version_files(Path(path)):
            try:
                protocol = cli.load(file)
            except ProtocodeError as exc:
                new = fresh(exc.diagnostics)
                found.extend(new)
                if args.format == "text" and new:
                    # Draft criteria are a to-do list: shown in full, beyond the usual cap.
                    drafts = sum(d.code == "draft" for d in new)
                    error(render(new, 20 + drafts))
                    if drafts:
                        error(f"{file}: {drafts} draft criteria still need a rule")
                continue
            good.append((file, protocol))
        if Path(path).is_dir():
            compiled = {file.resolve(): protocol for file, protocol in good}
            problems = fresh(check_folder(Path(path), compiled))
            found.extend(problems)
            if problems and args.format == "text":
                error(render(problems))
            # A file the folder's checks refuse (a false intent, an edited release) is not ok.
            blamed = {Path(d.span.source.path).resolve() for d in problems if d.span}
            good = [(file, protocol) for file, protocol in good if file.resolve() not in blamed]
        if args.format == "text":
            for file, protocol in good:
                count = len(protocol.checked.endpoints)
                extra = f", {count} endpoint{'' if count == 1 else 's'}" if count else ""
                print(
                    f"ok {file} ({protocol.registry_id}, version {protocol.version}, "
                    f"{len(protocol.criteria)} criteria{extra})"
                )
    if args.format == "json":
        print(dumps([d.to_json() for d in found]))
    return 1 if found else 0


def _version_files(path: Path) -> list[Path]:
    """A folder's vN.yaml files, oldest first; anything else as itself, for `load` to judge."""
    versions = sorted(
        (int(m.group(1)), f)
        for f in (path.iterdir() if path.is_dir() else ())
        if (m := VERSION_FILE.match(f.name))
    )
    return [f for _, f in versions] or [path]
