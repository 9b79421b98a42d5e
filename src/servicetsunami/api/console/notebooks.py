"""Notebooks: the list by folder, a notebook's cells (edited cell by cell, saved as a new version),
running it with parameters, a run's cells with their status and outputs (updated in place while it
runs), and its run history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from servicetsunami.api.console.render import ConsoleRoute, SessionDep, call, page
from servicetsunami.api.deps import ServicesDep
from servicetsunami.errors import InvalidInput
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.notebooks import runs as notebook_runs
from servicetsunami.services.runs import service as runs

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
HISTORY = 20


def parse_parameters(text: str) -> dict[str, str]:
    """``name=value`` lines (blank lines ignored) as the run's parameters."""
    parameters: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"parameters, line {number}: write name=value")
        parameters[name.strip()] = value.strip()
    return parameters


@router.get("/notebooks")
async def notebooks_page(request: Request, services: ServicesDep, current: SessionDep, folder: str = "/") -> Response:
    principal = current.principal
    listed = await call(lambda: notebooks.list_notebooks(services, principal, folder=folder))
    return page(request, services, current, "notebooks.html", {"listing": listed})


@router.get("/notebooks/runs/{run_id}")
async def run_page(request: Request, services: ServicesDep, current: SessionDep, run_id: str) -> Response:
    principal = current.principal
    run = await call(lambda: notebook_runs.get_notebook_run(services, principal, run_id))
    return page(request, services, current, "notebook_run.html", {"nbrun": run})


@router.post("/notebooks/runs/{run_id}/cancel")
async def cancel(request: Request, services: ServicesDep, current: SessionDep, run_id: str) -> Response:
    principal = current.principal
    await call(lambda: notebook_runs.cancel_notebook_run(services, principal, run_id))
    return RedirectResponse(f"/notebooks/runs/{run_id}", status_code=303)


@router.get("/notebooks/{notebook_id}")
async def notebook_page(request: Request, services: ServicesDep, current: SessionDep, notebook_id: str) -> Response:
    principal = current.principal
    detail = await call(lambda: notebooks.get_notebook(services, principal, notebook_id))
    history = await call(
        lambda: runs.list_runs(
            services, principal, kind=notebook_runs.KIND, resource_id=detail.notebook_id, limit=HISTORY
        )
    )
    return page(request, services, current, "notebook.html", {"notebook": detail, "runs": history[:HISTORY]})


@router.post("/notebooks/{notebook_id}/cells")
async def save_cells(request: Request, services: ServicesDep, current: SessionDep, notebook_id: str) -> Response:
    """The edited cells, as a new version; refused when someone saved a newer one meanwhile."""
    principal = current.principal
    form = await request.form()
    version_text = str(form.get("version") or "")
    if not version_text.isdigit():
        raise InvalidInput("the form's version is not a number: reload the page")
    version = int(version_text)
    sources = [str(v).replace("\r\n", "\n") for v in form.getlist("source")]  # browsers send CRLF
    kinds = [str(v) for v in form.getlist("cell_type")]
    if not sources or len(sources) != len(kinds):
        raise InvalidInput("the form lost its cells: reload the page")
    cells: list[dict[str, Any]] = [{"cell_type": k, "source": s} for k, s in zip(kinds, sources, strict=True)]
    await call(
        lambda: notebooks.update_notebook(services, principal, notebook_id, cells=cells, expected_version=version)
    )
    return RedirectResponse(f"/notebooks/{notebook_id}", status_code=303)


@router.post("/notebooks/{notebook_id}/runs")
async def start(request: Request, services: ServicesDep, current: SessionDep, notebook_id: str) -> Response:
    principal = current.principal
    form = await request.form()
    parameters = parse_parameters(str(form.get("parameters") or ""))
    run_id = await call(lambda: notebook_runs.run_notebook(services, principal, notebook_id, parameters=parameters))
    return RedirectResponse(f"/notebooks/runs/{run_id}", status_code=303)
