"""``tsunami tools``: the CLI as an MCP client. ``tools list`` shows the tools the key of
``TSUNAMI_API_KEY`` sees, ``tools call NAME --args '{...}'`` calls one and prints its structured result
as JSON.

Locally the MCP server is built in process for the key's principal, as ``tsunami mcp`` and
``GET /api/v1/mcp/tools`` build it (tool sets, limits and audit included); with ``--server URL`` the
list comes from ``GET /api/v1/mcp/tools`` and calls go to the server's MCP endpoint (``/mcp``,
streamable HTTP). A failed call prints ``error (code): message`` and exits with status 2, like every
command.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from servicetsunami.cli.common import console, key_principal, open_services, remote, reported_errors
from servicetsunami.errors import InvalidInput, ServerUnreachable, TsunamiError

if TYPE_CHECKING:
    import mcp.types as mcp_types
    from fastmcp import Client

app = typer.Typer(help="The MCP tools your key sees: list them, call one.", no_args_is_help=True)


@app.command("list")
def tools_list(as_json: Annotated[bool, typer.Option("--json", help="Name, description and schemas")] = False) -> None:
    """The tools your key sees, with the first line of each description."""
    with remote() as server:
        if server is not None:
            tools: list[dict[str, Any]] = server.call("GET", "/mcp/tools")["tools"]
    if server is None:
        from servicetsunami.mcp.catalog import visible_tools

        with open_services() as svc:
            tools = asyncio.run(visible_tools(svc, key_principal(svc)))
    if as_json:
        console.print_json(json.dumps(tools))
        return
    table = Table("tool", "description")
    for tool in tools:
        table.add_row(tool["name"], _first_line(tool.get("description") or ""))
    console.print(table)
    console.print(f"{len(tools)} tools")


@app.command("call")
def tools_call(
    name: Annotated[str, typer.Argument(help="Tool name (tsunami tools list)")],
    args: Annotated[str, typer.Option("--args", help="The tool's arguments as a JSON object")] = "{}",
) -> None:
    """Call one tool; prints its structured result as JSON (its text when it has none)."""
    with reported_errors():
        arguments = _arguments(args)
    with remote() as server:
        if server is not None:
            server.call("GET", "/mcp/status")  # the key and the server checked over REST, errors by their code
            result = asyncio.run(_call_remote(server.base_url, server.api_key, name, arguments))
    if server is None:
        with open_services() as svc:
            from servicetsunami.mcp.server import build_mcp_server

            mcp_server = build_mcp_server(svc, principal=key_principal(svc))

            async def call() -> mcp_types.CallToolResult:
                from fastmcp import Client

                async with Client(mcp_server) as client:
                    return await _call(client, name, arguments)

            result = asyncio.run(call())
    with reported_errors():
        _print_result(result)


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"--args is not JSON ({exc.msg} at character {exc.pos}); give an object, e.g. '{{}}'"
        ) from None
    if not isinstance(value, dict):
        raise InvalidInput('--args must be a JSON object of the tool\'s arguments, e.g. \'{"sql": "SELECT 1"}\'')
    return value


async def _call(client: Client[Any], name: str, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
    return await client.call_tool_mcp(name, arguments)


async def _call_remote(base_url: str, api_key: str, name: str, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
    import httpx
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport
    from mcp.shared.exceptions import MCPError

    from servicetsunami.mcp.http import MCP_PATH

    transport = StreamableHttpTransport(base_url + MCP_PATH, headers={"Authorization": f"Bearer {api_key}"})
    try:
        async with Client(transport) as client:
            return await _call(client, name, arguments)
    except (MCPError, httpx.HTTPStatusError) as exc:  # the key passed /mcp/status: /mcp itself is amiss
        raise ServerUnreachable(
            f"the MCP endpoint of {base_url} refused the session ({exc}); check that it serves MCP at {MCP_PATH}"
        ) from None
    except (httpx.TransportError, OSError) as exc:
        raise ServerUnreachable(
            f"cannot reach the server at {base_url} ({type(exc).__name__}); check the URL and that `tsunami serve` "
            "runs there"
        ) from None


def _print_result(result: mcp_types.CallToolResult) -> None:
    import mcp.types as mcp_types

    from servicetsunami.cli.remote import error_of_code
    from servicetsunami.mcp.errors import ERROR_META_KEY

    text = "\n".join(block.text for block in result.content if isinstance(block, mcp_types.TextContent))
    if result.is_error:
        error = (result.meta or {}).get(ERROR_META_KEY) or {}
        raise error_of_code(str(error.get("code") or TsunamiError.code), str(error.get("message") or text))
    if result.structured_content is not None:
        console.print_json(json.dumps(result.structured_content))
    else:
        console.print(text, highlight=False, soft_wrap=True)


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]
