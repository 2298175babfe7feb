"""The `protocode` command line: check and release protocols, screen, explain, run cases.

One module per command group (`check`, `screen` with `explain`, `cases`, `amend`, `dosing`,
`endpoints`, `tables`, `compile`, `registry`, `fmt`), each a function taking the parsed
arguments and returning the exit status; `parser` declares the commands and `main` runs
them, importing a command's module only when it runs, so that `protocode --help` does not
wait for z3, DuckDB or the survival estimators. Bad input never ends in a Python
traceback (see `protocode.cli.main`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from protocode.cli.main import main

if TYPE_CHECKING:
    from protocode.screening import Protocol


def load(path: str | Path) -> Protocol:
    """Load, check and compile a protocol file or folder (`protocode.load`).

    Every command loads its protocols through this one name, so that a test can replace
    loading for all of them at once.
    """
    # Imported on use: the front end takes a while to import, and --help needs none of it.
    from protocode.pipeline import load as load_protocol  # noqa: PLC0415

    return load_protocol(path)


__all__ = ["load", "main"]
