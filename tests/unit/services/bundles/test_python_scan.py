"""A notebook file read without a store or a kernel (analyze_source): how Python cells are read,
strings followed through names, f-strings, .format, % and +, magics stripped with lines kept."""

from __future__ import annotations

from servicetsunami.services.bundles.analysis import NotebookAnalysis, analyze_source
from servicetsunami.tenancy import principal_for

ACME = principal_for(tenant_id="t-1", tenant_slug="acme", subject="key:1", role="engineer", catalog_prefix="tenant_")


def analyse(*cells: str, language: str = "python") -> NotebookAnalysis:
    comment = "--" if language == "sql" else "#"
    text = f"{comment} Databricks notebook source\n" + f"\n\n{comment} COMMAND ----------\n\n".join(cells)
    return analyze_source(text, principal=ACME, language=language)


def test_strings_are_followed_through_names_concatenation_percent_and_format() -> None:
    analysis = analyse(
        'schema = "silver"\ntable = schema + ".orders"\n'
        "spark.sql('SELECT * FROM ' + table)\n"
        'spark.sql("SELECT * FROM %s.customers" % schema)\n'
        'spark.sql("SELECT * FROM {}.regions".format("gold"))\n'
        'spark.table(f"{schema}.events")\n'
        'spark.sql("SELECT * FROM {s}.{t}".format(s=schema, t=unknown))\n'
        'spark.sql("SELECT * FROM silver.%s" % (unknown,))',
    )

    assert [(t.table, t.line) for t in analysis.tables] == [
        ("tenant_acme.silver.orders", 3),
        ("tenant_acme.silver.customers", 4),
        ("tenant_acme.gold.regions", 5),
        ("tenant_acme.silver.events", 6),
        ("silver.{t}", 7),
        ("silver.{%s}", 8),
    ]


def test_a_name_given_another_value_later_is_no_longer_taken_as_the_old_string() -> None:
    analysis = analyse('t = "silver.a"\nspark.table(t)\nt = compute()\nspark.table(t)')

    assert [t.table for t in analysis.tables] == ["tenant_acme.silver.a"]
    assert [(f.code, f.line) for f in analysis.findings] == [("dynamic_table", 4)]


def test_magic_lines_in_a_python_cell_are_stripped_and_line_numbers_kept() -> None:
    analysis = analyse('%load_ext something\n!ls /tmp\nspark.table("bronze.a")\n%pip install x==1')

    assert [(t.table, t.line) for t in analysis.tables] == [("tenant_acme.bronze.a", 3)]
    assert analysis.pip_lines == ["%pip install x==1"]


def test_a_python_cell_in_a_sql_notebook_is_read_as_python() -> None:
    analysis = analyse("SELECT * FROM silver.a", "-- MAGIC %python\n-- MAGIC spark.table('gold.b')", language="sql")

    assert [(t.table, t.cell, t.line, t.via) for t in analysis.tables] == [
        ("tenant_acme.silver.a", 0, 1, "%sql"),
        ("tenant_acme.gold.b", 1, 2, "spark.table"),
    ]


def test_the_tenants_own_volumes_are_no_external_paths() -> None:
    analysis = analyse(
        'dbutils.fs.ls("/Volumes/tenant_acme/bronze/landing/")\nopen("/Volumes/tenant_acme/bronze/landing/x.csv")\n'
        'dbutils.fs.ls("/Volumes/tenant_globex/bronze/landing/")'
    )

    assert analysis.external_paths == ["/Volumes/tenant_globex/bronze/landing/"]
    assert [(f.code, f.line) for f in analysis.findings] == [("absolute_path", 3)]


def test_sql_text_given_to_spark_sql_is_not_mistaken_for_a_path() -> None:
    analysis = analyse('spark.sql("/* a comment */ SELECT 1")\nx = "/not/sql/but/a/path"')

    assert analysis.external_paths == ["/not/sql/but/a/path"]


def test_a_dynamic_widget_name_is_a_finding_and_defaults_may_be_missing() -> None:
    analysis = analyse('dbutils.widgets.text(name_var, "x")\ndbutils.widgets.text("d", default_var)')

    assert [(w.name, w.default) for w in analysis.widgets] == [("d", None)]
    assert [f.code for f in analysis.findings] == ["dynamic_widget"]


def test_stdlib_and_runtime_modules_are_not_packages_and_relative_imports_are_ignored() -> None:
    analysis = analyse("import os, sys, json\nimport pyspark.sql\nfrom delta.tables import DeltaTable\nfrom . import x")

    assert analysis.packages == []


def test_an_empty_notebook_has_nothing_to_report() -> None:
    analysis = analyse("")

    assert (analysis.cells, analysis.tables, analysis.findings) == (1, [], [])


def test_a_widget_read_but_never_created_is_a_finding() -> None:
    analysis = analyse('dbutils.widgets.text("a", "1")\nx = dbutils.widgets.get("a")\ny = dbutils.widgets.get("b")')

    assert [(f.code, f.cell, f.line) for f in analysis.findings] == [("undeclared_widget", 0, 3)]
