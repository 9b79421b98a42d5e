"""Notebook runs on the Databricks engine: the notebook is put into the workspace and run with runs
submit (a ``notebook_task`` with ``base_parameters``), followed with runs get, its exit value read with
runs get-output, and cancel calls runs cancel; all through the SDK against the fake, whose notebook
runs execute in a local kernel."""

from __future__ import annotations

import time

import pytest
from databricks.sdk import WorkspaceClient

from servicetsunami.services.container import Services
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.notebooks import runs as nbruns
from servicetsunami.services.runs import service as runs
from servicetsunami.settings import DatabricksSettings
from tests.fakes.databricks.server import FakeDatabricks
from tests.helpers import make_principal
from tests.integration.mcp.support import local_client

pytestmark = pytest.mark.slow

NOTEBOOK = """# Databricks notebook source
dbutils.widgets.text("base", "0")
base = int(dbutils.widgets.get("base"))

# COMMAND ----------

n = spark.sql("SELECT 40 + 2 AS n").collect()[0].n
print("answer", n)

# COMMAND ----------

dbutils.notebook.exit(str(n + base))

# COMMAND ----------

print("never printed")
"""


def _sdk(settings: DatabricksSettings) -> WorkspaceClient:
    assert settings.token is not None
    return WorkspaceClient(host=settings.host, token=settings.token.get_secret_value(), auth_type="pat")


async def test_a_notebook_runs_in_the_workspace_with_its_parameters_and_gives_its_exit_value(
    on_databricks: Services, fake_workspace: DatabricksSettings
) -> None:
    acme, key = make_principal(on_databricks, "acme", "engineer")
    async with local_client(on_databricks, key) as client:
        await client.call_tool("import_notebook", {"path": "/daily/answer", "content": NOTEBOOK})
        started = await client.call_tool("run_notebook", {"notebook": "/daily/answer", "parameters": {"base": "100"}})
        assert started.structured_content is not None
        run_id = started.structured_content["run"]["run_id"]
    done = nbruns.wait_notebook_run(on_databricks, acme, run_id, timeout=120)
    assert done.run.state == "succeeded", done.run.error
    assert done.exit_value == "142"
    assert done.run.result is not None
    remote = _sdk(fake_workspace).jobs.get_run(done.run.result["databricks_run_id"])
    assert remote.state is not None and remote.state.result_state is not None
    assert remote.state.result_state.value == "SUCCESS"
    task = (remote.tasks or [])[0]
    assert task.notebook_task is not None
    assert task.notebook_task.notebook_path == "/Shared/servicetsunami/tenant_acme/daily/answer"
    assert task.notebook_task.base_parameters == {"base": "100"}
    output = _sdk(fake_workspace).jobs.get_run_output(task.run_id or 0)
    assert output.notebook_output is not None and output.notebook_output.result == "142"


def test_a_failing_notebook_fails_the_run_with_the_cell_named(
    on_databricks: Services, fake_workspace: DatabricksSettings
) -> None:
    acme, _ = make_principal(on_databricks, "acme", "engineer")
    cells = [{"source": "a = 1"}, {"source": "1 / 0", "title": "Divide"}]
    made = notebooks.create_notebook(on_databricks, acme, "/fails", cells=cells)
    run_id = nbruns.run_notebook(on_databricks, acme, made.notebook_id)
    done = nbruns.wait_notebook_run(on_databricks, acme, run_id, timeout=120)
    assert done.run.state == "failed"
    assert done.run.error_code == "code_failed"
    assert done.run.error is not None and "cell 2 (Divide)" in done.run.error and "ZeroDivisionError" in done.run.error


def test_cancel_cancels_the_workspace_run_and_interrupts_its_kernel(
    on_databricks: Services, fake_workspace: DatabricksSettings
) -> None:
    acme, _ = make_principal(on_databricks, "acme", "engineer")
    cells = [{"source": "import time\nwhile True:\n    time.sleep(0.05)"}]
    made = notebooks.create_notebook(on_databricks, acme, "/sleepy", cells=cells)
    run_id = nbruns.run_notebook(on_databricks, acme, made.notebook_id)
    deadline = time.monotonic() + 60
    while runs.get_run(on_databricks, acme, run_id).progress.message != "running in the workspace":
        assert time.monotonic() < deadline, "the run was not submitted to the workspace in time"
        on_databricks.launcher.wait_change(0.1)
    done = nbruns.cancel_notebook_run(on_databricks, acme, run_id)
    assert done.run.state == "canceled"
    listed = list(_sdk(fake_workspace).jobs.list_runs(completed_only=True))
    assert [r.state.result_state.value for r in listed if r.state and r.state.result_state] == ["CANCELED"]


def test_a_submit_whose_answer_is_lost_starts_one_workspace_run_only(
    on_databricks: Services, fake_workspace: DatabricksSettings, databricks_fake: FakeDatabricks
) -> None:
    acme, _ = make_principal(on_databricks, "acme", "engineer")
    made = notebooks.create_notebook(on_databricks, acme, "/once", cells=[{"source": "dbutils.notebook.exit('7')"}])
    fault = databricks_fake.inject("drop_after", path="/api/2.2/jobs/runs/submit", method="POST")
    run_id = nbruns.run_notebook(on_databricks, acme, made.notebook_id)
    done = nbruns.wait_notebook_run(on_databricks, acme, run_id, timeout=120)
    assert fault.fired == 1
    assert done.run.state == "succeeded", done.run.error
    assert done.exit_value == "7"
    assert len(list(_sdk(fake_workspace).jobs.list_runs())) == 1  # the retried submit gave the same run
