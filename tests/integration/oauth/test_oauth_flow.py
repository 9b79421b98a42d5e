"""End to end: an MCP client signs its user in with OAuth (discovery from /mcp's 401, registration,
sign-in and consent on the console, PKCE code, tokens) and calls tools as that user; the admin page
shows when each grant was last used; the tenant's admin revokes the grant there and the client is
refused at once."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from servicetsunami.services.container import Services
from servicetsunami.services.identity import oauth
from servicetsunami.store.models import OAuthGrant, utcnow
from tests.helpers import make_principal
from tests.integration.api.support import make_user
from tests.integration.oauth.support import (
    CSRF,
    MemoryStorage,
    Person,
    Pkce,
    authorization_url,
    exchange,
    oauth_client,
    redirect_params,
    register,
)

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
MCP_ACCEPT = "application/json, text/event-stream"


def post_initialize(base_url: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/mcp",
        json=INITIALIZE,
        headers={"Accept": MCP_ACCEPT, "Authorization": f"Bearer {token}"},
        timeout=20,
    )


async def test_an_mcp_client_signs_in_with_a_browser_and_calls_tools_as_the_user_who_consented(
    services: Services, base_url: str
) -> None:
    email, password = make_user(services, "acme", role="engineer")
    person = Person(base_url, email, password)
    storage = MemoryStorage()
    try:
        auth = oauth_client(base_url, person, storage)
        async with Client(StreamableHttpTransport(f"{base_url}/mcp", auth=auth)) as client:
            names = {tool.name for tool in await client.list_tools()}
            result = await client.call_tool("metrics", {})
    finally:
        person.close()
    assert storage.client is not None and storage.client.client_secret  # registered (RFC 7591), with a secret
    assert storage.tokens is not None and storage.tokens.refresh_token
    assert result.structured_content is not None and result.structured_content["tenant"] == "acme"
    assert "sync_table_to_bronze" in names  # an engineer's write tool
    assert "status" not in names  # an admin's tool: the client acts with the user's role, nothing more
    page = person.consent_pages[0]
    for shown in ("Scripted MCP client", "127.0.0.1:43117", email, ">acme<", ">engineer<"):
        assert shown in page


async def test_an_admin_revokes_a_grant_on_the_admin_page_and_its_tokens_stop_working_at_once(
    services: Services, base_url: str
) -> None:
    email, password = make_user(services, "acme", role="analyst")
    person = Person(base_url, email, password)
    storage = MemoryStorage()
    try:
        auth = oauth_client(base_url, person, storage, client_name="Claude test")
        async with Client(StreamableHttpTransport(f"{base_url}/mcp", auth=auth)) as client:
            await client.call_tool("metrics", {})
    finally:
        person.close()
    assert storage.tokens is not None and storage.client is not None
    access, refresh = storage.tokens.access_token, storage.tokens.refresh_token
    assert post_initialize(base_url, access).status_code == 200

    admin_email, admin_password = make_user(services, "acme", role="admin")
    admin = Person(base_url, admin_email, admin_password)
    try:
        admin.authorize("/admin")  # signs in on the way
        page = admin.http.get("/admin")
        row = re.search(r'<tr data-grant="([^"]+)"><td>Claude test</td><td>' + re.escape(email), page.text)
        assert row is not None, page.text
        revoked = admin.http.post(f"/admin/grants/{row.group(1)}/revoke", data={"csrf_token": _csrf(page.text)})
        assert revoked.status_code == 303
        after = admin.http.get("/admin").text
    finally:
        admin.close()
    assert re.search(r'data-grant="' + row.group(1) + r'">.*?<td>revoked</td>', after, re.S)

    refused = post_initialize(base_url, access)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"
    token = httpx.post(
        f"{base_url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh or "",
            "client_id": storage.client.client_id,
            "client_secret": storage.client.client_secret or "",
        },
        timeout=20,
    )
    assert token.status_code == 400
    assert token.json()["error"] == "invalid_grant"


async def test_refresh_tokens_rotate_and_a_used_one_presented_again_revokes_the_grant(
    services: Services, base_url: str
) -> None:
    email, password = make_user(services, "acme", role="analyst")
    person = Person(base_url, email, password)
    storage = MemoryStorage()
    try:
        auth = oauth_client(base_url, person, storage)
        async with Client(StreamableHttpTransport(f"{base_url}/mcp", auth=auth)) as client:
            await client.list_tools()
    finally:
        person.close()
    assert storage.tokens is not None and storage.client is not None
    client_form = {"client_id": storage.client.client_id, "client_secret": storage.client.client_secret or ""}

    def refresh(token: str | None) -> httpx.Response:
        form: dict[str, Any] = {"grant_type": "refresh_token", "refresh_token": token or "", **client_form}
        return httpx.post(f"{base_url}/token", data=form, timeout=20)

    first = storage.tokens.refresh_token
    rotated = refresh(first)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first
    assert post_initialize(base_url, second["access_token"]).status_code == 200

    replayed = refresh(first)
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    # the replay revoked the grant: the newest tokens are dead too
    assert refresh(second["refresh_token"]).json()["error"] == "invalid_grant"
    assert post_initialize(base_url, second["access_token"]).status_code == 401


def test_a_grant_in_use_at_mcp_shows_when_it_was_last_used_written_at_most_once_a_minute(
    services: Services, base_url: str
) -> None:
    email, password = make_user(services, "acme", role="analyst")
    person = Person(base_url, email, password)
    try:
        client_id, pkce = register(base_url).json()["client_id"], Pkce.new()
        code = redirect_params(person.authorize(authorization_url(client_id, pkce)))["code"]
        access = exchange(base_url, client_id, code, pkce.verifier).json()["access_token"]
    finally:
        person.close()
    long_ago = utcnow() - timedelta(hours=2)
    with services.store.session() as session:
        session.execute(sa.update(OAuthGrant).values(last_used_at=long_ago))
    writes: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE OAUTH_GRANTS"):
            writes.append(statement)

    sa.event.listen(services.store.engine, "before_cursor_execute", count)
    try:
        answers = {post_initialize(base_url, access).status_code for _ in range(4)}
    finally:
        sa.event.remove(services.store.engine, "before_cursor_execute", count)
    admin, _ = make_principal(services, "acme", "admin")
    (grant,) = oauth.list_grants(services, admin)
    assert answers == {200}
    assert grant.last_used_at is not None and grant.last_used_at > utcnow() - timedelta(minutes=1)
    assert len(writes) == 1


def _csrf(page_html: str) -> str:
    found = CSRF.search(page_html)
    assert found is not None
    return found.group(1)
