"""The HTTP door: a real uvicorn serving /mcp the way ``tsunami serve`` mounts it."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from servicetsunami.services.identity import users
from tests.helpers import make_principal
from tests.integration.mcp.support import SALES_CSV, HttpServer, Keys, b64, error_code, result_text

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw-http-test", "version": "0"},
    },
}
MCP_ACCEPT = "application/json, text/event-stream"


def post_initialize(server: HttpServer, **headers: str) -> httpx.Response:
    with httpx.Client(timeout=10) as http:
        return http.post(server.mcp_url, json=INITIALIZE, headers={"Accept": MCP_ACCEPT, **headers})


def http_client(server: HttpServer, api_key: str, **kwargs: Any) -> Client[Any]:
    return Client(StreamableHttpTransport(server.mcp_url, auth=api_key), **kwargs)


def test_a_request_without_a_key_gets_401_with_a_bearer_challenge(http_server: HttpServer) -> None:
    response = post_initialize(http_server)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_request_with_a_wrong_key_gets_401(http_server: HttpServer, keys: Keys) -> None:
    forged = keys.acme_engineer[:-4] + "AAAA"
    for token in (forged, "not-a-key-at-all"):
        response = post_initialize(http_server, Authorization=f"Bearer {token}")
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_request_with_a_good_key_is_served(http_server: HttpServer, keys: Keys) -> None:
    response = post_initialize(http_server, Authorization=f"Bearer {keys.acme_analyst}")
    assert response.status_code == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example:8000"])
def test_a_forged_origin_gets_403_even_with_a_good_key(http_server: HttpServer, keys: Keys, origin: str) -> None:
    response = post_initialize(http_server, Authorization=f"Bearer {keys.acme_engineer}", Origin=origin)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden_origin"


def test_a_page_on_this_machine_may_call_the_local_server(http_server: HttpServer, keys: Keys) -> None:
    response = post_initialize(
        http_server, Authorization=f"Bearer {keys.acme_engineer}", Origin="http://localhost:6274"
    )
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io"])
def test_a_forged_host_gets_403_even_with_a_good_key(http_server: HttpServer, keys: Keys, host: str) -> None:
    response = post_initialize(http_server, Authorization=f"Bearer {keys.acme_engineer}", Host=host)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden_host"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_good_key_uploads_and_queries_over_http(http_server: HttpServer, keys: Keys, mode: str) -> None:
    async with http_client(http_server, keys.acme_engineer, mode=mode) as client:
        uploaded = await client.call_tool_mcp(
            "upload_file", {"file_name": "sales.csv", "dataset_name": "sales", "file_content": b64(SALES_CSV)}
        )
        assert not uploaded.is_error, result_text(uploaded)
        result = await client.call_tool("query_sql", {"sql": "SELECT count(*) AS n FROM bronze.sales"})
    assert result.structured_content is not None and result.structured_content["rows"] == [[3]]


async def test_each_http_request_acts_as_the_principal_of_its_own_key(http_server: HttpServer, keys: Keys) -> None:
    async with http_client(http_server, keys.globex_engineer) as globex:
        uploaded = await globex.call_tool_mcp(
            "upload_file",
            {"file_name": "payroll.csv", "dataset_name": "payroll", "file_content": b64(SALES_CSV)},
        )
        assert not uploaded.is_error, result_text(uploaded)
    async with http_client(http_server, keys.acme_analyst) as analyst:
        names = {tool.name for tool in await analyst.list_tools()}
        refused = await analyst.call_tool_mcp(
            "upload_file", {"file_name": "x.csv", "dataset_name": "x", "file_content": b64(SALES_CSV)}
        )
        listed = await analyst.call_tool_mcp("list_tables", {})
        foreign = await analyst.call_tool_mcp("query_sql", {"sql": "SELECT * FROM tenant_globex.bronze.payroll"})
    assert "upload_file" not in names and "query_sql" in names
    assert error_code(refused) == "permission_denied"
    assert listed.structured_content == {"tables": []}
    assert error_code(foreign) in {"permission_denied", "query_refused"}


async def test_http_refuses_to_read_a_path_on_the_servers_disk(http_server: HttpServer, keys: Keys) -> None:
    async with http_client(http_server, keys.acme_engineer) as client:
        result = await client.call_tool_mcp(
            "upload_file", {"file_name": "passwd.csv", "dataset_name": "passwd", "path": "/etc/passwd"}
        )
    assert error_code(result) == "permission_denied"
    assert "file_content" in result_text(result)


def _user_id(services: Any, slug: str) -> str:
    """An analyst of ``slug``: access tokens are accepted only for users who exist and are active."""
    from tests.integration.api.support import make_user

    email, _ = make_user(services, slug, role="analyst")
    analysts = users.list_users(services, make_principal(services, slug, "admin")[0])
    return next(user.id for user in analysts if user.email == email)


def _access_token(services: Any, principal: Any, **overrides: Any) -> str:
    import time

    import jwt

    assert services.tokens is not None
    token, _ = services.tokens.issue(
        user_id=_user_id(services, principal.tenant_slug),
        tenant_id=principal.tenant_id,
        tenant_slug=principal.tenant_slug,
        role="analyst",
    )
    if not overrides:
        return str(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(overrides)
    claims.setdefault("exp", int(time.time()) + 60)
    return str(jwt.encode(claims, services.tokens._key, algorithm="HS256"))


async def test_an_access_token_from_a_login_is_accepted_as_the_bearer(http_server: HttpServer, services: Any) -> None:
    acme, _ = make_principal(services, "acme", "analyst")
    async with http_client(http_server, _access_token(services, acme)) as client:
        names = {tool.name for tool in await client.list_tools()}
    assert "query_sql" in names and "upload_file" not in names  # analyst: read tools only


def test_an_access_token_for_another_audience_or_issuer_gets_401(http_server: HttpServer, services: Any) -> None:
    acme, _ = make_principal(services, "acme", "analyst")
    for forged in (_access_token(services, acme, aud="another-api"), _access_token(services, acme, iss="elsewhere")):
        response = post_initialize(http_server, Authorization=f"Bearer {forged}")
        assert response.status_code == 401


async def test_a_disabled_users_access_token_is_refused_at_once(http_server: HttpServer, services: Any) -> None:
    acme, _ = make_principal(services, "acme", "analyst")
    token = _access_token(services, acme)
    async with http_client(http_server, token) as client:
        assert await client.list_tools()
    user_id = jwt.decode(token, options={"verify_signature": False})["sub"].removeprefix("user:")
    admin, _ = make_principal(services, "acme", "admin")
    users.update_user(services, admin, user_id, active=False)
    response = post_initialize(http_server, Authorization=f"Bearer {token}")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
