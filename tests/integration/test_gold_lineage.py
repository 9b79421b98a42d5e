"""Gold tables and views over silver, and the lineage that describe_table and get_lineage show."""

from __future__ import annotations

import pytest

from servicetsunami.errors import Conflict, InvalidInput, NotFound
from servicetsunami.services.catalog import tables as catalog
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.governance import lineage
from servicetsunami.services.ingestion import uploads as ingestion
from servicetsunami.services.transforms import gold
from servicetsunami.services.transforms import silver as transforms
from servicetsunami.tenancy import Principal

ORDERS = b"id,region,amount\n1,north,10\n2,south,5\n3,north,7\n3,north,7\n"


@pytest.fixture
def silver_orders(services: Services, acme: Principal) -> None:
    ingestion.upload_file(services, acme, file_name="orders.csv", dataset_name="orders", content=ORDERS)
    transforms.transform_to_silver(services, acme, "orders")


@pytest.mark.usefixtures("silver_orders")
def test_a_gold_table_is_written_and_refreshed_from_its_stored_definition(services: Services, acme: Principal) -> None:
    created = gold.create_gold_table(
        services, acme, "sales_by_region", "SELECT region, SUM(amount) AS total FROM silver.orders GROUP BY region"
    )
    assert created.rows == 2 and created.upstream == ["silver.orders"]
    assert {c.name: c.type for c in created.columns}["total"] == "BIGINT"

    refreshed = gold.refresh_gold_table(services, acme, "sales_by_region")
    assert refreshed.version == created.version + 1
    rows = query_sql(services, acme, "SELECT region, total FROM gold.sales_by_region ORDER BY region").rows
    assert rows == [["north", 17], ["south", 5]]


@pytest.mark.usefixtures("silver_orders")
def test_a_gold_view_is_expanded_by_queries_and_sees_current_data(services: Services, acme: Principal) -> None:
    gold.create_gold_table(
        services, acme, "north", "SELECT id, amount FROM silver.orders WHERE region = 'north'", materialize="view"
    )
    gold.create_gold_table(services, acme, "north_total", "SELECT SUM(amount) AS s FROM gold.north", materialize="view")

    assert query_sql(services, acme, "SELECT s FROM gold.north_total").rows == [[17]]
    ingestion.upload_file(
        services,
        acme,
        file_name="more.csv",
        dataset_name="orders",
        content=b"id,region,amount\n9,north,100\n",
        mode="append",
    )
    transforms.transform_to_silver(services, acme, "orders")
    assert query_sql(services, acme, "SELECT s FROM gold.north_total").rows == [[117]]
    described = catalog.describe_table(services, acme, "gold.north")
    assert described.kind == "view" and [c.name for c in described.columns] == ["id", "amount"]


@pytest.mark.usefixtures("silver_orders")
def test_gold_refuses_bronze_inputs_writes_and_a_view_over_a_table_name(services: Services, acme: Principal) -> None:
    with pytest.raises(InvalidInput):
        gold.create_gold_table(services, acme, "raw", "SELECT * FROM bronze.orders")
    with pytest.raises(InvalidInput):
        gold.create_gold_table(services, acme, "x", "DESCRIBE silver.orders")
    gold.create_gold_table(services, acme, "t", "SELECT id FROM silver.orders")
    with pytest.raises(Conflict):
        gold.create_gold_table(services, acme, "t", "SELECT id FROM silver.orders", materialize="view")
    with pytest.raises(NotFound):
        gold.refresh_gold_table(services, acme, "missing")


@pytest.mark.usefixtures("silver_orders")
def test_describe_and_get_lineage_trace_gold_back_to_the_uploaded_file(services: Services, acme: Principal) -> None:
    gold.create_gold_table(
        services, acme, "totals", "SELECT region, SUM(amount) AS total FROM silver.orders GROUP BY region"
    )

    silver = catalog.describe_table(services, acme, "silver.orders")
    assert silver.lineage is not None and silver.lineage["kind"] == "transform_to_silver"
    assert silver.lineage["upstream"][0]["table"] == "bronze.orders" and silver.lineage["last_refresh"]
    bronze = catalog.describe_table(services, acme, "bronze.orders")
    assert bronze.lineage is not None and bronze.lineage["kind"] == "upload" and bronze.lineage["file"] == "orders.csv"

    graph = lineage.get_lineage(services, acme, "gold.totals")
    assert graph.upstream == ["silver.orders", "bronze.orders", "file:orders.csv"]
    assert graph.downstream == []
    down = lineage.get_lineage(services, acme, "bronze.orders")
    assert down.downstream == ["silver.orders", "gold.totals"]
    assert {(e.upstream, e.downstream) for e in down.edges} >= {("bronze.orders", "silver.orders")}


@pytest.mark.usefixtures("silver_orders")
def test_another_tenant_sees_no_lineage_or_views_of_ours(
    services: Services, acme: Principal, globex: Principal
) -> None:
    gold.create_gold_table(services, acme, "v", "SELECT id FROM silver.orders", materialize="view")
    with pytest.raises(NotFound):
        query_sql(services, globex, "SELECT * FROM gold.v")
    with pytest.raises(NotFound):
        lineage.get_lineage(services, globex, "silver.orders")


def test_the_lineage_of_a_table_that_does_not_exist_is_not_found(services: Services, acme: Principal) -> None:
    with pytest.raises(NotFound) as info:
        lineage.get_lineage(services, acme, "bronze.nowhere")
    assert info.value.code == "not_found"


@pytest.mark.usefixtures("silver_orders")
def test_list_tables_shows_gold_views_beside_tables(services: Services, acme: Principal) -> None:
    gold.create_gold_table(services, acme, "a_table", "SELECT id FROM silver.orders")
    gold.create_gold_table(services, acme, "b_view", "SELECT id FROM silver.orders", materialize="view")

    listed = [(t.name, t.kind) for t in catalog.list_tables(services, acme, layer="gold")]
    assert listed == [("a_table", "table"), ("b_view", "view")]
