"""Stopping `tsunami serve` stops the statements its workers are running: no worker outlives it."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

from tests.integration.api.test_readme import free_port
from tests.integration.api.test_workers import KEY, WAIT_SECONDS, _healthy

FOREVER = "SELECT count(*) AS n FROM range(1000000000) a, range(1000000000) b"
SHUTDOWN_SECONDS = 1


def test_sigterm_stops_a_workers_runaway_statement_and_every_worker_exits(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TSUNAMI_HOME": str(tmp_path / "home"),
        "TSUNAMI_PORT": str(port),
        "TSUNAMI_QUERY__TIMEOUT_SECONDS": "3600",  # only the shutdown may stop it
        "TSUNAMI_SERVE__SHUTDOWN_SECONDS": str(SHUTDOWN_SECONDS),
    }
    process = subprocess.Popen(
        ["tsunami", "serve", "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    workers: list[psutil.Process] = []
    try:
        key = _admin_key(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT_SECONDS
        while len(psutil.Process(process.pid).children()) < 2 or not _healthy(url):
            assert process.poll() is None, "tsunami serve stopped during startup"
            assert time.monotonic() < deadline, "the workers did not answer in time"
            time.sleep(0.1)
        workers = [p for p in psutil.Process(process.pid).children() if "spawn_main" in " ".join(p.cmdline())]
        busy = {w.pid: w.cpu_times().user for w in workers}

        def ask() -> None:
            with contextlib.suppress(httpx.TransportError):  # the server went away: expected
                headers = {"Authorization": f"Bearer {key}"}
                httpx.post(f"{url}/api/v1/query", json={"sql": FOREVER}, headers=headers, timeout=120)

        threading.Thread(target=ask, daemon=True).start()
        deadline = time.monotonic() + WAIT_SECONDS
        while not any(w.cpu_times().user - busy[w.pid] > 1.0 for w in workers):  # the statement is running
            assert time.monotonic() < deadline, "the statement never started"
            time.sleep(0.1)

        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=SHUTDOWN_SECONDS + 30)
        _, alive = psutil.wait_procs(workers, timeout=5)
        assert alive == []
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):  # only on failure: none of them should still be there
            workers += psutil.Process(process.pid).children(recursive=True)
        for worker in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.kill()
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def _admin_key(process: subprocess.Popen[str]) -> str:
    """The admin key ``tsunami serve`` prints on its first start, read with a deadline: a server that
    prints none (or whose workers keep the pipe open after it died) fails the test instead of hanging it."""
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
