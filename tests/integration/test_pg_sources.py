"""PostgreSQL connections and syncs through the services and the MCP door, on the real PostgreSQL
at TSUNAMI_TEST_POSTGRES_URL. These fail, never skip, when it is unreachable."""

from __future__ import annotations

import base64
import io
import logging
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastmcp import Client

from servicetsunami import logs
from servicetsunami.errors import InvalidInput, NotFound, PermissionDenied
from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.catalog import tables as catalog
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.governance import lineage
from servicetsunami.services.ingestion import connections as cx
from servicetsunami.services.ingestion import syncs
from servicetsunami.services.transforms import silver as transforms
from servicetsunami.store.repositories import connections as connections_repo
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal

PLANTED = "planted-Secret-" + uuid.uuid4().hex


def pg_dsn() -> str:
    url = os.environ.get("TSUNAMI_TEST_POSTGRES_URL")
    assert url, "TSUNAMI_TEST_POSTGRES_URL must point at the test PostgreSQL (e.g. postgresql+psycopg://...)"
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def pg_table() -> Iterator[str]:
    name = f"src_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE public.{name} (id bigint PRIMARY KEY, amount numeric(12,2), note text, "
            "updated_at timestamptz NOT NULL)"
        )
        conn.execute(
            f"INSERT INTO public.{name} SELECT i, i * 1.25, 'n' || i, "
            "timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' FROM generate_series(1, 3000) i"
        )
    yield name
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS public.{name}")


def connect(svc: Services, who: Principal, name: str = "pg") -> str:
    info = psycopg.conninfo.conninfo_to_dict(pg_dsn())
    created = cx.connect_postgres(
        svc,
        who,
        name=name,
        host=str(info.get("host", "127.0.0.1")),
        port=int(info.get("port", 5432)),
        database=str(info["dbname"]),
        user=str(info.get("user", "postgres")),
        password=PLANTED,
    )
    assert created.test.ok, created.test
    return created.id


def test_connect_test_discover_and_sync_a_table_incrementally(
    services: Services, acme: Principal, pg_table: str
) -> None:
    cid = connect(services, acme)
    tables = {t.name: t for t in cx.list_source_tables(services, acme, cid, schema="public")}
    table = tables[f"public.{pg_table}"]
    assert table.primary_key == ["id"] and table.cursor_candidates[0] == "updated_at"
    first = syncs.sync_table_to_bronze(services, acme, cid, pg_table, sync_mode="incremental_merge", wait_seconds=60)
    assert first.status == "succeeded", first.error
    assert first.rows == 3000 and first.bronze_table == f"bronze.{pg_table}"
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(f"UPDATE public.{pg_table} SET note = 'changed', updated_at = now() WHERE id <= 30")
    second = syncs.sync_table_to_bronze(services, acme, cid, pg_table, sync_mode="incremental_merge", wait_seconds=60)
    assert second.status == "succeeded" and second.rows == 30
    rows = query_sql(services, acme, f"SELECT count(*), count(DISTINCT id), count_if(note = 'changed') FROM {pg_table}")
    assert rows.rows == [[3000, 3000, 30]]
    listed = {s.bronze_table: s for s in syncs.list_syncs(services, acme)}
    assert listed[f"bronze.{pg_table}"].last_run is not None
    assert listed[f"bronze.{pg_table}"].state["cursor"]["type"] == "datetime"


def test_another_tenant_cannot_use_or_see_a_connection(
    services: Services, acme: Principal, globex: Principal, pg_table: str
) -> None:
    cid = connect(services, acme)
    assert cx.list_connections(services, globex) == []
    with pytest.raises(NotFound):
        cx.test_connection(services, globex, cid)
    with pytest.raises(NotFound):
        syncs.start_sync(services, globex, cid, pg_table)


def test_a_ciphertext_copied_to_another_tenants_connection_does_not_decrypt(
    services: Services, acme: Principal, globex: Principal
) -> None:
    acme_cid = connect(services, acme, "a")
    globex_cid = connect(services, globex, "b")
    with services.store.session() as session:
        stolen = connections_repo.get_connection(session, acme_cid, tenant_id=acme.tenant_id)
        target = connections_repo.get_connection(session, globex_cid, tenant_id=globex.tenant_id)
        target.secret_ciphertext, target.secret_kid = stolen.secret_ciphertext, stolen.secret_kid
    with pytest.raises(Exception) as info:  # the exact class is the key ring's to choose
        cx.test_connection(services, globex, globex_cid)
    assert PLANTED not in str(info.value)


def test_metadata_addresses_are_refused_and_bad_modes_explained(services: Services, acme: Principal) -> None:
    with pytest.raises(PermissionDenied):
        cx.connect_postgres(services, acme, name="meta", host="169.254.169.254", database="d", user="u")
    cid = connect(services, acme)
    with pytest.raises(InvalidInput, match="sync_mode"):
        syncs.start_sync(services, acme, cid, "anything", sync_mode="upsert")


def test_an_unreachable_server_gets_a_diagnosis(services: Services, acme: Principal) -> None:
    created = cx.connect_postgres(services, acme, name="down", host="127.0.0.1", port=1, database="d", user="u")
    assert not created.test.ok and created.test.problem == "refused"
    assert "port" in (created.test.diagnosis or "")


