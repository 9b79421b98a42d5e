"""PostgreSQL source: psycopg for checks and discovery, DuckDB's postgres_scanner for rows.

:class:`PostgresSource` (and with it psycopg and DuckDB) is imported on first use, so the connector
registry can offer the kind without loading its drivers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from servicetsunami.connectors.postgres.config import PostgresConfig

if TYPE_CHECKING:
    from servicetsunami.connectors.postgres.source import PostgresSource

__all__ = ["PostgresConfig", "PostgresSource"]


def __getattr__(name: str) -> Any:
    if name == "PostgresSource":
        from servicetsunami.connectors.postgres.source import PostgresSource

        return PostgresSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
