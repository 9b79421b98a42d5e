"""Datasets: the files uploaded into bronze tables, by name and by id (see the package docstring
for the conventions)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicetsunami.errors import NotFound
from servicetsunami.store.models import Dataset, utcnow
from servicetsunami.store.repositories._keyset import bytewise, keyset


def upsert_dataset(
    session: Session,
    /,
    *,
    tenant_id: str,
    name: str,
    table_schema: str,
    table_name: str,
    source_name: str,
    landing_path: str,
    format: str,
    rows: int,
    table_version: int,
    size_bytes: int | None = None,
    source_kind: str = "file",
    meta: dict[str, Any] | None = None,
) -> Dataset:
    """Create the dataset ``(tenant_id, name)`` or replace its fields; returns the row.

    Safe against a concurrent insert of the same name: the loser of the race updates the winner's
    row instead of failing.
    """
    fields: dict[str, Any] = {
        "table_schema": table_schema,
        "table_name": table_name,
        "source_kind": source_kind,
        "source_name": source_name,
        "landing_path": landing_path,
        "format": format,
        "rows": rows,
        "size_bytes": size_bytes,
        "table_version": table_version,
        "meta": dict(meta or {}),
    }
    dataset = find_dataset(session, name, tenant_id=tenant_id)
    if dataset is None:
        try:
            with session.begin_nested():
                dataset = Dataset(tenant_id=tenant_id, name=name, **fields)
                session.add(dataset)
            return dataset
        except IntegrityError:
            dataset = find_dataset(session, name, tenant_id=tenant_id)
            if dataset is None:  # the conflict was not on the name (e.g. unknown tenant)
                raise
    for key, value in fields.items():
        setattr(dataset, key, value)
    dataset.updated_at = utcnow()
    session.flush()
    return dataset


def find_dataset(session: Session, name: str, /, *, tenant_id: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.tenant_id == tenant_id, Dataset.name == name))


def get_dataset(session: Session, name: str, /, *, tenant_id: str) -> Dataset:
    dataset = find_dataset(session, name, tenant_id=tenant_id)
    if dataset is None:
        raise NotFound(f"dataset {name!r} not found")
    return dataset


def get_dataset_by_id(session: Session, dataset_id: str, /, *, tenant_id: str) -> Dataset:
    dataset = session.scalar(select(Dataset).where(Dataset.id == dataset_id, Dataset.tenant_id == tenant_id))
    if dataset is None:
        raise NotFound("dataset not found")
    return dataset


def list_datasets(
    session: Session, /, *, tenant_id: str, after: tuple[str, str] | None = None, limit: int | None = None
) -> list[Dataset]:
    """By ``(name, id)``: the tenant's datasets after ``after``, at most ``limit + 1``."""
    stmt = select(Dataset).where(Dataset.tenant_id == tenant_id)
    return list(session.scalars(keyset(stmt, (bytewise(Dataset.name), bytewise(Dataset.id)), after=after, limit=limit)))


def delete_dataset(session: Session, name: str, /, *, tenant_id: str) -> bool:
    """Delete the dataset row; returns whether there was one."""
    result = session.execute(
        delete(Dataset)
        .where(Dataset.tenant_id == tenant_id, Dataset.name == name)
        .execution_options(synchronize_session="fetch")
    )
    return bool(getattr(result, "rowcount", 0))
