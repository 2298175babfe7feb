"""The command line's grammar: every command, its arguments and its help.

Building the parser imports nothing but argparse, so `protocode --help` starts at once. Each
command names its handler as ``module:function`` inside `protocode.cli`; `protocode.cli.main`
imports that module only when the command runs, with whatever heavy libraries it needs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_STATUS = """\
exit status:
  0  success
  1  an error in a protocol, a record or a file (reported on stderr)
  2  usage error (bad command line)
  3  internal error: a bug in protocode, not in the input (one line on stderr; --debug or
     PROTOCODE_DEBUG=1 shows the traceback)
"""

DEBUG_VARIABLE = "PROTOCODE_DEBUG"
"""The environment variable that asks for the traceback of an internal error."""

# The history module that defines it loads the whole front end; --help must not wait for it.
# tests/test_cli.py holds the two names equal.
LOCK_NAME = "protocode.lock"
"""The lock file of a protocol folder, as the help texts name it."""

ENGINES = ("auto", "row", "duckdb")
"""The engines `screen` runs on."""

OUTPUTS = ("table", "json", "jsonl", "csv")
"""The row engine's output formats for `screen`."""

REPORTS = ("text", "markdown", "html", "json")
"""The formats of the `diff` report."""


def installed_version() -> str:
    """protocode's version as installed (its distribution metadata)."""
    # Imported here: reading metadata is for --version only, and every start would pay.
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("protocode")
    except PackageNotFoundError:
        # Run from a source tree that was never installed: there is no metadata to read.
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """--version: print ``protocode <version>`` and exit; the metadata is read only then."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print(f"protocode {installed_version()}")
        parser.exit()


def _debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """Give every (sub)command --debug, and its own name and parser for error reports.

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
                sub.set_defaults(command_name=sub.prog, parser=sub)
                _debug_everywhere(sub)


def parser() -> argparse.ArgumentParser:
    """The `protocode` parser: each command sets ``handler`` (``module:function`` in
    `protocode.cli`), ``command_name`` and its own ``parser`` in the parsed arguments."""
    top = argparse.ArgumentParser(
        prog="protocode",
        description="Clinical-trial protocols as code: check protocol files, release versions, "
        "screen patient records for eligibility, explain verdicts, run stored test cases.",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument(
        "--debug",
        action="store_true",
        help=f"on an internal error, show the Python traceback (also {DEBUG_VARIABLE}=1)",
    )
    top.add_argument("--version", action=_VersionAction, help="print protocode's version and exit")
    top.set_defaults(parser=top)
    commands = top.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, handler: str, summary: str, details: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=f"{summary}\n\n{details}",
            epilog=EXIT_STATUS,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    protocol_help = (
        f"protocol file, or protocol folder (its version in force: the newest released in "
        f"{LOCK_NAME}, else its newest vN.yaml; every output names the version used)"
    )
    records_help = "records file: .json, .jsonl/.ndjson or .csv; '-' reads JSONL from stdin"

    check = command(
        "check",
        "check:check",
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
        "screen:screen",
        "Screen patient records for eligibility.",
        "Every record is reported: a screened record with its status (eligible, ineligible,\n"
        "indeterminate) and criterion verdicts, a bad record with status 'error' and its\n"
        "problems. A summary follows (on stdout after a table, else on stderr): the count\n"
        "per status and the attrition per criterion.\n\n"
        "Exits 0 when every record was screened, 1 when any record had an error.",
    )
    screen.add_argument("protocol", metavar="PROTOCOL", help=protocol_help)
    screen.add_argument("records", metavar="RECORDS", help=records_help)
    input_arguments(screen)
    screen.add_argument(
        "--format",
        choices=(*OUTPUTS, "parquet"),
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
        choices=ENGINES,
        default="auto",
        help="row: the Python engine, record by record; duckdb: the compiled SQL query in "
        "embedded DuckDB (docs/sql.md); auto (default): duckdb for table inputs (a folder of "
        "tables, .parquet, a patients CSV table) or Parquet output, else row",
    )

    explain = command(
        "explain",
        "screen:explain",
        "Explain the screening of one record.",
        "Shows each criterion's verdict with the values that decided it, and the data that\n"
        "would decide an indeterminate result.",
    )
    explain.add_argument("protocol", metavar="PROTOCOL", help=protocol_help)
    explain.add_argument("records", metavar="RECORDS", help=records_help)
    input_arguments(explain)
    explain.add_argument(
        "--id", dest="record_id", metavar="ID", help="the record to explain (needed if several)"
    )
    explain.add_argument("--format", choices=("text", "json"), default="text")

    test = command(
        "test",
        "cases:test",
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
        "amend:release",
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
        "amend:diff",
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
        "--format", choices=REPORTS, default="text", help="report format (default text)"
    )
    diff.add_argument(
        "--output", "-o", metavar="FILE", type=Path, help="write the report here, not stdout"
    )

    dosing = commands.add_parser(
        "dosing",
        help="Dosing: a patient's planned calendar and compliance with it.",
        description="Dosing schedules of a protocol (its 'dosing' section): the planned\n"
        "calendar of each patient record, and what was given compared with it.",
        epilog=EXIT_STATUS,
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
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dosing_plan.set_defaults(handler="dosing:plan")
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
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dosing_check.set_defaults(handler="dosing:check")
    dosing_check.add_argument("protocol", metavar="PROTOCOL", help=protocol_help)
    dosing_check.add_argument("records", metavar="RECORDS", help=records_help)
    dosing_check.add_argument("--format", choices=("table", "json"), default="table")

    _endpoint_commands(commands, protocol_help, records_help)

    fmt = command(
        "fmt",
        "fmt:fmt",
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
        epilog=EXIT_STATUS,
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
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    to_tables.set_defaults(handler="tables:to_tables")
    to_tables.add_argument("protocol", metavar="PROTOCOL", help=protocol_help)
    to_tables.add_argument("records", metavar="RECORDS", help=records_help)
    to_tables.add_argument("outdir", metavar="OUTDIR", type=Path, help="folder for the tables")
    to_tables.add_argument(
        "--format", choices=("parquet", "csv"), default="parquet", help="table files (parquet)"
    )
    input_arguments(to_tables)
    to_records = tables_commands.add_parser(
        "to-records",
        help="Write tables back as JSONL records.",
        description="Read tables (a folder, or a patients table file) and write one JSON\n"
        "record per patient, ordered by id. Bad cells are reported with record id and field.\n\n"
        "Exits 0 when every record was written, 1 when any record had an error.",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    to_records.set_defaults(handler="tables:to_records")
    to_records.add_argument("protocol", metavar="PROTOCOL", help=protocol_help)
    to_records.add_argument("tables", metavar="TABLES", type=Path, help="folder or table file")
    to_records.add_argument(
        "--output", "-o", metavar="FILE", type=Path, help="write the JSONL here, not stdout"
    )

    compile_ = command(
        "compile",
        "compile:write",
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
        "compile:schema",
        "Print the JSON Schema of a patient record.",
        "The schema (draft 2020-12) of a valid record for the protocol's data dictionary,\n"
        "for editors, form generators and upstream validation.",
    ).add_argument("protocol", metavar="PROTOCOL", help=protocol_help)

    draft = command(
        "import",
        "registry:draft",
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
    _debug_everywhere(top)
    return top


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
        epilog=EXIT_STATUS,
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
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    derive_cmd.set_defaults(handler="endpoints:derive")
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
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    estimate_cmd.set_defaults(handler="endpoints:estimate")
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


def input_arguments(sub: argparse.ArgumentParser) -> None:
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
