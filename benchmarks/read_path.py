"""Which way should DuckDB read a Delta table? Measured, not guessed.

Writes TPC-H lineitem (scale factor 1 by default, ~6M rows) as a Delta table with deltalake, then
runs the same analytic queries through each read path available in this interpreter's DuckDB:

- ``delta_scan``: DuckDB's ``delta`` extension, loaded from the pip package (offline; 1.5.x only)
- ``file_list``: ``read_parquet([...])`` over the files of the current Delta snapshot (from the log)
- ``arrow_ds``: the pyarrow dataset from ``DeltaTable.to_pyarrow_dataset()`` scanned by DuckDB

Baseline: ``read_parquet`` over the folder glob, i.e. raw DuckDB on the same files.
Usage: ``python benchmarks/read_path.py [--sf 1] [--repeat 3]``. Run it under DuckDB 1.5.5 and 2.x.
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import statistics
import time
from collections.abc import Callable

import duckdb
from deltalake import DeltaTable, write_deltalake

QUERIES = {
    "q1_pricing_summary": """
        SELECT l_returnflag, l_linestatus, sum(l_quantity), sum(l_extendedprice),
               sum(l_extendedprice * (1 - l_discount)), avg(l_discount), count(*)
        FROM {t} WHERE l_shipdate <= DATE '1998-09-02'
        GROUP BY 1, 2 ORDER BY 1, 2""",
    "q6_revenue_change": """
        SELECT sum(l_extendedprice * l_discount) FROM {t}
        WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01'
          AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24""",
    "count_star": "SELECT count(*) FROM {t}",
    "point_filter": "SELECT * FROM {t} WHERE l_orderkey = 4000000",
    "top_parts": "SELECT l_partkey, sum(l_quantity) q FROM {t} GROUP BY 1 ORDER BY q DESC LIMIT 10",
}


def build(root: pathlib.Path, sf: float) -> pathlib.Path:
    path = root / f"lineitem_sf{sf}"
    if (path / "_delta_log").exists():
        return path
    con = duckdb.connect()
    _load(con, "tpch")
    con.execute(f"CALL dbgen(sf={sf})")
    reader = con.execute("SELECT * FROM lineitem").to_arrow_reader(1_000_000)
    write_deltalake(str(path), reader, mode="overwrite")
    return path


def _load(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    try:
        module = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError:
        return False
    version = con.execute("PRAGMA version").fetchone()[0]  # type: ignore[index]  # always one row
    file = pathlib.Path(next(iter(module.__path__))) / "extensions" / version / f"{name}.duckdb_extension"
    if not file.exists():
        return False
    con.execute(f"LOAD '{file}'")
    return True


def timed(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=pathlib.Path, default=pathlib.Path("benchmarks/.data"))
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    path = build(args.data, args.sf)
    dt = DeltaTable(str(path))
    files = dt.file_uris()
    con = duckdb.connect()
    paths: dict[str, str] = {
        "baseline_glob": f"read_parquet('{path}/*.parquet')",
        "file_list": "read_parquet([" + ", ".join(f"'{f}'" for f in files) + "], union_by_name=true)",
    }
    if _load(con, "delta"):
        paths["delta_scan"] = f"delta_scan('{path}')"
    con.register("arrow_ds", dt.to_pyarrow_dataset())
    paths["arrow_ds"] = "arrow_ds"

    print(f"duckdb {duckdb.__version__}, {dt.count() if hasattr(dt, 'count') else '?'} rows, {len(files)} files")
    results: dict[str, dict[str, float]] = {name: {} for name in paths}
    for qname, sql in QUERIES.items():
        for pname, source in paths.items():
            q = sql.format(t=source)
            con.execute(q).fetchall()  # warm the OS cache and DuckDB's metadata
            results[pname][qname] = timed(lambda q=q: con.execute(q).fetchall(), args.repeat)
    header = f"{'query':22}" + "".join(f"{p:>15}" for p in paths)
    print(header)
    for qname in QUERIES:
        print(f"{qname:22}" + "".join(f"{results[p][qname] * 1000:13.1f}ms" for p in paths))
    base = results["baseline_glob"]
    for pname in paths:
        ratios = [results[pname][q] / base[q] for q in QUERIES]
        print(f"{pname:15} median ratio vs raw DuckDB on the same files: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
