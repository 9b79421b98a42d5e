"""Soak: ``tsunami serve --workers 2`` for a while under a bounded mix from two tenants on loopback.

The mix (each client a thread in a loop, two clients per tenant): good uploads, bad uploads (a
JSON that crashes DuckDB's reader, one that keeps it busy until the parse wall clock, a CSV
100,000 columns wide, an .xlsx zip bomb, a ragged CSV), queries, runaway queries (stopped by the
query timeout), syncs of a PostgreSQL table (``TSUNAMI_TEST_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``), silver transforms and gold tables. The structural
JSON depth limit is raised for the run so the crashing file reaches the reader process: what is
soaked is the bounded parse, not only the check before it.

Reported: outcomes by operation and kind (the expected ones and the errors), p99 latency per
operation in the first and last window, RSS of each worker over time, worker restarts. Checks: no
worker restart, worker RSS growth < 20% at rest (the clients held and no request in flight) from the
end of warm-up to the end of the run, every runaway (query or parse) answered within its timeout + 2 s.
Exit status 1 when a check fails. Under load, RSS moves with the runaway statements in flight (each
may take up to ``query.memory_limit`` for its few seconds), so the medians under load are reported but
what a leak would leave is read at rest.

Usage: ``python benchmarks/soak.py [--minutes 15] [--clients-per-tenant 2] [--without runaway_query ...]``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import psycopg

QUERY_TIMEOUT = 3.0
PARSE_TIMEOUT = 10.0
FOREVER = "SELECT count(*) AS n FROM range(1000000000) a, range(1000000000) b"
PG_URL = os.environ.get("TSUNAMI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test").replace(
    "postgresql+psycopg://", "postgresql://"
)
# operation -> weight in the mix
MIX = {
    "upload": 20,
    "bad_upload": 10,
    "query": 40,
    "runaway_query": 4,
    "sync": 6,
    "silver": 12,
    "gold": 8,
}
# what each operation is expected to answer: status and code
EXPECTED = {
    "upload": {(201, None)},
    "bad_upload:crash.json": {(422, "bad_file")},
    "bad_upload:busy.json": {(413, "file_limit_exceeded")},
    "bad_upload:wide.csv": {(413, "file_limit_exceeded")},
    "bad_upload:bomb.xlsx": {(413, "file_limit_exceeded")},
    "bad_upload:ragged.csv": {(422, "bad_file")},
    "query": {(200, None)},
    "runaway_query": {(408, "query_timeout")},
    "sync": {(202, None)},
    "silver": {(200, None)},
    "gold": {(200, None)},
}
RUNAWAY_LIMITS = {"runaway_query": QUERY_TIMEOUT, "bad_upload:busy.json": PARSE_TIMEOUT}


def bad_files() -> dict[str, bytes]:
    row = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>'
    block = row * (1024 * 1024 // len(row))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", b'<?xml version="1.0"?><Types/>')
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(b"<worksheet><sheetData>")
            for _ in range(256):
                sheet.write(block)
            sheet.write(b"</sheetData></worksheet>")
    return {
        "crash.json": b"[" * 100_000 + b"]" * 100_000,
        "busy.json": b'{"a":' * 5000 + b"1" + b"}" * 5000,
        "wide.csv": b",".join(b"c%d" % i for i in range(100_000)) + b"\n" + b",".join(b"1" for _ in range(100_000)),
        "bomb.xlsx": buf.getvalue(),
        "ragged.csv": b"a,b\n1,2,3\n4\n",
    }


def good_csv(rng: random.Random, rows: int = 2000) -> bytes:
    lines = [f"{i},{rng.choice(['north', 'south', 'east', 'west'])},{rng.random() * 100:.2f}" for i in range(rows)]
    return ("id,region,amount\n" + "\n".join(lines) + "\n").encode()


@dataclass
class Sample:
    at: float
    op: str
    status: int
    code: str | None
    seconds: float
    detail: str = ""


@dataclass
class Tenant:
    slug: str
    key: str
    source_id: str = ""


class Gate:
    """Lets the clients through, or holds them (before their next request) while the monitor takes a
    reading at rest; counts the requests in flight."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Condition()
        self._in_flight = 0

    def enter(self) -> None:
        self._open.wait()
        with self._lock:
            self._in_flight += 1

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._lock.notify_all()

    def hold(self, deadline: float) -> bool:
        """Closes the gate and waits (until ``deadline``) for the requests in flight to end."""
        self._open.clear()
        with self._lock:
            return self._lock.wait_for(lambda: self._in_flight == 0, timeout=max(0.0, deadline - time.monotonic()))

    def release(self) -> None:
        self._open.set()


