"""How a problem of a record is stated: values shown in messages, field and file problems.

A value parser raises `FieldError`; the caller, which knows the field's path, turns it into
a `Problem` (path, code, message), and the reader makes all of a record's problems one
`RecordError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeAlias, TypeGuard

from protocode.core.errors import Diagnostic, RecordError, did_you_mean
from protocode.core.jsontext import MAX_DEPTH, TooDeep
from protocode.records.numbers import Unreadable, format_number, magnitude

__all__ = [
    "INVALID",
    "FieldError",
    "Invalid",
    "Problem",
    "clip",
    "is_mapping",
    "line_error",
    "path_error",
    "show_value",
    "unknown_field",
    "unreadable",
]

Problem: TypeAlias = tuple[str, str, str]  # (field path, code, message)


class FieldError(Exception):
    """A value parser's complaint about one field (`message`, and `code` such as
    ``out-of-range``); the caller knows the field's path and makes it a `Diagnostic`."""

    def __init__(self, message: str, code: str = "bad-value") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Invalid:
    """Marks a field that produced problems: it is reported, not stored."""


INVALID: Final = Invalid()


def show_value(raw: object) -> str:
    """A short rendering of a value for a message, in JSON terms (``'text'``, ``null``,
    ``an object``, a number as people write it)."""
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str):
        return f"'{clip(raw)}'"
    if isinstance(raw, Unreadable):
        return clip(raw.text)
    if isinstance(raw, TooDeep):
        return f"a value nested deeper than {MAX_DEPTH} levels"
    if is_mapping(raw):
        return "an object"
    if isinstance(raw, list | tuple):
        return "a list"
    number = magnitude(raw)
    if number is not None:
        return format_number(number)
    if isinstance(raw, float | Decimal):
        return clip(str(raw))
    return f"a {type(raw).__name__}"


def clip(text: str) -> str:
    """`text`, cut to 40 characters with ``...`` when longer."""
    return text if len(text) <= 40 else text[:37] + "..."


def is_mapping(x: object) -> TypeGuard[Mapping[Any, Any]]:
    """Whether `x` is a JSON object (a mapping)."""
    # The ABC check is slow; records are almost always plain dicts.
    return type(x) is dict or isinstance(x, Mapping)


def _key_text(key: object) -> str:
    """A key of a record object as shown in a field path; API records may use any hashable
    key, and str() of some (an int of over 4,300 digits) raises."""
    return clip(key) if isinstance(key, str) else show_value(key)


def unknown_field(parent: str, key: object, known: Iterable[str], what: str = "field") -> Problem:
    """The problem of an unknown `key` in the object at field path `parent` ("": the record)."""
    name = _key_text(key)
    path = f"{parent}.{name}" if parent else name
    if not isinstance(key, str):
        return (path, "unknown-field", f"{what} names must be strings, got {name}")
    return (path, "unknown-field", f"unknown {what} '{name}'{did_you_mean(key, known)}")


def path_error(path: Path, code: str, message: str) -> RecordError:
    """An error of a file with no text to point at (it could not be read, or its suffix is
    unknown): the message names the file instead."""
    return RecordError([Diagnostic(code, f"{path}: {message}")])


def unreadable(path: Path, exc: OSError) -> RecordError:
    """The error of a record file that cannot be opened or read."""
    return path_error(path, "unreadable", f"cannot read records: {exc.strerror or exc}")


def line_error(where: str, message: str) -> RecordError:
    """The error of one line or row of a file (`where`, e.g. ``line 3``) that holds no record."""
    return RecordError([Diagnostic("malformed", message, record_id=where)])
