"""Every common MySQL / MariaDB type lands in bronze with its exact value: integers signed and
unsigned at their limits, decimals, floats, bits, text, binaries, dates, datetimes, timestamps
(the instant, whatever the writer's session time zone), times, years, enums, sets, JSON and NULLs."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator

import pytest

from servicetsunami.connectors.base import ReadRequest
from servicetsunami.connectors.mysql import MySQLSource
from servicetsunami.engines.local.engine import LocalEngine
from tests.integration.mysql.support import execute, mysql_config, sync, target
from tests.integration.pg.support import bronze

pytestmark = pytest.mark.mysql

COLUMNS = """
    id int PRIMARY KEY,
    ti tinyint, uti tinyint unsigned, si smallint, usi smallint unsigned, mi mediumint, umi mediumint unsigned,
    i int, ui int unsigned, bi bigint, ubi bigint unsigned, flag tinyint(1),
    d decimal(30,10), big decimal(65,30), f float, dbl double,
    b bit(10), b64 bit(64), b1 bit(1),
    c char(5), vc varchar(50), tx text, bn binary(4), vb varbinary(10), bl blob,
    dt date, dtt datetime(6), ts timestamp(6) NULL, tm time(6), yr year,
    en enum('small','large'), st set('x','y','z'), js json
"""

FULL = (
    "INSERT INTO kinds VALUES (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, "
    "-9223372036854775808, 18446744073709551615, 2, 12345678901234567890.0123456789, "
    "12345678901234567890123456789012345.123456789012345678901234567891, 1.5, 3.141592653589793, "
    "b'1010101010', b'1111111111111111111111111111111111111111111111111111111111111111', b'1', "
    "'ab', 'héllo wörld ✓', 'a longer text', x'00010203', x'ff00', x'deadbeef', "
    "'2024-02-29', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15.654321', '-838:59:59.000001', 2155, "
    "'large', 'x,z', '{\"a\": [1, 2], \"é\": null}')"
)

EXPECTED = {
    "id": 1,
    "ti": -128,
    "uti": 255,
    "si": -32768,
    "usi": 65535,
    "mi": -8388608,
    "umi": 16777215,
    "i": -2147483648,
    "ui": 4294967295,
    "bi": -9223372036854775808,
    "ubi": decimal.Decimal("18446744073709551615"),
    "flag": 2,
    "d": decimal.Decimal("12345678901234567890.0123456789"),
    "big": "12345678901234567890123456789012345.123456789012345678901234567891",
    "f": 1.5,
    "dbl": 3.141592653589793,
    "b": 0b1010101010,
    "b64": decimal.Decimal(2**64 - 1),
    "b1": True,
    "c": "ab",
    "vc": "héllo wörld ✓",
    "tx": "a longer text",
    "bn": b"\x00\x01\x02\x03",
    "vb": b"\xff\x00",
    "bl": b"\xde\xad\xbe\xef",
    "dt": dt.date(2024, 2, 29),
    "dtt": dt.datetime(2024, 2, 29, 13, 14, 15, 123456),
    # written in the session zone +05:30 (below): the instant is 5 h 30 min earlier in UTC
    "ts": dt.datetime(2024, 2, 29, 7, 44, 15, 654321, tzinfo=dt.UTC),
    "tm": "-838:59:59.000001",
    "yr": 2155,
    "en": "large",
    "st": "x,z",
    "js": '{"a": [1, 2], "é": null}',
}


@pytest.fixture(autouse=True)
def server_zone_not_utc() -> Iterator[None]:
    """The server's default session zone is not UTC while these run, as on many servers: the
    source must not depend on it."""
    (before,) = execute("test", "SELECT @@global.time_zone")[0]
    execute("test", "SET GLOBAL time_zone = '-07:00'")
    try:
        yield
    finally:
        execute("test", "SET GLOBAL time_zone = %s", params=(before,))


def _kinds(database: str) -> None:
    execute(
        database,
        f"CREATE TABLE kinds ({COLUMNS})",
        "SET time_zone = '+05:30'",
        FULL,
        "INSERT INTO kinds (id) VALUES (2)",
    )


@pytest.fixture(params=["connectorx", "mysql_scanner"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which reader streams the rows: ConnectorX over plain connections, mysql_scanner over TLS (made
    to read this plain server's rows too, as no TLS server runs here)."""
    if request.param == "mysql_scanner":
        monkeypatch.setattr(MySQLSource, "_plain", lambda self: False)
    return str(request.param)


def test_every_common_type_round_trips_exactly_into_bronze(database: str, lakehouse: LocalEngine, reader: str) -> None:
    _kinds(database)
    sync(lakehouse, database, f"{database}.kinds", "kinds")
    rows = bronze(lakehouse, f"SELECT {', '.join(EXPECTED)} FROM kinds ORDER BY id")
    first, nulls = rows
    for name, value in EXPECTED.items():
        got = first[name]
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            assert got is not None and got.tzinfo is not None and got == value, name
        else:
            assert got == value and type(got) is type(value), (name, got, value)
    assert {k: v for k, v in nulls.items() if k != "id"} == dict.fromkeys(EXPECTED.keys() - {"id"})


def test_both_readers_land_each_column_with_the_same_type(database: str, lakehouse: LocalEngine) -> None:
    _kinds(database)
    sync(lakehouse, database, f"{database}.kinds", "by_connectorx")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MySQLSource, "_plain", lambda self: False)
        sync(lakehouse, database, f"{database}.kinds", "by_scanner")
    plain, tls = (lakehouse.describe(target(t)).columns for t in ("by_connectorx", "by_scanner"))
    landed = [c for c in plain if not c.name.startswith("_")]  # the sync's own columns aside
    assert len(landed) == len(EXPECTED) and plain == tls


def test_discovery_reports_each_columns_mysql_type_and_the_primary_key(database: str) -> None:
    _kinds(database)
    source = MySQLSource(mysql_config(database))
    try:
        info = source.stream(f"{database}.kinds")
    finally:
        source.close()
    types = {c.name: c.source_type for c in info.columns}
    assert types["ui"].startswith("int") and "unsigned" in types["ui"]
    assert types["b"] == "bit(10)" and types["en"] == "enum('small','large')"
    assert info.primary_key == ["id"] and info.kind == "table"
    assert info.cursor_candidates[:2] == ["ts", "dt"] or "ts" in info.cursor_candidates


def test_a_timestamp_cursor_is_an_instant_and_selects_rows_by_it(database: str) -> None:
    _kinds(database)
    source = MySQLSource(mysql_config(database))
    try:
        bound = source.cursor_bound(ReadRequest(f"{database}.kinds", cursor_column="ts"), rows=10)
        assert bound == EXPECTED["ts"] and bound.tzinfo is not None
        earlier = bound - dt.timedelta(microseconds=1)
        rows = source.read(ReadRequest(f"{database}.kinds", cursor_column="ts", cursor_after=earlier)).read_all()
        assert rows.column("id").to_pylist() == [1]
        assert (
            source.read(ReadRequest(f"{database}.kinds", cursor_column="ts", cursor_after=bound)).read_all().num_rows
            == 0
        )
    finally:
        source.close()
