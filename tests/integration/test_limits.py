"""Limits on every statement the service runs for a caller: each one that would run forever ends
with ``query_timeout`` soon after its timeout, whichever service runs it, and a result is cut inside
its first batch when that batch alone is past the byte cap."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.engines.base import Engine
from servicetsunami.engines.local import merging
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.errors import LimitExceeded, TsunamiError
from servicetsunami.services.ai import tools
from servicetsunami.services.catalog import tables
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.governance import pii, profiling
from servicetsunami.services.ingestion import uploads
from servicetsunami.services.transforms import gold, silver
from servicetsunami.settings import QuerySettings, Settings, SyncSettings
from servicetsunami.sql import GuardedQuery, guard_query
from servicetsunami.tenancy import Principal, TableRef
from tests.helpers import make_principal

TIMEOUT = 0.5
SOON = TIMEOUT + 5  # the watchdog's delay and the interrupt's, with room for a busy machine
FOREVER = "SELECT count(*) AS n FROM range(1000000000) a, range(1000000000) b"
CSV = b"id,name\n1,ann\n2,bob\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    limits = QuerySettings(timeout_seconds=TIMEOUT, write_timeout_seconds=TIMEOUT, result_cache_mb=0)
    return Settings(
        home=tmp_path / "home",
        query=limits,
        sync=SyncSettings(merge_timeout_seconds=TIMEOUT),
        _env_file=None,  # type: ignore[call-arg]  # pydantic-settings option
    )


@pytest.fixture
def people(services: Services, acme: Principal) -> None:
    uploads.upload_file(services, acme, file_name="people.csv", dataset_name="people", content=CSV)
    silver.transform_to_silver(services, acme, "bronze.people")


@pytest.fixture
def runaway_queries(services: Services, acme: Principal, people: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every query the engine is asked to run becomes one that never ends, run with the limits the
    service passed: what is checked is that each service passes limits that stop it."""
    engine: Engine = services.engine
    real = engine.query
    endless = guard_query(FOREVER, catalog=acme.catalog)

    def query(q: GuardedQuery, /, **limits: Any) -> Any:
        return real(endless, **limits)

    monkeypatch.setattr(engine, "query", query)


