"""The HTTP door: a real uvicorn serving /mcp the way ``tsunami serve`` mounts it."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import jwt
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from servicetsunami.mcp.http import MAX_BODY_BYTES
from servicetsunami.mcp.protocol import SUPPORTED_PROTOCOL_VERSIONS
from servicetsunami.services.identity import users
from tests.helpers import altered, make_principal
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
    forged = altered(keys.acme_engineer)
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


def raw_post(server: HttpServer, api_key: str, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with httpx.Client(timeout=10) as http:
        return http.post(
            server.mcp_url,
            content=content,
            headers={
                "Accept": MCP_ACCEPT,
                "Content-Type": "application/json",
                "Authorization": f"Bearer {api_key}",
                "MCP-Protocol-Version": "2025-06-18",
                **headers,
            },
        )


def rpc_answer(response: httpx.Response) -> dict[str, Any]:
    """The one JSON-RPC message of a response, whether sent as JSON or as one SSE event."""
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        assert len(data) == 1, response.text
        return dict(json.loads(data[0]))
    return dict(response.json())


def request(method: str, params: dict[str, Any], request_id: int = 2) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def test_a_call_to_an_unknown_tool_is_a_json_rpc_invalid_params_error(http_server: HttpServer, keys: Keys) -> None:
    answer = rpc_answer(raw_post(http_server, keys.acme_analyst, request("tools/call", {"name": "nope"})))
    assert answer["error"]["code"] == -32602
    assert answer["error"]["data"]["code"] == "unknown_tool"


def test_a_made_up_cursor_is_refused(http_server: HttpServer, keys: Keys) -> None:
    for method in ("tools/list", "prompts/list", "resources/templates/list"):
        answer = rpc_answer(raw_post(http_server, keys.acme_analyst, request(method, {"cursor": "garbage"})))
        assert answer["error"]["code"] == -32602, method


def test_completion_for_an_unknown_prompt_or_template_is_refused(http_server: HttpServer, keys: Keys) -> None:
    argument = {"name": "table_name", "value": "s"}
    unknown_prompt = {"ref": {"type": "ref/prompt", "name": "nope"}, "argument": argument}
    unknown_template = {"ref": {"type": "ref/resource", "uri": "table://{x}"}, "argument": argument}
    known = {"ref": {"type": "ref/prompt", "name": "analyze_schema"}, "argument": argument}
    codes = [
        rpc_answer(raw_post(http_server, keys.acme_analyst, request("completion/complete", params)))
        for params in (unknown_prompt, unknown_template, known)
    ]
    assert [c.get("error", {}).get("data", {}).get("code") for c in codes] == [
        "unknown_prompt",
        "unknown_resource_template",
        None,
    ]
    assert codes[2]["result"]["completion"]["values"] == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        ([INITIALIZE], -32600),
        ({"id": 5, "method": "tools/list"}, -32600),
        ({"jsonrpc": "2.0", "id": 5}, -32600),
        ("just a string", -32600),
    ],
)
def test_a_body_that_is_not_one_json_rpc_message_gets_400_with_the_json_rpc_code(
    http_server: HttpServer, keys: Keys, body: Any, code: int
) -> None:
    response = raw_post(http_server, keys.acme_analyst, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert "pydantic" not in response.text


def test_an_unsupported_protocol_version_header_gets_400_naming_the_supported_ones(
    http_server: HttpServer, keys: Keys
) -> None:
    response = raw_post(http_server, keys.acme_analyst, request("tools/list", {}), **{"MCP-Protocol-Version": "1999"})
    assert response.status_code == 400
    assert response.json()["error"]["data"]["supported"] == list(SUPPORTED_PROTOCOL_VERSIONS)
    assert "2025-06-18" in response.json()["error"]["message"]


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_methods_other_than_post_get_405_allowing_post_only(http_server: HttpServer, keys: Keys, method: str) -> None:
    with httpx.Client(timeout=10) as http:
        response = http.request(
            method, http_server.mcp_url, headers={"Accept": MCP_ACCEPT, "Authorization": f"Bearer {keys.acme_analyst}"}
        )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_a_body_over_the_limit_gets_413_saying_the_limit_and_where_big_files_go(
    http_server: HttpServer, keys: Keys
) -> None:
    payload = b64(b"x" * MAX_BODY_BYTES)
    body = request("tools/call", {"name": "upload_file", "arguments": {"file_name": "a.csv", "file_content": payload}})
    response = raw_post(http_server, keys.acme_engineer, body)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["data"] == {"code": "body_too_large", "limit_bytes": MAX_BODY_BYTES}
    assert "tsunami upload" in error["message"] and "/api/v1/datasets" in error["message"]


def test_a_missing_key_gets_a_body_saying_what_to_send_and_the_metadata_address(http_server: HttpServer) -> None:
    response = post_initialize(http_server)
    metadata_url = f"{http_server.base_url}/.well-known/oauth-protected-resource/mcp"
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert "Authorization: Bearer" in response.json()["error_description"]
    assert response.headers["www-authenticate"] == f'Bearer resource_metadata="{metadata_url}"'


def test_a_wrong_key_is_explained_in_terms_of_api_keys(http_server: HttpServer) -> None:
    response = post_initialize(http_server, Authorization="Bearer tsk_not_a_real_key")
    assert response.status_code == 401
    description = response.json()["error_description"]
    assert "tsunami keys" in description and "re-register" not in description
    assert "resource_metadata=" in response.headers["www-authenticate"]


@pytest.mark.parametrize("suffix", ["", "/mcp"])
def test_protected_resource_metadata_is_published(http_server: HttpServer, suffix: str) -> None:
    with httpx.Client(timeout=10) as http:
        response = http.get(f"{http_server.base_url}/.well-known/oauth-protected-resource{suffix}")
    assert response.status_code == 200
    assert response.json()["resource"] == http_server.mcp_url
    assert response.json()["bearer_methods_supported"] == ["header"]


def test_a_stateless_request_leaves_no_terminating_session_line_in_the_log(
    http_server: HttpServer, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        assert post_initialize(http_server, Authorization=f"Bearer {keys.acme_analyst}").status_code == 200
        answer = rpc_answer(raw_post(http_server, keys.acme_analyst, request("tools/list", {})))
    assert "result" in answer
    assert not [r for r in caplog.records if "Terminating session" in r.getMessage()]
