"""/metrics under `tsunami serve --workers 2`: every scrape, whichever worker answers it, counts the
requests of both workers, and a worker killed and restarted loses none of its counts."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from tests.integration.served import WAIT_SECONDS, Served, serving


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path, ready=lambda server: _both_ready(server.home)) as server:
        yield server


def _both_ready(home: Path) -> bool:
    """Each worker has opened its metrics files (it has imported the app and built it)."""
    return len(list((home / "run" / "metrics").glob("gauge_livesum_*.db"))) >= 2


ROUTE_LINE = 'http_requests_total{method="GET",route="/api/v1/runs/{run_id}",status="404"}'


def counted(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


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
    assert pids == {str(p.pid) for p in served.workers()}  # both workers answered and wrote their counts


def test_a_killed_worker_keeps_its_counts_and_its_live_gauges_are_dropped(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.key}"}
    for index in range(10):
        with httpx.Client(base_url=served.url, headers=headers) as http:
            assert http.get(f"/api/v1/runs/r{index}").status_code == 404
    victim = served.workers()[0]
    os.kill(victim.pid, signal.SIGKILL)
    deadline = time.monotonic() + WAIT_SECONDS
    while victim.pid in {p.pid for p in served.workers()} or len(served.workers()) < 2:
        assert time.monotonic() < deadline, "uvicorn did not replace the killed worker"
        time.sleep(0.2)
    texts = scrapes(served, 6)
    assert {counted(text, ROUTE_LINE) for text in texts} == {10.0}
    live_files = (Path(served.home) / "run" / "metrics").glob(f"gauge_live*_{victim.pid}.db")
    assert list(live_files) == []
