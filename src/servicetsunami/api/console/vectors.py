"""Vector indexes: the tenant's indexes with their state, and an index's page with a search box
(``search_vectors``: the query embedded as the index embeds its text) and "Sync now"."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from servicetsunami.api.console.render import ConsoleRoute, SessionDep, call, page
from servicetsunami.api.deps import ServicesDep
from servicetsunami.errors import InvalidInput
from servicetsunami.services.vectors import indexes, search

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
HITS = 10


@router.get("/vectors")
async def indexes_page(request: Request, services: ServicesDep, current: SessionDep) -> Response:
    principal = current.principal
    listed = await call(lambda: indexes.list_vector_indexes(services, principal, limit=1000))
    return page(request, services, current, "vectors.html", {"indexes": listed.indexes, "more": listed.next_cursor})


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
