"""What does the sandbox cost a notebook?

1. Kernel start: a kernel in bubblewrap (with the shim and its bridge) against a bare ``ipykernel``
   started by jupyter_client the usual way, both until the kernel answers (target <= 1.3x).
2. First command on a warm kernel: ``1 + 1`` in the sandboxed kernel (target < 100 ms).
3. A 20-cell notebook: run as a ``notebook_run`` (sandboxed kernel, shim, the run's bookkeeping)
   against nbclient executing the same notebook in a bare kernel (target <= 1.25x).
4. ``spark.sql`` over a 5M-row table: an aggregate collected in a warm sandboxed kernel (the shim,
   the bridge socket, the service as the kernel's principal) against ``query_sql`` on the same
   statement in the server (target <= 1.2x). Each side gets its own literal in every repetition, so
   neither is answered from the result cache. The gap is split: ``collect()`` timed inside the cell
   (the socket and the statement in the server) and an empty cell's round trip on the same kernel.

Each is measured ``--repeat`` times, alternating, and the medians compared.

Usage: ``python benchmarks/notebooks.py [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
import pyarrow as pa
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient

from servicetsunami.runs.sandbox.kernels import Kernel
from servicetsunami.services.catalog import query
from servicetsunami.services.container import Services
from servicetsunami.services.identity import tenants
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.notebooks import runs as nbruns
from servicetsunami.services.runs import service as runs
from servicetsunami.settings import Settings
from servicetsunami.tenancy import TableRef

BIG_ROWS = 5_000_000
BIG_SQL = (
    "SELECT grp, count(*) AS n, sum(amount) AS total, avg(amount) AS mean FROM bronze.big "
    "WHERE amount >= -{literal} GROUP BY grp ORDER BY grp"
)
CELLS = [f"x{i} = sum(range({i} * 1000))\nprint(x{i})" for i in range(20)]


def bare_kernel_start() -> float:
    started = time.perf_counter()
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60)
    took = time.perf_counter() - started
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return took


def sandboxed_kernel_start(svc: Services, name: str) -> tuple[float, float]:
    principal = svc.authenticate(_key(svc))
    started = time.perf_counter()
    kernel, server = nbruns.open_kernel(svc, principal, name)
    took = time.perf_counter() - started
    first = time.perf_counter()
    done = kernel.execute("1 + 1", timeout=30)
    first_command = time.perf_counter() - first
    assert done.status == "ok", done
    server.close()
    kernel.close()
    return took, first_command


def bare_notebook_run() -> float:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    started = time.perf_counter()
    NotebookClient(copy.deepcopy(nb), kernel_name="python3", timeout=60).execute()
    return time.perf_counter() - started


def sandboxed_notebook_run(svc: Services, notebook_id: str) -> float:
    principal = svc.authenticate(_key(svc))
    started = time.perf_counter()
    run_id = nbruns.run_notebook(svc, principal, notebook_id)
    done = runs.wait_for_run(svc, principal, run_id, timeout=300, poll_seconds=0.02)
    took = time.perf_counter() - started
    assert done.state == "succeeded", done.error
    return took


def big_table(svc: Services) -> None:
    """bronze.big: 5M rows (id, grp of 100 values, amount), written in 1M-row batches."""
    batches = [
        pa.record_batch(
            {
                "id": pa.array(range(start, start + 1_000_000), pa.int64()),
                "grp": pa.array([f"g{i % 100:02d}" for i in range(start, start + 1_000_000)]),
                "amount": pa.array([(i * 37) % 10_000 / 100 for i in range(start, start + 1_000_000)], pa.float64()),
            }
        )
        for start in range(0, BIG_ROWS, 1_000_000)
    ]
    reader = pa.RecordBatchReader.from_batches(batches[0].schema, iter(batches))
    svc.engine.ensure_catalog("tenant_bench")
    svc.engine.write_table(TableRef("tenant_bench", "bronze", "big"), reader, mode="create")


def query_sql_time(svc: Services, literal: int) -> float:
    principal = svc.authenticate(_key(svc))
    started = time.perf_counter()
    result = query.query_sql(svc, principal, BIG_SQL.format(literal=literal))
    took = time.perf_counter() - started
    assert len(result.rows) == 100, result
    return took


def spark_sql_time(kernel: Kernel, literal: int) -> tuple[float, float]:
    """The cell's time seen by the server, and the ``collect()`` alone, timed inside the kernel."""
    code = (
        "import time as _t\n_s = _t.perf_counter()\n"
        f"rows = spark.sql({BIG_SQL.format(literal=literal)!r}).collect()\n"
        "print(_t.perf_counter() - _s)\nassert len(rows) == 100, len(rows)"
    )
    started = time.perf_counter()
    done = kernel.execute(code, timeout=300)
    took = time.perf_counter() - started
    assert done.status == "ok", done
    return took, float(done.text.strip())


