"""analyze_notebook on notebooks stored in a tenant: language and cells, packages with versions,
%pip lines, tables read and written (resolved to the tenant's catalog), widgets, dbutils, external
paths, network calls, %run targets and findings with their cell and line; bad notebooks give
findings, not failures; another tenant's notebook is not found."""

from __future__ import annotations

import importlib.metadata

import pytest

from servicetsunami.errors import TsunamiError
from servicetsunami.services.bundles.analysis import NotebookAnalysis, analyze_notebook, analyze_source
from servicetsunami.services.container import Services
from servicetsunami.services.notebooks import notebooks
from servicetsunami.tenancy import Principal

SEP = "\n\n# COMMAND ----------\n\n"


def source(*cells: str) -> str:
    return "# Databricks notebook source\n" + SEP.join(cells) + "\n"


def analyse(services: Services, principal: Principal, *cells: str, path: str = "/etl/daily") -> NotebookAnalysis:
    notebooks.import_notebook(services, principal, path, source(*cells), overwrite=True)
    return analyze_notebook(services, principal, path)


def codes(analysis: NotebookAnalysis) -> list[tuple[str, int | None, int | None]]:
    return [(f.code, f.cell, f.line) for f in analysis.findings]


def test_language_cells_and_packages_with_their_versions_from_the_kernels_environment(
    services: Services, acme: Principal
) -> None:
    analysis = analyse(
        services,
        acme,
        "# MAGIC %md\n# MAGIC # Daily",
        "import os, json\nimport pandas as pd\nfrom pyspark.sql import functions as F",
        "import numpy\nfrom yaml import safe_load\nimport pandas",
    )

    assert (analysis.language, analysis.cells, analysis.path, analysis.version) == ("python", 3, "/etl/daily", 1)
    assert [(p.module, p.package, p.version, p.cells) for p in analysis.packages] == [
        ("pandas", "pandas", importlib.metadata.version("pandas"), [1, 2]),
        ("numpy", "numpy", importlib.metadata.version("numpy"), [2]),
        ("yaml", "PyYAML", importlib.metadata.version("PyYAML"), [2]),
    ]
    assert analysis.findings == []


def test_a_module_not_installed_where_notebooks_run_is_a_finding(services: Services, acme: Principal) -> None:
    analysis = analyse(services, acme, "import surely_not_a_module_here")

    assert [(p.module, p.package, p.version) for p in analysis.packages] == [("surely_not_a_module_here", None, None)]
    assert codes(analysis) == [("unknown_module", 0, None)]


def test_pip_lines_are_listed_and_unpinned_installs_are_findings(services: Services, acme: Principal) -> None:
    analysis = analyse(
        services,
        acme,
        "# MAGIC %pip install requests==2.32.3 'rich>=13' -q",
        "%pip install tqdm\nimport requests",
    )

    assert analysis.pip_lines == ["%pip install requests==2.32.3 'rich>=13' -q", "%pip install tqdm"]
    assert ("pip_unpinned", 0, 1) in codes(analysis)
    assert ("pip_unpinned", 1, 1) in codes(analysis)
    assert [f.message.split()[0] for f in analysis.findings if f.code == "pip_unpinned"] == ["rich>=13", "tqdm"]


def test_tables_read_and_written_are_resolved_to_the_tenants_catalog_with_how_they_are_reached(
    services: Services, acme: Principal
) -> None:
    analysis = analyse(
        services,
        acme,
        'orders = spark.table("orders")\ncustomers = spark.read.table("bronze.customers")\n'
        'spark.sql("""\nSELECT o.*\nFROM silver.orders_clean o\nJOIN tenant_acme.gold.regions r ON o.r = r.id\n""")',
        'orders.write.mode("overwrite").saveAsTable("silver.orders_clean")\n'
        'orders.write.insertInto("gold.daily")\norders.writeTo("silver.appended").append()',
        "# MAGIC %sql\n# MAGIC -- totals\n# MAGIC CREATE OR REPLACE TABLE gold.totals AS\n"
        "# MAGIC SELECT region, sum(amount) FROM silver.orders_clean GROUP BY region",
    )

    assert [(t.table, t.access, t.cell, t.line, t.via) for t in analysis.tables] == [
        ("tenant_acme.bronze.orders", "read", 0, 1, "spark.table"),
        ("tenant_acme.bronze.customers", "read", 0, 2, "spark.read.table"),
        ("tenant_acme.silver.orders_clean", "read", 0, 5, "spark.sql"),
        ("tenant_acme.gold.regions", "read", 0, 6, "spark.sql"),
        ("tenant_acme.silver.orders_clean", "write", 1, 1, "saveAsTable"),
        ("tenant_acme.gold.daily", "write", 1, 2, "insertInto"),
        ("tenant_acme.silver.appended", "write", 1, 3, "writeTo"),
        ("tenant_acme.gold.totals", "write", 2, 3, "%sql"),
        ("tenant_acme.silver.orders_clean", "read", 2, 4, "%sql"),
    ]
    assert ("sql_write_refused_locally", 2, 3) in codes(analysis)
    assert ("not_supported_locally", 1, 2) in codes(analysis)  # insertInto runs on Databricks only


