"""Datasets: upload a file (multipart, streamed to disk, then the same ingestion as the
``upload_file`` tool), list, describe, preview, query, delete."""

from __future__ import annotations

import pathlib
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from servicetsunami.api.deps import PageDep, PrincipalDep, QueryPrincipalDep, ServicesDep, read_metadata
from servicetsunami.api.pagination import Page, cursor_key, page_of
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.api.schemas.datasets import (
    DatasetCreate,
    DatasetDeleted,
    DatasetDetail,
    DatasetPublic,
    DatasetQuery,
    UploadResult,
)
from servicetsunami.api.schemas.tables import QueryResult
from servicetsunami.api.uploads import receive_upload
from servicetsunami.connectors.files.reader import FileOptions, snake_case
from servicetsunami.errors import InvalidInput
from servicetsunami.services.catalog import datasets
from servicetsunami.services.ingestion import uploads
from servicetsunami.tenancy import Scope

router = APIRouter(prefix="/datasets", tags=["datasets"])

_FORM_SCHEMA = DatasetCreate.model_json_schema()
_FORM_SCHEMA["properties"]["file"] = {"type": "string", "format": "binary", "description": "The file"}
_FORM_SCHEMA["required"] = ["file"]


@router.post(
    "",
    operation_id="upload_dataset",
    status_code=201,
    response_model=UploadResult,
    responses=COMMON_ERRORS,
    openapi_extra={
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _FORM_SCHEMA}}},
    },
)
async def upload_dataset(request: Request, services: ServicesDep, principal: PrincipalDep) -> UploadResult:
    """Upload a CSV/TSV, Excel, Parquet, JSON or NDJSON file into a bronze table (one atomic commit)."""
    principal.require(Scope.WRITE)  # before reading a possibly large body
    folder = services.settings.api.upload_dir or services.settings.resolved_home / "tmp" / "uploads"
    upload = await receive_upload(
        request.headers.get("content-type", ""), request.stream(), folder=pathlib.Path(folder).expanduser()
    )
    try:
        fields = upload.fields
        assert upload.file_name is not None and upload.path is not None
        name = fields.get("name") or snake_case(pathlib.PurePath(upload.file_name).stem)
        options = FileOptions(
            format=fields.get("format") or None,
            delimiter=fields.get("delimiter") or None,
            header=_flag(fields.get("header")),
            encoding=fields.get("encoding") or None,
            sheet=fields.get("sheet") or None,
        )
        path = upload.path
        return await run_in_threadpool(
            lambda: uploads.upload_file(
                services,
                principal,
                file_name=upload.file_name or "",
                dataset_name=name,
                path=path,
                mode=fields.get("mode") or "create",
                options=options,
            )
        )
    finally:
        upload.discard()


@router.get("", operation_id="list_datasets", response_model=Page[DatasetPublic], responses=COMMON_ERRORS)
async def list_datasets(services: ServicesDep, principal: PrincipalDep, page: PageDep) -> Page[DatasetPublic]:
    after = cursor_key(page.cursor, str, str)
    items = await read_metadata(
        services, lambda: datasets.list_datasets(services, principal, after=after, limit=page.limit)
    )
    return page_of(items, key=lambda d: (d.name, d.id), limit=page.limit)


@router.get("/{dataset_id}", operation_id="get_dataset", response_model=DatasetDetail, responses=COMMON_ERRORS)
async def get_dataset(dataset_id: str, services: ServicesDep, principal: PrincipalDep) -> DatasetDetail:
    """The dataset's table, columns, rows, versions, where it lives and where it came from."""
    return await read_metadata(services, lambda: datasets.get_dataset(services, principal, dataset_id))


@router.get(
    "/{dataset_id}/preview", operation_id="preview_dataset", response_model=QueryResult, responses=COMMON_ERRORS
)
async def preview_dataset(
    dataset_id: str,
    services: ServicesDep,
    principal: QueryPrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Rows to show")] = 20,
) -> QueryResult:
    return await run_in_threadpool(lambda: datasets.preview_dataset(services, principal, dataset_id, limit=limit))


@router.post("/{dataset_id}/query", operation_id="query_dataset", response_model=QueryResult, responses=COMMON_ERRORS)
async def query_dataset(
    dataset_id: str, body: DatasetQuery, services: ServicesDep, principal: QueryPrincipalDep
) -> QueryResult:
    """Read-only SQL next to this dataset (its table by `schema.table`); its rows when `sql` is omitted."""
    return await run_in_threadpool(
        lambda: datasets.query_dataset(services, principal, dataset_id, sql=body.sql, max_rows=body.max_rows)
    )


@router.delete("/{dataset_id}", operation_id="delete_dataset", response_model=DatasetDeleted, responses=COMMON_ERRORS)
async def delete_dataset(dataset_id: str, services: ServicesDep, principal: PrincipalDep) -> DatasetDeleted:
    """Drop the dataset's table; the original file stays in the landing volume."""
    return await run_in_threadpool(datasets.delete_dataset, services, principal, dataset_id)


def _flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidInput("header must be true or false")
