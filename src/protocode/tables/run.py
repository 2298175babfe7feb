"""Run stage of the SQL backend: stage and validate tables in DuckDB, screen, stream results.

A `Connection` is one in-process DuckDB database for one protocol:

1. **Stage** the three tables of the layout (``docs/sql.md``) from CSV or Parquet files
   (`load`), or from records converted on the fly (`load_records`). CSV files are read once,
   as text, into DuckDB tables; Parquet files are read in place through views.
2. **Validate** every cell against the data dictionary (`validate`): a bad cell becomes a
   `RecordError` for its record (id and field), the record is left out of the screening and
   the batch goes on. The checks are one set-based scan per table; messages are written in
   Python only for the rows that fail.
3. **Screen** (`screen`): the compiled query (`protocode.backends.sql.compile`) runs once over typed
   tables of the valid records into a results table; the counts per status and the attrition
   per criterion are one aggregate over it.
4. **Write** (`write`): DuckDB's own COPY streams results and errors, ordered by id, to CSV,
   Parquet, JSONL or a JSON array.

Every statement is a sqlglot AST: identifiers and literals (file paths included) are quoted
by sqlglot, never pasted into SQL text.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import json
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import duckdb
from sqlglot import exp

from protocode.backends.sql.compile import compile_query
from protocode.backends.sql.layout import Fmt, Layout, is_numeric, layout, number_format
from protocode.core.errors import Diagnostic, RecordError, UsageError, did_you_mean
from protocode.core.jsontext import escape_line_breaks
from protocode.document.model import DataItem
from protocode.records import Record, iter_records
from protocode.screening import Protocol, Screening
from protocode.tables.convert import (
    EVENT_COLUMNS,
    EVENTS,
    OBSERVATION_COLUMNS,
    OBSERVATIONS,
    PATIENTS,
    RowWriter,
    TableFormat,
    record_dict,
    write_csv,
)

OutputFormat = Literal["csv", "parquet", "jsonl", "json"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("csv", "parquet", "jsonl", "json")

# The record reader's date range (records.py): the same dates are valid in both engines.
_MIN_DATE = dt.date(1800, 1, 1)
_MAX_DATE = dt.date(2200, 12, 31)
_DATE_RE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_NUMBER_RE = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
# Boolean cells: the spellings the records' CSV reader accepts, in any case.
_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")
# The longest DuckDB message an error repeats.
_MAX_REASON = 300
# Rows fetched per round trip when reading results or tables back into Python.
_FETCH = 10_000
# How often the progress thread asks DuckDB how far a statement is, in seconds.
_POLL_SECONDS = 0.2

_TABLES = (PATIENTS, OBSERVATIONS, EVENTS)
_RAW = {name: f"raw_{name}" for name in _TABLES}
_BAD_IDS = "bad_ids"
_RESULTS = "results"
_ERRORS = "errors"


# --- finding the input files ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableFiles:
    """The files of one set of input tables; a missing long table is None (no rows)."""

    patients: Path
    observations: Path | None
    events: Path | None
    format: TableFormat


def table_format(path: Path) -> TableFormat | None:
    """``parquet`` or ``csv`` by a file's suffix, else None."""
    suffix = path.suffix.lower()
    return "parquet" if suffix == ".parquet" else "csv" if suffix == ".csv" else None


def find_tables(path: Path) -> TableFiles:
    """The tables at `path`: a folder holding ``patients.csv`` or ``patients.parquet`` (and
    optionally ``observations`` and ``events`` in the same format), or one table file.

    A file named ``patients.<ext>`` brings its sibling long tables along; a table file with
    another name is a ``patients`` table alone. Raises `UsageError` when there is none.
    """
    if path.is_dir():
        found = [f for f in (path / "patients.parquet", path / "patients.csv") if f.exists()]
        if not found:
            raise UsageError.at(
                "usage", f"{path}: no patients.parquet or patients.csv in this folder", None
            )
        if len(found) > 1:
            raise UsageError.at(
                "usage", f"{path}: holds both patients.parquet and patients.csv; keep one", None
            )
        path = found[0]
    fmt = table_format(path)
    if fmt is None:
        raise UsageError.at(
            "usage", f"{path}: a table is a .csv or .parquet file (or a folder of them)", None
        )
    if not path.is_file():
        raise UsageError.at("usage", f"{path}: no such file", None)
    if path.stem.lower() != PATIENTS:
        return TableFiles(path, None, None, fmt)

    def sibling(name: str) -> Path | None:
        candidate = path.with_name(f"{name}{path.suffix}")
        return candidate if candidate.is_file() else None

    return TableFiles(path, sibling(OBSERVATIONS), sibling(EVENTS), fmt)


def is_tables(path: Path, protocol: Protocol) -> bool:
    """Whether `path` holds tables of the layout rather than records: a folder with a
    patients table, a Parquet file, or a CSV file whose header is a ``patients`` table's
    and that records CSV cannot be (``attest__``/``known__`` columns, or ``patients.csv``)."""
    if path.is_dir():
        return any((path / f"patients.{s}").is_file() for s in ("parquet", "csv"))
    fmt = table_format(path)
    if fmt == "parquet":
        return True
    if fmt != "csv":
        return False
    names = {c.name for c in layout(protocol.checked).columns}
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            header = [h.strip() for h in next(csv.reader(f), [])]
    except (OSError, UnicodeDecodeError):
        return False
    if "id" not in header or not set(header) <= names:
        return False
    return path.stem.lower() == PATIENTS or any(
        h.startswith(("attest__", "known__")) for h in header
    )


def _csv_header(path: Path) -> list[str]:
    """The column names of a CSV table (its first row). Raises `UsageError` for a file that
    has none, a blank name or a name given twice."""
    try:
        # Undecodable bytes are kept (as surrogates) so that only the header's are judged:
        # the rows' are DuckDB's to report, with their line.
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            header = next(csv.reader(f), None)
    except OSError as exc:
        raise UsageError.at("unreadable", f"{path}: {exc.strerror or exc}", None) from None
    except csv.Error as exc:
        raise UsageError.at("unreadable", f"{path}: bad header row: {exc}", None) from None
    if header is not None and any(c != c.encode("utf-8", "replace").decode() for c in header):
        raise UsageError.at("unreadable", f"{path}: the header row is not UTF-8 text", None)
    if not header:
        message = f"{path}: empty file; a table starts with a header row of column names"
        raise UsageError.at("usage", message, None)
    problems = [
        f"{path}: column {i} of the header has no name" for i, c in enumerate(header, 1) if not c
    ]
    problems += [f"{path}: column '{c}' is in the header twice" for c in _repeated(header) if c]
    if problems:
        raise UsageError([Diagnostic("usage", p) for p in problems])
    return header


