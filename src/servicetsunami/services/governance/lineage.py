"""Where a table came from and what it feeds.

A bronze table's origin is an upload (the file and its landing path) or a sync (the connection and
source table, and the last run). A silver or gold table's origin is its transform (the spec or the
SQL) and the tables it reads, from the lineage edges each run records. :func:`get_lineage` walks the
edges both ways into a graph of nodes and edges; a table that neither exists nor was ever built is
not found, as :func:`~servicetsunami.services.catalog.tables.describe_table` answers.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from servicetsunami.errors import NotFound
from servicetsunami.services.ingestion.syncs import sync_status
from servicetsunami.store.repositories import connections as connections_repo
from servicetsunami.store.repositories import datasets as datasets_repo
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.store.repositories import syncs as syncs_repo
from servicetsunami.store.repositories import transforms as transforms_repo
from servicetsunami.tenancy import Principal, Scope, parse_table_name

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

MAX_NODES = 200


class LineageNode(BaseModel):
    id: str = Field(description="schema.table, or file:<name> / source:<connection>/<table> for origins")
    kind: Literal["table", "view", "file", "source"]
    origin: dict[str, Any] | None = Field(None, description="How this node was built (see describe_table)")


class LineageEdgeOut(BaseModel):
    upstream: str
    downstream: str
    via: str = Field(description="upload, sync, transform_to_silver or gold")
    upstream_version: int | None = None


class Lineage(BaseModel):
    table: str
    upstream: list[str] = Field(description="Everything this table is built from, nearest first")
    downstream: list[str] = Field(description="Everything built from this table, nearest first")
    nodes: list[LineageNode]
    edges: list[LineageEdgeOut]


def origin(svc: Services, principal: Principal, name: str, /) -> dict[str, Any] | None:
    """How ``schema.table`` was built, or None when nothing is recorded."""
    found = svc.store.reads.get(("origin", principal.tenant_id, name), lambda: _origin(svc, principal, name))
    return copy.deepcopy(found)


def _origin(svc: Services, principal: Principal, name: str) -> dict[str, Any] | None:
    schema, _, table = name.partition(".")
    with svc.store.session() as session:
        if schema == "bronze":
            sync = syncs_repo.find_sync_by_target(session, name, tenant_id=principal.tenant_id)
            if sync is not None:
                out: dict[str, Any] = {
                    "kind": "sync",
                    "sync_id": sync.id,
                    "source_table": sync.source_table,
                    "mode": sync.mode,
                }
                try:
                    conn = connections_repo.get_connection(session, sync.connection_id, tenant_id=principal.tenant_id)
                    out["connection"] = {"id": conn.id, "name": conn.name, "kind": conn.kind}
                except Exception:  # a connection deleted meanwhile: the sync still says where rows came from
                    out["connection"] = {"id": sync.connection_id}
                if sync.last_run_id:
                    run = runs_repo.get_run(session, sync.last_run_id, tenant_id=principal.tenant_id)
                    counts = {**(run.progress or {}), **(run.result or {})}
                    out["last_run"] = {
                        "id": run.id,
                        "status": sync_status(run.state),
                        "rows": int(counts.get("rows") or 0),
                        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                    }
                    out["last_refresh"] = out["last_run"]["finished_at"]
                return out
            dataset = datasets_repo.find_dataset(session, table, tenant_id=principal.tenant_id)
            if dataset is not None and dataset.table_schema == schema and dataset.table_name == table:
                return {
                    "kind": "upload",
                    "file": dataset.source_name,
                    "format": dataset.format,
                    "landing_path": dataset.landing_path,
                    "sync_id": (dataset.meta or {}).get("last_sync_id"),
                    "last_refresh": dataset.updated_at.isoformat() if dataset.updated_at else None,
                }
            return None
        row = transforms_repo.find_transform(session, name, tenant_id=principal.tenant_id)
        if row is None:
            return None
        edges = transforms_repo.edges_into(session, name, tenant_id=principal.tenant_id)
        return {
            "kind": "transform_to_silver" if row.kind == "silver" else "gold",
            "materialize": row.materialize,
            "spec": dict(row.spec) if row.kind == "silver" else None,
            "sql": row.sql,
            "upstream": [{"table": e.upstream, "version": e.upstream_version} for e in edges],
            "last_refresh": row.last_run_at.isoformat() if row.last_run_at else None,
            "last_version": row.last_version,
            "last_rows": row.last_rows,
        }


def get_lineage(svc: Services, principal: Principal, table_name: str, /) -> Lineage:
    """The upstream and downstream graph of a table (or gold view); NotFound when the caller's
    catalog has no such table and nothing built it."""
    principal.require(Scope.READ)
    ref = parse_table_name(table_name, catalog=principal.catalog)
    start = f"{ref.schema}.{ref.name}"
    if origin(svc, principal, start) is None and not svc.engine.table_exists(ref):
        raise NotFound(f"table {start} does not exist")
    nodes: dict[str, LineageNode] = {}
    edges: list[LineageEdgeOut] = []
    upstream = _walk(svc, principal, start, nodes, edges, up=True)
    downstream = _walk(svc, principal, start, nodes, edges, up=False)
    if start not in nodes:
        nodes[start] = _table_node(svc, principal, start)
    return Lineage(table=start, upstream=upstream, downstream=downstream, nodes=list(nodes.values()), edges=edges)


def _table_node(svc: Services, principal: Principal, name: str) -> LineageNode:
    found = origin(svc, principal, name)
    kind: Literal["table", "view"] = "view" if found and found.get("materialize") == "view" else "table"
    return LineageNode(id=name, kind=kind, origin=found)


def _walk(
    svc: Services,
    principal: Principal,
    start: str,
    nodes: dict[str, LineageNode],
    edges: list[LineageEdgeOut],
    *,
    up: bool,
) -> list[str]:
    seen: list[str] = []
    frontier = [start]
    while frontier and len(nodes) < MAX_NODES:
        current = frontier.pop(0)
        if current not in nodes:
            nodes[current] = _table_node(svc, principal, current)
        node = nodes[current]
        with svc.store.session() as session:
            found = (transforms_repo.edges_into if up else transforms_repo.edges_from)(
                session, current, tenant_id=principal.tenant_id
            )
            pairs = [(e.upstream, e.downstream, e.upstream_version) for e in found]
        for upstream, downstream, version in pairs:
            via = "transform_to_silver" if downstream.startswith("silver.") else "gold"
            edge = LineageEdgeOut(upstream=upstream, downstream=downstream, via=via, upstream_version=version)
            if edge not in edges:
                edges.append(edge)
            nxt = upstream if up else downstream
            if nxt not in seen and nxt != start:
                seen.append(nxt)
                frontier.append(nxt)
        if up and node.origin and node.origin["kind"] in ("upload", "sync"):
            external = _external(node.origin)
            nodes.setdefault(external.id, external)
            edge = LineageEdgeOut(upstream=external.id, downstream=current, via=node.origin["kind"])
            if edge not in edges:
                edges.append(edge)
            if external.id not in seen:
                seen.append(external.id)
    return seen


def _external(found: dict[str, Any]) -> LineageNode:
    if found["kind"] == "upload":
        return LineageNode(id=f"file:{found['file']}", kind="file", origin={"landing_path": found.get("landing_path")})
    connection = found.get("connection") or {}
    return LineageNode(
        id=f"source:{connection.get('name', connection.get('id'))}/{found['source_table']}",
        kind="source",
        origin={"connection": connection, "source_table": found["source_table"]},
    )
