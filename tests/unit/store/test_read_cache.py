"""Store reads remembered until the next commit, by any connection or process."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from servicetsunami.store.db import Store
from servicetsunami.store.repositories import tenants as tenants_repo


def _tenant_names(store: Store, calls: list[int]) -> list[str]:
    def read() -> list[str]:
        calls.append(1)
        with store.session() as s:
            return sorted(t.slug for t in tenants_repo.list_tenants(s))

    return store.reads.get(("tenants",), read)


def _create_tenant(url: str, slug: str) -> None:
    other = Store(url)
    try:
        with other.session() as s:
            tenants_repo.create_tenant(s, slug=slug, name=slug)
    finally:
        other.dispose()


def test_a_cached_read_is_reused_until_something_is_committed(store: Store) -> None:
    calls: list[int] = []
    assert _tenant_names(store, calls) == []
    assert _tenant_names(store, calls) == []
    assert len(calls) == 1
    with store.session() as s:
        tenants_repo.create_tenant(s, slug="acme", name="Acme")
    assert _tenant_names(store, calls) == ["acme"]
    assert len(calls) == 2


def test_a_commit_by_another_process_makes_the_cached_read_stale(store: Store, sqlite_url: str) -> None:
    calls: list[int] = []
    assert _tenant_names(store, calls) == []
    writer = multiprocessing.get_context("spawn").Process(target=_create_tenant, args=(sqlite_url, "globex"))
    writer.start()
    writer.join(60)
    assert writer.exitcode == 0
    assert _tenant_names(store, calls) == ["globex"]
    assert len(calls) == 2


def test_a_read_only_transaction_does_not_make_cached_reads_stale(store: Store) -> None:
    calls: list[int] = []
    _tenant_names(store, calls)
    with store.session() as s:
        tenants_repo.list_tenants(s)
    _tenant_names(store, calls)
    assert len(calls) == 1


def test_stores_without_a_cheap_change_counter_always_read(tmp_path: Path) -> None:
    memory = Store("sqlite://")
    try:
        memory.migrate()
        calls: list[int] = []
        _tenant_names(memory, calls)
        _tenant_names(memory, calls)
        assert not memory.reads.enabled
        assert len(calls) == 2
    finally:
        memory.dispose()
