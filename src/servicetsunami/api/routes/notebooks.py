"""Notebooks: CRUD, import and export (Databricks source, Jupyter, HTML), runs in the sandbox.

A run is started with ``POST /notebooks/{id}/runs`` (202, the run as it stands after an optional
bounded wait) and followed at ``GET /notebooks/runs/{run_id}``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from servicetsunami.api.deps import PrincipalDep, ServicesDep
from servicetsunami.api.schemas.common import COMMON_ERRORS, problem_responses
from servicetsunami.api.schemas.notebooks import NotebookCreate, NotebookImport, NotebookRunCreate, NotebookUpdate
from servicetsunami.services.notebooks import notebooks, workspace
from servicetsunami.services.notebooks import runs as nbruns
from servicetsunami.services.notebooks.notebooks import NotebookDetail, NotebookList
from servicetsunami.services.notebooks.runs import NotebookRunPublic
from servicetsunami.services.notebooks.workspace import WorkspaceCopy
from servicetsunami.services.runs import service as runs

router = APIRouter(prefix="/notebooks", tags=["notebooks"])
RUN_ERRORS = {**COMMON_ERRORS, **problem_responses(503)}


@router.post(
    "", operation_id="create_notebook", status_code=201, response_model=NotebookDetail, responses=COMMON_ERRORS
)
async def create_notebook(body: NotebookCreate, services: ServicesDep, principal: PrincipalDep) -> NotebookDetail:
    """Create a notebook from cells, or from a Jupyter or Databricks source file's text."""
    cells = [c.model_dump() for c in body.cells] if body.cells is not None else None
    return await run_in_threadpool(
        lambda: notebooks.create_notebook(
            services,
            principal,
            body.path,
            cells=cells,
            content=body.content,
            format=body.format,
            language=body.language,
        )
    )


@router.get("", operation_id="list_notebooks", response_model=NotebookList, responses=COMMON_ERRORS)
async def list_notebooks(
    services: ServicesDep,
    principal: PrincipalDep,
    folder: Annotated[str, Query(max_length=500)] = "/",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")] = None,
) -> NotebookList:
    """Notebooks under a folder (by path) and the folders directly below it."""
    return await run_in_threadpool(
        lambda: notebooks.list_notebooks(services, principal, folder=folder, limit=limit, after=cursor)
    )


@router.post(
    "/import", operation_id="import_notebook", status_code=201, response_model=NotebookDetail, responses=COMMON_ERRORS
)
async def import_notebook(body: NotebookImport, services: ServicesDep, principal: PrincipalDep) -> NotebookDetail:
    """Import a Jupyter or Databricks source notebook at a path (``overwrite`` adds a version)."""
    return await run_in_threadpool(
        lambda: notebooks.import_notebook(
            services,
            principal,
            body.path,
            body.content,
            format=body.format,
            language=body.language,
            overwrite=body.overwrite,
        )
    )


@router.get(
    "/runs/{run_id}", operation_id="get_notebook_run", response_model=NotebookRunPublic, responses=COMMON_ERRORS
)
async def get_notebook_run(
    run_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    wait_seconds: Annotated[float, Query(ge=0, le=60, description="Answer once the run ends, or after this long")] = 0,
    include_notebook: Annotated[bool, Query(description="Also the executed notebook (Jupyter JSON)")] = False,
) -> NotebookRunPublic:
    """A notebook run: state, each cell's status, time, text and tables, and the exit value."""
    if wait_seconds > 0:
        await runs.await_run(services, principal, run_id, timeout=wait_seconds)
    return await run_in_threadpool(
        lambda: nbruns.get_notebook_run(services, principal, run_id, include_notebook=include_notebook)
    )


@router.post(
    "/runs/{run_id}/cancel",
    operation_id="cancel_notebook_run",
    response_model=NotebookRunPublic,
    responses=COMMON_ERRORS,
)
async def cancel_notebook_run(run_id: str, services: ServicesDep, principal: PrincipalDep) -> NotebookRunPublic:
    """Stop a notebook run (the kernel is interrupted, then killed)."""
    return await run_in_threadpool(nbruns.cancel_notebook_run, services, principal, run_id)


