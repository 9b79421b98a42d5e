"""The Databricks engine against the fake workspace: the same SQL as locally, faults that must not
lose or duplicate rows, warehouse choice, grants, chunked Arrow results, and the fake's own checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import SecretStr

from servicetsunami.engines.base import Engine, Idempotency
from servicetsunami.engines.databricks.engine import DatabricksEngine
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.errors import EngineError, InvalidInput, NotFound
from servicetsunami.settings import DatabricksSettings
from servicetsunami.sql import guard_query
from servicetsunami.tenancy import TableRef
from tests.fakes.databricks.server import FakeDatabricks
from tests.fakes.databricks.state import Warehouse

CATALOG = "tenant_dbx"
ORDERS = TableRef(CATALOG, "bronze", "orders")


@pytest.fixture
def dbx(fake_workspace: DatabricksSettings) -> Iterator[DatabricksEngine]:
    engine = DatabricksEngine(fake_workspace)
    engine.ensure_catalog(CATALOG)
    yield engine
    engine.close()


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalEngine]:
    engine = LocalEngine(tmp_path / "lakehouse")
    engine.ensure_catalog(CATALOG)
    yield engine
    engine.close()


def rows(engine: Engine, sql: str, **caps: int) -> list[dict[str, object]]:
    result = engine.query(
        guard_query(sql, catalog=CATALOG),
        max_rows=caps.get("max_rows", 10_000),
        max_bytes=caps.get("max_bytes", 10**8),
        timeout_seconds=60,
    )
    return result.table.to_pylist()


def orders(start: int, count: int) -> pa.RecordBatchReader:
    ids = list(range(start, start + count))
    table = pa.table(
        {
            "id": ids,
            "customer": [i % 3 for i in ids],
            "amount": pa.array([Decimal(i) / 4 for i in ids], pa.decimal128(12, 2)),
            "ts": [dt.datetime(2024, 1 + i % 12, 1, tzinfo=dt.UTC) for i in ids],
        }
    )
    return table.to_reader(max_chunksize=7)


def state_of(fake: FakeDatabricks, settings: DatabricksSettings):  # type: ignore[no-untyped-def]
    assert settings.token is not None
    return fake.state(settings.token.get_secret_value())


SAME_SQL = [
    "SELECT customer, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer ORDER BY customer",
    "WITH big AS (SELECT * FROM orders WHERE amount > 5) "
    "SELECT c.name, count(*) AS n FROM big JOIN customers c ON big.customer = c.id GROUP BY c.name ORDER BY c.name",
    "SELECT id, row_number() OVER (PARTITION BY customer ORDER BY amount DESC) AS rk FROM orders ORDER BY id",
    "SELECT date_format(ts, 'yyyy-MM') AS month, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1",
    "SELECT count(*) AS n FROM orders VERSION AS OF 0",
    "SELECT id, amount FROM orders WHERE id IN (SELECT max(id) FROM orders GROUP BY customer) ORDER BY id",
]


def test_the_same_databricks_sql_gives_the_same_result_locally_and_through_the_fake(
    local: LocalEngine, dbx: DatabricksEngine
) -> None:
    customers = pa.table({"id": [0, 1, 2], "name": ["ada", "bob", "cy"]})
    for engine in (local, dbx):
        engine.write_table(ORDERS, orders(0, 30), mode="create")
        engine.write_table(ORDERS, orders(30, 20), mode="append")
        engine.write_table(TableRef(CATALOG, "bronze", "customers"), customers.to_reader(), mode="create")
    for sql in SAME_SQL:
        expected = local.query(guard_query(sql, catalog=CATALOG), max_rows=1000, max_bytes=10**8, timeout_seconds=60)
        got = dbx.query(guard_query(sql, catalog=CATALOG), max_rows=1000, max_bytes=10**8, timeout_seconds=60)
        assert got.table.to_pylist() == expected.table.to_pylist(), sql
        assert got.table.schema.types == expected.table.schema.types, sql


def test_results_larger_than_a_chunk_come_back_whole_through_external_links(
    dbx: DatabricksEngine, databricks_fake: FakeDatabricks
) -> None:
    dbx.write_table(ORDERS, orders(0, 500), mode="create")
    before = len(databricks_fake.requests)
    got = rows(dbx, "SELECT id FROM orders ORDER BY id")
    assert [r["id"] for r in got] == list(range(500))
    fetched = [p for _, p in databricks_fake.requests[before:] if p.startswith("/fake-storage/results/")]
    assert len(fetched) == -(-500 // databricks_fake.chunk_rows)
    capped = dbx.query(
        guard_query("SELECT id FROM orders", catalog=CATALOG), max_rows=90, max_bytes=10**8, timeout_seconds=30
    )
    assert capped.table.num_rows == 90 and capped.truncated


@pytest.mark.parametrize(
    ("kind", "path", "method"),
    [
        ("429", "/api/2.0/sql/statements", "POST"),
        ("503", "/api/2.0/sql/statements", "POST"),
        ("429", "/api/2.0/fs/files/", "PUT"),
        ("503", "/api/2.0/fs/files/", "PUT"),
        ("drop_before", "/api/2.0/sql/statements", "POST"),
        ("drop_before", "/api/2.0/fs/files/", "PUT"),
        ("drop_after", "/api/2.0/fs/files/", "PUT"),
    ],
)
def test_writes_under_throttling_unavailability_and_dropped_connections_land_every_row_once(
    dbx: DatabricksEngine, databricks_fake: FakeDatabricks, kind: str, path: str, method: str
) -> None:
    dbx.write_table(ORDERS, orders(0, 10), mode="create")
    fault = databricks_fake.inject(kind, path=path, method=method, times=2)
    dbx.write_table(ORDERS, orders(10, 10), mode="append")
    dbx.write_table(ORDERS, orders(15, 10), mode="merge", merge_keys=["id"])
    assert fault.fired == 2
    got = rows(dbx, "SELECT count(*) AS n, count(DISTINCT id) AS d, min(id) AS lo, max(id) AS hi FROM orders")
    assert got == [{"n": 25, "d": 25, "lo": 0, "hi": 24}]


@pytest.mark.parametrize("statement", ["COPY INTO", "MERGE WITH SCHEMA EVOLUTION", "CREATE OR REPLACE TABLE"])
def test_a_write_statement_whose_answer_is_lost_is_retried_and_applied_once(
    dbx: DatabricksEngine, databricks_fake: FakeDatabricks, statement: str
) -> None:
    dbx.write_table(ORDERS, orders(0, 10), mode="create")
    fault = databricks_fake.inject("drop_after", path="/api/2.0/sql/statements", method="POST", contains=statement)
    if statement == "COPY INTO":
        dbx.write_table(ORDERS, orders(10, 10), mode="append")
        expected = 20
    elif statement.startswith("MERGE"):
        dbx.write_table(ORDERS, orders(5, 10), mode="merge", merge_keys=["id"])
        expected = 15
    else:
        dbx.write_table(ORDERS, orders(100, 7), mode="overwrite")
        expected = 7
    assert fault.fired == 1
    assert sum(1 for s in databricks_fake.statements_seen if s.startswith(statement)) >= 2  # it really ran twice
    got = rows(dbx, "SELECT count(*) AS n, count(DISTINCT id) AS d FROM orders")
    assert got == [{"n": expected, "d": expected}]


def test_replayed_idempotent_writes_are_skipped_and_the_ledger_gives_the_last_commit(dbx: DatabricksEngine) -> None:
    for seq in (1, 2, 3):
        info = {"cursor": str(seq * 10)}
        mode = "create" if seq == 1 else "append"
        dbx.write_table(
            ORDERS, orders(seq * 10, 10), mode=mode, idempotency=Idempotency("sync-9", seq), commit_info=info
        )
    for seq in (1, 2, 3):
        again = dbx.write_table(ORDERS, orders(seq * 10, 10), mode="append", idempotency=Idempotency("sync-9", seq))
        assert again.skipped
    assert rows(dbx, "SELECT count(*) AS n FROM orders") == [{"n": 30}]
    last = dbx.last_commit_for(ORDERS, "sync-9")
    assert last is not None and last[0] == 3 and last[1]["cursor"] == "30"
    assert dbx.last_commit_for(ORDERS, "another") is None


def test_the_smallest_warehouse_is_started_when_none_is_running(
    fake_workspace: DatabricksSettings, databricks_fake: FakeDatabricks
) -> None:
    state = state_of(databricks_fake, fake_workspace)
    state.warehouses = {
        "wh-medium": Warehouse("wh-medium", "Medium", "Medium", state="STOPPED"),
        "wh-tiny": Warehouse("wh-tiny", "Tiny", "2X-Small", state="STOPPED"),
    }
    engine = DatabricksEngine(fake_workspace)
    assert engine.ws.warehouse_id() == "wh-tiny"
    assert state.warehouses["wh-tiny"].state == "RUNNING"
    assert state.warehouses["wh-medium"].state == "STOPPED"


def test_a_running_warehouse_is_preferred_and_a_configured_one_is_used_as_is(
    fake_workspace: DatabricksSettings, databricks_fake: FakeDatabricks
) -> None:
    state = state_of(databricks_fake, fake_workspace)
    state.warehouses = {
        "wh-tiny": Warehouse("wh-tiny", "Tiny", "2X-Small", state="STOPPED"),
        "wh-large": Warehouse("wh-large", "Large", "Large", state="RUNNING"),
    }
    assert DatabricksEngine(fake_workspace).ws.warehouse_id() == "wh-large"
    configured = fake_workspace.model_copy(update={"warehouse_id": "wh-nope"})
    with pytest.raises(NotFound):
        DatabricksEngine(configured).ws.warehouse_id()


def test_ensure_catalog_grants_the_tenant_principal_on_its_own_catalog_only(
    fake_workspace: DatabricksSettings, databricks_fake: FakeDatabricks
) -> None:
    settings = fake_workspace.model_copy(update={"tenant_principal": "grp-{catalog}"})
    engine = DatabricksEngine(settings)
    engine.ensure_catalog("tenant_one")
    engine.ensure_catalog("tenant_two")
    state = state_of(databricks_fake, fake_workspace)
    assert set(state.grants) == {"catalog/tenant_one", "catalog/tenant_two"}
    assert set(state.grants["catalog/tenant_one"]) == {"grp-tenant_one"}
    assert {"USE_CATALOG", "SELECT", "MODIFY"} <= state.grants["catalog/tenant_one"]["grp-tenant_one"]
    assert {"tenant_one.bronze", "tenant_one.silver", "tenant_one.gold"} <= set(state.schemas)
    assert "tenant_one.bronze.landing" in state.volumes


def test_throttling_past_the_retry_budget_is_a_transient_engine_error(
    fake_workspace: DatabricksSettings, databricks_fake: FakeDatabricks
) -> None:
    engine = DatabricksEngine(fake_workspace.model_copy(update={"retry_timeout_seconds": 1}))
    engine.ensure_catalog(CATALOG)
    databricks_fake.inject("503", path="/api/2.1/unity-catalog/tables/", times=100)
    with pytest.raises(EngineError) as caught:
        engine.table_exists(ORDERS)
    assert caught.value.is_transient


def test_an_incompatible_type_change_is_refused_before_anything_is_uploaded(
    dbx: DatabricksEngine, databricks_fake: FakeDatabricks
) -> None:
    dbx.write_table(ORDERS, orders(0, 3), mode="create")
    before = len(databricks_fake.requests)
    with pytest.raises(InvalidInput, match="'customer'"):
        dbx.write_table(ORDERS, pa.table({"id": [9], "customer": ["x"]}).to_reader(), mode="append")
    assert not [p for m, p in databricks_fake.requests[before:] if m == "PUT"]


def test_a_statement_that_is_not_databricks_sql_is_caught_by_the_fake(
    dbx: DatabricksEngine, databricks_fake: FakeDatabricks
) -> None:
    with pytest.raises(InvalidInput):
        dbx.ws.rows("SELEC 1 FROM")
    assert databricks_fake.invalid_sql  # the fixture would fail the test that sent it
    databricks_fake.invalid_sql.clear()


def test_describe_and_history_come_from_describe_table_extended_detail_and_history(dbx: DatabricksEngine) -> None:
    dbx.write_table(ORDERS, orders(0, 4), mode="create", description="orders from the shop")
    dbx.write_table(ORDERS, orders(4, 4), mode="append")
    d = dbx.describe(ORDERS)
    assert [c.name for c in d.columns] == ["id", "customer", "amount", "ts"]
    assert [c.type for c in d.columns] == ["BIGINT", "BIGINT", "DECIMAL(12,2)", "TIMESTAMP"]
    assert (d.version, d.rows, d.comment) == (1, 8, "orders from the shop")
    assert d.files >= 1 and d.size_bytes
    assert dbx.describe(ORDERS, version=0).rows == 4
    assert [h.version for h in dbx.history(ORDERS)] == [1, 0]


def test_explain_runs_on_the_warehouse_and_a_missing_table_is_not_found(dbx: DatabricksEngine) -> None:
    dbx.write_table(ORDERS, orders(0, 3), mode="create")
    plan = dbx.query(
        guard_query("EXPLAIN SELECT * FROM orders", catalog=CATALOG), max_rows=100, max_bytes=10**6, timeout_seconds=30
    )
    assert plan.table.num_rows >= 1
    with pytest.raises(NotFound):
        rows(dbx, "SELECT * FROM silver.nowhere")
    with pytest.raises(NotFound):
        dbx.drop_table(TableRef(CATALOG, "silver", "nowhere"))


def test_a_load_answered_slower_than_the_http_timeout_is_retried_and_applied_once(
    fake_workspace: DatabricksSettings, databricks_fake: FakeDatabricks
) -> None:
    engine = DatabricksEngine(fake_workspace.model_copy(update={"http_timeout_seconds": 1}))
    engine.ensure_catalog(CATALOG)
    engine.write_table(ORDERS, orders(0, 10), mode="create")
    fault = databricks_fake.inject(
        "slow", path="/api/2.0/sql/statements", method="POST", contains="COPY INTO", delay=2.5
    )
    engine.write_table(ORDERS, orders(10, 10), mode="append")
    assert fault.fired == 1
    assert rows(engine, "SELECT count(*) AS n, count(DISTINCT id) AS d FROM orders") == [{"n": 20, "d": 20}]


def test_oauth_machine_to_machine_credentials_get_a_token_and_work_like_a_pat(
    fake_workspace: DatabricksSettings, databricks_fake: FakeDatabricks
) -> None:
    databricks_fake.oauth_clients["sp-123"] = "s3cret"
    settings = fake_workspace.model_copy(
        update={"token": None, "client_id": "sp-123", "client_secret": SecretStr("s3cret")}
    )
    engine = DatabricksEngine(settings)
    engine.ensure_catalog(CATALOG)
    engine.write_table(ORDERS, orders(0, 5), mode="create")
    assert rows(engine, "SELECT count(*) AS n FROM orders") == [{"n": 5}]
    assert databricks_fake.state(databricks_fake.oauth_token("sp-123")).engine.table_exists(ORDERS)
    assert ("POST", "/oidc/v1/token") in databricks_fake.requests
