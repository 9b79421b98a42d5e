"""Keyset pages cut by the store itself, on both system stores (SQLite and PostgreSQL): every list
REST pages through, walked page by page while rows come and go."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from servicetsunami.errors import InvalidInput
from servicetsunami.store.db import Store
from servicetsunami.store.repositories import api_keys as api_keys_repo
from servicetsunami.store.repositories import connections as connections_repo
from servicetsunami.store.repositories import datasets as datasets_repo
from servicetsunami.store.repositories import syncs as syncs_repo
from servicetsunami.store.repositories import tenants as tenants_repo
from servicetsunami.store.repositories import users as users_repo
from tests.integration.test_store_postgres import _database

# Inserted in this order; every list must come back in code point order ("B" < "a" < "a_b" < "aa"),
# whatever the database's locale would say.
LABELS = ["b", "B", "a_b", "aa", "ab", "a"]
BEFORE_ALL, AFTER_ALL = "0", "zz"
BASE = datetime(2025, 1, 1, tzinfo=UTC)


def _created(label: str) -> datetime:
    """API keys page by creation time: give each label a time in the same order as the text."""
    return BASE + timedelta(seconds=sorted([*LABELS, BEFORE_ALL, AFTER_ALL]).index(label))


@dataclass(frozen=True)
class Paged:
    """One paged list: how to add a row labelled ``label``, how to list, and what a row's key is."""

    add: Callable[[Session, str, str], None]
    list: Callable[..., Sequence[Any]]
    key: Callable[[Any], tuple[Any, ...]]
    label: Callable[[Any], str]


def _add_dataset(s: Session, tenant_id: str, label: str) -> None:
    datasets_repo.upsert_dataset(
        s, tenant_id=tenant_id, name=label, table_schema="bronze", table_name=label, source_name=f"{label}.csv",
        landing_path=f"landing/{label}.csv", format="csv", rows=1, table_version=0,
    )  # fmt: skip


def _add_user(s: Session, tenant_id: str, label: str) -> None:
    users_repo.create_user(
        s, tenant_id=tenant_id, email=f"{label}@{tenant_id}.example", name=label, password_hash="x", role="analyst"
    )


def _add_api_key(s: Session, tenant_id: str, label: str) -> None:
    key = api_keys_repo.create_api_key(
        s, tenant_id=tenant_id, name=label, prefix=f"{label}-{tenant_id[:8]}", key_hash="0" * 64, role="analyst"
    )
    key.created_at = _created(label)
    s.flush()


def _add_connection(s: Session, tenant_id: str, label: str) -> None:
    connections_repo.create_connection(s, tenant_id=tenant_id, name=label, kind="postgres", config={"host": "db"})


def _add_sync(s: Session, tenant_id: str, label: str) -> None:
    source = connections_repo.find_connection_by_name(s, "source", tenant_id=tenant_id)
    if source is None:
        source = connections_repo.create_connection(s, tenant_id=tenant_id, name="source", kind="postgres", config={})
    syncs_repo.upsert_sync(
        s, tenant_id=tenant_id, connection_id=source.id, source_table=f"public.{label}",
        target_table=f"bronze.{label}", mode="full_refresh",
    )  # fmt: skip


