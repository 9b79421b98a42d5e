"""The web console's speed: server time of each page with a full store, the script each page loads,
and the SQL editor's round trip against ``POST /api/v1/query`` for the same statement.

Prepares a data folder with ``--datasets`` datasets (tiny uploads), ``--notebooks`` notebooks and
``--runs`` job runs (one-task jobs run to the end), signs a user in through the sign-in form, then
times each page ``--repeat`` times over the real ASGI app in this process (httpx's ASGI transport:
the server's time, no network) and prints p50/p99 per page (target p50 < 50 ms). It prints the bytes
of script each page loads (target < 400 KB), the "Chart" action's time and the chart libraries it
loads (raw and as sent gzip-compressed), and the SQL editor's POST against ``POST /api/v1/query``
with the same statement and the result cache off, interleaved, as a ratio of medians (target <= 1.1).

Usage: ``python benchmarks/console.py [--datasets 1000] [--notebooks 200] [--runs 2000] [--repeat 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import pyarrow as pa

from servicetsunami.api.app import create_app
from servicetsunami.services.container import Services
from servicetsunami.services.identity import tenants, users
from servicetsunami.services.ingestion.uploads import upload_file
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.pipelines import job_runs, jobs
from servicetsunami.services.runs.service import wait_for_run
from servicetsunami.services.vectors import indexes
from servicetsunami.settings import Settings
from servicetsunami.tenancy import TableRef

PASSWORD = "benchmark-password"
EMAIL = "bench@acme.example"
SQL = "SELECT region, SUM(amount) AS total FROM bronze.sales_0 GROUP BY region ORDER BY region"
SCRIPT = re.compile(r'<script src="([^"]+)"')
CHART_SCRIPTS = re.compile(r'data-scripts="([^"]+)"')
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
SIGNIN = re.compile(r'name="signin_token" value="([^"]+)"')


def prepare(home: Path, *, datasets: int, notebook_count: int, runs: int) -> Services:
    settings = Settings(home=home, query={"result_cache_mb": 0}, _env_file=None)
    svc = Services.open(settings)
    tenants.create_tenant(svc.store, "acme")
    svc.engine.ensure_catalog(settings.catalog_prefix + "acme")
    users.create_user(svc, tenant_slug="acme", email=EMAIL, password=PASSWORD, role="admin")
    key = tenants.create_api_key(svc.store, tenant_slug="acme", name="bench", role="admin")
    principal = svc.authenticate(key.plaintext)
    started = time.perf_counter()
    folder = home / "files"
    folder.mkdir()
    for i in range(datasets):
        path = folder / f"sales_{i}.csv"
        path.write_text("id,region,amount\n1,north,10.5\n2,south,3.25\n3,north,7.0\n")
        upload_file(svc, principal, file_name=path.name, dataset_name=f"sales_{i}", path=path)
    for i in range(notebook_count):
        notebooks.create_notebook(svc, principal, f"/team/folder_{i % 10}/nb_{i}", cells=[{"source": f"x = {i}"}])
    job = jobs.create_job(
        svc,
        principal,
        {
            "name": "tiny",
            "max_concurrent_runs": 100,
            "tasks": [
                {
                    "task_key": "one",
                    "kind": "sql",
                    "config": {"sql": "CREATE OR REPLACE TABLE silver.t AS SELECT 1 AS one"},
                }
            ],
        },
    )
    done = 0
    while done < runs:
        wave = [job_runs.start_job_run(svc, principal, job.job_id) for _ in range(min(100, runs - done))]
        for run_id in wave:
            job_runs.wait_job_run(svc, principal, run_id, timeout=600)
        done += len(wave)
    docs = pa.table({"id": list(range(100)), "body": [f"note {i} about topic {i % 7}" for i in range(100)]})
    svc.engine.write_table(TableRef(principal.catalog, "gold", "docs"), docs.to_reader(), mode="create")
    made = indexes.create_vector_index(
        svc, principal, "help", source_table="gold.docs", primary_key="id", text_column="body"
    )
    wait_for_run(svc, principal, made.run_id, timeout=600)
    elapsed = time.perf_counter() - started
    print(f"prepared {datasets} datasets, {notebook_count} notebooks, {runs} job runs in {elapsed:.0f} s")
    return svc


async def measure(svc: Services, repeat: int) -> None:
    app = create_app(svc.settings, services=svc)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        form = await client.get("/signin")
        token = SIGNIN.search(form.text)
        assert token is not None
        signed = await client.post(
            "/signin", data={"signin_token": token.group(1), "email": EMAIL, "password": PASSWORD}
        )
        assert signed.status_code == 303, signed.text
        datasets_page = await client.get("/datasets")
        dataset_id = datasets_page.text.split('href="/datasets/')[1].split('"')[0]
        listed = await client.get("/notebooks?folder=/team/folder_0")
        notebook_id = listed.text.split('href="/notebooks/')[1].split('"')[0]
        pipelines_page = await client.get("/pipelines")
        job_id = pipelines_page.text.split('href="/pipelines/')[1].split('"')[0]
        run_id = pipelines_page.text.split('href="/pipelines/runs/')[1].split('"')[0]
        pages = {
            "overview": "/",
            "datasets": "/datasets",
            "dataset": f"/datasets/{dataset_id}",
            "sql editor": "/sql",
            "sources": "/sources",
            "silver & gold": "/transforms",
            "notebooks": "/notebooks",
            "notebook": f"/notebooks/{notebook_id}",
            "pipelines": "/pipelines",
            "pipeline": f"/pipelines/{job_id}",
            "pipeline run": f"/pipelines/runs/{run_id}",
            "agents": "/agents",
            "vectors": "/vectors",
            "vector index": "/vectors/help",
            "admin": "/admin",
            "audit log": "/admin/audit",
        }
        print(f"\n{'page':<16}{'p50 ms':>9}{'p99 ms':>9}{'script KB':>11}")
        worst = 0.0
        for name, path in pages.items():
            times = []
            body = ""
            for _ in range(repeat):
                started = time.perf_counter()
                answer = await client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, (path, answer.status_code)
                body = answer.text
            scripts = 0
            for src in SCRIPT.findall(body):
                scripts += len((await client.get(src)).content)
            times.sort()
            p50 = statistics.median(times)
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            worst = max(worst, p50)
            print(f"{name:<16}{p50:>9.1f}{p99:>9.1f}{scripts / 1024:>11.1f}")
        print(f"slowest page p50: {worst:.1f} ms (target < 50 ms)")

        csrf = CSRF.search((await client.get("/sql")).text)
        assert csrf is not None
        chart_ms: list[float] = []
        drawn = ""
        for _ in range(repeat):
            started = time.perf_counter()
            answer = await client.post(
                "/sql/chart", data={"sql": SQL}, headers={"HX-Request": "true", "X-CSRF-Token": csrf.group(1)}
            )
            chart_ms.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text
            drawn = answer.text
        found = CHART_SCRIPTS.search(drawn)
        assert found is not None, "the chart action drew no chart"
        raw = sent = 0
        for src in found.group(1).split():
            raw += len((await client.get(src, headers={"Accept-Encoding": "identity"})).content)
            packed = await client.get(src, headers={"Accept-Encoding": "gzip"})
            sent += int(packed.headers["content-length"])
        print(
            f"chart action p50 {statistics.median(chart_ms):.1f} ms; it loads {raw / 1024:.1f} KB of chart script, "
            f"{sent / 1024:.1f} KB as sent gzip-compressed (on top of the page's)"
        )

        key = tenants.create_api_key(svc.store, tenant_slug="acme", name="bench-query", role="admin").plaintext
        console_ms: list[float] = []
        api_ms: list[float] = []
        for _ in range(repeat):
            started = time.perf_counter()
            answer = await client.post(
                "/sql", data={"sql": SQL}, headers={"HX-Request": "true", "X-CSRF-Token": csrf.group(1)}
            )
            console_ms.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text
            started = time.perf_counter()
            answer = await client.post("/api/v1/query", json={"sql": SQL}, headers={"Authorization": f"Bearer {key}"})
            api_ms.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text
        ratio = statistics.median(console_ms) / statistics.median(api_ms)
        print(
            f"\nSQL editor {statistics.median(console_ms):.1f} ms vs POST /query {statistics.median(api_ms):.1f} ms "
            f"(medians of {repeat}, interleaved): {ratio:.2f}x (target <= 1.1)"
        )
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--notebooks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tsunami-console-bench-") as tmp:
        svc = prepare(Path(tmp) / "home", datasets=args.datasets, notebook_count=args.notebooks, runs=args.runs)
        try:
            asyncio.run(measure(svc, args.repeat))
        finally:
            svc.close()


if __name__ == "__main__":
    main()