@router.get("/{notebook_id}", operation_id="get_notebook", response_model=NotebookDetail, responses=COMMON_ERRORS)
async def get_notebook(
    notebook_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> NotebookDetail:
    """A notebook's cells and facts (its newest version, or ``version``)."""
    return await run_in_threadpool(lambda: notebooks.get_notebook(services, principal, notebook_id, version=version))


@router.patch("/{notebook_id}", operation_id="update_notebook", response_model=NotebookDetail, responses=COMMON_ERRORS)
async def update_notebook(
    notebook_id: str, body: NotebookUpdate, services: ServicesDep, principal: PrincipalDep
) -> NotebookDetail:
    """Save new cells or content as a new version, and/or move the notebook."""
    cells = [c.model_dump() for c in body.cells] if body.cells is not None else None
    return await run_in_threadpool(
        lambda: notebooks.update_notebook(
            services,
            principal,
            notebook_id,
            cells=cells,
            content=body.content,
            format=body.format,
            path=body.path,
            expected_version=body.expected_version,
        )
    )


@router.delete("/{notebook_id}", operation_id="delete_notebook", status_code=204, responses=COMMON_ERRORS)
async def delete_notebook(notebook_id: str, services: ServicesDep, principal: PrincipalDep) -> Response:
    """Delete a notebook and its versions."""
    await run_in_threadpool(notebooks.delete_notebook, services, principal, notebook_id)
    return Response(status_code=204)


@router.get(
    "/{notebook_id}/export",
    operation_id="export_notebook",
    responses={**COMMON_ERRORS, 200: {"content": {"text/plain": {}, "text/html": {}, "application/x-ipynb+json": {}}}},
)
async def export_notebook(
    notebook_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    format: Annotated[Literal["source", "jupyter", "html"], Query()] = "source",
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The notebook as a file: Databricks source (.py / .sql), Jupyter (.ipynb) or HTML."""
    out = await run_in_threadpool(
        lambda: notebooks.export_notebook(services, principal, notebook_id, format=format, version=version)
    )
    headers = {"Content-Disposition": f'attachment; filename="{out.file_name}"'}
    if format == "html":  # the page shows escaped content only; no script may run in it
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return Response(out.content, media_type=out.media_type, headers=headers)


@router.post(
    "/{notebook_id}/runs",
    operation_id="run_notebook",
    status_code=202,
    response_model=NotebookRunPublic,
    responses=RUN_ERRORS,
)
async def run_notebook(
    notebook_id: str, body: NotebookRunCreate, services: ServicesDep, principal: PrincipalDep
) -> NotebookRunPublic:
    """Run the notebook in the sandbox with parameters; poll ``GET /notebooks/runs/{run_id}``."""
    run_id = await run_in_threadpool(
        lambda: nbruns.run_notebook(
            services, principal, notebook_id, parameters=body.parameters, timeout_seconds=body.timeout_seconds
        )
    )
    if body.wait_seconds > 0:
        await runs.await_run(services, principal, run_id, timeout=body.wait_seconds)
    return await run_in_threadpool(nbruns.get_notebook_run, services, principal, run_id)


@router.post(
    "/{notebook_id}/publish",
    operation_id="publish_notebook",
    response_model=WorkspaceCopy,
    responses={**COMMON_ERRORS, **problem_responses(501)},
)
async def publish_notebook(notebook_id: str, services: ServicesDep, principal: PrincipalDep) -> WorkspaceCopy:
    """Databricks engine: put the notebook's newest version into the workspace (your catalog's folder)."""
    return await run_in_threadpool(workspace.publish_notebook, services, principal, notebook_id)


@router.post(
    "/{notebook_id}/pull",
    operation_id="pull_notebook",
    response_model=WorkspaceCopy,
    responses={**COMMON_ERRORS, **problem_responses(501)},
)
async def pull_notebook(notebook_id: str, services: ServicesDep, principal: PrincipalDep) -> WorkspaceCopy:
    """Databricks engine: save the notebook's workspace copy as its next version."""
    return await run_in_threadpool(workspace.pull_notebook, services, principal, notebook_id)