def at_rest(server_pid: int, settle: float = 3.0, samples: int = 5) -> dict[int, float]:
    """RSS (MB) of each worker with no request in flight: the median of a few readings after
    ``settle`` seconds, so that what a finished statement freed is given back first."""
    time.sleep(settle)
    readings: dict[int, list[float]] = collections.defaultdict(list)
    for _ in range(samples):
        for worker in workers(server_pid):
            with contextlib.suppress(psutil.Error):
                readings[worker.pid].append(worker.memory_info().rss / 1024**2)
        time.sleep(0.5)
    return {pid: statistics.median(values) for pid, values in readings.items()}


@dataclass
class Results:
    samples: list[Sample] = field(default_factory=list)
    rss: dict[int, list[tuple[float, float]]] = field(default_factory=lambda: collections.defaultdict(list))
    workers_seen: set[int] = field(default_factory=set)
    rest: list[dict[int, float]] = field(default_factory=list)  # RSS at rest: after warm-up, at the end
    lock: threading.Lock = field(default_factory=threading.Lock)
    gate: Gate = field(default_factory=Gate)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_postgres(schema: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
        con.execute(
            f"CREATE TABLE {schema}.orders AS SELECT i AS id, (ARRAY['north','south','east','west'])[1 + i % 4] "
            "AS region, (i % 1000) / 10.0 AS amount, now() AS updated_at FROM generate_series(1, 20000) i"
        )
        con.execute(f"ALTER TABLE {schema}.orders ADD PRIMARY KEY (id)")


def drop_postgres(schema: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def prepare_home(home: Path) -> list[Tenant]:
    from servicetsunami.services.container import Services
    from servicetsunami.services.identity import tenants, users
    from servicetsunami.settings import Settings

    svc = Services.open(Settings(home=home, _env_file=None))  # type: ignore[call-arg]  # pydantic-settings option
    try:
        out = []
        for slug in ("alpha", "beta"):
            users.ensure_tenant(svc, slug)
            out.append(
                Tenant(slug, tenants.create_api_key(svc.store, tenant_slug=slug, name="soak", role="admin").plaintext)
            )
        return out
    finally:
        svc.close()


def start_server(home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TSUNAMI_HOME": str(home),
        "TSUNAMI_PORT": str(port),
        "TSUNAMI_LOG_LEVEL": "WARNING",
        "TSUNAMI_QUERY__TIMEOUT_SECONDS": str(QUERY_TIMEOUT),
        "TSUNAMI_INGEST__PARSE_TIMEOUT_SECONDS": str(PARSE_TIMEOUT),
        "TSUNAMI_INGEST__PARSE_MEMORY_BYTES": str(1536 * 1024**2),
        "TSUNAMI_INGEST__MAX_JSON_DEPTH": "1000000",  # let the crashing JSON reach the reader process
        "TSUNAMI_API__QUERY_RATE_LIMIT": "100000/minute",  # the soak is about staying up, not the allowance
    }
    tsunami = Path(sys.executable).parent / "tsunami"
    with open(log, "wb") as out:
        server = subprocess.Popen([str(tsunami), "serve", "--workers", "2"], env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if len(workers(server.pid)) >= 2 and httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).is_success:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"tsunami serve exited during start-up; see {log}")
        time.sleep(0.2)
    server.kill()
    raise SystemExit("tsunami serve did not start within 180 s")


def workers(server_pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(server_pid).children()
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def monitor(server_pid: int, results: Results, stop: threading.Event, every: float = 2.0) -> None:
    start = time.monotonic()
    while not stop.is_set():
        for worker in workers(server_pid):
            try:
                rss = worker.memory_info().rss / 1024**2
            except psutil.Error:
                continue
            with results.lock:
                results.workers_seen.add(worker.pid)
                results.rss[worker.pid].append((time.monotonic() - start, rss))
        stop.wait(every)


def client(
    index: int, url: str, tenant: Tenant, files: dict[str, bytes], results: Results, start: float, end: float
) -> None:
    rng = random.Random(index)
    dataset = f"orders_c{index}"
    headers = {"Authorization": f"Bearer {tenant.key}"}
    ops, weights = zip(*MIX.items(), strict=True)
    # A new connection per request, as many separate callers make: the kernel spreads connections
    # over the workers as they are accepted, so a kept-alive one would pin a client to one worker.
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=url, headers=headers, timeout=120, limits=fresh) as http:
        upload(http, dataset, good_csv(rng), "orders.csv")  # each client's table exists before the mix
        http.post("/api/v1/silver", json={"bronze_table": f"bronze.{dataset}"})
        while time.monotonic() < end:
            op = rng.choices(ops, weights)[0]
            name = op
            results.gate.enter()
            began = time.monotonic()
            try:
                if op == "upload":
                    answer = upload(http, dataset, good_csv(rng), "orders.csv")
                elif op == "bad_upload":
                    file_name = rng.choice(sorted(files))
                    name = f"bad_upload:{file_name}"
                    answer = upload(http, f"bad_c{index}", files[file_name], file_name)
                elif op == "query":
                    sql = f"SELECT region, count(*) AS n, sum(amount) AS total FROM bronze.{dataset} GROUP BY 1"
                    answer = http.post("/api/v1/query", json={"sql": sql})
                elif op == "runaway_query":
                    answer = http.post("/api/v1/query", json={"sql": FOREVER})
                elif op == "sync":
                    answer = http.post(
                        f"/api/v1/data-sources/{tenant.source_id}/syncs",
                        json={"table_name": f"{SCHEMA}.orders", "target_table": f"pg_c{index}", "wait_seconds": 30},
                    )
                    if answer.status_code == 202 and answer.json().get("status") != "succeeded":
                        answer = httpx.Response(599, json={"code": f"sync_{answer.json().get('status')}"})
                elif op == "silver":
                    answer = http.post("/api/v1/silver", json={"bronze_table": f"bronze.{dataset}"})
                else:
                    sql = f"SELECT region, sum(amount) AS total FROM silver.{dataset} GROUP BY region"
                    answer = http.post("/api/v1/gold", json={"name": f"summary_c{index}", "sql": sql})
                status = answer.status_code
                code = None if answer.is_success else str(answer.json().get("code"))
                detail = "" if answer.is_success else str(answer.json().get("detail", ""))[:300]
            except httpx.TransportError as exc:
                status, code, detail = 0, f"transport:{type(exc).__name__}", str(exc)[:300]
            finally:
                results.gate.leave()
            sample = Sample(began - start, name, status, code, time.monotonic() - began, detail)
            with results.lock:
                results.samples.append(sample)


def upload(http: httpx.Client, dataset: str, data: bytes, file_name: str) -> httpx.Response:
    return http.post("/api/v1/datasets", files={"file": (file_name, data)}, data={"name": dataset, "mode": "overwrite"})


def p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


SCHEMA = f"soak_{uuid.uuid4().hex[:8]}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--clients-per-tenant", type=int, default=2)
    parser.add_argument(
        "--without", action="append", default=[], choices=sorted(MIX), help="leave an operation out (to attribute)"
    )
    args = parser.parse_args()
    for op in args.without:
        MIX.pop(op)
    duration = args.minutes * 60
    warmup = min(120.0, duration * 0.2)
    window = max(30.0, duration * 0.2)
    files = bad_files()
    results = Results()
    prepare_postgres(SCHEMA)
    with tempfile.TemporaryDirectory(prefix="tsunami-soak-") as tmp:
        home, log = Path(tmp) / "home", Path(tmp) / "serve.log"
        tenants = prepare_home(home)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(home, port, log)
        stop = threading.Event()
        watcher = threading.Thread(target=monitor, args=(server.pid, results, stop), daemon=True)
        try:
            first_workers = {w.pid for w in workers(server.pid)}
            for tenant in tenants:
                answer = httpx.post(
                    f"{url}/api/v1/data-sources",
                    headers={"Authorization": f"Bearer {tenant.key}"},
                    json={"name": "pg", "host": "127.0.0.1", "port": 5432, "database": "test", "user": "postgres"},
                    timeout=60,
                )
                answer.raise_for_status()
                tenant.source_id = answer.json()["id"]
            watcher.start()
            start = time.monotonic()
            end = start + duration
            threads = [
                threading.Thread(target=client, args=(i, url, tenants[i % 2], files, results, start, end), daemon=True)
                for i in range(2 * args.clients_per_tenant)
            ]
            for thread in threads:
                thread.start()
            # A reading at rest after warm-up: the clients are held while the requests in flight end.
            time.sleep(max(0.0, start + warmup - time.monotonic()))
            if results.gate.hold(time.monotonic() + 120):
                results.rest.append(at_rest(server.pid))
            results.gate.release()
            for thread in threads:
                thread.join()
            results.rest.append(at_rest(server.pid))
            restarts = len(results.workers_seen | {w.pid for w in workers(server.pid)}) - len(first_workers)
        finally:
            stop.set()
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
            drop_postgres(SCHEMA)
        lines = log.read_text(errors="replace").splitlines()
        died = [line for line in lines if "Child process" in line and "died" in line]  # uvicorn's supervisor
    return report(results, duration, warmup, window, restarts, died)


