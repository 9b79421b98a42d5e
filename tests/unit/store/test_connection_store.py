"""Connections and syncs in the system store, on a real SQLite file: tenant isolation, cascades to
the syncs' runs, and credentials that exist only as ciphertext (runs themselves:
tests/integration/runs/)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, text

from servicetsunami.errors import Conflict, InvalidInput, NotFound
from servicetsunami.security.secrets import KeyRing, secret_aad
from servicetsunami.store.db import Store
from servicetsunami.store.migrations import alembic_config
from servicetsunami.store.models import new_id, utcnow
from servicetsunami.store.repositories import connections as connections_repo
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.store.repositories import syncs as syncs_repo
from servicetsunami.store.repositories import tenants as tenants_repo

NEW_TABLES = {"connections", "syncs", "runs"}
CONFIG: dict[str, Any] = {"host": "db.example.com", "port": 5432, "database": "app", "user": "reader"}
RING = KeyRing({"k1": bytes(range(32))}, active="k1")


def _tenant(store: Store, slug: str) -> str:
    with store.session() as s:
        return tenants_repo.create_tenant(s, slug=slug, name=slug).id


def _connection(store: Store, tenant_id: str, name: str = "warehouse", **kwargs: Any) -> str:
    with store.session() as s:
        return connections_repo.create_connection(
            s, tenant_id=tenant_id, name=name, kind="postgres", config=CONFIG, **kwargs
        ).id


def _sync(store: Store, tenant_id: str, connection_id: str, target: str = "bronze.customers", **kwargs: Any) -> str:
    fields: dict[str, Any] = {"source_table": "public.customers", "mode": "full_refresh"}
    fields.update(kwargs)
    with store.session() as s:
        return syncs_repo.upsert_sync(
            s, tenant_id=tenant_id, connection_id=connection_id, target_table=target, **fields
        ).id


def _run(store: Store, tenant_id: str, sync_id: str) -> str:
    with store.session() as s:
        run = runs_repo.create_run(
            s, tenant_id=tenant_id, kind="sync", subject="t", role="admin", params={}, resource_id=sync_id
        )
        syncs_repo.update_sync_state(s, sync_id, tenant_id=tenant_id, last_run_id=run.id)
        return run.id


# --- schema ----------------------------------------------------------------------------------


def test_the_migration_head_has_the_connection_and_sync_tables(store: Store) -> None:
    inspector = inspect(store.engine)
    assert set(inspector.get_table_names()) >= NEW_TABLES
    for table in NEW_TABLES:
        assert "metadata" in {c["name"] for c in inspector.get_columns(table)}, table
    assert store.current_revision() == Store.head_revision()


def test_downgrading_to_0001_drops_only_the_new_tables_and_upgrading_restores_them(
    store: Store, sqlite_url: str
) -> None:
    _tenant(store, "acme")
    command.downgrade(alembic_config(sqlite_url), "0001")
    tables = set(inspect(store.engine).get_table_names())
    assert not tables & NEW_TABLES and "tenants" in tables
    store.migrate()
    assert set(inspect(store.engine).get_table_names()) >= NEW_TABLES
    with store.session() as s:
        assert [t.slug for t in tenants_repo.list_tenants(s)] == ["acme"]


# --- connections -----------------------------------------------------------------------------


def test_a_connection_is_created_found_and_listed_within_its_tenant(store: Store) -> None:
    acme = _tenant(store, "acme")
    first = _connection(store, acme, "warehouse")
    second = _connection(store, acme, "crm")
    with store.session() as s:
        found = connections_repo.get_connection(s, first, tenant_id=acme)
        assert (found.name, found.kind, found.config) == ("warehouse", "postgres", CONFIG)
        assert found.secret_ciphertext is None and found.secret_kid is None
        assert found.created_at.utcoffset() == timedelta(0)
        assert connections_repo.get_connection_by_name(s, "crm", tenant_id=acme).id == second
        assert [c.name for c in connections_repo.list_connections(s, tenant_id=acme)] == ["crm", "warehouse"]


def test_a_connection_name_is_unique_per_tenant_only(store: Store) -> None:
    acme, globex = _tenant(store, "acme"), _tenant(store, "globex")
    _connection(store, acme, "warehouse")
    with pytest.raises(Conflict):
        _connection(store, acme, "warehouse")
    _connection(store, globex, "warehouse")


def test_another_tenants_connection_is_not_found_for_every_operation(store: Store) -> None:
    acme, globex = _tenant(store, "acme"), _tenant(store, "globex")
    theirs = _connection(store, globex, "warehouse")
    with store.session() as s:
        assert connections_repo.list_connections(s, tenant_id=acme) == []
        assert connections_repo.find_connection_by_name(s, "warehouse", tenant_id=acme) is None
        with pytest.raises(NotFound):
            connections_repo.get_connection(s, theirs, tenant_id=acme)
        with pytest.raises(NotFound):
            connections_repo.update_connection(s, theirs, tenant_id=acme, name="mine")
        with pytest.raises(NotFound):
            connections_repo.set_connection_secret(s, theirs, tenant_id=acme, ciphertext=b"x", kid="k1")
        with pytest.raises(NotFound):
            connections_repo.record_connection_test(s, theirs, tenant_id=acme, ok=True)
        with pytest.raises(NotFound):
            connections_repo.delete_connection(s, theirs, tenant_id=acme)
        with pytest.raises(NotFound):
            syncs_repo.upsert_sync(
                s,
                tenant_id=acme,
                connection_id=theirs,
                source_table="public.customers",
                target_table="bronze.customers",
                mode="full_refresh",
            )
    with store.session() as s:
        assert connections_repo.get_connection(s, theirs, tenant_id=globex).name == "warehouse"


@pytest.mark.parametrize("key", ["password", "PASSWORD", "token", "api_key", "secret"])
def test_a_config_holding_a_secret_is_refused(store: Store, key: str) -> None:
    acme = _tenant(store, "acme")
    with pytest.raises(InvalidInput), store.session() as s:
        connections_repo.create_connection(
            s, tenant_id=acme, name="w", kind="postgres", config={**CONFIG, key: "hunter2"}
        )


def test_a_ciphertext_without_its_key_id_is_refused_by_the_code_and_the_database(store: Store) -> None:
    acme = _tenant(store, "acme")
    with pytest.raises(InvalidInput):
        _connection(store, acme, secret_ciphertext=b"x", secret_kid=None)
    connection_id = _connection(store, acme)
    with pytest.raises(Conflict), store.session() as s:
        s.execute(text("UPDATE connections SET secret_kid = 'k1' WHERE id = :id"), {"id": connection_id})


def test_the_credential_is_stored_only_as_ciphertext_bound_to_its_row(store: Store) -> None:
    acme = _tenant(store, "acme")
    connection_id = new_id()
    blob = RING.encrypt(b"hunter2-password", aad=secret_aad(acme, connection_id))
    _connection(store, acme, secret_ciphertext=blob, secret_kid="k1", connection_id=connection_id)
    with store.engine.connect() as conn:
        for row in conn.execute(text("SELECT * FROM connections")):
            assert b"hunter2" not in repr(tuple(row)).encode()
            assert not any(isinstance(v, bytes) and b"hunter2" in v for v in row)
    with store.session() as s:
        stored = connections_repo.get_connection(s, connection_id, tenant_id=acme)
        assert stored.secret_ciphertext is not None
        assert RING.decrypt(stored.secret_ciphertext, aad=secret_aad(acme, connection_id)) == b"hunter2-password"


def test_secret_updates_and_test_results_are_kept(store: Store) -> None:
    acme = _tenant(store, "acme")
    connection_id = _connection(store, acme)
    tested_at = utcnow()
    with store.session() as s:
        connections_repo.set_connection_secret(s, connection_id, tenant_id=acme, ciphertext=b"\x01blob", kid="k1")
        connections_repo.record_connection_test(
            s, connection_id, tenant_id=acme, ok=False, detail="password authentication failed", tested_at=tested_at
        )
    with store.session() as s:
        found = connections_repo.get_connection(s, connection_id, tenant_id=acme)
        assert (found.secret_ciphertext, found.secret_kid) == (b"\x01blob", "k1")
        assert (found.last_test_ok, found.last_test_detail) == (False, "password authentication failed")
        assert found.last_tested_at == tested_at
        connections_repo.set_connection_secret(s, connection_id, tenant_id=acme, ciphertext=None, kid=None)
    with store.session() as s:
        assert connections_repo.get_connection(s, connection_id, tenant_id=acme).secret_kid is None


def test_renaming_a_connection_onto_a_taken_name_is_a_conflict(store: Store) -> None:
    acme = _tenant(store, "acme")
    first = _connection(store, acme, "one")
    _connection(store, acme, "two")
    with pytest.raises(Conflict), store.session() as s:
        connections_repo.update_connection(s, first, tenant_id=acme, name="two")
    with store.session() as s:
        updated = connections_repo.update_connection(
            s, first, tenant_id=acme, name="uno", config={**CONFIG, "port": 6543}
        )
        assert (updated.name, updated.config["port"]) == ("uno", 6543)


def test_secrets_are_listed_across_tenants_for_rotation_skipping_the_active_kid(store: Store) -> None:
    acme, globex = _tenant(store, "acme"), _tenant(store, "globex")
    old = _connection(store, acme, "a", secret_ciphertext=b"\x01old", secret_kid="k1")
    new = _connection(store, globex, "b", secret_ciphertext=b"\x01new", secret_kid="k2")
    _connection(store, globex, "no-secret")
    with store.session() as s:
        everything = {item.id: item for item in connections_repo.list_connection_secrets(s)}
        assert set(everything) == {old, new}
        assert everything[old] == connections_repo.ConnectionSecret(
            id=old, tenant_id=acme, kid="k1", ciphertext=b"\x01old"
        )
        assert [item.id for item in connections_repo.list_connection_secrets(s, exclude_kid="k2")] == [old]
        assert connections_repo.count_connection_secrets_by_kid(s) == {"k1": 1, "k2": 1}


def test_a_re_encrypted_secret_replaces_only_the_ciphertext_it_was_made_from(store: Store) -> None:
    acme = _tenant(store, "acme")
    connection_id = _connection(store, acme, secret_ciphertext=b"\x01v1", secret_kid="k1")
    with store.session() as s:
        before = connections_repo.get_connection(s, connection_id, tenant_id=acme).updated_at
        assert not connections_repo.replace_connection_secret(
            s, connection_id, old_ciphertext=b"\x01other", ciphertext=b"\x01v2", kid="k2"
        )
        assert connections_repo.replace_connection_secret(
            s, connection_id, old_ciphertext=b"\x01v1", ciphertext=b"\x01v2", kid="k2"
        )
    with store.session() as s:
        found = connections_repo.get_connection(s, connection_id, tenant_id=acme)
        assert (found.secret_ciphertext, found.secret_kid, found.updated_at) == (b"\x01v2", "k2", before)


def test_deleting_a_connection_deletes_its_syncs_and_runs(store: Store) -> None:
    acme = _tenant(store, "acme")
    connection_id = _connection(store, acme)
    sync_id = _sync(store, acme, connection_id)
    run_id = _run(store, acme, sync_id)
    with store.session() as s:
        connections_repo.delete_connection(s, connection_id, tenant_id=acme)
    with store.session() as s:
        assert connections_repo.list_connections(s, tenant_id=acme) == []
        assert syncs_repo.list_syncs(s, tenant_id=acme) == []
        with pytest.raises(NotFound):
            runs_repo.get_run(s, run_id, tenant_id=acme)


def test_deleting_a_tenant_deletes_its_connections_syncs_and_runs(store: Store) -> None:
    acme = _tenant(store, "acme")
    _run(store, acme, _sync(store, acme, _connection(store, acme)))
    with store.session() as s:
        s.delete(tenants_repo.get_tenant(s, acme))
    with store.engine.connect() as conn:
        for table in NEW_TABLES:
            assert conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one() == 0, table


# --- syncs -----------------------------------------------------------------------------------


def test_upserting_a_sync_for_the_same_target_updates_it_in_place_and_keeps_its_state(store: Store) -> None:
    acme = _tenant(store, "acme")
    connection_id = _connection(store, acme)
    sync_id = _sync(store, acme, connection_id, mode="incremental_append", cursor_column="updated_at")
    with store.session() as s:
        syncs_repo.update_sync_state(s, sync_id, tenant_id=acme, state={"cursor": "2025-01-01", "sequence": 3})
    again = _sync(store, acme, connection_id, mode="incremental_merge", cursor_column="updated_at", primary_key=["id"])
    assert again == sync_id
    with store.session() as s:
        sync = syncs_repo.get_sync(s, sync_id, tenant_id=acme)
        assert (sync.mode, sync.primary_key, sync.state) == (
            "incremental_merge",
            ["id"],
            {"cursor": "2025-01-01", "sequence": 3},
        )
        assert syncs_repo.find_sync_by_target(s, "bronze.customers", tenant_id=acme) is not None


def test_two_tenants_may_sync_into_the_same_target_name(store: Store) -> None:
    acme, globex = _tenant(store, "acme"), _tenant(store, "globex")
    mine = _sync(store, acme, _connection(store, acme))
    theirs = _sync(store, globex, _connection(store, globex))
    assert mine != theirs
    with store.session() as s:
        with pytest.raises(NotFound):
            syncs_repo.get_sync(s, theirs, tenant_id=acme)
        assert [sync.id for sync, _ in syncs_repo.list_syncs(s, tenant_id=acme)] == [mine]


def test_an_unknown_sync_mode_is_invalid_input(store: Store) -> None:
    acme = _tenant(store, "acme")
    with pytest.raises(InvalidInput):
        _sync(store, acme, _connection(store, acme), mode="upsert_everything")


def test_syncs_are_listed_with_their_latest_run(store: Store) -> None:
    acme = _tenant(store, "acme")
    connection_id = _connection(store, acme)
    never_run = _sync(store, acme, connection_id, target="bronze.accounts")
    ran = _sync(store, acme, connection_id, target="bronze.customers")
    _run(store, acme, ran)
    latest = _run(store, acme, ran)
    with store.session() as s:
        listed = [(sync.id, run.id if run else None) for sync, run in syncs_repo.list_syncs(s, tenant_id=acme)]
        assert listed == [(never_run, None), (ran, latest)]
        assert syncs_repo.list_syncs(s, tenant_id=acme, connection_id=new_id()) == []
