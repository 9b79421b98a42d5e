"""How many bytes of ``tools/list`` does a client (and its model) read, per tool preset?

Builds the MCP server as ``tsunami mcp`` does for an admin key of a fresh tenant, once per tool
preset (settings ``tools.preset``), lists the tools through a real in-memory MCP client, and prints
the size of the ``tools/list`` result as it goes on the wire (compact JSON), with the ratio to the
full list measured in the same run, and the largest descriptions.

Usage: ``python benchmarks/tools_list.py [--top 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from fastmcp import Client

from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.container import Services
from servicetsunami.services.identity import tenants
from servicetsunami.settings import Settings, ToolsSettings
from servicetsunami.toolsets import PRESETS


async def measure(home: Path, preset: str) -> tuple[int, int, list[tuple[int, str]]]:
    settings = Settings(home=home, tools=ToolsSettings(preset=preset), _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option
    services = Services.open(settings)
    try:
        if preset == "":
            tenants.create_tenant(services.store, settings.default_tenant)
        key = tenants.create_api_key(services.store, tenant_slug=settings.default_tenant, name="bench", role="admin")
        server = build_mcp_server(services, principal=services.authenticate(key.plaintext))
        async with Client(server) as client:
            listed = await client.list_tools_mcp()
        wire = listed.model_dump_json(by_alias=True, exclude_none=True)
        descriptions = sorted(((len(t.description or ""), t.name) for t in listed.tools), reverse=True)
        return len(wire.encode()), len(listed.tools), descriptions
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--top", type=int, default=5, help="Show this many of the longest descriptions.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        rows = {preset or "(none: every tool)": asyncio.run(measure(home, preset)) for preset in ["", *PRESETS]}
    full = rows["(none: every tool)"][0]
    print(f"{'preset':22} {'tools':>5} {'bytes':>8} {'vs all':>7}")
    for name, (size, count, _) in rows.items():
        print(f"{name:22} {count:5} {size:8} {size / full:7.2f}")
    print("longest descriptions:", json.dumps(rows["(none: every tool)"][2][: args.top]))


if __name__ == "__main__":
    main()
