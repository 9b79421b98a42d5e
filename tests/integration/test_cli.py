"""The `tsunami` command, run in-process with typer's runner against a temporary home."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from servicetsunami.cli import app

KEY_RE = re.compile(r"tsk_[0-9a-f]{8}_[A-Za-z0-9_\-]+")


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]  # returns a runner function
    monkeypatch.setenv("TSUNAMI_HOME", str(tmp_path / "home"))
    for name in ("TSUNAMI_API_KEY", "TSUNAMI_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str, key: str | None = None) -> str:
        env = {"TSUNAMI_API_KEY": key} if key else {}
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    return invoke


def test_tenants_and_keys_are_managed_from_the_cli_and_keys_are_shown_once(run) -> None:  # type: ignore[no-untyped-def]
    created = run("tenants", "create", "acme")
    admin_key = KEY_RE.search(created)
    assert admin_key is not None
    assert "acme" in run("tenants", "list")
    analyst = KEY_RE.search(run("keys", "create", "--tenant", "acme", "--role", "analyst", "--name", "bi"))
    assert analyst is not None
    listed = json.loads(run("keys", "list", "--tenant", "acme", "--json"))
    assert {k["role"] for k in listed} == {"admin", "analyst"}
    assert analyst.group(0) not in json.dumps(listed)
    prefix = analyst.group(0).split("_")[1]
    assert "revoked" in run("keys", "revoke", prefix, "--tenant", "acme")


def test_upload_tables_and_query_act_as_the_key_in_the_environment(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = KEY_RE.search(run("tenants", "create", "acme"))
    assert key is not None
    csv = tmp_path / "sales.csv"
    csv.write_text("Region,Amount\nnorth,10\nsouth,5\nnorth,1\n")
    assert "3 rows into bronze.sales" in run("upload", str(csv), "--dataset", "sales", key=key.group(0))
    assert "bronze.sales" in run("tables", key=key.group(0))
    out = json.loads(
        run("query", "SELECT region, sum(amount) AS s FROM sales GROUP BY 1 ORDER BY 1", "--json", key=key.group(0))
    )
    assert out["rows"] == [["north", 11], ["south", 5]]


def test_data_commands_without_a_key_say_how_to_get_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUNAMI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TSUNAMI_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["tables"])
    assert result.exit_code == 2
    assert "tsunami keys create" in result.output


def test_connections_are_created_with_a_prompted_password_and_tables_sync_with_progress(  # type: ignore[no-untyped-def]
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import uuid

    import psycopg

    url = os.environ.get("TSUNAMI_TEST_POSTGRES_URL")
    assert url, "TSUNAMI_TEST_POSTGRES_URL must point at the test PostgreSQL"
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    table = f"cli_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE public.{table} AS SELECT g AS id, g * 2 AS v FROM generate_series(1, 100) g")
    try:
        key = KEY_RE.search(run("tenants", "create", "acme"))
        assert key is not None
        info = psycopg.conninfo.conninfo_to_dict(dsn)
        result = CliRunner().invoke(
            app,
            [
                "connections",
                "create",
                "pg",
                "--host",
                str(info.get("host", "127.0.0.1")),
                "--database",
                str(info["dbname"]),
                "--user",
                str(info.get("user", "postgres")),
            ],
            env={"TSUNAMI_API_KEY": key.group(0)},
            input="prompted-secret\n",
        )
        assert result.exit_code == 0, result.output
        assert "ok" in result.output and "prompted-secret" not in result.output
        connection_id = re.search(r"\(([0-9a-f-]{36})\)", result.output)
        assert connection_id is not None
        out = run("sync", connection_id.group(1), f"public.{table}", key=key.group(0))
        assert "succeeded: 100 rows" in out
        listed = run("syncs", key=key.group(0))
        assert "cli_" in listed and "succeeded" in listed  # the table is narrow in a test terminal
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS public.{table}")


def test_runs_are_listed_shown_waited_for_and_a_finished_one_cannot_be_cancelled(  # type: ignore[no-untyped-def]
    run, tmp_path: Path
) -> None:
    key = KEY_RE.search(run("tenants", "create", "acme"))
    assert key is not None
    csv = tmp_path / "sales.csv"
    csv.write_text("region,amount\nnorth,10\n")
    run("upload", str(csv), "--dataset", "sales", key=key.group(0))
    assert json.loads(run("runs", "list", "--json", key=key.group(0))) == []
    from servicetsunami.services.container import Services
    from servicetsunami.services.runs import service as runs
    from servicetsunami.settings import Settings
    from tests.integration.runs import support  # registers the test kinds in this process

    svc = Services.open(Settings(_env_file=None))  # type: ignore[call-arg]  # the home of the CLI's environment
    try:
        principal = svc.authenticate(key.group(0))
        run_id = runs.submit(svc, principal, "test_echo", params={"n": 1})
        runs.wait_for_run(svc, principal, run_id, timeout=30)
    finally:
        svc.close()
    assert support.EXECUTED
    waited = CliRunner().invoke(app, ["runs", "get", run_id, "--wait", "30"], env={"TSUNAMI_API_KEY": key.group(0)})
    assert waited.exit_code == 0, waited.output
    shown = json.loads(waited.stdout)  # the progress bar goes to stderr
    assert (shown["state"], shown["result"]) == ("succeeded", {"echo": {"n": 1}})
    listed = json.loads(run("runs", "list", "--kind", "test_echo", "--json", key=key.group(0)))
    assert [r["run_id"] for r in listed] == [run_id]
    refused = CliRunner().invoke(app, ["runs", "cancel", run_id], env={"TSUNAMI_API_KEY": key.group(0)})
    assert refused.exit_code == 2 and "(conflict)" in refused.output


@pytest.mark.mysql
def test_connections_of_any_kind_are_listed_connected_with_prompted_secrets_and_synced(  # type: ignore[no-untyped-def]
    run,
) -> None:
    from tests.integration.mysql.support import execute, scratch_database

    key = KEY_RE.search(run("tenants", "create", "acme"))
    assert key is not None
    kinds = run("connections", "kinds", key=key.group(0))
    assert all(kind in kinds for kind in ("postgres", "mysql", "rest", "files"))
    with scratch_database() as database:
        execute(
            database, "CREATE TABLE t (id int PRIMARY KEY, v varchar(9))", "INSERT INTO t VALUES (1, 'a'), (2, 'b')"
        )
        result = CliRunner().invoke(
            app,
            [
                *(
                    "connections",
                    "connect",
                    "mysql",
                    "shop",
                    "--set",
                    "host=127.0.0.1",
                    "--set",
                    f"database={database}",
                ),
                *("--set", "user=root", "--set", "port=3306", "--no-secret"),  # root has no password here
            ],
            env={"TSUNAMI_API_KEY": key.group(0)},
        )
        assert result.exit_code == 0, result.output
        assert "ok MariaDB" in result.output or "ok MySQL" in result.output
        connection_id = re.search(r"\(([0-9a-f-]{36})\)", result.output)
        assert connection_id is not None
        assert "succeeded: 2 rows" in run("sync", connection_id.group(1), f"{database}.t", key=key.group(0))
        assert "mysql" in run("connections", "list", key=key.group(0))
    bad = CliRunner().invoke(
        app, ["connections", "connect", "mysql", "x", "--set", "host"], env={"TSUNAMI_API_KEY": key.group(0)}
    )
    assert bad.exit_code != 0


def test_a_key_made_with_a_preset_and_tools_lists_them(run) -> None:  # type: ignore[no-untyped-def]
    run("tenants", "create", "acme")
    made = run("keys", "create", "--tenant", "acme", "--role", "engineer", "--preset", "minimal", "--tools", "get_run")
    assert KEY_RE.search(made) is not None
    listed = {k["role"]: k for k in json.loads(run("keys", "list", "--tenant", "acme", "--json"))}
    assert listed["engineer"]["tool_preset"] == "minimal" and listed["engineer"]["tools"] == ["get_run"]
    assert listed["admin"]["tool_preset"] is None and listed["admin"]["tools"] is None
