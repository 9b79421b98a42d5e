"""Notebook runs in the sandboxed kernel: a Databricks notebook runs unchanged with parameters,
errors name the cell, cancel interrupts, %run includes another notebook, tables are saved into
silver/gold only, and code never runs when the sandbox cannot start (unless allowed)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from servicetsunami.errors import SandboxUnavailable
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion.uploads import upload_file
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.notebooks import runs as nbruns
from servicetsunami.services.runs import service as runs
from servicetsunami.settings import Settings
from servicetsunami.tenancy import Principal

pytestmark = pytest.mark.slow
GOLDEN = Path(__file__).parents[2] / "unit" / "notebooks" / "golden"

DATABRICKS_NOTEBOOK = """# Databricks notebook source
# MAGIC %md
# MAGIC # Sales by region

# COMMAND ----------

# DBTITLE 1,Parameters
dbutils.widgets.text("region", "north")
region = dbutils.widgets.get("region")

# COMMAND ----------

df = spark.table("bronze.sales")
print("rows", df.count())
display(df.groupBy("region").agg({"amount": "sum"}).orderBy("region"))

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT count(*) AS n FROM bronze.sales WHERE region = 'south'

# COMMAND ----------

picked = spark.sql(f"SELECT amount FROM bronze.sales WHERE region = '{region}'").collect()
total = sum(r.amount for r in picked)
print("total", region, total)
pdf = df.filter("amount > 15").select("region", "amount").toPandas()
print("pandas", len(pdf))

# COMMAND ----------

dbutils.fs.put(f"/Volumes/tenant_acme/bronze/landing/notes/{region}.txt", f"total={total}", overwrite=True)
print([f.name for f in dbutils.fs.ls("/Volumes/tenant_acme/bronze/landing/notes")])
print(dbutils.fs.head(f"/Volumes/tenant_acme/bronze/landing/notes/{region}.txt"))

# COMMAND ----------

dbutils.notebook.exit(str(total))

# COMMAND ----------

