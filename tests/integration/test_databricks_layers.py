"""Silver and gold on the Databricks engine (the fake workspace): the same cleaning spec compiles to
the same Databricks SQL as on the local engine, runs as one ``CREATE OR REPLACE TABLE ... AS``, and
gives the same rows."""

from __future__ import annotations

from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.governance import pii
from servicetsunami.services.ingestion import uploads as ingestion
from servicetsunami.services.transforms import gold
from servicetsunami.services.transforms import silver as transforms
from servicetsunami.tenancy import Principal
from tests.fakes.databricks.server import FakeDatabricks
from tests.helpers import make_principal
from tests.integration.governance.test_pii_adversarial import PEOPLE
from tests.integration.test_silver import MESSY_CSV


def _silver_and_gold(svc: Services, who: Principal) -> tuple[str, list[list[object]], list[list[object]]]:
    ingestion.upload_file(svc, who, file_name="orders.csv", dataset_name="orders", content=MESSY_CSV)
    result = transforms.transform_to_silver(svc, who, "bronze.orders")
    assert result.rows == 4
    silver = query_sql(
        svc, who, "SELECT order_id, customer_name, amount, order_date, quantity, zip FROM silver.orders ORDER BY 1"
    ).rows
    gold.create_gold_table(
        svc, who, "spend", "SELECT customer_name, sum(amount) AS total FROM silver.orders GROUP BY customer_name"
    )
    totals = query_sql(svc, who, "SELECT customer_name, total FROM gold.spend ORDER BY 1").rows
    return result.sql, silver, totals


def test_the_same_spec_gives_the_same_sql_and_rows_locally_and_on_databricks(
    services: Services, acme: Principal, on_databricks: Services
) -> None:
    remote, _ = make_principal(on_databricks, "acme", "admin")
    local_sql, local_silver, local_gold = _silver_and_gold(services, acme)
    remote_sql, remote_silver, remote_gold = _silver_and_gold(on_databricks, remote)
    assert remote_sql == local_sql
    assert remote_silver == local_silver
    assert remote_gold == local_gold
    again = transforms.transform_to_silver(on_databricks, remote, "bronze.orders")  # the stored spec, re-run
    assert again.rows == 4
    assert query_sql(on_databricks, remote, "SELECT count(*) FROM silver.orders").rows == [[4]]


def test_personal_data_is_flagged_and_masked_the_same_way_on_databricks(
    services: Services, acme: Principal, on_databricks: Services
) -> None:
    remote, _ = make_principal(on_databricks, "acme", "admin")
    answers = []
    for svc, who in ((services, acme), (on_databricks, remote)):
        ingestion.upload_file(svc, who, file_name="people.csv", dataset_name="people", content=PEOPLE)
        pii.set_mask_pii(svc, who, True)
        sql = "SELECT id, city, reverse(contact) AS r FROM people ORDER BY id"
        answers.append((pii.remembered_flags(svc, who, "bronze.people"), query_sql(svc, who, sql).rows))
    assert answers[0] == answers[1]
    assert answers[1][1][0] == [1, "Paris", pii.MASK]


def test_a_silver_build_on_databricks_describes_the_table_it_wrote_once(
    on_databricks: Services, databricks_fake: FakeDatabricks
) -> None:
    remote, _ = make_principal(on_databricks, "acme", "admin")
    ingestion.upload_file(on_databricks, remote, file_name="orders.csv", dataset_name="orders", content=MESSY_CSV)
    before = len(databricks_fake.statements_seen)
    transforms.transform_to_silver(on_databricks, remote, "bronze.orders")
    seen = databricks_fake.statements_seen[before:]
    details = [s for s in seen if s.lstrip().upper().startswith("DESCRIBE DETAIL") and "silver" in s]
    assert len(details) == 1, details  # four statements on a warehouse each time: the check reuses it