def test_sql_built_at_run_time_is_reported_as_dynamic_not_guessed(services: Services, acme: Principal) -> None:
    analysis = analyse(
        services,
        acme,
        'layer = "silver"\nname = dbutils.widgets.get("name")\n'
        'spark.sql(f"SELECT * FROM {layer}.orders")\n'
        'spark.sql(f"SELECT * FROM silver.{name}")\n'
        'spark.sql("SELECT * FROM gold.{} WHERE d = 1".format(name))\n'
        "spark.sql(query_from_somewhere)",
        "# MAGIC %sql\n# MAGIC SELECT * FROM ${schema}.events",
    )

    assert [(t.table, t.line) for t in analysis.tables] == [
        ("tenant_acme.silver.orders", 3),
        ("silver.{name}", 4),
        ("gold.{?}", 5),
        ("${schema}.events", 2),
    ]
    assert [c for c in codes(analysis) if c[0].startswith("dynamic")] == [
        ("dynamic_table", 0, 4),
        ("dynamic_table", 0, 5),
        ("dynamic_sql", 0, 6),
        ("dynamic_table", 1, 2),
    ]


def test_widgets_of_every_kind_with_their_defaults_and_choices(services: Services, acme: Principal) -> None:
    analysis = analyse(
        services,
        acme,
        'dbutils.widgets.text("run_date", "2024-01-01", "Run date")\n'
        'dbutils.widgets.dropdown("region", "north", ["north", "south"])\n'
        'dbutils.widgets.combobox(name="unit", defaultValue="kg", choices=["kg", "lb"])\n'
        'dbutils.widgets.multiselect("days", "mon", ("mon", "tue"))\n'
        'dbutils.widgets.text("empty", "")',
        "# MAGIC %sql\n# MAGIC CREATE WIDGET TEXT since DEFAULT '2020-01-01'",
    )

    assert [(w.name, w.kind, w.default, w.choices, w.cell) for w in analysis.widgets] == [
        ("run_date", "text", "2024-01-01", [], 0),
        ("region", "dropdown", "north", ["north", "south"], 0),
        ("unit", "combobox", "kg", ["kg", "lb"], 0),
        ("days", "multiselect", "mon", ["mon", "tue"], 0),
        ("empty", "text", "", [], 0),
        ("since", "text", "2020-01-01", [], 1),
    ]
    assert analysis.dbutils == [
        "dbutils.widgets.text",
        "dbutils.widgets.dropdown",
        "dbutils.widgets.combobox",
        "dbutils.widgets.multiselect",
    ]


def test_dbutils_external_paths_network_calls_and_run_targets(services: Services, acme: Principal) -> None:
    analysis = analyse(
        services,
        acme,
        "import requests\nimport urllib.request as ur\nfrom httpx import Client\nimport socket",
        'requests.post("https://api.example.com/x", json={})\nur.urlopen("https://example.com")\n'
        'socket.create_connection(("db", 5432))\nClient()',
        'df = spark.read.format("csv").load("s3://bucket/raw/")\n'
        'dbutils.fs.ls("/Volumes/other_catalog/bronze/landing/")\n'
        'dbutils.fs.ls("/Volumes/tenant_acme/bronze/landing/")\n'
        'df.write.format("delta").save("abfss://c@acct.dfs.core.windows.net/t")\n'
        'open("/home/me/data.csv")\nopen("/dbfs/FileStore/x.csv")\n'
        'dbutils.notebook.run("./child", 60)\ndbutils.secrets.get("scope", "key")',
        "# MAGIC %run ./helpers",
        "# MAGIC %run /shared/setup $env=dev",
    )

    assert analysis.network_calls == [
        "requests.post",
        "urllib.request.urlopen",
        "socket.create_connection",
        "httpx.Client",
    ]
    assert analysis.external_paths == [
        "s3://bucket/raw/",
        "/Volumes/other_catalog/bronze/landing/",
        "abfss://c@acct.dfs.core.windows.net/t",
        "/home/me/data.csv",
        "/dbfs/FileStore/x.csv",
    ]
    assert analysis.dbutils == ["dbutils.fs.ls", "dbutils.notebook.run", "dbutils.secrets.get"]
    assert analysis.runs == ["./helpers", "/shared/setup"]
    assert [c for c in codes(analysis) if c[0] == "absolute_path"] == [
        ("absolute_path", 2, 1),
        ("absolute_path", 2, 2),
        ("absolute_path", 2, 4),
        ("absolute_path", 2, 5),
        ("absolute_path", 2, 6),
    ]
    assert [c for c in codes(analysis) if c[0] in ("network_call", "not_supported_locally")] == [
        ("network_call", 1, 1),
        ("network_call", 1, 2),
        ("network_call", 1, 3),
        ("network_call", 1, 4),
        ("not_supported_locally", 2, 7),
        ("not_supported_locally", 2, 8),
    ]


