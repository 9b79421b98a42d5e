"""Vector indexes of a tenant: create, sync, describe, list, delete, and the ``vector_index_sync``
run kind that builds and syncs them (DESIGN.md section 12).

An index is named like a table (``docs_idx``, ``gold.docs_idx``, or with the tenant's own catalog
in front; its table is ``gold.<name>``); names and ids resolve only within the caller's catalog, so another tenant's
index answers :class:`~servicetsunami.errors.NotFound` like one that does not exist.

Sync modes follow Databricks: ``triggered`` indexes change when asked (``sync_vector_index``);
``continuous`` ones follow their source table on their own: a ticker in every worker queues a sync
when the source table's Delta version moves past the one the index holds.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from servicetsunami.errors import Conflict, InvalidInput, NotFound, TsunamiError
from servicetsunami.services.runs import service as runs
from servicetsunami.services.runs.context import RunContext
from servicetsunami.services.runs.kinds import RunKind, register
from servicetsunami.services.vectors import build, workspace
from servicetsunami.services.vectors.embeddings import model_name
from servicetsunami.services.vectors.search import forget_loaded
from servicetsunami.store.models import FINISHED_RUN_STATES, VectorIndex
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.store.repositories import tenants as tenants_repo
from servicetsunami.store.repositories import vector_indexes as repo
from servicetsunami.tenancy import Principal, Scope, TableRef, catalog_name, check_identifier, parse_table_name

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

KIND = "vector_index_sync"
SyncMode = Literal["triggered", "continuous"]


class VectorIndexPublic(BaseModel):
    index_id: str
    name: str = Field(description="The index's name; its table is <catalog>.gold.<name>")
    table: str = Field(description="The Delta table holding key, text, synced columns and embeddings")
    source_table: str
    primary_key: str
    text_column: str | None
    embedding_model: str | None = Field(description="None for self-managed vectors (embedding_column)")
    embedding_column: str | None
    columns: list[str] = Field(description="Columns a search can return and filter on")
    sync_mode: str = Field(description="triggered (on sync_vector_index) or continuous (follows the source)")
    state: str = Field(description="building (first build running), ready, or failed (first build failed)")
    dim: int | None = Field(None, description="Length of the vectors")
    row_count: int
    source_version: int | None = Field(None, description="The source table version the index holds")
    search: str = Field(
        description="exact (DuckDB array_cosine_distance) or hnsw (usearch), by row count; "
        "databricks (a Delta Sync index of Databricks Vector Search)"
    )
    endpoint: str | None = Field(None, description="The Databricks Vector Search endpoint holding the index")
    last_run_id: str | None
    last_sync: dict[str, Any] | None = Field(None, description="What the last sync did (added, changed, ...)")
    error: str | None = Field(None, description="Why the last sync failed, if it did")
    created_by: str
    created_at: datetime
    updated_at: datetime


class VectorIndexList(BaseModel):
    indexes: list[VectorIndexPublic]
    next_cursor: str | None = None


class VectorIndexRun(BaseModel):
    index: VectorIndexPublic
    run_id: str = Field(description="The build or sync run; wait on it with get_run")


def public(svc: Services, index: VectorIndex, /) -> VectorIndexPublic:
    spec = spec_of(index, catalog=index.meta.get("catalog", ""))
    hnsw = index.meta.get("hnsw_version")
    return VectorIndexPublic(
        index_id=index.id,
        name=index.name,
        table=str(spec.table),
        source_table=index.source_table,
        primary_key=index.primary_key,
        text_column=index.text_column,
        embedding_model=index.embedding_model,
        embedding_column=index.embedding_column,
        columns=spec.columns,
        sync_mode=index.sync_mode,
        state=index.state,
        dim=index.dim,
        row_count=index.row_count,
        source_version=index.source_version,
        search=(
            "databricks"
            if index.meta.get("endpoint")
            else "hnsw"
            if hnsw is not None and hnsw == index.table_version
            else "exact"
        ),
        endpoint=index.meta.get("endpoint"),
        last_run_id=index.last_run_id,
        last_sync=index.meta.get("last_sync"),
        error=index.meta.get("error"),
        created_by=index.created_by,
        created_at=index.created_at,
        updated_at=index.updated_at,
    )


def spec_of(index: VectorIndex, /, *, catalog: str) -> build.IndexSpec:
    return build.IndexSpec(
        id=index.id,
        tenant_id=index.tenant_id,
        name=index.name,
        catalog=catalog,
        source_table=index.source_table,
        primary_key=index.primary_key,
        text_column=index.text_column,
        embedding_model=index.embedding_model,
        embedding_column=index.embedding_column,
        columns_to_sync=tuple(index.columns_to_sync or ()),
        table_version=index.table_version,
        hnsw_version=index.meta.get("hnsw_version"),
    )


def spec_for(svc: Services, principal: Principal, ref: str, /) -> build.IndexSpec:
    """What a sync or a search needs of the caller's index ``ref`` (id or name)."""
    return spec_of(find(svc, principal, ref), catalog=principal.catalog)


