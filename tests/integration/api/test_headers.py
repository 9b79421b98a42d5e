"""Security headers on every response: the ones carrying secrets are never cached, the docs pages
get a policy that lets exactly what they load run, and the MCP stream keeps working."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from servicetsunami.services.container import Services
from tests.helpers import make_principal
from tests.integration.api.support import login

SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "cache-control": "no-store"}


def assert_secured(response: httpx.Response) -> None:
    assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS, response.url
    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


def directives(policy: str) -> dict[str, list[str]]:
    parts = [part.split() for part in policy.split(";") if part.strip()]
    return {part[0]: part[1:] for part in parts}


def test_responses_that_carry_tokens_or_new_keys_are_secured_and_never_cached(
    client: TestClient, services: Services
) -> None:
    session = login(client, services, "acme")
    again = client.post("/api/v1/auth/login", json={"email": session.email, "password": session.password})
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": session.refresh_token})
    key = client.post("/api/v1/api-keys", json={"name": "ci", "role": "engineer"}, headers=session.headers)
    assert (again.status_code, refreshed.status_code, key.status_code) == (200, 200, 201)
    for response in (again, refreshed, key):
        assert_secured(response)


def test_every_other_response_is_secured_too(client: TestClient, services: Services) -> None:
    session = login(client, services, "acme")
    for response in (
        client.get("/health"),
        client.get("/openapi.json"),
        client.get("/api/v1/datasets", headers=session.headers),
        client.get("/api/v1/datasets"),  # 401
        client.get("/api/v1/no-such-thing"),  # the framework's 404
        client.post("/api/v1/query", json={"sql": "SELECT 1 -- " + "x" * 2_000_000}, headers=session.headers),  # 413
    ):
        assert_secured(response)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_a_docs_page_may_load_exactly_what_it_uses_and_nothing_else(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
    policy = directives(page.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    html = page.text
    for src in re.findall(r'<script src="([^"]+)"', html):
        assert origin(src) in policy["script-src"]
    for script in re.findall(r"<script>(.*?)</script>", html, re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy["script-src"]
    for tag in re.findall(r"<link[^>]*>", html):
        href = re.search(r'href="([^"]+)"', tag)
        assert href is not None
        wanted = "style-src" if "stylesheet" in tag else "img-src"
        assert origin(href.group(1)) in policy[wanted], tag
    if "openapi.json" in html:  # the page fetches the spec from this server
        assert client.get("/openapi.json").status_code == 200 and policy["connect-src"] == ["'self'"]


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "'self'"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_a_docs_page_loads_everything_from_this_server_so_it_works_offline(client: TestClient, path: str) -> None:
    html = client.get(path).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(url.startswith("/docs/assets/") for url in assets), assets
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html


def test_the_mcp_stream_still_answers_with_the_security_headers(client: TestClient, services: Services) -> None:
    _, key = make_principal(services, "acme", "analyst")
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    answer = client.post(
        "/mcp",
        json=initialize,
        headers={
            "Authorization": f"Bearer {key}",
            "Accept": "application/json, text/event-stream",
            "Host": "127.0.0.1",
        },
    )
    assert answer.status_code == 200, answer.text
    assert '"serverInfo"' in answer.text
    assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["x-frame-options"] == "DENY"
