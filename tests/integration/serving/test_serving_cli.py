"""``tsunami agents create|list|deploy|invoke`` against the scripted model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from servicetsunami.cli import app
from tests.fakes.llm import FakeLLM, Scripted
from tests.integration.serving.conftest import KEY

KEY_RE = re.compile(r"tsk_[0-9a-f]{8}_[A-Za-z0-9_\-]+")


def test_an_agent_is_created_deployed_and_invoked_from_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, llm: FakeLLM
) -> None:
    monkeypatch.setenv("TSUNAMI_HOME", str(tmp_path / "cli-home"))
    for name, value in {
        "TSUNAMI_AI__PROVIDER": "openai",
        "TSUNAMI_AI__MODEL": "fake-model",
        "TSUNAMI_AI__API_KEY": KEY,
        "TSUNAMI_AI__BASE_URL": llm.base_url("openai"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TSUNAMI_API_KEY", raising=False)
    runner = CliRunner()

    def run(*args: str, key: str | None = None, code: int = 0) -> str:
        result = runner.invoke(app, list(args), env={"TSUNAMI_API_KEY": key} if key else {})
        assert result.exit_code == code, result.output
        return result.output

    made = run("tenants", "create", "acme")
    match = KEY_RE.search(made)
    assert match is not None
    key = match.group(0)
    assert json.loads(run("agents", "create", "sales", "--tool", "query_sql", key=key))["tools"] == ["query_sql"]
    assert json.loads(run("agents", "deploy", "sales", "--endpoint", "sales-ep", key=key))["state"] == "READY"
    assert "sales-ep (READY)" in run("agents", "list", key=key)
    llm.script = [Scripted(text="Forty-two.")]
    assert run("agents", "invoke", "sales-ep", "How many?", key=key).strip() == "Forty-two."
    llm.script = [Scripted(text="x")]
    answer = json.loads(run("agents", "invoke", "sales-ep", "--json", '{"instances": ["q"]}', key=key))
    assert answer == {"predictions": ["x"]}
    run("agents", "invoke", "sales-ep", key=key, code=2)
    monkeypatch.setenv("TSUNAMI_AI__PROVIDER", "none")
    run("agents", "deploy", "sales", "--endpoint", "broken", key=key, code=1)
