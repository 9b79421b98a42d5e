"""Load on the REST API: 50 concurrent clients against a real ``tsunami serve`` on loopback.

Prepares a data folder (a tenant, a few datasets, one API key per API-key client and one user per
token client), starts ``tsunami serve`` on it, logs the token clients in, measures each request
kind alone (one client, sequential: the baseline), then runs the clients for ``--seconds`` mixing
``GET /datasets``, ``GET /tables/bronze/<name>`` and a small ``POST /query``. Prints p50/p99 per
kind under load, the ratio to the unloaded p50, errors, throughput and the machine's load average.

Targets: p99 < 150 ms for the metadata requests, < 300 ms for small queries, 0 errors.

The four query texts repeat (as a dashboard's would), so most queries are answered from the result
cache; ``--no-result-cache`` starts the server with it off, so every query runs.

``--observability`` runs the load twice in the same run on two fresh servers: first with metrics off
and readable logs at WARNING (the baseline), then with metrics on, JSON logs at INFO (one request line
per call) and ``/metrics`` scraped every second; it prints the throughput ratio (target: >= 0.90).

Usage: ``python benchmarks/api_load.py [--clients 50] [--seconds 30] [--no-result-cache] [--observability]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httptools
import httpx
import psutil

from servicetsunami.services.container import Services
from servicetsunami.services.identity import tenants, users
from servicetsunami.services.ingestion.uploads import upload_file
from servicetsunami.settings import Settings

T = TypeVar("T")
DATASETS = ("sales", "orders", "customers", "events")
TARGET_P99_MS = {"list_datasets": 150.0, "describe_table": 150.0, "query": 300.0}
PASSWORD = "benchmark-password"
LAST_ERRORS: list[str] = []  # the errors of the last measured() load
START_SECONDS = 240.0  # a loaded machine takes minutes to start a server


def prepare(home: Path, clients: int) -> list[tuple[str, str]]:
    """The data folder; returns one credential per client: ("key", plaintext) or ("user", email)."""
    settings = Settings(home=home, _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option
    svc = Services.open(settings)
    try:
        users.ensure_tenant(svc, "bench")
        admin = svc.authenticate(
            tenants.create_api_key(svc.store, tenant_slug="bench", name="a", role="admin").plaintext
        )
        rng = random.Random(7)
        for name in DATASETS:
            rows = "\n".join(
                f"{i},{rng.choice(['north', 'south', 'east', 'west'])},{rng.random() * 100:.2f}" for i in range(5000)
            )
            upload_file(
                svc, admin, file_name=f"{name}.csv", dataset_name=name, content=f"id,region,amount\n{rows}\n".encode()
            )
        credentials: list[tuple[str, str]] = []
        for i in range(clients):
            if i % 2 == 0:
                key = tenants.create_api_key(svc.store, tenant_slug="bench", name=f"c{i}", role="analyst")
                credentials.append(("key", key.plaintext))
            else:
                email = f"client{i}@bench.example"
                users.create_user(svc, tenant_slug="bench", email=email, password=PASSWORD, role="analyst")
                credentials.append(("user", email))
        return credentials
    finally:
        svc.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    home: Path, port: int, *, result_cache: bool = True, observed: bool | None = None
) -> subprocess.Popen[bytes]:
    """``observed``: None leaves the defaults; False turns metrics off (logs at WARNING); True turns
    metrics on with JSON logs at INFO, a request line per call."""
    env = {**os.environ, "TSUNAMI_HOME": str(home), "TSUNAMI_PORT": str(port), "TSUNAMI_LOG_LEVEL": "WARNING"}
    if not result_cache:
        env["TSUNAMI_QUERY__RESULT_CACHE_MB"] = "0"
    if observed is not None:  # both sides: throughput, not the per-principal query limit
        env["TSUNAMI_API__QUERY_RATE_LIMIT"] = "1000000/minute"
    if observed is False:
        env["TSUNAMI_METRICS__ENABLED"] = "false"
    elif observed:
        env.update({"TSUNAMI_METRICS__ENABLED": "true", "TSUNAMI_LOG_FORMAT": "json", "TSUNAMI_LOG_LEVEL": "INFO"})
    tsunami = Path(sys.executable).parent / "tsunami"
    server = subprocess.Popen([str(tsunami), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.kill()
    raise SystemExit(f"tsunami serve did not start within {START_SECONDS:.0f} s")


class Connection:
    """One keep-alive HTTP/1.1 connection of one client: requests written by hand, responses
    parsed by httptools (the server's own parser). Far cheaper per request than an httpx client,
    so the load generator takes less of the machine from the server it measures."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.headers = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\nConnection: keep-alive\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: dict[str, object] | None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        payload = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\n{self.headers}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + payload)
        done = asyncio.Event()
        chunks: list[bytes] = []
        keep_alive = [True]

        class Sink:
            def on_headers_complete(self) -> None:
                # Asked here: once the message is complete the parser has reset and always says no.
                keep_alive[0] = parser.should_keep_alive()

            def on_body(self, data: bytes) -> None:
                chunks.append(data)

            def on_message_complete(self) -> None:
                done.set()

        parser = httptools.HttpResponseParser(Sink())
        try:
            while not done.is_set():
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("the server closed the connection")
                parser.feed_data(data)
            closes = not keep_alive[0]
        except BaseException:
            await self.close()
            raise
        status = int(parser.get_status_code())
        if closes:
            await self.close()
        return status, b"".join(chunks)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def request_for(kind: str, rng: random.Random) -> tuple[str, str, dict[str, object] | None]:
    name = rng.choice(DATASETS)
    if kind == "list_datasets":
        return "GET", "/api/v1/datasets", None
    if kind == "describe_table":
        return "GET", f"/api/v1/tables/bronze/{name}", None
    sql = f"SELECT region, count(*) AS n, round(sum(amount), 2) AS total FROM {name} GROUP BY region ORDER BY region"
    return "POST", "/api/v1/query", {"sql": sql}


async def bearer(http: httpx.AsyncClient, credential: tuple[str, str]) -> str:
    kind, value = credential
    if kind == "key":
        return value
    answer = await http.post("/api/v1/auth/login", json={"email": value, "password": PASSWORD})
    answer.raise_for_status()
    return str(answer.json()["access_token"])


async def baseline(host: str, port: int, token: str, repeat: int) -> dict[str, float]:
    rng = random.Random(1)
    out = {}
    conn = Connection(host, port, token)
    try:
        for kind in TARGET_P99_MS:
            times = []
            for _ in range(repeat):
                method, path, body = request_for(kind, rng)
                started = time.perf_counter()
                status, text = await conn.request(method, path, body)
                if status >= 400:
                    raise SystemExit(f"{kind} alone: {status} {text[:200]!r}")
                times.append((time.perf_counter() - started) * 1000)
            out[kind] = statistics.median(times)
    finally:
        await conn.close()
    return out


async def load(
    host: str, port: int, credentials: list[tuple[str, str]], seconds: float
) -> tuple[dict[str, list[float]], int, list[str]]:
    latencies: dict[str, list[float]] = {kind: [] for kind in TARGET_P99_MS}
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=30) as http:
        tokens = await asyncio.gather(*(bearer(http, c) for c in credentials))
    deadline = time.monotonic() + seconds

    async def client(index: int, token: str) -> None:
        rng = random.Random(index)
        conn = Connection(host, port, token)
        try:
            while time.monotonic() < deadline:
                kind = rng.choice(list(TARGET_P99_MS))
                method, path, body = request_for(kind, rng)
                started = time.perf_counter()
                try:
                    status, text = await asyncio.wait_for(conn.request(method, path, body), timeout=30)
                    if status >= 400:
                        errors.append(f"{kind}: {status} {text[:120]!r}")
                except (OSError, TimeoutError, httptools.HttpParserError) as exc:
                    errors.append(f"{kind}: {type(exc).__name__}")
                    continue
                latencies[kind].append((time.perf_counter() - started) * 1000)
        finally:
            await conn.close()

    started = time.monotonic()
    await asyncio.gather(*(client(i, t) for i, t in enumerate(tokens)))
    elapsed = time.monotonic() - started
    total = sum(len(v) for v in latencies.values())
    return latencies, int(total / elapsed), errors


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """On uvloop where installed (as ``tsunami serve`` is): a cheaper event loop for the clients."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _cpu(process: psutil.Process) -> float:
    """Seconds of CPU used by the process and its children (worker processes) so far."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def scraper(port: int, stop: asyncio.Event) -> int:
    """Scrape /metrics every second until ``stop``, as Prometheus would; returns the scrapes."""
    done = 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        while not stop.is_set():
            answer = await http.get("/metrics")
            if answer.status_code != 200:
                raise SystemExit(f"/metrics answered {answer.status_code}")
            done += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
    return done


