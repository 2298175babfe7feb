"""protocode: clinical-trial protocols as code.

A protocol version is a YAML file whose rules are written in a small typed language.
`load` reads, parses, checks and compiles it; the returned `Protocol` screens patient
records (eligible / ineligible / indeterminate) and explains every verdict.

    >>> import protocode
    >>> trial = protocode.load("protocol/NCT06125106")
    >>> result = trial.screen(record)          # doctest: +SKIP
    >>> result.status, result.explain().to_text()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from protocode.core.errors import (
    CheckError,
    Diagnostic,
    LoadError,
    ProtocodeError,
    RecordError,
    RuleSyntaxError,
    UsageError,
)

if TYPE_CHECKING:
    from protocode.amendments import DiffReport
    from protocode.pipeline import load, load_text, protocol_file
    from protocode.records import Record
    from protocode.screening import Explanation, Protocol, Screening

# Where each name that needs the language front end lives: imported on first use, so that
# `import protocode` (and with it the command line's --help) does not wait for it.
_LAZY = {
    "load": "protocode.pipeline",
    "load_text": "protocode.pipeline",
    "protocol_file": "protocode.pipeline",
    "Record": "protocode.records",
    "Explanation": "protocode.screening",
    "Protocol": "protocode.screening",
    "Screening": "protocode.screening",
}


def __getattr__(name: str) -> Any:
    """`load`, `load_text`, `protocol_file`, `Record`, `Explanation`, `Protocol` and
    `Screening`, imported from their modules on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public API, the lazily imported names included."""
    return sorted({*globals(), *_LAZY})


def diff(old: Protocol, new: Protocol, cohort: Iterable[Any] | None = None) -> DiffReport:
    """The semantic diff of two protocol versions (see `protocode.amendments.diff`).

    Imported on first use: it needs the z3 solver, which screening alone does not.
    """
    from protocode.amendments import diff as semantic_diff  # noqa: PLC0415

    return semantic_diff(old, new, cohort)


__all__ = [
    "CheckError",
    "Diagnostic",
    "Explanation",
    "LoadError",
    "ProtocodeError",
    "Protocol",
    "Record",
    "RecordError",
    "RuleSyntaxError",
    "Screening",
    "UsageError",
    "diff",
    "load",
    "load_text",
    "protocol_file",
]