def index_name(principal: Principal, name: str, /) -> str:
    """The bare index name of ``name``, ``gold.name`` or ``<own catalog>.gold.name``."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name the index, like docs_idx")
    ref = parse_table_name(name.strip(), catalog=principal.catalog, default_schema=build.INDEX_SCHEMA)
    if ref.schema != build.INDEX_SCHEMA:
        raise InvalidInput(
            f"vector indexes live in the schema {build.INDEX_SCHEMA!r}: "
            f"name it {ref.name} or {build.INDEX_SCHEMA}.{ref.name}"
        )
    return ref.name


def find(svc: Services, principal: Principal, ref: str, /) -> VectorIndex:
    """The caller's index by id or name (detached from its session)."""
    principal.require(Scope.READ)
    with svc.store.session() as session:
        try:
            index = repo.find_index(session, ref, tenant_id=principal.tenant_id)
        except NotFound:
            index = repo.find_index(session, _bare(principal, ref), tenant_id=principal.tenant_id)
        session.expunge(index)
    return index


def _bare(principal: Principal, ref: str) -> str:
    try:
        return index_name(principal, ref)
    except TsunamiError:
        raise NotFound(f"vector index {ref!r} not found") from None


def _is_index(session: Any, principal: Principal, name: str, /) -> bool:
    try:
        repo.find_index(session, name, tenant_id=principal.tenant_id)
    except NotFound:
        return False
    return True


def _check_columns(svc: Services, source: TableRef, columns: dict[str, str | None], /) -> dict[str, str]:
    detail = svc.engine.describe(source)
    types = {c.name: c.type.lower() for c in detail.columns}
    for role, column in columns.items():
        if column is None:
            continue
        check_identifier(column, what="column")
        if column not in types:
            raise InvalidInput(f"{role} {column!r} is not a column of {source}; it has {', '.join(types)}")
        if column.startswith("_") and column in build.SYSTEM_COLUMNS:
            raise InvalidInput(f"{column!r} is a name the index keeps for itself; rename the column")
    return types


def create_vector_index(
    svc: Services,
    principal: Principal,
    name: str,
    /,
    *,
    source_table: str,
    primary_key: str,
    text_column: str | None = None,
    embedding_model: str | None = None,
    embedding_column: str | None = None,
    columns_to_sync: list[str] | None = None,
    sync_mode: SyncMode = "triggered",
) -> VectorIndexRun:
    """Register an index and start its first build (a run). Either ``text_column`` (embedded with
    ``embedding_model``, default the configured one) or ``embedding_column`` (vectors the source
    already holds; ``text_column`` then optional, for hybrid search)."""
    principal.require(Scope.WRITE)
    bare = index_name(principal, name)
    if sync_mode not in ("triggered", "continuous"):
        raise InvalidInput("sync_mode is triggered (sync when asked) or continuous (follow the source table)")
    if embedding_column is not None and embedding_model is not None:
        raise InvalidInput("give embedding_model (the index embeds text_column) or embedding_column, not both")
    if embedding_column is None and text_column is None:
        raise InvalidInput("give text_column (to embed) or embedding_column (vectors the source holds)")
    source = parse_table_name(source_table, catalog=principal.catalog, default_schema="gold")
    target = TableRef(principal.catalog, build.INDEX_SCHEMA, bare)
    with svc.store.session() as session:
        if source.schema == build.INDEX_SCHEMA and _is_index(session, principal, source.name):
            raise InvalidInput(f"{source} is the table of a vector index; build from the table it indexes")
        if _is_index(session, principal, bare):
            raise Conflict(f"a vector index named {bare!r} already exists")
    if svc.engine.table_exists(target):
        raise Conflict(
            f"a table {build.INDEX_SCHEMA}.{bare} already exists; an index's table takes its name, pick another"
        )
    synced = list(dict.fromkeys(columns_to_sync or []))
    types = _check_columns(
        svc,
        source,
        {"primary_key": primary_key, "text_column": text_column, "embedding_column": embedding_column}
        | {f"columns_to_sync[{i}]": c for i, c in enumerate(synced)},
    )
    if text_column is not None and not types[text_column].startswith(("string", "varchar")):
        raise InvalidInput(f"text_column {text_column!r} is {types[text_column]}, not text")
    if embedding_column is not None:
        if not types[embedding_column].startswith(("array<float", "array<double", "float[", "double[")):
            raise InvalidInput(
                f"embedding_column {embedding_column!r} is {types[embedding_column]}, not an array of floats"
            )
        synced = [c for c in synced if c != embedding_column]
    model = None if embedding_column is not None else model_name(svc.settings, embedding_model)
    endpoint = workspace.endpoint_for_new_index(svc)
    if endpoint is not None and model is not None:
        model = workspace.managed_model(svc, model)
    with svc.store.session(write_lock=True) as session:
        index = repo.create_index(
            session,
            tenant_id=principal.tenant_id,
            name=bare,
            source_table=str(source),
            text_column=text_column,
            primary_key=primary_key,
            embedding_model=model,
            embedding_column=embedding_column,
            columns_to_sync=synced,
            sync_mode=sync_mode,
            state="building",
            created_by=principal.subject,
            meta={"catalog": principal.catalog} | ({"endpoint": endpoint} if endpoint else {}),
        )
        index_id = index.id
        audit_repo.record_audit(
            session,
            action="vector_index.create",
            subject=principal.subject,
            tenant_id=principal.tenant_id,
            target=bare,
        )
    run_id = _start_sync(svc, principal, index_id, full=False)
    return VectorIndexRun(index=describe_vector_index(svc, principal, index_id), run_id=run_id)