PAGED = {
    "datasets": Paged(_add_dataset, datasets_repo.list_datasets, lambda d: (d.name, d.id), lambda d: d.name),
    "users": Paged(_add_user, users_repo.list_users, lambda u: (u.email, u.id), lambda u: u.name),
    "api_keys": Paged(_add_api_key, api_keys_repo.list_api_keys, lambda k: (k.created_at, k.id), lambda k: k.name),
    "connections": Paged(
        _add_connection, connections_repo.list_connections, lambda c: (c.name, c.id), lambda c: c.name
    ),
    "syncs": Paged(
        _add_sync,
        syncs_repo.list_syncs,
        lambda row: (row[0].target_table, row[0].id),
        lambda row: row[0].target_table.removeprefix("bronze."),
    ),
}


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A database whose own order is English (ICU): "a" < "a_b" < "aa" < "ab" < "b" < "B"."""
    with _database("LOCALE_PROVIDER icu ICU_LOCALE 'en-US' TEMPLATE template0") as url:
        store = Store(url)
        store.migrate()
        store.dispose()
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'tsunami.db'}")
        store.migrate()
    else:
        store = Store(request.getfixturevalue("postgres_url"))
        with store.session() as s:
            s.execute(text("TRUNCATE tenants CASCADE"))
    try:
        yield store
    finally:
        store.dispose()


def _tenant(store: Store, slug: str) -> str:
    with store.session() as s:
        return tenants_repo.create_tenant(s, slug=slug, name=slug).id


def _fill(store: Store, paged: Paged, tenant_id: str, labels: Sequence[str]) -> None:
    for label in labels:
        with store.session() as s:
            paged.add(s, tenant_id, label)


def _page(store: Store, paged: Paged, tenant_id: str, after: tuple[Any, ...] | None, limit: int) -> list[Any]:
    with store.session() as s:
        return list(paged.list(s, tenant_id=tenant_id, after=after, limit=limit))


def _walk(store: Store, paged: Paged, tenant_id: str, *, limit: int) -> list[list[str]]:
    """Every page's labels, following the key of each page's last row until no extra row comes back."""
    pages: list[list[str]] = []
    after = None
    for _ in range(len(LABELS) + 1):  # bounded: a page that never moves on must fail, not hang
        rows = _page(store, paged, tenant_id, after, limit)
        assert len(rows) <= limit + 1
        pages.append([paged.label(r) for r in rows[:limit]])
        if len(rows) <= limit:
            return pages
        after = paged.key(rows[limit - 1])
    pytest.fail(f"still more pages after {pages}")


@pytest.mark.parametrize("name", sorted(PAGED))
def test_pages_cover_every_row_once_in_code_point_order(any_store: Store, name: str) -> None:
    paged = PAGED[name]
    acme, globex = _tenant(any_store, "acme"), _tenant(any_store, "globex")
    _fill(any_store, paged, acme, LABELS)
    _fill(any_store, paged, globex, [AFTER_ALL])
    pages = _walk(any_store, paged, acme, limit=4)
    assert pages == [["B", "a", "a_b", "aa"], ["ab", "b"]]
    assert _walk(any_store, paged, acme, limit=6) == [sorted(LABELS)]
    with any_store.session() as s:
        assert [paged.label(r) for r in paged.list(s, tenant_id=acme)] == sorted(LABELS)


@pytest.mark.parametrize("name", sorted(PAGED))
def test_a_row_added_between_two_page_reads_shifts_nothing(any_store: Store, name: str) -> None:
    paged = PAGED[name]
    acme = _tenant(any_store, "acme")
    _fill(any_store, paged, acme, LABELS)
    first = _page(any_store, paged, acme, None, 2)
    assert [paged.label(r) for r in first[:2]] == ["B", "a"]
    _fill(any_store, paged, acme, [BEFORE_ALL, AFTER_ALL])
    second = _page(any_store, paged, acme, paged.key(first[1]), 2)
    assert [paged.label(r) for r in second[:2]] == ["a_b", "aa"] and len(second) == 3
    rest = _page(any_store, paged, acme, paged.key(second[1]), 10)
    assert [paged.label(r) for r in rest] == ["ab", "b", AFTER_ALL]


@pytest.mark.parametrize("name", sorted(PAGED))
def test_a_page_key_of_the_wrong_length_is_refused_as_invalid_input(any_store: Store, name: str) -> None:
    paged = PAGED[name]
    acme = _tenant(any_store, "acme")
    with pytest.raises(InvalidInput) as caught, any_store.session() as s:
        paged.list(s, tenant_id=acme, after=("a",), limit=2)
    assert caught.value.code == "invalid_input"


def test_keys_made_at_the_same_instant_are_split_across_pages_by_id(any_store: Store) -> None:
    acme = _tenant(any_store, "acme")
    with any_store.session() as s:
        for label in ("k1", "k2", "k3"):
            key = api_keys_repo.create_api_key(
                s, tenant_id=acme, name=label, prefix=label, key_hash="0" * 64, role="analyst"
            )
            key.created_at = BASE
        s.flush()
        by_id = sorted(k.id for k in api_keys_repo.list_api_keys(s, tenant_id=acme))
    with any_store.session() as s:
        first = api_keys_repo.list_api_keys(s, tenant_id=acme, limit=1)
        rest = api_keys_repo.list_api_keys(s, tenant_id=acme, after=(BASE, first[0].id), limit=5)
    assert [first[0].id] + [k.id for k in rest] == by_id
