"""REST sync speed and memory: a paged API synced to bronze versus a plain httpx loop over its pages.

A local server (uvicorn, its own process, pages rendered once up front) serves ``--records`` records
over ``--pages`` pages (``/items?page=N``, body ``{"data": [...]}``; each record has an id, text, a
number, a timestamp string and a nested object). Measured in the same run:

- baseline: one ``httpx.Client`` GETting every page in turn and parsing its JSON, nothing else;
- ours: a ``full_refresh`` :class:`SyncRunner` run of the REST source (page_number paginator,
  record selector ``$.data``) into a fresh lakehouse, in a child process (its peak RSS alone), at
  the full size and at a quarter of it (memory must not grow with records);
- our client and paginator alone, walking the pages into the source's spool (records only);
- with ``--dlt-python PATH`` (an interpreter with dlt installed, kept out of this project's
  dependencies): dlt's ``RESTClient.paginate`` with its ``PageNumberPaginator`` over the same pages,
  records only (no pipeline), the other candidate for the REST client.

Usage: ``python benchmarks/rest_sync.py [--records 200000] [--pages 2000] [--repeat 3]
[--dlt-python /path/to/python]``. Target: ours <= 1.3x the httpx loop; memory flat in records.
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


def serve(port_file: Path, records: int, pages: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    per_page = records // pages
    bodies = []
    for page in range(pages):
        rows = [
            {
                "id": i,
                "name": f"customer {i}",
                "amount": round(i * 0.37, 2),
                "updated_at": f"2024-01-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z",
                "address": {"city": f"city {i % 100}", "zip": f"{i % 99999:05d}"},
            }
            for i in range(page * per_page + 1, (page + 1) * per_page + 1)
        ]
        bodies.append(json.dumps({"data": rows}).encode())
    empty = json.dumps({"data": []}).encode()

    async def items(request: Request) -> Response:
        page = int(request.query_params.get("page", "1"))
        body = bodies[page - 1] if 1 <= page <= pages else empty
        return Response(body, media_type="application/json")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port_file.write_text(str(sock.getsockname()[1]))
    config = uvicorn.Config(Starlette(routes=[Route("/items", items)]), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def baseline(base: str, pages: int) -> dict[str, Any]:
    import httpx

    started, cpu = time.perf_counter(), _cpu()
    records = 0
    with httpx.Client() as client:
        for page in range(1, pages + 2):  # like a paginator: until the first empty page
            got = client.get(f"{base}/items", params={"page": page}).json()["data"]
            if not got:
                break
            records += len(got)
    return {"seconds": time.perf_counter() - started, "cpu": _cpu() - cpu, "records": records}


def ours(base: str, root: Path, pages: int) -> dict[str, Any]:
    from servicetsunami.connectors.rest.config import RestConfig
    from servicetsunami.connectors.rest.source import RestSource
    from servicetsunami.engines.local.engine import LocalEngine
    from servicetsunami.security.ssrf import check_source_host
    from servicetsunami.services.ingestion.sync_runner import SyncPlan, SyncRunner
    from servicetsunami.tenancy import TableRef

    config = RestConfig.model_validate(
        {
            "base_url": base,
            "resources": [
                {"name": "items", "path": "/items", "record_selector": "$.data", "paginator": {"type": "page_number"}}
            ],
            "max_pages": pages + 10,
        }
    )
    engine = LocalEngine(root)
    engine.ensure_catalog("tenant_bench")
    source = RestSource(config, vet=lambda h, p: check_source_host(h, p, multi_tenant=False))
    plan = SyncPlan("bench", "items", TableRef("tenant_bench", "bronze", "items"), "full_refresh")
    started, cpu = time.perf_counter(), _cpu()
    progress = SyncRunner(engine, source, plan, run_id="bench", batch_rows=1_000_000).run()
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    source.close()
    engine.close()
    return {
        "seconds": seconds,
        "cpu": cpu,
        "records": progress.rows,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def records_only(base: str, pages: int) -> dict[str, Any]:
    """Our client and paginator walking the pages into the spool, nothing after: what dlt's figure measures."""
    from servicetsunami.connectors.base import ReadRequest
    from servicetsunami.connectors.rest.config import RestConfig
    from servicetsunami.connectors.rest.source import RestSource
    from servicetsunami.security.ssrf import check_source_host

    config = RestConfig.model_validate(
        {
            "base_url": base,
            "resources": [
                {"name": "items", "path": "/items", "record_selector": "$.data", "paginator": {"type": "page_number"}}
            ],
            "max_pages": pages + 10,
        }
    )
    source = RestSource(config, vet=lambda h, p: check_source_host(h, p, multi_tenant=False))
    started, cpu = time.perf_counter(), _cpu()
    spooled = source._spool(ReadRequest("items"))  # the walk alone, as a benchmark may look inside
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    source.close()
    return {"seconds": seconds, "cpu": cpu, "records": spooled.records}


