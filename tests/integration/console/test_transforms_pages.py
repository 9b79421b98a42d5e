"""The console's silver and gold pages over the ASGI app: the layers, a cleaning spec previewed
(nothing written) then built, a bad spec refused with its code, gold from a SELECT, and roles."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from servicetsunami.services.container import Services
from tests.integration.console.conftest import csrf_of, sign_in_as

CSV = b"Order ID,Region,Amount\n1, north ,10.5\n2,south,3.25\n3, north ,7.0\n"


def _upload(client: TestClient) -> None:
    token = csrf_of(client.get("/datasets").text)
    answer = client.post(
        "/datasets", files={"file": ("orders.csv", CSV, "text/csv")}, data={"csrf_token": token, "name": "orders"}
    )
    assert answer.status_code == 200, answer.text


def test_a_spec_is_previewed_without_writing_then_built_into_silver_and_gold(
    client: TestClient, services: Services
) -> None:
    sign_in_as(client, services, "acme", role="engineer")
    _upload(client)
    layers = client.get("/transforms").text
    assert "/transforms/silver?table=bronze.orders" in layers
    page = client.get("/transforms/silver", params={"table": "bronze.orders"}).text
    spec = json.dumps({"rename": {"order_id": "id"}})
    shown = client.post(
        "/transforms/silver/preview",
        data={"table": "bronze.orders", "spec": spec},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(page)},
    )
    assert shown.status_code == 200, shown.text
    assert "silver.orders" in shown.text and "north" in shown.text and "<th" in shown.text
    assert "silver.orders" not in client.get("/transforms").text.split('data-layer="silver"')[1].split("</div>")[0]
    built = client.post(
        "/transforms/silver", data={"csrf_token": csrf_of(page), "table": "bronze.orders", "spec": spec}
    )
    assert built.status_code == 303
    silver_card = client.get("/transforms").text.split('data-layer="silver"')[1].split("</div>")[0]
    assert "silver.orders" in silver_card
    made = client.post(
        "/transforms/gold",
        data={
            "csrf_token": csrf_of(page),
            "name": "by_region",
            "sql": "SELECT region, SUM(amount) AS total FROM silver.orders GROUP BY region",
        },
    )
    assert made.status_code == 303, made.text
    gold_card = client.get("/transforms").text.split('data-layer="gold"')[1].split("</div>")[0]
    assert "gold.by_region" in gold_card


def test_a_spec_that_is_not_json_or_names_a_missing_column_is_refused_with_its_code(
    client: TestClient, services: Services
) -> None:
    sign_in_as(client, services, "acme", role="engineer")
    _upload(client)
    token = csrf_of(client.get("/transforms").text)
    headers = {"HX-Request": "true", "X-CSRF-Token": token}
    not_json = client.post(
        "/transforms/silver/preview", data={"table": "bronze.orders", "spec": "{rename"}, headers=headers
    )
    assert not_json.status_code == 400 and 'data-code="invalid_input"' in not_json.text
    missing = client.post(
        "/transforms/silver/preview",
        data={"table": "bronze.orders", "spec": json.dumps({"drop": ["no_such_column"]})},
        headers=headers,
    )
    assert missing.status_code >= 400 and "data-code=" in missing.text


def test_an_analyst_previews_but_cannot_build(client: TestClient, services: Services) -> None:
    sign_in_as(client, services, "acme", role="engineer")
    _upload(client)
    client.cookies.clear()
    sign_in_as(client, services, "acme", role="analyst")
    page = client.get("/transforms/silver", params={"table": "bronze.orders"}).text
    assert "Build silver" not in page
    token = csrf_of(page)
    shown = client.post(
        "/transforms/silver/preview",
        data={"table": "bronze.orders", "spec": "{}"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert shown.status_code == 200
    refused = client.post("/transforms/silver", data={"csrf_token": token, "table": "bronze.orders", "spec": "{}"})
    assert refused.status_code == 403
