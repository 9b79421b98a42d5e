"""Vector indexes of a tenant (their metadata; the rows live in Delta tables). See the package
docstring for the conventions: everything is looked up within a tenant."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicetsunami.errors import Conflict, NotFound
from servicetsunami.store.models import VectorIndex
from servicetsunami.store.repositories._keyset import bytewise, keyset


def create_index(session: Session, /, **fields: Any) -> VectorIndex:
    """A new index; :class:`Conflict` when the tenant already has one of that name."""
    try:
        with session.begin_nested():
            index = VectorIndex(**fields)
            session.add(index)
            session.flush()
    except IntegrityError:
        raise Conflict(f"a vector index named {fields.get('name')!r} already exists") from None
    return index


def find_index(session: Session, ref: str, /, *, tenant_id: str) -> VectorIndex:
    """The tenant's index with this id or name; :class:`NotFound` otherwise (another tenant's too)."""
    index = session.scalar(
        select(VectorIndex).where(
            VectorIndex.tenant_id == tenant_id, or_(VectorIndex.id == ref, VectorIndex.name == ref)
        )
    )
    if index is None:
        raise NotFound(f"vector index {ref!r} not found")
    return index


def list_indexes(
    session: Session, /, *, tenant_id: str, after: tuple[str] | None = None, limit: int | None = None
) -> list[VectorIndex]:
    stmt = select(VectorIndex).where(VectorIndex.tenant_id == tenant_id)
    return list(session.scalars(keyset(stmt, [bytewise(VectorIndex.name)], after=after, limit=limit)))


def continuous_indexes(session: Session, /) -> list[VectorIndex]:
    """Every tenant's indexes that follow their source table on their own."""
    return list(session.scalars(select(VectorIndex).where(VectorIndex.sync_mode == "continuous")))


def delete_index(session: Session, index: VectorIndex, /) -> None:
    session.delete(index)
    session.flush()
