"""What `tsunami` checks when it starts, before it touches any data: misspelt settings, the data
folder, the port, and a terminal to type a password on. Run as a new user would, in subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from servicetsunami.cli import app

TSUNAMI = str(Path(sys.executable).parent / "tsunami")


def clean_environment(**names: str) -> dict[str, str]:
    """The test process's environment without any TSUNAMI_ name, plus ``names``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TSUNAMI_")}
    return {**env, **names}


def test_serve_on_a_busy_port_exits_1_before_it_creates_data_or_prints_a_key(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = clean_environment(TSUNAMI_HOME=str(tmp_path / "home"), TSUNAMI_PORT=str(port))
        done = subprocess.run([TSUNAMI, "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "tsk_" not in done.stdout + done.stderr
    assert not (tmp_path / "home").exists()


def test_users_create_without_a_terminal_is_a_usage_error_pointing_at_password_stdin(tmp_path: Path) -> None:
    env = clean_environment(TSUNAMI_HOME=str(tmp_path / "home"))
    done = subprocess.run(
        [TSUNAMI, "users", "create", "ada@example.com"],
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # no controlling terminal, as under cron, CI or a pipe
    )
    assert done.returncode == 2
    assert "--password-stdin" in done.stderr
    assert "Traceback" not in done.stderr
    assert "Warning" not in done.stderr


@pytest.mark.parametrize("command", [["tenants", "list"], ["users", "create", "ada@example.com"], ["mcp"]])
def test_commands_run_outside_the_data_folder_say_where_they_looked_instead_of_creating_one(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.upper().startswith("TSUNAMI_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TSUNAMI_API_KEY", "tsk_00000000_not-a-key")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, command, input="pw\npw\n")
    assert result.exit_code == 2
    assert "not_found" in result.output
    assert not (tmp_path / ".tsunami").exists()


def test_commands_use_the_data_folder_of_the_current_folder_when_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.upper().startswith("TSUNAMI_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tsunami").mkdir()
    result = CliRunner().invoke(app, ["tenants", "create", "acme"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".tsunami" / "tsunami.db").exists()


def test_a_misspelt_setting_in_the_environment_is_reported_with_the_name_meant(tmp_path: Path) -> None:
    env = clean_environment(TSUNAMI_HOME=str(tmp_path / "home"), TSUNAMI_SERVE__PORT="8101")
    done = subprocess.run(
        [TSUNAMI, "tenants", "list"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "TSUNAMI_SERVE__PORT" in line]
    assert len(warnings) == 1
    assert "TSUNAMI_PORT" in warnings[0]


def test_names_read_outside_the_settings_are_not_reported(tmp_path: Path) -> None:
    env = clean_environment(
        TSUNAMI_HOME=str(tmp_path / "home"),
        TSUNAMI_URL="http://127.0.0.1:8000",
        TSUNAMI_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        TSUNAMI_QUERY__MAX_ROWS="10",
    )
    done = subprocess.run(
        [TSUNAMI, "tenants", "list"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