def _repeated(names: Sequence[str]) -> list[str]:
    return [n for n, count in Counter(names).items() if count > 1]


# --- SQL helpers ------------------------------------------------------------------------------


def _id(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=_id(name), table=_id(table) if table else None)


def _table(name: str) -> exp.Table:
    return exp.Table(this=_id(name))


def _str(text: str) -> exp.Literal:
    return exp.Literal.string(text)


def _type(text: str) -> exp.DataType:
    return exp.DataType.build(text, dialect="duckdb")


def _varchar(e: exp.Expr, src_type: str) -> exp.Expr:
    """A cell as text (it already is when its column is VARCHAR)."""
    return e if src_type == "VARCHAR" else exp.Cast(this=e, to=_type("VARCHAR"))


def _named(name: str, value: exp.Expr) -> exp.EQ:
    # DuckDB's table functions take options as `name = value`.
    return exp.EQ(this=exp.column(name), expression=value)


def _is_null(e: exp.Expr) -> exp.Expr:
    return exp.Is(this=e.copy(), expression=exp.Null())


def _two_valued(e: exp.Expr) -> exp.Expr:
    """NULL read as false."""
    return exp.Coalesce(this=exp.Paren(this=e), expressions=[exp.false()])


def _and(*parts: exp.Expr) -> exp.Expr:
    return exp.and_(*(exp.Paren(this=p.copy()) for p in parts), copy=False)


def _or(*parts: exp.Expr) -> exp.Expr:
    return exp.or_(*(exp.Paren(this=p.copy()) for p in parts), copy=False)


def _not(e: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Paren(this=e.copy()))


def _full_match(text: exp.Expr, pattern: str) -> exp.Expr:
    return exp.RegexpFullMatch(this=text.copy(), expression=_str(pattern))


def _case(whens: Sequence[tuple[exp.Expr, exp.Expr]], default: exp.Expr) -> exp.Expr:
    if not whens:
        # A CASE needs a WHEN (sqlglot cannot print one without): a protocol with no item of
        # a kind has no per-item branches, and every row takes the default.
        return default.copy()
    case = exp.Case()
    for cond, value in whens:
        case = case.when(cond.copy(), value.copy(), copy=False)
    return case.else_(default.copy(), copy=False)


def _reason(exc: duckdb.Error) -> str:
    """DuckDB's message in one line: its first paragraph (without the reader settings it
    lists after it), capped (a schema mismatch lists every column)."""
    # DuckDB's advice names its own reader options, which are not the user's to set.
    paragraph = str(exc).strip().split("\n\n")[0].split("\nPossible fixes:")[0]
    reason = "; ".join(line.strip() for line in paragraph.splitlines() if line.strip())
    # A damaged file's bytes can reach the message: shown escaped, never as control codes.
    reason = "".join(c if c.isprintable() else repr(c)[1:-1] for c in reason)
    reason = reason.rstrip(": ") or type(exc).__name__
    return reason if len(reason) <= _MAX_REASON else reason[:_MAX_REASON] + " …"


@contextlib.contextmanager
def _file_errors(what: str) -> Iterator[None]:
    """DuckDB's error for a file it cannot read or write, as one `UsageError` naming `what`.

    DuckDB reads and writes the files itself (not valid UTF-8, not Parquet, a folder that
    does not exist), so its message is the best account of the problem.
    """
    try:
        yield
    except duckdb.Error as exc:
        raise UsageError.at("unreadable", f"{what}: {_reason(exc)}", None) from None


# What DuckDB's readers take as a glob pattern in a path (it expands `~` only in front).
_GLOB = re.compile(r"([*?\[])")


def _read_path(path: Path) -> exp.Literal:
    """A file for DuckDB to read, naming exactly that file.

    DuckDB's readers expand glob patterns: a folder named ``t*`` would also read ``tx``'s
    files. The absolute path (no leading ``~``) with each pattern character in a
    one-character class (``[*]`` matches only ``*``) names the file itself.
    """
    return _str(_GLOB.sub(r"[\1]", str(path.absolute())))


def _copy(query: exp.Expr, path: Path, options: Sequence[tuple[str, exp.Expr]]) -> exp.Copy:
    # COPY TO writes the path as given (no globbing); absolute, so `~` is not the home folder.
    params = [exp.CopyParameter(this=exp.var(k), expression=v) for k, v in options]
    return exp.Copy(
        this=exp.Subquery(this=query),
        kind=False,
        files=[_str(str(path.absolute()))],
        params=params,
    )


# --- what a cell must hold --------------------------------------------------------------------


_NO_FMT = Fmt(0, 0)


@dataclass(frozen=True, slots=True)
class _Spec:
    """What one cell must hold, from the data dictionary."""

    kind: Literal["date", "boolean", "number", "code", "text"]
    item: str = ""
    fmt: Fmt = _NO_FMT
    integer: bool = False
    minimum: str | None = None
    maximum: str | None = None
    unit: str = ""
    values: tuple[str, ...] = ()

    @property
    def target(self) -> exp.DataType:
        """The SQL type of a valid cell."""
        match self.kind:
            case "date":
                return _type("DATE")
            case "boolean":
                return _type("BOOLEAN")
            case "number":
                return _type("BIGINT") if self.integer else self.fmt.sql_type()
            case _:
                return _type("VARCHAR")


_DATE = _Spec("date")
_BOOLEAN = _Spec("boolean")


def _spec(item: DataItem, *, ranged: bool = True) -> _Spec:
    """The spec of one value of `item`; `ranged` False drops its plausible range (for
    reference limits, which records do not range-check either)."""
    if item.kind == "anchor" or item.type == "date":
        return _DATE
    if item.type == "boolean":
        return _BOOLEAN
    if is_numeric(item):
        return _Spec(
            "number",
            item.name,
            number_format(item),
            item.type == "integer",
            item.minimum if ranged else None,
            item.maximum if ranged else None,
            item.unit or "" if item.type == "quantity" else "",
        )
    if item.type == "code":
        return _Spec("code", item.name, values=item.values)
    return _Spec("text", item.name)


