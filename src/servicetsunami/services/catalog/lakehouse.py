"""The lakehouse status endpoints the platform's web app polls (``/databricks/...``, keeping the
paths the integration guide uses): what engine serves this tenant, whether it answers, whether the
tenant's catalog exists, and how much is in it. Everything is measured on each call."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from servicetsunami.engines.base import TableDetail
from servicetsunami.errors import TsunamiError
from servicetsunami.services.catalog import datasets
from servicetsunami.services.ingestion import connections, syncs
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services


class LakehouseStatus(BaseModel):
    engine: str = Field(description="Engine kind serving this tenant: local or databricks")
    reachable: bool
    latency_ms: float
    detail: str | None = Field(None, description="Why the engine did not answer")
    catalog: str
    catalog_exists: bool | None = Field(description="null when the engine cannot tell without creating it")
    remote_configured: bool = Field(description="Whether a remote engine (Databricks) receives copies")


class LakehouseUsage(BaseModel):
    catalog: str
    datasets: int
    data_sources: int
    syncs: int
    tables: int
    tables_by_schema: dict[str, int]
    rows_by_schema: dict[str, int] = Field(default_factory=dict, description="Rows per schema (layer)")
    size_by_schema: dict[str, int] = Field(default_factory=dict, description="Bytes per schema (layer)")
    rows: int
    size_bytes: int
    synced_share: float | None = Field(
        None, description="Share of tables copied to the remote engine; null without one"
    )
    elapsed_ms: float


class LakehouseHealth(BaseModel):
    status: str = Field(description="ok or unavailable")
    engine: str
    latency_ms: float


def status(svc: Services, principal: Principal) -> LakehouseStatus:
    principal.require(Scope.READ)
    reachable, latency, detail = _ping(svc)
    exists = None
    if reachable:
        try:
            exists = svc.engine.catalog_exists(principal.catalog)
        except TsunamiError as exc:
            detail = exc.message
    return LakehouseStatus(
        engine=svc.engine.kind,
        reachable=reachable,
        latency_ms=latency,
        detail=detail,
        catalog=principal.catalog,
        catalog_exists=exists,
        remote_configured=svc.mirror is not None,
    )


def initialize(svc: Services, principal: Principal) -> LakehouseStatus:
    """Create the caller's catalog, schemas and landing volume if missing (idempotent)."""
    principal.require(Scope.MANAGE)
    svc.engine.ensure_catalog(principal.catalog)
    return status(svc, principal)


def usage(svc: Services, principal: Principal) -> LakehouseUsage:
    principal.require(Scope.READ)
    started = time.perf_counter()
    exists = svc.engine.catalog_exists(principal.catalog)
    tables = [] if exists is False else svc.engine.list_tables(principal.catalog)
    by_schema: dict[str, int] = {}
    rows_by_schema: dict[str, int] = {}
    size_by_schema: dict[str, int] = {}
    for t in tables:
        by_schema[t.ref.schema] = by_schema.get(t.ref.schema, 0) + 1
        rows_by_schema[t.ref.schema] = rows_by_schema.get(t.ref.schema, 0) + (t.rows or 0)
        size_by_schema[t.ref.schema] = size_by_schema.get(t.ref.schema, 0) + (t.size_bytes or 0)
    return LakehouseUsage(
        catalog=principal.catalog,
        datasets=len(datasets.list_datasets(svc, principal)),
        data_sources=len(connections.list_connections(svc, principal)),
        syncs=len(syncs.list_syncs(svc, principal)),
        tables=len(tables),
        tables_by_schema=by_schema,
        rows_by_schema=rows_by_schema,
        size_by_schema=size_by_schema,
        rows=sum(t.rows or 0 for t in tables),
        size_bytes=sum(t.size_bytes or 0 for t in tables),
        synced_share=_synced_share(svc, tables),
        elapsed_ms=round((time.perf_counter() - started) * 1000, 2),
    )


def _synced_share(svc: Services, tables: list[TableDetail]) -> float | None:
    """Share of the tables whose copy on the mirror (``TSUNAMI_MIRROR``) is up to date."""
    if svc.mirror is None:
        return None
    if not tables:
        return 1.0
    done = svc.mirror.synced_tables(tables[0].ref.catalog)
    synced = sum(1 for t in tables if (t.ref.schema, t.ref.name) in done)
    return round(synced / len(tables), 4)


def health(svc: Services) -> LakehouseHealth:
    """Public and cheap: one engine ping, no tenant data."""
    reachable, latency, _ = _ping(svc)
    return LakehouseHealth(status="ok" if reachable else "unavailable", engine=svc.engine.kind, latency_ms=latency)


def _ping(svc: Services) -> tuple[bool, float, str | None]:
    started = time.perf_counter()
    try:
        return True, round(svc.engine.ping(), 2), None
    except TsunamiError as exc:
        return False, round((time.perf_counter() - started) * 1000, 2), exc.message
