"""How long does ``profile_table`` take on a 5M-row table, against DuckDB's own ``SUMMARIZE``?

Builds a 5M-row bronze table (ids, integers, doubles, dates, low- and high-cardinality text, an email
column, some NULLs) with DuckDB, writes it through the engine, then times ``profile_table`` and, in
the same run, raw DuckDB ``SUMMARIZE`` over the same Parquet files (the Delta snapshot's). Prints
both, their ratio, and whether the profile met its target (< 3 s).

Usage: ``python benchmarks/profile.py [--rows 5000000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import tempfile
import time

import duckdb
from deltalake import DeltaTable

from servicetsunami.services.container import Services
from servicetsunami.services.governance import profiling
from servicetsunami.services.identity import tenants
from servicetsunami.settings import Settings
from servicetsunami.tenancy import TableRef

TARGET_SECONDS = 3.0


def build(rows: int) -> duckdb.DuckDBPyRelation:
    con = duckdb.connect()
    return con.sql(
        f"""SELECT i AS id, (i % 1000)::INT AS store, (random() * 1000)::DOUBLE AS amount,
        DATE '2020-01-01' + (i % 1500)::INT AS day,
        CASE i % 4 WHEN 0 THEN 'north' WHEN 1 THEN 'south' WHEN 2 THEN 'east' ELSE 'west' END AS region,
        'user' || (i % 200000)::VARCHAR || '@example.com' AS email,
        CASE WHEN i % 10 = 0 THEN NULL ELSE md5(i::VARCHAR) END AS token
        FROM range({rows}) t(i)"""
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tsunami-bench-profile-") as tmp:
        # The result cache off: each repetition must really scan (the cache would answer runs 2 and 3).
        settings = Settings(home=pathlib.Path(tmp) / "home", _env_file=None, query={"result_cache_mb": 0})  # type: ignore[call-arg]  # pydantic-settings option
        svc = Services.open(settings)
        try:
            created = tenants.bootstrap_service(svc)
            assert created is not None
            principal = svc.authenticate(created.plaintext)
            ref = TableRef(principal.catalog, "bronze", "facts")
            started = time.perf_counter()
            svc.engine.write_table(ref, build(args.rows).to_arrow_reader(122_880), mode="create")
            print(f"built {args.rows:,} rows in {time.perf_counter() - started:.1f} s")
            files = DeltaTable(str(svc.settings.resolved_lakehouse_root / ref.catalog / "bronze" / "facts")).file_uris()

            ours, raw = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                profile = profiling.profile_table(svc, principal, "bronze.facts")
                ours.append(time.perf_counter() - t0)
                con = duckdb.connect()
                t0 = time.perf_counter()
                con.sql(f"SUMMARIZE SELECT * FROM read_parquet({files!r})").fetchall()
                raw.append(time.perf_counter() - t0)
                con.close()
            p, r = statistics.median(ours), statistics.median(raw)
            print(
                f"profile_table: {p:.2f} s (median of {args.repeat}); sampled={profile.sampled}; "
                f"keys={profile.likely_keys}; pii={profile.pii_columns}"
            )
            print(f"duckdb SUMMARIZE: {r:.2f} s")
            print(f"ratio profile_table / SUMMARIZE: {p / r:.2f}")
            print(f"target < {TARGET_SECONDS:g} s: {'met' if p < TARGET_SECONDS else 'NOT met'}")
        finally:
            svc.close()


if __name__ == "__main__":
    main()
