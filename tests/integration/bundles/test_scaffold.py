"""create_tests: the scaffold it writes runs green, as generated, on the notebook (or bundle) it was
made from: pytest in a subprocess drives the `tsunami` CLI against a real local home, real kernels
in the real sandbox. It fails when the notebook no longer writes what it wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from servicetsunami.errors import TsunamiError
from servicetsunami.services.bundles.scaffold import GeneratedFiles, create_tests
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion.uploads import upload_file
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.notebooks import runs as nbruns
from servicetsunami.settings import Settings
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal

pytestmark = pytest.mark.slow

BRONZE_TO_SILVER = """# Databricks notebook source
dbutils.widgets.text("min_amount", "10")
min_amount = int(dbutils.widgets.get("min_amount"))

# COMMAND ----------

orders = spark.table("bronze.orders")
big = orders.filter(f"amount >= {min_amount}").select("region", "amount")
big.write.mode("overwrite").saveAsTable("silver.big_orders")
print("kept", big.count())
"""

HELPERS = """# Databricks notebook source
SCHEMA = "silver"
"""

USES_HELPERS = """# Databricks notebook source
# MAGIC %run ./helpers

# COMMAND ----------

dbutils.widgets.dropdown("region", "north", ["north", "south"])
region = dbutils.widgets.get("region")
spark.sql(f"SELECT region, sum(amount) AS total FROM silver.big_orders WHERE region = '{region}' GROUP BY region") \\
    .write.mode("overwrite").saveAsTable(f"{SCHEMA}.totals_by_region")
"""

DATABRICKS_YML = """bundle:
  name: orders etl
