"""Repository functions: tenants, datasets and the audit log, on a real SQLite file."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from servicetsunami.errors import Conflict, NotFound, StoreError
from servicetsunami.store.db import Store
from servicetsunami.store.models import Tenant
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import datasets as datasets_repo
from servicetsunami.store.repositories import tenants as tenants_repo


def _tenant(store: Store, slug: str) -> str:
    with store.session() as s:
        return tenants_repo.create_tenant(s, slug=slug, name=slug.title()).id


def _dataset_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "table_schema": "bronze",
        "table_name": "orders",
        "source_name": "Orders 2025.csv",
        "landing_path": "landing/orders.csv",
        "format": "csv",
        "rows": 10,
        "table_version": 0,
        "size_bytes": 1234,
        "meta": {"columns": {"order_id": "Order ID"}},
    }
    fields.update(overrides)
    return fields


def test_tenant_is_found_by_slug_and_id(store: Store) -> None:
    tenant_id = _tenant(store, "acme")
    with store.session() as s:
        assert tenants_repo.get_tenant_by_slug(s, "acme").id == tenant_id
        assert tenants_repo.get_tenant(s, tenant_id).slug == "acme"


def test_missing_tenant_is_not_found(store: Store) -> None:
    with store.session() as s:
        with pytest.raises(NotFound):
            tenants_repo.get_tenant_by_slug(s, "nobody")
        with pytest.raises(NotFound):
            tenants_repo.get_tenant(s, "no-such-id")


def test_a_taken_slug_is_a_conflict(store: Store) -> None:
    _tenant(store, "acme")
    with pytest.raises(Conflict), store.session() as s:
        tenants_repo.create_tenant(s, slug="acme", name="Again")


def test_has_tenants_is_false_only_on_an_empty_store(store: Store) -> None:
    with store.session() as s:
        assert not tenants_repo.has_tenants(s)
    _tenant(store, "acme")
    with store.session() as s:
        assert tenants_repo.has_tenants(s)


def test_timestamps_come_back_aware_in_utc(store: Store) -> None:
    _tenant(store, "acme")
    with store.session() as s:
        created = tenants_repo.get_tenant_by_slug(s, "acme").created_at
    assert created.tzinfo is not None
    assert created.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)


def test_timestamps_in_other_zones_are_stored_as_the_same_instant(store: Store) -> None:
    tenant_id = _tenant(store, "acme")
    plus_two = datetime(2025, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    with store.session() as s:
        tenants_repo.get_tenant(s, tenant_id).created_at = plus_two
    with store.session() as s:
        assert tenants_repo.get_tenant(s, tenant_id).created_at == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def test_naive_datetimes_are_refused(store: Store) -> None:
    tenant_id = _tenant(store, "acme")
    with pytest.raises(StoreError) as info, store.session() as s:
        tenants_repo.get_tenant(s, tenant_id).created_at = datetime(2025, 1, 1)  # the point of the test
    assert not info.value.is_transient
    assert "naive datetime" in str(info.value.__cause__)


def test_metadata_json_round_trips_and_tracks_top_level_changes(store: Store) -> None:
    with store.session() as s:
        tenant = tenants_repo.create_tenant(s, slug="acme", name="Acme", meta={"plan": "free"})
    with store.session() as s:
        t = s.get(Tenant, tenant.id)
        assert t is not None
        t.meta["plan"] = "pro"
    with store.session() as s:
        t = s.get(Tenant, tenant.id)
        assert t is not None and t.meta == {"plan": "pro"}


def test_upsert_creates_then_updates_a_dataset(store: Store) -> None:
    tenant_id = _tenant(store, "acme")
    with store.session() as s:
        first = datasets_repo.upsert_dataset(s, tenant_id=tenant_id, name="orders", **_dataset_fields())
    with store.session() as s:
        second = datasets_repo.upsert_dataset(
            s,
            tenant_id=tenant_id,
            name="orders",
            **_dataset_fields(rows=25, table_version=1),
        )
    assert second.id == first.id
    with store.session() as s:
        got = datasets_repo.get_dataset(s, "orders", tenant_id=tenant_id)
        assert (got.rows, got.table_version, got.meta) == (25, 1, {"columns": {"order_id": "Order ID"}})
        assert got.updated_at >= got.created_at


def test_datasets_are_per_tenant(store: Store) -> None:
    acme, globex = _tenant(store, "acme"), _tenant(store, "globex")
    with store.session() as s:
        datasets_repo.upsert_dataset(s, tenant_id=acme, name="orders", **_dataset_fields())
        datasets_repo.upsert_dataset(s, tenant_id=globex, name="orders", **_dataset_fields(rows=1))
        datasets_repo.upsert_dataset(s, tenant_id=acme, name="customers", **_dataset_fields())
    with store.session() as s:
        assert [d.name for d in datasets_repo.list_datasets(s, tenant_id=acme)] == ["customers", "orders"]
        assert [d.rows for d in datasets_repo.list_datasets(s, tenant_id=globex)] == [1]
        with pytest.raises(NotFound):
            datasets_repo.get_dataset(s, "customers", tenant_id=globex)


def test_deleting_a_dataset_reports_whether_it_existed(store: Store) -> None:
    tenant_id = _tenant(store, "acme")
    with store.session() as s:
        datasets_repo.upsert_dataset(s, tenant_id=tenant_id, name="orders", **_dataset_fields())
    with store.session() as s:
        assert datasets_repo.delete_dataset(s, "orders", tenant_id=tenant_id) is True
        assert datasets_repo.delete_dataset(s, "orders", tenant_id=tenant_id) is False
        assert datasets_repo.find_dataset(s, "orders", tenant_id=tenant_id) is None


def test_concurrent_upserts_of_one_dataset_leave_one_row(sqlite_url: str, store: Store) -> None:
    tenant_id = _tenant(store, "acme")
    stores = [Store(sqlite_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def run(i: int, st: Store) -> None:
        try:
            barrier.wait(timeout=10)
            with st.session(write_lock=True) as s:
                datasets_repo.upsert_dataset(s, tenant_id=tenant_id, name="orders", **_dataset_fields(rows=i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, st)) for i, st in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for st in stores:
        st.dispose()
    assert errors == []
    with store.session() as s:
        assert len(datasets_repo.list_datasets(s, tenant_id=tenant_id)) == 1


def test_a_dataset_of_an_unknown_tenant_is_refused(store: Store) -> None:
    with pytest.raises(Conflict), store.session() as s:
        datasets_repo.upsert_dataset(s, tenant_id="no-such-tenant", name="orders", **_dataset_fields())


def test_audit_entries_are_listed_newest_first_per_tenant(store: Store) -> None:
    acme, globex = _tenant(store, "acme"), _tenant(store, "globex")
    with store.session() as s:
        audit_repo.record_audit(s, action="table.create", subject="key:aaaa", tenant_id=acme, target="bronze.a")
        audit_repo.record_audit(s, action="table.drop", subject="key:aaaa", tenant_id=acme, target="bronze.a")
        audit_repo.record_audit(s, action="table.create", subject="key:bbbb", tenant_id=globex)
        audit_repo.record_audit(s, action="server.start", subject="system")
    with store.session() as s:
        actions = [e.action for e in audit_repo.list_audit(s, tenant_id=acme)]
        assert sorted(actions) == ["table.create", "table.drop"]
        assert len(audit_repo.list_audit(s)) == 4
