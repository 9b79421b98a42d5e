"""Hybrid mode: writes land locally and go through the outbox to Databricks (the fake), which may be
down for a while; nothing is lost, nothing is applied twice, and the status is visible."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from servicetsunami.engines.base import Engine
from servicetsunami.engines.databricks.engine import DatabricksEngine
from servicetsunami.services.catalog import tables
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import uploads
from servicetsunami.services.ops.health import health
from servicetsunami.services.runs import service as runs
from servicetsunami.settings import DatabricksSettings, Settings
from servicetsunami.sql import guard_query
from servicetsunami.store.models import utcnow
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.tenancy import TableRef
from tests.fakes.databricks.server import FakeDatabricks
from tests.helpers import make_principal


@pytest.fixture
def hybrid(tmp_path: Path, fake_workspace: DatabricksSettings) -> Iterator[Services]:
    workspace = fake_workspace.model_copy(update={"retry_timeout_seconds": 1, "http_timeout_seconds": 5})
    settings = Settings(home=tmp_path / "home", mirror="databricks", databricks=workspace, _env_file=None)  # type: ignore[call-arg]
    svc = Services.open(settings)
    try:
        yield svc
    finally:
        svc.close()


def select(engine: Engine, catalog: str, sql: str) -> list[dict[str, object]]:
    return engine.query(
        guard_query(sql, catalog=catalog), max_rows=100, max_bytes=10**6, timeout_seconds=30
    ).table.to_pylist()


def count(engine: Engine, catalog: str, table: str) -> list[dict[str, object]]:
    return select(engine, catalog, f"SELECT count(*) AS n, count(DISTINCT id) AS d FROM {table}")


def later(minutes: int) -> object:
    return utcnow() + timedelta(minutes=minutes)


def test_writes_succeed_locally_while_databricks_is_down_and_are_mirrored_once_when_it_returns(
    hybrid: Services, databricks_fake: FakeDatabricks
) -> None:
    assert hybrid.mirror is not None
    principal, _ = make_principal(hybrid, "acme")
    ref = TableRef(principal.catalog, "bronze", "events")
    databricks_fake.down = True

    hybrid.engine.write_table(ref, pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]}).to_reader(), mode="create")
    hybrid.engine.write_table(ref, pa.table({"id": [4, 5]}).to_reader(), mode="append")
    hybrid.engine.write_table(
        ref, pa.table({"id": [2, 6], "v": ["B", "f"]}).to_reader(), mode="merge", merge_keys=["id"]
    )
    csv = b"id,name\n1,ada\n2,bob\n"
    uploads.upload_file(hybrid, principal, file_name="people.csv", dataset_name="people", content=csv)
    assert count(hybrid.engine, principal.catalog, "events") == [{"n": 6, "d": 6}]

    report = hybrid.mirror.replay_due()
    assert report.synced == 0 and report.retrying == 2  # one job per table tried; the rest wait behind it
    status = tables.describe_table(hybrid, principal, "events").mirror
    assert status is not None and status["status"] == "pending" and status["error"]
    assert status["pending_jobs"] == 3
    assert health(hybrid).checks["mirror"].detail.startswith("mirror to databricks: 4 pending")

    databricks_fake.down = False
    report = hybrid.mirror.replay_due(now=later(1))
    assert report.retrying == 0 and report.failed == 0
    assert hybrid.mirror.summary() == {"pending": 0, "synced": 4, "failed": 0}
    assert tables.describe_table(hybrid, principal, "events").mirror["status"] == "synced"  # type: ignore[index]

    remote = DatabricksEngine(hybrid.settings.databricks)
    expected = select(hybrid.engine, principal.catalog, "SELECT id, v FROM events ORDER BY id")
    mirrored = select(remote, principal.catalog, "SELECT id, v FROM events ORDER BY id")
    assert mirrored == expected
    assert count(remote, principal.catalog, "people") == [{"n": 2, "d": 2}]

    # Replaying everything again applies nothing twice.
    with hybrid.store.session() as session:
        from sqlalchemy import update

        from servicetsunami.store.models import MirrorJob

        session.execute(update(MirrorJob).values(status="pending", next_attempt_at=utcnow()))
    hybrid.mirror.replay_due(now=later(2))
    assert count(remote, principal.catalog, "events") == [{"n": 6, "d": 6}]
    assert count(remote, principal.catalog, "people") == [{"n": 2, "d": 2}]


def test_a_job_out_of_attempts_is_failed_and_mirror_retry_replays_it(
    hybrid: Services, databricks_fake: FakeDatabricks
) -> None:
    assert hybrid.mirror is not None
    hybrid.settings.mirror_worker.max_attempts = 1
    principal, _ = make_principal(hybrid, "globex")
    ref = TableRef(principal.catalog, "silver", "t")
    databricks_fake.down = True
    hybrid.engine.write_table(ref, pa.table({"id": [1, 2]}).to_reader(), mode="create")
    assert hybrid.mirror.replay_due().failed == 1
    status = tables.describe_table(hybrid, principal, "silver.t").mirror
    assert status is not None and status["status"] == "failed" and "could not be reached" in status["error"]
    assert not health(hybrid).checks["mirror"].ok

    databricks_fake.down = False
    assert hybrid.mirror.retry_failed() == 1
    assert hybrid.mirror.replay_due().synced == 1
    assert hybrid.mirror.summary() == {"pending": 0, "synced": 1, "failed": 0}
    assert count(DatabricksEngine(hybrid.settings.databricks), principal.catalog, "silver.t") == [{"n": 2, "d": 2}]


def test_writes_outside_the_layers_and_skipped_writes_enqueue_nothing(hybrid: Services) -> None:
    assert hybrid.mirror is not None
    principal, _ = make_principal(hybrid, "initech")
    ref = TableRef(principal.catalog, "bronze", "once")
    from servicetsunami.engines.base import Idempotency

    hybrid.engine.write_table(ref, pa.table({"id": [1]}).to_reader(), mode="create", idempotency=Idempotency("s", 1))
    hybrid.engine.write_table(ref, pa.table({"id": [1]}).to_reader(), mode="append", idempotency=Idempotency("s", 1))
    assert hybrid.mirror.summary()["pending"] == 1


def test_the_worker_mirrors_writes_in_the_background_in_a_replay_run(hybrid: Services) -> None:
    import time

    assert hybrid.mirror is not None
    hybrid.settings.mirror_worker.poll_seconds = 0.05
    principal, _ = make_principal(hybrid, "umbrella")
    ref = TableRef(principal.catalog, "gold", "kpis")
    runs.ensure_worker(hybrid)
    hybrid.engine.write_table(ref, pa.table({"id": [1, 2, 3]}).to_reader(), mode="create")
    deadline = time.monotonic() + 30
    while hybrid.mirror.summary()["synced"] < 1:
        assert time.monotonic() < deadline, "the worker did not mirror the write in time"
        hybrid.launcher.wait_change(0.05)
    assert count(DatabricksEngine(hybrid.settings.databricks), principal.catalog, "gold.kpis") == [{"n": 3, "d": 3}]
    with hybrid.store.session() as session:
        replays = runs_repo.list_runs(session, tenant_id=None, kind="mirror_replay")
    assert replays and all(r.tenant_id is None for r in replays)
    assert any(r.state == "succeeded" and (r.result or {}).get("synced") == 1 for r in replays)


def test_mirror_retry_on_the_cli_replays_failed_jobs(
    tmp_path: Path, fake_workspace: DatabricksSettings, databricks_fake: FakeDatabricks, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from servicetsunami.cli import app

    assert fake_workspace.token is not None
    env = {
        "TSUNAMI_HOME": str(tmp_path / "cli-home"),
        "TSUNAMI_MIRROR": "databricks",
        "TSUNAMI_DATABRICKS__HOST": fake_workspace.host,
        "TSUNAMI_DATABRICKS__TOKEN": fake_workspace.token.get_secret_value(),
        "TSUNAMI_DATABRICKS__RETRY_TIMEOUT_SECONDS": "1",
        "TSUNAMI_MIRROR_WORKER__MAX_ATTEMPTS": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    svc = Services.open(settings)
    try:
        principal, _ = make_principal(svc, "acme")
        databricks_fake.down = True
        svc.engine.write_table(
            TableRef(principal.catalog, "bronze", "t"), pa.table({"id": [1]}).to_reader(), mode="create"
        )
        assert svc.mirror is not None and svc.mirror.replay_due().failed == 1
    finally:
        svc.close()
    runner = CliRunner()
    down = runner.invoke(app, ["mirror", "retry"])
    assert down.exit_code == 1 and "failed 1" in down.output
    databricks_fake.down = False
    result = runner.invoke(app, ["mirror", "retry"])
    assert result.exit_code == 0, result.output
    assert "requeued 1 failed job(s); synced 1" in result.output
    assert "synced: 1" in runner.invoke(app, ["mirror", "status"]).output


def test_silver_and_gold_tables_built_in_hybrid_mode_are_mirrored_too(hybrid: Services) -> None:
    from servicetsunami.services.transforms import gold, silver

    assert hybrid.mirror is not None
    principal, _ = make_principal(hybrid, "acme")
    csv = b"id,name\n1, ada \n2,bob\n2,bob\n"
    uploads.upload_file(hybrid, principal, file_name="people.csv", dataset_name="people", content=csv)
    silver.transform_to_silver(hybrid, principal, "bronze.people")
    gold.create_gold_table(hybrid, principal, "names", "SELECT name FROM silver.people")
    hybrid.mirror.replay_due()
    assert hybrid.mirror.summary() == {"pending": 0, "synced": 3, "failed": 0}
    remote = DatabricksEngine(hybrid.settings.databricks)
    try:
        assert count(remote, principal.catalog, "silver.people") == [{"n": 2, "d": 2}]
        names = (
            remote.query(
                guard_query("SELECT name FROM gold.names ORDER BY 1", catalog=principal.catalog),
                max_rows=10,
                max_bytes=10**6,
                timeout_seconds=30,
            )
            .table.column("name")
            .to_pylist()
        )
        assert names == ["ada", "bob"]
    finally:
        remote.close()


def test_a_merge_that_marks_rows_in_deletion_vectors_is_mirrored_with_the_latest_values(
    hybrid: Services, databricks_fake: FakeDatabricks
) -> None:
    import duckdb

    assert hybrid.mirror is not None
    principal, _ = make_principal(hybrid, "acme")
    ref = TableRef(principal.catalog, "bronze", "orders")

    def staged(sql: str, mode: str) -> None:
        stage = hybrid.engine.new_stage(ref)
        duckdb.connect().execute(f"COPY ({sql}) TO '{stage}' (FORMAT parquet, FILE_SIZE_BYTES '64MB')")
        hybrid.engine.commit_stage(ref, stage, mode=mode, merge_keys=["id"])  # type: ignore[arg-type]

    staged("SELECT i AS id, 'old' AS v FROM range(1000) t(i)", "create")
    staged("SELECT i AS id, 'new' AS v FROM range(0, 1100, 10) t(i)", "merge")  # 100 replaced, 10 new
    history = hybrid.engine.history(ref, limit=1)[0]
    assert history.parameters["method"] == "deletion vectors"
    report = hybrid.mirror.replay_due()
    assert report.failed == 0 and report.retrying == 0
    sql = "SELECT v, count(*) AS n, count(DISTINCT id) AS d FROM orders GROUP BY v ORDER BY v"
    local = select(hybrid.engine, principal.catalog, sql)
    assert local == [{"v": "new", "n": 110, "d": 110}, {"v": "old", "n": 900, "d": 900}]
    assert select(DatabricksEngine(hybrid.settings.databricks), principal.catalog, sql) == local
