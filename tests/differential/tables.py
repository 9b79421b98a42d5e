"""The typed sample tables both sides of the differential suite query.

One definition, two loaders: :func:`arrow_tables` gives the rows as Arrow tables (the local engine
writes them as Delta tables in ``bronze``), and :func:`spark_schema` gives the same columns as a
Spark DDL string (the oracle registers them as views). The Spark DDL is the Databricks type name of
each Arrow column, so the two sides cannot drift apart.

Timestamps are instants in UTC (``TIMESTAMP``) or wall-clock values (``TIMESTAMP_NTZ``); both sides
run with the session time zone UTC, Databricks' default.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa

from servicetsunami.engines.types import sql_type

#: The session time zone of both sides.
TIME_ZONE = "UTC"

UTC = dt.UTC


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def _ntz(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


_ADDRESS = pa.struct([("city", pa.string()), ("zip", pa.string())])

SCHEMAS: dict[str, pa.Schema] = {
    "customers": pa.schema(
        [
            ("id", pa.int32()),
            ("name", pa.string()),
            ("country", pa.string()),
            ("email", pa.string()),
            ("signup_date", pa.date32()),
            ("score", pa.float64()),
            ("vip", pa.bool_()),
        ]
    ),
    "orders": pa.schema(
        [
            ("id", pa.int32()),
            ("customer_id", pa.int32()),
            ("amount", pa.decimal128(10, 2)),
            ("quantity", pa.int32()),
            ("discount", pa.float64()),
            ("status", pa.string()),
            ("order_date", pa.date32()),
            ("ordered_at", pa.timestamp("us", tz="UTC")),
            ("shipped_at", pa.timestamp("us")),
            ("tags", pa.list_(pa.string())),
            ("attrs", pa.map_(pa.string(), pa.string())),
            ("address", _ADDRESS),
            ("payload", pa.string()),
        ]
    ),
    "items": pa.schema(
        [("order_id", pa.int32()), ("sku", pa.string()), ("qty", pa.int32()), ("unit_price", pa.decimal128(8, 2))]
    ),
    "sales": pa.schema(
        [("region", pa.string()), ("year", pa.int32()), ("quarter", pa.string()), ("revenue", pa.int64())]
    ),
    "numbers": pa.schema(
        [
            ("n", pa.int32()),
            ("big", pa.int64()),
            ("f", pa.float64()),
            ("d", pa.decimal128(5, 2)),
            ("s", pa.string()),
            ("scores", pa.list_(pa.int32())),
        ]
    ),
}

_P1 = (
    '{"customer": {"name": "Ann", "tier": "gold"}, "items": [{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 1}], '
    '"total": 10.5}'
)
_P2 = '{"customer": {"name": "Ann", "tier": "gold"}, "items": [{"sku": "B2", "qty": 1}], "total": 20}'
_P3 = '{"customer": {"name": "Bob"}, "items": [], "total": 5.25, "coupon": null}'
_P5 = '{"customer": {"name": "Bob", "tier": "silver"}, "flags": [true, false]}'
_P6 = '{"customer": {"name": "Dee", "tier": "gold"}, "items": [{"sku": "C3", "qty": 5}], "total": 0}'

ROWS: dict[str, list[dict[str, Any]]] = {
    "customers": [
        {
            "id": 1,
            "name": "Ann",
            "country": "DE",
            "email": "ann@example.com",
            "signup_date": dt.date(2023, 1, 15),
            "score": 4.5,
            "vip": True,
        },
        {
            "id": 2,
            "name": "Bob",
            "country": "FR",
            "email": None,
            "signup_date": dt.date(2023, 6, 30),
            "score": 3.25,
            "vip": False,
        },
        {
            "id": 3,
            "name": "Cem",
            "country": "DE",
            "email": "cem@example.org",
            "signup_date": dt.date(2024, 2, 29),
            "score": None,
            "vip": True,
        },
        {
            "id": 4,
            "name": "Dee",
            "country": "US",
            "email": "DEE@Example.com",
            "signup_date": dt.date(2024, 12, 31),
            "score": 5.0,
            "vip": False,
        },
        {
            "id": 5,
            "name": "Zoë",
            "country": None,
            "email": "",
            "signup_date": dt.date(2022, 3, 1),
            "score": 2.0,
            "vip": None,
        },
        {"id": 6, "name": "fay lee", "country": "US", "email": None, "signup_date": None, "score": -1.5, "vip": False},
    ],
    "orders": [
        {
            "id": 1,
            "customer_id": 1,
            "amount": Decimal("10.50"),
            "quantity": 3,
            "discount": 0.1,
            "status": "paid",
            "order_date": dt.date(2024, 1, 31),
            "ordered_at": _ts("2024-01-31 10:30:00"),
            "shipped_at": _ntz("2024-02-01 09:00:00"),
            "tags": ["new", "promo"],
            "attrs": {"channel": "web", "gift": "no"},
            "address": {"city": "Berlin", "zip": "10115"},
            "payload": _P1,
        },
        {
            "id": 2,
            "customer_id": 1,
            "amount": Decimal("20.00"),
            "quantity": 1,
            "discount": 0.0,
            "status": "paid",
            "order_date": dt.date(2024, 2, 15),
            "ordered_at": _ts("2024-02-15 08:00:00"),
            "shipped_at": _ntz("2024-02-15 18:45:30"),
            "tags": ["repeat"],
            "attrs": {"channel": "app"},
            "address": {"city": "Berlin", "zip": "10117"},
            "payload": _P2,
        },
        {
            "id": 3,
            "customer_id": 2,
            "amount": Decimal("5.25"),
            "quantity": 7,
            "discount": None,
            "status": "refunded",
            "order_date": dt.date(2024, 2, 29),
            "ordered_at": _ts("2024-02-29 23:59:59"),
            "shipped_at": None,
            "tags": [],
            "attrs": {},
            "address": {"city": "Paris", "zip": None},
            "payload": _P3,
        },
        {
            "id": 4,
            "customer_id": 3,
            "amount": Decimal("99.99"),
            "quantity": 2,
            "discount": 0.25,
            "status": "paid",
            "order_date": dt.date(2024, 3, 3),
            "ordered_at": _ts("2024-03-03 00:00:00"),
            "shipped_at": _ntz("2024-03-05 12:00:00"),
            "tags": None,
            "attrs": None,
            "address": None,
            "payload": None,
        },
        {
            "id": 5,
            "customer_id": 2,
            "amount": None,
            "quantity": 4,
            "discount": 0.05,
            "status": "pending",
            "order_date": dt.date(2024, 3, 10),
            "ordered_at": _ts("2024-03-10 12:00:00.123456"),
            "shipped_at": None,
            "tags": ["promo"],
            "attrs": {"channel": "web"},
            "address": {"city": "Paris", "zip": "75001"},
            "payload": _P5,
        },
        {
            "id": 6,
            "customer_id": 4,
            "amount": Decimal("250.00"),
            "quantity": 10,
            "discount": 0.15,
            "status": "shipped",
            "order_date": dt.date(2023, 12, 31),
            "ordered_at": _ts("2023-12-31 23:15:00"),
            "shipped_at": _ntz("2024-01-02 07:30:00"),
            "tags": ["bulk", "promo", "new"],
            "attrs": {"channel": "phone", "gift": "yes"},
            "address": {"city": "Austin", "zip": "73301"},
            "payload": _P6,
        },
        {
            "id": 7,
            "customer_id": 9,
            "amount": Decimal("0.99"),
            "quantity": 1,
            "discount": 0.0,
            "status": "cancelled",
            "order_date": dt.date(2024, 7, 4),
            "ordered_at": _ts("2024-07-04 16:20:00"),
            "shipped_at": None,
            "tags": ["promo"],
            "attrs": {"channel": "web"},
            "address": {"city": None, "zip": None},
            "payload": "not json",
        },
        {
            "id": 8,
            "customer_id": None,
            "amount": Decimal("42.00"),
            "quantity": None,
            "discount": 0.5,
            "status": None,
            "order_date": None,
            "ordered_at": None,
            "shipped_at": None,
            "tags": ["gift"],
            "attrs": {"gift": "yes"},
            "address": {"city": "Berlin", "zip": "10115"},
            "payload": "{}",
        },
    ],
    "items": [
        {"order_id": 1, "sku": "A1", "qty": 2, "unit_price": Decimal("3.00")},
        {"order_id": 1, "sku": "B2", "qty": 1, "unit_price": Decimal("4.50")},
        {"order_id": 2, "sku": "B2", "qty": 1, "unit_price": Decimal("20.00")},
        {"order_id": 3, "sku": "C3", "qty": 7, "unit_price": Decimal("0.75")},
        {"order_id": 4, "sku": "A1", "qty": 1, "unit_price": Decimal("50.00")},
        {"order_id": 4, "sku": "D4", "qty": 1, "unit_price": Decimal("49.99")},
        {"order_id": 5, "sku": "C3", "qty": 4, "unit_price": None},
        {"order_id": 6, "sku": "E5", "qty": 10, "unit_price": Decimal("25.00")},
        {"order_id": 9, "sku": "A1", "qty": 1, "unit_price": Decimal("3.00")},
    ],
    "sales": [
        {"region": "north", "year": 2023, "quarter": "Q1", "revenue": 100},
        {"region": "north", "year": 2023, "quarter": "Q2", "revenue": 150},
        {"region": "north", "year": 2024, "quarter": "Q1", "revenue": 120},
        {"region": "south", "year": 2023, "quarter": "Q1", "revenue": 80},
        {"region": "south", "year": 2023, "quarter": "Q3", "revenue": 95},
        {"region": "south", "year": 2024, "quarter": "Q2", "revenue": None},
        {"region": "east", "year": 2024, "quarter": "Q4", "revenue": 60},
        {"region": "east", "year": 2024, "quarter": "Q4", "revenue": 40},
    ],
    "numbers": [
        {"n": 1, "big": 9223372036854775807, "f": 1.5, "d": Decimal("999.99"), "s": "42", "scores": [3, 1, 2]},
        {"n": -7, "big": -9223372036854775807, "f": -2.5, "d": Decimal("-0.01"), "s": " 7 ", "scores": [5]},
        {"n": 0, "big": 0, "f": 0.0, "d": Decimal("0.00"), "s": "abc", "scores": []},
        {"n": 2147483647, "big": 10, "f": 1e300, "d": Decimal("12.34"), "s": "3.5", "scores": [1, None, 4]},
        {"n": None, "big": None, "f": None, "d": None, "s": None, "scores": None},
        {"n": 10, "big": 3, "f": 0.1, "d": Decimal("2.50"), "s": "1e3", "scores": [10, 20]},
    ],
}


def arrow_tables() -> dict[str, pa.Table]:
    """Every sample table as Arrow, typed by :data:`SCHEMAS`."""
    return {name: pa.Table.from_pylist(ROWS[name], schema=schema) for name, schema in SCHEMAS.items()}


def spark_schema(name: str) -> str:
    """The table's columns as a Spark DDL string (``id INT, amount DECIMAL(10,2), ...``)."""
    return ", ".join(f"`{f.name}` {sql_type(f.type)}" for f in SCHEMAS[name])
