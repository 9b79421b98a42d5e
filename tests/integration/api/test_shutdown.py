"""Stopping `tsunami serve` stops the statements its workers are running: no worker outlives it."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path

import httpx
import psutil

from tests.integration.served import WAIT_SECONDS, serving

FOREVER = "SELECT count(*) AS n FROM range(1000000000) a, range(1000000000) b"
SHUTDOWN_SECONDS = 1


def test_sigterm_stops_a_workers_runaway_statement_and_every_worker_exits(tmp_path: Path) -> None:
    env = {
        "TSUNAMI_QUERY__TIMEOUT_SECONDS": "3600",  # only the shutdown may stop it
        "TSUNAMI_SERVE__SHUTDOWN_SECONDS": str(SHUTDOWN_SECONDS),
    }
    with serving(tmp_path, env=env) as served:
        workers = served.workers()
        busy = {w.pid: w.cpu_times().user for w in workers}

        def ask() -> None:
            with contextlib.suppress(httpx.TransportError):  # the server went away: expected
                headers = {"Authorization": f"Bearer {served.key}"}
                httpx.post(f"{served.url}/api/v1/query", json={"sql": FOREVER}, headers=headers, timeout=120)

        threading.Thread(target=ask, daemon=True).start()
        deadline = time.monotonic() + WAIT_SECONDS
        while not any(w.cpu_times().user - busy[w.pid] > 1.0 for w in workers):  # the statement is running
            assert time.monotonic() < deadline, "the statement never started"
            time.sleep(0.1)

        served.process.send_signal(signal.SIGTERM)
        served.process.communicate(timeout=SHUTDOWN_SECONDS + 30)
        _, alive = psutil.wait_procs(workers, timeout=5)
        assert alive == []