def _parse(spec: _Spec, source: exp.Expr, src_type: str) -> tuple[exp.Expr, exp.Expr]:
    """(valid, typed) SQL for a cell: `valid` is two-valued and TRUE for an empty cell."""
    target = spec.target
    if src_type == target.sql("duckdb"):
        # Already typed (Parquet): only the range is left to check.
        text = None
        typed = source
    else:
        text = _varchar(source, src_type)
        typed = exp.TryCast(this=text.copy(), to=target)
    checks: list[exp.Expr] = []
    match spec.kind:
        case "date":
            if text is not None:
                checks.append(_full_match(text, _DATE_RE))
            low, high = (exp.cast(_str(d.isoformat()), "DATE") for d in (_MIN_DATE, _MAX_DATE))
            checks.append(exp.Between(this=typed.copy(), low=low, high=high))
        case "boolean":
            if text is not None:
                folded = exp.Lower(this=text.copy())
                checks.append(exp.In(this=folded, expressions=[_str(v) for v in (*_TRUE, *_FALSE)]))
                typed = exp.In(this=folded.copy(), expressions=[_str(v) for v in _TRUE])
        case "number":
            if text is not None:
                checks.append(_full_match(text, _number_pattern(spec.fmt)))
            for bound, cmp in ((spec.minimum, exp.GTE), (spec.maximum, exp.LTE)):
                if bound is not None:
                    limit = exp.Cast(this=exp.Literal.number(bound), to=spec.fmt.sql_type())
                    checks.append(cmp(this=typed.copy(), expression=limit))
        case "code":
            checks.append(exp.In(this=typed.copy(), expressions=[_str(v) for v in spec.values]))
        case _:
            pass
    valid = _or(_is_null(source), _two_valued(_and(*checks))) if checks else exp.true()
    return valid, typed


def _number_pattern(fmt: Fmt) -> str:
    """Plain decimal text with at most `fmt.digits` integer digits and `fmt.scale`
    significant decimal places (trailing zeros are free): what the layout holds exactly."""
    whole = f"0*[0-9]{{1,{fmt.digits}}}"
    if fmt.scale:
        return f"[+-]?(?:{whole}(?:\\.[0-9]{{0,{fmt.scale}}}0*)?|\\.[0-9]{{1,{fmt.scale}}}0*)"
    return f"[+-]?(?:{whole}(?:\\.0*)?|\\.0+)"


def _message(spec: _Spec, text: str) -> tuple[str, str]:
    """Why `text` is not a valid cell of `spec` (code, message)."""
    match spec.kind:
        case "date":
            try:
                dt.date.fromisoformat(text) if re.fullmatch(_DATE_RE, text) else None
            except ValueError:
                pass
            else:
                if re.fullmatch(_DATE_RE, text):
                    return "bad-date", f"date {text} is outside {_MIN_DATE} to {_MAX_DATE}"
            return "bad-date", f"expected a date YYYY-MM-DD, got {text!r}"
        case "boolean":
            return "bad-value", f"expected true or false, got {text!r}"
        case "code":
            hint = did_you_mean(text, spec.values, expected=True)
            return "bad-code", f"{text!r} is not a value of '{spec.item}'{hint}"
        case "number":
            return _number_message(spec, text)
        case _:  # pragma: no cover - any text is valid text
            return "bad-value", f"bad text {text!r}"


def _number_message(spec: _Spec, text: str) -> tuple[str, str]:
    if not re.fullmatch(_NUMBER_RE, text):
        kind = "an integer" if spec.integer else "a plain decimal number"
        return "bad-value", f"expected {kind}, got {text!r}"
    x = Fraction(Decimal(text))
    if spec.integer and x.denominator != 1:
        return "bad-value", f"expected an integer, got {text!r}"
    unit = f" {spec.unit}" if spec.unit else ""
    low = None if spec.minimum is None else Fraction(spec.minimum)
    high = None if spec.maximum is None else Fraction(spec.maximum)
    if low is not None and x < low:
        return "out-of-range", f"{text}{unit} is below the plausible minimum {spec.minimum}{unit}"
    if high is not None and x > high:
        return "out-of-range", f"{text}{unit} is above the plausible maximum {spec.maximum}{unit}"
    if (x * 10**spec.fmt.scale).denominator != 1:
        return "sql-range", (
            f"{text} has more than {spec.fmt.scale} decimal places, the most the SQL layout "
            "holds exactly"
        )
    return "sql-range", (
        f"{text} has more than {spec.fmt.digits} integer digits, the most the SQL layout holds "
        "for this item (give it a plausible range: minimum and maximum)"
    )


@dataclass(frozen=True, slots=True)
class _Check:
    """One validity test of a table's rows; `explain` turns a failing row (its cells as
    text, by column) into (field, code, message)."""

    valid: exp.Expr
    explain: Callable[[Mapping[str, str | None]], tuple[str, str, str]]


# --- results ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Summary:
    """Counts of one run: records per status, and per criterion how many records it excluded
    or left undecided (what the row engine's summary counts)."""

    criteria: tuple[str, ...]
    statuses: Counter[str] = field(default_factory=Counter)
    excluded: Counter[str] = field(default_factory=Counter)
    undecided: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """Every record: screened or in error."""
        return sum(self.statuses.values())


Progress = Callable[[str, float | None], None]

# Statements built for a protocol, by protocol and input column types: building a sqlglot
# tree and generating its SQL costs more than DuckDB running it on a small batch, and a
# process screens many batches against one protocol (the property tests do so hundreds of
# times). The protocol object is kept with its entry so that its id is not reused.
_PLANS: dict[int, tuple[object, dict[Any, Any]]] = {}
_PLANS_LIMIT = 64


def _memo(owner: object, key: Any, build: Callable[[], Any]) -> Any:
    entry = _PLANS.get(id(owner))
    if entry is None or entry[0] is not owner:
        if len(_PLANS) >= _PLANS_LIMIT:
            _PLANS.clear()
        entry = _PLANS[id(owner)] = (owner, {})
    cache = entry[1]
    if key not in cache:
        cache[key] = build()
    return cache[key]


def _no_progress(stage: str, fraction: float | None) -> None:
    del stage, fraction


def _validated(
    records: Iterable[Record | RecordError | Mapping[str, Any]], protocol: Protocol
) -> Iterator[Record | RecordError]:
    """Records validated by the row engine's reader; a repeated id is an error."""
    seen: set[str] = set()
    for item in iter_records(records, protocol.reader):
        if isinstance(item, Record):
            if item.id in seen:
                message = f"record id {item.id!r} already used by another record"
                yield RecordError([Diagnostic("duplicate-id", message, record_id=item.id)])
                continue
            seen.add(item.id)
        yield item


