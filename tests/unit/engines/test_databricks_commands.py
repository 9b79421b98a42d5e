"""The Command Execution API's results as the engine reports them: Spark JSON types as Databricks SQL
type names, images as their base64 data, errors without ANSI colours or HTML."""

from __future__ import annotations

import json

from servicetsunami.engines.databricks.commands import command_of, spark_type_name


def test_spark_json_types_become_databricks_sql_type_names() -> None:
    assert spark_type_name('"long"') == "BIGINT"
    assert spark_type_name('"integer"') == "INT"
    assert spark_type_name('"decimal(10,2)"') == "DECIMAL(10,2)"
    assert spark_type_name("timestamp", json_schema=False) == "TIMESTAMP"
    nested = {
        "type": "struct",
        "fields": [
            {"name": "tags", "type": {"type": "array", "elementType": "string"}},
            {"name": "scores", "type": {"type": "map", "keyType": "string", "valueType": "double"}},
        ],
    }
    assert spark_type_name(json.dumps(nested)) == "STRUCT<tags:ARRAY<STRING>,scores:MAP<STRING,DOUBLE>>"


def test_a_table_result_keeps_its_rows_and_types_its_columns() -> None:
    results = {
        "resultType": "table",
        "data": [[1, "x"]],
        "schema": [{"name": "n", "type": '"long"', "metadata": "{}"}, {"name": "s", "type": '"string"'}],
        "isJsonSchema": True,
        "truncated": False,
    }
    cmd = command_of("c1", "Finished", results)
    assert (cmd.result_type, cmd.data, cmd.truncated) == ("table", [[1, "x"]], False)
    assert cmd.schema == [{"name": "n", "type": "BIGINT"}, {"name": "s", "type": "STRING"}]


def test_an_error_result_loses_its_colours_and_markup_but_keeps_the_failing_line() -> None:
    results = {
        "resultType": "error",
        "summary": "<span class='ansi-red-fg'>ZeroDivisionError</span>: division by zero",
        "cause": "\x1b[0;31mZeroDivisionError\x1b[0m Traceback\n----> 2 b = a / 0\n",
    }
    cmd = command_of("c1", "Finished", results)
    assert cmd.summary == "ZeroDivisionError: division by zero"
    assert cmd.cause is not None and "----> 2 b = a / 0" in cmd.cause and "\x1b" not in cmd.cause


def test_an_image_is_its_base64_data_and_no_results_is_none() -> None:
    cmd = command_of("c1", "Finished", {"resultType": "image", "fileName": "data:image/png;base64,iVBORw0"})
    assert (cmd.result_type, cmd.data) == ("image", "iVBORw0")
    assert command_of("c1", "Running", None).result_type is None
