"""The OAuth flow against `tsunami serve --workers 2`: whichever worker answers each step (sign-in,
the consent page and its form, the code, the token, /mcp), the flow completes and the token works;
nothing of a pending authorization lives in one worker's memory."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from tests.integration.oauth.support import SEALED, MemoryStorage, Person, oauth_client
from tests.integration.served import serving

EMAIL, PASSWORD = "ada@example.com", "a-long-password"


async def test_an_mcp_client_signs_in_and_calls_tools_whichever_of_two_workers_answers(tmp_path: Path) -> None:
    with serving(tmp_path, workers=2) as served:
        assert len(served.workers()) == 2
        made = httpx.post(
            f"{served.url}/api/v1/users",
            json={"email": EMAIL, "password": PASSWORD, "role": "engineer"},
            headers={"Authorization": f"Bearer {served.key}"},
            timeout=20,
        )
        assert made.status_code == 201, made.text
        person = Person(served.url, EMAIL, PASSWORD, fresh_connections=True)
        storage = MemoryStorage()
        try:
            auth = oauth_client(served.url, person, storage)
            async with Client(StreamableHttpTransport(f"{served.url}/mcp", auth=auth)) as client:
                first = await client.call_tool("list_tables", {})
            # the pending request the consent page carried, opened again on new connections
            sealed = SEALED.search(person.consent_pages[0])
            assert sealed is not None
            pages = {
                person.http.get("/oauth/consent", params={"request": sealed.group(1)}).status_code for _ in range(6)
            }
        finally:
            person.close()
        assert storage.tokens is not None
        answers = []
        for _ in range(4):  # a new client (and connection) each time
            async with Client(StreamableHttpTransport(f"{served.url}/mcp", auth=storage.tokens.access_token)) as again:
                answers.append((await again.call_tool_mcp("list_tables", {})).is_error)
    assert not first.is_error
    assert pages == {200}
    assert answers == [False] * 4
