"""Arrow types shown as Databricks SQL type names, the one vocabulary users and agents see."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.types as pat

from servicetsunami.engines.models import ColumnInfo

_SIMPLE: list[tuple[object, str]] = [
    (pat.is_boolean, "BOOLEAN"),
    (pat.is_int8, "TINYINT"),
    (pat.is_int16, "SMALLINT"),
    (pat.is_int32, "INT"),
    (pat.is_int64, "BIGINT"),
    (pat.is_uint8, "SMALLINT"),
    (pat.is_uint16, "INT"),
    (pat.is_uint32, "BIGINT"),
    (pat.is_uint64, "DECIMAL(20,0)"),
    (pat.is_float16, "FLOAT"),
    (pat.is_float32, "FLOAT"),
    (pat.is_float64, "DOUBLE"),
    (pat.is_string, "STRING"),
    (pat.is_large_string, "STRING"),
    (pat.is_string_view, "STRING"),
    (pat.is_binary, "BINARY"),
    (pat.is_large_binary, "BINARY"),
    (pat.is_fixed_size_binary, "BINARY"),
    (pat.is_date, "DATE"),
    (pat.is_null, "VOID"),
]


def sql_type(t: pa.DataType) -> str:
    for check, name in _SIMPLE:
        if check(t):  # type: ignore[operator]  # the checks are pyarrow predicates
            return name
    if pat.is_timestamp(t):
        return "TIMESTAMP" if t.tz else "TIMESTAMP_NTZ"
    if pat.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pat.is_time(t):
        return "STRING"
    if pat.is_duration(t) or pat.is_interval(t):
        return "INTERVAL"
    if pat.is_list(t) or pat.is_large_list(t) or pat.is_fixed_size_list(t) or pat.is_list_view(t):
        return f"ARRAY<{sql_type(t.value_type)}>"
    if pat.is_map(t):
        return f"MAP<{sql_type(t.key_type)},{sql_type(t.item_type)}>"
    if pat.is_struct(t):
        inner = ",".join(f"{t.field(i).name}:{sql_type(t.field(i).type)}" for i in range(t.num_fields))
        return f"STRUCT<{inner}>"
    if pat.is_dictionary(t):
        return sql_type(t.value_type)
    return str(t).upper()


def columns_of(schema: pa.Schema) -> list[ColumnInfo]:
    out = []
    for f in schema:
        meta = f.metadata or {}
        comment = meta.get(b"comment")
        out.append(
            ColumnInfo(
                name=f.name,
                type=sql_type(f.type),
                nullable=f.nullable,
                comment=comment.decode() if comment else None,
            )
        )
    return out
