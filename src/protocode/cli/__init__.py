"""The `protocode` command line: check and release protocols, screen, explain, run cases.

Every subcommand is one function taking the parsed arguments and returning the exit status.
`main` only parses and turns errors into messages: a `ProtocodeError` is rendered on stderr
with its file positions, an `OSError` becomes one line, and argparse reports usage errors.
Bad input never ends in a Python traceback. Any other exception is a bug in protocode: it is
reported in one line with its own exit status (3), the traceback only with --debug or
PROTOCODE_DEBUG=1, so a crash never passes for an error in the input.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import csv
import itertools
import json
import os
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from protocode.cases import coverage, find_case_files, load_cases, run_cases
from protocode.core.errors import (
    CheckError,
    Diagnostic,
    ProtocodeError,
    RecordError,
    UsageError,
    render,
)
from protocode.core.jsontext import json_line
from protocode.document.history import LOCK_NAME, VERSION_FILE, check_folder, release
from protocode.dosing import (
    ComplianceReader,
    ComplianceResult,
    DosingReader,
    PlannedDose,
    check_many,
    plan,
    schedules,
)
from protocode.endpoints import EndpointRow, derive, endpoints
from protocode.endpoints.estimate import Estimate, estimate, plot
from protocode.endpoints.export import write_rows
from protocode.fmt import command as fmt_command
from protocode.pipeline import load
from protocode.records import Record, RecordReader, read_jsonl_lines, read_records
from protocode.records.fhir import FhirMapping, is_fhir_input, load_map, read_fhir
from protocode.registry import draft_yaml, read_record, schema_reference
from protocode.screening import Protocol, Screening
from protocode.tables import command as sql_command

_EXIT_STATUS = """\
exit status:
  0  success
  1  an error in a protocol, a record or a file (reported on stderr)
  2  usage error (bad command line)
  3  internal error: a bug in protocode, not in the input (one line on stderr; --debug or
     PROTOCODE_DEBUG=1 shows the traceback)