def _start_sync(svc: Services, principal: Principal, index_id: str, /, *, full: bool) -> str:
    """Queue a sync of the index, or answer the one already queued or running."""
    try:
        with svc.store.session() as session:
            run = runs_repo.create_run(
                session,
                tenant_id=principal.tenant_id,
                kind=KIND,
                subject=principal.subject,
                role=principal.run_role.value,
                params={"index_id": index_id, "full": full},
                resource_id=index_id,
                dedupe_key=f"{KIND}:{index_id}",
                timeout_seconds=svc.settings.vectors.build_timeout_seconds,
            )
            run_id = run.id
            index = repo.find_index(session, index_id, tenant_id=principal.tenant_id)
            index.last_run_id = run_id
    except Conflict:
        with svc.store.session() as session:
            active = [
                r
                for r in runs_repo.list_runs(session, tenant_id=principal.tenant_id, kind=KIND, resource_id=index_id)
                if r.state not in FINISHED_RUN_STATES
            ]
        if not active:
            raise
        return active[0].id
    runs.ensure_worker(svc)
    svc.launcher.kick()
    return run_id


def sync_vector_index(svc: Services, principal: Principal, index: str, /, *, full: bool = False) -> VectorIndexRun:
    """Start a sync (a run): embed added and changed rows, drop deleted ones. ``full`` re-embeds all."""
    principal.require(Scope.WRITE)
    found = find(svc, principal, index)
    run_id = _start_sync(svc, principal, found.id, full=full)
    return VectorIndexRun(index=describe_vector_index(svc, principal, found.id), run_id=run_id)


def describe_vector_index(svc: Services, principal: Principal, index: str, /) -> VectorIndexPublic:
    return public(svc, find(svc, principal, index))


def list_vector_indexes(
    svc: Services, principal: Principal, /, *, limit: int = 100, after: str | None = None
) -> VectorIndexList:
    principal.require(Scope.READ)
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit is between 1 and 1000")
    with svc.store.session() as session:
        rows = repo.list_indexes(session, tenant_id=principal.tenant_id, after=(after,) if after else None, limit=limit)
        page = [public(svc, r) for r in rows[:limit]]
    return VectorIndexList(indexes=page, next_cursor=page[-1].name if len(rows) > limit else None)