@pytest.fixture
def runaway_writes(services: Services, acme: Principal, people: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for every query written to a table."""
    engine: Engine = services.engine
    real = engine.write_query
    endless = guard_query(FOREVER, catalog=acme.catalog)

    def write_query(ref: TableRef, q: GuardedQuery, /, **options: Any) -> Any:
        return real(ref, endless, **options)

    monkeypatch.setattr(engine, "write_query", write_query)


def ends_in_time(services: Services, principal: Principal, call: Callable[[], object]) -> TsunamiError | None:
    """The error ``call`` ended with, asserting it ended within SOON seconds (a call still running is
    stopped by the services' close at the end of the test) and that the engine is free afterwards."""
    outcome: list[TsunamiError | None] = []

    def target() -> None:
        try:
            call()
            outcome.append(None)
        except TsunamiError as exc:
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(SOON)
    assert not thread.is_alive(), f"still running after {time.monotonic() - started:.1f} s"
    assert_engine_is_free(services, principal)
    return outcome[0]


def assert_engine_is_free(services: Services, principal: Principal) -> None:
    """A short statement, through the engine's own method (not a test's endless stand-in), answers at once."""
    engine = services.engine
    started = time.monotonic()
    probe = guard_query("SELECT count(*) AS n FROM range(1000)", catalog=principal.catalog)
    result = type(engine).query(engine, probe, max_rows=1, max_bytes=1024, timeout_seconds=SOON)
    assert result.table.to_pylist() == [{"n": 1000}]
    assert time.monotonic() - started < SOON


def code_of(error: TsunamiError | None) -> str | None:
    return error.code if error is not None else None


def test_a_runaway_query_ends_with_query_timeout(services: Services, acme: Principal) -> None:
    assert code_of(ends_in_time(services, acme, lambda: query_sql(services, acme, FOREVER))) == "query_timeout"


def test_a_runaway_gold_table_ends_with_query_timeout_and_writes_nothing(services: Services, acme: Principal) -> None:
    assert (
        code_of(ends_in_time(services, acme, lambda: gold.create_gold_table(services, acme, "forever", FOREVER)))
        == "query_timeout"
    )
    assert not services.engine.table_exists(TableRef(acme.catalog, "gold", "forever"))


def test_a_gold_refresh_that_turned_runaway_ends_with_query_timeout(services: Services, acme: Principal) -> None:
    rows = TableRef(acme.catalog, "silver", "rows")
    services.engine.write_query(rows, guard_query("SELECT * FROM range(3) t(i)", catalog=acme.catalog))
    gold.create_gold_table(services, acme, "product", "SELECT count(*) AS n FROM rows a, rows b, rows c, rows d")
    services.engine.write_query(rows, guard_query("SELECT * FROM range(1000000) t(i)", catalog=acme.catalog))
    error = ends_in_time(services, acme, lambda: gold.refresh_gold_table(services, acme, "product"))
    assert code_of(error) == "query_timeout"


def test_a_query_over_a_runaway_gold_view_ends_with_query_timeout(services: Services, acme: Principal) -> None:
    gold.create_gold_table(services, acme, "endless", FOREVER, materialize="view")
    error = ends_in_time(services, acme, lambda: query_sql(services, acme, "SELECT * FROM gold.endless"))
    assert code_of(error) == "query_timeout"


@pytest.mark.usefixtures("runaway_writes")
def test_a_runaway_silver_transform_ends_with_query_timeout(services: Services, acme: Principal) -> None:
    error = ends_in_time(
        services, acme, lambda: silver.transform_to_silver(services, acme, "bronze.people", target_table="again")
    )
    assert code_of(error) == "query_timeout"


@pytest.mark.usefixtures("runaway_queries")
def test_a_runaway_transform_preview_ends_with_query_timeout(services: Services, acme: Principal) -> None:
    assert (
        code_of(ends_in_time(services, acme, lambda: silver.preview_transform(services, acme, "bronze.people")))
        == "query_timeout"
    )


@pytest.mark.usefixtures("runaway_queries")
def test_a_runaway_profile_ends_with_query_timeout(services: Services, acme: Principal) -> None:
    assert (
        code_of(ends_in_time(services, acme, lambda: profiling.profile_table(services, acme, "silver.people")))
        == "query_timeout"
    )


@pytest.mark.usefixtures("runaway_queries")
def test_a_runaway_check_of_an_ai_tools_query_ends_with_query_timeout(services: Services, acme: Principal) -> None:
    error = ends_in_time(services, acme, lambda: tools.check_sql(services, acme, "SELECT * FROM silver.people"))
    assert code_of(error) == "query_timeout"


def test_a_first_batch_past_the_byte_cap_comes_back_cut(services: Services, acme: Principal) -> None:
    result = query_sql(services, acme, "SELECT repeat('x', 3000000) AS s FROM range(3)")  # 9 MB, cap 8 MiB
    assert (result.row_count, result.truncated) == (2, True)


def test_a_row_alone_past_the_byte_cap_is_refused(services: Services, acme: Principal) -> None:
    with pytest.raises(LimitExceeded):
        query_sql(services, acme, "SELECT repeat('x', 20000000) AS s FROM range(3)")


def test_a_runaway_gold_table_over_rest_answers_query_timeout(services: Services) -> None:
    _, key = make_principal(services, "initech")
    with TestClient(create_app(services.settings, services=services)) as client:
        started = time.monotonic()
        reply = client.post(
            "/api/v1/gold", json={"name": "forever", "sql": FOREVER}, headers={"Authorization": f"Bearer {key}"}
        )
    assert (reply.status_code, reply.json()["code"]) == (408, "query_timeout")
    assert time.monotonic() - started < SOON


def test_closing_the_services_stops_a_statement_still_running(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = Services.open(settings.model_copy(update={"query": QuerySettings(write_timeout_seconds=3600)}))
    acme, _ = make_principal(services, "acme")
    running = threading.Event()
    limited = LocalEngine._limited

    @contextlib.contextmanager
    def announced(self: LocalEngine, cursor: Any, timeout: float | None, **options: Any) -> Iterator[None]:
        with limited(self, cursor, timeout, **options):
            running.set()
            yield

    monkeypatch.setattr(LocalEngine, "_limited", announced)
    outcome: list[TsunamiError] = []

    def build() -> None:
        try:
            gold.create_gold_table(services, acme, "forever", FOREVER)
        except TsunamiError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=build, daemon=True)
    thread.start()
    assert running.wait(SOON)
    services.close()
    thread.join(SOON)
    assert not thread.is_alive()
    assert [(e.code, e.is_transient) for e in outcome] == [("engine_error", True)]


def test_a_sort_past_the_memory_limit_spills_into_the_lakehouse_folder_and_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = LocalEngine(tmp_path / "lake", memory_limit="50MB")
    try:
        engine.ensure_catalog("tenant_acme")
        sql = "SELECT i, md5(i::VARCHAR) AS h FROM range(3000000) t(i) ORDER BY h"
        result = engine.query(guard_query(sql, catalog="tenant_acme"), max_rows=1, max_bytes=10**6, timeout_seconds=120)
        assert result.table.num_rows == 1
        assert [p.suffix for p in (tmp_path / "lake" / "_spill").iterdir()] == [f".{os.getpid()}"]
        assert not (tmp_path / ".tmp").exists()
    finally:
        engine.close()


def test_a_catalog_database_keeps_none_of_the_bytes_of_the_files_it_has_read(tmp_path: Path) -> None:
    """DuckDB's external file cache would keep the files of every table version a worker has read,
    up to the memory limit, for the life of the catalog's database: a worker's memory would grow
    with each new version written (the soak saw it). Local files are in the OS page cache anyway."""
    engine = LocalEngine(tmp_path / "lake", memory_limit="1GB")
    try:
        engine.ensure_catalog("tenant_acme")
        ref = TableRef("tenant_acme", "bronze", "events")
        for version in range(5):
            rows = pa.table({"id": list(range(version * 50_000, (version + 1) * 50_000))})
            engine.write_table(ref, pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches()), mode="overwrite")
            sql = "SELECT count(*) AS n, sum(id) AS s FROM bronze.events"
            engine.query(guard_query(sql, catalog="tenant_acme"), max_rows=10, max_bytes=10**6, timeout_seconds=60)
        database = engine._dbs["tenant_acme"]
        cached = database.execute(
            "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'EXTERNAL_FILE_CACHE'"
        ).fetchone()
        assert cached == (0,)
    finally:
        engine.close()


@pytest.mark.usefixtures("runaway_queries")
def test_a_runaway_table_preview_ends_with_query_timeout(services: Services, acme: Principal) -> None:
    error = ends_in_time(services, acme, lambda: tables.preview_table(services, acme, "bronze.people"))
    assert code_of(error) == "query_timeout"


@pytest.mark.usefixtures("runaway_queries")
def test_a_runaway_check_for_personal_data_after_a_write_ends_with_query_timeout(
    services: Services, acme: Principal
) -> None:
    ref = TableRef(acme.catalog, "bronze", "people")
    assert code_of(ends_in_time(services, acme, lambda: pii.flag_table(services, acme, ref))) == "query_timeout"


class _Endless:
    """A DuckDB connection whose every statement is one that never ends."""

    def __init__(self, con: Any) -> None:
        self._con = con

    def execute(self, *_: Any) -> Any:
        return self._con.execute(FOREVER)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def _merge_batch(engine: Engine, ref: TableRef, rows: pa.Table) -> Any:
    stage = engine.new_stage(ref)
    pq.write_table(rows, stage / "batch.parquet")
    return engine.commit_stage(ref, stage, mode="merge", merge_keys=["id"])


@pytest.mark.parametrize("deletion_vectors", [True, False], ids=["marking", "rewriting"])
def test_a_runaway_sync_merge_ends_with_query_timeout_commits_nothing_and_frees_the_table(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, deletion_vectors: bool
) -> None:
    services = Services.open(settings.model_copy(update={"deletion_vectors": deletion_vectors}))
    try:
        acme, _ = make_principal(services, "acme")
        engine = services.engine
        ref = TableRef(acme.catalog, "bronze", "accounts")
        engine.write_table(ref, pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]}).to_reader(), mode="overwrite")
        before = engine.describe(ref).version
        # every statement of the merge (key lookup on the lent cursor, rewrites in sandboxes) never ends
        positions_of, sandbox = merging._positions_of, merging._sandbox
        monkeypatch.setattr(merging, "_positions_of", lambda con, *a: positions_of(_Endless(con), *a))
        monkeypatch.setattr(merging, "_sandbox", lambda *a: _Endless(sandbox(*a)))

        error = ends_in_time(services, acme, lambda: _merge_batch(engine, ref, pa.table({"id": [2], "v": ["B"]})))

        assert code_of(error) == "query_timeout"
        assert engine.describe(ref).version == before
        monkeypatch.undo()
        _merge_batch(engine, ref, pa.table({"id": [2], "v": ["B"]}))  # the table's lock was let go
        assert engine.describe(ref).rows == 3
    finally:
        services.close()


