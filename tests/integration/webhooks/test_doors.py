"""Webhooks through every door: REST (/api/v1/webhooks), MCP tools through a real client, and
get_audit_log. Admins only; another tenant's webhook does not exist; the secret is shown once and
never logged; private hosts are refused in multi-tenant mode, at creation and at delivery."""

from __future__ import annotations

import base64
import logging
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client

from servicetsunami.api.app import create_app
from servicetsunami.errors import InvalidInput, PermissionDenied
from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.container import Services
from servicetsunami.services.ops import webhook_delivery, webhooks
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.webhooks.conftest import settings_for
from tests.integration.webhooks.receiver import Receiver


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Services]:  # the doors on SQLite; the store is covered by test_delivery.py
    services = Services.open(settings_for(tmp_path / "home"))
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
async def api(svc: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(svc.settings, services=svc)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_webhook_is_created_tested_listed_and_rotated_over_rest_with_its_secret_shown_only_twice(
    svc: Services, api: httpx.AsyncClient, hook: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = make_principal(svc, "acme")[1]
    created = await api.post(
        "/api/v1/webhooks", json={"url": hook.url, "events": ["job_run.failed"]}, headers=bearer(key)
    )
    assert created.status_code == 201, created.text
    first_secret = created.json()["secret"]
    assert first_secret.startswith("whsec_")
    hook.secret = first_secret
    webhook_id = created.json()["id"]
    shown = [
        (await api.get("/api/v1/webhooks", headers=bearer(key))).text,
        (await api.get(f"/api/v1/webhooks/{webhook_id}", headers=bearer(key))).text,
        (await api.patch(f"/api/v1/webhooks/{webhook_id}", json={"description": "x"}, headers=bearer(key))).text,
    ]
    assert all(first_secret not in text and "secret" not in text for text in shown)
    tested = await api.post(f"/api/v1/webhooks/{webhook_id}/test", headers=bearer(key))
    assert tested.status_code == 200 and tested.json()["status"] == "succeeded", tested.text
    assert hook.received[-1].verified and hook.received[-1].json["type"] == "webhook.ping"
    rotated = await api.post(f"/api/v1/webhooks/{webhook_id}/rotate-secret", headers=bearer(key))
    second_secret = rotated.json()["secret"]
    assert rotated.status_code == 200 and second_secret != first_secret
    await api.post(f"/api/v1/webhooks/{webhook_id}/test", headers=bearer(key))
    assert not hook.received[-1].verified  # signed with the new secret, which the receiver does not know yet
    hook.secret = second_secret
    assert hook.verify(hook.received[-1].headers, hook.received[-1].body)
    page = (await api.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=bearer(key))).json()
    assert [d["event_type"] for d in page["items"]] == ["webhook.ping", "webhook.ping"]
    assert page["items"][0]["attempt_log"][0]["status_code"] == 200
    assert (await api.delete(f"/api/v1/webhooks/{webhook_id}", headers=bearer(key))).status_code == 204
    assert (await api.get(f"/api/v1/webhooks/{webhook_id}", headers=bearer(key))).status_code == 404
    audit = (await api.get("/api/v1/audit", params={"door": "rest"}, headers=bearer(key))).json()["items"]
    assert [e["action"] for e in reversed(audit)] == [
        "POST /api/v1/webhooks",
        "PATCH /api/v1/webhooks/{webhook_id}",
        "POST /api/v1/webhooks/{webhook_id}/test",
        "POST /api/v1/webhooks/{webhook_id}/rotate-secret",
        "POST /api/v1/webhooks/{webhook_id}/test",
        "DELETE /api/v1/webhooks/{webhook_id}",
    ]
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert first_secret not in logged and second_secret not in logged
    assert first_secret.removeprefix("whsec_") not in logged


async def test_analysts_are_refused_and_another_tenants_webhook_does_not_exist(
    svc: Services, api: httpx.AsyncClient, hook: Receiver
) -> None:
    admin = make_principal(svc, "acme")[1]
    analyst = make_principal(svc, "acme", "analyst")[1]
    other = make_principal(svc, "globex")[1]
    created = await api.post("/api/v1/webhooks", json={"url": hook.url, "events": ["*"]}, headers=bearer(admin))
    webhook_id = created.json()["id"]
    for method, path in [
        ("GET", "/api/v1/webhooks"),
        ("POST", "/api/v1/webhooks"),
        ("POST", f"/api/v1/webhooks/{webhook_id}/test"),
        ("GET", f"/api/v1/webhooks/{webhook_id}/deliveries"),
    ]:
        answer = await api.request(method, path, headers=bearer(analyst), json={"url": hook.url, "events": ["*"]})
        assert (answer.status_code, answer.json()["code"]) == (403, "permission_denied"), path
    for method, path in [
        ("GET", f"/api/v1/webhooks/{webhook_id}"),
        ("DELETE", f"/api/v1/webhooks/{webhook_id}"),
        ("POST", f"/api/v1/webhooks/{webhook_id}/test"),
        ("POST", f"/api/v1/webhooks/{webhook_id}/rotate-secret"),
        ("GET", f"/api/v1/webhooks/{webhook_id}/deliveries"),
    ]:
        answer = await api.request(method, path, headers=bearer(other))
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found"), path
    assert (await api.get("/api/v1/webhooks", headers=bearer(other))).json()["items"] == []
    assert hook.received == []


async def test_unknown_events_and_urls_that_are_not_http_are_refused_with_invalid_input(
    api: httpx.AsyncClient, svc: Services, hook: Receiver
) -> None:
    key = make_principal(svc, "acme")[1]
    for body in [
        {"url": hook.url, "events": ["job_run.exploded"]},
        {"url": hook.url, "events": ["nothing.failed"]},
        {"url": "ftp://example.com/x", "events": ["*"]},
        {"url": "https://user:pw@example.com/x", "events": ["*"]},
        {"url": hook.url, "events": ["*"], "secret": "not-a-secret"},
    ]:
        answer = await api.post("/api/v1/webhooks", json=body, headers=bearer(key))
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid_input"), body


async def test_the_mcp_tools_manage_and_test_a_webhook_and_the_audit_log_shows_the_calls(
    svc: Services, hook: Receiver
) -> None:
    admin = make_principal(svc, "acme")[0]
    async with Client(build_mcp_server(svc, principal=admin)) as client:
        created = (await client.call_tool("create_webhook", {"url": hook.url, "events": ["sync.*"]})).structured_content
        assert created is not None
        hook.secret = created["secret"]
        listed = (await client.call_tool("list_webhooks", {})).structured_content
        assert listed is not None and [w["id"] for w in listed["webhooks"]] == [created["id"]]
        assert "secret" not in listed["webhooks"][0]
        tested = (await client.call_tool("test_webhook", {"webhook_id": created["id"]})).structured_content
        assert tested is not None and tested["status"] == "succeeded" and hook.received[-1].verified
        log = (await client.call_tool("list_webhook_deliveries", {"webhook_id": created["id"]})).structured_content
        assert log is not None and [d["id"] for d in log["deliveries"]] == [tested["id"]]
        await client.call_tool("delete_webhook", {"webhook_id": created["id"]})
        audit = (await client.call_tool("get_audit_log", {"door": "mcp", "limit": 2})).structured_content
        assert audit is not None
        assert [e["action"] for e in audit["entries"]] == ["mcp:delete_webhook", "mcp:test_webhook"]
        rest = await client.call_tool("get_audit_log", {"door": "mcp", "cursor": audit["next_cursor"]})
        assert [e["action"] for e in (rest.structured_content or {})["entries"]] == ["mcp:create_webhook"]


async def test_analysts_do_not_see_the_webhook_tools_nor_the_audit_log(svc: Services) -> None:
    analyst = make_principal(svc, "acme", "analyst")[0]
    async with Client(build_mcp_server(svc, principal=analyst)) as client:
        names = {tool.name for tool in await client.list_tools()}
        assert not names & {"create_webhook", "list_webhooks", "test_webhook", "get_audit_log"}
        refused = await client.call_tool("get_audit_log", {}, raise_on_error=False)
        assert refused.is_error


# -- multi-tenant mode: where webhooks may post -----------------------------------------------------


def _multi_tenant(tmp_path: Path, **webhooks: Any) -> Services:
    master = "k1:" + base64.b64encode(os.urandom(32)).decode()
    return Services.open(
        settings_for(
            tmp_path / "mt",
            multi_tenant=True,
            master_key=master,
            auth={"jwt_secret": os.urandom(32).hex()},
            webhooks=webhooks,
        )
    )


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Names the test resolves itself (name -> address); the rest as the system does."""
    names: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], int(port)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def test_multi_tenant_mode_refuses_private_hosts_and_plain_http_unless_the_operator_allows_them(
    tmp_path: Path, hook: Receiver
) -> None:
    strict = _multi_tenant(tmp_path)
    try:
        admin = make_principal(strict, "acme")[0]
        with pytest.raises(InvalidInput):  # http
            webhooks.create_webhook(strict, admin, url=hook.url, events=["*"])
        with pytest.raises(PermissionDenied):  # loopback
            webhooks.create_webhook(strict, admin, url=hook.url.replace("http:", "https:"), events=["*"])
        with pytest.raises(PermissionDenied):  # cloud metadata, whatever the settings
            webhooks.create_webhook(strict, admin, url="https://169.254.169.254/latest", events=["*"])
    finally:
        strict.close()
    allowed = _multi_tenant(tmp_path, allow_http=True, allowed_networks=["127.0.0.0/8"])
    try:
        admin = make_principal(allowed, "acme")[0]
        created = webhooks.create_webhook(allowed, admin, url=hook.url, events=["*"])
        hook.secret = created.secret
        assert webhook_delivery.test_webhook(allowed, admin, created.id).status == "succeeded"
    finally:
        allowed.close()


def test_a_host_that_resolves_to_a_private_address_by_delivery_time_is_not_posted_to(
    tmp_path: Path, hook: Receiver, resolver: dict[str, str]
) -> None:
    svc = _multi_tenant(tmp_path, allow_http=True)
    try:
        admin: Principal = make_principal(svc, "acme")[0]
        resolver["hooks.example.com"] = "93.184.215.14"  # public when the webhook is created
        port = hook.url.split(":")[2].split("/")[0]
        created = webhooks.create_webhook(
            svc, admin, url=f"http://hooks.example.com:{port}/hooks/tsunami", events=["*"]
        )
        resolver["hooks.example.com"] = "127.0.0.1"  # then the name points inside
        delivery = webhook_delivery.test_webhook(svc, admin, created.id)
        assert (delivery.status, delivery.last_error) == ("failed", "host_refused")
        assert hook.received == []
    finally:
        svc.close()


def test_a_redirect_is_not_followed_and_fails_the_delivery(svc: Services, hook: Receiver) -> None:
    admin = make_principal(svc, "acme")[0]
    created = webhooks.create_webhook(svc, admin, url=hook.url, events=["*"])
    hook.secret = created.secret
    hook.answers = [(302, {"Location": "http://169.254.169.254/latest/meta-data"})]
    delivery = webhook_delivery.test_webhook(svc, admin, created.id)
    assert (delivery.status, delivery.last_status_code, delivery.last_error) == ("failed", 302, "redirect")
    assert len(hook.received) == 1