def delete_vector_index(svc: Services, principal: Principal, index: str, /) -> VectorIndexPublic:
    """Delete the index: its table, its HNSW graph and its record. A sync still running is canceled."""
    principal.require(Scope.WRITE)
    found = find(svc, principal, index)
    facts = public(svc, found)
    spec = spec_of(found, catalog=principal.catalog)
    if found.last_run_id is not None:
        try:
            status = runs.get_run(svc, principal, found.last_run_id)
            if not status.finished:
                runs.cancel_run(svc, principal, found.last_run_id)
        except (NotFound, Conflict):
            pass
    with svc.store.session(write_lock=True) as session:
        repo.delete_index(session, repo.find_index(session, found.id, tenant_id=principal.tenant_id))
        audit_repo.record_audit(
            session,
            action="vector_index.delete",
            subject=principal.subject,
            tenant_id=principal.tenant_id,
            target=found.name,
        )
    if found.meta.get("endpoint"):
        workspace.delete(svc, spec)
    elif svc.engine.table_exists(spec.table):
        svc.engine.drop_table(spec.table)
    build.hnsw_path(svc, spec).unlink(missing_ok=True)
    forget_loaded(found.id)
    return facts


# -- the run kind ---------------------------------------------------------------------------------


def _execute(svc: Services, ctx: RunContext) -> dict[str, Any]:
    principal = ctx.principal
    index_id = ctx.params["index_id"]
    with svc.store.session() as session:
        index = repo.find_index(session, index_id, tenant_id=principal.tenant_id)
        spec = spec_of(index, catalog=principal.catalog)
        endpoint = index.meta.get("endpoint")
    ctx.progress(message=f"syncing {spec.name} from {spec.source_table}", force=True)
    try:
        if endpoint:
            stats = workspace.sync(svc, spec, endpoint, progress=ctx.progress, cancelled=lambda: ctx.cancelled)
        else:
            stats = build.sync_index(
                svc,
                spec,
                progress=ctx.progress,
                cancelled=lambda: ctx.cancelled,
                full=bool(ctx.params.get("full")),
            )
    except TsunamiError as exc:
        _record_failure(svc, principal, index_id, exc.message)
        raise
    except Exception:
        _record_failure(svc, principal, index_id, "the sync failed unexpectedly; see the service log")
        raise
    with svc.store.session(write_lock=True) as session:  # reads, then writes: lock first (db.py)
        index = repo.find_index(session, index_id, tenant_id=principal.tenant_id)
        index.state = "ready"
        index.row_count = stats.rows
        index.source_version = stats.source_version
        index.table_version = stats.table_version
        index.dim = stats.dim or index.dim
        meta = dict(index.meta)
        meta["last_sync"] = stats.as_dict() | {"run_id": ctx.run_id}
        meta["hnsw_version"] = stats.table_version if stats.hnsw else None
        meta.pop("error", None)
        index.meta = meta
    forget_loaded(index_id, keep_version=stats.table_version)
    return stats.as_dict()


def _record_failure(svc: Services, principal: Principal, index_id: str, message: str) -> None:
    try:
        with svc.store.session(write_lock=True) as session:
            index = repo.find_index(session, index_id, tenant_id=principal.tenant_id)
            if index.state == "building":
                index.state = "failed"
            index.meta = dict(index.meta) | {"error": message}
    except NotFound:  # deleted meanwhile
        pass


def _follow_sources(svc: Services) -> None:
    """Queue a sync of every continuous index whose source table moved to a new version."""
    with svc.store.session() as session:
        due = []
        for index in repo.continuous_indexes(session):
            if index.state == "building":
                continue
            tenant = tenants_repo.get_tenant(session, index.tenant_id)
            due.append(
                (index.id, index.tenant_id, index.created_by, index.source_table, index.source_version, tenant.slug)
            )
    for index_id, tenant_id, subject, source_table, version, slug in due:
        catalog, schema, name = source_table.split(".")
        try:
            current = svc.engine.describe(TableRef(catalog, schema, name)).version
        except TsunamiError:
            continue  # a dropped source table: the next explicit sync says so
        if current == version:
            continue
        try:
            with svc.store.session() as session:
                run = runs_repo.create_run(
                    session,
                    tenant_id=tenant_id,
                    kind=KIND,
                    subject=subject,
                    role="engineer",
                    params={"index_id": index_id, "full": False},
                    resource_id=index_id,
                    dedupe_key=f"{KIND}:{index_id}",
                    timeout_seconds=svc.settings.vectors.build_timeout_seconds,
                )
                repo.find_index(session, index_id, tenant_id=tenant_id).last_run_id = run.id
        except Conflict:
            continue  # one is already on its way
        logger.info(
            "queued a sync of vector index %s (catalog %s): its source moved",
            index_id,
            catalog_name(slug, prefix=svc.settings.catalog_prefix),
        )
        svc.launcher.kick()


register(
    RunKind(
        KIND,
        _execute,
        requeue_when_lost=True,
        ticker=_follow_sources,
        ticker_seconds=lambda settings: settings.vectors.sync_check_seconds,
    )
)
