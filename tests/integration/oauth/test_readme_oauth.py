"""The README's OAuth discovery example, run exactly as printed (bash, curl, jq) against the real app;
its output must match the README's line by line, with the server's own address."""

from __future__ import annotations

import os
import subprocess

from servicetsunami.services.container import Services
from tests.integration.api.test_readme import readme_block
from tests.integration.live_server import live_server

PRINTED_URL = "http://127.0.0.1:8000"


def test_the_readme_oauth_discovery_example_prints_what_the_readme_says(services: Services) -> None:
    script = readme_block("oauth-discovery", "sh")
    with live_server(services) as base:
        expected = readme_block("oauth-discovery output", "text").replace(PRINTED_URL, base)
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), "TSUNAMI_URL": base}
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=30
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == expected.splitlines()
