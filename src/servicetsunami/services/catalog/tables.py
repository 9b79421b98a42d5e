"""The tenant's catalog: list, describe and preview tables. Every name resolves inside the
caller's own catalog (a name pointing elsewhere is refused)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from servicetsunami.engines.base import TableDetail
from servicetsunami.errors import InvalidInput
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.catalog.views import expand_views, view_definitions
from servicetsunami.services.governance import lineage
from servicetsunami.services.models import QueryResult, TableDescription, TableInfo
from servicetsunami.services.transforms.gold import view_columns
from servicetsunami.sql import guard_query
from servicetsunami.store.repositories import datasets as datasets_repo
from servicetsunami.store.repositories import transforms as transforms_repo
from servicetsunami.tenancy import LAYERS, Principal, Scope, TableRef, check_identifier, parse_table_name

if TYPE_CHECKING:
    from servicetsunami.services.container import Services


def list_tables(svc: Services, principal: Principal, *, layer: str | None = None) -> list[TableInfo]:
    principal.require(Scope.READ)
    if layer is not None:
        check_identifier(layer, what="layer")
    if layer is not None and layer not in LAYERS:
        raise InvalidInput(f"layer must be one of {', '.join(LAYERS)}")
    svc.engine.ensure_catalog(principal.catalog)
    tables = [_info(d) for d in svc.engine.list_tables(principal.catalog, schema=layer)]
    if layer in (None, "gold"):
        with svc.store.session() as session:
            views = transforms_repo.list_transforms(session, tenant_id=principal.tenant_id, kind="gold")
            for view in views:
                if view.materialize != "view":
                    continue
                ref = TableRef(principal.catalog, "gold", view.target.split(".", 1)[1])
                tables.append(
                    TableInfo(
                        catalog=ref.catalog,
                        schema_=ref.schema,
                        name=ref.name,
                        full_name=str(ref),
                        version=0,
                        updated_at=view.updated_at,
                        kind="view",
                    )
                )
    return sorted(tables, key=lambda t: (t.schema_, t.name))


def describe_table(
    svc: Services, principal: Principal, table_name: str, /, *, version: int | None = None
) -> TableDescription:
    principal.require(Scope.READ)
    ref = parse_table_name(table_name, catalog=principal.catalog)
    if version is not None and (not isinstance(version, int) or version < 0):
        raise InvalidInput("version must be a non-negative integer")
    if ref.schema == "gold" and not svc.engine.table_exists(ref):
        view = _describe_view(svc, principal, ref)
        if view is not None:
            return view
    detail = svc.engine.describe(ref, version=version)
    history = svc.engine.history(ref, limit=10)
    dataset = svc.store.reads.get(
        ("dataset_of", principal.tenant_id, ref.schema, ref.name), lambda: _dataset_of(svc, principal, ref)
    )
    info = _info(detail)
    return TableDescription(
        **info.model_dump(by_alias=True),
        columns=detail.columns,
        partition_columns=detail.partition_columns,
        files=detail.files,
        location=f"{ref}",
        history=history,
        comment=detail.comment,
        dataset=dict(dataset) if dataset is not None else None,
        lineage=lineage.origin(svc, principal, f"{ref.schema}.{ref.name}"),
        mirror=svc.mirror.status_for(ref) if svc.mirror is not None else None,
    )


def _dataset_of(svc: Services, principal: Principal, ref: TableRef) -> dict[str, Any] | None:
    """The dataset record behind a table, when it was uploaded or synced into one."""
    with svc.store.session() as session:
        found = datasets_repo.find_dataset(session, ref.name, tenant_id=principal.tenant_id)
        if found is None or found.table_schema != ref.schema or found.table_name != ref.name:
            return None
        return {
            "id": found.id,
            "source_kind": found.source_kind,
            "source_name": found.source_name,
            "format": found.format,
            "landing_path": found.landing_path,
            "last_sync_id": (found.meta or {}).get("last_sync_id"),
            "updated_at": found.updated_at.isoformat() if found.updated_at else None,
        }


def _describe_view(svc: Services, principal: Principal, ref: TableRef) -> TableDescription | None:
    """A gold view: its columns (from running it with no rows) and its definition."""
    definition = view_definitions(svc, principal, [ref]).get(ref)
    if definition is None:
        return None
    expanded = expand_views(svc, principal, guard_query(definition, catalog=principal.catalog))
    return TableDescription(
        catalog=ref.catalog,
        schema_=ref.schema,
        name=ref.name,
        full_name=str(ref),
        version=0,
        columns=view_columns(svc, expanded),
        location=None,
        comment="a view: computed from its definition when queried",
        lineage=lineage.origin(svc, principal, f"{ref.schema}.{ref.name}"),
        kind="view",
    )


def preview_table(svc: Services, principal: Principal, table_name: str, /, *, limit: int = 20) -> QueryResult:
    ref = parse_table_name(table_name, catalog=principal.catalog)
    if not 1 <= limit <= svc.settings.query.max_rows:
        raise InvalidInput(f"limit must be between 1 and {svc.settings.query.max_rows}")
    return query_sql(svc, principal, f"SELECT * FROM {ref.schema}.{ref.name}", max_rows=limit)


def table_ref(principal: Principal, table_name: str) -> TableRef:
    return parse_table_name(table_name, catalog=principal.catalog)


def _info(d: TableDetail) -> TableInfo:
    return TableInfo(
        catalog=d.ref.catalog,
        schema_=d.ref.schema,
        name=d.ref.name,
        full_name=str(d.ref),
        version=d.version,
        rows=d.rows,
        size_bytes=d.size_bytes,
        updated_at=d.updated_at,
    )
