"""The console's admin pages over the ASGI app: users, keys shown once then never, revocation at once,
the tenant's mask_pii, the audit log with the console's own writes, nobody but admins, and tenants
created by platform admins only."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from servicetsunami.errors import AuthError
from servicetsunami.services.container import Services
from servicetsunami.services.governance import pii
from servicetsunami.services.identity import tenants
from tests.helpers import make_principal
from tests.integration.api.support import make_user
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


def _tenant_form(page_html: str, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf_of(page_html), "slug": "globex", "name": "Globex Corporation"} | fields


def _slugs(services: Services) -> set[str]:
    return {t.slug for t in tenants.list_tenants(services.store)}


def test_a_platform_admin_creates_a_tenant_whose_first_admin_then_signs_in(
    client: TestClient, services: Services
) -> None:
    email, password = make_user(services, "acme", platform_admin=True)
    sign_in(client, email=email, password=password)
    page = client.get("/admin").text
    assert 'action="/admin/tenants"' in page
    form = _tenant_form(page, admin_email="boss@globex.example", admin_password="a-long-password-1")
    made = client.post("/admin/tenants", data=form)
    assert made.status_code == 200 and 'data-tenant="globex"' in made.text
    assert "a-long-password-1" not in made.text
    assert "globex" in _slugs(services)
    client.cookies.clear()
    sign_in(client, email="boss@globex.example", password="a-long-password-1")
    assert "globex · admin" in client.get("/").text


def test_a_tenant_the_service_refuses_shows_its_code_and_keeps_what_was_typed(
    client: TestClient, services: Services
) -> None:
    email, password = make_user(services, "acme", platform_admin=True)
    sign_in(client, email=email, password=password)
    page = client.get("/admin").text
    taken = client.post("/admin/tenants", data=_tenant_form(page, slug="acme"))
    assert taken.status_code == 409 and 'data-code="conflict"' in taken.text
    bad = client.post("/admin/tenants", data=_tenant_form(page, slug="Not a slug!"))
    assert bad.status_code == 400 and 'data-code="invalid_identifier"' in bad.text
    assert 'value="Not a slug!"' in bad.text and 'value="Globex Corporation"' in bad.text
    half = client.post("/admin/tenants", data=_tenant_form(page, admin_email="boss@globex.example"))
    assert half.status_code == 400 and 'data-code="invalid_input"' in half.text
    assert _slugs(services) == {"acme"}


def test_only_platform_admins_see_the_tenant_form_and_anyone_elses_post_is_refused(
    client: TestClient, services: Services
) -> None:
    for role in ("admin", "analyst"):
        client.cookies.clear()
        sign_in_as(client, services, "acme", role=role)
        page = client.get("/").text
        assert 'action="/admin/tenants"' not in client.get("/admin").text
        forged = client.post("/admin/tenants", data=_tenant_form(page))
        assert forged.status_code == 403 and 'data-code="permission_denied"' in forged.text
    email, password = make_user(services, "acme", platform_admin=True)
    client.cookies.clear()
    sign_in(client, email=email, password=password)
    without_token = client.post("/admin/tenants", data={"slug": "globex"})
    assert without_token.status_code == 403 and 'data-code="permission_denied"' in without_token.text
    assert _slugs(services) == {"acme"}


def test_a_platform_admin_who_is_not_the_tenants_admin_sees_only_the_tenant_form(
    client: TestClient, services: Services
) -> None:
    email, password = make_user(services, "acme", role="engineer", platform_admin=True)
    sign_in(client, email=email, password=password)
    page = client.get("/admin")
    assert page.status_code == 200 and 'action="/admin/tenants"' in page.text
    assert 'action="/admin/users"' not in page.text and 'action="/admin/keys"' not in page.text
    assert client.get("/admin/audit").status_code == 403
    assert client.post("/admin/tenants", data=_tenant_form(page.text)).status_code == 200
