"""analyze_schema proposes relationships only where the data shows them, and reads column names
as words (``country`` is a place, not a count)."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from servicetsunami.llm.chain import Chain
from servicetsunami.services.ai import evidence, tools
from servicetsunami.services.ai.facts import column_meaning
from servicetsunami.services.container import Services
from servicetsunami.tenancy import Principal, TableRef
from tests.differential.local import local_lakehouse


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, Principal]]:
    with local_lakehouse(tmp_path_factory.mktemp("evidence") / "home") as (svc, principal):
        # order_id here is neither a key nor the orders' ids: a name shared by accident
        shipments = pa.table({"order_id": pa.array([100, 100, 101, 102], pa.int32()), "carrier": ["a", "b", "a", "c"]})
        svc.engine.write_table(TableRef(principal.catalog, "bronze", "shipments"), shipments.to_reader(), mode="create")
        yield svc, principal


def test_a_reference_to_a_unique_key_whose_values_match_is_a_relationship(
    lakehouse: tuple[Services, Principal],
) -> None:
    analysis = tools.analyze_schema(*lakehouse, "bronze.orders", chain=Chain([]))
    assert any(r.startswith("bronze.orders.customer_id -> bronze.customers.id") for r in analysis.relationships)
    assert any(r.startswith("bronze.items.order_id -> bronze.orders.id") for r in analysis.relationships)


def test_columns_that_share_a_name_but_not_their_values_are_no_relationship(
    lakehouse: tuple[Services, Principal],
) -> None:
    svc, principal = lakehouse
    tables = {
        "bronze.items": [("order_id", "INT"), ("sku", "STRING")],
        "bronze.shipments": [("order_id", "INT"), ("carrier", "STRING")],
        "bronze.orders": [("id", "INT")],
    }
    assert ("bronze.shipments", "order_id", "bronze.orders", "id") in evidence.candidates(tables)
    found = evidence.joins(svc, principal, tables)
    assert all("shipments" not in (j.table, j.key_table) for j in found)
    analysis = tools.analyze_schema(svc, principal, "bronze.shipments", chain=Chain([]))
    assert analysis.relationships == []


def test_country_is_a_place_and_quantity_a_count() -> None:
    assert column_meaning("country", "STRING") == "a place"
    assert column_meaning("quantity", "INT") == "a count"
    assert column_meaning("order_count", "BIGINT") == "a count"
    assert column_meaning("discount", "DOUBLE") != "a count"


def test_a_question_the_tables_cannot_answer_gets_no_sql_and_a_way_to_a_model(
    lakehouse: tuple[Services, Principal],
) -> None:
    answer = tools.suggest_query(*lakehouse, "widgets shipped to Mars", chain=Chain([]))
    assert answer.sql is None and answer.answered_by == "deterministic"
    assert answer.cannot_answer is not None and "sampling" in answer.cannot_answer
