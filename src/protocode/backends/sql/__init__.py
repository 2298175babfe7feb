"""The SQL backend: eligibility compiled to one set-based query, run in DuckDB at scale.

One module per stage: `layout` (the tables of large inputs, from the data dictionary),
`convert` (records ⇄ tables), `compile` (checked IR → sqlglot query) and `run` (DuckDB:
stage and validate inputs, run the query, stream results). See ``docs/sql.md``.
"""

from __future__ import annotations

from protocode.backends.sql.compile import compile_query, dialects, to_sql
from protocode.backends.sql.layout import Layout, Tables, layout

__all__ = ["Layout", "Tables", "compile_query", "dialects", "layout", "to_sql"]
