"""MySQL / MariaDB source. :class:`MySQLSource` (and with it PyMySQL and DuckDB) is imported on first
use, so the connector registry can offer the kind without loading its drivers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from servicetsunami.connectors.mysql.config import MySQLConfig

if TYPE_CHECKING:
    from servicetsunami.connectors.mysql.source import MySQLSource

__all__ = ["MySQLConfig", "MySQLSource"]


def __getattr__(name: str) -> Any:
    if name == "MySQLSource":
        from servicetsunami.connectors.mysql.source import MySQLSource

        return MySQLSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
