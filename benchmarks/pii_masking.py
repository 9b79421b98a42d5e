"""What do PII flagging on write and lineage-based masking cost?

Builds a bronze table of people (ids, e-mails, names, cities, amounts) and an orders table with
DuckDB, then, in the same run:

1. times ``upload_file`` of the same CSV with the write-time personal-data check, and with that check
   replaced by nothing (the baseline): the ratio is what flagging adds to an upload;
2. times ``query_sql`` on several query shapes with ``mask_pii`` off (the baseline) and on: the
   ratio per shape, and the milliseconds masking adds to a query (p50);
3. times recording one table's check (a new table, and one already checked) in a tenant whose
   other ``--tables`` tables are checked, against the same in a tenant with none: the ratio says
   whether recording grows with the tenant's tables (every write of a table records one).

Usage: ``python benchmarks/pii_masking.py [--rows 200000] [--repeat 15] [--tables 2000]``.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import statistics
import tempfile
import time
from collections.abc import Callable

import duckdb

from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.governance import pii
from servicetsunami.services.identity import tenants
from servicetsunami.services.ingestion import uploads
from servicetsunami.settings import QuerySettings, Settings
from servicetsunami.store.repositories import tenants as tenants_repo
from servicetsunami.tenancy import Principal, TableRef

QUERIES = {
    "point": "SELECT id, city FROM people WHERE id = 42",
    "aggregate": "SELECT city, count(*) AS n, sum(amount) AS total FROM people GROUP BY city ORDER BY city",
    "functions": "SELECT id, reverse(contact) AS r, upper(who) AS w FROM people WHERE id < 500",
    "cte_join_union": """WITH big AS (SELECT person_id, sum(amount) AS total FROM orders GROUP BY person_id)
        SELECT p.city, b.total FROM people p JOIN big b ON p.id = b.person_id WHERE p.id < 300
        UNION ALL SELECT city, amount FROM people WHERE id < 300""",
    "lateral_view": "SELECT id, x FROM people LATERAL VIEW explode(array(contact, who)) t AS x WHERE id < 200",
}


def csv_of(rows: int, folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    con = duckdb.connect()
    people, orders = folder / "people.csv", folder / "orders.csv"
    con.sql(
        f"""COPY (SELECT i AS id, 'user' || i::VARCHAR || '@example.com' AS contact,
        'Ann' || chr((97 + i % 26)::INT) || chr((97 + (i // 26) % 26)::INT)
            || ' Smith' || chr((97 + (i // 676) % 26)::INT) AS who,
        ['Paris', 'Rome', 'Oslo', 'Lima'][1 + i % 4] AS city, round(random() * 100, 2) AS amount
        FROM range({rows}) t(i)) TO '{people}' (HEADER)"""
    )
    con.sql(
        f"""COPY (SELECT i AS order_id, (i * 7) % {rows} AS person_id, round(random() * 50, 2) AS amount
        FROM range({rows}) t(i)) TO '{orders}' (HEADER)"""
    )
    return people, orders


def median_seconds(call: Callable[[], object], repeat: int) -> float:
    """The median time of ``repeat`` calls after a warm-up one (0: the time of one call, no warm-up)."""
    if repeat == 0:
        started = time.perf_counter()
        call()
        return time.perf_counter() - started
    call()  # warm
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--tables", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        people_csv, orders_csv = csv_of(args.rows, folder)
        settings = Settings(
            home=folder / "home",
            query=QuerySettings(result_cache_mb=0),  # every run executes
            _env_file=None,
        )
        svc = Services.open(settings)
        try:
            plain, masked = (tenant(svc, slug) for slug in ("plain", "masked"))
            upload_ratio = measure_uploads(svc, plain, people_csv, orders_csv, args.repeat)
            for csv in (people_csv, orders_csv):
                uploads.upload_file(svc, masked, file_name=csv.name, dataset_name=csv.stem, path=csv)
            pii.set_mask_pii(svc, masked, True)
            measure_queries(svc, plain, masked, args.repeat)
            measure_recording(svc, tenant(svc, "few"), tenant(svc, "many"), args.tables, args.repeat)
            print(f"upload with the write-time check / without: {upload_ratio:.2f}")
        finally:
            svc.close()


def measure_recording(svc: Services, few: Principal, many: Principal, tables: int, repeat: int) -> None:
    for i in range(tables):
        pii.remember_flags(svc, many, f"silver.t{i}", {"contact": "email"} if i % 3 == 0 else {})
    for principal in (few, many):
        pii.remember_flags(svc, principal, "silver.known", {"contact": "email"})
    rounds = max(repeat, 200)
    for label, record in (
        ("a new table", lambda p, i: pii.remember_flags(svc, p, f"silver.new{i}", {"contact": "email"})),
        ("a table already checked", lambda p, i: pii.remember_flags(svc, p, "silver.known", {"contact": "email"})),
    ):
        times: dict[str, list[float]] = {"few": [], "many": []}
        for i in range(rounds):  # alternated, after a commit each time (as in a job run: no cached read)
            for name, principal in (("few", few), ("many", many)):
                with svc.store.session(write_lock=True) as session:
                    tenants_repo.set_tenant_setting(session, principal.tenant_id, "bench_round", i)
                started = time.perf_counter()
                record(principal, i)
                times[name].append(time.perf_counter() - started)
        one, all_ = statistics.median(times["few"]), statistics.median(times["many"])
        print(
            f"recording the check of {label}: {one * 1000:.2f} ms, "
            f"{all_ * 1000:.2f} ms with {tables} more tables checked: ratio {all_ / one:.2f}"
        )


def tenant(svc: Services, slug: str) -> Principal:
    tenants.create_tenant(svc.store, slug)
    key = tenants.create_api_key(svc.store, tenant_slug=slug, name="bench", role="admin")
    principal = svc.authenticate(key.plaintext)
    svc.engine.ensure_catalog(principal.catalog)
    return principal


def measure_uploads(
    svc: Services, principal: Principal, people_csv: pathlib.Path, orders_csv: pathlib.Path, repeat: int
) -> float:
    def upload() -> None:
        uploads.upload_file(
            svc, principal, file_name="people.csv", dataset_name="people", path=people_csv, mode="overwrite"
        )

    uploads.upload_file(svc, principal, file_name="people.csv", dataset_name="people", path=people_csv)
    uploads.upload_file(svc, principal, file_name="orders.csv", dataset_name="orders", path=orders_csv)
    real = pii.flag_table

    def unchecked_upload() -> None:
        pii.flag_table = lambda *a, **k: {}  # the baseline: no check
        try:
            upload()
        finally:
            pii.flag_table = real

    checked_times, unchecked_times = [], []
    upload()
    for _ in range(max(3, repeat // 3)):  # interleaved, so a busy moment of the machine hits both
        checked_times.append(median_seconds(upload, 1))
        unchecked_times.append(median_seconds(unchecked_upload, 1))
    checked, unchecked = statistics.median(checked_times), statistics.median(unchecked_times)
    pii.flag_table(svc, principal, TableRef(principal.catalog, "bronze", "people"))
    print(f"upload of {people_csv.stat().st_size / 1e6:.1f} MB: {checked * 1000:.0f} ms checked, ", end="")
    print(f"{unchecked * 1000:.0f} ms unchecked")
    return checked / unchecked


def measure_queries(svc: Services, plain: Principal, masked: Principal, repeat: int) -> None:
    """The same queries over the same data in a tenant without masking (the baseline) and one with
    it, interleaved so that a busy moment of the machine hits both."""
    print(f"{'query':<16}{'mask off ms':>12}{'mask on ms':>12}{'ratio':>8}{'added ms':>10}  masked columns")
    added = []
    for name, sql in QUERIES.items():
        off_times, on_times = [], []
        off_call = functools.partial(query_sql, svc, plain, sql)
        on_call = functools.partial(query_sql, svc, masked, sql)
        off_call(), on_call()  # warm
        for _ in range(repeat):
            off_times.append(median_seconds(off_call, 0))
            on_times.append(median_seconds(on_call, 0))
        off, on = statistics.median(off_times), statistics.median(on_times)
        result = query_sql(svc, masked, sql)
        hidden = [c.name for i, c in enumerate(result.columns) if result.rows and result.rows[0][i] == pii.MASK]
        added.append((on - off) * 1000)
        print(f"{name:<16}{off * 1000:>12.2f}{on * 1000:>12.2f}{on / off:>8.2f}{(on - off) * 1000:>10.2f}  {hidden}")
    print(f"masking adds p50 {statistics.median(added):.2f} ms per query")


if __name__ == "__main__":
    main()
