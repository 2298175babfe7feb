"""The SQL backend: eligibility compiled to one set-based query over the table layout.

`layout` gives the tables of large inputs (from the data dictionary) and `compile` turns
the checked IR into one sqlglot query in any dialect. Running it is `protocode.tables`.
See ``docs/sql.md``.
"""

from __future__ import annotations

from protocode.backends.sql.compile import compile_query, dialects, to_sql
from protocode.backends.sql.layout import Layout, Tables, layout

__all__ = ["Layout", "Tables", "compile_query", "dialects", "layout", "to_sql"]
