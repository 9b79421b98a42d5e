"""`tsunami serve --workers 2`: two processes on one port behave as one service."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from tests.integration.served import Served, serving


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module: each test's requests and data are its own (the rate-limited query
    endpoint is called by one test only), and two workers take a while to start."""
    with serving(tmp_path_factory.mktemp("workers"), env={"TSUNAMI_API__QUERY_RATE_LIMIT": "4/minute"}) as server:
        yield server


def test_the_query_rate_limit_holds_across_workers(served: Served) -> None:
    assert len(served.workers()) == 2
    statuses = []
    for _ in range(6):  # a new connection each time, so both workers answer some
        with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {served.key}"}) as http:
            answer = http.post("/api/v1/query", json={"sql": "SELECT 1 AS one"})
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert int(answer.headers["retry-after"]) >= 1
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_an_upload_answered_by_one_worker_is_seen_by_the_other(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.key}"}
    with httpx.Client(base_url=served.url, headers=headers) as http:
        made = http.post("/api/v1/datasets", files={"file": ("sales.csv", b"region,amount\nnorth,2\n", "text/csv")})
        assert made.status_code == 201, made.text
    for _ in range(6):
        with httpx.Client(base_url=served.url, headers=headers) as http:
            listed = http.get("/api/v1/datasets").json()["items"]
            assert [d["name"] for d in listed] == ["sales"]
            assert http.get("/api/v1/tables/bronze/sales").json()["rows"] == 1


def test_mcp_over_http_is_answered_by_any_worker(served: Served) -> None:
    async def calls() -> list[str]:
        names = []
        for _ in range(4):  # a new client (and connection) each time
            async with Client(StreamableHttpTransport(f"{served.url}/mcp", auth=served.key)) as client:
                names.append(sorted(t.name for t in await client.list_tools())[0])
        return names

    assert len(set(asyncio.run(calls()))) == 1


def test_a_revoked_key_and_a_disabled_user_are_refused_at_once_by_every_worker(served: Served) -> None:
    admin = {"Authorization": f"Bearer {served.key}"}
    with httpx.Client(base_url=served.url, headers=admin) as http:
        key = http.post("/api/v1/api-keys", json={"name": "ci", "role": "analyst"}).json()
        made = http.post("/api/v1/users", json={"email": "ada@example.com", "password": "a-long-password"})
        assert made.status_code == 201, made.text
        token = http.post("/api/v1/auth/login", json={"email": "ada@example.com", "password": "a-long-password"})
    credentials = [key["plaintext"], token.json()["access_token"]]
    assert _answers(served, credentials) == {200}  # each worker has verified (and remembered) both
    with httpx.Client(base_url=served.url, headers=admin) as http:
        assert http.delete(f"/api/v1/api-keys/{key['id']}").status_code == 200
        assert http.patch(f"/api/v1/users/{made.json()['id']}", json={"active": False}).status_code == 200
    assert _answers(served, credentials) == {401}


def _answers(served: Served, credentials: list[str]) -> set[int]:
    """The statuses of REST and MCP requests with each credential, on new connections (both workers)."""
    statuses = set()
    for _ in range(4):
        for credential in credentials:
            headers = {"Authorization": f"Bearer {credential}"}
            with httpx.Client(base_url=served.url, headers=headers) as http:
                statuses.add(http.get("/api/v1/auth/me").status_code)
                initialize = http.post(
                    "/mcp",
                    headers={"Accept": "application/json, text/event-stream"},
                    json={
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "initialize",
                        "params": {
                            "protocolVersion": "2025-06-18",
                            "capabilities": {},
                            "clientInfo": {"name": "t", "version": "0"},
                        },
                    },
                )
                statuses.add(initialize.status_code)
    return statuses
