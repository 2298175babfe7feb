"""Records as tables, and screening them where they are.

`files` names the tables and finds their files; `convert` turns records into the documented
table layout and back; `database` stages tables in DuckDB and validates every cell
(`checks`, `cells`: the rules of `protocode.records.rules` as SQL); `run` screens the valid
records with the compiled query and writes the results (`output`). The query itself comes
from the SQL backend (`protocode.backends.sql`). See ``docs/sql.md``.
"""
