"""Upload speed and memory: a large CSV to bronze versus DuckDB writing Parquet from the same file.

Baseline: ``COPY (SELECT * FROM read_csv(...)) TO '...parquet'`` in DuckDB, the least work that
turns the CSV into columnar files. Ours: ``upload_file(path=...)`` (land the file, sniff, stream to
Delta with snake_case names and lineage columns). Each run is a fresh child process, so peak RSS
(``ru_maxrss``) is that run's alone. Then the same for a file twice as large: memory must not grow
with file size.

Usage: ``python benchmarks/upload.py [--rows 5000000]``. Targets: time ratio <= 1.5; peak RSS of the
2x file <= 1.2x the 1x file's.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb


def make_csv(path: pathlib.Path, rows: int) -> None:
    if path.exists():
        return
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT i AS "Order ID", 'customer ' || (i % 9973) AS "Customer Name",
                  round(random() * 1000, 2) AS "Amount", DATE '2020-01-01' + (i % 1500)::INT AS "Ordered At",
                  (i % 7 = 0) AS "Is Gift", 'note with, a comma ' || i AS "Note"
            FROM range({rows}) t(i)) TO '{path}' (HEADER, DELIMITER ',')"""
    )


def child(kind: str, csv: str, home: str) -> None:
    start = time.perf_counter()
    if kind == "duckdb":
        con = duckdb.connect()
        con.execute(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{home}/out.parquet' (FORMAT parquet)")
        rows = con.execute(f"SELECT count(*) FROM '{home}/out.parquet'").fetchone()[0]  # type: ignore[index]
    else:
        from servicetsunami.services.container import Services
        from servicetsunami.services.identity import tenants
        from servicetsunami.services.ingestion.uploads import upload_file
        from servicetsunami.settings import Settings

        svc = Services.open(Settings(home=pathlib.Path(home), _env_file=None))  # type: ignore[call-arg]
        created = tenants.bootstrap_service(svc)
        assert created is not None
        principal = svc.authenticate(created.plaintext)
        start = time.perf_counter()
        result = upload_file(svc, principal, file_name="big.csv", dataset_name="big", path=pathlib.Path(csv))
        rows = result.rows
        svc.close()
    elapsed = time.perf_counter() - start
    # The upload reads the file in a child process: the peak is the larger of this process and it.
    peak_mb = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    print(json.dumps({"seconds": elapsed, "rows": rows, "peak_mb": peak_mb}))


def run(kind: str, csv: pathlib.Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="tsunami-bench-") as home:
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(csv), home],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=pathlib.Path, default=pathlib.Path("benchmarks/.data"))
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    small = args.data / f"upload_{args.rows}.csv"
    large = args.data / f"upload_{args.rows * 2}.csv"
    make_csv(small, args.rows)
    make_csv(large, args.rows * 2)
    print(
        f"CSV: {args.rows:,} rows = {small.stat().st_size / 1e6:.0f} MB; {args.rows * 2:,} rows = "
        f"{large.stat().st_size / 1e6:.0f} MB"
    )
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _ in range(args.repeat):  # interleaved, so drift in the machine's load hits both sides
        for size, csv in (("1x", small), ("2x", large)):
            for kind in ("duckdb", "tsunami"):
                results.setdefault((kind, size), []).append(run(kind, csv))

    def med(kind: str, size: str, key: str) -> float:
        return statistics.median(r[key] for r in results[(kind, size)])

    for size in ("1x", "2x"):
        base_s, ours_s = med("duckdb", size, "seconds"), med("tsunami", size, "seconds")
        print(
            f"{size} file: duckdb COPY {base_s:6.2f} s (peak {med('duckdb', size, 'peak_mb'):5.0f} MB)   "
            f"upload_file {ours_s:6.2f} s (peak {med('tsunami', size, 'peak_mb'):5.0f} MB)   "
            f"time ratio {ours_s / base_s:.2f} (target <= 1.5)"
        )
    growth = med("tsunami", "2x", "peak_mb") / med("tsunami", "1x", "peak_mb")
    print(f"peak RSS of upload_file, 2x file / 1x file: {growth:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
