"""What does ``query_sql`` cost over raw DuckDB on the same files?

Generates TPC-H data (scale factor 1 by default: ~6M lineitem rows) with DuckDB's ``tpch``
extension (pip package, loaded offline), writes every table to bronze through the engine, then runs
analytic queries written in Databricks SQL through the ``query_sql`` MCP tool with an in-memory MCP
client, and the same queries directly in DuckDB over the same Parquet files (the files of the
Delta snapshot). Prints each ratio, the median ratio (target <= 1.15) and the p50 overhead of a
trivial query through the tool (target < 5 ms).

Usage: ``python benchmarks/query_overhead.py [--sf 1] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import pathlib
import statistics
import tempfile
import time

import duckdb
from fastmcp import Client

from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.container import Services
from servicetsunami.services.identity import tenants
from servicetsunami.settings import Settings
from servicetsunami.tenancy import TableRef

TABLES = ["lineitem", "orders", "customer", "part", "partsupp", "supplier", "nation", "region"]

# TPC-H queries in Databricks SQL (date arithmetic with date_add / interval literals as Spark writes them).
QUERIES = {
    "q1": """SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base,
        sum(l_extendedprice * (1 - l_discount)) AS sum_disc, avg(l_quantity) AS avg_qty, count(*) AS n
        FROM lineitem WHERE l_shipdate <= date_sub(DATE '1998-12-01', 90)
        GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus""",
    "q3": """SELECT l_orderkey, sum(l_extendedprice * (1 - l_discount)) AS revenue, o_orderdate, o_shippriority
        FROM customer JOIN orders ON c_custkey = o_custkey JOIN lineitem ON l_orderkey = o_orderkey
        WHERE c_mktsegment = 'BUILDING' AND o_orderdate < DATE '1995-03-15' AND l_shipdate > DATE '1995-03-15'
        GROUP BY l_orderkey, o_orderdate, o_shippriority ORDER BY revenue DESC, o_orderdate LIMIT 10""",
    "q5": """SELECT n_name, sum(l_extendedprice * (1 - l_discount)) AS revenue
        FROM customer JOIN orders ON c_custkey = o_custkey JOIN lineitem ON l_orderkey = o_orderkey
        JOIN supplier ON l_suppkey = s_suppkey AND c_nationkey = s_nationkey
        JOIN nation ON s_nationkey = n_nationkey JOIN region ON n_regionkey = r_regionkey
        WHERE r_name = 'ASIA' AND o_orderdate >= DATE '1994-01-01' AND o_orderdate < add_months(DATE '1994-01-01', 12)
        GROUP BY n_name ORDER BY revenue DESC""",
    "q6": """SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem
        WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01'
        AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24""",
    "q10": """SELECT c_custkey, c_name, sum(l_extendedprice * (1 - l_discount)) AS revenue, n_name
        FROM customer JOIN orders ON c_custkey = o_custkey JOIN lineitem ON l_orderkey = o_orderkey
        JOIN nation ON c_nationkey = n_nationkey
        WHERE o_orderdate >= DATE '1993-10-01' AND o_orderdate < DATE '1994-01-01' AND l_returnflag = 'R'
        GROUP BY c_custkey, c_name, n_name ORDER BY revenue DESC LIMIT 20""",
    "q12": """SELECT l_shipmode,
        sum(CASE WHEN o_orderpriority IN ('1-URGENT', '2-HIGH') THEN 1 ELSE 0 END) AS high_line_count,
        sum(CASE WHEN o_orderpriority NOT IN ('1-URGENT', '2-HIGH') THEN 1 ELSE 0 END) AS low_line_count
        FROM orders JOIN lineitem ON o_orderkey = l_orderkey
        WHERE l_shipmode IN ('MAIL', 'SHIP') AND l_commitdate < l_receiptdate AND l_shipdate < l_commitdate
        AND l_receiptdate >= DATE '1994-01-01' AND l_receiptdate < DATE '1995-01-01'
        GROUP BY l_shipmode ORDER BY l_shipmode""",
    "q14": """SELECT 100.00 * sum(CASE WHEN p_type LIKE 'PROMO%' THEN l_extendedprice * (1 - l_discount) ELSE 0 END)
        / sum(l_extendedprice * (1 - l_discount)) AS promo_revenue
        FROM lineitem JOIN part ON l_partkey = p_partkey
        WHERE l_shipdate >= DATE '1995-09-01' AND l_shipdate < DATE '1995-10-01'""",
    "q18": """SELECT c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice, sum(l_quantity) AS qty
        FROM customer JOIN orders ON c_custkey = o_custkey JOIN lineitem ON o_orderkey = l_orderkey
        WHERE o_orderkey IN (SELECT l_orderkey FROM lineitem GROUP BY l_orderkey HAVING sum(l_quantity) > 300)
        GROUP BY c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice
        ORDER BY o_totalprice DESC, o_orderdate LIMIT 100""",
    "q19": """SELECT sum(l_extendedprice * (1 - l_discount)) AS revenue FROM lineitem JOIN part ON p_partkey = l_partkey
        WHERE (p_brand = 'Brand#12' AND p_container IN ('SM CASE', 'SM BOX', 'SM PACK', 'SM PKG')
               AND l_quantity BETWEEN 1 AND 11 AND p_size BETWEEN 1 AND 5 AND l_shipmode IN ('AIR', 'AIR REG'))
           OR (p_brand = 'Brand#23' AND p_container IN ('MED BAG', 'MED BOX', 'MED PKG', 'MED PACK')
               AND l_quantity BETWEEN 10 AND 20 AND p_size BETWEEN 1 AND 10 AND l_shipmode IN ('AIR', 'AIR REG'))""",
    "top_window": """SELECT o_custkey, o_orderkey, o_totalprice FROM orders
        QUALIFY row_number() OVER (PARTITION BY o_custkey ORDER BY o_totalprice DESC) = 1
        ORDER BY o_totalprice DESC LIMIT 10""",
    "count_distinct": "SELECT count(DISTINCT l_partkey) AS parts, count(*) AS n FROM lineitem",
}


def load_tpch(svc: Services, catalog: str, sf: float) -> None:
    con = duckdb.connect()
    module = importlib.import_module("duckdb_extension_tpch")
    version = con.execute("PRAGMA version").fetchone()[0]  # type: ignore[index]
    con.execute(
        f"LOAD '{pathlib.Path(next(iter(module.__path__))) / 'extensions' / version / 'tpch.duckdb_extension'}'"
    )
    con.execute(f"CALL dbgen(sf={sf})")
    for name in TABLES:
        reader = con.execute(f"SELECT * FROM {name}").to_arrow_reader(1_000_000)
        svc.engine.write_table(TableRef(catalog, "bronze", name), reader, mode="create")


def baseline_connection(svc: Services, catalog: str) -> duckdb.DuckDBPyConnection:
    """Raw DuckDB views over exactly the Parquet files of each table's current snapshot."""
    from deltalake import DeltaTable

    assert isinstance(svc.engine, LocalEngine)
    con = duckdb.connect()
    for name in TABLES:
        files = DeltaTable(str(svc.engine.root / catalog / "bronze" / name)).file_uris()
        listed = ", ".join(f"'{f}'" for f in files)
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listed}])")
    return con


