"""Records as tables, and screening them where they are.

`convert` turns records into the documented table layout and back, `run` stages and
validates tables in DuckDB (or PostgreSQL, Spark) and runs the compiled query, and `command`
is what `protocode tables` and `screen --engine duckdb` call. The query itself comes from the
SQL backend (`protocode.backends.sql`). See ``docs/sql.md``.
"""
