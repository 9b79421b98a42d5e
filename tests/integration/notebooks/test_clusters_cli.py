"""``tsunami clusters list|get|start|terminate|resize``: over the compute service on the data folder
(the local sandbox pool, the Databricks fake's clusters) and with ``--server`` over REST."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from servicetsunami.cli import app
from servicetsunami.services.container import Services
from servicetsunami.settings import DatabricksSettings
from tests.fakes.databricks.compute import DEFAULT_CLUSTER_ID
from tests.helpers import make_principal
from tests.integration.live_server import live_server

pytestmark = pytest.mark.slow


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    for name in ("TSUNAMI_API_KEY", "TSUNAMI_DATABASE_URL", "TSUNAMI_ENGINE"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def on_databricks_env(svc: Services, workspace: DatabricksSettings, key: str) -> dict[str, str]:
    assert workspace.token is not None
    return {
        "TSUNAMI_HOME": str(svc.settings.resolved_home),
        "TSUNAMI_ENGINE": "databricks",
        "TSUNAMI_DATABRICKS__HOST": workspace.host,
        "TSUNAMI_DATABRICKS__TOKEN": workspace.token.get_secret_value(),
        "TSUNAMI_API_KEY": key,
    }


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def test_locally_the_cli_shows_the_sandbox_pool_and_refuses_to_start_it(cli: CliRunner, services: Services) -> None:
    _, key = make_principal(services, "acme", "admin")
    env = {"TSUNAMI_HOME": str(services.settings.resolved_home), "TSUNAMI_API_KEY": key}
    listed = json.loads(ok(cli.invoke(app, ["clusters", "list", "--json"], env=env)))
    assert [c["id"] for c in listed] == ["sandbox"]
    assert "sandbox" in ok(cli.invoke(app, ["clusters", "get", "sandbox"], env=env))
    refused = cli.invoke(app, ["clusters", "start", "sandbox"], env=env)
    assert refused.exit_code == 2 and "not_supported" in refused.output


def test_on_databricks_an_admin_terminates_starts_and_resizes_a_cluster(
    cli: CliRunner, on_databricks: Services, fake_workspace: DatabricksSettings
) -> None:
    _, key = make_principal(on_databricks, "acme", "admin")
    env = on_databricks_env(on_databricks, fake_workspace, key)

    def tsunami(*args: str) -> str:
        return ok(cli.invoke(app, ["clusters", *args], env=env))

    listed = json.loads(tsunami("list", "--json"))
    assert [(c["id"], c["state"]) for c in listed] == [(DEFAULT_CLUSTER_ID, "RUNNING")]
    assert DEFAULT_CLUSTER_ID in tsunami("list")
    assert json.loads(tsunami("terminate", DEFAULT_CLUSTER_ID, "--json"))["state"] == "TERMINATING"
    assert json.loads(tsunami("get", DEFAULT_CLUSTER_ID, "--json"))["state"] == "TERMINATED"
    assert "PENDING" in tsunami("start", DEFAULT_CLUSTER_ID)
    assert json.loads(tsunami("get", DEFAULT_CLUSTER_ID, "--json"))["state"] == "RUNNING"
    resized = json.loads(tsunami("resize", DEFAULT_CLUSTER_ID, "--workers", "3", "--json"))
    assert (resized["state"], resized["num_workers"]) == ("RESIZING", 3)
    tsunami("get", DEFAULT_CLUSTER_ID)  # RESIZING -> RUNNING
    scaled = json.loads(tsunami("resize", DEFAULT_CLUSTER_ID, "--min-workers", "1", "--max-workers", "4", "--json"))
    assert scaled["autoscale"] == {"min_workers": 1, "max_workers": 4}
    missing = cli.invoke(app, ["clusters", "get", "0000-000000-missing"], env=env)
    assert missing.exit_code == 2 and "not_found" in missing.output


def test_resize_needs_a_worker_count_or_an_autoscale_range(
    cli: CliRunner, on_databricks: Services, fake_workspace: DatabricksSettings
) -> None:
    _, key = make_principal(on_databricks, "acme", "admin")
    env = on_databricks_env(on_databricks, fake_workspace, key)
    for args in ([], ["--min-workers", "1"], ["--workers", "2", "--min-workers", "1", "--max-workers", "3"]):
        refused = cli.invoke(app, ["clusters", "resize", DEFAULT_CLUSTER_ID, *args], env=env)
        assert refused.exit_code == 2, refused.output


def test_an_analyst_may_list_but_not_terminate(
    cli: CliRunner, on_databricks: Services, fake_workspace: DatabricksSettings
) -> None:
    _, key = make_principal(on_databricks, "acme", "analyst")
    env = on_databricks_env(on_databricks, fake_workspace, key)
    ok(cli.invoke(app, ["clusters", "list"], env=env))
    refused = cli.invoke(app, ["clusters", "terminate", DEFAULT_CLUSTER_ID], env=env)
    assert refused.exit_code == 2 and "permission_denied" in refused.output


def test_with_server_the_cluster_commands_go_to_the_server_over_rest(
    cli: CliRunner, on_databricks: Services, tmp_path: Path
) -> None:
    _, key = make_principal(on_databricks, "acme", "admin")
    env = {"TSUNAMI_HOME": str(tmp_path / "no-such-home"), "TSUNAMI_API_KEY": key}
    with live_server(on_databricks) as url:

        def tsunami(*args: str) -> Result:
            return cli.invoke(app, ["--server", url, "clusters", *args], env=env)

        listed = json.loads(ok(tsunami("list", "--json")))
        assert [c["id"] for c in listed] == [DEFAULT_CLUSTER_ID]
        resized = json.loads(ok(tsunami("resize", DEFAULT_CLUSTER_ID, "--workers", "2", "--json")))
        assert resized["num_workers"] == 2
        assert DEFAULT_CLUSTER_ID in ok(tsunami("get", DEFAULT_CLUSTER_ID))
        missing = tsunami("get", "0000-000000-missing")
        assert missing.exit_code == 2 and "not_found" in missing.output
    assert not (tmp_path / "no-such-home").exists()
