"""The README's REST walk-through, run as written against a real `tsunami serve` subprocess."""

from __future__ import annotations

import json
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


def readme_walkthrough() -> str:
    text = (ROOT / "README.md").read_text("utf-8")
    match = re.search(r"<!-- walkthrough:[^>]*-->\s*```sh\n(.*?)```", text, re.S)
    assert match, "the README lost its walk-through block"
    return match.group(1)


def readme_first_user_command() -> str:
    text = (ROOT / "README.md").read_text("utf-8")
    match = re.search(r"^tsunami users create \S+ --platform-admin$", text, re.M)
    assert match, "the README lost its `tsunami users create` line"
    return match.group(0)


def json_documents(text: str) -> list[dict[str, object]]:
    decoder, out, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        document, at = decoder.raw_decode(text, at)
        out.append(document)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_readme_walkthrough_logs_in_uploads_and_queries(tmp_path: Path) -> None:
    port = free_port()
    password = "walkthrough-password-1"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TSUNAMI_HOME": str(tmp_path / "home"),
        "TSUNAMI_PORT": str(port),
        "TSUNAMI_URL": f"http://127.0.0.1:{port}",
        "PASSWORD": password,
    }
    made = subprocess.run(
        ["bash", "-c", readme_first_user_command() + " --password-stdin"],
        input=password + "\n",
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    server = subprocess.Popen(
        ["tsunami", "serve"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            assert server.poll() is None, "tsunami serve stopped during startup"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "tsunami serve did not answer in time"
            time.sleep(0.1)
        walk = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", readme_walkthrough()],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode("utf-8", "replace")
    assert walk.returncode == 0, walk.stderr + walk.stdout + output
    uploaded, queried = json_documents(walk.stdout)[-2:]  # curl prints no newline between them
    assert uploaded["rows"] == 3
    assert queried["rows"] == [["north", 17.5], ["south", 3.25]]
    assert password not in output
