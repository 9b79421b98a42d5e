"""SQL: the read-only query guard and Databricks-to-DuckDB transpilation (sqlglot).

Users and agents write Databricks SQL. :func:`guard_query` checks and qualifies it inside the
caller's catalog; :func:`to_duckdb` turns the result into SQL the local engine runs.
"""

from servicetsunami.sql.guard import GuardedQuery, TableReference, guard_query
from servicetsunami.sql.transpile import to_duckdb

__all__ = ["GuardedQuery", "TableReference", "guard_query", "to_duckdb"]