def empty_cell_time(kernel: Kernel) -> float:
    started = time.perf_counter()
    done = kernel.execute("1 + 1", timeout=30)
    assert done.status == "ok", done
    return time.perf_counter() - started


_KEYS: dict[int, str] = {}


def _key(svc: Services) -> str:
    if id(svc) not in _KEYS:
        tenants.create_tenant(svc.store, "bench")
        _KEYS[id(svc)] = tenants.create_api_key(svc.store, tenant_slug="bench", name="bench", role="admin").plaintext
    return _KEYS[id(svc)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tsunami-bench-") as tmp:
        svc = Services.open(Settings(home=Path(tmp) / "home", _env_file=None))  # type: ignore[call-arg]
        try:
            principal = svc.authenticate(_key(svc))
            notebook_id = notebooks.create_notebook(
                svc, principal, "/bench/twenty", cells=[{"source": c} for c in CELLS]
            ).notebook_id
            bare_kernel_start()  # warm the page cache for both
            sandboxed_kernel_start(svc, "warm")
            big_table(svc)
            kernel, server = nbruns.open_kernel(svc, principal, "spark")
            query_sql_time(svc, 0)  # warm both paths (page cache, DuckDB's per-catalog database)
            spark_sql_time(kernel, 1)
            bare_start, sandbox_start, first_command, bare_run, sandbox_run = [], [], [], [], []
            plain_sql, spark_sql, in_cell, empty_cell = [], [], [], []
            for i in range(args.repeat):
                bare_start.append(bare_kernel_start())
                took, first = sandboxed_kernel_start(svc, f"k{i}")
                sandbox_start.append(took)
                first_command.append(first)
                bare_run.append(bare_notebook_run())
                sandbox_run.append(sandboxed_notebook_run(svc, notebook_id))
                plain_sql.append(query_sql_time(svc, 2 * i + 2))
                cell, inside = spark_sql_time(kernel, 2 * i + 3)
                spark_sql.append(cell)
                in_cell.append(inside)
                empty_cell.append(empty_cell_time(kernel))
            server.close()
            kernel.close()
        finally:
            svc.close()
    med = statistics.median
    print(
        f"kernel start: bare {med(bare_start):.3f} s, sandboxed {med(sandbox_start):.3f} s, "
        f"ratio {med(sandbox_start) / med(bare_start):.2f} (target <= 1.3)"
    )
    print(f"first command on a warm sandboxed kernel: {med(first_command) * 1000:.1f} ms (target < 100 ms)")
    print(
        f"20-cell notebook: nbclient bare {med(bare_run):.3f} s, notebook_run {med(sandbox_run):.3f} s, "
        f"ratio {med(sandbox_run) / med(bare_run):.2f} (target <= 1.25)"
    )
    print(
        f"spark.sql over {BIG_ROWS:,} rows: query_sql {med(plain_sql):.3f} s, in the notebook {med(spark_sql):.3f} s, "
        f"ratio {med(spark_sql) / med(plain_sql):.2f} (target <= 1.2); of which collect() inside the cell "
        f"{med(in_cell):.3f} s (ratio {med(in_cell) / med(plain_sql):.2f}) and an empty cell's round trip "
        f"{med(empty_cell) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
