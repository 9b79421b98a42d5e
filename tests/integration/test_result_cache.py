"""Repeated queries answered from the result cache, never over changed data."""

from __future__ import annotations

from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import uploads
from servicetsunami.tenancy import Principal

SQL = "SELECT region, sum(amount) AS total FROM sales GROUP BY region ORDER BY region"


def _upload(services: Services, principal: Principal, body: bytes, mode: str = "create") -> None:
    uploads.upload_file(
        services, principal, file_name="sales.csv", dataset_name="sales", content=b"region,amount\n" + body, mode=mode
    )


def test_the_same_query_over_unchanged_tables_is_answered_from_the_cache(services: Services, acme: Principal) -> None:
    _upload(services, acme, b"north,1\nsouth,2\n")
    first = query_sql(services, acme, SQL)
    second = query_sql(services, acme, SQL)
    assert not first.cached and second.cached
    assert second.rows == first.rows == [["north", 1], ["south", 2]]


def test_a_write_to_the_table_means_the_query_runs_again(services: Services, acme: Principal) -> None:
    _upload(services, acme, b"north,1\n")
    assert query_sql(services, acme, SQL).rows == [["north", 1]]
    _upload(services, acme, b"north,5\n", mode="append")
    again = query_sql(services, acme, SQL)
    assert not again.cached and again.rows == [["north", 6]]


def test_queries_calling_volatile_functions_always_run(services: Services, acme: Principal) -> None:
    _upload(services, acme, b"north,1\n")
    for sql in ("SELECT rand() AS r FROM sales", "SELECT now() AS t FROM sales", "SELECT uuid() AS u FROM sales"):
        query_sql(services, acme, sql)
        assert not query_sql(services, acme, sql).cached, sql


def test_another_tenants_identical_query_does_not_see_the_cached_rows(
    services: Services, acme: Principal, globex: Principal
) -> None:
    _upload(services, acme, b"north,1\n")
    _upload(services, globex, b"south,9\n")
    assert query_sql(services, acme, SQL).rows == [["north", 1]]
    assert query_sql(services, globex, SQL).rows == [["south", 9]]
