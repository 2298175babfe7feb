"""Derived endpoint rows as files (CSV, JSON, JSONL), optionally with CDISC ADaM names.

The rows have the shape of an ADaM time-to-event dataset (ADTTE): one row per patient and
parameter. With ``adam=True`` the columns take the ADaM variable names a statistician
expects; without, protocode's own names (those of `EndpointRow.to_json`). Given the
protocol that derived them, every row also names its registry id and version.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TextIO

from protocode.core.jsontext import json_line
from protocode.endpoints.derive import EndpointRow

RowFormat = Literal["csv", "json", "jsonl"]

ADAM_NAMES = {
    "id": "USUBJID",
    "endpoint": "PARAMCD",
    "name": "PARAM",
    "origin": "STARTDT",
    "date": "ADT",
    "time": "AVAL",
    "status": "STATUS",
    "censored": "CNSR",
    "description": "EVNTDESC",
    "source": "SRCVAR",
}
"""protocode's column -> ADaM ADTTE variable. AVAL is in days (AVALU = DAYS); CNSR is 0 for
an event, 1 when censored and 2 for a competing event (blank for a proportion's row, whose
STATUS says responder, non_responder or not_evaluable)."""


def row_json(
    row: EndpointRow, *, adam: bool = False, protocol: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """One row as JSON-ready values, with ADaM names (and AVALU) when `adam`.

    `protocol` (``{"protocol": registry id, "version": version}``) adds the protocol's
    columns, last; with ADaM names STUDYID (the registry id) comes first, as ADaM datasets
    begin, and PROTVER (sponsor-defined: the protocol version that derived the row) last.
    """
    data = row.to_json()
    if not adam:
        return {**data, **(protocol or {})}
    renamed = {ADAM_NAMES[key]: value for key, value in data.items()}
    renamed["AVALU"] = "DAYS"
    if protocol is None:
        return renamed
    return {"STUDYID": protocol["protocol"], **renamed, "PROTVER": protocol["version"]}


def write_rows(
    rows: Iterable[EndpointRow],
    out: TextIO,
    fmt: RowFormat,
    *,
    adam: bool = False,
    protocol: Mapping[str, str] | None = None,
) -> int:
    """Write rows to `out` as CSV (with a header), a JSON array or JSON lines; the count.

    `protocol` names the protocol id and version in every row (see `row_json`).
    """
    count = 0
    if fmt == "csv":
        writer: csv.DictWriter[str] | None = None
        for row in rows:
            data = row_json(row, adam=adam, protocol=protocol)
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(data), lineterminator="\n")
                writer.writeheader()
            writer.writerow({k: "" if v is None else v for k, v in data.items()})
            count += 1
        if writer is None:  # no rows: still a header, so readers see the columns
            csv.writer(out, lineterminator="\n").writerow(_columns(adam, protocol))
        return count
    if fmt == "jsonl":
        for row in rows:
            data = row_json(row, adam=adam, protocol=protocol)
            # One line per row for any line reader (an id may hold U+2028).
            out.write(json_line(data) + "\n")
            count += 1
        return count
    array = [row_json(row, adam=adam, protocol=protocol) for row in rows]
    out.write(json.dumps(array, indent=2, ensure_ascii=False) + "\n")
    return len(array)


def _columns(adam: bool, protocol: Mapping[str, str] | None) -> list[str]:
    """The CSV header of `row_json`'s rows, for a file without rows."""
    if not adam:
        return [*ADAM_NAMES, *(protocol or {})]
    names = [*ADAM_NAMES.values(), "AVALU"]
    return names if protocol is None else ["STUDYID", *names, "PROTVER"]