def report(results: Results, duration: float, warmup: float, window: float, restarts: int, died: list[str]) -> int:
    samples = results.samples
    print(f"soak: {duration / 60:g} min, {len(samples)} requests, warm-up {warmup:.0f} s, windows of {window:.0f} s")
    print("\noutcomes by operation (status code: count; * = not expected)")
    by_op: dict[str, collections.Counter[tuple[int, str | None]]] = collections.defaultdict(collections.Counter)
    for s in samples:
        by_op[s.op][(s.status, s.code)] += 1
    unexpected = 0
    for op in sorted(by_op):
        parts = []
        for (status, code), n in by_op[op].most_common():
            bad = (status, code) not in EXPECTED.get(op, set())
            unexpected += n if bad else 0
            parts.append(f"{'*' if bad else ''}{status} {code or 'ok'}: {n}")
        print(f"  {op:24} {', '.join(parts)}")
    shown: collections.Counter[tuple[str, int, str | None]] = collections.Counter()
    for s in samples:
        if (s.status, s.code) not in EXPECTED.get(s.op, set()) and shown[(s.op, s.status, s.code)] < 2:
            shown[(s.op, s.status, s.code)] += 1
            print(f"    * {s.op} at {s.at:.0f} s after {s.seconds:.1f} s: {s.status} {s.code}: {s.detail}")
    print("\np99 latency (s): first window after warm-up / last window")
    first = [s for s in samples if warmup <= s.at < warmup + window]
    last = [s for s in samples if s.at >= duration - window]
    for op in sorted(by_op):
        a = p99([s.seconds for s in first if s.op == op])
        b = p99([s.seconds for s in last if s.op == op])
        print(f"  {op:24} {a:8.3f} {b:8.3f}")
    print("\nworker RSS (MB) over time")
    growth_ok = len(results.rest) == 2
    if not growth_ok:
        print("  no reading at rest after warm-up (requests still in flight after 120 s)")
    for pid, points in sorted(results.rss.items()):
        marks = [points[int(i * (len(points) - 1) / 6)] for i in range(7)] if points else []
        print(f"  worker {pid}: " + "  ".join(f"{t:4.0f}s {rss:5.0f}" for t, rss in marks))
        early = [rss for t, rss in points if warmup <= t < warmup + window]
        late = [rss for t, rss in points if t >= duration - window]
        if early and late:
            # Under load a runaway statement lifts RSS for its few seconds (up to DuckDB's
            # memory_limit), so medians under load say how many runaways were in flight; growth that
            # stays is measured at rest.
            peak = max(rss for _, rss in points)
            print(
                f"    under load: median {statistics.median(early):.0f} MB in the first window after warm-up, "
                f"{statistics.median(late):.0f} MB in the last; peak {peak:.0f} MB"
            )
        if len(results.rest) == 2 and pid in results.rest[0] and pid in results.rest[1]:
            before, after = results.rest[0][pid], results.rest[1][pid]
            growth = after / before - 1
            print(f"    at rest: {before:.0f} MB after warm-up, {after:.0f} MB at the end: {growth * 100:+.1f}%")
            growth_ok &= growth < 0.20
    slow = []
    for s in samples:
        limit = RUNAWAY_LIMITS.get(s.op)
        if limit is not None and s.seconds > limit + 2:
            slow.append(s)
    runaways = [s for s in samples if s.op in RUNAWAY_LIMITS]
    worst = max((s.seconds - RUNAWAY_LIMITS[s.op] for s in runaways), default=float("nan"))
    print(f"\nrunaways: {len(runaways)}, answered past timeout + 2 s: {len(slow)} (worst: timeout {worst:+.2f} s)")
    print(f"unexpected outcomes: {unexpected}; worker restarts: {restarts}; worker deaths in the log: {len(died)}")
    checks = {
        "no worker restart": restarts == 0 and not died,
        "worker RSS growth at rest < 20% after warm-up": growth_ok,
        "every runaway stopped within timeout + 2 s": not slow,
    }
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
