"""Every common PostgreSQL type lands in bronze with its exact value: decimals as decimals (never
floats), timestamptz in UTC, arrays as arrays, and a NULL of each type as NULL."""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql

from servicetsunami.engines.local.engine import LocalEngine
from tests.integration.pg.support import bronze, sync, target

pytestmark = pytest.mark.postgres

UTC = dt.UTC
COLUMNS = """
    id integer PRIMARY KEY, c_smallint smallint, c_integer integer, c_bigint bigint, c_numeric numeric,
    c_numeric_12_2 numeric(12,2), c_real real, c_double double precision, c_text text, c_varchar varchar(10),
    c_char char(3), c_boolean boolean, c_date date, c_time time, c_timestamp timestamp, c_timestamptz timestamptz,
    c_interval interval, c_uuid uuid, c_json json, c_jsonb jsonb, c_bytea bytea, c_int_array int[],
    c_text_array text[], c_enum mood
"""
ROWS = """
    (1, -32768, 2147483647, 9223372036854775807, 12345678901234567890.123456789012345678, 1234567890.12,
     1.5, 3.141592653589793, 'héllo ✓ ''quoted''', 'ten chars!', 'ab', true, '2024-02-29', '13:45:56.123456',
     '2024-02-29 13:45:56.123456', '2024-02-29 13:45:56.123456+02', '1 year 2 mons 3 days 04:05:06.789',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": {"c": null}}', '\\x00ff10',
     '{1,NULL,3}', '{"x","y z",NULL}', 'happy'),
    (2, 32767, -2147483648, -9223372036854775808, -0.000000000000000001, -9999999999.99,
     0.1, 'NaN', '', '', 'abc', false, '1900-01-01', '00:00:00',
     '1969-12-31 23:59:59.999999', '2000-01-01 00:00:00-08', '-1 days',
     '00000000-0000-0000-0000-000000000000', '[]', '{"k": "v", "a": 1}', '',
     '{}', '{}', 'sad'),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL)
"""


def _float32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


EXPECTED: list[dict[str, Any]] = [
    {
        "id": 1,
        "c_smallint": -32768,
        "c_integer": 2147483647,
        "c_bigint": 9223372036854775807,
        "c_numeric": Decimal("12345678901234567890.123456789012345678"),
        "c_numeric_12_2": Decimal("1234567890.12"),
        "c_real": 1.5,
        "c_double": 3.141592653589793,
        "c_text": "héllo ✓ 'quoted'",
        "c_varchar": "ten chars!",
        "c_char": "ab",  # char(n) padding is insignificant in PostgreSQL; DuckDB's scanner trims it
        "c_boolean": True,
        "c_date": dt.date(2024, 2, 29),
        "c_time": "13:45:56.123456",
        "c_timestamp": dt.datetime(2024, 2, 29, 13, 45, 56, 123456),
        "c_timestamptz": dt.datetime(2024, 2, 29, 11, 45, 56, 123456, tzinfo=UTC),
        "c_interval": "1 year 2 months 3 days 04:05:06.789",
        "c_uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "c_json": '{"a": [1, 2]}',
        "c_jsonb": '{"b": {"c": null}}',
        "c_bytea": b"\x00\xff\x10",
        "c_int_array": [1, None, 3],
        "c_text_array": ["x", "y z", None],
        "c_enum": "happy",
    },
    {
        "id": 2,
        "c_smallint": 32767,
        "c_integer": -2147483648,
        "c_bigint": -9223372036854775808,
        "c_numeric": Decimal("-0.000000000000000001"),
        "c_numeric_12_2": Decimal("-9999999999.99"),
        "c_real": _float32(0.1),
        "c_double": "NaN",  # compared below: NaN equals nothing
        "c_text": "",
        "c_varchar": "",
        "c_char": "abc",
        "c_boolean": False,
        "c_date": dt.date(1900, 1, 1),
        "c_time": "00:00:00",
        "c_timestamp": dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
        "c_timestamptz": dt.datetime(2000, 1, 1, 8, 0, tzinfo=UTC),
        "c_interval": "-1 day",
        "c_uuid": "00000000-0000-0000-0000-000000000000",
        "c_json": "[]",
        "c_jsonb": '{"a": 1, "k": "v"}',  # jsonb's own normal form, as PostgreSQL prints it
        "c_bytea": b"",
        "c_int_array": [],
        "c_text_array": [],
        "c_enum": "sad",
    },
]


@pytest.fixture
def everything(pg: psycopg.Connection[Any], schema: str) -> str:
    """A table with a column of each type; row 1 ordinary values, row 2 edge values, row 3 NULLs."""
    pg.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    pg.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
    pg.execute(f"CREATE TABLE everything ({COLUMNS})")
    pg.execute(f"INSERT INTO everything VALUES {ROWS}")
    return f"{schema}.everything"


def test_every_common_postgres_type_round_trips_exactly_through_a_full_refresh(
    everything: str, lakehouse: LocalEngine
) -> None:
    progress = sync(lakehouse, everything, "everything")

    assert (progress.rows, progress.version) == (3, 0)
    rows = bronze(lakehouse, "SELECT * EXCEPT (_ingested_at, _source, _sync_id) FROM everything ORDER BY id")
    assert rows[0] == EXPECTED[0]
    nan = rows[1].pop("c_double")
    assert nan != nan
    assert rows[1] == {k: v for k, v in EXPECTED[1].items() if k != "c_double"}
    assert rows[2] == {name: (3 if name == "id" else None) for name in EXPECTED[0]}


def test_bronze_columns_have_the_types_a_databricks_user_expects(everything: str, lakehouse: LocalEngine) -> None:
    sync(lakehouse, everything, "everything")

    types = {c.name: c.type for c in lakehouse.describe(target("everything")).columns}
    assert types == {
        "id": "INT",
        "c_smallint": "SMALLINT",
        "c_integer": "INT",
        "c_bigint": "BIGINT",
        "c_numeric": "DECIMAL(38,18)",
        "c_numeric_12_2": "DECIMAL(12,2)",
        "c_real": "FLOAT",
        "c_double": "DOUBLE",
        "c_text": "STRING",
        "c_varchar": "STRING",
        "c_char": "STRING",
        "c_boolean": "BOOLEAN",
        "c_date": "DATE",
        "c_time": "STRING",
        "c_timestamp": "TIMESTAMP_NTZ",
        "c_timestamptz": "TIMESTAMP",
        "c_interval": "STRING",
        "c_uuid": "STRING",
        "c_json": "STRING",
        "c_jsonb": "STRING",
        "c_bytea": "BINARY",
        "c_int_array": "ARRAY<INT>",
        "c_text_array": "ARRAY<STRING>",
        "c_enum": "STRING",
        "_ingested_at": "TIMESTAMP",
        "_source": "STRING",
        "_sync_id": "STRING",
    }
