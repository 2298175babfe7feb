"""Reading input files: regular files only, of bounded size, as UTF-8 text.

Every reader of protocol, lock, case, mapping and record files starts here, so that a named
pipe, a device or a huge file is refused the same way everywhere, and a byte that is not
UTF-8 is located as the YAML and JSON readers locate everything else.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from protocode.core.errors import Diagnostic, LoadError
from protocode.core.source import Source

MAX_FILE_BYTES = 8_000_000
"""The largest file read, in bytes (8 MB).

Protocol, lock, case and mapping files are tens of kilobytes. Composing YAML in pure Python
costs about 30 seconds and 300 MB per megabyte of the densest text (``[1,1,1,…]``), so the
limit bounds time and memory while leaving a protocol with 100,000 data items (3 MB) room.
"""

_MEGABYTE = 1_000_000


def read_bytes(path: Path) -> bytes:
    """The content of the regular file at `path`, of at most `MAX_FILE_BYTES`.

    Raises `LoadError` with a single ``io`` diagnostic naming the file when it does not
    exist, cannot be read, is not a regular file (a folder, a named pipe, a device: reading
    one can block or never end) or is larger than the limit.
    """
    try:
        # Non-blocking, so that opening a named pipe returns at once instead of waiting for a
        # writer; reading a regular file is unaffected.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise _io_error(path, "no such file") from None
    except OSError as exc:
        raise _io_error(path, exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _io_error(path, f"it is {_file_kind(info.st_mode)}, not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise _too_large(path, info.st_size)
        with os.fdopen(fd, "rb", closefd=False) as file:
            # One byte past the limit tells a file that grew since `fstat` from one that fits.
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _io_error(path, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(path, len(data))
    return data


def decode_source(path: str, data: bytes) -> Source:
    """`data` as the UTF-8 text of a `Source` named `path`, exactly as stored.

    Raises `LoadError` with an ``io`` diagnostic at the line and column of the first byte
    that is not UTF-8; the source it points into shows that byte as U+FFFD.
    """
    try:
        return Source(path, data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        # Everything before the bad byte is valid, so its length is the bad byte's offset.
        at = len(data[: exc.start].decode("utf-8"))
        source = Source(path, data.decode("utf-8", errors="replace"))
        message = (
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be read as UTF-8"
            " (save the file as UTF-8)"
        )
        raise LoadError([Diagnostic("io", message, source.span(at, at + 1))]) from None


def read_source(path: Path) -> Source:
    """Read the UTF-8 file at `path` through `read_bytes` and `decode_source`.

    Line breaks are read as Python's text files read them (``\\r\\n`` and ``\\r`` become
    ``\\n``), so lines count as YAML counts them.
    """
    return text_source(str(path), read_bytes(path))


def text_source(path: str, data: bytes) -> Source:
    """`data`, read from the file `path`, as `read_source` reads it: UTF-8 text (see
    `decode_source`) with its line breaks as Python's text files read them."""
    source = decode_source(path, data)
    text = source.text.replace("\r\n", "\n").replace("\r", "\n")
    return source if text == source.text else Source(source.path, text)


def _io_error(path: Path, reason: str) -> LoadError:
    return LoadError([Diagnostic("io", f"cannot read {path}: {reason}")])


def _too_large(path: Path, size: int) -> LoadError:
    limit = MAX_FILE_BYTES // _MEGABYTE
    return _io_error(
        path, f"it is {size / _MEGABYTE:,.1f} MB; protocode reads files of at most {limit} MB"
    )


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file"