class Connection:
    """An in-process DuckDB database screening tables for one protocol (see the module doc).

    Use it as a context manager. `threads` and `memory_limit` (e.g. ``"4GB"``) go to DuckDB;
    `progress(stage, fraction)` is called from a helper thread while long statements run
    (fraction None when DuckDB cannot tell).
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
        self.layout: Layout = layout(protocol.checked)
        self.criteria = tuple(c.id for c in protocol.criteria)
        self.con = duckdb.connect(":memory:")
        settings = []
        if threads is not None:
            settings.append(("threads", exp.Literal.number(int(threads))))
        if memory_limit is not None:
            settings.append(("memory_limit", _str(memory_limit)))
        for name, value in settings:
            item = exp.SetItem(this=exp.EQ(this=exp.var(name), expression=value))
            self._run(exp.Set(expressions=[item]))
        self.progress = progress or _no_progress
        self.errors: list[RecordError] = []
        self._fallback: list[Screening] = []
        self._items = {i.name: i for i in protocol.checked.doc.data}
        self._stage = "new"
        # The column numbering a raw table's rows (CSV tables: DuckDB's rowid).
        self._row = dict.fromkeys(_TABLES, "rowid")
        self._present: dict[str, dict[str, str]] = {}
        self._present_kind = dict.fromkeys(_TABLES, "TABLE")
        self._signature: tuple[Any, ...] = ()
        # The file each table was staged from, to name in errors (none for records).
        self._files: dict[str, Path] = {}

    # ---- lifecycle

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database (its tables go with it)."""
        self.con.close()

    def _run(self, statement: exp.Expr | str) -> duckdb.DuckDBPyConnection:
        sql = statement if isinstance(statement, str) else statement.sql(dialect="duckdb")
        return self.con.execute(sql)

    def _memo(self, key: Any, build: Callable[[], Any]) -> Any:
        """A statement (or plan) for this protocol and these input column types, built once."""
        return _memo(self.protocol.checked, (self._signature, key), build)

    def _watched(self, stage: str, statement: exp.Expr | str) -> None:
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
            self._run(statement)
        finally:
            done.set()
            watcher.join()
        self.progress(stage, 1.0)

    @contextlib.contextmanager
    def _engine_errors(
        self, code: str, doing: str, tables: Sequence[str] = _TABLES
    ) -> Iterator[None]:
        """DuckDB's error while `doing` something with `tables`, as one `UsageError` naming
        their files, and the column when one table's column alone fails to read.

        Staging reads only a Parquet file's footer: a damaged page, or a value DuckDB cannot
        decode, surfaces in the first query that reads the rows.
        """
        try:
            yield
        except duckdb.Error as exc:
            files = [str(self._files[t]) for t in tables if t in self._files]
            where = " or ".join(files) if files else "the records"
            column = self._unreadable_column(tables[0]) if len(tables) == 1 else None
            if column is not None:
                where += f": column '{column}'"
            message = f"{where}: DuckDB cannot {doing}: {_reason(exc)}"
            raise UsageError.at(code, message, None) from None

    def _unreadable_column(self, table: str) -> str | None:
        """The first column of a staged table that fails when read alone (after a failed
        read), or None."""
        if self._present_kind[table] != "VIEW":
            return None
        for name in self._present.get(table, {}):
            # A hash of every value: the column's pages must all be decoded.
            read = exp.select(exp.func("bit_xor", exp.func("hash", _col(name)))).from_(
                _table(_RAW[table])
            )
            try:
                self._run(read).fetchall()
            except duckdb.Error:
                return name
        return None

    def _expect(self, stage: str, action: str) -> None:
        if self._stage != stage:
            raise UsageError.at("usage", f"cannot {action} now (tables are {self._stage})", None)

    # ---- staging

    def load(self, source: Path | TableFiles) -> None:
        """Stage tables from files (see `find_tables`). Raises `UsageError` for a table with
        unknown or missing columns or a file DuckDB cannot read."""
        self._expect("new", "load tables")
        files = find_tables(source) if isinstance(source, Path) else source
        allowed = {
            PATIENTS: tuple(c.name for c in self.layout.columns),
            OBSERVATIONS: OBSERVATION_COLUMNS,
            EVENTS: EVENT_COLUMNS,
        }
        required = {
            PATIENTS: ("id",),
            OBSERVATIONS: ("id", "item", "value"),
            EVENTS: ("id", "item"),
        }
        paths = {PATIENTS: files.patients, OBSERVATIONS: files.observations, EVENTS: files.events}
        problems: list[str] = []
        for name in _TABLES:
            path, raw = paths[name], _RAW[name]
            if path is None:
                columns = [exp.ColumnDef(this=_id(c), kind=_type("VARCHAR")) for c in allowed[name]]
                self._run(
                    exp.Create(this=exp.Schema(this=_table(raw), expressions=columns), kind="TABLE")
                )
                continue
            with _file_errors(str(path)):
                self._stage_file(name, path, files.format)
                present = self._columns(raw)
            problems += [
                f"{path}: unknown column '{c}' in the {name} table{did_you_mean(c, allowed[name])}"
                for c in present
                # The row number a Parquet reader adds is no column of the file; a CSV file's
                # own 'rowid' column would hide DuckDB's row numbers, so it is unknown.
                if c not in allowed[name] and (c != self._row[name] or files.format == "csv")
            ]
            problems += [
                f"{path}: the {name} table has no '{c}' column"
                for c in required[name]
                if c not in present
            ]
        if problems:
            raise UsageError([Diagnostic("usage", p) for p in problems])
        self._present = {t: self._columns(_RAW[t]) for t in _TABLES}
        self._files = {t: p for t, p in paths.items() if p is not None}
        self._signature = tuple((t, self._row[t], tuple(self._present[t].items())) for t in _TABLES)
        self._stage = "staged"

    def _stage_file(self, name: str, path: Path, fmt: TableFormat) -> None:
        """Stage one table file as the raw table of `name` (columns as the file has them)."""
        raw = _RAW[name]
        literal = _read_path(path)
        if fmt == "parquet":
            # Read in place; the file's row number names a bad row that has no id.
            reader = exp.Anonymous(
                this="read_parquet",
                expressions=[literal, _named("file_row_number", exp.true())],
            )
            self._run(
                exp.Create(
                    this=_table(raw),
                    kind="VIEW",
                    expression=exp.select(exp.Star()).from_(reader),
                )
            )
            self._row[name] = "file_row_number"
            self._present_kind[name] = "VIEW"
        else:
            # The header is read here and every column named as text: DuckDB then reads the
            # file as given instead of guessing its dialect (a guess fails on one ragged row
            # without naming its line; a read names the line).
            columns = exp.Struct(
                expressions=[
                    exp.PropertyEQ(this=_str(c), expression=_str("VARCHAR"))
                    for c in _csv_header(path)
                ]
            )
            options = [
                _named("header", exp.true()),
                _named("auto_detect", exp.false()),
                _named("columns", columns),
                # "" stays an empty string; only an empty cell is NULL (as convert writes).
                _named("allow_quoted_nulls", exp.false()),
                _named("delim", _str(",")),
                _named("quote", _str('"')),
                _named("escape", _str('"')),
            ]
            reader = exp.Anonymous(this="read_csv", expressions=[literal, *options])
            # Read once, as text: validation and the query then scan memory, not the
            # file. Insertion order is kept, so rowid is the row's place in the file.
            create = exp.Create(
                this=_table(raw), kind="TABLE", expression=exp.select(exp.Star()).from_(reader)
            )
            self._watched(f"reading {path.name}", create)

    def _columns(self, table: str) -> dict[str, str]:
        """Column name → DuckDB type name of a staged table."""
        query = exp.Describe(this=exp.select(exp.Star()).from_(_table(table)))
        return {str(r[0]): str(r[1]) for r in self._run(query).fetchall()}

    def load_records(self, records: Iterable[Record | RecordError | Mapping[str, Any]]) -> None:
        """Stage records (dicts or `Record`s), converted as `protocode.tables.convert` does.

        A bad record becomes an error of the run. A record whose numbers the layout cannot
        hold exactly (a value given in another unit whose conversion does not terminate, such
        as 6 months in weeks) is screened by the row engine instead, so every record still
        gets the row engine's answer.
        """
        writer = RowWriter(self.protocol)
        held: list[Record] = []

        def representable() -> Iterator[Record | RecordError]:
            for item in _validated(records, self.protocol):
                if isinstance(item, Record):
                    try:
                        writer.rows(item)
                    except RecordError:
                        held.append(item)
                        continue
                yield item

        with tempfile.TemporaryDirectory(prefix="protocode-") as tmp:
            written = write_csv(self.protocol, representable(), Path(tmp))
            self.errors.extend(written.errors)
            self.load(
                TableFiles(
                    written.paths[PATIENTS],
                    written.paths[OBSERVATIONS],
                    written.paths[EVENTS],
                    "csv",
                )
            )
        # Read into memory: no file is left to name.
        self._files = {}
        self._fallback = [self.protocol.screen(r) for r in held]

    # ---- validation

    def validate(self) -> list[RecordError]:
        """Check every cell. Returns the new errors (one `RecordError` per bad record, with
        each bad field) and builds the typed tables ``patients``, ``observations`` and
        ``events`` of the valid records, which the screening query reads."""
        self._expect("staged", "validate")
        problems: dict[str, list[Diagnostic]] = {}

        def add(record: str, field_: str | None, code: str, message: str) -> None:
            problems.setdefault(record, []).append(
                Diagnostic(code, message, record_id=record, field=field_)
            )

        for table in _TABLES:
            # Every cell of the table is read here first: a file that fails, fails here.
            with self._engine_errors("unreadable", "read the table", (table,)):
                for record, field_, code, message in self._bad_rows(table):
                    add(record, field_, code, message)
        with self._engine_errors("unreadable", "validate the tables"):
            self._check_ids(add)
            self._type_tables(list(problems))
        found = [RecordError(ds) for ds in problems.values()]
        self.errors.extend(found)
        self._stage = "validated"
        return found

    def _check_ids(self, add: Callable[[str, str | None, str, str], None]) -> None:
        """Ids on several patients rows, and long-table ids with no patients row."""
        for record, count in self._duplicates():
            add(record, "id", "duplicate-id", f"patients: id {record!r} is on {count} rows")
        for record, table in self._orphans():
            add(record, "id", "no-patient", f"{table}: rows for an id with no row in patients")

    def _type_tables(self, bad: list[str]) -> None:
        """Build the typed tables of the records whose ids are not in `bad`; drop the raw."""
        column = exp.ColumnDef(this=_id("id"), kind=_type("VARCHAR"))
        self._run(
            exp.Create(this=exp.Schema(this=_table(_BAD_IDS), expressions=[column]), kind="TABLE")
        )
        if bad:
            insert = exp.insert(exp.values([(exp.Placeholder(),)]), _table(_BAD_IDS))
            self.con.executemany(insert.sql("duckdb"), [(r,) for r in bad])
        filtered = bool(bad)
        for table in _TABLES:
            create: str = self._memo(
                ("typed", table, filtered), functools.partial(self._typed_table, table, filtered)
            )
            # A table, not a view: the screening query reads each table several times, and
            # decoding Parquet (or casting text) once is much cheaper than at every read.
            self._watched(f"typing {table}", create)
        for table in _TABLES:
            # The raw text is no longer needed: free its memory.
            raw = self._present_kind[table]
            self._run(exp.Drop(tables=[_table(_RAW[table])], kind=raw, exists=True))

    def _source(self, table: str) -> tuple[Callable[[str], exp.Expr], Callable[[str], str]]:
        """Accessors of a raw table's cells (NULL for an absent column) and their types."""
        present = self._present[table]

        def cell(name: str) -> exp.Expr:
            return (
                _col(name, "r")
                if name in present
                else exp.Cast(this=exp.Null(), to=_type("VARCHAR"))
            )

        def src(name: str) -> str:
            return present.get(name, "VARCHAR")

        return cell, src

    def _checks(self, table: str) -> tuple[list[_Check], list[tuple[str, exp.Expr]]]:
        """The checks of a table's rows, and its typed columns for the view."""
        cell, src = self._source(table)
        ident = _varchar(cell("id"), src("id"))
        checks: list[_Check] = []
        typed: list[tuple[str, exp.Expr]] = [("id", ident)]
        if table == PATIENTS:
            for c in self.layout.columns[1:]:
                spec = (
                    _BOOLEAN if c.item is None or c.role != "fact" else _spec(self._items[c.item])
                )
                valid, value = _parse(spec, cell(c.name), src(c.name))
                typed.append((c.name, value))
                if valid != exp.true():
                    checks.append(_Check(valid, _cell_problem(c.name, spec, PATIENTS)))
            return checks, typed
        kind = "observation" if table == OBSERVATIONS else "event"
        names = [i.name for i in self.protocol.checked.doc.data if i.kind == kind]
        # As text whatever the file's type: a Parquet item column of another type (an
        # integer, a struct) is a column of unknown items, not a failed cast of the names.
        item = _varchar(cell("item"), src("item"))
        checks.append(
            _Check(
                _two_valued(
                    exp.In(this=item.copy(), expressions=[_str(n) for n in names])
                    if names
                    else exp.false()
                ),
                _item_problem(table, kind, names),
            )
        )
        typed.append(("item", item))
        dates = ("date", "end") if table == EVENTS else ("date",)
        for d in dates:
            valid, value = _parse(_DATE, cell(d), src(d))
            typed.append((d, value))
            checks.append(_Check(valid, _date_problem(table, d)))
        if table == EVENTS:
            start, end = (_parse(_DATE, cell(d), src(d))[1] for d in ("date", "end"))
            undated_end = _and(_is_null(start), exp.Not(this=_is_null(end)))
            checks.append(
                _Check(
                    _not(_two_valued(undated_end)),
                    _event_problem("an undated occurrence cannot have an end"),
                )
            )
            backwards = _two_valued(exp.LT(this=end.copy(), expression=start.copy()))
            checks.append(_Check(_not(backwards), _event_problem("end is before date")))
            return checks, typed
        value_checks: list[tuple[exp.Expr, exp.Expr]] = []
        limit_checks: list[tuple[exp.Expr, exp.Expr]] = []
        order_checks: list[tuple[exp.Expr, exp.Expr]] = []
        for name in names:
            it = self._items[name]
            is_item = exp.EQ(this=item.copy(), expression=_str(name))
            valid, _ = _parse(_spec(it), cell("value"), src("value"))
            value_checks.append((is_item, valid))
            if is_numeric(it):
                bare = _spec(it, ranged=False)
                (low_ok, low), (high_ok, high) = (
                    _parse(bare, cell(x), src(x)) for x in ("low", "high")
                )
                limit_checks.append((is_item.copy(), _and(low_ok, high_ok)))
                order_checks.append(
                    (is_item.copy(), _not(_two_valued(exp.GT(this=low, expression=high))))
                )
        no_limits = _and(_is_null(cell("low")), _is_null(cell("high")))
        # An unknown item is reported once, by the item check; its other cells pass.
        checks.append(
            _Check(
                _and(exp.Not(this=_is_null(cell("value"))), _case(value_checks, exp.true())),
                self._value_problem,
            )
        )
        checks.append(
            _Check(
                _case(
                    limit_checks,
                    _or(
                        no_limits,
                        _not(
                            _two_valued(
                                exp.In(this=item.copy(), expressions=[_str(n) for n in names])
                                if names
                                else exp.false()
                            )
                        ),
                    ),
                ),
                self._limits_problem,
            )
        )
        checks.append(_Check(_case(order_checks, exp.true()), self._order_problem))
        typed += [(c, _varchar(cell(c), src(c))) for c in ("value", "low", "high")]
        return checks, typed

    def _value_problem(self, row: Mapping[str, str | None]) -> tuple[str, str, str]:
        item, text = str(row["item"]), row["value"]
        where = _where(OBSERVATIONS, row)
        if text is None:
            return f"{item}.value", "bad-value", f"{where}: missing value"
        code, message = _message(_spec(self._items[item]), text)
        return f"{item}.value", code, f"{where}: {message}"

    def _limits_problem(self, row: Mapping[str, str | None]) -> tuple[str, str, str]:
        item = str(row["item"])
        where = _where(OBSERVATIONS, row)
        field_ = f"{item}.reference_range"
        it = self._items[item]
        if not is_numeric(it):
            return (
                field_,
                "bad-value",
                f"{where}: '{item}' is not numeric: it has no reference range",
            )
        bare = _spec(it, ranged=False)
        for key in ("low", "high"):
            text = row[key]
            if text is not None and not re.fullmatch(_number_pattern(bare.fmt), text):
                code, message = _message(bare, text)
                return f"{field_}.{key}", code, f"{where}: {message}"
        return field_, "bad-value", f"{where}: bad reference range"  # pragma: no cover

    def _order_problem(self, row: Mapping[str, str | None]) -> tuple[str, str, str]:
        item = str(row["item"])
        where = _where(OBSERVATIONS, row)
        return (
            f"{item}.reference_range",
            "bad-value",
            f"{where}: low {row['low']} is above high {row['high']}",
        )

    def _bad_rows(self, table: str) -> Iterator[tuple[str, str | None, str, str]]:
        """One scan of a raw table for rows failing a check: (record, field, code, message)."""
        query, columns, checks = self._memo(("bad", table), lambda: self._bad_rows_plan(table))
        cursor = self._run(query)
        width = len(columns)
        while rows := cursor.fetchmany(_FETCH):
            for row in rows:
                cells = dict(zip(columns, row[1 : width + 1], strict=True))
                rid = cells["id"]
                if rid is None:
                    where = f"{table} row {int(row[0]) + 1}"
                    yield where, "id", "bad-id", f"{where} has no id"
                    continue
                for check, bad in zip(checks, row[width + 1 :], strict=True):
                    if bad:
                        yield (rid, *check.explain(cells))

    def _bad_rows_plan(self, table: str) -> tuple[str, list[str], list[_Check]]:
        checks, _ = self._checks(table)
        cell, src = self._source(table)
        columns = (
            [c.name for c in self.layout.columns]
            if table == PATIENTS
            else list(OBSERVATION_COLUMNS if table == OBSERVATIONS else EVENT_COLUMNS)
        )
        texts = [
            exp.alias_(_varchar(cell(c), src(c)), f"t{i}", quoted=True)
            for i, c in enumerate(columns)
        ]
        flags = [exp.alias_(_not(c.valid), f"b{i}", quoted=True) for i, c in enumerate(checks)]
        failing = [_is_null(cell("id")), *(_not(c.valid) for c in checks)]
        query = (
            exp.select(_col(self._row[table], "r"), *texts, *flags)
            .from_(exp.alias_(_table(_RAW[table]), "r", table=True))
            .where(_or(*failing))
            .order_by(_col(self._row[table], "r"))
        )
        return query.sql("duckdb"), columns, checks

    def _duplicates(self) -> list[tuple[str, int]]:
        query = self._memo("duplicates", self._duplicates_query)
        return [(str(r[0]), int(r[1])) for r in self._run(query).fetchall()]

    def _duplicates_query(self) -> str:
        cell, src = self._source(PATIENTS)
        ident = _varchar(cell("id"), src("id"))
        query = (
            exp.select(ident, exp.Count(this=exp.Star()))
            .from_(exp.alias_(_table(_RAW[PATIENTS]), "r", table=True))
            .where(exp.Not(this=_is_null(ident)))
            .group_by(ident.copy())
            .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
            .order_by(ident.copy())
        )
        return query.sql("duckdb")

    def _orphans(self) -> list[tuple[str, str]]:
        """Ids of long-table rows that have no patients row."""
        queries: list[tuple[str, str]] = self._memo("orphans", self._orphan_queries)
        return [(str(r[0]), table) for table, q in queries for r in self._run(q).fetchall()]

    def _orphan_queries(self) -> list[tuple[str, str]]:
        p_cell, p_src = self._source(PATIENTS)
        known = (
            exp.select(_varchar(p_cell("id"), p_src("id")))
            .from_(exp.alias_(_table(_RAW[PATIENTS]), "r", table=True))
            .where(exp.Not(this=_is_null(p_cell("id"))))
        )
        out: list[tuple[str, str]] = []
        for table in (OBSERVATIONS, EVENTS):
            cell, src = self._source(table)
            ident = _varchar(cell("id"), src("id"))
            query = (
                exp.select(ident)
                .distinct()
                .from_(exp.alias_(_table(_RAW[table]), "r", table=True))
                .where(
                    _and(
                        exp.Not(this=_is_null(ident)),
                        exp.Not(this=exp.In(this=ident.copy(), query=known.subquery())),
                    )
                )
                .order_by(ident.copy())
            )
            out.append((table, query.sql("duckdb")))
        return out

    def _typed_table(self, table: str, filtered: bool) -> str:
        """``CREATE TABLE`` of a table's valid rows with typed columns."""
        _, columns = self._checks(table)
        ident = dict(columns)["id"]
        keep: exp.Expr = exp.Not(this=_is_null(ident))
        if filtered:
            bad = exp.select(_col("id")).from_(_table(_BAD_IDS))
            keep = _and(keep, exp.Not(this=exp.In(this=ident.copy(), query=bad.subquery())))
        select = (
            exp.select(*(exp.alias_(e.copy(), n, quoted=True) for n, e in columns))
            .from_(exp.alias_(_table(_RAW[table]), "r", table=True))
            .where(keep)
        )
        return exp.Create(this=_table(table), kind="TABLE", expression=select).sql("duckdb")

    # ---- screening

    def screen(self) -> Summary:
        """Run the screening query into the results table; return the run's counts."""
        self._expect("validated", "screen")

        def build() -> str:
            query = compile_query(self.protocol.checked)
            create = exp.Create(this=_table(_RESULTS), kind="TABLE", expression=query)
            return create.sql("duckdb")

        with self._engine_errors("duckdb", "screen the tables"):
            self._watched("screening", self._memo("screen", build))
            if self._fallback:
                width = 2 + len(self.criteria)
                insert = exp.insert(
                    exp.values([tuple(exp.Placeholder() for _ in range(width))]), _table(_RESULTS)
                )
                rows = [
                    (s.record_id, *(c.verdict for c in s.criteria), s.status)
                    for s in self._fallback
                ]
                self.con.executemany(insert.sql("duckdb"), rows)
            self._errors_table()
        self._stage = "screened"
        return self.summary()

    def _errors_table(self) -> None:
        columns = [
            exp.ColumnDef(this=_id(c), kind=_type("VARCHAR"))
            for c in ("id", "errors", "errors_json")
        ]
        self._run(
            exp.Create(this=exp.Schema(this=_table(_ERRORS), expressions=columns), kind="TABLE")
        )
        if not self.errors:
            return
        insert = exp.insert(exp.values([(exp.Placeholder(),) * 3]), _table(_ERRORS))
        self.con.executemany(
            insert.sql("duckdb"),
            [
                (
                    error_name(e),
                    "; ".join(f"{d.location}: {d.code}: {d.message}" for d in e.diagnostics),
                    json.dumps([d.to_json() for d in e.diagnostics], ensure_ascii=False),
                )
                for e in self.errors
            ],
        )

    def summary(self) -> Summary:
        """Counts per status (errors included) and the attrition per criterion."""
        summary = Summary(self.criteria)
        by_status, attrition = self._memo("summary", self._summary_queries)
        with self._engine_errors("duckdb", "count the results"):
            statuses = self._run(by_status).fetchall()
            row = self._run(attrition).fetchone() if attrition else None
        for name, count in statuses:
            summary.statuses[str(name)] = int(count)
        summary.statuses["error"] = len(self.errors)
        if row is not None:
            for i, c in enumerate(self.criteria):
                summary.excluded[c] = int(row[2 * i] or 0)
                summary.undecided[c] = int(row[2 * i + 1] or 0)
        return summary

    def _summary_queries(self) -> tuple[str, str]:
        status = _col("status")
        by_status = (
            exp.select(status, exp.Count(this=exp.Star()))
            .from_(_table(_RESULTS))
            .group_by(status.copy())
        )
        blocking = {
            c.id: "not met" if c.kind == "inclusion" else "met" for c in self.protocol.criteria
        }
        sums: list[exp.Expr] = []
        for c in self.criteria:
            for verdict in (blocking[c], "unknown"):
                hit = exp.EQ(this=_col(c), expression=_str(verdict))
                sums.append(
                    exp.Sum(this=_case([(hit, exp.Literal.number(1))], exp.Literal.number(0)))
                )
        attrition = exp.select(*sums).from_(_table(_RESULTS)).sql("duckdb") if sums else ""
        return by_status.sql("duckdb"), attrition

    # ---- output

    def _output_query(self, fmt: OutputFormat) -> exp.Select:
        """Results and errors in one row set ordered by id: the shape of every output."""
        verdicts = [_col(c) for c in self.criteria]
        screened = exp.select(_col("id"), _col("status"), *verdicts).from_(_table(_RESULTS))
        failed = exp.select(
            _col("id"),
            exp.alias_(_str("error"), "status", quoted=True),
            *(
                exp.alias_(exp.Cast(this=exp.Null(), to=_type("VARCHAR")), c, quoted=True)
                for c in self.criteria
            ),
        ).from_(_table(_ERRORS))
        if fmt in ("csv", "parquet"):
            screened = screened.select(
                exp.alias_(exp.Cast(this=exp.Null(), to=_type("VARCHAR")), "errors", quoted=True)
            )
            failed = failed.select(exp.alias_(_col("errors"), "errors", quoted=True))
            union = exp.union(screened, failed, distinct=False)
            return (
                exp.select(exp.Star())
                .from_(union.subquery("o"))
                .order_by(_col("id"), _col("status"))
            )
        screened = screened.select(
            exp.alias_(exp.Cast(this=exp.Null(), to=_type("JSON")), "errors", quoted=True)
        )
        failed = failed.select(
            exp.alias_(exp.Cast(this=_col("errors_json"), to=_type("JSON")), "errors", quoted=True)
        )
        union = exp.union(screened, failed, distinct=False)
        struct = exp.Struct(
            expressions=[
                exp.PropertyEQ(this=_id(c), expression=_col(c, "o")) for c in self.criteria
            ]
        )
        is_error = exp.EQ(this=_col("status", "o"), expression=_str("error"))
        return (
            exp.select(
                _col("id", "o"),
                _col("status", "o"),
                exp.alias_(_case([(is_error, exp.Null())], struct), "criteria", quoted=True),
                _col("errors", "o"),
            )
            .from_(union.subquery("o"))
            .order_by(_col("id", "o"), _col("status", "o"))
        )

    def write(self, path: Path, fmt: OutputFormat) -> None:
        """Write results and errors (ordered by id) to `path` with DuckDB's COPY.

        csv/parquet: ``id, status``, one column per criterion, ``errors`` (text); jsonl (one
        object per line) and json (an array): ``id, status, criteria {id: verdict},
        errors [diagnostics]``. Both end with ``protocol, version``: the registry id and
        version that screened the row (a folder's version in force changes on release).
        """
        self._expect("screened", "write results")
        options: dict[OutputFormat, list[tuple[str, exp.Expr]]] = {
            "csv": [("FORMAT", exp.var("csv")), ("HEADER", exp.true())],
            "parquet": [("FORMAT", exp.var("parquet"))],
            "jsonl": [("FORMAT", exp.var("json"))],
            "json": [("FORMAT", exp.var("json")), ("ARRAY", exp.true())],
        }
        meta = self.protocol.checked.doc.metadata
        query = self._memo(("output", fmt), lambda: self._output_query(fmt)).select(
            exp.alias_(_str(meta.registry_id), "protocol", quoted=True),
            exp.alias_(_str(meta.version), "version", quoted=True),
        )
        with _file_errors(str(path)):
            self._watched("writing", _copy(query, path, options[fmt]))
        if fmt == "jsonl":
            # DuckDB leaves U+2028, U+2029 and U+0085 raw in strings: lines for JSON, not
            # for every line reader (str.splitlines), as json_line writes them.
            escape_line_breaks(path)

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """Results then errors as ``(id, status, verdict…)`` tuples ordered by id."""
        self._expect("screened", "read results")
        with self._engine_errors("duckdb", "read the results"):
            cursor = self._run(self._memo(("output", "csv"), lambda: self._output_query("csv")))
            while batch := cursor.fetchmany(_FETCH):
                yield from batch

    def copy_table(self, table: str, path: Path) -> None:
        """Write one validated table (typed columns) to a Parquet or CSV file, ordered by id."""
        if self._stage not in ("validated", "screened"):
            raise UsageError.at("usage", "validate the tables before copying them", None)
        fmt = table_format(path) or "parquet"
        query = exp.select(exp.Star()).from_(_table(table)).order_by(_col("id"))
        options: list[tuple[str, exp.Expr]] = [("FORMAT", exp.var(fmt))]
        if fmt == "csv":
            options.append(("HEADER", exp.true()))
        with _file_errors(str(path)):
            self._run(_copy(query, path, options))

    # ---- tables → records

    def records(self) -> Iterator[dict[str, Any]]:
        """The valid records as dicts in the JSON record form, ordered by id (see
        `protocode.tables.convert.record_dict`); validation errors are in `errors`."""
        if self._stage not in ("validated", "screened"):
            raise UsageError.at("usage", "validate the tables before reading them back", None)

        def stream(table: str, order: Sequence[str]) -> Iterator[dict[str, Any]]:
            cursor = self.con.cursor()
            query = exp.select(exp.Star()).from_(_table(table)).order_by(*(_col(c) for c in order))
            result = cursor.execute(query.sql("duckdb"))
            names = [d[0] for d in result.description]
            while batch := result.fetchmany(_FETCH):
                for row in batch:
                    yield dict(zip(names, row, strict=True))
            cursor.close()

        with self._engine_errors("duckdb", "read the tables back"):
            observations = _Peek(
                stream(OBSERVATIONS, ("id", "item", "date", "value", "low", "high"))
            )
            events = _Peek(stream(EVENTS, ("id", "item", "date", "end")))
            for patient in stream(PATIENTS, ("id",)):
                rid = patient["id"]
                yield record_dict(self.layout, patient, observations.take(rid), events.take(rid))


