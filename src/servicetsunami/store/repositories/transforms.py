"""Transforms (silver specs, gold definitions) and their lineage edges. Every function takes the
caller's ``tenant_id``: a row of another tenant is never found (see the package docstring)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from servicetsunami.errors import NotFound
from servicetsunami.store.models import LineageEdge, Transform, utcnow


def find_transform(session: Session, target: str, /, *, tenant_id: str) -> Transform | None:
    return session.scalar(select(Transform).where(Transform.tenant_id == tenant_id, Transform.target == target))


def get_transform(session: Session, target: str, /, *, tenant_id: str) -> Transform:
    found = find_transform(session, target, tenant_id=tenant_id)
    if found is None:
        raise NotFound(f"{target} has no stored transform or definition; create it first")
    return found


def list_transforms(session: Session, /, *, tenant_id: str, kind: str | None = None) -> list[Transform]:
    query = select(Transform).where(Transform.tenant_id == tenant_id)
    if kind is not None:
        query = query.where(Transform.kind == kind)
    return list(session.scalars(query.order_by(Transform.target)))


def save_transform(
    session: Session,
    /,
    *,
    tenant_id: str,
    target: str,
    kind: str,
    materialize: str,
    spec: dict[str, Any],
    sql: str,
    created_by: str,
    upstream: dict[str, int | None],
    ran_at: datetime | None = None,
    version: int | None = None,
    rows: int | None = None,
    meta: dict[str, Any] | None = None,
) -> Transform:
    """Create or replace the transform of ``target`` and its lineage edges (``upstream``: table ->
    version read, or None for a view's inputs)."""
    row = find_transform(session, target, tenant_id=tenant_id)
    if row is None:
        row = Transform(tenant_id=tenant_id, target=target, created_by=created_by)
        session.add(row)
    row.kind, row.materialize, row.spec, row.sql = kind, materialize, dict(spec), sql
    row.meta = dict(meta or {})
    row.updated_at = utcnow()
    if ran_at is not None:
        row.last_run_at, row.last_version, row.last_rows = ran_at, version, rows
    session.flush()
    session.execute(delete(LineageEdge).where(LineageEdge.transform_id == row.id))
    for name, upstream_version in sorted(upstream.items()):
        session.add(
            LineageEdge(
                tenant_id=tenant_id,
                transform_id=row.id,
                upstream=name,
                downstream=target,
                upstream_version=upstream_version,
            )
        )
    session.flush()
    return row


def edges_into(session: Session, target: str, /, *, tenant_id: str) -> list[LineageEdge]:
    query = select(LineageEdge).where(LineageEdge.tenant_id == tenant_id, LineageEdge.downstream == target)
    return list(session.scalars(query.order_by(LineageEdge.upstream)))


def edges_from(session: Session, source: str, /, *, tenant_id: str) -> list[LineageEdge]:
    query = select(LineageEdge).where(LineageEdge.tenant_id == tenant_id, LineageEdge.upstream == source)
    return list(session.scalars(query.order_by(LineageEdge.downstream)))
