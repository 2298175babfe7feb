"""`protocode`'s entry point: parse, run the command's handler, turn errors into messages.

A handler is imported only when its command runs (`protocode.cli.parser` names it as
``module:function``), so a command loads the libraries it needs and no others. A
`ProtocodeError` is rendered on stderr with its file positions, an `OSError` becomes one
line, a `CommandLineError` is a usage error as argparse reports them (exit 2). Any other
exception is a bug in protocode: one line with its own exit status (3), the traceback only
with --debug or PROTOCODE_DEBUG=1, so a crash never passes for an error in the input.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Callable

from protocode.cli.parser import DEBUG_VARIABLE, parser
from protocode.core.errors import ProtocodeError

# A crash is not an input error: its own status, and the traceback on request.
_CRASH_STATUS = 3
_USAGE_STATUS = 2

Handler = Callable[[argparse.Namespace], int]


class CommandLineError(Exception):
    """A command line that parses but cannot be done as asked (e.g. `explain` without --id
    on a file of several records): reported with the command's usage, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    """Run the command line with `argv` (default: ``sys.argv[1:]``); return the exit status."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        # argparse exits on --help and --version (0) and on usage errors (2); callers
        # in-process want the code.
        return exc.code if isinstance(exc.code, int) else _USAGE_STATUS
    try:
        return handler(args.handler)(args)
    except CommandLineError as exc:
        command: argparse.ArgumentParser = args.parser
        command.print_usage(sys.stderr)
        print(f"{command.prog}: error: {exc}", file=sys.stderr)
        return _USAGE_STATUS
    except ProtocodeError as exc:
        print(exc.render(), file=sys.stderr)
    except BrokenPipeError:
        # The reader went away (`protocode screen … | head`); also keep the exit-time flush
        # of stdout from failing a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"protocode: {where}{exc.strerror or exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the safety net: whatever else escapes a command is a bug
        return _crash(args, exc)
    return 1


def handler(name: str) -> Handler:
    """The function `name` (``module:function``) of a module of `protocode.cli`, imported."""
    module, _, function = name.partition(":")
    found: Handler = getattr(importlib.import_module(f"protocode.cli.{module}"), function)
    return found


def _crash(args: argparse.Namespace, exc: Exception) -> int:
    """Report a bug in protocode: one line naming the command, the traceback on request."""
    debug = args.debug or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    if debug:
        traceback.print_exception(exc)
    # The first line of the message, cut short: an exception may quote a huge input.
    detail = (str(exc).splitlines() or [""])[0]
    detail = f": {detail[:200]}{'…' if len(detail) > 200 else ''}" if detail else ""
    how = (
        "the traceback is above"
        if debug
        else f"run again with --debug (or {DEBUG_VARIABLE}=1) for the traceback"
    )
    print(
        f"{args.command_name}: internal error ({type(exc).__name__}{detail}): a bug in "
        f"protocode, not in the input; {how}, and please report it",
        file=sys.stderr,
    )
    return _CRASH_STATUS
