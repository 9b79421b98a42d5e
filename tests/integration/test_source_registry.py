"""Connections of every registered kind go through one path: stored with their secrets encrypted,
their host vetted when opened, opened by the kind's factory. Files connections read a file of the
tenant's landing volume and sync it like a table."""

from __future__ import annotations

import io

import pytest

from servicetsunami.connectors.files.source import FileSource
from servicetsunami.connectors.postgres import PostgresSource
from servicetsunami.errors import FileLimitExceeded, InvalidInput, NotSupported, PermissionDenied
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import connections as cx
from servicetsunami.services.ingestion import syncs
from servicetsunami.store.repositories import connections as connections_repo
from servicetsunami.tenancy import LANDING_VOLUME, Principal

CSV = b"id,name,updated_at\n1,ada,2024-01-01T00:00:00Z\n2,grace,2024-01-02T00:00:00Z\n3,edsger,2024-01-03T00:00:00Z\n"


def land(svc: Services, who: Principal, path: str, data: bytes) -> None:
    svc.engine.put_file(who.catalog, "bronze", LANDING_VOLUME, path, io.BytesIO(data))


def test_a_files_connection_reads_a_landed_file_and_syncs_it_to_bronze(services: Services, acme: Principal) -> None:
    land(services, acme, "exports/people.csv", CSV)
    created = cx.create_connection(services, acme, name="exports", kind="files", config={"path": "exports/people.csv"})
    assert created.kind == "files" and created.test.ok, created.test
    assert created.config["path"] == "exports/people.csv" and not created.has_password
    tables = cx.list_source_tables(services, acme, created.id)
    assert [(t.name, [c.name for c in t.columns]) for t in tables] == [("people.csv", ["id", "name", "updated_at"])]
    run = syncs.sync_table_to_bronze(
        services, acme, created.id, "people.csv", target_table="bronze.people", wait_seconds=60
    )
    assert (run.status, run.rows, run.bronze_table) == ("succeeded", 3, "bronze.people"), run.error


def test_a_files_connection_to_a_file_that_is_not_there_fails_its_test_with_a_diagnosis(
    services: Services, acme: Principal
) -> None:
    created = cx.create_connection(services, acme, name="later", kind="files", config={"path": "exports/later.csv"})
    assert not created.test.ok and created.test.problem == "missing"


def test_a_files_connection_only_reaches_inside_the_landing_volume(services: Services, acme: Principal) -> None:
    for path in ("../../other/file.csv", "/etc/passwd", "exports/.hidden.csv"):
        with pytest.raises(InvalidInput):
            cx.create_connection(services, acme, name="escape", kind="files", config={"path": path})


def test_an_opened_files_connection_is_the_file_source_of_that_tenants_volume(
    services: Services, acme: Principal, globex: Principal
) -> None:
    land(services, acme, "a.csv", CSV)
    created = cx.create_connection(services, acme, name="a", kind="files", config={"path": "a.csv"})
    source = cx.open_source(services, acme, created.id)
    try:
        assert isinstance(source, FileSource)
        assert acme.catalog in str(source.path) and globex.catalog not in str(source.path)
    finally:
        source.close()


def test_an_unknown_kind_is_invalid_when_asked_for_and_not_supported_when_stored(
    services: Services, acme: Principal
) -> None:
    with pytest.raises(InvalidInput):
        cx.create_connection(services, acme, name="m", kind="mainframe", config={})
    with services.store.session() as session:
        row = connections_repo.create_connection(
            session, tenant_id=acme.tenant_id, name="m", kind="mainframe", config={}
        )
        connection_id = row.id
    with pytest.raises(NotSupported):
        cx.open_source(services, acme, connection_id)


def test_opening_a_stored_connection_vets_its_host_again(services: Services, acme: Principal) -> None:
    config = {"host": "169.254.169.254", "port": 5432, "database": "d", "user": "u"}
    with services.store.session() as session:
        row = connections_repo.create_connection(
            session, tenant_id=acme.tenant_id, name="meta", kind="postgres", config=config
        )
        connection_id = row.id
    with pytest.raises(PermissionDenied):
        cx.open_source(services, acme, connection_id)


def test_a_postgres_password_is_stored_only_as_ciphertext_and_opens_the_source(
    services: Services, acme: Principal
) -> None:
    created = cx.connect_postgres(
        services, acme, name="pg", host="127.0.0.1", port=1, database="d", user="u", password="s3cret-value"
    )
    assert created.has_password and "password" not in created.config
    with services.store.session() as session:
        row = connections_repo.get_connection(session, created.id, tenant_id=acme.tenant_id)
        assert row.secret_ciphertext is not None and b"s3cret-value" not in row.secret_ciphertext
        assert "s3cret-value" not in str(row.config)
    source = cx.open_source(services, acme, created.id)
    try:
        assert isinstance(source, PostgresSource)
        assert source.config.password is not None and source.config.password.get_secret_value() == "s3cret-value"
    finally:
        source.close()


def test_a_files_connection_to_a_file_past_a_structural_limit_is_refused_before_any_parser(
    services: Services, acme: Principal
) -> None:
    land(services, acme, "exports/deep.json", b"[" * 100_000 + b"]" * 100_000)  # crashes DuckDB's read_json
    created = cx.create_connection(services, acme, name="deep", kind="files", config={"path": "exports/deep.json"})
    with pytest.raises(FileLimitExceeded) as info:
        cx.list_source_tables(services, acme, created.id)
    assert info.value.details["limit"] == "ingest.max_json_depth"
    with pytest.raises(FileLimitExceeded):
        syncs.sync_table_to_bronze(services, acme, created.id, "deep.json", target_table="bronze.deep", wait_seconds=60)
    assert not (services.settings.resolved_lakehouse_root / acme.catalog / "bronze" / "deep").exists()
