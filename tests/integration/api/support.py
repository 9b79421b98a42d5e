"""Helpers for the REST tests: users who log in, their bearer headers, sample files."""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass

from fastapi.testclient import TestClient

from servicetsunami.errors import Conflict
from servicetsunami.services import identity, tenants
from servicetsunami.services.container import Services

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


def make_user(
    services: Services, slug: str, *, role: str = "admin", platform_admin: bool = False
) -> tuple[str, str]:
    """A user of tenant ``slug`` (created if missing): ``(email, password)``."""
    with contextlib.suppress(Conflict):
        tenants.create_tenant(services.store, slug)
    services.engine.ensure_catalog(services.settings.catalog_prefix + slug)
    email = f"{role}-{secrets.token_hex(4)}@{slug}.example"
    password = secrets.token_urlsafe(16)
    identity.create_user(
        services, tenant_slug=slug, email=email, password=password, role=role, is_platform_admin=platform_admin
    )
    return email, password


def login(client: TestClient, services: Services, slug: str, *, role: str = "admin", platform_admin: bool = False) -> Login:
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
