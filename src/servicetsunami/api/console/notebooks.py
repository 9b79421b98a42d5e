"""Notebooks: the list by folder, a notebook's cells (edited cell by cell, saved as a new version),
running it with parameters, a run's cells with their status and outputs (updated in place while it
runs), and its run history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from servicetsunami.api.console.render import SessionDep, call, error, page
from servicetsunami.api.deps import ServicesDep
from servicetsunami.errors import InvalidInput, TsunamiError
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.notebooks import runs as notebook_runs
from servicetsunami.services.runs import service as runs

router = APIRouter(include_in_schema=False)
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
    try:
        listed = await call(lambda: notebooks.list_notebooks(services, principal, folder=folder))
    except TsunamiError as exc:
        return error(request, services, current, exc)
    return page(request, services, current, "notebooks.html", {"listing": listed})


@router.get("/notebooks/runs/{run_id}")
async def run_page(request: Request, services: ServicesDep, current: SessionDep, run_id: str) -> Response:
    principal = current.principal
    try:
        run = await call(lambda: notebook_runs.get_notebook_run(services, principal, run_id))
    except TsunamiError as exc:
        return error(request, services, current, exc)
    return page(request, services, current, "notebook_run.html", {"nbrun": run})


@router.post("/notebooks/runs/{run_id}/cancel")
async def cancel(request: Request, services: ServicesDep, current: SessionDep, run_id: str) -> Response:
    principal = current.principal
    try:
        await call(lambda: notebook_runs.cancel_notebook_run(services, principal, run_id))
    except TsunamiError as exc:
        return error(request, services, current, exc)
    return RedirectResponse(f"/notebooks/runs/{run_id}", status_code=303)


@router.get("/notebooks/{notebook_id}")
async def notebook_page(request: Request, services: ServicesDep, current: SessionDep, notebook_id: str) -> Response:
    principal = current.principal
    try:
        detail = await call(lambda: notebooks.get_notebook(services, principal, notebook_id))
        history = await call(
            lambda: runs.list_runs(
                services, principal, kind=notebook_runs.KIND, resource_id=detail.notebook_id, limit=HISTORY
            )
        )
    except TsunamiError as exc:
        return error(request, services, current, exc)
    return page(request, services, current, "notebook.html", {"notebook": detail, "runs": history[:HISTORY]})


@router.post("/notebooks/{notebook_id}/cells")
async def save_cells(request: Request, services: ServicesDep, current: SessionDep, notebook_id: str) -> Response:
    """The edited cells, as a new version; refused when someone saved a newer one meanwhile."""
    principal = current.principal
    form = await request.form()
    try:
        version = int(str(form.get("version") or "0"))
        sources = [str(v) for v in form.getlist("source")]
        kinds = [str(v) for v in form.getlist("cell_type")]
        if not sources or len(sources) != len(kinds):
            raise InvalidInput("the form lost its cells: reload the page")
        cells: list[dict[str, Any]] = [{"cell_type": k, "source": s} for k, s in zip(kinds, sources, strict=True)]
        await call(
            lambda: notebooks.update_notebook(services, principal, notebook_id, cells=cells, expected_version=version)
        )
    except (TsunamiError, ValueError) as exc:
        failure = exc if isinstance(exc, TsunamiError) else InvalidInput("the form's version is not a number")
        return error(request, services, current, failure)
    return RedirectResponse(f"/notebooks/{notebook_id}", status_code=303)


@router.post("/notebooks/{notebook_id}/runs")
async def start(request: Request, services: ServicesDep, current: SessionDep, notebook_id: str) -> Response:
    principal = current.principal
    form = await request.form()
    try:
        parameters = parse_parameters(str(form.get("parameters") or ""))
        run_id = await call(lambda: notebook_runs.run_notebook(services, principal, notebook_id, parameters=parameters))
    except TsunamiError as exc:
        return error(request, services, current, exc)
    return RedirectResponse(f"/notebooks/runs/{run_id}", status_code=303)
