"""Record Apache Spark's answers to the differential corpus as golden files (``make oracle``).

Spark stands in for Databricks SQL: ANSI mode on (as Databricks SQL warehouses run), the session
time zone UTC (Databricks' default), the sample tables of :mod:`tests.differential.tables`
registered as views under their bare names. Needs the ``oracle`` dependency group (pyspark) and a
Java 17 runtime; ``make test`` only reads what this writes.

    python -m tests.differential.oracle            # rewrite golden/*.json
    python -m tests.differential.oracle --check    # fail when a golden file is out of date
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from decimal import Decimal
from typing import Any

from servicetsunami.services.catalog.query import to_json_rows
from tests.differential.corpus import GOLDEN_DIR, Query, load_corpus
from tests.differential.tables import ROWS, SCHEMAS, TIME_ZONE, spark_schema


def start_spark() -> Any:
    os.environ["TZ"] = TIME_ZONE  # collected timestamps are naive datetimes in the process's zone
    time.tzset()
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]")
        .appName("databricks-sql-oracle")
        .config("spark.sql.ansi.enabled", "true")
        .config("spark.sql.session.timeZone", TIME_ZONE)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.driver.extraJavaOptions", f"-Duser.timezone={TIME_ZONE}")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("OFF")
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)  # expected errors, recorded
    for name in SCHEMAS:
        rows = [_spark_row(name, row) for row in ROWS[name]]
        spark.createDataFrame(rows, schema=spark_schema(name)).createOrReplaceTempView(name)
    return spark


def _spark_row(name: str, row: dict[str, Any]) -> tuple[Any, ...]:
    values = []
    for field in SCHEMAS[name]:
        value = row[field.name]
        if isinstance(value, dict) and field.type.id == 34:  # Arrow struct: Spark wants a tuple
            value = tuple(value[field.type.field(i).name] for i in range(field.type.num_fields))
        values.append(value)
    return tuple(values)


def answer(spark: Any, sql: str) -> dict[str, Any]:
    """Spark's answer to one statement, in the golden files' shape."""
    result = _answer(spark, sql, sql)
    if result.get("error") == "COLUMN_IS_NOT_VARIANT_TYPE":
        # Open-source Spark applies ``:`` paths to VARIANT only; Databricks also to a STRING
        # holding JSON, where it means get_json_object with the same path.
        result = _answer(spark, sql, json_paths_as_get_json_object(sql))
        result["oracle_note"] = "the : path on a STRING column, answered as get_json_object"
    return result


def json_paths_as_get_json_object(sql: str) -> str:
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="databricks")
    for node in list(tree.find_all(exp.JSONExtract)):
        if node.args.get("variant_extract"):
            path = exp.Literal.string(node.expression.sql(dialect="duckdb").strip("'"))
            node.replace(exp.Anonymous(this="get_json_object", expressions=[node.this, path]))
    return tree.sql(dialect="databricks")


def _answer(spark: Any, sql: str, run: str) -> dict[str, Any]:
    from pyspark.errors import PySparkException

    try:
        frame = spark.sql(run)
        rows = frame.collect()
    except PySparkException as exc:
        return {"sql": sql, "error": exc.getCondition() or type(exc).__name__}
    except Exception as exc:  # a JVM error without a condition (e.g. a raw ArithmeticException)
        return {"sql": sql, "error": type(exc).__name__}
    fields = frame.schema.fields
    columns = [[f.name, f.dataType.simpleString().upper()] for f in fields]
    data = [[_json(value, f.dataType) for value, f in zip(row, fields, strict=True)] for row in rows]
    return {"sql": sql, "columns": columns, "rows": data}


def _json(value: Any, dtype: Any) -> Any:
    """A Spark value as the service's JSON value of the same Databricks type."""
    from pyspark.sql import types as t

    if value is None:
        return None
    if isinstance(dtype, t.TimestampType) and isinstance(value, dt.datetime):
        value = value.replace(tzinfo=dt.UTC)
    elif isinstance(dtype, t.ArrayType):
        return [_json(v, dtype.elementType) for v in value]
    elif isinstance(dtype, t.MapType):
        return {str(_json(k, dtype.keyType)): _json(v, dtype.valueType) for k, v in value.items()}
    elif isinstance(dtype, t.StructType):
        return {f.name: _json(v, f.dataType) for v, f in zip(value, dtype.fields, strict=True)}
    elif isinstance(value, Decimal):
        return str(value)
    return _scalar(value)


def _scalar(value: Any) -> Any:
    import pyarrow as pa

    # The same conversion the service applies to its Arrow results.
    return to_json_rows(pa.table({"v": pa.array([value])}))[0][0]


def record(queries: list[Query]) -> dict[str, list[dict[str, Any]]]:
    spark = start_spark()
    by_topic: dict[str, list[dict[str, Any]]] = {}
    try:
        version = spark.version
        for query in queries:
            by_topic.setdefault(query.topic, []).append(answer(spark, query.sql))
    finally:
        spark.stop()
    return {topic: _document(version, answers) for topic, answers in by_topic.items()}  # type: ignore[misc]


def _document(version: str, answers: list[dict[str, Any]]) -> Any:
    return {
        "oracle": {"engine": f"Apache Spark {version}", "ansi": True, "session_time_zone": TIME_ZONE},
        "answers": answers,
    }


def _unordered(document: Any) -> Any:
    """The document with each answer's rows in a fixed order: Spark returns rows that tie under an
    ORDER BY (and every row of an unordered query) in an order that changes from run to run, which is
    not part of the answer. The differential test itself checks order where the statement fixes it."""
    answers = [
        {**a, "rows": sorted(a["rows"], key=lambda row: json.dumps(row, sort_keys=True))} if "rows" in a else a
        for a in document["answers"]
    ]
    return {**document, "answers": answers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the golden files instead of writing")
    args = parser.parse_args(argv)
    documents = record(load_corpus())
    stale = []
    for topic, document in documents.items():
        path = GOLDEN_DIR / f"{topic}.json"
        text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
        if args.check:
            if not path.exists() or _unordered(json.loads(path.read_text(encoding="utf-8"))) != _unordered(document):
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    for path in GOLDEN_DIR.glob("*.json"):
        if path.stem not in documents:
            if args.check:
                stale.append(path.name)
            else:
                path.unlink()
    if stale:
        print(f"golden files out of date: {', '.join(sorted(stale))}; run make oracle", file=sys.stderr)
        return 1
    errors = sum(1 for d in documents.values() for a in d["answers"] if "error" in a)
    total = sum(len(d["answers"]) for d in documents.values())
    print(f"{total} statements answered by Spark ({errors} with an error)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
