"""Data sources: the connections and their last test, a new connection of any kind with its form
made from the kind's settings schema (secrets as password fields, stored encrypted by the service and
never shown again), testing with the diagnosis, the source's tables, syncing one into bronze with
its progress updated in place, and the syncs of each connection."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.responses import Response

from servicetsunami.api.console.render import ConsoleRoute, SessionDep, call, page
from servicetsunami.api.deps import ServicesDep
from servicetsunami.errors import InvalidInput
from servicetsunami.services.ingestion import connections, syncs

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
FIELD_PREFIX = "cfg."


@dataclass
class FormField:
    """One input of a kind's form, from one property of its settings' JSON schema."""

    name: str
    label: str
    widget: str  # text, number, password, checkbox, select, list (comma-separated), json
    required: bool
    secret: bool
    description: str = ""
    default: Any = None
    choices: list[str] = field(default_factory=list)


def _plain(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The property without its ``null`` alternative, its ``$ref`` resolved."""
    options = [p for p in prop.get("anyOf") or [] if p.get("type") != "null"]
    merged = {**prop, **options[0]} if len(options) == 1 else prop
    ref = merged.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        merged = {**defs.get(ref.removeprefix("#/$defs/"), {}), **{k: v for k, v in merged.items() if k != "$ref"}}
    return merged


def form_fields(schema: dict[str, Any], secrets: list[str]) -> list[FormField]:
    defs = schema.get("$defs") or {}
    required = set(schema.get("required") or [])
    fields: list[FormField] = []
    for name, raw in (schema.get("properties") or {}).items():
        prop = _plain(raw, defs)
        kind = prop.get("type")
        items = prop.get("items") or {}
        if name in secrets:
            widget = "password"
        elif "enum" in prop:
            widget = "select"
        elif kind == "boolean":
            widget = "checkbox"
        elif kind in ("integer", "number"):
            widget = "number"
        elif kind == "array" and _plain(items, defs).get("type") == "string":
            widget = "list"
        elif kind == "string":
            widget = "text"
        else:
            widget = "json"
        fields.append(
            FormField(
                name=name,
                label=str(prop.get("title") or name),
                widget=widget,
                required=name in required,
                secret=name in secrets,
                description=str(raw.get("description") or prop.get("description") or ""),
                default=prop.get("default", raw.get("default")),
                choices=[str(c) for c in prop.get("enum") or []],
            )
        )
    return fields


def read_form(form: FormData, fields: list[FormField]) -> tuple[dict[str, Any], dict[str, str]]:
    """``(config, secrets)`` from the submitted form; empty inputs are left to the kind's defaults."""
    config: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for f in fields:
        raw = form.get(FIELD_PREFIX + f.name)
        text = raw.strip() if isinstance(raw, str) else ""
        if f.widget == "checkbox":
            config[f.name] = raw == "on"
            continue
        if not text:
            continue
        if f.secret:
            secrets[f.name] = text
        elif f.widget == "number":
            try:
                config[f.name] = float(text) if "." in text else int(text)
            except ValueError:
                raise InvalidInput(f"{f.label} must be a number") from None
        elif f.widget == "list":
            config[f.name] = [part.strip() for part in text.split(",") if part.strip()]
        elif f.widget == "json":
            try:
                config[f.name] = json.loads(text)
            except ValueError:
                raise InvalidInput(f"{f.label} must be JSON") from None
        else:
            config[f.name] = text
    return config, secrets


def _kind(kinds: list[connections.SourceKindPublic], name: str) -> connections.SourceKindPublic:
    for kind in kinds:
        if kind.kind == name:
            return kind
    raise InvalidInput(f"unknown kind of source {name!r}; the kinds: {', '.join(k.kind for k in kinds)}")


@router.get("/sources")
async def sources_page(request: Request, services: ServicesDep, current: SessionDep) -> Response:
    principal = current.principal
    listed = await call(lambda: connections.list_connections(services, principal))
    kinds = await call(lambda: connections.list_source_kinds(services, principal))
    return page(request, services, current, "sources.html", {"connections": listed, "kinds": kinds})


@router.get("/sources/new")
async def new_source_page(request: Request, services: ServicesDep, current: SessionDep, kind: str = "") -> Response:
    principal = current.principal
    kinds = await call(lambda: connections.list_source_kinds(services, principal))
    chosen = _kind(kinds, kind)
    context = {"kind": chosen, "fields": form_fields(chosen.config_schema, chosen.secrets), "prefix": FIELD_PREFIX}
    return page(request, services, current, "source_new.html", context)


@router.post("/sources")
async def create_source(request: Request, services: ServicesDep, current: SessionDep) -> Response:
    principal = current.principal
    form = await request.form()
    kinds = await call(lambda: connections.list_source_kinds(services, principal))
    chosen = _kind(kinds, str(form.get("kind") or ""))
    config, secrets = read_form(form, form_fields(chosen.config_schema, chosen.secrets))
    name = str(form.get("name") or "").strip()
    created = await call(
        lambda: connections.connect_source(
            services, principal, kind=chosen.kind, name=name, config=config, secrets=secrets
        )
    )
    return RedirectResponse(f"/sources/{created.id}", status_code=303)


@router.get("/sources/{connection_id}")
async def source_page(request: Request, services: ServicesDep, current: SessionDep, connection_id: str) -> Response:
    principal = current.principal
    found = await call(lambda: connections.get_connection(services, principal, connection_id))
    its_syncs = await call(lambda: syncs.list_syncs(services, principal, connection_id=connection_id))
    return page(request, services, current, "source.html", {"connection": found, "syncs": its_syncs})


@router.get("/sources/{connection_id}/tables")
async def source_tables(request: Request, services: ServicesDep, current: SessionDep, connection_id: str) -> Response:
    """The source's tables, as a fragment the source's page loads after it is shown."""
    principal = current.principal
    tables = await call(lambda: connections.list_source_tables(services, principal, connection_id))
    return page(request, services, current, "_source_tables.html", {"tables": tables, "connection_id": connection_id})


@router.post("/sources/{connection_id}/test")
async def test_source(request: Request, services: ServicesDep, current: SessionDep, connection_id: str) -> Response:
    principal = current.principal
    await call(lambda: connections.test_connection(services, principal, connection_id))
    return RedirectResponse(f"/sources/{connection_id}", status_code=303)


@router.post("/sources/{connection_id}/sync")
async def sync(request: Request, services: ServicesDep, current: SessionDep, connection_id: str) -> Response:
    principal = current.principal
    form = await request.form()
    table = str(form.get("table") or "")
    mode = str(form.get("mode") or "full_refresh")
    run_id = await call(lambda: syncs.start_sync(services, principal, connection_id, table, sync_mode=mode))
    return RedirectResponse(f"/syncs/runs/{run_id}", status_code=303)


@router.get("/syncs/runs/{run_id}")
async def sync_run_page(request: Request, services: ServicesDep, current: SessionDep, run_id: str) -> Response:
    principal = current.principal
    run = await call(lambda: syncs.get_sync_status(services, principal, run_id))
    return page(request, services, current, "sync_run.html", {"run": run})
