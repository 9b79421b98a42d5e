"""What a MySQL source says when something is wrong: TLS asked of a server without it, a database
that is not offered, a dropped connection (reopened on the next query), a query the server refuses,
and messages that carry no password."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from servicetsunami.connectors.base import ReadRequest
from servicetsunami.connectors.mysql import MySQLConfig, MySQLSource
from servicetsunami.connectors.mysql.source import diagnose, redact
from servicetsunami.errors import InvalidInput, SourceError
from tests.integration.mysql.support import execute, mysql_config

pytestmark = pytest.mark.mysql


@pytest.mark.parametrize("mode", ["required", "verify_ca", "verify_identity"])
def test_tls_asked_of_a_server_that_offers_none_fails_the_check_as_ssl(mode: str) -> None:
    (have_ssl,) = execute("test", "SELECT @@have_ssl")[0]
    source = MySQLSource(mysql_config(ssl_mode=mode))
    try:
        result = source.check()
    finally:
        source.close()
    if have_ssl == "YES":  # a server with TLS (and, in tests, a certificate no CA vouches for)
        assert result.ok if mode == "required" else result.problem == "ssl"
    else:
        assert not result.ok and result.problem == "ssl" and result.diagnosis


def test_a_database_that_is_missing_fails_the_check_and_one_not_offered_is_invalid_input(database: str) -> None:
    source = MySQLSource(mysql_config(database, databases=["no_such_db_here"]))
    try:
        result = source.check()
        assert not result.ok and result.problem == "permission" and "no_such_db_here" in (result.diagnosis or "")
        with pytest.raises(InvalidInput):
            source.discover(schema="elsewhere")
        with pytest.raises(InvalidInput):
            source.stream("elsewhere.t")
        assert source.discover(schema=database) == []
    finally:
        source.close()


def test_a_dropped_connection_is_a_transient_error_and_the_next_query_reconnects(database: str) -> None:
    execute(database, "CREATE TABLE t (id int PRIMARY KEY, at datetime)", "INSERT INTO t VALUES (1, '2024-01-01')")
    source = MySQLSource(mysql_config(database))
    try:
        assert source.cursor_bound(ReadRequest(f"{database}.t", cursor_column="at"), rows=5) is not None
        assert source._control is not None
        execute("test", f"KILL {source._control.thread_id()}")
        with pytest.raises(SourceError) as caught:
            source.cursor_bound(ReadRequest(f"{database}.t", cursor_column="at"), rows=5)
        assert caught.value.is_transient
        assert source.cursor_bound(ReadRequest(f"{database}.t", cursor_column="at"), rows=5) is not None
    finally:
        source.close()


def test_a_query_the_server_refuses_is_a_source_error_and_cancel_is_harmless(database: str) -> None:
    execute(database, "CREATE TABLE t (id int PRIMARY KEY)")
    source = MySQLSource(mysql_config(database))
    try:
        source.cancel()  # nothing running: nothing happens
        with pytest.raises(InvalidInput):
            source.cursor_bound(ReadRequest(f"{database}.t", cursor_column="nope"), rows=5)
        with pytest.raises(InvalidInput):
            source.cursor_bound(ReadRequest(f"{database}.t"), rows=5)
        with pytest.raises(InvalidInput):
            source.read(ReadRequest(f"{database}.gone")).read_all()
        assert source.progress() is None or 0 <= (source.progress() or 0) <= 100
    finally:
        source.close()


def test_passwords_are_kept_out_of_messages() -> None:
    assert "s3cret" not in redact("connect failed password=s3cret host=x")
    assert "s3cret" not in redact("user 'a' with s3cret denied", "s3cret")
    problem, advice = diagnose(RuntimeError("Unknown database 'x'"))
    assert problem == "database" and advice
    assert diagnose(RuntimeError("[Errno -2] Name or service not known"))[0] == "dns"
    assert diagnose(RuntimeError("timed out"))[0] == "timeout"
    assert diagnose(RuntimeError("SSL connection error"))[0] == "ssl"
    assert diagnose(RuntimeError("Access denied for user"))[0] == "auth"
    assert diagnose(RuntimeError("something else"))[0] == "error"


@pytest.mark.parametrize(
    "changes",
    [{"host": "db/x"}, {"database": "a`b"}, {"user": "o'neil"}, {"databases": ["a.b"]}, {"port": 0}],
)
def test_settings_that_could_escape_their_quoting_are_refused(changes: dict[str, object]) -> None:
    base = {"host": "db.example.com", "database": "app", "user": "reader"}
    with pytest.raises(ValidationError):
        MySQLConfig.model_validate({**base, **changes})


def test_a_user_whose_name_and_password_hold_url_characters_reads_rows(database: str) -> None:
    user, password = f"r@d:{database[-4:]}", "p@ss:w/rd%?#&+ "
    execute(database, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)")
    for host in ("%", "localhost"):
        execute("test", "CREATE USER %s@%s IDENTIFIED BY %s", params=(user, host, password))
        execute("test", f"GRANT SELECT ON `{database}`.* TO %s@%s", params=(user, host))
    source = MySQLSource(mysql_config(database, user=user, password=password))
    try:
        assert source.read(ReadRequest(f"{database}.t")).read_all().column("id").to_pylist() == [1, 2]
    finally:
        source.close()
        for host in ("%", "localhost"):
            execute("test", "DROP USER %s@%s", params=(user, host))


def test_a_password_is_kept_out_of_messages_as_a_connection_url_spells_it_too() -> None:
    assert "p%40ss" not in redact("cannot use mysql://u:p%40ss@db/x", "p@ss")
