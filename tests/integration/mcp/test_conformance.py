"""The official MCP conformance suite (``@modelcontextprotocol/conformance``, pinned in
``tests/conformance/package-lock.json`` with the Node 22 it needs) run against a real ``/mcp``.

The suite's CLI cannot send an ``Authorization`` header, so the server runs behind the test-only
:class:`~tests.integration.mcp.support.InjectKey` wrapper, which adds a real API key to requests
that come without one; the server checks it exactly as in production.

Every scenario of the suite is sorted below: those that apply to this server must pass; the others
exercise the fixtures of the suite's reference server (tools, prompts and resources named
``test_*``) or a feature this server does not offer, each with its reason. A scenario added by a
new version of the suite fails the test until it is sorted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from servicetsunami.services.container import Services
from tests.integration.mcp.support import Keys, running_http_server

SUITE_DIR = Path(__file__).parents[2] / "conformance"
BIN = SUITE_DIR / "node_modules" / ".bin"
SUITE_SECONDS = 300

APPLIES = frozenset(
    {
        "server-initialize",
        "logging-set-level",
        "ping",
        "tools-list",
        "resources-list",
        "prompts-list",
        "dns-rebinding-protection",
        "server-sse-multiple-streams",
    }
)
REFERENCE_FIXTURES = "calls a fixture of the suite's reference server, which this server does not have"
DOES_NOT_APPLY: dict[str, str] = {
    "completion-complete": f"{REFERENCE_FIXTURES} (prompt test_prompt_with_arguments)",
    "tools-call-simple-text": f"{REFERENCE_FIXTURES} (tool test_simple_text)",
    "tools-call-image": f"{REFERENCE_FIXTURES} (tool test_image_content)",
    "tools-call-audio": f"{REFERENCE_FIXTURES} (tool test_audio_content)",
    "tools-call-embedded-resource": f"{REFERENCE_FIXTURES} (tool test_embedded_resource)",
    "tools-call-mixed-content": f"{REFERENCE_FIXTURES} (tool test_multiple_content_types)",
    "tools-call-with-logging": f"{REFERENCE_FIXTURES} (tool test_tool_with_logging)",
    "tools-call-error": f"{REFERENCE_FIXTURES} (tool test_error_handling)",
    "tools-call-with-progress": f"{REFERENCE_FIXTURES} (tool test_tool_with_progress)",
    "tools-call-sampling": f"{REFERENCE_FIXTURES} (tool test_sampling)",
    "tools-call-elicitation": f"{REFERENCE_FIXTURES} (tool test_elicitation); this server never elicits",
    "elicitation-sep1034-defaults": f"{REFERENCE_FIXTURES}; this server never elicits",
    "elicitation-sep1330-enums": f"{REFERENCE_FIXTURES}; this server never elicits",
    "resources-read-text": f"{REFERENCE_FIXTURES} (resource test://static-text)",
    "resources-read-binary": f"{REFERENCE_FIXTURES} (resource test://static-binary)",
    "resources-templates-read": f"{REFERENCE_FIXTURES} (template test://template/{{id}}/data)",
    "resources-subscribe": "subscriptions are not offered (capabilities say subscribe: false)",
    "resources-unsubscribe": "subscriptions are not offered (capabilities say subscribe: false)",
    "prompts-get-simple": f"{REFERENCE_FIXTURES} (prompt test_simple_prompt)",
    "prompts-get-with-args": f"{REFERENCE_FIXTURES} (prompt test_prompt_with_arguments)",
    "prompts-get-embedded-resource": f"{REFERENCE_FIXTURES} (prompt test_prompt_with_embedded_resource)",
    "prompts-get-with-image": f"{REFERENCE_FIXTURES} (prompt test_prompt_with_image)",
}


@pytest.fixture(scope="module")
def suite() -> Path:
    """The suite's CLI, installed from the lock file when missing (a failed install fails the test)."""
    if not (BIN / "conformance").exists():
        npm = shutil.which("npm")
        assert npm is not None, "npm is needed to install the MCP conformance suite (.ci/run installs it)"
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=SUITE_DIR, capture_output=True, text=True, timeout=600
        )
        assert installed.returncode == 0, installed.stderr[-2000:]
    return BIN / "conformance"


def scenario_results(out_dir: Path, scenarios: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Checks per scenario, from the ``server-<scenario>-<time>/checks.json`` files the CLI writes."""
    results: dict[str, list[dict[str, Any]]] = {}
    for checks in out_dir.glob("server-*/checks.json"):
        folder = checks.parent.name.removeprefix("server-")
        name = max((s for s in scenarios if folder.startswith(s + "-")), key=len, default=folder)
        results[name] = json.loads(checks.read_text())
    return results


def test_every_conformance_scenario_that_applies_passes(
    services: Services, keys: Keys, suite: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "results"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    with running_http_server(services, inject_key=keys.acme_engineer) as server:
        completed = subprocess.run(
            [str(suite), "server", "--url", server.mcp_url, "-o", str(out_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=SUITE_SECONDS,
        )
    known = set(APPLIES) | set(DOES_NOT_APPLY)
    results = scenario_results(out_dir, known)
    assert results, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert set(results) <= known, f"scenarios to sort into APPLIES or DOES_NOT_APPLY: {set(results) - known}"
    assert set(results) >= APPLIES, f"scenarios that did not run: {APPLIES - set(results)}"
    failed = {
        name: [c.get("errorMessage") for c in checks if c.get("status") == "FAILURE"]
        for name, checks in results.items()
        if name in APPLIES
    }
    assert {name: errors for name, errors in failed.items() if errors} == {}
