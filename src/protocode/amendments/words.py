"""A word-level diff of two texts, the one every report format shows."""

from __future__ import annotations

import difflib


def unified(old: str | None, new: str | None) -> list[str]:
    """A word-level diff of two texts, for reports: ``[-old-]{+new+}`` marks."""
    a, b = (old or "").split(), (new or "").split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b).get_opcodes():
        if op == "equal":
            out.append(" ".join(a[i1:i2]))
        if op in ("delete", "replace"):
            out.append("[-" + " ".join(a[i1:i2]) + "-]")
        if op in ("insert", "replace"):
            out.append("{+" + " ".join(b[j1:j2]) + "+}")
    return out