async def measured(
    port: int, credentials: list[tuple[str, str]], seconds: float, *, scraped: bool
) -> tuple[int, int, int]:
    """(requests/s, errors, scrapes) of one load, /metrics scraped meanwhile when ``scraped``."""
    stop = asyncio.Event()
    scrapes = asyncio.create_task(scraper(port, stop)) if scraped else None
    _, throughput, errors = await load("127.0.0.1", port, credentials, seconds)
    stop.set()
    LAST_ERRORS[:] = errors
    return throughput, len(errors), (await scrapes) if scrapes is not None else 0


def observability(clients: int, seconds: float) -> None:
    """Throughput with metrics and JSON logs on against off, each on a fresh server and data folder."""
    results: dict[bool, tuple[int, int, int]] = {}
    errors_seen: list[str] = []
    load_before = os.getloadavg()
    for observed in (False, True):
        with tempfile.TemporaryDirectory(prefix="tsunami-api-load-") as folder:
            home = Path(folder) / "home"
            credentials = prepare(home, clients)
            port = free_port()
            server = start_server(home, port, observed=observed)
            try:
                results[observed] = run(measured(port, credentials, seconds, scraped=observed))
                errors_seen.extend(LAST_ERRORS)
            finally:
                server.terminate()
                server.wait(timeout=30)
    load_after = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs, load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)"
    )
    (off, off_errors, _), (on, on_errors, scrapes) = results[False], results[True]
    ratio = on / max(off, 1)
    print(f"metrics off, text logs:               {off} requests/s, {off_errors} errors")
    print(f"metrics on, JSON logs, scraped {scrapes:>3}x: {on} requests/s, {on_errors} errors")
    met = ratio >= 0.90 and not (off_errors or on_errors)
    print(f"throughput ratio on/off: {ratio:.2f} (target >= 0.90) {'ok' if met else 'MISSED'}")
    for line in sorted(set(errors_seen))[:10]:
        print("  error:", line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--no-result-cache",
        action="store_true",
        help="run every query (the four query texts repeat, so by default most are answered from the cache)",
    )
    parser.add_argument(
        "--observability",
        action="store_true",
        help="throughput with metrics and JSON logs on against off, in the same run",
    )
    args = parser.parse_args()
    seconds = min(args.seconds, 30.0)  # bounded, as the issue asks
    if args.observability:
        observability(args.clients, seconds)
        return
    with tempfile.TemporaryDirectory(prefix="tsunami-api-load-") as folder:
        home = Path(folder) / "home"
        print(f"preparing {args.clients} clients (half API keys, half logged-in users) and {len(DATASETS)} datasets")
        credentials = prepare(home, args.clients)
        port = free_port()
        server = start_server(home, port, result_cache=not args.no_result_cache)
        try:
            load_before = os.getloadavg()
            alone = run(baseline("127.0.0.1", port, credentials[0][1], repeat=30))
            server_process = psutil.Process(server.pid)
            server_cpu, client_cpu, wall = _cpu(server_process), time.process_time(), time.monotonic()
            latencies, throughput, errors = run(load("127.0.0.1", port, credentials, seconds))
            server_cpu = (_cpu(server_process) - server_cpu) / (time.monotonic() - wall)
            client_cpu = (time.process_time() - client_cpu) / (time.monotonic() - wall)
            load_after = os.getloadavg()
        finally:
            server.terminate()
            server.wait(timeout=30)
    cpus = os.cpu_count()
    print(f"machine: {cpus} CPUs, load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    cache = "off" if args.no_result_cache else "on"
    print(
        f"{args.clients} clients, {seconds:.0f} s, result cache {cache}: {throughput} requests/s, {len(errors)} errors"
    )
    print(
        f"CPU used (cores): server {server_cpu:.2f} ({server_cpu * 1000 / max(throughput, 1):.1f} ms per request), "
        f"load generator {client_cpu:.2f} (includes logins)"
    )
    print(f"{'request':<16}{'n':>8}{'alone p50':>12}{'p50':>10}{'p99':>10}{'target p99':>12}{'p99/alone':>11}")
    ok = not errors
    for kind, values in latencies.items():
        p50, p99 = percentile(values, 0.50), percentile(values, 0.99)
        met = p99 < TARGET_P99_MS[kind]
        ok = ok and met
        print(
            f"{kind:<16}{len(values):>8}{alone[kind]:>10.1f}ms{p50:>8.1f}ms{p99:>8.1f}ms"
            f"{TARGET_P99_MS[kind]:>10.0f}ms{p99 / alone[kind]:>10.1f}x {'ok' if met else 'MISSED'}"
        )
    for line in sorted(set(errors))[:10]:
        print("  error:", line)
    print("all targets met" if ok else "some targets missed")


if __name__ == "__main__":
    main()
