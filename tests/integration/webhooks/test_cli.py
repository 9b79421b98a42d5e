"""`tsunami webhooks` as the admin key in the environment: create (the secret printed once), list,
test (a signed ping), deliveries, delete."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from servicetsunami.cli import app
from tests.integration.webhooks.receiver import Receiver

KEY_RE = re.compile(r"tsk_[0-9a-f]{8}_[A-Za-z0-9_\-]+")


def test_a_webhook_is_created_tested_and_deleted_from_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: Receiver
) -> None:
    monkeypatch.setenv("TSUNAMI_HOME", str(tmp_path / "home"))
    for name in ("TSUNAMI_API_KEY", "TSUNAMI_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def run(*args: str, key: str = "", code: int = 0) -> str:
        result = runner.invoke(app, list(args), env={"TSUNAMI_API_KEY": key} if key else {})
        assert result.exit_code == code, result.output
        return result.output

    found = KEY_RE.search(run("tenants", "create", "acme"))
    assert found is not None
    key = found.group(0)
    created = run("webhooks", "create", hook.url, "--events", "job_run.failed,sync.*", key=key)
    hook.secret = created.strip().splitlines()[-1]
    listed = json.loads(run("webhooks", "list", "--json", key=key))
    assert [w["events"] for w in listed] == [["job_run.failed", "sync.*"]]
    assert hook.secret not in json.dumps(listed)
    webhook_id = listed[0]["id"]
    tested = json.loads(run("webhooks", "test", webhook_id, key=key))
    assert tested["status"] == "succeeded" and hook.received[-1].verified
    deliveries = json.loads(run("webhooks", "deliveries", webhook_id, "--json", key=key))
    assert [d["id"] for d in deliveries] == [tested["id"]]
    run("webhooks", "delete", webhook_id, key=key)
    assert json.loads(run("webhooks", "list", "--json", key=key)) == []
    run("webhooks", "test", webhook_id, key=key, code=2)  # not_found, as every CLI error