async def test_the_password_never_appears_in_logs_or_tool_results(
    services: Services, pg_table: str, caplog: pytest.LogCaptureFixture
) -> None:
    engineer, _ = make_principal(services, "acme", "admin")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    logging.getLogger().addHandler(handler)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    info = psycopg.conninfo.conninfo_to_dict(pg_dsn())
    try:
        async with Client(build_mcp_server(services, principal=engineer)) as client:
            created = await client.call_tool(
                "connect_postgres",
                {
                    "name": "pg",
                    "host": str(info.get("host", "127.0.0.1")),
                    "port": int(info.get("port", 5432)),
                    "database": str(info["dbname"]),
                    "user": str(info.get("user", "postgres")),
                    "password": PLANTED,
                },
            )
            cid = created.structured_content["id"]  # type: ignore[index]
            for name, args in [
                ("test_connection", {"connection_id": cid}),
                ("list_source_tables", {"connection_id": cid, "schema": "public"}),
                ("sync_table_to_bronze", {"connection_id": cid, "table_name": pg_table}),
                ("list_syncs", {}),
            ]:
                result = await client.call_tool_mcp(name, args)
                assert not result.is_error, result
                texts.append(str(result.model_dump()))
            texts.append(str(created))
            bad = await client.call_tool_mcp(
                "connect_postgres",
                {
                    "name": "pg2",
                    "host": "127.0.0.1",
                    "port": 1,
                    "database": "x",
                    "user": "y",
                    "password": PLANTED,
                },
            )
            texts.append(str(bad.model_dump()))
            resource = await client.read_resource(f"datasource://{cid}/status")
            texts.append(str(resource))
    finally:
        logging.getLogger().removeHandler(handler)
    everything = "\n".join(texts) + stream.getvalue() + caplog.text
    assert PLANTED not in everything
    assert base64.b64encode(PLANTED.encode()).decode() not in everything
    with open(services.settings.resolved_database_url.removeprefix("sqlite:///"), "rb") as db:
        assert PLANTED.encode() not in db.read()


async def test_analysts_do_not_see_connection_or_sync_tools(services: Services) -> None:
    analyst, _ = make_principal(services, "acme", "analyst")
    async with Client(build_mcp_server(services, principal=analyst)) as client:
        names = {t.name for t in await client.list_tools()}
    assert {"list_syncs", "get_sync_status", "list_source_tables"} <= names
    assert not {"connect_postgres", "sync_table_to_bronze", "cancel_sync"} & names


async def test_a_sync_reports_mcp_progress_while_it_runs(tmp_path, pg_table: str) -> None:  # type: ignore[no-untyped-def]
    from servicetsunami.settings import Settings, SyncSettings

    with psycopg.connect(pg_dsn(), autocommit=True) as conn:  # enough rows for many small batches
        conn.execute(
            f"INSERT INTO public.{pg_table} SELECT i, i, 'm', "
            "timestamptz '2025-01-01 00:00:00+00' + i * interval '1 ms' FROM generate_series(3001, 200000) i"
        )
    settings = Settings(home=tmp_path / "home", sync=SyncSettings(batch_rows=5_000, wait_seconds=120), _env_file=None)  # type: ignore[call-arg]
    svc = Services.open(settings)
    try:
        admin, _ = make_principal(svc, "acme", "admin")
        info = psycopg.conninfo.conninfo_to_dict(pg_dsn())
        seen: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(progress)

        async with Client(build_mcp_server(svc, principal=admin), progress_handler=on_progress) as client:
            created = await client.call_tool(
                "connect_postgres",
                {
                    "name": "pg",
                    "host": str(info.get("host", "127.0.0.1")),
                    "port": int(info.get("port", 5432)),
                    "database": str(info["dbname"]),
                    "user": str(info.get("user", "postgres")),
                },
            )
            result = await client.call_tool(
                "sync_table_to_bronze",
                {
                    "connection_id": created.structured_content["id"],  # type: ignore[index]
                    "table_name": pg_table,
                    "sync_mode": "incremental_append",
                },
            )
        assert result.structured_content is not None and result.structured_content["rows"] == 200_000
        assert seen, "no progress notification arrived"
        assert seen == sorted(seen)
    finally:
        svc.close()


def test_a_synced_table_cleaned_into_silver_traces_back_to_its_connection_and_run(
    services: Services, acme: Principal, pg_table: str
) -> None:
    cid = connect(services, acme)
    run = syncs.sync_table_to_bronze(services, acme, cid, pg_table, wait_seconds=60)
    assert run.status == "succeeded", run.error
    transforms.transform_to_silver(services, acme, pg_table, transformations={"dedupe": {"keys": ["id"]}})

    origin = catalog.describe_table(services, acme, f"bronze.{pg_table}").lineage
    assert origin is not None and origin["kind"] == "sync"
    assert origin["connection"]["name"] == "pg" and origin["source_table"] == f"public.{pg_table}"
    assert origin["last_run"]["status"] == "succeeded" and origin["last_refresh"]
    graph = lineage.get_lineage(services, acme, f"silver.{pg_table}")
    assert graph.upstream == [f"bronze.{pg_table}", f"source:pg/public.{pg_table}"]
