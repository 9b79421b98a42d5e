"""``tsunami --server URL``: the commands with a REST twin talk to the real app served on a loopback
port, as the key in TSUNAMI_API_KEY, without opening (or creating) a data folder of their own."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from typer.testing import CliRunner, Result

from servicetsunami.cli import app
from servicetsunami.services.container import Services
from tests.helpers import make_principal
from tests.integration.live_server import live_server


@pytest.fixture
def server_url(services: Services) -> Iterator[str]:
    with live_server(services) as url:
        yield url


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI in an empty folder whose TSUNAMI_HOME does not exist: only the server has data."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TSUNAMI_HOME", str(tmp_path / "no-such-home"))
    monkeypatch.delenv("TSUNAMI_API_KEY", raising=False)
    return CliRunner()


def tsunami(cli: CliRunner, server: str, key: str, *args: str) -> Result:
    return cli.invoke(app, ["--server", server, *args], env={"TSUNAMI_API_KEY": key})


def test_upload_tables_query_and_runs_go_to_the_server(
    cli: CliRunner, server_url: str, services: Services, tmp_path: Path
) -> None:
    _, key = make_principal(services, "acme", "engineer")
    csv = tmp_path / "sales.csv"
    csv.write_text("Region,Amount\nnorth,10\nsouth,5\nnorth,1\n")
    uploaded = tsunami(cli, server_url, key, "upload", str(csv), "--dataset", "sales")
    assert uploaded.exit_code == 0, uploaded.output
    assert "3 rows into bronze.sales" in uploaded.output
    listed = tsunami(cli, server_url, key, "tables", "--layer", "bronze")
    assert listed.exit_code == 0 and "bronze.sales" in listed.output, listed.output
    answered = tsunami(
        cli, server_url, key, "query", "SELECT region, sum(amount) AS s FROM sales GROUP BY 1 ORDER BY 1", "--json"
    )
    assert answered.exit_code == 0, answered.output
    assert json.loads(answered.output)["rows"] == [["north", 11], ["south", 5]]
    runs = tsunami(cli, server_url, key, "runs", "list", "--json")
    assert runs.exit_code == 0 and json.loads(runs.output) == [], runs.output
    syncs = tsunami(cli, server_url, key, "syncs")
    assert syncs.exit_code == 0, syncs.output
    assert not (tmp_path / "no-such-home").exists() and not (tmp_path / ".tsunami").exists()


def test_the_server_s_errors_come_back_with_their_codes(cli: CliRunner, server_url: str, services: Services) -> None:
    _, key = make_principal(services, "acme", "analyst")
    refused = tsunami(cli, server_url, key, "query", "slect 1")
    missing = tsunami(cli, server_url, key, "runs", "get", "no-such-run")
    wrong_key = tsunami(cli, server_url, "tsk_00000000_not-a-key", "tables")
    assert (refused.exit_code, missing.exit_code, wrong_key.exit_code) == (2, 2, 2)
    assert "(sql_syntax_error)" in refused.output
    assert "(not_found)" in missing.output
    assert "(unauthenticated)" in wrong_key.output


def test_commands_without_a_rest_twin_refuse_server_and_say_where_they_work(cli: CliRunner, server_url: str) -> None:
    result = tsunami(cli, server_url, "tsk_x", "keys", "list", "--tenant", "acme")
    assert result.exit_code == 2
    assert "(not_supported)" in result.output and "without --server" in result.output


def test_a_server_that_does_not_answer_is_reported_as_unreachable(cli: CliRunner) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens: the connection is refused
    result = tsunami(cli, f"http://127.0.0.1:{port}", "tsk_x", "tables")
    assert result.exit_code == 2 and "(server_unreachable)" in result.output


def test_a_sync_started_with_server_runs_there_and_is_listed(
    cli: CliRunner, server_url: str, services: Services
) -> None:
    from servicetsunami.services.runs import service as runs

    runs.ensure_worker(services)  # the served app does not own these services, so it claims no runs itself
    url = os.environ.get("TSUNAMI_TEST_POSTGRES_URL")
    assert url, "TSUNAMI_TEST_POSTGRES_URL must point at the test PostgreSQL"
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    table = f"cli_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE public.{table} AS SELECT g AS id, g * 2 AS v FROM generate_series(1, 100) g")
    try:
        _, key = make_principal(services, "acme", "admin")
        source = {
            "name": "pg",
            "host": str(info.get("host", "127.0.0.1")),
            "port": int(info.get("port", 5432)),
            "database": str(info["dbname"]),
            "user": str(info.get("user", "postgres")),
            "password": str(info.get("password", "")),
            "sslmode": "disable",
        }
        made = httpx.post(f"{server_url}/api/v1/data-sources", json=source, headers={"Authorization": f"Bearer {key}"})
        assert made.status_code == 201, made.text
        synced = tsunami(cli, server_url, key, "sync", made.json()["id"], f"public.{table}")
        assert synced.exit_code == 0, synced.output
        assert "succeeded: 100 rows" in synced.output
        listed = tsunami(cli, server_url, key, "syncs")
        assert listed.exit_code == 0 and "succeeded" in listed.output, listed.output
        found = json.loads(tsunami(cli, server_url, key, "runs", "list", "--kind", "sync", "--json").stdout)
        assert [run["state"] for run in found] == ["succeeded"]
        shown = tsunami(cli, server_url, key, "runs", "get", found[0]["run_id"], "--wait", "5")
        assert shown.exit_code == 0 and json.loads(shown.stdout)["state"] == "succeeded"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS public.{table}")
