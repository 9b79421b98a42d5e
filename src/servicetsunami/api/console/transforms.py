"""Silver and gold: the tables of each layer; a bronze table's cleaning spec edited with a live
preview (the SQL it compiles to, the types inferred, the values a cast would stop on, the first
rows), then built into silver; gold tables and views from a SELECT, and refreshing them."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from servicetsunami.api.console.render import ConsoleRoute, SessionDep, call, page
from servicetsunami.api.deps import ServicesDep
from servicetsunami.errors import InvalidInput
from servicetsunami.services.catalog import tables
from servicetsunami.services.transforms import gold, silver

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


def read_spec(text: str) -> dict[str, Any]:
    """The cleaning spec typed in the editor (a JSON object; empty means the defaults)."""
    if not text.strip():
        return {}
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"the spec is not JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise InvalidInput('the spec is a JSON object, e.g. {"rename": {"Old": "new"}}')
    return spec


@router.get("/transforms")
async def transforms_page(request: Request, services: ServicesDep, current: SessionDep) -> Response:
    principal = current.principal
    listed = await call(lambda: tables.list_tables(services, principal))
    layers = {layer: [t for t in listed if t.schema_ == layer] for layer in ("bronze", "silver", "gold")}
    return page(request, services, current, "transforms.html", {"layers": layers})


@router.get("/transforms/silver")
async def silver_page(request: Request, services: ServicesDep, current: SessionDep, table: str = "") -> Response:
    return page(request, services, current, "silver.html", {"table": table, "spec": "{}"})


@router.post("/transforms/silver/preview")
async def preview(
    request: Request,
    services: ServicesDep,
    current: SessionDep,
    table: Annotated[str, Form()] = "",
    spec: Annotated[str, Form()] = "",
    target: Annotated[str, Form()] = "",
) -> Response:
    principal = current.principal
    parsed = read_spec(spec)
    shown = await call(
        lambda: silver.preview_transform(
            services, principal, table, transformations=parsed, target_table=target or None
        )
    )
    return page(request, services, current, "_silver_preview.html", {"preview": shown, "result": shown.preview})


@router.post("/transforms/silver")
async def build_silver(
    request: Request,
    services: ServicesDep,
    current: SessionDep,
    table: Annotated[str, Form()] = "",
    spec: Annotated[str, Form()] = "",
    target: Annotated[str, Form()] = "",
) -> Response:
    principal = current.principal
    parsed = read_spec(spec)
    await call(
        lambda: silver.transform_to_silver(
            services, principal, table, transformations=parsed, target_table=target or None
        )
    )
    return RedirectResponse("/transforms", status_code=303)


@router.post("/transforms/gold")
async def create_gold(
    request: Request,
    services: ServicesDep,
    current: SessionDep,
    name: Annotated[str, Form()] = "",
    sql: Annotated[str, Form()] = "",
    materialize: Annotated[str, Form()] = "table",
) -> Response:
    principal = current.principal
    await call(lambda: gold.create_gold_table(services, principal, name, sql, materialize=materialize))
    return RedirectResponse("/transforms", status_code=303)


@router.post("/transforms/gold/{name}/refresh")
async def refresh_gold(request: Request, services: ServicesDep, current: SessionDep, name: str) -> Response:
    principal = current.principal
    await call(lambda: gold.refresh_gold_table(services, principal, name))
    return RedirectResponse("/transforms", status_code=303)
