"""One in-process DuckDB database: running statements, reporting progress, and its errors.

Every statement is a sqlglot AST (`protocode.backends.sql.build`): identifiers and literals,
file paths included, are quoted by sqlglot, never pasted into SQL text. Statements built for
a protocol are kept in its `Protocol.plans`, so that they live and die with it.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from protocode.backends.sql.build import setting, string
from protocode.core.errors import UsageError
from protocode.screening import Protocol

Progress = Callable[[str, float | None], None]
"""Told ``(stage, fraction)`` while a long statement runs (fraction None: DuckDB cannot tell)."""

# The longest DuckDB message an error repeats.
_MAX_REASON = 300
# How often the progress thread asks DuckDB how far a statement is, in seconds.
_POLL_SECONDS = 0.2
# What DuckDB's readers take as a glob pattern in a path (it expands `~` only in front).
_GLOB = re.compile(r"([*?\[])")


def reason(exc: duckdb.Error) -> str:
    """DuckDB's message in one line: its first paragraph (without the reader settings it
    lists after it), capped (a schema mismatch lists every column)."""
    # DuckDB's advice names its own reader options, which are not the user's to set.
    paragraph = str(exc).strip().split("\n\n")[0].split("\nPossible fixes:")[0]
    text = "; ".join(line.strip() for line in paragraph.splitlines() if line.strip())
    # A damaged file's bytes can reach the message: shown escaped, never as control codes.
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    text = text.rstrip(": ") or type(exc).__name__
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON] + " …"


@contextlib.contextmanager
def file_errors(what: str) -> Iterator[None]:
    """DuckDB's error for a file it cannot read or write, as one `UsageError` naming `what`.

    DuckDB reads and writes the files itself (not valid UTF-8, not Parquet, a folder that
    does not exist), so its message is the best account of the problem.
    """
    try:
        yield
    except duckdb.Error as exc:
        raise UsageError.at("unreadable", f"{what}: {reason(exc)}", None) from None


def read_path(path: Path) -> exp.Literal:
    """A file for DuckDB to read, naming exactly that file.

    DuckDB's readers expand glob patterns: a folder named ``t*`` would also read ``tx``'s
    files. The absolute path (no leading ``~``) with each pattern character in a
    one-character class (``[*]`` matches only ``*``) names the file itself.
    """
    return string(_GLOB.sub(r"[\1]", str(path.absolute())))


def copy_to(query: exp.Expr, path: Path, options: Sequence[tuple[str, exp.Expr]]) -> exp.Copy:
    """``COPY (query) TO path (options)``."""
    # COPY TO writes the path as given (no globbing); absolute, so `~` is not the home folder.
    params = [exp.CopyParameter(this=exp.var(k), expression=v) for k, v in options]
    return exp.Copy(
        this=exp.Subquery(this=query),
        kind=False,
        files=[string(str(path.absolute()))],
        params=params,
    )


def _no_progress(stage: str, fraction: float | None) -> None:
    del stage, fraction


class Engine:
    """A DuckDB database in memory, working for one protocol.

    `threads` and `memory_limit` (e.g. ``"4GB"``) go to DuckDB; `progress` is called from a
    helper thread while long statements run.
    """

    def __init__(
        self,
        protocol: Protocol,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.protocol = protocol
        self.con = duckdb.connect(":memory:")
        self.progress = progress or _no_progress
        if threads is not None:
            self.run(setting("threads", exp.Literal.number(int(threads))))
        if memory_limit is not None:
            self.run(setting("memory_limit", string(memory_limit)))

    def close(self) -> None:
        """Close the database (its tables go with it)."""
        self.con.close()

    def run(self, statement: exp.Expr | str) -> duckdb.DuckDBPyConnection:
        """Run one statement (an AST, or SQL text a plan holds)."""
        sql = statement if isinstance(statement, str) else statement.sql(dialect="duckdb")
        return self.con.execute(sql)

    def run_many(self, statement: exp.Expr, rows: Sequence[Sequence[Any]]) -> None:
        """Run a statement with placeholders once per row of parameters."""
        self.con.executemany(statement.sql("duckdb"), rows)

    def plan(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """A statement (or plan) for this protocol, built once and kept with the protocol.

        Building a sqlglot tree and generating its SQL costs more than DuckDB running it on a
        small batch, and a process screens many batches against one protocol.
        """
        plans = self.protocol.plans
        full = ("tables", key)
        if full not in plans:
            plans[full] = build()
        return plans[full]

    def watched(self, stage: str, statement: exp.Expr | str) -> None:
        """Run a long statement while a helper thread reports DuckDB's progress."""
        done = threading.Event()

        def watch() -> None:
            while not done.wait(_POLL_SECONDS):
                try:
                    value = self.con.query_progress()
                except duckdb.Error:
                    return
                self.progress(stage, value / 100 if value >= 0 else None)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            self.run(statement)
        finally:
            done.set()
            watcher.join()
        self.progress(stage, 1.0)
