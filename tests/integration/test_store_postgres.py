"""The system store against a real PostgreSQL (``TSUNAMI_TEST_POSTGRES_URL``).

Each run works in databases of its own (``tsunami_test_<random>``), created through the server's
``postgres`` database and dropped afterwards. The URL is required: these tests fail, never skip,
when it is missing, so CI cannot pass without running them.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from servicetsunami.errors import AuthError, Conflict, NotFound
from servicetsunami.security import secrets as keyring
from servicetsunami.security.auth import authenticate_api_key, clear_key_cache, hash_api_key
from servicetsunami.services.identity import tenants
from servicetsunami.services.identity.secrets import rotate_secrets
from servicetsunami.settings import Settings
from servicetsunami.store.db import Store
from servicetsunami.store.models import ApiKey, Base, Run, new_id, utcnow
from servicetsunami.store.repositories import connections as connections_repo
from servicetsunami.store.repositories import datasets as datasets_repo
from servicetsunami.store.repositories import pii_flags as flags_repo
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.store.repositories import syncs as syncs_repo
from servicetsunami.store.repositories import tenants as tenants_repo
from servicetsunami.tenancy import Role

pytestmark = pytest.mark.postgres

ENV = "TSUNAMI_TEST_POSTGRES_URL"
TABLES = {"tenants", "api_keys", "datasets", "audit_log", "connections", "syncs", "runs", "alembic_version"}
PREFIX = "tenant_"


def _server_url() -> str:
    url = os.environ.get(ENV, "")
    if not url:
        pytest.fail(
            f"{ENV} is not set: these tests need a PostgreSQL server, "
            f"e.g. {ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
            pytrace=False,
        )
    return url


@contextmanager
def _database(options: str = "") -> Iterator[str]:
    """A new, empty database on the test server (``options`` added to its CREATE DATABASE); dropped
    (with its connections) afterwards."""
    server = make_url(_server_url())
    name = f"tsunami_test_{secrets.token_hex(4)}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" {options}'.rstrip())
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture(scope="module")
def migrated_url() -> Iterator[str]:
    with _database() as url:
        store = Store(url)
        store.migrate()
        store.dispose()
        yield url


@pytest.fixture
def fresh_url() -> Iterator[str]:
    with _database() as url:
        yield url


@pytest.fixture
def store(migrated_url: str) -> Iterator[Store]:
    """The module's migrated database, emptied before each test."""
    store = Store(migrated_url)
    with store.session() as s:
        s.execute(text("TRUNCATE audit_log, datasets, api_keys, tenants CASCADE"))
    clear_key_cache()
    yield store
    clear_key_cache()
    store.dispose()