class _Peek:
    """A row stream ordered by id, taken one id at a time."""

    def __init__(self, rows: Iterator[dict[str, Any]]) -> None:
        self.rows = rows
        self.head = next(rows, None)

    def take(self, rid: str) -> list[dict[str, Any]]:
        # Every long-table id has a patients row (orphans are errors), and both streams are
        # ordered by DuckDB the same way, so an id's rows are next whenever it has any.
        out = []
        while self.head is not None and self.head["id"] == rid:
            out.append(self.head)
            self.head = next(self.rows, None)
        return out


def _where(table: str, row: Mapping[str, str | None]) -> str:
    on = f" on {row['date']}" if row.get("date") else ""
    return f"{table}: {row.get('item')}{on}"


def _cell_problem(
    name: str, spec: _Spec, table: str
) -> Callable[[Mapping[str, str | None]], tuple[str, str, str]]:
    def explain(row: Mapping[str, str | None]) -> tuple[str, str, str]:
        code, message = _message(spec, str(row[name]))
        return name, code, f"{table}: {message}"

    return explain


def _item_problem(
    table: str, kind: str, names: Sequence[str]
) -> Callable[[Mapping[str, str | None]], tuple[str, str, str]]:
    def explain(row: Mapping[str, str | None]) -> tuple[str, str, str]:
        item = row["item"]
        if item is None:
            return "item", "unknown-item", f"{table}: a row without an item"
        hint = did_you_mean(item, names)
        return (
            item,
            "unknown-item",
            f"{table}: '{item}' is not an {kind} item of the data dictionary{hint}",
        )

    return explain