"""

# A crash is not an input error: its own status, and the traceback on request.
_CRASH_STATUS = 3
_DEBUG_VARIABLE = "PROTOCODE_DEBUG"


# Below this many records a run is over before a progress bar would help.
_PROGRESS_AFTER = 2000

_STATUSES = ("eligible", "ineligible", "indeterminate", "error")
_STATUS_STYLE = {
    "eligible": "green",
    "ineligible": "red",
    "indeterminate": "yellow",
    "error": "bold red",
}

Result = Screening | RecordError


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the command line with `argv` (default: ``sys.argv[1:]``); return the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits on --help (0) and on usage errors (2); callers in-process want the code.
        return exc.code if isinstance(exc.code, int) else 2
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except ProtocodeError as exc:
        _error(exc.render())
    except BrokenPipeError:
        # The reader went away (`protocode screen … | head`); also keep the exit-time flush
        # of stdout from failing a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"protocode: {where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the safety net: whatever else escapes a command is a bug
        return _crash(args, exc)
    return 1


def _crash(args: argparse.Namespace, exc: Exception) -> int:
    """Report a bug in protocode: one line naming the command, the traceback on request."""
    debug = args.debug or os.environ.get(_DEBUG_VARIABLE, "") not in ("", "0")
    if debug:
        traceback.print_exception(exc)
    # The first line of the message, cut short: an exception may quote a huge input.
    detail = (str(exc).splitlines() or [""])[0]
    detail = f": {detail[:200]}{'…' if len(detail) > 200 else ''}" if detail else ""
    how = (
        "the traceback is above"
        if debug
        else f"run again with --debug (or {_DEBUG_VARIABLE}=1) for the traceback"
    )
    _error(
        f"{args.command_name}: internal error ({type(exc).__name__}{detail}): a bug in "
        f"protocode, not in the input; {how}, and please report it"
    )
    return _CRASH_STATUS


def _debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """Give every (sub)command --debug, and the command's own name for crash reports.

    The flag is accepted before or after a command name; a subcommand's default is
    suppressed so that it does not overwrite a --debug given before it.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.add_argument(
                    "--debug",
                    action="store_true",
                    default=argparse.SUPPRESS,
                    help=argparse.SUPPRESS,
                )
                sub.set_defaults(command_name=sub.prog)
                _debug_everywhere(sub)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="protocode",
        description="Clinical-trial protocols as code: check protocol files, release versions, "
        "screen patient records for eligibility, explain verdicts, run stored test cases.",
        epilog=_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"on an internal error, show the Python traceback (also {_DEBUG_VARIABLE}=1)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(
        name: str, run: Callable[[argparse.Namespace], int], summary: str, details: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=f"{summary}\n\n{details}",
            epilog=_EXIT_STATUS,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(command=run)
        return sub

    protocol_help = (
        f"protocol file, or protocol folder (its version in force: the newest released in "
        f"{LOCK_NAME}, else its newest vN.yaml; every output names the version used)"
    )
    records_help = "records file: .json, .jsonl/.ndjson or .csv; '-' reads JSONL from stdin"

    check = command(
        "check",
        _check,
        "Check protocol files for errors.",
        "Loads, checks and compiles each file, dosing schedules included. Prints one 'ok'\n"
        "line per good file; errors go to stderr as path:line:col: code: message with the\n"
        "offending line.\n\n"
        "For a folder, also checks its history: released versions unchanged since release\n"
        f"({LOCK_NAME}), versions numbered 1, 2, 3, … each amending the one before, and\n"
        "criterion ids kept stable unless a declared change says otherwise.",
    )
    check.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="protocol file, or folder (every vN.yaml in it, and its history)",
    )
    check.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="json: print every diagnostic as a JSON list on stdout, for editors",
    )

    screen = command(
        "screen",
        _screen,
        "Screen patient records for eligibility.",
        "Every record is reported: a screened record with its status (eligible, ineligible,\n"
        "indeterminate) and criterion verdicts, a bad record with status 'error' and its\n"
        "problems. A summary follows (on stdout after a table, else on stderr): the count\n"
        "per status and the attrition per criterion.\n\n"
        "Exits 0 when every record was screened, 1 when any record had an error.",
    )
    screen.add_argument("protocol", metavar="PROTOCOL", help=protocol_help)
    screen.add_argument("records", metavar="RECORDS", help=records_help)
    _input_arguments(screen)
    screen.add_argument(
        "--format",
        choices=(*_OUTPUTS, "parquet"),
        default=None,
        help="table (default with the row engine): id, status, criteria that excluded or are "
        "undecided, and the data that would decide an indeterminate record; "
        "json: a list of objects; jsonl: one object per line; csv: a column per criterion; "
        "parquet (duckdb engine). The duckdb engine writes csv (default), parquet, jsonl or "
        "json, by default as --output's suffix says",
    )
    screen.add_argument(
        "--output", "-o", metavar="FILE", type=Path, help="write the results here, not stdout"
    )
    screen.add_argument(
        "--engine",
        choices=sql_command.ENGINES,
        default="auto",
        help="row: the Python engine, record by record; duckdb: the compiled SQL query in "
        "embedded DuckDB (docs/sql.md); auto (default): duckdb for table inputs (a folder of "
        "tables, .parquet, a patients CSV table) or Parquet output, else row",
    )

    explain = command(
        "explain",
        _explain,
        "Explain the screening of one record.",
        "Shows each criterion's verdict with the values that decided it, and the data that\n"
        "would decide an indeterminate result.",
    )
    explain.add_argument("protocol", metavar="PROTOCOL", help=protocol_help)
    explain.add_argument("records", metavar="RECORDS", help=records_help)
    _input_arguments(explain)
    explain.add_argument(
        "--id", dest="record_id", metavar="ID", help="the record to explain (needed if several)"
    )
    explain.add_argument("--format", choices=("text", "json"), default="text")

    test = command(
        "test",
        _test,
        "Run a protocol's stored test cases.",
        "Runs every case file of the folder (cases/vN.yaml) against its protocol version\n"
        "(vN.yaml) and reports each case whose result differs from the expected one.\n\n"
        "Exits 0 when every case passed, 1 on any mismatch or invalid case.",
    )
    test.add_argument("protocol_dir", metavar="PROTOCOL_DIR", type=Path, help="protocol folder")
    test.add_argument(
        "--coverage", action="store_true", help="also report which rule branches the cases reach"
    )
    test.add_argument(
        "--verbose", "-v", action="store_true", help="list passing cases and every condition"
    )
    test.add_argument("--format", choices=("text", "json"), default="text")

    command(
        "release",
        _release,
        "Record a protocol folder's next version as released.",
        "Versions are released in order: the oldest unreleased vN.yaml is checked, with the\n"
        "folder's history, as 'check' does, then recorded with the SHA-256 of its file in\n"
        f"{LOCK_NAME} (created if needed); newer drafts stay drafts. A released version is\n"
        "immutable: 'check' fails if its file changes afterwards.\n\n"
        "Exits 0 when the version was released, 1 when it cannot be (every version already\n"
        "released, or any error).",
    ).add_argument("protocol_dir", metavar="PROTOCOL_DIR", type=Path, help="protocol folder")

    diff = command(
        "diff",
        _diff,
        "Compare two versions of a protocol: the reviewer's report.",
        "For every criterion (by id) and for overall eligibility: the textual change, the\n"
        "declared intent, and the semantic verdict (equivalent, broader, narrower,\n"
        "incomparable) proved with z3, with witness patients. With --cohort, how many\n"
        "records change status in each direction, and which.\n\n"
        "Exits 0 when every declared intent holds, 1 when a claim is false or a change in\n"
        "meaning is undeclared (the report lists them).",
    )
    diff.add_argument("old", metavar="OLD", type=Path, help="the earlier version's file")
    diff.add_argument("new", metavar="NEW", type=Path, help="the amendment's file")
    diff.add_argument("--cohort", metavar="RECORDS", type=Path, help="records to screen with both")
    diff.add_argument(
        "--format", choices=_REPORTS, default="text", help="report format (default text)"
    )
    diff.add_argument(
        "--output", "-o", metavar="FILE", type=Path, help="write the report here, not stdout"
    )

    dosing = commands.add_parser(
        "dosing",
        help="Dosing: a patient's planned calendar and compliance with it.",
        description="Dosing schedules of a protocol (its 'dosing' section): the planned\n"
        "calendar of each patient record, and what was given compared with it.",
        epilog=_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dosing_commands = dosing.add_subparsers(title="commands", metavar="COMMAND", required=True)
    dosing_plan = dosing_commands.add_parser(
        "plan",
        help="List every planned administration of each record, with its window.",
        description="For each record: every planned dose of every schedule, its date, the\n"
        "allowed time window (earliest inclusive, latest exclusive), the dose (per-kg and\n"
        "per-m2 doses resolved from the record) and the route. A record that cannot be\n"
        "planned (a missing anchor or body measure) is reported and the batch goes on.\n\n"
        "Exits 0 when every record was planned, 1 when any had an error.",
        epilog=_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dosing_plan.set_defaults(command=_dosing_plan)
    dosing_plan.add_argument("protocol", metavar="PROTOCOL", help=protocol_help)
    dosing_plan.add_argument("records", metavar="RECORDS", help=records_help)
    dosing_plan.add_argument("--format", choices=("table", "json"), default="table")
    dosing_check = dosing_commands.add_parser(
        "check",
        help="Compare each record's administrations with its planned calendar.",
        description="For each record: its 'administrations' (time, drug, dose, unit, route)\n"
        "matched to the planned doses, and every deviation with its kind (missed, extra,\n"
        "wrong_dose, wrong_route, out_of_window, wrong_order) and severity (major, minor).\n"
        "A record with bad administration data or that cannot be planned is reported and\n"
        "the batch goes on. A summary counts the records compliant, with deviations and\n"
        "with errors.\n\n"
        "Exits 0 when every record is compliant, 1 when any has a deviation or an error.",
        epilog=_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dosing_check.set_defaults(command=_dosing_check)
    dosing_check.add_argument("protocol", metavar="PROTOCOL", help=protocol_help)
    dosing_check.add_argument("records", metavar="RECORDS", help=records_help)
    dosing_check.add_argument("--format", choices=("table", "json"), default="table")

    _endpoint_commands(commands, protocol_help, records_help)

    fmt = command(
        "fmt",
        _fmt,
        "Rewrite rules into the canonical layout.",
        "Rewrites every rule (criteria, definitions, phase and schedule starts, endpoint\n"
        "origins and censoring) into one layout: one spelling per operator, single spaces,\n"
        "minimal parentheses, long rules broken before 'and' / 'or' (docs/fmt.md). Only rule\n"
        "text changes; comments, key order and every other byte of the file are kept, and\n"
        "each rewritten rule is checked to parse as before. Files released in the folder's\n"
        f"{LOCK_NAME} are never rewritten. A folder is searched for protocol files.\n\n"
        "Exits 0 when done (with --check: when every file is formatted), 1 on any error or\n"
        "(with --check) when a file would be reformatted.",
    )
    fmt.add_argument("paths", nargs="+", metavar="PATH", help="protocol file or folder")
    fmt.add_argument(
        "--check",
        action="store_true",
        help="change nothing: list the files that would change, with a diff",
    )

    tables = commands.add_parser(
        "tables",
        help="Convert records to the SQL table layout and back.",
        description="Convert records to the SQL table layout and back (docs/sql.md): a wide\n"
        "patients table, long observations and events tables, as CSV or Parquet.",
        epilog=_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tables_commands = tables.add_subparsers(title="commands", metavar="COMMAND", required=True)
    to_tables = tables_commands.add_parser(
        "to-tables",
        help="Write records as patients, observations and events tables.",
        description="Write records (JSON, JSONL, CSV records or FHIR) as the three tables in\n"
        "OUTDIR. Numbers are written exactly in each item's unit; a record the layout cannot\n"
        "hold exactly, or a bad record, is reported with its id and field.\n\n"
        "Exits 0 when every record was written, 1 when any record had an error.",
        epilog=_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    to_tables.set_defaults(command=_tables_to_tables)
    to_tables.add_argument("protocol", metavar="PROTOCOL", help=protocol_help)
    to_tables.add_argument("records", metavar="RECORDS", help=records_help)
    to_tables.add_argument("outdir", metavar="OUTDIR", type=Path, help="folder for the tables")
    to_tables.add_argument(
        "--format", choices=("parquet", "csv"), default="parquet", help="table files (parquet)"
    )
    _input_arguments(to_tables)
    to_records = tables_commands.add_parser(
        "to-records",
        help="Write tables back as JSONL records.",
        description="Read tables (a folder, or a patients table file) and write one JSON\n"
        "record per patient, ordered by id. Bad cells are reported with record id and field.\n\n"
        "Exits 0 when every record was written, 1 when any record had an error.",
        epilog=_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    to_records.set_defaults(command=_tables_to_records)
    to_records.add_argument("protocol", metavar="PROTOCOL", help=protocol_help)
    to_records.add_argument("tables", metavar="TABLES", type=Path, help="folder or table file")
    to_records.add_argument(
        "--output", "-o", metavar="FILE", type=Path, help="write the JSONL here, not stdout"
    )

    compile_ = command(
        "compile",
        _compile,
        "Write the compiled rules as SQL or JSON.",
        "--to sql: the screening query (one row per patient: each criterion's verdict and\n"
        "the status) over the table layout of docs/sql.md, in any dialect sqlglot writes\n"
        "(duckdb, postgres, spark, bigquery, snowflake, ...).\n"
        "--to json: the checked, typed rules (units normalised, source spans, criterion ids\n"
        "and texts) in the versioned shape of docs/compiled-json.md, for other tools.\n\n"
        "Exits 0 when written, 1 when the protocol has an error or a rule has no SQL form.",
    )
    compile_.add_argument("protocol", metavar="PROTOCOL", help=protocol_help)
    compile_.add_argument("--to", choices=("sql", "json"), required=True, help="what to write")
    compile_.add_argument(
        "--dialect", default="duckdb", metavar="D", help="SQL dialect (with --to sql; duckdb)"
    )
    compile_.add_argument(
        "--output", "-o", metavar="FILE", type=Path, help="write here, not to stdout"
    )

    command(
        "schema",
        _schema,
        "Print the JSON Schema of a patient record.",
        "The schema (draft 2020-12) of a valid record for the protocol's data dictionary,\n"
        "for editors, form generators and upstream validation.",
    ).add_argument("protocol", metavar="PROTOCOL", help=protocol_help)

    draft = command(
        "import",
        _import,
        "Draft a protocol file from a ClinicalTrials.gov study record.",
        "Reads a study record of the ClinicalTrials.gov API v2 (the JSON of\n"
        "https://clinicaltrials.gov/api/v2/studies/NCT…) and writes a draft version 1:\n"
        "metadata, the eligibility text split into inclusion (I1…) and exclusion (E1…)\n"
        "criteria, each 'draft: true' without a rule, and the arms, interventions and\n"
        "outcome measures as comments. 'check' then lists the criteria still to write.\n"
        "See docs/import.md.\n\n"
        "Exits 0 when the draft was written, 1 when the record cannot be read.",
    )
    draft.add_argument("record", metavar="RECORD", type=Path, help="the study record (.json)")
    draft.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        type=Path,
        help="write the draft here (e.g. protocol/NCT…/v1.yaml), not stdout",
    )
    draft.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    _debug_everywhere(parser)
    return parser


def _endpoint_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    protocol_help: str,
    records_help: str,
) -> None:
    group = commands.add_parser(
        "endpoints",
        help="Endpoints: each patient's values, and estimates over a cohort.",
        description="Endpoints of a protocol (its 'endpoints' section): the per-patient values\n"
        "(time from origin, status, what happened) and cohort estimates with intervals.",
        epilog=_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    derive_cmd = sub.add_parser(
        "derive",
        help="One row per patient and endpoint (an ADaM-like time-to-event dataset).",
        description="For each record and endpoint: the origin, the deciding date, the time in\n"
        "days, the status (event, competing, censored; responder, non_responder,\n"
        "not_evaluable for a proportion), what happened and the item that said so. A\n"
        "record whose timeline is inconsistent (death before the origin, an event after\n"
        "death or after the last follow-up, undated events) is reported, not fixed, and\n"
        "the batch goes on.\n\n"
        "Exits 0 when every record was derived, 1 when any had an error.",
        epilog=_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    derive_cmd.set_defaults(command=_endpoints_derive)
    derive_cmd.add_argument("protocol", metavar="PROTOCOL", help=protocol_help)
    derive_cmd.add_argument("records", metavar="RECORDS", help=records_help)
    derive_cmd.add_argument("--format", choices=("table", "csv", "json", "jsonl"), default="table")
    derive_cmd.add_argument(
        "--adam", action="store_true", help="CDISC ADaM column names (USUBJID, PARAMCD, AVAL …)"
    )
    derive_cmd.add_argument(
        "--output", "-o", type=Path, metavar="FILE", help="write the rows here, not stdout"
    )
    estimate_cmd = sub.add_parser(
        "estimate",
        help="Estimate every endpoint over the cohort, with 95 %% confidence intervals.",
        description="Kaplan-Meier event-free probability at the horizon for endpoints without\n"
        "competing events (PFS, OS); Aalen-Johansen cumulative incidence for those with\n"
        "them (relapse, NRM, GVHD); a proportion with its exact Clopper-Pearson interval\n"
        "(MRD negativity). Records with errors are reported and left out.\n\n"
        "Exits 0 when every record was derived, 1 when any had an error.",
        epilog=_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    estimate_cmd.set_defaults(command=_endpoints_estimate)
    estimate_cmd.add_argument("protocol", metavar="PROTOCOL", help=protocol_help)
    estimate_cmd.add_argument("records", metavar="RECORDS", help=records_help)
    estimate_cmd.add_argument("--format", choices=("table", "json"), default="table")
    estimate_cmd.add_argument(
        "--plot", type=Path, metavar="DIR", help="draw the curves into DIR (one file per endpoint)"
    )
    estimate_cmd.add_argument(
        "--plot-format",
        default="png,svg",
        metavar="FORMATS",
        help="comma-separated image formats: png, svg, pdf (default: png,svg)",
    )


def _error(text: str) -> None:
    print(text, file=sys.stderr)


def _dumps(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def _version(protocol: Protocol) -> str:
    """The protocol version a command used, as every output names it: for a folder that is
    the version in force, which changes when a version is released."""
    return f"{protocol.registry_id} version {protocol.version}"


def _header(protocol: Protocol) -> str:
    """The first line of a table output: the version used and its file."""
    return f"protocol {_version(protocol)} ({protocol.checked.doc.source.path})"


def _stamp(protocol: Protocol) -> dict[str, str]:
    """The protocol id and version as JSON fields or CSV columns (the names `test` uses)."""
    return {"protocol": protocol.registry_id, "version": protocol.version}


# --- check ---------------------------------------------------------------------------------


def _check_sections(protocol: Protocol) -> None:
    """Check the optional sections (dosing, endpoints); raise every problem at once."""
    found: list[Diagnostic] = []
    for section in (schedules, endpoints):
        try:
            section(protocol)
        except CheckError as exc:
            found.extend(exc.diagnostics)
    if found:
        raise CheckError(found)


def _check(args: argparse.Namespace) -> int:
    """Load every protocol file named; print diagnostics, and ok lines for files without any."""
    found: list[Diagnostic] = []
    # Loading an edited release fails at its lock entry, and the folder's checks find it
    # again (a malformed lock, for every file): each problem is reported once.
    seen: set[tuple[str, str, str]] = set()

    def fresh(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
        new = [d for d in diagnostics if (d.code, d.location, d.message) not in seen]
        seen.update((d.code, d.location, d.message) for d in new)
        return new

    for path in args.paths:
        good: list[tuple[Path, Protocol]] = []
        for file in _version_files(Path(path)):
            try:
                protocol = load(file)
                _check_sections(protocol)
            except ProtocodeError as exc:
                new = fresh(exc.diagnostics)
                found.extend(new)
                if args.format == "text" and new:
                    # Draft criteria are a to-do list: shown in full, beyond the usual cap.
                    drafts = sum(d.code == "draft" for d in new)
                    _error(render(new, 20 + drafts))
                    if drafts:
                        _error(f"{file}: {drafts} draft criteria still need a rule")
                continue
            good.append((file, protocol))
        if Path(path).is_dir():
            problems = fresh(check_folder(Path(path)))
            found.extend(problems)
            if problems and args.format == "text":
                _error(render(problems))
            # A file the folder's checks refuse (a false intent, an edited release) is not ok.
            blamed = {Path(d.span.source.path).resolve() for d in problems if d.span}
            good = [(file, protocol) for file, protocol in good if file.resolve() not in blamed]
        if args.format == "text":
            for file, protocol in good:
                count = len(endpoints(protocol))
                extra = f", {count} endpoint{'' if count == 1 else 's'}" if count else ""
                print(
                    f"ok {file} ({protocol.registry_id}, version {protocol.version}, "
                    f"{len(protocol.criteria)} criteria{extra})"
                )
    if args.format == "json":
        print(_dumps([d.to_json() for d in found]))
    return 1 if found else 0


def _version_files(path: Path) -> list[Path]:
    """A folder's vN.yaml files, oldest first; anything else as itself, for `load` to judge."""
    versions = sorted(
        (int(m.group(1)), f)
        for f in (path.iterdir() if path.is_dir() else ())
        if (m := VERSION_FILE.match(f.name))
    )
    return [f for _, f in versions] or [path]


# --- reading records -----------------------------------------------------------------------


def _read(source: str, reader: RecordReader) -> Iterator[Record | RecordError]:
    """The records of a file, or of JSONL on stdin for '-'."""
    if source == "-":
        return read_jsonl_lines(sys.stdin.buffer, reader)
    return read_records(Path(source), reader)


def _input_arguments(sub: argparse.ArgumentParser) -> None:
    """--input and --fhir-map, for the commands that read patient records (docs/fhir.md)."""
    sub.add_argument(
        "--input",
        choices=("auto", "records", "fhir"),
        default="auto",
        help="auto (default): FHIR R4 when RECORDS is a Bundle/resource (.json), FHIR NDJSON "
        "or a folder of .ndjson files (bulk export), else records; records; fhir",
    )
    sub.add_argument(
        "--fhir-map",
        metavar="FILE",
        type=Path,
        help="FHIR mapping file (YAML) for data items without standard codes (docs/fhir.md)",
    )


def _records(args: argparse.Namespace, reader: RecordReader) -> Iterator[Record | RecordError]:
    """The records named on the command line: record files, or FHIR R4 input."""
    source: str = args.records
    fhir = args.input == "fhir" or (
        args.input == "auto" and source != "-" and is_fhir_input(Path(source))
    )
    if not fhir:
        if args.fhir_map is not None:
            raise UsageError.at("usage", "--fhir-map applies to FHIR input only", None)
        return _read(source, reader)
    if source == "-":
        raise UsageError.at("usage", "FHIR input is read from a file or folder, not stdin", None)
    file = load_map(args.fhir_map) if args.fhir_map is not None else None
    mapping = FhirMapping.build(reader.items.values(), reader.attestations, file)

    def warn(diagnostic: Diagnostic) -> None:
        _error(f"warning: {diagnostic.render()}")

    return read_fhir(Path(source), reader, mapping, warn)


def _name(result: Record | Screening | RecordError) -> str:
    """A record's id; for a bad record, its id if it has one, else its place (`line 7`)."""
    if isinstance(result, RecordError):
        return result.diagnostics[0].record_id or "?"
    return result.id if isinstance(result, Record) else result.record_id


def _with_progress(results: Iterator[Result]) -> Iterator[Result]:
    """`results`, with a progress bar on stderr when it is a terminal and the run is long."""
    return _progress(results) if sys.stderr.isatty() else results


def _progress(results: Iterator[Result]) -> Iterator[Result]:
    yield from itertools.islice(results, _PROGRESS_AFTER)
    following = next(results, None)
    if following is None:
        return
    bar = Progress(
        TextColumn("screening"),
        BarColumn(),
        TextColumn("{task.completed:,} records"),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )
    with bar:
        task = bar.add_task("screening", total=None, completed=_PROGRESS_AFTER + 1)
        yield following
        for result in results:
            bar.advance(task)
            yield result


# --- screen --------------------------------------------------------------------------------


def _summary_label(protocol: Protocol) -> str:
    # The summary is all a person reads of a json or csv run: the file too, not only the version.
    return f"{_version(protocol)}, {protocol.checked.doc.source.path}"


class _Summary:
    """Counts per status and, per criterion, how many records it excluded or left undecided."""

    def __init__(self, criteria: Sequence[str], label: str) -> None:
        self.criteria = tuple(criteria)
        self.label = label
        self.statuses: Counter[str] = Counter()
        self.excluded: Counter[str] = Counter()
        self.undecided: Counter[str] = Counter()

    def add(self, result: Result) -> None:
        """Count one record's result."""
        if isinstance(result, RecordError):
            self.statuses["error"] += 1
            return
        self.statuses[result.status] += 1
        for c in result.criteria:
            if c.blocks:
                self.excluded[c.id] += 1
            elif c.verdict == "unknown":
                self.undecided[c.id] += 1

    def to_text(self) -> str:
        """The counts per status with their total, then the attrition table."""
        total = sum(self.statuses.values())
        width = max(len(s) for s in (*_STATUSES, "total"))
        lines = [f"summary of {total} record{'' if total == 1 else 's'} ({self.label}):"]
        lines += [f"  {s:<{width}}  {self.statuses[s]:>6}" for s in _STATUSES]
        lines.append(f"  {'total':<{width}}  {total:>6}")
        id_width = max(len(c) for c in (*self.criteria, "criterion"))
        lines.append("attrition (a record may be excluded by several criteria):")
        lines.append(f"  {'criterion':<{id_width}}  excluded  undecided")
        lines += [
            f"  {c:<{id_width}}  {self.excluded[c]:>8}  {self.undecided[c]:>9}"
            for c in self.criteria
        ]
        return "\n".join(lines)


def _as_json(result: Result) -> dict[str, Any]:
    """One record's result for json/jsonl output."""
    if isinstance(result, RecordError):
        return {
            "id": _name(result),
            "status": "error",
            "errors": [d.to_json() for d in result.diagnostics],
        }
    return result.to_json()


class _Output(abc.ABC):
    """Writes screening results in one format; `close` ends the output after the last one."""

    summary_on_stdout: ClassVar[bool] = False

    def __init__(self, out: TextIO, protocol: Protocol) -> None:
        self.out = out
        self.protocol = protocol
        self.criteria = tuple(c.id for c in protocol.criteria)
        self.stamp = _stamp(protocol)

    @abc.abstractmethod
    def add(self, result: Result) -> None:
        """Write one record's result."""

    def close(self) -> None:
        """Finish the output (also after a failure midway, so what was written is valid)."""
        # Before the summary goes to stderr, so a terminal shows the two in order.
        self.out.flush()


class _TableOutput(_Output):
    summary_on_stdout = True

    def __init__(self, out: TextIO, protocol: Protocol) -> None:
        super().__init__(out, protocol)
        self.table = Table("id", "status", "excluded by", "undecided", "would be decided by")

    def add(self, result: Result) -> None:
        if isinstance(result, RecordError):
            _error(result.render())
            status = "error"
            excluded = undecided = missing = ""
        else:
            status = result.status
            excluded = ", ".join(c.id for c in result.criteria if c.blocks)
            undecided = ", ".join(c.id for c in result.criteria if c.verdict == "unknown")
            # What to collect next: only indeterminate records pay for the traced re-run.
            missing = ", ".join(result.missing)
        # Text cells: a record id like "[b]" must not be read as rich markup.
        self.table.add_row(
            Text(_name(result)),
            Text(status, style=_STATUS_STYLE[status]),
            Text(excluded),
            Text(undecided),
            Text(missing),
        )

    def close(self) -> None:
        self.out.write(_header(self.protocol) + "\n")
        Console(file=self.out).print(self.table)
        super().close()


class _JsonOutput(_Output):
    def __init__(self, out: TextIO, protocol: Protocol) -> None:
        super().__init__(out, protocol)
        self.first = True

    def add(self, result: Result) -> None:
        # Written as it comes, so a large run does not hold every result in memory.
        self.out.write("[\n  " if self.first else ",\n  ")
        self.out.write(json.dumps({**_as_json(result), **self.stamp}, ensure_ascii=False))
        self.first = False

    def close(self) -> None:
        self.out.write("[]\n" if self.first else "\n]\n")
        super().close()


class _JsonlOutput(_Output):
    def add(self, result: Result) -> None:
        # One line per record for any line reader (a key may hold U+2028).
        self.out.write(json_line({**_as_json(result), **self.stamp}) + "\n")


class _CsvOutput(_Output):
    def __init__(self, out: TextIO, protocol: Protocol) -> None:
        super().__init__(out, protocol)
        self.writer = csv.writer(out)
        # The protocol columns come last, so readers of the earlier layout find theirs.
        self.writer.writerow(["id", "status", *self.criteria, "missing", "errors", *self.stamp])

    def add(self, result: Result) -> None:
        if isinstance(result, RecordError):
            errors = "; ".join(f"{d.location}: {d.code}: {d.message}" for d in result.diagnostics)
            blank = [""] * len(self.criteria)
            self.writer.writerow([_name(result), "error", *blank, "", errors, *self.stamp.values()])
            return
        verdicts = [c.verdict for c in result.criteria]
        missing = "; ".join(result.missing)
        self.writer.writerow(
            [result.record_id, result.status, *verdicts, missing, "", *self.stamp.values()]
        )


_OUTPUTS: dict[str, type[_Output]] = {
    "table": _TableOutput,
    "json": _JsonOutput,
    "jsonl": _JsonlOutput,
    "csv": _CsvOutput,
}


def _screen(args: argparse.Namespace) -> int:
    """Screen every record of a file and report each, then a summary."""
    protocol = load(args.protocol)
    if sql_command.use_duckdb(args, protocol):
        return _screen_duckdb(args, protocol)
    if args.format == "parquet":
        raise UsageError.at("usage", "--format parquet needs the duckdb engine", None)
    args.format = args.format or "table"
    results = _with_progress(protocol.screen_many(_records(args, protocol.reader)))
    # A file that cannot be read at all fails on the first item: fail before any output.
    first = next(results, None)
    summary = _Summary([c.id for c in protocol.criteria], _summary_label(protocol))
    output_class = _OUTPUTS[args.format]
    with _output_file(args.output) as out:
        output = output_class(out, protocol)
        try:
            for result in itertools.chain([] if first is None else [first], results):
                summary.add(result)
                output.add(result)
        finally:
            output.close()
        if output_class.summary_on_stdout:
            out.write(summary.to_text() + "\n")
    if not output_class.summary_on_stdout:
        _error(summary.to_text())
    return 1 if summary.statuses["error"] else 0


def _screen_duckdb(args: argparse.Namespace, protocol: Protocol) -> int:
    """Screen in embedded DuckDB (docs/sql.md): results streamed by DuckDB, the same summary
    as the row engine on stderr."""
    counts = sql_command.screen(args, protocol, lambda: _records(args, protocol.reader))
    summary = _Summary(counts.criteria, _summary_label(protocol))
    summary.statuses.update(counts.statuses)
    summary.excluded.update(counts.excluded)
    summary.undecided.update(counts.undecided)
    _error(summary.to_text())
    return 1 if summary.statuses["error"] else 0


@contextlib.contextmanager
def _output_file(path: Path | None) -> Iterator[TextIO]:
    """The named output file (created, UTF-8), else stdout, which stays open."""
    if path is None:
        yield sys.stdout
        return
    # newline="" lets the csv module write its own line endings.
    with path.open("w", encoding="utf-8", newline="") as file:
        yield file


# --- explain -------------------------------------------------------------------------------


def _explain(args: argparse.Namespace) -> int:
    """Explain one record: the file's only one, or the one with --id."""
    protocol = load(args.protocol)
    record = _pick(_records(args, protocol.reader), args.record_id, args.records)
    explanation = protocol.explain(record)
    if args.format == "text":
        print(f"{_header(protocol)}\n{explanation.to_text()}")
    else:
        print(_dumps({**explanation.to_json(), **_stamp(protocol)}))
    return 0


def _pick(results: Iterable[Record | RecordError], wanted: str | None, source: str) -> Record:
    """The record with id `wanted`, or the only record; a bad one raises its `RecordError`."""
    first: Record | RecordError | None = None
    ids: list[str] = []
    for result in results:
        if wanted is not None and _name(result) == wanted:
            return _valid(result)
        first = first or result
        ids.append(_name(result))
    if wanted is not None:
        shown = ", ".join(ids[:10]) + (f", … ({len(ids)} in all)" if len(ids) > 10 else "")
        raise UsageError.at(
            "usage", f"{source}: no record with id '{wanted}' (records: {shown or 'none'})", None
        )
    if first is None or len(ids) > 1:
        raise UsageError.at(
            "usage", f"{source} holds {len(ids)} records; choose one with --id", None
        )
    return _valid(first)


def _valid(result: Record | RecordError) -> Record:
    if isinstance(result, RecordError):
        raise result
    return result


# --- test ----------------------------------------------------------------------------------


def _test(args: argparse.Namespace) -> int:
    """Run the stored cases of a protocol folder; optionally report their coverage."""
    pairs = find_case_files(args.protocol_dir)
    if not pairs:
        # Passing with nothing tested would hide a misplaced or misnamed case file.
        raise UsageError.at(
            "usage", f"{args.protocol_dir}: no case files (cases/vN.yaml beside vN.yaml)", None
        )
    texts: list[str] = []
    suites: list[dict[str, Any]] = []
    ok = True
    for case_file, version_file in pairs:
        protocol = load(version_file)
        suite = load_cases(case_file)
        report = run_cases(protocol, suite)
        ok = ok and report.ok
        texts.append(report.to_text(verbose=args.verbose))
        suites.append(report.to_json())
        if args.coverage:
            covered = coverage(protocol, suite)
            texts.append(covered.to_text(verbose=args.verbose))
            suites[-1]["coverage"] = covered.to_json()
    print("\n\n".join(texts) if args.format == "text" else _dumps({"ok": ok, "suites": suites}))
    return 0 if ok else 1


# --- diff ----------------------------------------------------------------------------------

_REPORTS = ("text", "markdown", "html", "json")


def _diff(args: argparse.Namespace) -> int:
    """Write the reviewer's report of NEW against OLD."""
    # Imported here: the semantic diff needs z3, which the other commands should not load.
    from protocode.amendments import claim_problems, cohort_reader, diff  # noqa: PLC0415
    from protocode.amendments import report as reports  # noqa: PLC0415

    old, new = load(args.old), load(args.new)
    cohort = None
    if args.cohort is not None:
        cohort = list(read_records(args.cohort, cohort_reader(old, new)))
    report = diff(old, new, cohort)
    render = {
        "text": reports.render_text,
        "markdown": reports.render_markdown,
        "html": reports.render_html,
        "json": reports.render_json,
    }[args.format]
    text = render(report)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 1 if claim_problems(report) else 0


# --- release -------------------------------------------------------------------------------


def _release(args: argparse.Namespace) -> int:
    """Record the newest version of a protocol folder in its lock file."""
    version = release(args.protocol_dir)
    print(f"released version {version} of {args.protocol_dir} in {args.protocol_dir / LOCK_NAME}")
    return 0


# --- fmt -----------------------------------------------------------------------------------


def _fmt(args: argparse.Namespace) -> int:
    """Format protocol files in place, or with --check report those that would change."""
    return fmt_command.run(args.paths, args.check, sys.stdout, sys.stderr)


# --- tables --------------------------------------------------------------------------------


def _tables_to_tables(args: argparse.Namespace) -> int:
    """Write records as the SQL layout's tables."""
    protocol = load(args.protocol)
    records = _records(args, protocol.reader)
    return sql_command.to_tables(
        protocol, records, args.outdir, args.format, sys.stderr, used=_version(protocol)
    )


def _tables_to_records(args: argparse.Namespace) -> int:
    """Write the SQL layout's tables back as JSONL records."""
    protocol = load(args.protocol)
    with _output_file(args.output) as out:
        return sql_command.to_records(
            protocol, args.tables, out, sys.stderr, used=_version(protocol)
        )


# --- compile -------------------------------------------------------------------------------


def _compile(args: argparse.Namespace) -> int:
    """Write the protocol's screening query (--to sql) or compiled rules (--to json)."""
    protocol = load(args.protocol)
    if args.to == "sql":
        # A line comment naming the version; no line break of a name can end it early.
        header = " ".join(_header(protocol).split())
        text = f"-- {header}\n{protocol.to_sql(args.dialect)}\n"
    else:
        if args.dialect != "duckdb":
            raise UsageError.at("usage", "--dialect applies to --to sql only", None)
        text = _dumps(protocol.to_json()) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


# --- schema --------------------------------------------------------------------------------


def _schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of a valid patient record for the protocol."""
    protocol = load(args.protocol)
    schema = protocol.reader.schema()
    comment = f"a patient record for {_header(protocol)}"
    # Its "$schema" stays first (the position keeps; the value is the same).
    schema = {"$schema": schema["$schema"], "$comment": comment, **schema}
    print(_dumps(schema))
    return 0


def _import(args: argparse.Namespace) -> int:
    """Write the draft protocol of a registry record to stdout or a new file."""
    draft = read_record(args.record)
    output: Path | None = args.output
    if output is None:
        sys.stdout.write(draft_yaml(draft, schema_reference(Path.cwd())))
        return 0
    if output.exists() and not args.force:
        raise UsageError.at("usage", f"{output} exists; pass --force to overwrite it", None)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(draft_yaml(draft, schema_reference(output.parent)), encoding="utf-8")
    _error(
        f"wrote {output} ({draft.registry_id}: {len(draft.inclusion)} inclusion and "
        f"{len(draft.exclusion)} exclusion criteria, all drafts without a rule); "
        f"'protocode check {output}' lists them"
    )
    return 0


# --- dosing --------------------------------------------------------------------------------


def _dosing_plan(args: argparse.Namespace) -> int:
    """Print the planned calendar of every record."""
    protocol = load(args.protocol)
    schedules(protocol)
    results: list[tuple[str, list[PlannedDose] | RecordError]] = []
    for item in _read(args.records, DosingReader(protocol)):
        if isinstance(item, RecordError):
            results.append((_name(item), item))
            continue
        try:
            results.append((item.id, plan(protocol, item)))
        except RecordError as exc:
            results.append((item.id, exc))
    if args.format == "json":
        print(_dumps([{**_plan_json(rid, result), **_stamp(protocol)} for rid, result in results]))
    else:
        print(_header(protocol))
        _plan_table(results)
    return 1 if any(isinstance(result, RecordError) for _, result in results) else 0


def _plan_json(rid: str, result: list[PlannedDose] | RecordError) -> dict[str, Any]:
    if isinstance(result, RecordError):
        return {"id": rid, "errors": [d.to_json() for d in result.diagnostics]}
    return {"id": rid, "planned": [dose.to_json() for dose in result]}


def _plan_table(results: list[tuple[str, list[PlannedDose] | RecordError]]) -> None:
    table = Table()
    for column in ("id", "schedule", "dose #", "date", "from", "before", "dose", "route"):
        table.add_column(column, no_wrap=True)
    errors: list[str] = []
    for rid, result in results:
        if isinstance(result, RecordError):
            table.add_row(rid, Text("error", style="bold red"), "", "", "", "", "", "")
            errors.extend(f"{d.location}: {d.code}: {d.message}" for d in result.diagnostics)
            continue
        for dose in result:
            table.add_row(
                rid,
                dose.schedule,
                str(dose.number),
                dose.date.isoformat(),
                _when(dose.earliest),
                _when(dose.latest),
                dose.dose_text,
                dose.route,
            )
    Console(width=max(Console().width, 120)).print(table)
    for line in errors:
        print(line)


def _when(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%d %H:%M"))


def _dosing_check(args: argparse.Namespace) -> int:
    """Print every record's deviations from its planned calendar, and a summary."""
    protocol = load(args.protocol)
    schedules(protocol)
    results = list(check_many(protocol, _read(args.records, ComplianceReader(protocol))))
    counts = Counter(
        "errors"
        if isinstance(result, RecordError)
        else "compliant"
        if result.compliant
        else "deviations"
        for result in results
    )
    summary = {
        "records": len(results),
        "compliant": counts["compliant"],
        "with_deviations": counts["deviations"],
        "with_errors": counts["errors"],
    }
    if args.format == "json":
        records = [_check_json(r) for r in results]
        print(_dumps({**_stamp(protocol), "records": records, "summary": summary}))
    else:
        print(_header(protocol))
        _check_table(results)
        print(
            f"{len(results)} record{'' if len(results) == 1 else 's'} "
            f"({_version(protocol)}): "
            f"{summary['compliant']} compliant, {summary['with_deviations']} with deviations, "
            f"{summary['with_errors']} with errors"
        )
    return 0 if summary["compliant"] == len(results) else 1


def _check_json(result: ComplianceResult | RecordError) -> dict[str, Any]:
    if isinstance(result, RecordError):
        return {"id": _name(result), "errors": [d.to_json() for d in result.diagnostics]}
    return result.to_json()


def _check_table(results: list[ComplianceResult | RecordError]) -> None:
    table = Table()
    for column in ("id", "result", "schedule", "dose #", "severity"):
        table.add_column(column, no_wrap=True)
    table.add_column("deviation")
    errors: list[str] = []
    for result in results:
        if isinstance(result, RecordError):
            count = len(result.diagnostics)
            message = f"{count} error{'' if count == 1 else 's'} (below)"
            table.add_row(_name(result), Text("error", style="bold red"), "", "", "", message)
            errors.extend(f"{d.location}: {d.code}: {d.message}" for d in result.diagnostics)
            continue
        if result.compliant:
            table.add_row(
                result.record_id, Text("compliant", style="green"), "", "", "", result.summary
            )
            continue
        table.add_row(result.record_id, Text("deviations", style="red"), "", "", "", result.summary)
        for d in result.deviations:
            style = "red" if d.severity == "major" else "yellow"
            table.add_row(
                result.record_id,
                Text(d.kind, style=style),
                d.schedule or "",
                "" if d.number is None else str(d.number),
                d.severity,
                d.message,
            )
    Console(width=max(Console().width, 120)).print(table)
    for line in errors:
        print(line)


# --- endpoints -----------------------------------------------------------------------------


def _derived(args: argparse.Namespace) -> tuple[Protocol, list[EndpointRow], list[RecordError]]:
    """Every row of every record that can be derived, and each other record's error."""
    protocol = load(args.protocol)
    if not endpoints(protocol):
        message = (
            f"{protocol.registry_id} version {protocol.version} defines no endpoints "
            "(name a version file that has an 'endpoints' section)"
        )
        raise UsageError.at("usage", message, None)
    rows: list[EndpointRow] = []
    errors: list[RecordError] = []
    for item in _read(args.records, protocol.reader):
        if isinstance(item, RecordError):
            errors.append(item)
            continue
        try:
            rows.extend(derive(protocol, item))
        except RecordError as exc:
            errors.append(exc)
    return protocol, rows, errors


def _patients_line(protocol: Protocol, rows: list[EndpointRow], errors: list[RecordError]) -> str:
    derived = len({r.id for r in rows})
    total = derived + len(errors)
    return (
        f"{total} record{'' if total == 1 else 's'} ({_version(protocol)}): {derived} derived, "
        f"{len(errors)} with errors"
    )


def _error_lines(errors: list[RecordError]) -> list[str]:
    return [f"{d.location}: {d.code}: {d.message}" for e in errors for d in e.diagnostics]


def _endpoints_derive(args: argparse.Namespace) -> int:
    """Print or write one row per record and endpoint; report records with errors."""
    protocol, rows, errors = _derived(args)
    if args.format == "table":
        print(_header(protocol))
        table = Table()
        for column in ("id", "endpoint", "day", "status", "date", "what happened"):
            table.add_column(column, no_wrap=column != "what happened")
        for row in rows:
            style = {"event": "red", "competing": "yellow", "responder": "green"}.get(row.status)
            table.add_row(
                row.id,
                row.endpoint,
                str(row.time),
                Text(row.status, style=style or ""),
                row.date.isoformat(),
                row.description,
            )
        Console(width=max(Console().width, 120)).print(table)
        for line in _error_lines(errors):
            print(line)
        print(_patients_line(protocol, rows, errors))
        return 1 if errors else 0
    with _output_file(args.output) as out:
        write_rows(rows, out, args.format, adam=args.adam, protocol=_stamp(protocol))
    for line in _error_lines(errors):
        _error(line)
    _error(_patients_line(protocol, rows, errors))
    return 1 if errors else 0


def _endpoints_estimate(args: argparse.Namespace) -> int:
    """Print each endpoint's estimate over the cohort; draw the curves with --plot."""
    formats = [f.strip() for f in args.plot_format.split(",") if f.strip()]
    protocol, rows, errors = _derived(args)
    estimates = estimate(protocol, rows)
    paths: list[Path] = []
    if args.plot is not None:
        try:
            paths = plot(estimates, args.plot, formats)
        except ValueError as exc:
            raise UsageError.at("usage", str(exc), None) from None
    if args.format == "json":
        print(
            _dumps(
                {
                    **_stamp(protocol),
                    "estimates": [e.to_json() for e in estimates],
                    "records": len({r.id for r in rows}) + len(errors),
                    "errors": [d.to_json() for e in errors for d in e.diagnostics],
                    "plots": [str(p) for p in paths],
                }
            )
        )
        return 1 if errors else 0
    print(_header(protocol))
    _estimates_table(estimates, {e.id: e.horizon.text for e in endpoints(protocol)})
    for line in _error_lines(errors):
        print(line)
    left_out = " (left out of the estimates)" if errors else ""
    print(_patients_line(protocol, rows, errors) + left_out)
    for path in paths:
        print(f"wrote {path}")
    return 1 if errors else 0


def _estimates_table(estimates: list[Estimate], horizons: dict[str, str]) -> None:
    table = Table()
    columns = ("endpoint", "estimate", "at", "value", "95 % CI", "patients", "events", "competing")
    for column in columns:
        table.add_column(column, no_wrap=True, justify="left" if column == "endpoint" else "right")
    notes: list[str] = []
    for e in estimates:
        events = str(e.events)
        if e.method == "proportion":
            evaluable = e.patients - e.censored
            events = f"{e.events} of {evaluable} evaluable"
        table.add_row(
            e.endpoint,
            e.quantity,
            horizons.get(e.endpoint, ""),
            f"{100 * e.value:.1f} %",
            f"{100 * e.lower:.1f} - {100 * e.upper:.1f} %",
            str(e.patients),
            events,
            "" if e.method != "aalen-johansen" else str(e.competing),
        )
        if e.note:
            notes.append(f"{e.endpoint}: {e.note}")
    Console(width=max(Console().width, 120)).print(table)
    for note in notes:
        print(note)