def test_hard_coded_secrets_are_findings_that_never_repeat_the_secret(services: Services, acme: Principal) -> None:
    aws, token = "AKIA" + "Q" * 16, "dapi" + "0123456789abcdef" * 2
    analysis = analyse(
        services,
        acme,
        f'password = "hunter2hunter2"\nconn = connect(host="db", api_key="k-123456")\nkey = "{aws}"\n'
        'token = dbutils.secrets.get("s", "k")\nempty_password = ""',
        f'headers = {{"Authorization": "Bearer {token}"}}\nsettings = {{"client_secret": "abcdefgh"}}',
        "# MAGIC %sql\n# MAGIC SELECT * FROM bronze.t\n# MAGIC -- postgres://admin:s3cretpw@db.example.com/x",
    )

    secrets = [c for c in codes(analysis) if c[0] == "hard_coded_secret"]
    assert secrets == [
        ("hard_coded_secret", 0, 1),
        ("hard_coded_secret", 0, 2),
        ("hard_coded_secret", 0, 3),
        ("hard_coded_secret", 1, 1),
        ("hard_coded_secret", 1, 2),
        ("hard_coded_secret", 2, 3),
    ]
    text = analysis.model_dump_json()
    for secret in ("hunter2hunter2", "k-123456", aws, token, "abcdefgh", "s3cretpw"):
        assert secret not in text


def test_collect_or_to_pandas_on_a_whole_table_is_a_finding_but_not_after_a_limit(
    services: Services, acme: Principal
) -> None:
    analysis = analyse(
        services,
        acme,
        'df = spark.table("bronze.events")\nrows = df.collect()\n'
        "first = df.limit(10).collect()\n"
        'pdf = spark.sql("SELECT * FROM bronze.events").toPandas()\n'
        'small = spark.sql("SELECT * FROM bronze.events LIMIT 5").toPandas()\n'
        'totals = spark.sql("SELECT region, count(*) FROM bronze.events GROUP BY region").collect()\n'
        'df = df.filter("amount > 10")\nfiltered = df.collect()\n'
        "other = some_frame.collect()",
    )

    assert [c for c in codes(analysis) if c[0] == "collect_without_limit"] == [
        ("collect_without_limit", 0, 2),
        ("collect_without_limit", 0, 4),
        ("collect_without_limit", 0, 8),
    ]


def test_reading_another_catalog_is_an_error_finding(services: Services, acme: Principal) -> None:
    analysis = analyse(
        services,
        acme,
        'spark.table("tenant_globex.bronze.orders")\nspark.sql("SELECT * FROM main.default.t")',
        "# MAGIC %sql\n# MAGIC SELECT 1\n# MAGIC FROM hive_metastore.default.x",
    )

    assert [(t.table, t.cell) for t in analysis.tables] == [
        ("tenant_globex.bronze.orders", 0),
        ("main.default.t", 0),
        ("hive_metastore.default.x", 1),
    ]
    assert codes(analysis) == [("other_catalog", 0, 1), ("other_catalog", 0, 2), ("other_catalog", 1, 3)]
    assert {f.severity for f in analysis.findings} == {"error"}


def test_saving_outside_silver_and_gold_is_flagged_as_refused_by_the_local_runner(
    services: Services, acme: Principal
) -> None:
    analysis = analyse(services, acme, 'df.write.saveAsTable("bronze.copy")\ndf.write.saveAsTable("plain")')

    assert [t.table for t in analysis.tables] == ["tenant_acme.bronze.copy", "tenant_acme.bronze.plain"]
    assert codes(analysis) == [("write_refused_locally", 0, 1), ("write_refused_locally", 0, 2)]


