"""`tsunami serve --workers N` as a subprocess, for the tests that need real worker processes: a fresh
home and a free port, the first start's admin key read with a deadline, a wait (with a deadline) until
every worker is up and the server answers, and on the way out the server stopped and, if it does not
stop, every process it started killed. A server that prints no key, or whose workers keep its output
open after it died, fails the test instead of hanging the suite."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from tests.integration.api.test_readme import free_port

KEY = re.compile(r"tsk_[0-9a-f]{8}_[A-Za-z0-9_-]{43,128}")
WAIT_SECONDS = 240.0  # a deadline: two workers importing the whole service on a busy machine take a while
STOP_SECONDS = 60.0


@dataclass
class Served:
    url: str
    key: str
    process: subprocess.Popen[str]
    home: Path

    def workers(self) -> list[psutil.Process]:
        """The worker processes uvicorn started (not the service's own helpers)."""
        found = []
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.process.pid).children():
                with contextlib.suppress(psutil.NoSuchProcess):  # a worker killed by a test is gone or a zombie
                    if "spawn_main" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                        found.append(child)
        return found


@contextlib.contextmanager
def serving(
    tmp_path: Path,
    *,
    workers: int = 2,
    env: dict[str, str] | None = None,
    ready: Callable[[Served], bool] = lambda served: True,
) -> Iterator[Served]:
    """``tsunami serve --workers N`` on a fresh home under ``tmp_path``, with ``env`` added; yields once
    each worker is up, the server answers ``/health`` and ``ready(served)`` holds."""
    port = free_port()
    home = tmp_path / "home"
    full_env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TSUNAMI_HOME": str(home),
        "TSUNAMI_PORT": str(port),
        **(env or {}),
    }
    process = subprocess.Popen(
        ["tsunami", "serve", "--workers", str(workers)],
        env=full_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        served = Served(f"http://127.0.0.1:{port}", admin_key(process), process, home)
        deadline = time.monotonic() + WAIT_SECONDS
        expected = workers if workers > 1 else 0  # one worker is the server process itself
        while len(served.workers()) < expected or not healthy(served.url) or not ready(served):
            assert process.poll() is None, "tsunami serve stopped during startup"
            assert time.monotonic() < deadline, "the workers did not answer in time"
            time.sleep(0.1)
        yield served
    finally:
        stop(process)


def admin_key(process: subprocess.Popen[str]) -> str:
    """The admin key ``tsunami serve`` prints on its first start, read with a deadline."""
    found: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if match := KEY.search(line):
                found.put(match.group(0))
                return
        found.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        key = found.get(timeout=WAIT_SECONDS)
    except queue.Empty:
        key = None
    assert key, "tsunami serve printed no admin key in time"
    return key


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM, then, past the deadline, SIGKILL to the server and everything it started."""
    children: list[psutil.Process] = []
    with contextlib.suppress(psutil.NoSuchProcess):
        children = psutil.Process(process.pid).children(recursive=True)
    if process.poll() is None:
        process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.communicate(timeout=STOP_SECONDS)
    for child in children:  # a clean stop leaves none; after a failure, none may outlive the test
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=STOP_SECONDS)