def test_previews_are_cut_inside_their_first_batch_too(settings: Settings) -> None:
    capped = settings.model_copy(update={"query": QuerySettings(max_bytes=100_000, result_cache_mb=0)})
    services = Services.open(capped)
    try:
        acme, _ = make_principal(services, "acme")
        wide = TableRef(acme.catalog, "bronze", "wide")
        services.engine.write_query(
            wide, guard_query("SELECT i, repeat('x', 40000) AS s FROM range(3) t(i)", catalog=acme.catalog)
        )  # 120 kB in one batch; the cap is 100 kB

        table = tables.preview_table(services, acme, "bronze.wide")
        transform = silver.preview_transform(services, acme, "bronze.wide", transformations={"infer_types": False})

        assert (table.row_count, table.truncated) == (2, True)
        assert (transform.preview.row_count, transform.preview.truncated) == (2, True)
    finally:
        services.close()


RUNAWAYS_THEN_RSS = """
import sys
from pathlib import Path

from servicetsunami.errors import QueryTimeout
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.settings import QuerySettings, Settings
from tests.helpers import make_principal


def rss_mb() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 // 2**20


settings = Settings(home=Path(sys.argv[1]), query=QuerySettings(timeout_seconds=2, result_cache_mb=0), _env_file=None)
svc = Services.open(settings)
acme = make_principal(svc, "acme")[0]
query_sql(svc, acme, "SELECT 1 AS one")
before = rss_mb()
for _ in range(3):
    try:
        query_sql(svc, acme, sys.argv[2])
    except QueryTimeout:
        pass
query_sql(svc, acme, "SELECT 1 AS one")
print(rss_mb() - before)
svc.close()
"""


def test_the_memory_a_runaway_query_took_is_given_back_once_it_is_stopped(tmp_path: Path) -> None:
    """DuckDB's allocator keeps what a stopped statement took for as long as its database lives: a
    worker that meets runaway queries would grow by hundreds of megabytes each time."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", RUNAWAYS_THEN_RSS, str(tmp_path / "home"), FOREVER],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    grown_mb = int(child.stdout.strip().splitlines()[-1])
    assert grown_mb < 300, f"the process kept {grown_mb} MB after three stopped runaway queries"