def test_cells_that_do_not_parse_are_findings_and_the_rest_is_still_analysed(
    services: Services, acme: Principal
) -> None:
    analysis = analyse(
        services,
        acme,
        "def broken(:\n    pass",
        "# MAGIC %sql\n# MAGIC SELEC * FROM (",
        'spark.table("bronze.ok")',
        "# MAGIC %scala\n# MAGIC val x = 1",
        "# MAGIC %run",
        "x = (" * 300 + ")" * 300,
    )

    assert [t.table for t in analysis.tables] == ["tenant_acme.bronze.ok"]
    assert codes(analysis) == [
        ("syntax_error", 0, 1),
        ("sql_parse_error", 1, 2),
        ("not_analysed", 3, 1),
        ("run_without_target", 4, 1),
        ("syntax_error", 5, 1),
    ]


def test_a_sql_notebook_is_analysed_as_sql_with_temp_views_not_taken_for_tables(
    services: Services, acme: Principal
) -> None:
    text = (
        "-- Databricks notebook source\nCREATE OR REPLACE TEMP VIEW recent AS SELECT * FROM bronze.orders"
        "\n\n-- COMMAND ----------\n\nSELECT * FROM recent JOIN silver.customers USING (id)\n"
    )
    notebooks.import_notebook(services, acme, "/sql/report", text)

    analysis = analyze_notebook(services, acme, "/sql/report")

    assert (analysis.language, analysis.cells) == ("sql", 2)
    assert [(t.table, t.access, t.cell) for t in analysis.tables] == [
        ("tenant_acme.bronze.orders", "read", 0),
        ("tenant_acme.silver.customers", "read", 1),
    ]
    assert analysis.findings == []


def test_a_notebook_is_found_by_id_or_path_and_an_older_version_is_analysed_as_it_was(
    services: Services, acme: Principal
) -> None:
    made = notebooks.import_notebook(services, acme, "/etl/v", source('spark.table("bronze.first")'))
    notebooks.import_notebook(services, acme, "/etl/v", source('spark.table("bronze.second")'), overwrite=True)

    by_id = analyze_notebook(services, acme, made.notebook_id)
    old = analyze_notebook(services, acme, "/etl/v", version=1)

    assert (by_id.notebook_id, by_id.version, by_id.tables[0].table) == (
        made.notebook_id,
        2,
        "tenant_acme.bronze.second",
    )
    assert (old.version, old.tables[0].table) == (1, "tenant_acme.bronze.first")


def test_another_tenants_notebook_is_not_found(services: Services, acme: Principal, globex: Principal) -> None:
    made = notebooks.import_notebook(services, acme, "/etl/private", source('spark.table("bronze.x")'))

    for ref in (made.notebook_id, "/etl/private"):
        with pytest.raises(TsunamiError) as caught:
            analyze_notebook(services, globex, ref)
        assert caught.value.code == "not_found"


@pytest.mark.parametrize(
    ("notebook", "version", "code"),
    [("", None, "invalid_input"), ("relative/path", None, "not_found"), ("/etl/daily", 0, "invalid_input")],
)
def test_bad_arguments_are_refused_with_a_code(
    services: Services, acme: Principal, notebook: str, version: int | None, code: str
) -> None:
    notebooks.import_notebook(services, acme, "/etl/daily", source("x = 1"))
    with pytest.raises(TsunamiError) as caught:
        analyze_notebook(services, acme, notebook, version=version)
    assert caught.value.code == code


def test_a_bundle_file_is_analysed_without_storing_it_and_a_file_that_is_no_notebook_is_refused(
    acme: Principal,
) -> None:
    analysis = analyze_source(source('spark.table("silver.x")'), principal=acme, path="/bundles/b/src/x")

    assert (analysis.path, analysis.notebook_id, [t.table for t in analysis.tables]) == (
        "/bundles/b/src/x",
        "",
        ["tenant_acme.silver.x"],
    )
    with pytest.raises(TsunamiError) as caught:
        analyze_source("print('no header')", principal=acme)
    assert caught.value.code == "bad_file"


def test_a_notebook_of_a_thousand_cells_is_analysed_whole(services: Services, acme: Principal) -> None:
    cells = [
        f'df{i} = spark.sql("SELECT a, b FROM bronze.t{i % 50} WHERE a > {i}")\n'
        f'df{i}.write.mode("overwrite").saveAsTable("silver.s{i}")'
        for i in range(1000)
    ]

    analysis = analyse(services, acme, *cells, path="/etl/big")

    assert analysis.cells == 1000
    assert len([t for t in analysis.tables if t.access == "write"]) == 1000
    assert len({t.table for t in analysis.tables if t.access == "read"}) == 50
