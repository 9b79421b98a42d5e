"""Datasets: tables made from uploaded files, by id. Upload goes through
:func:`servicetsunami.services.ingestion.uploads.upload_file` (the same path as the ``upload_file`` tool);
this module lists, describes, previews, queries and deletes them within the caller's tenant."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from servicetsunami.errors import NotFound
from servicetsunami.services.catalog import tables
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.governance import pii
from servicetsunami.services.models import ColumnInfo, HistoryEntry, QueryResult
from servicetsunami.store.models import Dataset
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import datasets as datasets_repo
from servicetsunami.tenancy import Principal, Scope, TableRef

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)


class DatasetPublic(BaseModel):
    id: str
    name: str
    table: str = Field(description="schema.table in your catalog")
    source_kind: str
    source_name: str = Field(description="The uploaded file's name")
    format: str
    rows: int
    size_bytes: int | None
    version: int = Field(description="Delta version written by the last upload")
    created_at: datetime
    updated_at: datetime


class DatasetDetail(DatasetPublic):
    full_name: str = Field(description="catalog.schema.table")
    columns: list[ColumnInfo]
    versions: list[HistoryEntry] = Field(description="The table's recent versions, newest first")
    landing_path: str = Field(description="Where the original file is kept (a volume path)")
    last_sync_id: str | None = None
    last_mode: str | None = None
    remote_sync_status: str | None = Field(
        None, description="pending, synced or failed once a remote engine is configured; null on the local engine"
    )
    metadata: dict[str, Any] = Field(default_factory=dict)


class DatasetDeleted(BaseModel):
    id: str
    table: str
    table_dropped: bool
    landing_path: str = Field(description="The original file, kept so the table can be rebuilt")
    landing_file_kept: bool = Field(
        True, description="Always true: deleting a dataset never deletes the files it was loaded from"
    )
    note: str = Field(description="What happened to the table and to the landing file, in words")


def list_datasets(
    svc: Services, principal: Principal, *, after: tuple[str, str] | None = None, limit: int | None = None
) -> list[DatasetPublic]:
    """The tenant's datasets by ``(name, id)``; with ``after`` and ``limit``, one page of them plus
    the next dataset if there is one (see :mod:`servicetsunami.api.pagination`)."""
    principal.require(Scope.READ)

    def read() -> tuple[DatasetPublic, ...]:
        with svc.store.session() as session:
            rows = datasets_repo.list_datasets(session, tenant_id=principal.tenant_id, after=after, limit=limit)
            return tuple(_public(d) for d in rows)

    return [d.model_copy() for d in svc.store.reads.get(("datasets", principal.tenant_id, after, limit), read)]


def get_dataset(svc: Services, principal: Principal, dataset_id: str, /) -> DatasetDetail:
    principal.require(Scope.READ)
    row = _row(svc, principal, dataset_id)
    description = tables.describe_table(svc, principal, row.table)
    meta = dict(row.extra)
    return DatasetDetail(
        **row.public.model_dump(),
        full_name=description.full_name,
        columns=description.columns,
        versions=description.history,
        landing_path=row.landing_path,
        last_sync_id=meta.get("last_sync_id"),
        last_mode=meta.get("last_mode"),
        metadata={k: v for k, v in meta.items() if k in ("original_columns", "options", "sheets")},
    )


def preview_dataset(svc: Services, principal: Principal, dataset_id: str, /, *, limit: int = 20) -> QueryResult:
    row = _row(svc, principal, dataset_id)
    return tables.preview_table(svc, principal, row.table, limit=limit)


def query_dataset(
    svc: Services, principal: Principal, dataset_id: str, /, *, sql: str | None = None, max_rows: int | None = None
) -> QueryResult:
    """``sql`` over the caller's catalog (the dataset's table by its ``schema.table`` name); without
    it, the dataset's rows."""
    row = _row(svc, principal, dataset_id)
    return query_sql(svc, principal, sql or f"SELECT * FROM {row.table}", max_rows=max_rows)


def delete_dataset(svc: Services, principal: Principal, dataset_id: str, /) -> DatasetDeleted:
    """Drop the table and forget the dataset; the original file stays in the landing volume."""
    principal.require(Scope.WRITE)
    row = _row(svc, principal, dataset_id)
    ref = TableRef(principal.catalog, row.public.table.split(".")[0], row.public.table.split(".")[1])
    dropped = True
    try:
        svc.engine.drop_table(ref)
    except NotFound:
        dropped = False  # already gone (dropped by SQL elsewhere): still forget the record
    pii.forget_flags(svc, principal, f"{ref.schema}.{ref.name}")
    with svc.store.session() as session:
        datasets_repo.delete_dataset(session, row.public.name, tenant_id=principal.tenant_id)
        audit_repo.record_audit(
            session, tenant_id=principal.tenant_id, subject=principal.subject, action="dataset.delete", target=str(ref)
        )
    logger.info("deleted dataset %s (%s)", dataset_id, ref)
    what = "the table was dropped" if dropped else "the table was already gone"
    note = (
        f"{what} and the dataset forgotten; the uploaded file is kept at {row.landing_path} (with the files of "
        "earlier appends in the same landing folder) so the table can be rebuilt by uploading it again"
    )
    return DatasetDeleted(
        id=dataset_id, table=row.table, table_dropped=dropped, landing_path=row.landing_path, note=note
    )


class _Row:
    def __init__(self, dataset: Dataset) -> None:
        self.public = _public(dataset)
        self.table = self.public.table
        self.landing_path = dataset.landing_path
        self.extra = dict(dataset.meta or {})


def _row(svc: Services, principal: Principal, dataset_id: str) -> _Row:
    with svc.store.session() as session:
        return _Row(datasets_repo.get_dataset_by_id(session, dataset_id, tenant_id=principal.tenant_id))


def _public(d: Dataset) -> DatasetPublic:
    return DatasetPublic(
        id=d.id,
        name=d.name,
        table=f"{d.table_schema}.{d.table_name}",
        source_kind=d.source_kind,
        source_name=d.source_name,
        format=d.format,
        rows=d.rows,
        size_bytes=d.size_bytes,
        version=d.table_version,
        created_at=d.created_at,
        updated_at=d.updated_at,
    )