include:
  - resources/*.yml
targets:
  dev:
    default: true
"""


@pytest.fixture
def owner(services: Services) -> tuple[Principal, str]:
    principal, key = make_principal(services, "acme", role="engineer")
    csv = b"region,amount\nnorth,10\nnorth,20\nsouth,5\nsouth,30\n"
    upload_file(services, principal, file_name="orders.csv", dataset_name="orders", content=csv)
    return principal, key


def write(generated: GeneratedFiles, folder: Path, extra: dict[str, str] | None = None) -> Path:
    for relative, text in {**(extra or {}), **generated.files}.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, "utf-8")
    return folder


def pytest_on(folder: Path, settings: Settings, key: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAMI_")}
    env |= {
        "TSUNAMI_HOME": str(settings.home),
        "TSUNAMI_API_KEY": key,
        "TSUNAMI_CLI": f"{sys.executable} -m servicetsunami.cli",
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_scaffold_of_a_notebook_runs_green_as_generated_and_checks_the_columns_it_writes(
    services: Services, settings: Settings, owner: tuple[Principal, str], tmp_path: Path
) -> None:
    principal, key = owner
    notebooks.import_notebook(services, principal, "/etl/orders_to_silver", BRONZE_TO_SILVER)
    first = nbruns.wait_notebook_run(
        services, principal, nbruns.run_notebook(services, principal, "/etl/orders_to_silver"), timeout=120
    )
    assert first.run.state == "succeeded"

    generated = create_tests(
        services, principal, notebook="/etl/orders_to_silver", parameter_sets=[{"min_amount": "20"}]
    )

    assert sorted(generated.files) == ["tests/README.md", "tests/conftest.py", "tests/test_orders_to_silver.py"]
    module = generated.files["tests/test_orders_to_silver.py"]
    assert "'silver.big_orders': ['region', 'amount']" in module
    assert "'defaults': {'min_amount': '10'}" in module and "'set_1': {'min_amount': '20'}" in module
    done = pytest_on(write(generated, tmp_path / "project"), settings, key)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout


def test_the_generated_test_fails_when_the_notebook_no_longer_writes_the_expected_columns(
    services: Services, settings: Settings, owner: tuple[Principal, str], tmp_path: Path
) -> None:
    principal, key = owner
    notebooks.import_notebook(services, principal, "/etl/orders_to_silver", BRONZE_TO_SILVER)
    nbruns.wait_notebook_run(
        services, principal, nbruns.run_notebook(services, principal, "/etl/orders_to_silver"), timeout=120
    )
    generated = create_tests(services, principal, notebook="/etl/orders_to_silver")
    changed = BRONZE_TO_SILVER.replace('.select("region", "amount")', '.select("region")')
    notebooks.import_notebook(services, principal, "/etl/orders_to_silver", changed, overwrite=True)

    done = pytest_on(write(generated, tmp_path / "project"), settings, key)

    assert done.returncode == 1, done.stdout[-3000:]
    assert "silver.big_orders has other columns than expected" in done.stdout


def test_the_scaffold_of_a_bundle_imports_its_notebooks_and_runs_each_green(
    services: Services, settings: Settings, owner: tuple[Principal, str], tmp_path: Path
) -> None:
    principal, key = owner
    bundle = {
        "databricks.yml": DATABRICKS_YML,
        "resources/orders.job.yml": "resources:\n  jobs:\n    orders: {}\n",
        "src/orders_to_silver.py": BRONZE_TO_SILVER,
        "src/helpers.py": HELPERS,
        "src/aggregate_big_orders.py": USES_HELPERS,  # reads what orders_to_silver writes
    }

    generated = create_tests(services, principal, bundle=bundle, parameter_sets=[{"region": "south"}])

    assert sorted(generated.files) == [
        "tests/README.md",
        "tests/conftest.py",
        "tests/test_aggregate_big_orders.py",
        "tests/test_helpers.py",
        "tests/test_orders_to_silver.py",
    ]
    conftest = generated.files["tests/conftest.py"]
    assert "'src/aggregate_big_orders.py': '/bundles/orders etl/src/aggregate_big_orders'" in conftest
    assert "['test_helpers', 'test_orders_to_silver', 'test_aggregate_big_orders']" in conftest
    done = pytest_on(write(generated, tmp_path / "project", extra=bundle), settings, key)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "6 passed" in done.stdout  # aggregate_big_orders ran after the notebook writing its input


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({}, "invalid_input"),
        ({"notebook": "/etl/x", "bundle": {"a.py": ""}}, "invalid_input"),
        ({"bundle": {"../outside.py": "# Databricks notebook source\n"}}, "invalid_input"),
        ({"bundle": {"/abs.py": "# Databricks notebook source\n"}}, "invalid_input"),
        ({"bundle": {"databricks.yml": "bundle:\n  name: x\n"}}, "invalid_input"),
        ({"bundle": {"databricks.yml": "bundle: [", "src/a.py": "# Databricks notebook source\n"}}, "invalid_input"),
        ({"notebook": "/etl/missing"}, "not_found"),
        ({"notebook": "/etl/orders_to_silver", "parameter_sets": [{"bad name!": "1"}]}, "invalid_input"),
        ({"notebook": "/etl/orders_to_silver", "parameter_sets": [{"min_amount": 20}]}, "invalid_input"),
        ({"notebook": "/etl/orders_to_silver", "parameter_sets": {"min_amount": "20"}}, "invalid_input"),
    ],
)
def test_create_tests_refuses_what_it_cannot_scaffold_with_a_code(
    services: Services, acme: Principal, arguments: dict[str, object], code: str
) -> None:
    notebooks.import_notebook(services, acme, "/etl/orders_to_silver", BRONZE_TO_SILVER)
    with pytest.raises(TsunamiError) as caught:
        create_tests(services, acme, **arguments)  # type: ignore[arg-type]  # wrong types on purpose
    assert caught.value.code == code


def test_another_tenants_notebook_cannot_be_scaffolded(services: Services, acme: Principal, globex: Principal) -> None:
    made = notebooks.import_notebook(services, acme, "/etl/orders_to_silver", BRONZE_TO_SILVER)
    for ref in (made.notebook_id, "/etl/orders_to_silver"):
        with pytest.raises(TsunamiError) as caught:
            create_tests(services, globex, notebook=ref)
        assert caught.value.code == "not_found"
