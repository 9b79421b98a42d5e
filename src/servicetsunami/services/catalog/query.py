"""Read-only SQL in the Databricks dialect: guard, run capped on the engine, shape the result."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import logging
import math
import time
import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from servicetsunami.engines.types import sql_type
from servicetsunami.errors import InvalidInput
from servicetsunami.services.catalog.views import expand_views
from servicetsunami.services.governance.pii import mask_result, redacted_errors
from servicetsunami.services.models import QueryColumn, QueryResult
from servicetsunami.sql import GuardedQuery, guard_query
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)


def query_sql(svc: Services, principal: Principal, sql: str, /, *, max_rows: int | None = None) -> QueryResult:
    """Run one read-only statement. ``max_rows`` may lower the operator's cap, never raise it."""
    principal.require(Scope.READ)
    cap = svc.settings.query.max_rows
    if max_rows is not None and (not isinstance(max_rows, int) or max_rows < 1):
        raise InvalidInput("max_rows must be a positive integer")
    rows_cap = min(max_rows or cap, cap)
    if not isinstance(sql, str) or len(sql) > 100_000:
        raise InvalidInput("sql must be a string of at most 100,000 characters")
    started = time.perf_counter()
    guarded = guard_query(sql, catalog=principal.catalog)
    if guarded.kind in ("select", "explain"):
        guarded = expand_views(svc, principal, guarded)
        with redacted_errors(svc, principal):
            result = svc.engine.query(
                guarded,
                max_rows=rows_cap,
                max_bytes=svc.settings.query.max_bytes,
                timeout_seconds=svc.settings.query.timeout_seconds,
            )
        table, truncated, cached = result.table, result.truncated, result.cached
    else:
        cached = False
        table, truncated = _metadata_statement(svc, principal, guarded, rows_cap)
    hint = None
    if truncated:
        hint = (
            f"result cut at {table.num_rows} rows (cap {rows_cap} rows / "
            f"{svc.settings.query.max_bytes} bytes); aggregate, filter or add LIMIT/OFFSET to page"
        )
    out = query_result(table, truncated, started, guarded.sql, hint=hint, cached=cached)
    if guarded.kind in ("select", "explain"):
        out = mask_result(svc, principal, out, guarded)
    return out


def query_result(
    table: pa.Table, truncated: bool, started: float, sql: str, *, hint: str | None = None, cached: bool = False
) -> QueryResult:
    """An Arrow result as the JSON-ready shape every door returns."""
    return QueryResult(
        columns=[QueryColumn(name=f.name, type=sql_type(f.type)) for f in table.schema],
        rows=to_json_rows(table),
        row_count=table.num_rows,
        truncated=truncated,
        hint=hint,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 2),
        sql=sql,
        cached=cached,
    )


def _metadata_statement(svc: Services, principal: Principal, q: GuardedQuery, cap: int) -> tuple[pa.Table, bool]:
    """DESCRIBE and SHOW answered from the engine's catalog, the same on every engine."""
    if q.kind == "show_schemas":
        names = sorted({t.ref.schema for t in svc.engine.list_tables(principal.catalog)} | {"bronze", "silver", "gold"})
        table = pa.table({"databaseName": names})
    elif q.kind == "show_tables":
        tables = svc.engine.list_tables(principal.catalog, schema=q.schema)
        table = pa.table(
            {
                "database": [t.ref.schema for t in tables],
                "tableName": [t.ref.name for t in tables],
                "isTemporary": [False] * len(tables),
            }
        )
    else:  # describe, show_columns
        assert q.target is not None
        detail = svc.engine.describe(q.target)
        if q.kind == "show_columns":
            table = pa.table({"col_name": [c.name for c in detail.columns]})
        else:
            table = pa.table(
                {
                    "col_name": [c.name for c in detail.columns],
                    "data_type": [c.type.lower() for c in detail.columns],
                    "comment": [c.comment for c in detail.columns],
                }
            )
    return table.slice(0, cap), table.num_rows > cap


def to_json_rows(table: pa.Table) -> list[list[Any]]:
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [[_json_value(v) for v in row] for row in zip(*columns, strict=True)] if columns else []


def _json_value(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return str(v)
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        if v and all(isinstance(x, tuple) and len(x) == 2 for x in v):  # Arrow maps come as pairs
            return {str(k): _json_value(x) for k, x in v}
        return [_json_value(x) for x in v]
    return str(v)
