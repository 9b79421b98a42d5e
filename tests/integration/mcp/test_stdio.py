"""The stdio door: a real ``tsunami mcp`` subprocess, as Claude Desktop launches it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from servicetsunami.services.container import Services
from tests.helpers import altered
from tests.integration.mcp.support import SALES_CSV, WAIT_SECONDS, Keys, error_code, result_text


def tsunami_mcp_command() -> list[str]:
    """``tsunami mcp`` from the same environment, exactly as the README's Claude Desktop config runs it."""
    return [str(Path(sys.executable).with_name("tsunami")), "mcp"]


def launch_env(services: Services, api_key: str | None) -> dict[str, str]:
    env = {"TSUNAMI_HOME": str(services.settings.resolved_home), "TSUNAMI_LOG_LEVEL": "WARNING"}
    if api_key is not None:
        env["TSUNAMI_API_KEY"] = api_key
    return env


def stdio_client(services: Services, api_key: str, cwd: Path) -> Client[Any]:
    command, *args = tsunami_mcp_command()
    transport = StdioTransport(command, args, env=launch_env(services, api_key), cwd=str(cwd), keep_alive=False)
    return Client(transport, timeout=WAIT_SECONDS * 2)


async def test_the_stdio_server_acts_as_the_launch_key_and_reads_the_users_own_files(
    services: Services, keys: Keys, tmp_path: Path
) -> None:
    local_file = tmp_path / "sales.csv"
    local_file.write_bytes(SALES_CSV)
    async with stdio_client(services, keys.acme_engineer, tmp_path) as client:
        uploaded = await client.call_tool_mcp(
            "upload_file", {"file_name": "sales.csv", "dataset_name": "sales", "path": str(local_file)}
        )
        assert not uploaded.is_error, result_text(uploaded)
        result = await client.call_tool("query_sql", {"sql": "SELECT count(*) AS n FROM bronze.sales"})
        encoded = base64.b64encode(SALES_CSV).decode()
        sent = await client.call_tool(
            "upload_file", {"file_name": "s.csv", "dataset_name": "sent", "file_content": encoded}
        )
        described = await client.call_tool("describe_table", {"table_name": "sent"})
        listed = await client.call_tool("list_tables", {})
    assert result.structured_content is not None and result.structured_content["rows"] == [[3]]
    assert sent.structured_content is not None and sent.structured_content["rows"] == 3
    assert described.structured_content is not None and described.structured_content["rows"] == 3
    assert listed.structured_content is not None
    names = [t["full_name"] for t in listed.structured_content["tables"]]
    assert names == ["tenant_acme.bronze.sales", "tenant_acme.bronze.sent"]


async def test_an_analyst_key_over_stdio_hides_and_refuses_upload_file(
    services: Services, keys: Keys, tmp_path: Path
) -> None:
    async with stdio_client(services, keys.acme_analyst, tmp_path) as client:
        names = {tool.name for tool in await client.list_tools()}
        refused = await client.call_tool_mcp(
            "upload_file", {"file_name": "x.csv", "dataset_name": "x", "path": str(tmp_path / "x.csv")}
        )
    assert "upload_file" not in names and "query_sql" in names
    assert error_code(refused) == "permission_denied"


def run_without_protocol(services: Services, api_key: str | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAMI_")}
    return subprocess.run(
        tsunami_mcp_command(),
        env=env | launch_env(services, api_key),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS * 4,
        check=False,
    )


def test_without_a_key_the_stdio_server_exits_2_and_says_how_to_make_one(services: Services, tmp_path: Path) -> None:
    completed = run_without_protocol(services, None, tmp_path)
    assert completed.returncode == 2
    assert "TSUNAMI_API_KEY" in completed.stderr and "tsunami keys create" in completed.stderr
    assert completed.stdout == ""


def test_with_a_refused_key_the_stdio_server_exits_2(services: Services, keys: Keys, tmp_path: Path) -> None:
    completed = run_without_protocol(services, altered(keys.acme_engineer), tmp_path)
    assert completed.returncode == 2
    assert "not accepted" in completed.stderr
    assert completed.stdout == ""


def test_unreadable_lines_over_stdio_are_answered_with_json_rpc_errors(
    services: Services, keys: Keys, tmp_path: Path
) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": "init",
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    }
    lines = [
        "{not json",
        json.dumps([{"jsonrpc": "2.0", "id": 7, "method": "ping"}]),
        json.dumps({"id": 8, "method": "ping"}),
        json.dumps(initialize),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAMI_")}
    completed = subprocess.run(
        tsunami_mcp_command(),
        env=env | launch_env(services, keys.acme_analyst),
        cwd=tmp_path,
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS * 4,
        check=False,
    )
    answers = [json.loads(line) for line in completed.stdout.splitlines()]
    errors = [(a["id"], a["error"]["code"]) for a in answers if "error" in a]
    assert errors == [(None, -32700), (None, -32600), (8, -32600)], completed.stderr
    assert [a["id"] for a in answers if "result" in a] == ["init"]
