"""`protocode compile` (the rules as SQL or compiled JSON) and `schema` (a record's JSON
Schema): what a protocol compiles to for other tools."""

from __future__ import annotations

import argparse
import sys

from protocode import cli
from protocode.cli.output import dumps, header
from protocode.core.errors import UsageError


def write(args: argparse.Namespace) -> int:
    """Write the protocol's screening query (--to sql) or compiled rules (--to json)."""
    protocol = cli.load(args.protocol)
    if args.to == "sql":
        # A line comment naming the version; no line break of a name can end it early.
        named = " ".join(header(protocol).split())
        text = f"-- {named}\n{protocol.to_sql(args.dialect)}\n"
    else:
        if args.dialect != "duckdb":
            raise UsageError.at("usage", "--dialect applies to --to sql only", None)
        text = dumps(protocol.to_json()) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


def schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of a valid patient record for the protocol."""
    protocol = cli.load(args.protocol)
    schema = protocol.reader.schema()
    comment = f"a patient record for {header(protocol)}"
    # Its "$schema" stays first (the position keeps; the value is the same).
    schema = {"$schema": schema["$schema"], "$comment": comment, **schema}
    print(dumps(schema))
    return 0
