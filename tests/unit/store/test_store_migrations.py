"""The store opens, migrates (also concurrently), reports its health and translates errors."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from servicetsunami.errors import Conflict, StoreError
from servicetsunami.store.db import Store
from servicetsunami.store.migrations import alembic_config
from servicetsunami.store.models import Base
from servicetsunami.store.repositories import pii_flags as flags_repo
from servicetsunami.store.repositories import tenants as tenants_repo

TABLES = {"tenants", "api_keys", "datasets", "audit_log", "alembic_version"}


def test_migrate_creates_every_table(store: Store) -> None:
    assert set(inspect(store.engine).get_table_names()) >= TABLES
    assert store.current_revision() == Store.head_revision()


def test_every_table_has_a_json_metadata_column(store: Store) -> None:
    inspector = inspect(store.engine)
    for table in TABLES - {"alembic_version"}:
        assert "metadata" in {c["name"] for c in inspector.get_columns(table)}, table


def test_migrating_twice_is_a_no_op_and_keeps_the_data(store: Store) -> None:
    with store.session() as s:
        tenants_repo.create_tenant(s, slug="acme", name="Acme")
    store.migrate()
    assert store.current_revision() == Store.head_revision()
    with store.session() as s:
        assert [t.slug for t in tenants_repo.list_tenants(s)] == ["acme"]


def test_models_match_the_migrations(store: Store) -> None:
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_two_threads_migrating_at_once_both_succeed(sqlite_url: str) -> None:
    stores = [Store(sqlite_url), Store(sqlite_url)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def run(s: Store) -> None:
        try:
            barrier.wait(timeout=10)
            s.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        assert all(s.current_revision() == Store.head_revision() for s in stores)
    finally:
        for s in stores:
            s.dispose()


_MIGRATE_IN_CHILD = """
import sys
from servicetsunami.store.db import Store
store = Store(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
store.migrate()
print(store.current_revision(), flush=True)
store.dispose()
"""


def test_several_processes_migrating_at_once_all_succeed(sqlite_url: str) -> None:
    # Threads of one process share a process-wide lock; processes have only the database's lock.
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE_IN_CHILD, sqlite_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for child in children:  # every child has imported everything and waits for "go"
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        for child in children:  # release them all before waiting for any
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert out.strip() == Store.head_revision()


def test_sqlite_store_uses_wal_foreign_keys_and_a_busy_timeout(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


def test_store_creates_the_folder_of_its_database_file(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "tsunami.db"
    store = Store(f"sqlite:///{path}")
    try:
        store.migrate()
        assert path.is_file()
    finally:
        store.dispose()


def test_ping_returns_the_latency_of_a_real_query(store: Store) -> None:
    assert store.ping() >= 0.0


def test_ping_on_an_unopenable_database_raises_a_transient_store_error(tmp_path: Path) -> None:
    # The path is a folder, so SQLite cannot open it.
    folder = tmp_path / "not-a-file"
    folder.mkdir()
    store = Store(f"sqlite:///{folder}")
    try:
        with pytest.raises(StoreError) as info:
            store.ping()
        assert info.value.is_transient
    finally:
        store.dispose()


def test_a_bad_url_is_a_store_error() -> None:
    with pytest.raises(StoreError):
        Store("not a url at all")


def test_repr_of_a_store_hides_the_password() -> None:
    store = Store("postgresql+psycopg://user:s3cret@127.0.0.1:1/db")
    try:
        assert "s3cret" not in repr(store)
    finally:
        store.dispose()


def test_session_commits_on_success_and_rolls_back_on_error(store: Store) -> None:
    with store.session() as s:
        tenants_repo.create_tenant(s, slug="kept", name="Kept")
    with pytest.raises(RuntimeError), store.session() as s:
        tenants_repo.create_tenant(s, slug="dropped", name="Dropped")
        raise RuntimeError("boom")
    with store.session() as s:
        assert [t.slug for t in tenants_repo.list_tenants(s)] == ["kept"]


def test_an_integrity_error_comes_out_as_conflict(store: Store) -> None:
    with pytest.raises(Conflict), store.session() as s:
        s.execute(
            text(
                "INSERT INTO tenants (id, slug, name, created_at, metadata) "
                "VALUES ('1', 'dup', 'a', '2025-01-01 00:00:00', '{}'), "
                "('2', 'dup', 'b', '2025-01-01 00:00:00', '{}')"
            )
        )


def test_savepoints_roll_back_only_their_part(store: Store) -> None:
    with store.session() as s:
        tenants_repo.create_tenant(s, slug="outer", name="Outer")
        nested = s.begin_nested()
        tenants_repo.create_tenant(s, slug="inner", name="Inner")
        nested.rollback()
    with store.session() as s:
        assert [t.slug for t in tenants_repo.list_tenants(s)] == ["outer"]


def test_the_migrations_downgrade_to_nothing_and_back(store: Store, sqlite_url: str) -> None:
    command.downgrade(alembic_config(sqlite_url), "base")
    assert set(inspect(store.engine).get_table_names()) == {"alembic_version"}
    store.migrate()
    assert set(inspect(store.engine).get_table_names()) >= TABLES


def test_flags_kept_in_a_tenants_settings_move_to_rows_of_their_own_and_back(store: Store, sqlite_url: str) -> None:
    config = alembic_config(sqlite_url)
    command.downgrade(config, "0016")
    flags = {"silver.people": {"email": "email"}, "bronze.raw": {"": "pending"}}
    meta = {"settings": {"mask_pii": True, "pii_flags": flags}}
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenants (id, slug, name, created_at, metadata) VALUES ('t1', 'acme', 'Acme', :at, :meta)"
            ),
            {"at": "2026-01-01 00:00:00", "meta": json.dumps(meta)},
        )
    command.upgrade(config, "head")
    with store.session() as s:
        assert flags_repo.flags_of(s, "t1", "silver.people") == ({"email": "email"}, False)
        assert flags_repo.flags_of(s, "t1", "bronze.raw") == ({}, True)
        assert tenants_repo.tenant_settings(s, "t1") == {"mask_pii": True}
    command.downgrade(config, "0016")
    with store.engine.connect() as conn:
        assert json.loads(conn.execute(text("SELECT metadata FROM tenants")).scalar_one()) == meta
    command.upgrade(config, "head")
