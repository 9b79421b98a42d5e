"""Vector indexes: the tenant's indexes with their state and a form creating one
(``create_vector_index``, as REST and MCP call it), and an index's page with its state updated
while it builds, a search box (``search_vectors``: the query embedded as the index embeds its text)
and "Sync now"."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from servicetsunami.api.console.render import ConsoleRoute, SessionDep, call, page
from servicetsunami.api.console.session import ConsoleSession
from servicetsunami.api.deps import ServicesDep
from servicetsunami.errors import InvalidInput, TsunamiError
from servicetsunami.services.container import Services
from servicetsunami.services.vectors import indexes, search

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
HITS = 10
MODELS = ("wordllama", "openai", "databricks:")  # what create_vector_index's embedding_model accepts


@router.get("/vectors")
async def indexes_page(request: Request, services: ServicesDep, current: SessionDep) -> Response:
    return await _indexes_page(request, services, current, form={})


async def _indexes_page(
    request: Request,
    services: Services,
    current: ConsoleSession,
    *,
    form: dict[str, str],
    refusal: TsunamiError | None = None,
) -> Response:
    principal = current.principal
    listed = await call(lambda: indexes.list_vector_indexes(services, principal, limit=1000))
    context: dict[str, Any] = {
        "indexes": listed.indexes,
        "more": listed.next_cursor,
        "form": form,
        "models": MODELS,
        "code": refusal.code if refusal else None,
        "message": refusal.message if refusal else None,
    }
    status = refusal.http_status if refusal else 200
    return page(request, services, current, "vectors.html", context, status_code=status)


@router.post("/vectors")
async def create(
    request: Request,
    services: ServicesDep,
    current: SessionDep,
    name: Annotated[str, Form()] = "",
    source_table: Annotated[str, Form()] = "",
    primary_key: Annotated[str, Form()] = "",
    text_column: Annotated[str, Form()] = "",
    embedding_model: Annotated[str, Form()] = "",
    embedding_column: Annotated[str, Form()] = "",
    columns_to_sync: Annotated[str, Form()] = "",
    sync_mode: Annotated[str, Form()] = "triggered",
) -> Response:
    """A new index from the form, then its page (where its first build shows); a refusal is shown
    above the form, which keeps what was typed."""
    principal = current.principal
    form = {
        "name": name,
        "source_table": source_table,
        "primary_key": primary_key,
        "text_column": text_column,
        "embedding_model": embedding_model,
        "embedding_column": embedding_column,
        "columns_to_sync": columns_to_sync,
        "sync_mode": sync_mode,
    }
    try:
        made = await call(
            lambda: indexes.create_vector_index(
                services,
                principal,
                name.strip(),
                source_table=source_table.strip(),
                primary_key=primary_key.strip(),
                text_column=text_column.strip() or None,
                embedding_model=embedding_model.strip() or None,
                embedding_column=embedding_column.strip() or None,
                columns_to_sync=[c.strip() for c in columns_to_sync.split(",") if c.strip()] or None,
                sync_mode=cast("indexes.SyncMode", sync_mode),  # the service refuses any other value
            )
        )
    except TsunamiError as exc:
        return await _indexes_page(request, services, current, form=form, refusal=exc)
    return RedirectResponse(f"/vectors/{made.index.name}", status_code=303)


@router.get("/vectors/{name}")
async def index_page(request: Request, services: ServicesDep, current: SessionDep, name: str) -> Response:
    principal = current.principal
    index = await call(lambda: indexes.describe_vector_index(services, principal, name))
    return page(request, services, current, "vector_index.html", {"index": index, "k": HITS})


@router.get("/vectors/{name}/search")
async def search_page(
    request: Request, services: ServicesDep, current: SessionDep, name: str, q: str = "", k: int = HITS
) -> Response:
    """The index's nearest rows to the words ``q``, best first, with their scores."""
    principal = current.principal
    if not q.strip():
        raise InvalidInput("type what to search for")
    found = await call(lambda: search.search_vectors(services, principal, name, query_text=q, k=k))
    hits = [
        {"score": score, "values": dict(zip(found["columns"], row, strict=True))}
        for score, row in zip(found["scores"], found["rows"], strict=True)
    ]
    return page(request, services, current, "_hits.html", {"found": found, "hits": hits, "q": q})


@router.post("/vectors/{name}/sync")
async def sync(request: Request, services: ServicesDep, current: SessionDep, name: str) -> Response:
    principal = current.principal
    await call(lambda: indexes.sync_vector_index(services, principal, name))
    return RedirectResponse(f"/vectors/{name}", status_code=303)
