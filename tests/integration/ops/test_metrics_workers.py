"""/metrics under `tsunami serve --workers 2`: every scrape, whichever worker answers it, counts the
requests of both workers, and a worker killed and restarted loses none of its counts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from tests.integration.api.test_readme import free_port
from tests.integration.api.test_workers import KEY

# Two workers importing the whole service on a busy machine take a while to answer.
WAIT_SECONDS = 240.0


class Served:
    def __init__(self, url: str, key: str, process: subprocess.Popen[str], home: Path) -> None:
        self.url, self.key, self.process, self.home = url, key, process, home


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    home = tmp_path / "home"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TSUNAMI_HOME": str(home),
        "TSUNAMI_PORT": str(port),
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
        key = None
        for line in process.stdout:
            found = KEY.search(line)
            if found:
                key = found.group(0)
                break
        assert key, "tsunami serve printed no admin key"
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT_SECONDS
        served = Served(url, key, process, home)
        while len(workers(served)) < 2 or not _both_ready(home) or not _healthy(url):
            assert process.poll() is None, "tsunami serve stopped during startup"
            assert time.monotonic() < deadline, "the workers did not answer in time"
            time.sleep(0.2)
        yield served
    finally:
        process.terminate()
        process.communicate(timeout=60)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _both_ready(home: Path) -> bool:
    """Each worker has opened its metrics files (it has imported the app and built it)."""
    return len(list((home / "run" / "metrics").glob("gauge_livesum_*.db"))) >= 2


ROUTE_LINE = 'http_requests_total{method="GET",route="/api/v1/runs/{run_id}",status="404"}'


def counted(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def workers(served: Served) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(served.process.pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except (psutil.NoSuchProcess, psutil.ZombieProcess, FileNotFoundError):
            continue  # a short-lived child, gone while we looked
    return found


def scrapes(served: Served, times: int) -> list[str]:
    texts = []
    for _ in range(times):  # a new connection each time, so both workers answer some
        with httpx.Client(base_url=served.url) as http:
            answer = http.get("/metrics")
            assert answer.status_code == 200
            texts.append(answer.text)
    return texts


def test_every_scrape_counts_the_requests_of_both_workers(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.key}"}
    for index in range(20):
        with httpx.Client(base_url=served.url, headers=headers) as http:
            assert http.get(f"/api/v1/runs/r{index}").status_code == 404

    async def tool_calls() -> None:
        for _ in range(4):
            async with Client(StreamableHttpTransport(f"{served.url}/mcp", auth=served.key)) as client:
                await client.call_tool("list_tables", {})

    asyncio.run(tool_calls())
    texts = scrapes(served, 8)
    assert {counted(text, ROUTE_LINE) for text in texts} == {20.0}
    assert {counted(text, 'mcp_requests_total{operation="list_tables",status="ok"}') for text in texts} == {4.0}
    metrics_folder = Path(served.home) / "run" / "metrics"
    pids = {path.stem.rsplit("_", 1)[-1] for path in metrics_folder.glob("counter_*.db")}
    assert pids == {str(p.pid) for p in workers(served)}  # both workers answered and wrote their counts


def test_a_killed_worker_keeps_its_counts_and_its_live_gauges_are_dropped(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.key}"}
    for index in range(10):
        with httpx.Client(base_url=served.url, headers=headers) as http:
            assert http.get(f"/api/v1/runs/r{index}").status_code == 404
    victim = workers(served)[0]
    os.kill(victim.pid, signal.SIGKILL)
    deadline = time.monotonic() + WAIT_SECONDS
    while victim.pid in {p.pid for p in workers(served)} or len(workers(served)) < 2:
        assert time.monotonic() < deadline, "uvicorn did not replace the killed worker"
        time.sleep(0.2)
    texts = scrapes(served, 6)
    assert {counted(text, ROUTE_LINE) for text in texts} == {10.0}
    live_files = (Path(served.home) / "run" / "metrics").glob(f"gauge_live*_{victim.pid}.db")
    assert list(live_files) == []
