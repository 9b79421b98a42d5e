"""Helpers for the REST tests: users who log in, their bearer headers, sample files."""

from __future__ import annotations

import contextlib
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from fastapi.testclient import TestClient

from servicetsunami.errors import Conflict
from servicetsunami.services.container import Services
from servicetsunami.services.identity import tenants, users

SALES_CSV = b"id,region,amount\n1,north,10.5\n2,south,3.25\n3,north,7.0\n"


@dataclass(frozen=True)
class Login:
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def make_user(services: Services, slug: str, *, role: str = "admin", platform_admin: bool = False) -> tuple[str, str]:
    """A user of tenant ``slug`` (created if missing): ``(email, password)``."""
    with contextlib.suppress(Conflict):
        tenants.create_tenant(services.store, slug)
    services.engine.ensure_catalog(services.settings.catalog_prefix + slug)
    email = f"{role}-{secrets.token_hex(4)}@{slug}.example"
    password = secrets.token_urlsafe(16)
    users.create_user(
        services, tenant_slug=slug, email=email, password=password, role=role, is_platform_admin=platform_admin
    )
    return email, password


def login(
    client: TestClient, services: Services, slug: str, *, role: str = "admin", platform_admin: bool = False
) -> Login:
    email, password = make_user(services, slug, role=role, platform_admin=platform_admin)
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    return Login(email, password, body["access_token"], body["refresh_token"])


def upload(client: TestClient, headers: dict[str, str], name: str, data: bytes = SALES_CSV) -> dict[str, object]:
    response = client.post(
        "/api/v1/datasets", headers=headers, files={"file": (f"{name}.csv", data, "text/csv")}, data={"name": name}
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def pg_dsn() -> str:
    url = os.environ.get("TSUNAMI_TEST_POSTGRES_URL")
    assert url, "TSUNAMI_TEST_POSTGRES_URL must point at the test PostgreSQL (e.g. postgresql+psycopg://...)"
    return url.replace("postgresql+psycopg://", "postgresql://")


@contextlib.contextmanager
def pg_table(rows: int = 50) -> Iterator[str]:
    """A table of its own (random name) in the test PostgreSQL, dropped afterwards."""
    name = f"api_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE public.{name} (id bigint PRIMARY KEY, note text)")
        conn.execute(f"INSERT INTO public.{name} SELECT i, 'n' || i FROM generate_series(1, {int(rows)}) i")
    try:
        yield name
    finally:
        with psycopg.connect(pg_dsn(), autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS public.{name}")


def data_source_body(name: str, *, password: str | None = None, **overrides: object) -> dict[str, object]:
    info = psycopg.conninfo.conninfo_to_dict(pg_dsn())
    body: dict[str, object] = {
        "name": name,
        "host": str(info.get("host", "127.0.0.1")),
        "port": int(info.get("port", 5432) or 5432),
        "database": str(info.get("dbname", "test")),
        "user": str(info.get("user", "postgres")),
        "sslmode": "disable",
    }
    if password is not None:
        body["password"] = password
    body.update(overrides)
    return body
