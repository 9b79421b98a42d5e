"""Datasets (upload, list, preview) and the SQL editor."""

from __future__ import annotations

import pathlib
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from servicetsunami.api.console import session
from servicetsunami.api.console.render import ConsoleRoute, SessionDep, UploadSessionDep, call, page
from servicetsunami.api.deps import ServicesDep
from servicetsunami.api.uploads import receive_upload
from servicetsunami.connectors.files.reader import FileOptions, snake_case
from servicetsunami.errors import InvalidInput
from servicetsunami.services.catalog import datasets, query
from servicetsunami.services.ingestion import uploads
from servicetsunami.tenancy import Scope

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


@router.get("/datasets")
async def datasets_page(request: Request, services: ServicesDep, current: SessionDep) -> Response:
    principal = current.principal
    items = await call(lambda: datasets.list_datasets(services, principal))
    return page(request, services, current, "datasets.html", {"datasets": items})


@router.post("/datasets")
async def upload(request: Request, services: ServicesDep, current: UploadSessionDep) -> Response:
    """A file from the upload form (multipart, streamed to disk as the REST upload is)."""
    principal = current.principal
    principal.require(Scope.WRITE)  # before reading a possibly large body
    folder = services.settings.api.upload_dir or services.settings.resolved_home / "tmp" / "uploads"
    received = await receive_upload(
        request.headers.get("content-type", ""), request.stream(), folder=pathlib.Path(folder).expanduser()
    )
    try:
        fields = received.fields
        if not current.csrf_checked:
            session.check_csrf(services, principal, fields.get(session.CSRF_FIELD))
        file_name = received.file_name or ""
        path = received.path
        if path is None:
            raise InvalidInput("choose a file to upload")
        name = fields.get("name") or snake_case(pathlib.PurePath(file_name).stem)
        result = await call(
            lambda: uploads.upload_file(
                services, principal, file_name=file_name, dataset_name=name, path=path, options=FileOptions()
            )
        )
    finally:
        received.discard()
    response = page(request, services, current, "_uploaded.html", {"result": result})
    response.headers["hx-trigger"] = "datasets-changed"
    return response


@router.get("/datasets/{dataset_id}")
async def dataset_page(request: Request, services: ServicesDep, current: SessionDep, dataset_id: str) -> Response:
    principal = current.principal
    detail = await call(lambda: datasets.get_dataset(services, principal, dataset_id))
    preview = await call(lambda: datasets.preview_dataset(services, principal, dataset_id))
    return page(request, services, current, "dataset.html", {"dataset": detail, "result": preview})


@router.get("/sql")
async def sql_page(request: Request, services: ServicesDep, current: SessionDep, q: str = "") -> Response:
    return page(request, services, current, "sql.html", {"sql": q, "result": None})


@router.post("/sql")
async def run_sql(
    request: Request, services: ServicesDep, current: SessionDep, sql: Annotated[str, Form()] = ""
) -> Response:
    principal = current.principal
    if not sql.strip():
        raise InvalidInput("write a SQL statement to run")
    result = await call(lambda: query.query_sql(services, principal, sql))
    template = "_result.html" if request.headers.get("hx-request") else "sql.html"
    return page(request, services, current, template, {"sql": sql, "result": result})
