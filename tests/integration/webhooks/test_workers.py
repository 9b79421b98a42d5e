"""`tsunami serve --workers 2`: each run event is posted once, whichever worker ran the run and
whichever worker's ticker found the delivery due."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.integration.api.test_readme import free_port
from tests.integration.webhooks.receiver import Receiver

WAIT_SECONDS = 180.0  # two workers importing everything on a busy machine take a while
KEY = re.compile(r"tsk_[0-9a-f]{8}_[A-Za-z0-9_-]{43,128}")


def test_every_event_is_delivered_once_by_two_workers(tmp_path: Path, hook: Receiver) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TSUNAMI_HOME": str(tmp_path / "home"),
        "TSUNAMI_PORT": str(port),
        "TSUNAMI_WEBHOOKS__POLL_SECONDS": "0.1",
        "TSUNAMI_RUNS__POLL_SECONDS": "0.1",
    }
    process = subprocess.Popen(
        ["tsunami", "serve", "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        key = next((m.group(0) for line in process.stdout if (m := KEY.search(line))), None)
        assert key, "tsunami serve printed no admin key"
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT_SECONDS
        while len(psutil.Process(process.pid).children()) < 2 or not _healthy(url):
            assert process.poll() is None and time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            created = http.post("/api/v1/webhooks", json={"url": hook.url, "events": ["statement.*"]})
            assert created.status_code == 201, created.text
            hook.secret = created.json()["secret"]
        for n in range(8):  # a new connection each time, so both workers take some
            with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
                answer = http.post("/api/v1/statements", json={"statement": f"SELECT {n} AS n", "wait_timeout": "10s"})
                assert answer.status_code == 200, answer.text
        got = hook.wait_for(16, timeout=WAIT_SECONDS)
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            page = http.get(f"/api/v1/webhooks/{created.json()['id']}/deliveries", params={"limit": 100}).json()
        assert len(page["items"]) == 16 and {d["status"] for d in page["items"]} == {"succeeded"}
        assert len(hook.received) == 16 and all(r.verified for r in got)
        assert len({r.headers["webhook-id"] for r in hook.received}) == 16
        types = sorted(r.json["type"] for r in hook.received)
        assert types == ["statement.started"] * 8 + ["statement.succeeded"] * 8
    finally:
        process.terminate()
        process.communicate(timeout=30)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
