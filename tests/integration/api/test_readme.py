"""The README's REST walk-through, run exactly as printed against a real `tsunami serve` subprocess.

The block runs in a clean shell (`bash -euo pipefail`, so any failing step fails the test) whose
environment holds only what the README tells a reader to set, in a folder laid out like the clone
(`.venv`, and the `.tsunami` the server made there). The password is what the reader types; the
output must match the README's expected output line by line.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]
WAIT_SECONDS = 60.0
PASSWORD = "walk through, 'quoted' \"password\" 1"


def readme_block(marker: str, language: str) -> str:
    text = (ROOT / "README.md").read_text("utf-8")
    match = re.search(rf"<!-- {marker}[^>]*-->\s*```{language}\n(.*?)```", text, re.S)
    assert match, f"the README lost its {marker} block"
    return match.group(1)


def line_pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in expected.split("...")))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_health(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        assert server.poll() is None, "tsunami serve stopped during startup"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "tsunami serve did not answer in time"
        time.sleep(0.1)


def test_the_readme_walkthrough_creates_a_user_logs_in_uploads_and_queries_as_printed(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / ".venv").symlink_to(Path(sys.executable).parent.parent)
    port = free_port()
    server_env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TSUNAMI_")}
    server = subprocess.Popen(
        [str(clone / ".venv" / "bin" / "tsunami"), "serve"],
        env={**server_env, "TSUNAMI_PORT": str(port)},
        cwd=clone,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_health(server, port)
        walk = subprocess.run(
            ["bash", "--noprofile", "--norc", "-euo", "pipefail", "-c", readme_block("walkthrough:", "sh")],
            input=PASSWORD + "\n",  # what the reader types at the prompt
            env={
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": str(tmp_path),
                "TSUNAMI_URL": f"http://127.0.0.1:{port}",  # the README asks for it when the port is not 8000
            },
            cwd=clone,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode("utf-8", "replace")
    assert walk.returncode == 0, walk.stderr + walk.stdout + output
    assert walk.stderr == ""
    printed = [line.rstrip() for line in walk.stdout.splitlines()]
    expected = readme_block("walkthrough output", "text").splitlines()
    assert len(printed) == len(expected), walk.stdout
    for line, wanted in zip(printed, expected, strict=True):
        assert line_pattern(wanted.rstrip()).fullmatch(line), (line, wanted)
    assert PASSWORD not in output
