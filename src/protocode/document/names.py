"""The names a protocol file gives: what may name a data item or a definition.

One rule for protocol files and for compiled JSON documents alike.
"""

from __future__ import annotations

import re

RESERVED_WORDS: frozenset[str] = frozenset(
    {
        *("and", "or", "not", "if", "then", "else", "true", "false", "between", "in", "is"),
        *("known", "missing", "within", "before", "after", "of", "latest", "earliest", "any"),
        *("no", "count", "ever", "as", "x", "ULN", "LLN"),
    }
)
"""Words of the rule language that cannot name a data item or a definition."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def name_problem(name: str, noun: str) -> str | None:
    """Why `name` cannot name a data item or a definition (`noun` says which), or None.

    The one name rule of protocol files and of compiled JSON documents.
    """
    if not _IDENTIFIER.fullmatch(name):
        return (
            f"{noun} name '{name}' is not an identifier"
            " (letters, digits and '_', not starting with a digit)"
        )
    if name in RESERVED_WORDS:
        return f"{noun} name '{name}' is a reserved word of the rule language"
    return None