def _in_threads(count: int, work: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(count)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(work(i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


# --- migrations ------------------------------------------------------------------------------


def test_migrate_creates_every_table_and_a_second_run_is_a_no_op(fresh_url: str) -> None:
    store = Store(fresh_url)
    try:
        assert store.current_revision() is None
        store.migrate()
        assert set(inspect(store.engine).get_table_names()) >= TABLES
        store.migrate()
        assert store.current_revision() == Store.head_revision()
        assert store.ping() >= 0.0
    finally:
        store.dispose()


def test_models_match_the_migrations_on_postgres(store: Store) -> None:
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_two_threads_migrating_at_once_both_succeed_on_postgres(fresh_url: str) -> None:
    stores = [Store(fresh_url), Store(fresh_url)]
    try:
        _, errors = _in_threads(2, lambda i: stores[i].migrate())
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


def test_several_processes_migrating_at_once_all_succeed_on_postgres(fresh_url: str) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE_IN_CHILD, fresh_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
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


# --- tenants and keys ------------------------------------------------------------------------


def _key(store: Store, slug: str = "acme", role: str = "engineer") -> tenants.CreatedKey:
    if slug not in {t.slug for t in tenants.list_tenants(store)}:
        tenants.create_tenant(store, slug)
    return tenants.create_api_key(store, tenant_slug=slug, name=f"{slug}-{role}", role=role)


def test_only_the_hash_of_a_key_is_stored_on_postgres(store: Store) -> None:
    created = _key(store)
    authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    secret = created.plaintext.split("_", 2)[2]
    with store.engine.connect() as conn:
        for table in TABLES:
            for (row_text,) in conn.execute(text(f'SELECT t::text FROM "{table}" AS t')):
                assert secret not in row_text, table
        assert conn.execute(select(ApiKey.key_hash)).scalar_one() == hash_api_key(created.plaintext)


def test_authenticate_returns_the_keys_tenant_and_role_on_postgres(store: Store) -> None:
    created = _key(store, "acme", "analyst")
    principal = authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    assert (principal.tenant_slug, principal.catalog, principal.role) == ("acme", "tenant_acme", Role.ANALYST)
    assert principal.subject == f"key:{created.prefix}"
    last_used = tenants.list_api_keys(store, tenant_slug="acme")[0].last_used_at
    assert last_used is not None and last_used.utcoffset() == timedelta(0)


def test_a_wrong_secret_with_the_right_prefix_is_refused_on_postgres(store: Store) -> None:
    created = _key(store)
    with pytest.raises(AuthError):
        authenticate_api_key(store, f"tsk_{created.prefix}_" + "x" * 43, catalog_prefix=PREFIX)


def test_a_revoked_key_is_refused_even_after_a_cached_success_on_postgres(store: Store) -> None:
    created = _key(store)
    authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    tenants.revoke_api_key(store, tenant_slug="acme", key_id_or_prefix=created.id)
    with pytest.raises(AuthError):
        authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)


def test_keys_are_listed_per_tenant_and_another_tenants_key_is_not_found(store: Store) -> None:
    mine = _key(store, "acme")
    theirs = _key(store, "globex")
    assert [k.id for k in tenants.list_api_keys(store, tenant_slug="acme")] == [mine.id]
    with pytest.raises(NotFound):
        tenants.revoke_api_key(store, tenant_slug="acme", key_id_or_prefix=theirs.id)
    assert authenticate_api_key(store, theirs.plaintext, catalog_prefix=PREFIX).tenant_slug == "globex"


def test_a_taken_slug_is_a_conflict_on_postgres(store: Store) -> None:
    tenants.create_tenant(store, "acme")
    with pytest.raises(Conflict):
        tenants.create_tenant(store, "acme")


def test_bootstrap_returns_a_key_only_the_first_time_on_postgres(store: Store) -> None:
    first = tenants.bootstrap(store, default_tenant="default")
    assert first is not None and first.role is Role.ADMIN
    assert tenants.bootstrap(store, default_tenant="default") is None


def test_concurrent_bootstraps_create_one_key_on_postgres(store: Store, migrated_url: str) -> None:
    stores = [Store(migrated_url) for _ in range(4)]
    try:
        results, errors = _in_threads(4, lambda i: tenants.bootstrap(stores[i], default_tenant="default"))
    finally:
        for s in stores:
            s.dispose()
    assert errors == []
    assert len([r for r in results if r is not None]) == 1
    assert len(tenants.list_api_keys(store, tenant_slug="default")) == 1


# --- datasets --------------------------------------------------------------------------------


def _dataset_fields(rows: int) -> dict[str, Any]:
    return {
        "table_schema": "bronze",
        "table_name": "orders",
        "source_name": "orders.csv",
        "landing_path": "landing/orders.csv",
        "format": "csv",
        "rows": rows,
        "table_version": rows,
        "meta": {"columns": {"order_id": "Order ID"}},
    }


def test_concurrent_upserts_of_one_dataset_leave_one_row_on_postgres(store: Store, migrated_url: str) -> None:
    tenants.create_tenant(store, "acme")
    with store.session() as s:
        tenant_id = tenants_repo.get_tenant_by_slug(s, "acme").id
    stores = [Store(migrated_url) for _ in range(4)]

    def upsert(i: int) -> str:
        with stores[i].session() as s:
            return datasets_repo.upsert_dataset(s, tenant_id=tenant_id, name="orders", **_dataset_fields(i)).id

    try:
        results, errors = _in_threads(4, upsert)
    finally:
        for st in stores:
            st.dispose()
    assert errors == []
    assert len(set(results)) == 1
    with store.session() as s:
        [dataset] = datasets_repo.list_datasets(s, tenant_id=tenant_id)
        assert dataset.meta == {"columns": {"order_id": "Order ID"}}
        assert datasets_repo.delete_dataset(s, "orders", tenant_id=tenant_id)


def test_concurrent_records_of_one_tables_flags_keep_every_column_on_postgres(store: Store, migrated_url: str) -> None:
    tenants.create_tenant(store, "acme")
    with store.session() as s:
        tenant_id = tenants_repo.get_tenant_by_slug(s, "acme").id
    stores = [Store(migrated_url) for _ in range(4)]

    def record(i: int) -> tuple[int, dict[str, str]]:
        with stores[i].session() as s:
            return i, flags_repo.merge_flags(s, tenant_id, "silver.people", {f"col{i}": "email"})

    try:
        results, errors = _in_threads(4, record)
    finally:
        for st in stores:
            st.dispose()
    assert errors == []
    assert all(f"col{i}" in flags for i, flags in results)  # each record answers with what it added
    with store.session() as s:
        assert flags_repo.flags_of(s, tenant_id, "silver.people") == ({f"col{i}": "email" for i in range(4)}, False)


# --- connections, syncs and runs -------------------------------------------------------------

CONNECTION_CONFIG = {"host": "db.example.com", "port": 5432, "database": "app", "user": "reader"}


def _tenant_id(store: Store, slug: str) -> str:
    tenants.create_tenant(store, slug)
    with store.session() as s:
        return tenants_repo.get_tenant_by_slug(s, slug).id


def _connection(store: Store, tenant_id: str, name: str = "warehouse", **kwargs: Any) -> str:
    with store.session() as s:
        return connections_repo.create_connection(
            s, tenant_id=tenant_id, name=name, kind="postgres", config=CONNECTION_CONFIG, **kwargs
        ).id


def _sync(store: Store, tenant_id: str, connection_id: str) -> str:
    with store.session() as s:
        return syncs_repo.upsert_sync(
            s,
            tenant_id=tenant_id,
            connection_id=connection_id,
            source_table="public.customers",
            target_table="bronze.customers",
            mode="incremental_merge",
            cursor_column="updated_at",
            primary_key=["id"],
        ).id


def test_the_migration_head_has_the_connection_and_sync_tables_on_postgres(store: Store) -> None:
    inspector = inspect(store.engine)
    assert {"connections", "syncs", "runs"} <= set(inspector.get_table_names())
    assert {c["name"]: str(c["type"]) for c in inspector.get_columns("connections")}["secret_ciphertext"] == "BYTEA"
    assert store.current_revision() == Store.head_revision()


def test_connections_are_tenant_scoped_on_postgres(store: Store) -> None:
    acme, globex = _tenant_id(store, "acme"), _tenant_id(store, "globex")
    theirs = _connection(store, globex)
    mine = _connection(store, acme)
    with pytest.raises(Conflict):
        _connection(store, acme)
    with store.session() as s:
        assert [c.id for c in connections_repo.list_connections(s, tenant_id=acme)] == [mine]
        with pytest.raises(NotFound):
            connections_repo.get_connection(s, theirs, tenant_id=acme)
        with pytest.raises(NotFound):
            connections_repo.delete_connection(s, theirs, tenant_id=acme)


def test_a_ciphertext_without_its_key_id_is_refused_by_postgres(store: Store) -> None:
    connection_id = _connection(store, _tenant_id(store, "acme"))
    with pytest.raises(Conflict), store.session() as s:
        s.execute(text("UPDATE connections SET secret_kid = 'k1' WHERE id = :id"), {"id": connection_id})


def test_deleting_a_connection_cascades_to_syncs_and_runs_on_postgres(store: Store) -> None:
    acme = _tenant_id(store, "acme")
    connection_id = _connection(store, acme)
    sync_id = _sync(store, acme, connection_id)
    with store.session() as s:
        run_id = _sync_run(s, acme, sync_id)
        connections_repo.delete_connection(s, connection_id, tenant_id=acme)
    with store.session() as s:
        assert syncs_repo.list_syncs(s, tenant_id=acme) == []
        with pytest.raises(NotFound):
            runs_repo.get_run(s, run_id, tenant_id=acme)


def test_concurrent_upserts_of_one_sync_leave_one_row_on_postgres(store: Store, migrated_url: str) -> None:
    acme = _tenant_id(store, "acme")
    connection_id = _connection(store, acme)
    stores = [Store(migrated_url) for _ in range(4)]
    try:
        results, errors = _in_threads(4, lambda i: _sync(stores[i], acme, connection_id))
    finally:
        for st in stores:
            st.dispose()
    assert errors == []
    assert len(set(results)) == 1
    with store.session() as s:
        [(sync, last_run)] = syncs_repo.list_syncs(s, tenant_id=acme)
        assert (sync.primary_key, last_run) == (["id"], None)


def _sync_run(s: Any, tenant_id: str, sync_id: str) -> str:
    run = runs_repo.create_run(
        s, tenant_id=tenant_id, kind="sync", subject="t", role="admin", params={}, resource_id=sync_id
    )
    return run.id


def test_runs_record_progress_and_stale_ones_are_failed_on_postgres(store: Store) -> None:
    acme = _tenant_id(store, "acme")
    sync_id = _sync(store, acme, _connection(store, acme))
    with store.session() as s:
        dead, alive = _sync_run(s, acme, sync_id), _sync_run(s, acme, sync_id)
    with store.session(write_lock=True) as s:
        for worker in ("w1", "w2"):
            assert runs_repo.claim_next(s, kinds=["sync"], worker=worker) is not None
    with store.session() as s:
        s.execute(update(Run).where(Run.id == dead).values(heartbeat_at=utcnow() - timedelta(hours=1)))
        assert runs_repo.set_progress(s, alive, progress={"done": 10, "rows": 10}, worker="w2")
    with store.session() as s:
        assert runs_repo.sweep(s, stale_before=utcnow() - timedelta(minutes=10), requeue_kinds=[]) == [(dead, "failed")]
    with store.session() as s:
        found = {r.id: r for r in runs_repo.list_runs(s, tenant_id=acme, resource_id=sync_id)}
        assert (found[dead].state, found[dead].error_code, found[alive].state) == ("failed", "worker_lost", "running")
        assert found[alive].progress == {"done": 10, "rows": 10}


def test_rotation_re_encrypts_every_secret_on_postgres(store: Store, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", master_key=None, _env_file=None)  # type: ignore[call-arg]
    ring = keyring.load_keyring(settings)
    expected: dict[str, bytes] = {}
    for slug in ("acme", "globex"):
        tenant_id = _tenant_id(store, slug)
        connection_id = new_id()
        expected[connection_id] = f"pw-{slug}".encode()
        blob = ring.encrypt(expected[connection_id], aad=keyring.secret_aad(tenant_id, connection_id))
        _connection(store, tenant_id, secret_ciphertext=blob, secret_kid=ring.active_kid, connection_id=connection_id)
    report = rotate_secrets(store, settings)
    assert (report.active_kid, report.rotated, report.remaining, report.failed) == ("k2", 2, 0, [])
    with store.session() as s:
        stored = connections_repo.list_connection_secrets(s)
    assert {item.kid for item in stored} == {"k2"}
    assert {
        item.id: ring.decrypt(item.ciphertext, aad=keyring.secret_aad(item.tenant_id, item.id)) for item in stored
    } == expected


def test_a_session_still_open_when_the_store_is_disposed_closes_its_connection_when_it_ends(
    migrated_url: str,
) -> None:
    """At shutdown a run's thread may still be inside a session: the connection it hands back then
    is closed, not kept in a pool nobody will close (the driver warns when one is collected open)."""
    store = Store(migrated_url)
    with store.session() as session:
        session.execute(text("SELECT 1"))
        raw = session.connection().connection.driver_connection
        store.dispose()
    assert raw is not None and raw.closed
    with store.session() as session:  # a late caller still gets a connection
        assert session.execute(text("SELECT 1")).scalar_one() == 1
        late = session.connection().connection.driver_connection
    assert late is not None and late.closed
