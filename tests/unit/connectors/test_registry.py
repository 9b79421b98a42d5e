"""The connector registry: one entry per kind, its secrets kept apart, its drivers loaded only when
a connection of it is opened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from servicetsunami.connectors.registry import SOURCE_KINDS, SourceContext, source_kind
from servicetsunami.errors import InvalidInput, NotSupported

POSTGRES = {"host": "db.example.com", "database": "app", "user": "reader", "password": "pw-123"}


def test_a_kind_keeps_its_secrets_out_of_what_is_stored_in_clear() -> None:
    kind = source_kind("postgres")
    config = kind.parse(POSTGRES)
    assert "password" not in kind.public(config)
    assert kind.public(config)["host"] == "db.example.com"
    assert kind.secret_values(config) == {"password": "pw-123"}
    assert kind.endpoint(config) == ("db.example.com", 5432)


def test_stored_fields_and_decrypted_secrets_parse_back_into_the_same_config() -> None:
    kind = source_kind("postgres")
    config = kind.parse(POSTGRES)
    again = kind.parse(kind.public(config), kind.secret_values(config))
    assert again == config and isinstance(again.password, SecretStr)


def test_a_config_with_wrong_fields_is_invalid_input_naming_them() -> None:
    with pytest.raises(InvalidInput) as caught:
        source_kind("postgres").parse({"host": "db.example.com", "port": 0})
    assert {"port", "database", "user"} <= set(caught.value.message.replace(":", " ").split())


def test_an_unknown_kind_is_not_supported() -> None:
    with pytest.raises(NotSupported):
        source_kind("mainframe")


def test_every_kind_builds_a_source_of_its_own_kind() -> None:
    configs = {
        "postgres": POSTGRES,
        "mysql": {"host": "db.example.com", "database": "app", "user": "reader", "password": "pw-123"},
        "rest": {"base_url": "https://api.example.com/v1", "resources": [{"name": "items", "path": "/items"}]},
        "sheets": {"spreadsheet_id": "1AbCdEfGhIjKlMnOp", "auth": "public"},
        "salesforce": {"instance_url": "https://acme.my.salesforce.com", "client_id": "app", "client_secret": "s-1"},
        "files": {"path": "a/b.csv"},
    }
    assert set(SOURCE_KINDS) == set(configs)
    for name, kind in SOURCE_KINDS.items():
        source = kind.factory(kind.parse(configs[name]), SourceContext(volume_file=Path))
        try:
            assert source.kind == name == kind.name
        finally:
            source.close()


def test_rest_and_mysql_secrets_are_kept_apart_and_their_endpoint_is_the_host_to_vet() -> None:
    rest = source_kind("rest")
    config = rest.parse(
        {
            "base_url": "https://api.example.com:8443/v1",
            "auth": {"type": "bearer"},
            "resources": [{"name": "items", "path": "/items"}],
        },
        {"token": "tok-123"},
    )
    assert "token" not in rest.public(config) and rest.secret_values(config) == {"token": "tok-123"}
    assert rest.endpoint(config) == ("api.example.com", 8443)
    assert rest.config_schema()["properties"]["token"]["writeOnly"] is True
    mysql = source_kind("mysql")
    assert mysql.endpoint(mysql.parse({"host": "db", "database": "d", "user": "u"})) == ("db", 3306)


def test_a_context_without_a_volume_refuses_files_with_not_supported() -> None:
    kind = source_kind("files")
    with pytest.raises(NotSupported):
        kind.factory(kind.parse({"path": "a.csv"}), SourceContext())


def test_the_registry_loads_no_driver_until_a_connection_is_opened() -> None:
    code = (
        "import sys, servicetsunami.connectors.registry as r; "
        "print(sorted(m for m in ('psycopg', 'duckdb', 'pymysql', 'httpx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