def _cpu() -> float:
    """CPU seconds of this process so far, all its threads (DuckDB's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


DLT = """
import json, sys, time
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
base = sys.argv[1]
started = time.perf_counter()
client = RESTClient(base_url=base, paginator=PageNumberPaginator(base_page=1, total_path=None), data_selector="data")
records = sum(len(page) for page in client.paginate("/items"))
print(json.dumps({"seconds": time.perf_counter() - started, "records": records}))
"""


def child(kind: str, *args: str, python: str | None = None) -> dict[str, Any]:
    if kind == "dlt":
        command = [python or sys.executable, "-c", DLT, *args]
    else:
        command = [sys.executable, str(HERE), "--child", kind, *args]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def start_server(records: int, pages: int, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = folder / f"port-{records}"
    proc = subprocess.Popen([sys.executable, str(HERE), "--serve", str(port_file), str(records), str(pages)])
    deadline = time.monotonic() + 120
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("the benchmark server did not start")
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port_file.read_text()}"
    import httpx

    while True:  # listening once it answers
        try:
            httpx.get(f"{base}/items", params={"page": 1})
            return proc, base
        except httpx.TransportError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("the benchmark server did not answer") from None
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--pages", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dlt-python", default=None)
    parser.add_argument("--serve", nargs=3, default=None)
    parser.add_argument("--child", nargs="+", default=None)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]), int(args.serve[2]))
        return
    if args.child:
        kind, base, pages = args.child[0], args.child[1], int(args.child[2])
        if kind == "baseline":
            print(json.dumps(baseline(base, pages)))
        elif kind == "records":
            print(json.dumps(records_only(base, pages)))
        else:
            with tempfile.TemporaryDirectory() as root:
                print(json.dumps(ours(base, Path(root), pages)))
        return

    with tempfile.TemporaryDirectory() as folder:
        results: dict[str, list[dict[str, Any]]] = {
            "baseline": [],
            "ours": [],
            "records": [],
            "dlt": [],
            "ours_small": [],
        }
        server, base = start_server(args.records, args.pages, Path(folder))
        small, small_base = start_server(args.records // 4, args.pages // 4, Path(folder))
        try:
            for _ in range(args.repeat):
                results["baseline"].append(child("baseline", base, str(args.pages)))
                results["ours"].append(child("ours", base, str(args.pages)))
                results["records"].append(child("records", base, str(args.pages)))
                results["ours_small"].append(child("ours", small_base, str(args.pages // 4)))
                if args.dlt_python:
                    results["dlt"].append(child("dlt", base, python=args.dlt_python))
        finally:
            for proc in (server, small):
                proc.terminate()
                proc.wait(timeout=30)
    base_s = statistics.median(r["seconds"] for r in results["baseline"])
    base_cpu = statistics.median(r["cpu"] for r in results["baseline"])
    print(f"records {args.records} over {args.pages} pages, median of {args.repeat}")
    print(
        f"httpx loop (baseline)   {base_s:7.2f} s  cpu {base_cpu:5.2f} s  records={results['baseline'][0]['records']}"
    )
    for key, label in (("ours", "REST sync to bronze     "), ("records", "our client, records only")):
        seconds = statistics.median(r["seconds"] for r in results[key])
        cpu = statistics.median(r["cpu"] for r in results[key])
        print(
            f"{label}{seconds:7.2f} s  ratio {seconds / base_s:4.2f}  cpu {cpu:5.2f} s  "
            f"records={results[key][0]['records']}"
        )
    if results["dlt"]:
        dlt_s = statistics.median(r["seconds"] for r in results["dlt"])
        print(
            f"dlt RESTClient (records){dlt_s:7.2f} s  ratio {dlt_s / base_s:4.2f}  "
            f"records={results['dlt'][0]['records']}"
        )
    rss_full = max(r["rss_mb"] for r in results["ours"])
    rss_small = max(r["rss_mb"] for r in results["ours_small"])
    print(f"peak RSS: {rss_small:.0f} MB at {args.records // 4} records, {rss_full:.0f} MB at {args.records}")


if __name__ == "__main__":
    main()