def _date_problem(
    table: str, column: str
) -> Callable[[Mapping[str, str | None]], tuple[str, str, str]]:
    def explain(row: Mapping[str, str | None]) -> tuple[str, str, str]:
        code, message = _message(_DATE, str(row[column]))
        return f"{row['item']}.{column}", code, f"{table}: {row['item']}: {message}"

    return explain


def _event_problem(message: str) -> Callable[[Mapping[str, str | None]], tuple[str, str, str]]:
    def explain(row: Mapping[str, str | None]) -> tuple[str, str, str]:
        return (
            f"{row['item']}.end",
            "bad-value",
            f"{_where(EVENTS, row)}: {message} (end {row['end']})",
        )

    return explain


def error_name(error: RecordError) -> str:
    """The record a `RecordError` is about (its id, or its place such as ``line 7``)."""
    return error.diagnostics[0].record_id or "?"


# --- whole runs -------------------------------------------------------------------------------


def read_tables(
    protocol: Protocol, source: Path | TableFiles, progress: Progress | None = None
) -> Iterator[Record | RecordError]:
    """The records held in tables, validated by DuckDB and then by the row engine's reader:
    first the tables' errors, then the valid records ordered by id."""
    with Connection(protocol, progress=progress) as con:
        con.load(source)
        yield from con.validate()
        yield from iter_records(con.records(), protocol.reader)