print("never printed")
"""


@pytest.fixture
def sales(services: Services, acme: Principal) -> None:
    csv = b"region,amount\nnorth,10\nnorth,20\nsouth,5\nsouth,7\nsouth,30\n"
    upload_file(services, acme, file_name="sales.csv", dataset_name="sales", content=csv)


def run(services: Services, principal: Principal, ref: str, **params: str) -> nbruns.NotebookRunPublic:
    run_id = nbruns.run_notebook(services, principal, ref, parameters=params)
    return nbruns.wait_notebook_run(services, principal, run_id, timeout=120)


def test_a_databricks_notebook_runs_unchanged_with_parameters(services: Services, acme: Principal, sales: None) -> None:
    made = notebooks.import_notebook(services, acme, "/sales/by_region", DATABRICKS_NOTEBOOK)
    done = run(services, acme, made.notebook_id, region="south")
    assert done.run.state == "succeeded", done.run.error
    assert done.exit_value == "42"
    assert done.run.result is not None and done.run.result["exit_value"] == "42"
    texts = "".join(c.text for c in done.cells)
    assert "rows 5" in texts
    assert "total south 42" in texts
    assert "pandas 2" in texts
    assert "total=42" in texts and "south.txt" in texts
    assert "never printed" not in texts
    tables = [t for c in done.cells for t in c.tables]
    assert tables[0]["columns"] == ["region", "sum(amount)"]
    assert tables[0]["rows"] == [["north", 30], ["south", 42]]
    assert tables[1]["rows"] == [[3]]
    assert [c.status for c in done.cells if c.cell_type == "code"][-1] == "not_run"
    assert all(c.seconds is not None for c in done.cells if c.status == "succeeded")
    exported = notebooks.export_notebook(services, acme, made.notebook_id, format="source")
    assert exported.content == DATABRICKS_NOTEBOOK


def test_the_executed_notebook_is_kept_with_the_run(services: Services, acme: Principal) -> None:
    made = notebooks.create_notebook(services, acme, "/kept", cells=[{"source": "print(6 * 7)"}])
    run_id = nbruns.run_notebook(services, acme, made.notebook_id)
    runs.wait_for_run(services, acme, run_id, timeout=120)
    got = nbruns.get_notebook_run(services, acme, run_id, include_notebook=True)
    assert got.executed_notebook is not None
    outputs = got.executed_notebook["cells"][0]["outputs"]
    assert "".join(outputs[0]["text"]) == "42\n"


def test_parameters_go_after_the_parameters_cell(services: Services, acme: Principal) -> None:
    cells = [
        {"source": "dbutils.widgets.text('x', 'default')\nx = dbutils.widgets.get('x')", "tags": ["parameters"]},
        {"source": "dbutils.notebook.exit(x + '/' + dbutils.widgets.get('x'))"},
    ]
    made = notebooks.create_notebook(services, acme, "/params", cells=cells)
    assert run(services, acme, made.notebook_id, x="given").exit_value == "given/given"
    assert run(services, acme, made.notebook_id).exit_value == "default/default"


def test_a_failing_cell_is_named_in_the_error(services: Services, acme: Principal) -> None:
    cells = [{"source": "a = 1"}, {"source": "1 / 0", "title": "Divide"}, {"source": "print('after')"}]
    made = notebooks.create_notebook(services, acme, "/fails", cells=cells)
    done = run(services, acme, made.notebook_id, p="1")
    assert done.run.state == "failed"
    assert done.run.error_code == "code_failed"
    assert done.run.error is not None and "cell 2 (Divide)" in done.run.error and "ZeroDivisionError" in done.run.error
    assert [c.status for c in done.cells] == ["succeeded", "succeeded", "failed", "not_run"]
    assert done.cells[2].error is not None and "ZeroDivisionError" in done.cells[2].error


def test_cancel_interrupts_the_kernel(services: Services, acme: Principal) -> None:
    cells = [{"source": "print('started', flush=True)\nimport time\nwhile True:\n    time.sleep(0.05)"}]
    made = notebooks.create_notebook(services, acme, "/sleepy", cells=cells)
    run_id = nbruns.run_notebook(services, acme, made.notebook_id)
    deadline = time.monotonic() + 60
    while (status := runs.get_run(services, acme, run_id)).progress.message != "cell 1":
        assert status.state in ("queued", "running") and time.monotonic() < deadline, status
        time.sleep(0.05)
    done = nbruns.cancel_notebook_run(services, acme, run_id)
    assert done.run.state == "canceled"


def test_percent_run_includes_another_notebook_of_the_folder(services: Services, acme: Principal) -> None:
    notebooks.import_notebook(
        services, acme, "/lib/helpers", "# Databricks notebook source\ndef double(x):\n    return 2 * x\n"
    )
    made = notebooks.import_notebook(
        services,
        acme,
        "/lib/main",
        "# Databricks notebook source\n# MAGIC %run ./helpers\n\n# COMMAND ----------\n\n"
        "dbutils.notebook.exit(double(21))\n",
    )
    assert run(services, acme, made.notebook_id).exit_value == "42"


def test_a_sql_notebook_runs_its_cells_as_sql(services: Services, acme: Principal, sales: None) -> None:
    made = notebooks.import_notebook(
        services,
        acme,
        "/sql/totals",
        "-- Databricks notebook source\nSELECT region, sum(amount) AS total FROM bronze.sales GROUP BY region "
        "ORDER BY region\n\n-- COMMAND ----------\n\n-- MAGIC %python\n-- MAGIC dbutils.notebook.exit('sql ok')\n",
    )
    done = run(services, acme, made.notebook_id)
    assert done.run.state == "succeeded", done.run.error
    assert done.cells[0].tables[0]["rows"] == [["north", 30], ["south", 42]]
    assert done.exit_value == "sql ok"


def test_save_as_table_writes_silver_and_refuses_bronze(services: Services, acme: Principal, sales: None) -> None:
    cells = [
        {"source": "north = spark.table('bronze.sales').filter(\"region = 'north'\")"},
        {"source": "north.write.mode('overwrite').saveAsTable('silver.north')"},
        {"source": "dbutils.notebook.exit(spark.table('silver.north').count())"},
    ]
    made = notebooks.create_notebook(services, acme, "/save", cells=cells)
    assert run(services, acme, made.notebook_id).exit_value == "2"
    bad = notebooks.create_notebook(
        services,
        acme,
        "/save-bronze",
        cells=[{"source": "spark.table('bronze.sales').write.saveAsTable('bronze.copy')"}],
    )
    done = run(services, acme, bad.notebook_id)
    assert done.run.error_code == "code_failed"
    assert done.run.error is not None and "permission_denied" in done.run.error


def test_another_tenants_table_is_not_readable(
    services: Services, acme: Principal, globex: Principal, sales: None
) -> None:
    cells = [{"source": "spark.sql('SELECT * FROM tenant_acme.bronze.sales').count()"}]
    made = notebooks.create_notebook(services, globex, "/peek", cells=cells)
    done = run(services, globex, made.notebook_id)
    assert done.run.state == "failed"
    assert done.run.error is not None and "5" not in done.cells[0].text


def test_multi_tenant_mode_refuses_to_run_code_without_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nbruns.bwrap, "probe", lambda uid: "bubblewrap is not installed")
    settings = Settings(home=tmp_path / "mt", multi_tenant=True, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(SandboxUnavailable) as info:
        nbruns.sandbox_mode(_FakeSvc(settings))  # type: ignore[arg-type]
    assert info.value.code == "sandbox_unavailable"
    allowed = Settings(home=tmp_path / "mt", multi_tenant=True, sandbox={"unsandboxed": True}, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(SandboxUnavailable):
        nbruns.sandbox_mode(_FakeSvc(allowed))  # type: ignore[arg-type]


def test_multi_tenant_mode_refuses_the_weaker_sandbox_of_a_service_not_running_as_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nbruns.bwrap, "probe", lambda uid: None)  # bubblewrap itself would start
    monkeypatch.setattr(nbruns.bwrap, "running_as_root", lambda: False)
    multi = Settings(home=tmp_path / "mt", multi_tenant=True, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(SandboxUnavailable) as info:
        nbruns.sandbox_mode(_FakeSvc(multi))  # type: ignore[arg-type]
    assert info.value.code == "sandbox_unavailable"
    single = Settings(home=tmp_path / "su", _env_file=None)  # type: ignore[call-arg]
    assert nbruns.sandbox_mode(_FakeSvc(single)) is True  # type: ignore[arg-type]  # one user: a user namespace will do


def test_single_user_mode_runs_unsandboxed_only_when_the_operator_says_so(
    services: Services, acme: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nbruns.bwrap, "probe", lambda uid: "bubblewrap is not installed")
    made = notebooks.create_notebook(services, acme, "/plain", cells=[{"source": "dbutils.notebook.exit('ran')"}])
    with pytest.raises(SandboxUnavailable):
        nbruns.run_notebook(services, acme, made.notebook_id)
    monkeypatch.setattr(services.settings.sandbox, "unsandboxed", True)
    assert run(services, acme, made.notebook_id).exit_value == "ran"


class _FakeSvc:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
