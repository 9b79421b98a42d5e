"""A serving endpoint against the model it wraps: overhead per request, and 50 clients under load.

Starts the fake OpenAI-compatible model (``tests/fakes/llm.py``) in its own process and a real
``tsunami serve`` whose configured model it is, with an agent deployed at an endpoint. Then:

1. baseline: the model called directly (``POST /v1/chat/completions``), one client, sequential;
2. the endpoint (``POST /serving-endpoints/<name>/invocations`` with ``messages``), one client,
   sequential: the agent makes one model call and no tool call, so the difference of the p50s is
   the endpoint's own cost (auth, endpoint lookup, rate limit, the agent loop, the run record and
   usage written to the store, the answer's shape). Target: < 20 ms;
3. ``--clients`` (50) concurrent clients on the endpoint for ``--seconds`` (30): errors (target 0),
   p50, p99, throughput.

Usage: ``python benchmarks/serving.py [--clients 50] [--seconds 30] [--requests 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from servicetsunami.services.container import Services
from servicetsunami.services.identity import tenants
from servicetsunami.services.serving import agents, endpoints
from servicetsunami.settings import Settings

MODEL_KEY = "sk-bench"
TARGET_OVERHEAD_MS = 20.0
QUESTION = {"messages": [{"role": "user", "content": "How many orders are there?"}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_fake_model() -> None:
    """The child process: the fake model on loopback, its URL on stdout, until stdin closes."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.fakes.llm import running_fake_llm

    with running_fake_llm() as fake:
        fake.reset(MODEL_KEY)
        fake.text = "There are 3 orders."
        print(fake.url, flush=True)
        sys.stdin.read()


def ai_env(model_url: str) -> dict[str, str]:
    return {
        "TSUNAMI_AI__PROVIDER": "openai",
        "TSUNAMI_AI__MODEL": "fake-model",
        "TSUNAMI_AI__API_KEY": MODEL_KEY,
        "TSUNAMI_AI__BASE_URL": f"{model_url}/v1",
    }


def prepare(home: Path) -> str:
    """A tenant, a key, an agent deployed at ``bench-ep`` (rate limit out of the way); the key."""
    settings = Settings(home=home, _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option
    svc = Services.open(settings)
    try:
        tenants.create_tenant(svc.store, "bench")
        key = tenants.create_api_key(svc.store, tenant_slug="bench", name="bench", role="engineer").plaintext
        principal = svc.authenticate(key)
        agents.create_agent(svc, principal, "bench")
        deployed = endpoints.deploy_agent(svc, principal, "bench", "bench-ep", rate_limit="1000000/minute")
        if deployed.state != "READY":
            raise SystemExit(f"the endpoint is {deployed.state}: {deployed.error}")
        return key
    finally:
        svc.close()


def start_server(home: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    full = {**os.environ, **env, "TSUNAMI_HOME": str(home), "TSUNAMI_PORT": str(port), "TSUNAMI_LOG_LEVEL": "WARNING"}
    # One worker process: the overhead is one process's, and uvicorn's supervisor restarts a worker
    # that has not answered its health check within 5 s, which on a loaded machine is its start-up.
    full.setdefault("TSUNAMI_SERVE__WORKERS", "1")
    tsunami = Path(sys.executable).parent / "tsunami"
    log = (home / "serve.log").open("wb")
    server = subprocess.Popen([str(tsunami), "serve"], env=full, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240  # imports alone take tens of seconds on a loaded machine
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.kill()
    raise SystemExit("tsunami serve did not start within 240 s:\n" + (home / "serve.log").read_text()[-3000:])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


Call = tuple[str, dict[str, object], dict[str, str]]


def interleaved(calls: list[Call], n: int) -> list[list[float]]:
    """Each call ``n`` times, one after the other in turns (a, b, a, b ...), so a burst of load from
    elsewhere on the machine falls on both alike; one keep-alive client each."""
    times: list[list[float]] = [[] for _ in calls]
    clients = [httpx.Client(timeout=60) for _ in calls]
    try:
        for _ in range(max(5, n // 10)):  # warm-up: connections, caches
            for client, (url, body, headers) in zip(clients, calls, strict=True):
                client.post(url, json=body, headers=headers).raise_for_status()
        for _ in range(n):
            for i, (client, (url, body, headers)) in enumerate(zip(clients, calls, strict=True)):
                started = time.perf_counter()
                answer = client.post(url, json=body, headers=headers)
                times[i].append((time.perf_counter() - started) * 1000)
                answer.raise_for_status()
                assert answer.json()["choices"][0]["message"]["content"]
    finally:
        for client in clients:
            client.close()
    return times


async def load(url: str, headers: dict[str, str], clients: int, seconds: float) -> tuple[list[float], int]:
    times: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    answer = await client.post(url, json=QUESTION, headers=headers)
                    ok = answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
                except (httpx.HTTPError, ValueError, KeyError):
                    ok = False
                times.append((time.perf_counter() - started) * 1000)
                errors += 0 if ok else 1

        await asyncio.gather(*(one() for _ in range(clients)))
    return times, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--fake-model", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_model:
        serve_fake_model()
        return
    model = subprocess.Popen(
        [sys.executable, __file__, "--fake-model"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert model.stdout is not None and model.stdin is not None
    model_url = model.stdout.readline().strip()
    with tempfile.TemporaryDirectory(prefix="tsunami-serving-bench-") as tmp:
        home = Path(tmp) / "home"
        env = ai_env(model_url)
        os.environ.update(env)
        key = prepare(home)
        port = free_port()
        server = start_server(home, port, env)
        try:
            endpoint_url = f"http://127.0.0.1:{port}/serving-endpoints/bench-ep/invocations"
            headers = {"authorization": f"Bearer {key}"}
            direct, served = interleaved(
                [
                    (
                        f"{model_url}/v1/chat/completions",
                        {"model": "fake-model", "max_tokens": 1024, **QUESTION},
                        {"authorization": f"Bearer {MODEL_KEY}"},
                    ),
                    (endpoint_url, QUESTION, headers),
                ],
                args.requests,
            )
            times, errors = asyncio.run(load(endpoint_url, headers, args.clients, args.seconds))
        finally:
            server.terminate()
            server.wait(30)
            model.stdin.close()
            model.wait(30)
    overhead = percentile(served, 0.5) - percentile(direct, 0.5)
    report = {
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "direct_model_p50_ms": round(percentile(direct, 0.5), 2),
        "direct_model_p99_ms": round(percentile(direct, 0.99), 2),
        "endpoint_p50_ms": round(percentile(served, 0.5), 2),
        "endpoint_p99_ms": round(percentile(served, 0.99), 2),
        "endpoint_overhead_p50_ms": round(overhead, 2),
        "overhead_target_ms": TARGET_OVERHEAD_MS,
        "overhead_met": overhead < TARGET_OVERHEAD_MS,
        "ratio_p50": round(percentile(served, 0.5) / percentile(direct, 0.5), 2),
        "load_clients": args.clients,
        "load_seconds": args.seconds,
        "load_requests": len(times),
        "load_errors": errors,
        "load_p50_ms": round(percentile(times, 0.5), 2),
        "load_p99_ms": round(percentile(times, 0.99), 2),
        "load_requests_per_second": round(len(times) / args.seconds, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
