"""``tsunami tools list`` and ``tsunami tools call``: the CLI as an MCP client of the key in
TSUNAMI_API_KEY, on the local data folder (the server built in process) and, with ``--server URL``,
against the real app served on a loopback port (REST for the list, the MCP endpoint for calls)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from servicetsunami.cli import app
from servicetsunami.services.container import Services
from servicetsunami.services.identity import tenants
from tests.helpers import make_principal
from tests.integration.live_server import live_server


@pytest.fixture
def local(services: Services, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI on the data folder of ``services``."""
    monkeypatch.setenv("TSUNAMI_HOME", str(services.settings.resolved_home))
    for name in ("TSUNAMI_API_KEY", "TSUNAMI_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


@pytest.fixture
def server_url(services: Services) -> Iterator[str]:
    with live_server(services) as url:
        yield url


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI in an empty folder whose TSUNAMI_HOME does not exist: only the server has data."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TSUNAMI_HOME", str(tmp_path / "no-such-home"))
    monkeypatch.delenv("TSUNAMI_API_KEY", raising=False)
    return CliRunner()


def tsunami(cli: CliRunner, key: str, *args: str) -> Result:
    return cli.invoke(app, list(args), env={"TSUNAMI_API_KEY": key})


def _names(result: Result) -> set[str]:
    assert result.exit_code == 0, result.output
    return {t["name"] for t in json.loads(result.output)}


def _check_the_doors(cli: CliRunner, services: Services, *server: str) -> None:
    _, engineer = make_principal(services, "acme", "engineer")
    minimal = tenants.create_api_key(
        services.store, tenant_slug="acme", name="minimal", role="engineer", tool_preset="minimal"
    ).plaintext
    every = _names(tsunami(cli, engineer, *server, "tools", "list", "--json"))
    few = _names(tsunami(cli, minimal, *server, "tools", "list", "--json"))
    assert {"query_sql", "list_tables", "create_job"} <= every
    assert "query_sql" in few and "create_job" not in few and few < every
    table = tsunami(cli, engineer, *server, "tools", "list")
    assert table.exit_code == 0 and "query_sql" in table.output and f"{len(every)} tools" in table.output

    called = tsunami(cli, engineer, *server, "tools", "call", "query_sql", "--args", '{"sql": "SELECT 41 + 1 AS x"}')
    assert called.exit_code == 0, called.output
    assert json.loads(called.output)["rows"] == [[42]]

    refused = tsunami(cli, minimal, *server, "tools", "call", "create_job", "--args", '{"spec": {}}')
    assert refused.exit_code == 2 and "(tool_not_enabled)" in refused.output, refused.output
    missing = tsunami(cli, engineer, *server, "tools", "call", "get_run", "--args", '{"run_id": "nope"}')
    assert missing.exit_code == 2 and "(not_found)" in missing.output, missing.output
    for bad in ("{not json", "[1, 2]"):
        wrong = tsunami(cli, engineer, *server, "tools", "call", "query_sql", "--args", bad)
        assert wrong.exit_code == 2 and "(invalid_input)" in wrong.output, wrong.output


def test_tools_are_listed_and_called_on_the_local_data_folder(local: CliRunner, services: Services) -> None:
    _check_the_doors(local, services)


def test_tools_are_listed_and_called_on_a_running_server(
    remote: CliRunner, server_url: str, services: Services
) -> None:
    _check_the_doors(remote, services, "--server", server_url)
    unknown = tsunami(remote, "tsk_00000000_nope", "--server", server_url, "tools", "call", "query_sql")
    assert unknown.exit_code == 2 and "(unauthenticated)" in unknown.output, unknown.output
    gone = tsunami(remote, "tsk_00000000_nope", "--server", "http://127.0.0.1:9", "tools", "call", "query_sql")
    assert gone.exit_code == 2 and "(server_unreachable)" in gone.output, gone.output
