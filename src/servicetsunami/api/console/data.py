"""Datasets (upload, list, a dataset's lineage, profile and versions) and the SQL editor (run,
chart through ``explain_data``, a question turned into SQL by ``suggest_query``).

The editor's history is the statements run in this browser tab, kept by console.js in the tab's
sessionStorage: the service keeps no log of read-only statements to read it from."""

from __future__ import annotations

import dataclasses
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
from servicetsunami.llm.chain import Chain
from servicetsunami.services.ai import tools as ai_tools
from servicetsunami.services.catalog import datasets, query
from servicetsunami.services.governance import lineage, profiling
from servicetsunami.services.ingestion import uploads
from servicetsunami.services.models import QueryResult
from servicetsunami.tenancy import Scope

CHART_SCRIPTS = ("vega-6.4.0.min.js", "vega-lite-6.5.0.min.js", "vega-embed-7.3.0.min.js")  # loaded in this order
PREVIEW_ROWS = 20
NUMBER_TYPES = ("TINYINT", "SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE", "DECIMAL")

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
    graph = await call(lambda: lineage.get_lineage(services, principal, detail.table))
    context = {
        "dataset": detail,
        "result": preview,
        "upstream": lineage_tree(graph, graph.table, up=True),
        "downstream": lineage_tree(graph, graph.table, up=False),
    }
    return page(request, services, current, "dataset.html", context)


def lineage_tree(graph: lineage.Lineage, node: str, /, *, up: bool, seen: frozenset[str] = frozenset()) -> list[Branch]:
    """The nodes next to ``node`` (what it is built from, or what is built from it), each with its
    own, as nested lists; a node already on the path is not followed again."""
    kinds = {n.id: n.kind for n in graph.nodes}
    branches = []
    for edge in graph.edges:
        near, far = (edge.downstream, edge.upstream) if up else (edge.upstream, edge.downstream)
        if near != node or far in seen:
            continue
        below = lineage_tree(graph, far, up=up, seen=seen | {node})
        branches.append(Branch(far, kinds.get(far, "table"), edge.via, edge.upstream_version, below))
    return branches


@dataclasses.dataclass(frozen=True, slots=True)
class Branch:
    name: str
    kind: str
    via: str
    version: int | None
    children: list[Branch]


@router.get("/datasets/{dataset_id}/profile")
async def profile(request: Request, services: ServicesDep, current: SessionDep, dataset_id: str) -> Response:
    principal = current.principal
    detail = await call(lambda: datasets.get_dataset(services, principal, dataset_id))
    found = await call(lambda: profiling.profile_table(services, principal, detail.table))
    return page(request, services, current, "_profile.html", {"profile": found})


@router.get("/datasets/{dataset_id}/as-of")
async def as_of(
    request: Request, services: ServicesDep, current: SessionDep, dataset_id: str, version: int
) -> Response:
    """The dataset's first rows as they were at ``version`` (Delta time travel through the guard)."""
    principal = current.principal
    detail = await call(lambda: datasets.get_dataset(services, principal, dataset_id))
    statement = f"SELECT * FROM {detail.table} VERSION AS OF {version} LIMIT {PREVIEW_ROWS}"
    result = await call(lambda: query.query_sql(services, principal, statement))
    return page(request, services, current, "_as_of.html", {"result": result, "version": version, "sql": statement})


@router.get("/sql")
async def sql_page(request: Request, services: ServicesDep, current: SessionDep, q: str = "") -> Response:
    return page(request, services, current, "sql.html", {"sql": q, "result": None})


@router.post("/sql")
async def run_sql(
    request: Request, services: ServicesDep, current: SessionDep, sql: Annotated[str, Form()] = ""
) -> Response:
    principal = current.principal
    statement = _statement(sql)
    result = await call(lambda: query.query_sql(services, principal, statement))
    template = "_result.html" if request.headers.get("hx-request") else "sql.html"
    return page(request, services, current, template, {"sql": sql, "result": result})


def _statement(sql: str) -> str:
    if not sql.strip():
        raise InvalidInput("write a SQL statement to run")
    return sql


@router.post("/sql/chart")
async def chart(
    request: Request, services: ServicesDep, current: SessionDep, sql: Annotated[str, Form()] = ""
) -> Response:
    """The result drawn: the Vega-Lite spec ``explain_data`` proposes, else a bar chart of the first
    text column against the first number column; the page says which."""
    principal = current.principal
    statement = _statement(sql)
    chain = Chain.from_settings(services.settings.ai)
    explained = await call(lambda: ai_tools.explain_data(services, principal, statement, chain=chain))
    spec, made_by = explained.chart, "explain_data"
    if spec is None:
        result = await call(lambda: query.query_sql(services, principal, statement))
        spec, made_by = columns_chart(result), "columns"
    context = {"explained": explained, "spec": spec, "made_by": made_by, "scripts": CHART_SCRIPTS, "sql": statement}
    return page(request, services, current, "_chart.html", context)


def columns_chart(result: QueryResult) -> dict[str, object] | None:
    """A bar chart of the first text column (x) against the first number column (y), or None when
    the result has no such pair."""
    kinds = [c.type.upper() for c in result.columns]
    x = next((i for i, k in enumerate(kinds) if k == "STRING"), None)
    y = next((i for i, k in enumerate(kinds) if k.startswith(NUMBER_TYPES)), None)
    if x is None or y is None or not result.rows:
        return None
    x_name, y_name = result.columns[x].name, result.columns[y].name
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": [{x_name: row[x], y_name: row[y]} for row in result.rows]},
        "mark": "bar",
        "encoding": {
            "x": {"field": x_name, "type": "nominal"},
            "y": {"field": y_name, "type": "quantitative"},
        },
    }


@router.post("/sql/suggest")
async def suggest(
    request: Request, services: ServicesDep, current: SessionDep, question: Annotated[str, Form()] = ""
) -> Response:
    """SQL for a question in words, put into the editor (not run: the person runs it)."""
    principal = current.principal
    chain = Chain.from_settings(services.settings.ai)
    suggested = await call(lambda: ai_tools.suggest_query(services, principal, question, chain=chain))
    return page(request, services, current, "_suggestion.html", {"suggested": suggested})
