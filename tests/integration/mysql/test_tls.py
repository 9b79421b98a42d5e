"""``ssl_mode`` against a server that speaks TLS and whose reader must use it: preferred and required
read over TLS (through mysql_scanner: ConnectorX reads only plain connections), verify_ca and
verify_identity refuse a certificate no trusted CA signed, and disabled is refused by the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from servicetsunami.connectors.base import ReadRequest
from servicetsunami.connectors.mysql import MySQLConfig, MySQLSource
from servicetsunami.connectors.mysql.config import SslMode
from tests.integration.mysql.tls_server import DATABASE, PASSWORD, USER, TlsServer, tls_mariadb

pytestmark = pytest.mark.mysql


@pytest.fixture(scope="module")
def server() -> Iterator[TlsServer]:
    with tls_mariadb() as started:
        yield started


def _source(server: TlsServer, mode: SslMode) -> MySQLSource:
    config = MySQLConfig(
        host=server.host, port=server.port, database=DATABASE, user=USER, password=PASSWORD, ssl_mode=mode
    )
    return MySQLSource(config)


@pytest.mark.parametrize("mode", ["preferred", "required"])
def test_preferred_and_required_read_and_stage_rows_over_tls(server: TlsServer, mode: SslMode, tmp_path: Path) -> None:
    source = _source(server, mode)
    try:
        assert source.check().ok
        request = ReadRequest(f"{DATABASE}.orders")
        assert source.read(request).read_all().column("id").to_pylist() == [1, 2]
        source.stage_parquet(request, tmp_path / "stage")
        staged = pq.read_table(tmp_path / "stage")
        assert sorted(staged.column("id").to_pylist()) == [1, 2]
        assert not source._plain()  # the TLS reader, not ConnectorX
    finally:
        source.close()


@pytest.mark.parametrize("mode", ["verify_ca", "verify_identity"])
def test_a_certificate_no_trusted_ca_signed_fails_the_check_as_ssl(server: TlsServer, mode: SslMode) -> None:
    source = _source(server, mode)
    try:
        result = source.check()
    finally:
        source.close()
    assert not result.ok and result.problem == "ssl" and result.diagnosis


def test_a_plain_connection_is_refused_by_a_server_that_requires_tls_of_the_user(server: TlsServer) -> None:
    source = _source(server, "disabled")
    try:
        result = source.check()
    finally:
        source.close()
    assert not result.ok and result.problem == "auth"
