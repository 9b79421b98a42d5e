"""A dataset's page over the ASGI app: its lineage both ways, its profile loaded on demand, and its
rows as of an earlier version; another tenant's dataset is not found."""

from __future__ import annotations

from fastapi.testclient import TestClient

from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import uploads
from servicetsunami.services.transforms import silver
from tests.helpers import make_principal
from tests.integration.console.conftest import sign_in_as

FIRST = b"id,region,email\n1,north,ann@example.com\n2,south,bob@example.com\n"
MORE = b"id,region,email\n3,east,cy@example.com\n"


def _orders(services: Services) -> str:
    owner = make_principal(services, "acme", role="engineer")[0]
    made = uploads.upload_file(services, owner, file_name="orders.csv", dataset_name="orders", content=FIRST)
    uploads.upload_file(services, owner, file_name="more.csv", dataset_name="orders", content=MORE, mode="append")
    silver.transform_to_silver(services, owner, "bronze.orders")
    return made.dataset_id


def test_a_dataset_shows_where_it_came_from_and_what_it_feeds(client: TestClient, services: Services) -> None:
    dataset_id = _orders(services)
    sign_in_as(client, services, "acme", role="analyst")
    html = client.get(f"/datasets/{dataset_id}").text
    upstream = html.split('id="upstream"')[1].split('id="downstream"')[0]
    downstream = html.split('id="downstream"')[1]
    assert 'data-node="file:more.csv"' in upstream and "upload" in upstream  # the last file loaded
    assert 'data-node="silver.orders"' in downstream and "transform_to_silver" in downstream
    assert "Profile the table" in html and "data-rows" not in html  # the profile waits to be asked for


def test_the_profile_is_loaded_on_demand_with_personal_data_flagged(client: TestClient, services: Services) -> None:
    dataset_id = _orders(services)
    sign_in_as(client, services, "acme", role="analyst")
    shown = client.get(f"/datasets/{dataset_id}/profile", headers={"HX-Request": "true"})
    assert shown.status_code == 200
    assert 'data-rows="3"' in shown.text
    email = shown.text.split('data-column="email"')[1].split("</tr>")[0]
    assert "email" in email.split("<td>")[-1]


def test_an_earlier_version_is_previewed_as_it_was(client: TestClient, services: Services) -> None:
    dataset_id = _orders(services)
    sign_in_as(client, services, "acme", role="analyst")
    page = client.get(f"/datasets/{dataset_id}").text
    assert '<option value="0">' in page and '<option value="1">' in page
    then = client.get(f"/datasets/{dataset_id}/as-of", params={"version": 0}, headers={"HX-Request": "true"})
    assert then.status_code == 200 and "As of version 0" in then.text
    assert "north" in then.text and "east" not in then.text
    now = client.get(f"/datasets/{dataset_id}/as-of", params={"version": 1}, headers={"HX-Request": "true"})
    assert "east" in now.text
    missing = client.get(f"/datasets/{dataset_id}/as-of", params={"version": 99}, headers={"HX-Request": "true"})
    assert missing.status_code in (400, 404) and "data-code=" in missing.text


def test_another_tenants_dataset_its_profile_and_versions_are_not_found(client: TestClient, services: Services) -> None:
    dataset_id = _orders(services)
    sign_in_as(client, services, "globex")
    assert client.get(f"/datasets/{dataset_id}").status_code == 404
    assert client.get(f"/datasets/{dataset_id}/profile").status_code == 404
    assert client.get(f"/datasets/{dataset_id}/as-of", params={"version": 0}).status_code == 404
