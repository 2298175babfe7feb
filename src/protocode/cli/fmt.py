"""``protocode fmt PATH… [--check]``: format protocol files in place, or check them.

Every protocol file named, or found under a folder named, is formatted on its own: a file
that does not load or whose rules do not parse is reported (``path:line:col: code:
message``) and the others are still done. A file released in its folder's lock is never
written, since that would break its recorded hash: when it is not canonical, a note says
so and it does not fail a check (a released version is changed by an amendment).

Exit status: 1 when any file had an error, or with ``--check`` when any file would be
reformatted; else 0.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from protocode.core.errors import ProtocodeError, render
from protocode.document.lock import LOCK_NAME
from protocode.fmt.files import Formatted, format_file, protocol_files, released_files, write


def fmt(args: argparse.Namespace) -> int:
    """Format protocol files in place, or with --check report those that would change."""
    return run(args.paths, args.check, sys.stdout, sys.stderr)


def run(paths: Sequence[str], check: bool, out: TextIO, err: TextIO) -> int:
    """Format (or with `check`, check) the protocol files under `paths`; the exit status."""
    failed = False
    files: list[Path] = []
    for path in paths:
        try:
            files += protocol_files(Path(path))
        except ProtocodeError as exc:
            print(exc.render(), file=err)
            failed = True
    released: dict[Path, frozenset[str]] = {}
    changed = unchanged = 0
    for file in dict.fromkeys(files):
        try:
            if file.parent not in released:
                released[file.parent] = released_files(file.parent)
            formatted = format_file(file)
        except ProtocodeError as exc:
            print(exc.render(), file=err)
            failed = True
            continue
        if formatted.kept:
            print(render(formatted.kept), file=err)
        if not formatted.changed:
            unchanged += 1
        elif file.name in released[file.parent]:
            count = _rules(len(formatted.edits))
            print(
                f"note: {file} is released ({LOCK_NAME}), so it is left as written "
                f"({count} not in the canonical layout)",
                file=err,
            )
            unchanged += 1
        else:
            changed += 1
            if check:
                _report(formatted, out)
            else:
                write(formatted)
                print(f"reformatted {file} ({_rules(len(formatted.edits))})", file=out)
    print(_summary(changed, unchanged, check), file=out)
    return 1 if failed or (check and changed) else 0


def _report(formatted: Formatted, out: TextIO) -> None:
    path = formatted.source.path
    print(f"would reformat {path}", file=out)
    for edit in formatted.edits:
        print(f"  {edit.span}: {edit.what}", file=out)
    diff = difflib.unified_diff(
        formatted.source.text.splitlines(keepends=True),
        formatted.text.splitlines(keepends=True),
        fromfile=path,
        tofile=f"{path} (formatted)",
    )
    out.writelines(line if line.endswith("\n") else line + "\n" for line in diff)


def _rules(count: int) -> str:
    return f"{count} rule{'' if count == 1 else 's'}"


def _files(count: int) -> str:
    return f"{count} file{'' if count == 1 else 's'}"


def _summary(changed: int, unchanged: int, check: bool) -> str:
    if check:
        if not changed:
            return f"{_files(unchanged)} already formatted"
        return f"{_files(changed)} would be reformatted, {unchanged} already formatted"
    return f"{_files(changed)} reformatted, {unchanged} left unchanged"
