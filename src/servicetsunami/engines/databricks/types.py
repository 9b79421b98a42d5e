"""Databricks SQL type names (``type_text`` of a result column or ``data_type`` of DESCRIBE) as Arrow
types, so results and table schemas are typed the same way on every engine."""

from __future__ import annotations

import re

import pyarrow as pa

_SIMPLE: dict[str, pa.DataType] = {
    "BOOLEAN": pa.bool_(),
    "TINYINT": pa.int8(),
    "BYTE": pa.int8(),
    "SMALLINT": pa.int16(),
    "SHORT": pa.int16(),
    "INT": pa.int32(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "LONG": pa.int64(),
    "FLOAT": pa.float32(),
    "REAL": pa.float32(),
    "DOUBLE": pa.float64(),
    "STRING": pa.string(),
    "BINARY": pa.binary(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "TIMESTAMP_NTZ": pa.timestamp("us"),
    "VOID": pa.null(),
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


def arrow_type(type_text: str) -> pa.DataType:
    """The Arrow type of a Databricks SQL type; nested and unknown types come back as strings (the way
    the Statement Execution API renders them in JSON results)."""
    text = type_text.strip().upper()
    if text in _SIMPLE:
        return _SIMPLE[text]
    if text.startswith(("VARCHAR", "CHAR")):
        return pa.string()
    match = _DECIMAL.match(text)
    if match:
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    if text == "DECIMAL":
        return pa.decimal128(10, 0)
    return pa.string()


def arrow_schema(columns: list[tuple[str, str]]) -> pa.Schema:
    return pa.schema([pa.field(name, arrow_type(text)) for name, text in columns])


def from_json_array(columns: list[tuple[str, str]], rows: list[list[str | None]]) -> pa.Table:
    """A JSON_ARRAY result (every value a string or null) as a typed Arrow table."""
    schema = arrow_schema(columns)
    strings = pa.table({f"c{i}": pa.array([r[i] for r in rows], pa.string()) for i in range(len(columns))})
    arrays = []
    for i, field in enumerate(schema):
        col = strings.column(i)
        if pa.types.is_boolean(field.type):
            arrays.append(pa.array([None if v is None else v.lower() == "true" for v in col.to_pylist()]))
        elif pa.types.is_null(field.type):
            arrays.append(pa.nulls(len(rows)))
        else:
            arrays.append(col.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)
