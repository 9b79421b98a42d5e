"""The README's MCP authentication example, run exactly as printed (bash, curl, jq) against a real
HTTP server; its output must match the README's line by line, with the server's own address."""

from __future__ import annotations

import os
import subprocess

from tests.integration.api.test_readme import readme_block
from tests.integration.mcp.support import WAIT_SECONDS, HttpServer

PRINTED_URL = "http://127.0.0.1:8000"


def test_the_readme_mcp_auth_example_prints_what_the_readme_says(http_server: HttpServer) -> None:
    script = readme_block("mcp-auth", "sh")
    expected = readme_block("mcp-auth output", "text").replace(PRINTED_URL, http_server.base_url)
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), "TSUNAMI_URL": http_server.base_url}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=WAIT_SECONDS
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == expected.splitlines()
