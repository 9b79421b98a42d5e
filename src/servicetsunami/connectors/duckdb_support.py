"""DuckDB helpers shared by the connectors: offline extension loading, SQL quoting, and the casts
that make DuckDB types storable in Delta (which has no TIME, INTERVAL, UUID, ENUM or unsigned types).
"""

from __future__ import annotations

import datetime
import decimal
import importlib
import pathlib
from typing import Any

import duckdb

from servicetsunami.errors import InvalidInput

_CASTS = {
    "TIME": "VARCHAR",
    "TIME WITH TIME ZONE": "VARCHAR",
    "INTERVAL": "VARCHAR",
    "UUID": "VARCHAR",
    "JSON": "VARCHAR",
    "BIT": "VARCHAR",
    "UTINYINT": "SMALLINT",
    "USMALLINT": "INTEGER",
    "UINTEGER": "BIGINT",
    "UBIGINT": "DECIMAL(20,0)",
    "HUGEINT": "DECIMAL(38,0)",
    "UHUGEINT": "DECIMAL(38,0)",
    "TIMESTAMP_NS": "TIMESTAMP",
    "TIMESTAMP_MS": "TIMESTAMP",
    "TIMESTAMP_S": "TIMESTAMP",
}


def storable_cast(duck_type: str) -> str | None:
    """The type to cast a DuckDB column to before it lands in Delta, or None if it can stay."""
    upper = duck_type.upper()
    if upper.startswith("ENUM(") or upper.startswith("UNION("):
        return "VARCHAR"
    if upper.endswith("[]"):
        inner = storable_cast(duck_type[:-2])
        return f"{inner}[]" if inner else None
    return _CASTS.get(upper)


def packaged_extensions_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for :func:`load_packaged_extension` that runs only SQL this project
    generates (a source's reads), extension autoloading off.

    Extensions come only from their pip packages, installed beside the ``duckdb`` module itself and
    trusted as much; DuckDB's signature check of such a file (SHA-256 and RSA over 42 MB for
    postgres_scanner) costs 130-170 ms per connection, a third of an incremental sync, so these
    connections skip it. Connections that read what callers supply (uploaded files, queries) keep
    the check: there an unsigned ``LOAD`` could run a file someone uploaded.
    """
    con = duckdb.connect(":memory:", config={"allow_unsigned_extensions": "true"})
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    return con


def load_packaged_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load a DuckDB extension from its pip package (``duckdb-extension-<name>``); never download."""
    try:
        module = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError as exc:
        pip_name = name.replace("_", "-")
        raise InvalidInput(f"the {name} reader is not installed (pip package duckdb-extension-{pip_name})") from exc
    version = con.execute("PRAGMA version").fetchone()[0]  # type: ignore[index]  # PRAGMA version has one row
    path = pathlib.Path(next(iter(module.__path__))) / "extensions" / version / f"{name}.duckdb_extension"
    con.execute(f"LOAD {lit(str(path))}")


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_literal(value: Any) -> str:
    """A typed DuckDB literal for a Python value (cursor bounds, constant columns)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return f"{value}::DECIMAL(38,{max(0, -value.as_tuple().exponent)})"  # type: ignore[operator]  # finite
    if isinstance(value, datetime.datetime):
        return f"{'TIMESTAMPTZ' if value.tzinfo else 'TIMESTAMP'} {lit(value.isoformat())}"
    if isinstance(value, datetime.date):
        return f"DATE {lit(value.isoformat())}"
    return lit(str(value))
