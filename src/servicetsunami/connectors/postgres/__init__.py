"""PostgreSQL source: psycopg for checks and discovery, DuckDB's postgres_scanner for rows."""

from servicetsunami.connectors.postgres.config import PostgresConfig
from servicetsunami.connectors.postgres.source import PostgresSource

__all__ = ["PostgresConfig", "PostgresSource"]
