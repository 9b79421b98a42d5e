"""The console's admin pages over the ASGI app: users, keys shown once then never, revocation at once,
the tenant's mask_pii, the audit log with the console's own writes, and nobody but admins."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from servicetsunami.errors import AuthError
from servicetsunami.services.container import Services
from servicetsunami.services.governance import pii
from tests.helpers import make_principal
from tests.integration.console.conftest import csrf_of, sign_in, sign_in_as

KEY = re.compile(r'<code class="secret-once" id="new-key">(tsk_[^<]+)</code>')


def test_an_admin_makes_a_key_that_is_shown_once_and_works_until_revoked(
    client: TestClient, services: Services
) -> None:
    sign_in_as(client, services, "acme")
    page = client.get("/admin").text
    made = client.post("/admin/keys", data={"csrf_token": csrf_of(page), "name": "ci", "role": "analyst"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    key = KEY.search(made.text)
    assert key is not None
    assert key.group(1) not in client.get("/admin").text  # never again
    assert services.authenticate(key.group(1)).role.value == "analyst"
    listed = client.get("/admin").text
    key_id = listed.split('action="/admin/keys/')[1].split("/revoke")[0]
    assert client.post(f"/admin/keys/{key_id}/revoke", data={"csrf_token": csrf_of(listed)}).status_code == 303
    with pytest.raises(AuthError):
        services.authenticate(key.group(1))
    client.cookies.clear()
    form = client.get("/signin").text
    token = form.split('name="signin_token" value="')[1].split('"')[0]
    refused = client.post("/signin", data={"signin_token": token, "api_key": key.group(1)})
    assert refused.status_code == 401


def test_an_added_user_signs_in_with_the_role_given(client: TestClient, services: Services) -> None:
    sign_in_as(client, services, "acme")
    page = client.get("/admin").text
    form = {
        "csrf_token": csrf_of(page),
        "email": "ana@acme.example",
        "password": "a-long-password-1",
        "role": "analyst",
    }
    assert client.post("/admin/users", data=form).status_code == 303
    assert "ana@acme.example" in client.get("/admin").text
    client.cookies.clear()
    sign_in(client, email="ana@acme.example", password="a-long-password-1")
    assert "acme · analyst" in client.get("/").text


def test_mask_pii_is_switched_from_the_settings(client: TestClient, services: Services) -> None:
    sign_in_as(client, services, "acme")
    admin = make_principal(services, "acme")[0]
    page = client.get("/admin").text
    assert client.post("/admin/settings", data={"csrf_token": csrf_of(page), "mask_pii": "on"}).status_code == 303
    assert pii.mask_pii_enabled(services, admin)
    assert client.post("/admin/settings", data={"csrf_token": csrf_of(page)}).status_code == 303
    assert not pii.mask_pii_enabled(services, admin)


def test_the_audit_log_shows_the_consoles_writes_by_door_and_filters_them(
    client: TestClient, services: Services
) -> None:
    sign_in_as(client, services, "acme")
    page = client.get("/admin").text
    client.post("/admin/settings", data={"csrf_token": csrf_of(page), "mask_pii": "on"})
    log = client.get("/admin/audit").text
    row = next(r for r in log.split("<tr>") if "POST /admin/settings" in r)
    assert "<td>console</td>" in row and "<td>ok</td>" in row
    filtered = client.get("/admin/audit", params={"action": "POST /admin/keys"}).text
    assert "POST /admin/settings" not in filtered


def test_only_admins_see_or_use_the_admin_pages(client: TestClient, services: Services) -> None:
    sign_in_as(client, services, "acme", role="engineer")
    assert 'href="/admin"' not in client.get("/").text
    assert client.get("/admin").status_code == 403
    page = client.get("/").text
    refused = client.post("/admin/keys", data={"csrf_token": csrf_of(page), "name": "x", "role": "admin"})
    assert refused.status_code == 403 and "tsk_" not in refused.text
    assert client.get("/admin/audit").status_code == 403
