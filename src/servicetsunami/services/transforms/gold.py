"""Gold: named SQL over silver (and gold), stored with its definition and lineage.

``materialize="table"`` writes the result to ``gold.<name>`` as one commit (the engine's
``write_query``) and ``refresh_gold_table`` writes it again. ``materialize="view"`` stores only the
definition: the local engine keeps no views of its own, so queries that name the view get its SQL
in its place (:mod:`~servicetsunami.services.catalog.views`), always over the current data.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, cast

from pydantic import BaseModel, Field
from sqlglot import exp

from servicetsunami.errors import Conflict, InvalidInput
from servicetsunami.services.catalog.views import expand_views
from servicetsunami.services.governance import pii
from servicetsunami.services.models import ColumnInfo
from servicetsunami.sql import GuardedQuery, guard_query
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import transforms as transforms_repo
from servicetsunami.tenancy import Principal, Scope, TableRef, check_identifier

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

Materialize = Literal["table", "view"]


class GoldResult(BaseModel):
    table: str
    materialize: Materialize
    sql: str = Field(description="The stored definition, names qualified to your catalog")
    upstream: list[str] = Field(description="Tables and views the definition reads")
    columns: list[ColumnInfo]
    version: int | None = Field(None, description="The table's new version (tables only)")
    rows: int | None = Field(None, description="Rows written (tables only)")
    elapsed_ms: float


@pii.redacting
def create_gold_table(
    svc: Services, principal: Principal, name: str, sql: str, /, *, materialize: str = "table"
) -> GoldResult:
    """Create or replace ``gold.<name>`` from ``sql``; see the module docstring."""
    principal.require(Scope.WRITE)
    check_identifier(name, what="name")
    if materialize not in ("table", "view"):
        raise InvalidInput("materialize must be 'table' or 'view'")
    if not isinstance(sql, str) or not sql.strip() or len(sql) > 100_000:
        raise InvalidInput("sql must be one SELECT of at most 100,000 characters")
    ref = TableRef(principal.catalog, "gold", name)
    guarded = guard_query(sql, catalog=principal.catalog, default_schema="silver")
    if guarded.kind != "select":
        raise InvalidInput("a gold definition is one SELECT (or WITH ... SELECT) over silver and gold tables")
    for table in guarded.tables:
        if table.table.schema not in ("silver", "gold"):
            raise InvalidInput(
                f"gold is built over silver and gold; {table.table.schema}.{table.table.name} is not "
                "(clean it into silver with transform_to_silver first)"
            )
        if table.table == ref:
            raise InvalidInput(f"gold.{name} cannot be defined over itself")
    if materialize == "view" and svc.engine.table_exists(ref):
        raise Conflict(f"gold.{name} is a table; choose another name for the view")
    return _build(svc, principal, ref, guarded, materialize)


@pii.redacting
def refresh_gold_table(svc: Services, principal: Principal, name: str, /) -> GoldResult:
    """Run a gold table's stored definition again (a view is always current: it is checked only)."""
    principal.require(Scope.WRITE)
    table = name.split(".", 1)[1] if name.startswith("gold.") else name
    check_identifier(table, what="name")
    with svc.store.session() as session:
        row = transforms_repo.get_transform(session, f"gold.{table}", tenant_id=principal.tenant_id)
        sql, materialize = row.sql, row.materialize
    guarded = guard_query(sql, catalog=principal.catalog, default_schema="silver")
    return _build(svc, principal, TableRef(principal.catalog, "gold", table), guarded, materialize)


def _build(svc: Services, principal: Principal, ref: TableRef, guarded: GuardedQuery, materialize: str) -> GoldResult:
    started = time.perf_counter()
    expanded = expand_views(svc, principal, guarded)
    upstream: dict[str, int | None] = {f"{t.table.schema}.{t.table.name}": None for t in guarded.tables}
    version = rows = None
    if materialize == "table":
        versions = {f"{t.table.schema}.{t.table.name}": _version(svc, t.table) for t in expanded.tables}
        upstream.update({k: v for k, v in versions.items() if k in upstream})
        result = svc.engine.write_query(
            ref,
            expanded,
            mode="overwrite",
            description="Gold table",
            commit_info={"tsunami.operation": "create_gold_table"},
            timeout_seconds=svc.settings.query.write_timeout_seconds,
        )
        version, rows = result.version, result.rows
        detail = svc.engine.describe(ref, version=version)
        columns = detail.columns
        pii.flag_written(svc, principal, ref, columns=[c.name for c in columns], written_by=expanded, detail=detail)
    else:
        columns = view_columns(svc, expanded)
    with svc.store.session(write_lock=True) as session:  # read, then write: SQLite's lock from the start
        transforms_repo.save_transform(
            session,
            tenant_id=principal.tenant_id,
            target=f"gold.{ref.name}",
            kind="gold",
            materialize=materialize,
            spec={},
            sql=guarded.sql,
            created_by=principal.subject,
            upstream=upstream,
            ran_at=datetime.now(UTC),
            version=version,
            rows=rows,
        )
        audit_repo.record_audit(
            session,
            tenant_id=principal.tenant_id,
            subject=principal.subject,
            action="create_gold_table",
            target=str(ref),
            meta={"materialize": materialize, "rows": rows, "version": version},
        )
    return GoldResult(
        table=f"gold.{ref.name}",
        materialize=cast(Materialize, materialize),
        sql=guarded.sql,
        upstream=sorted(upstream),
        columns=columns,
        version=version,
        rows=rows,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
    )


def _version(svc: Services, ref: TableRef) -> int | None:
    return svc.engine.describe(ref).version if svc.engine.table_exists(ref) else None


def view_columns(svc: Services, expanded: GuardedQuery) -> list[ColumnInfo]:
    """A view's columns, from running it with no rows (which also proves the definition runs)."""
    from servicetsunami.engines.types import columns_of

    statement = expanded.statement.copy()
    if isinstance(statement, exp.Query):
        statement = statement.limit(0)
    empty = dataclasses.replace(expanded, statement=statement)
    result = svc.engine.query(
        empty, max_rows=1, max_bytes=svc.settings.query.max_bytes, timeout_seconds=svc.settings.query.timeout_seconds
    )
    return columns_of(result.table.schema)
