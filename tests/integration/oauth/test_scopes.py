"""What the OAuth scopes mean: ``read``, ``write`` and ``manage`` are the role model's permissions, and a
token may do what both its granted scopes and its user's role allow; nothing else is a scope."""

from __future__ import annotations

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from servicetsunami.services.container import Services
from tests.integration.mcp.support import error_code
from tests.integration.oauth.support import (
    Person,
    Pkce,
    authorization_url,
    exchange,
    person_of,
    redirect_params,
    register,
)


def tokens_for(base_url: str, person: Person, scope: str) -> dict[str, str]:
    """The flow by hand, asking for exactly ``scope``."""
    registered = register(base_url)
    assert registered.status_code == 201, registered.text
    client_id, pkce = registered.json()["client_id"], Pkce.new()
    code = redirect_params(person.authorize(authorization_url(client_id, pkce, scope=scope)))["code"]
    tokens = exchange(base_url, client_id, code, pkce.verifier)
    assert tokens.status_code == 200, tokens.text
    return dict(tokens.json())


async def test_a_token_granted_read_only_calls_read_tools_and_is_refused_write_tools(
    services: Services, base_url: str
) -> None:
    person = person_of(services, base_url, "engineer")
    try:
        tokens = tokens_for(base_url, person, "read")
    finally:
        person.close()
    assert tokens["scope"] == "read"
    async with Client(StreamableHttpTransport(f"{base_url}/mcp", auth=tokens["access_token"])) as client:
        names = {tool.name for tool in await client.list_tools()}
        listed = await client.call_tool_mcp("list_tables", {})
        refused = await client.call_tool_mcp(
            "upload_file", {"file_name": "x.csv", "dataset_name": "x", "file_content": "YQo="}
        )
    assert "list_tables" in names and "upload_file" not in names
    assert not listed.is_error
    assert error_code(refused) == "permission_denied"


async def test_a_token_never_does_more_than_its_users_role_whatever_scopes_it_asked_for(
    services: Services, base_url: str
) -> None:
    person = person_of(services, base_url, "analyst")
    try:
        tokens = tokens_for(base_url, person, "read write manage")
    finally:
        person.close()
    assert tokens["scope"] == "read"
    async with Client(StreamableHttpTransport(f"{base_url}/mcp", auth=tokens["access_token"])) as client:
        refused = await client.call_tool_mcp(
            "upload_file", {"file_name": "x.csv", "dataset_name": "x", "file_content": "YQo="}
        )
    assert error_code(refused) == "permission_denied"


def test_the_consent_page_shows_the_permissions_the_app_will_have(services: Services, base_url: str) -> None:
    person = person_of(services, base_url, "engineer")
    try:
        tokens_for(base_url, person, "read manage")
    finally:
        person.close()
    page = person.consent_pages[0]
    assert 'data-scope="read"' in page
    assert 'data-scope="write"' not in page  # not asked for
    assert 'data-scope="manage"' not in page  # asked for, but an engineer may not


@pytest.mark.parametrize("scope", ["admin", "read everything", "openid"])
def test_an_unknown_scope_is_refused_with_invalid_scope_before_consent(
    services: Services, base_url: str, scope: str
) -> None:
    person = person_of(services, base_url, "engineer")
    try:
        client_id = register(base_url).json()["client_id"]
        params = redirect_params(person.authorize(authorization_url(client_id, Pkce.new(), scope=scope)))
    finally:
        person.close()
    assert params["error"] == "invalid_scope"
    assert person.consent_pages == []


def test_the_metadata_names_the_scopes(base_url: str) -> None:
    server = httpx.get(f"{base_url}/.well-known/oauth-authorization-server", timeout=20).json()
    resource = httpx.get(f"{base_url}/.well-known/oauth-protected-resource/mcp", timeout=20).json()
    assert resource["scopes_supported"] == ["read", "write", "manage"]
    assert set(server["scopes_supported"]) == {"read", "write", "manage", "offline_access"}


def test_a_refresh_may_ask_for_fewer_scopes_and_not_for_more(services: Services, base_url: str) -> None:
    person = person_of(services, base_url, "engineer")
    try:
        registered = register(base_url).json()
        client_id, pkce = registered["client_id"], Pkce.new()
        url = authorization_url(client_id, pkce, scope="read write")
        code = redirect_params(person.authorize(url))["code"]
        first = exchange(base_url, client_id, code, pkce.verifier).json()
    finally:
        person.close()

    def refresh(token: str, scope: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id, "scope": scope}
        return httpx.post(f"{base_url}/token", data=form, timeout=20)

    narrower = refresh(first["refresh_token"], "read")
    assert narrower.status_code == 200, narrower.text
    assert narrower.json()["scope"] == "read"
    wider = refresh(narrower.json()["refresh_token"], "read write manage")
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_scope"


def test_the_admin_page_shows_what_each_allowed_app_may_do(services: Services, base_url: str) -> None:
    person = person_of(services, base_url, "engineer")
    try:
        tokens_for(base_url, person, "read")
    finally:
        person.close()
    admin = person_of(services, base_url, "admin")
    try:
        admin.authorize("/admin")  # signs in on the way
        page = admin.http.get("/admin").text
    finally:
        admin.close()
    row = page.split("<tr data-grant=")[1].split("</tr>")[0]
    assert '<td class="grant-scopes">read</td>' in row
