"""What does a query cost over MCP's HTTP door, against the same query over REST, on one server?

Serves the real app (``create_app``) with uvicorn on a loopback port, then sends the same trivial
query (``SELECT 1``) sequentially, on one keep-alive connection each:

- REST ``POST /api/v1/query`` (the baseline);
- MCP ``tools/call query_sql`` without a session (the stateless path every client takes);
- MCP ``tools/call query_sql`` in a session of a client that declares sampling (the back-channel
  path: a connection built from the session's record, answers looked for while a request waits).

Prints the median latency of each and the ratios to the baseline, and session to no session.

The three kinds are sent in turns, so that a busy moment of the machine falls on each alike.

Usage: ``python benchmarks/mcp_http.py [--requests 300]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ACCEPT = "application/json, text/event-stream"


def serve(settings: Any) -> tuple[uvicorn.Server, str]:
    from servicetsunami.api.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not start")
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def timed(n: int, sends: dict[str, Any]) -> dict[str, list[float]]:
    """Milliseconds of each request kind, taken in turns so that a busy moment of the machine falls
    on every kind alike."""
    out: dict[str, list[float]] = {name: [] for name in sends}
    for send in sends.values():
        send()  # warm up
    for _ in range(n):
        for name, send in sends.items():
            started = time.perf_counter()
            send()
            out[name].append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp()) / "home"
    os.environ["TSUNAMI_API__QUERY_RATE_LIMIT"] = "1000000/minute"  # measure the door, not the limiter

    from servicetsunami.services.container import Services
    from servicetsunami.services.identity import tenants
    from servicetsunami.settings import Settings

    settings = Settings(home=home, _env_file=None)  # type: ignore[call-arg]
    svc = Services.open(settings)
    try:
        tenants.create_tenant(svc.store, "bench")
        key = tenants.create_api_key(svc.store, tenant_slug="bench", name="bench", role="engineer").plaintext
        svc.engine.ensure_catalog(settings.catalog_prefix + "bench")
    finally:
        svc.close()
    server, url = serve(settings)
    auth = {"Authorization": f"Bearer {key}"}
    arguments = {"name": "query_sql", "arguments": {"sql": "SELECT 1"}}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": arguments}
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=30) as http:
            mcp_headers = {"Accept": ACCEPT, "MCP-Protocol-Version": "2025-06-18"}
            init = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {"sampling": {}},
                    "clientInfo": {"name": "bench", "version": "0"},
                },
            }
            session = http.post("/mcp", json=init, headers={"Accept": ACCEPT}).headers["mcp-session-id"]
            in_session = {**mcp_headers, "Mcp-Session-Id": session}
            figures = timed(
                args.requests,
                {
                    "REST /api/v1/query": lambda: http.post(
                        "/api/v1/query", json={"sql": "SELECT 1"}
                    ).raise_for_status(),
                    "MCP, no session": lambda: http.post("/mcp", json=call, headers=mcp_headers).raise_for_status(),
                    "MCP, sampling session": lambda: http.post(
                        "/mcp", json=call, headers=in_session
                    ).raise_for_status(),
                },
            )
    finally:
        server.should_exit = True
    medians = {name: statistics.median(values) for name, values in figures.items()}
    base = medians["REST /api/v1/query"]
    for name, p50 in medians.items():
        print(f"{name:24s} p50 {p50:7.2f} ms   ratio to REST {p50 / base:5.2f}")
    print(f"session / no session: {medians['MCP, sampling session'] / medians['MCP, no session']:.2f}")


if __name__ == "__main__":
    main()
