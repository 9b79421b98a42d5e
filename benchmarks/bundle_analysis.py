"""How long does ``analyze_notebook``'s reading take for a notebook of N cells, against the least
any such analysis must do?

Builds a Databricks source notebook of N cells (Python cells with spark.sql, spark.table,
saveAsTable, widgets, imports, a collect; %sql cells; markdown), then times, in the same run:

- baseline: parsing every code cell once, Python with ``ast.parse`` and SQL (the %sql cells and the
  spark.sql strings) with ``sqlglot.parse`` in the Databricks dialect, nothing else;
- analysis: ``analyze_source`` on the same text (the source converter, every scanner, resolution of
  every table into the tenant's catalog, findings).

Prints the best of ``--repeat`` runs of each and their ratio. Usage:
``python benchmarks/bundle_analysis.py [--cells 1000] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import ast
import time

import sqlglot

from servicetsunami.services.bundles.analysis import analyze_source
from servicetsunami.tenancy import principal_for

SEP = "\n\n# COMMAND ----------\n\n"


def notebook(cells: int) -> tuple[str, list[str], list[str]]:
    texts, python, sql = [], [], []
    for i in range(cells):
        kind = i % 4
        if kind == 0:
            query = f"SELECT region, amount FROM bronze.orders_{i % 40} WHERE amount > {i}"
            code = (
                f"import pandas as pd\nlimit_{i} = int(dbutils.widgets.get('limit'))\n"
                f'df_{i} = spark.sql("{query}")\n'
                f'df_{i}.write.mode("overwrite").saveAsTable("silver.out_{i}")\n'
                f"rows_{i} = df_{i}.limit(10).collect()"
            )
            texts.append(code)
            python.append(code)
            sql.append(query)
        elif kind == 1:
            query = (
                f"SELECT o.region, count(*) AS n\nFROM silver.out_{i - 1} o\n"
                "JOIN gold.regions r ON o.region = r.id\nGROUP BY o.region"
            )
            texts.append("# MAGIC %sql\n" + "\n".join("# MAGIC " + line for line in query.split("\n")))
            sql.append(query)
        elif kind == 2:
            code = (
                f'dbutils.widgets.text("p_{i}", "{i}")\n'
                f't_{i} = spark.table("bronze.orders_{i % 40}")\nprint(t_{i}.count())'
            )
            texts.append(code)
            python.append(code)
        else:
            texts.append(f"# MAGIC %md\n# MAGIC ## Step {i}")
    return "# Databricks notebook source\n" + SEP.join(texts) + "\n", python, sql


def best(repeat: int, work: object) -> float:
    assert callable(work)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    text, python, sql = notebook(args.cells)
    principal = principal_for(
        tenant_id="t", tenant_slug="bench", subject="key:1", role="engineer", catalog_prefix="tenant_"
    )

    def baseline() -> None:
        for code in python:
            ast.parse(code)
        for query in sql:
            sqlglot.parse(query, read="databricks")

    def analysis() -> None:
        analyze_source(text, principal=principal)

    analysis()  # warm the package map and the parser's caches, as a running service has them
    base = best(args.repeat, baseline)
    full = best(args.repeat, analysis)
    result = analyze_source(text, principal=principal)
    print(f"notebook: {args.cells} cells, {len(text):,} characters, {len(result.tables)} table uses")
    print(f"baseline (ast.parse + sqlglot.parse of every cell): {base * 1000:8.1f} ms")
    print(f"analyze_source:                                    {full * 1000:8.1f} ms")
    print(f"ratio analysis / baseline: {full / base:.2f}")


if __name__ == "__main__":
    main()