def to_duckdb_sql(sql: str) -> str:
    import sqlglot

    return sqlglot.transpile(sql, read="databricks", write="duckdb")[0]


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tsunami-bench-") as home:
        # The result cache off: every repetition must really run (this measures execution overhead).
        settings = Settings(home=pathlib.Path(home), _env_file=None, query={"result_cache_mb": 0})  # type: ignore[call-arg]
        svc = Services.open(settings)
        created = tenants.bootstrap_service(svc)
        assert created is not None
        principal = svc.authenticate(created.plaintext)
        t0 = time.perf_counter()
        load_tpch(svc, principal.catalog, args.sf)
        print(f"TPC-H sf={args.sf} loaded into bronze in {time.perf_counter() - t0:.1f} s")
        base = baseline_connection(svc, principal.catalog)
        server = build_mcp_server(svc, principal=principal)
        ratios = []
        async with Client(server) as client:
            print(f"{'query':15}{'query_sql':>12}{'raw duckdb':>12}{'ratio':>8}")
            for name, sql in QUERIES.items():
                raw_sql = to_duckdb_sql(sql)
                await client.call_tool("query_sql", {"sql": sql})
                base.execute(raw_sql).fetchall()
                ours, theirs = [], []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    result = await client.call_tool("query_sql", {"sql": sql})
                    ours.append(time.perf_counter() - start)
                    assert not result.is_error, result
                    start = time.perf_counter()
                    base.execute(raw_sql).fetchall()
                    theirs.append(time.perf_counter() - start)
                a, b = statistics.median(ours), statistics.median(theirs)
                ratios.append(a / b)
                print(f"{name:15}{a * 1000:10.1f}ms{b * 1000:10.1f}ms{a / b:8.2f}")
            print(f"median ratio query_sql / raw DuckDB (target <= 1.15): {statistics.median(ratios):.2f}")
            trivial, raw = [], []
            for _ in range(200):
                start = time.perf_counter()
                await client.call_tool("query_sql", {"sql": "SELECT 1 AS one"})
                trivial.append(time.perf_counter() - start)
                start = time.perf_counter()
                base.execute("SELECT 1 AS one").fetchall()
                raw.append(time.perf_counter() - start)
            p50, raw_p50 = statistics.median(trivial) * 1000, statistics.median(raw) * 1000
            print(
                f"trivial query through the tool: p50 {p50:.2f} ms (raw DuckDB {raw_p50:.2f} ms); "
                f"overhead p50 {p50 - raw_p50:.2f} ms (target < 5 ms)"
            )
        svc.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
