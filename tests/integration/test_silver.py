"""Bronze to silver on real Delta tables: a messy CSV becomes a typed, clean, deduplicated table."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from servicetsunami.errors import InvalidInput
from servicetsunami.llm.chain import Chain
from servicetsunami.llm.openai import OpenAICompatibleLLM
from servicetsunami.services.ai import tools
from servicetsunami.services.catalog import tables
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import uploads
from servicetsunami.services.transforms import silver
from servicetsunami.settings import AISettings
from servicetsunami.tenancy import Principal

MESSY_CSV = (
    b"Order ID,Customer Name,Amount,Order Date,Quantity,Zip,Note\n"
    b'1,  Ann Smith ,"1,234.50",2024-01-05,"1,000",01234,  hello \n'
    b"2,Bob Jones,12.00,05/02/2024,3,02139,\n"
    b'3,Cem Kaya,"2,000.25","Mar 7, 2024",10,10001,x\n'
    b"2,Bob Jones,12.00,05/02/2024,3,02139,\n"
    b"4,Dee Lu,7.5,2024/04/30,   2,94105,   \n"
)


def _upload(svc: Services, who: Principal, name: str = "orders", data: bytes = MESSY_CSV) -> None:
    uploads.upload_file(svc, who, file_name=f"{name}.csv", dataset_name=name, content=data)


def test_default_spec_turns_a_messy_csv_into_a_typed_clean_table(services: Services, acme: Principal) -> None:
    _upload(services, acme)
    result = silver.transform_to_silver(services, acme, "bronze.orders")

    assert result.table == "silver.orders"
    assert result.rows == 4  # the duplicate row is gone
    types = {c.name: c.type for c in result.columns}
    assert types["amount"] == "DECIMAL(18,2)"
    assert types["order_date"] == "DATE"
    assert types["quantity"] == "BIGINT"
    assert types["zip"] == "STRING"  # codes with leading zeros stay text
    assert {"_ingested_at", "_source", "_sync_id"} <= set(types)
    rows = query_sql(
        services,
        acme,
        "SELECT order_id, customer_name, amount, order_date, quantity, note FROM silver.orders ORDER BY 1",
    ).rows
    assert rows == [
        [1, "Ann Smith", "1234.50", "2024-01-05", 1000, "hello"],
        [2, "Bob Jones", "12.00", "2024-02-05", 3, None],
        [3, "Cem Kaya", "2000.25", "2024-03-07", 10, "x"],
        [4, "Dee Lu", "7.50", "2024-04-30", 2, None],
    ]


def test_rerunning_the_stored_spec_gives_the_same_table(services: Services, acme: Principal) -> None:
    _upload(services, acme)
    spec = {"rename": {"customer_name": "customer"}, "dedupe": {"keys": ["order_id"]}, "drop": ["note"]}
    first = silver.transform_to_silver(services, acme, "orders", transformations=spec)
    again = silver.transform_to_silver(services, acme, "orders")  # no spec: the stored one

    assert again.spec == first.spec
    assert again.sql == first.sql
    assert again.version == first.version + 1
    one = query_sql(services, acme, "SELECT * EXCEPT (_ingested_at) FROM silver.orders VERSION AS OF 0 ORDER BY 1")
    two = query_sql(services, acme, "SELECT * EXCEPT (_ingested_at) FROM silver.orders ORDER BY 1")
    assert one.rows == two.rows
    assert "customer" in [c.name for c in one.columns] and "note" not in [c.name for c in one.columns]


def test_a_failing_cast_names_the_column_and_a_value_and_writes_nothing(services: Services, acme: Principal) -> None:
    _upload(services, acme)
    spec = {"cast": {"note": {"type": "INT", "on_error": "fail"}}}
    with pytest.raises(InvalidInput) as caught:
        silver.transform_to_silver(services, acme, "orders", transformations=spec)

    assert "column note" in caught.value.message
    assert "'x'" in caught.value.message or "'hello'" in caught.value.message
    assert not services.engine.table_exists(tables.table_ref(acme, "silver.orders"))


def test_preview_shows_sql_and_rows_without_writing(services: Services, acme: Principal) -> None:
    _upload(services, acme)
    preview = silver.preview_transform(
        services,
        acme,
        "orders",
        transformations={"filters": [{"column": "amount", "op": ">", "value": 100}], "cast": {"note": "INT"}},
        limit=10,
    )

    assert "WITH cleaned AS" in preview.sql and "TRY_CAST" in preview.sql
    assert preview.preview.row_count == 2
    assert preview.inferred_types["order_date"] == "DATE"
    assert not services.engine.table_exists(tables.table_ref(acme, "silver.orders"))


def test_keyed_dedupe_keeps_the_latest_row_by_the_ordering_column(services: Services, acme: Principal) -> None:
    data = b"id,status,updated\n1,new,2024-01-01\n1,paid,2024-01-03\n1,sent,2024-01-02\n2,new,2024-01-01\n"
    _upload(services, acme, "events", data)
    silver.transform_to_silver(
        services, acme, "events", transformations={"dedupe": {"keys": ["id"], "order_by": "updated"}}
    )

    rows = query_sql(services, acme, "SELECT id, status, updated FROM silver.events ORDER BY id").rows
    assert rows == [[1, "paid", "2024-01-03"], [2, "new", "2024-01-01"]]


def test_defaults_and_explicit_date_formats_apply(services: Services, acme: Principal) -> None:
    data = b"id,day,score\n1,31.12.2023,\n2,01.02.2024,5\n3,unknown,1\n"
    _upload(services, acme, "scores", data)
    silver.transform_to_silver(
        services,
        acme,
        "scores",
        transformations={"cast": {"day": {"type": "DATE", "formats": ["dd.MM.yyyy"]}}, "defaults": {"score": 0}},
    )

    rows = query_sql(services, acme, "SELECT id, day, score FROM silver.scores ORDER BY id").rows
    assert rows == [[1, dt.date(2023, 12, 31).isoformat(), 0], [2, "2024-02-01", 5], [3, None, 1]]


def test_suggest_query_through_a_configured_provider_checks_the_sql_it_returns(
    services: Services, acme: Principal
) -> None:
    _upload(services, acme)
    silver.transform_to_silver(services, acme, "orders")
    replies = iter(["SELECT nope FROM silver.orders", "```sql\nSELECT COUNT(*) AS n FROM silver.orders\n```\nCounts."])

    def endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"model": "served", "choices": [{"message": {"content": next(replies)}}]})

    provider = OpenAICompatibleLLM(
        AISettings(provider="openai", model="served", base_url="https://dbc.example/serving-endpoints"),
        transport=httpx.MockTransport(endpoint),
    )
    suggested = tools.suggest_query(services, acme, "how many orders", execute=True, chain=Chain([provider]))

    assert (suggested.answered_by, suggested.model) == ("openai", "served")
    assert [a.error is not None for a in suggested.attempts] == [True, False]
    assert suggested.result is not None and suggested.result.rows == [[4]]
