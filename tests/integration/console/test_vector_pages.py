"""The console's vector index pages over the ASGI app: the list with states, an index created from
the list's form (engineers only, refusals shown with the service's code), an index searched in
words with scores, "Sync now" for engineers only, empty states, and another tenant's index."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from servicetsunami.services.container import Services
from servicetsunami.services.vectors import indexes
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.console.conftest import csrf_of, sign_in_as
from tests.integration.vectors.conftest import build_index, built, write_source

DOCS = [
    {"id": 1, "body": "how to reset a forgotten password", "topic": "account"},
    {"id": 2, "body": "refunds are paid back within five days", "topic": "billing"},
    {"id": 3, "body": "change the invoice address of a company", "topic": "billing"},
]


def _index(services: Services) -> Principal:
    owner = make_principal(services, "acme", role="engineer")[0]
    write_source(services, owner, "docs", DOCS)
    build_index(services, owner, "help", "gold.docs")
    return owner


def test_the_indexes_are_listed_with_their_state_and_an_index_is_searched_in_words(
    client: TestClient, services: Services
) -> None:
    _index(services)
    sign_in_as(client, services, "acme", role="analyst")
    listed = client.get("/vectors").text
    row = listed.split('data-index="help"')[1].split("</tr>")[0]
    assert "ready" in row and "gold.docs" in row
    page = client.get("/vectors/help").text
    assert 'data-state="ready"' in page and "Sync now" not in page  # an analyst sees no write button
    found = client.get("/vectors/help/search", params={"q": "password reset", "k": 2}, headers={"HX-Request": "true"})
    assert found.status_code == 200
    scores = [float(s) for s in re.findall(r'data-score="([^"]+)"', found.text)]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True)
    first = found.text.split("<tbody>")[1].split("</tr>")[0]
    assert "forgotten password" in first
    empty = client.get("/vectors/help/search", params={"q": " "}, headers={"HX-Request": "true"})
    assert empty.status_code == 400 and 'data-code="invalid_input"' in empty.text


def test_an_engineer_syncs_an_index_and_an_analyst_is_refused(client: TestClient, services: Services) -> None:
    _index(services)
    sign_in_as(client, services, "acme", role="engineer")
    page = client.get("/vectors/help").text
    assert "Sync now" in page
    synced = client.post("/vectors/help/sync", data={"csrf_token": csrf_of(page)})
    assert synced.status_code == 303 and synced.headers["location"] == "/vectors/help"
    client.cookies.clear()
    sign_in_as(client, services, "acme", role="analyst")
    refused = client.post("/vectors/help/sync", data={"csrf_token": csrf_of(client.get("/vectors").text)})
    assert refused.status_code == 403 and 'data-code="permission_denied"' in refused.text


def test_no_indexes_yet_says_how_to_make_one(client: TestClient, services: Services) -> None:
    sign_in_as(client, services, "acme", role="engineer")
    assert (
        "No vector indexes yet" in client.get("/vectors").text
        and "tsunami vectors create" in client.get("/vectors").text
    )


def test_another_tenants_index_is_not_found(client: TestClient, services: Services) -> None:
    _index(services)
    sign_in_as(client, services, "globex")
    assert "help" not in client.get("/vectors").text.split("<main")[1]
    assert client.get("/vectors/help").status_code == 404
    assert client.get("/vectors/help/search", params={"q": "password"}).status_code == 404


def _create_form(**fields: str) -> dict[str, str]:
    return {"name": "help", "source_table": "gold.docs", "primary_key": "id", "text_column": "body"} | fields


def test_an_engineer_creates_an_index_from_the_list_and_it_is_built_and_searchable(
    client: TestClient, services: Services
) -> None:
    owner = make_principal(services, "acme", role="engineer")[0]
    write_source(services, owner, "docs", DOCS)
    sign_in_as(client, services, "acme", role="engineer")
    listed = client.get("/vectors").text
    assert 'action="/vectors"' in listed
    form = _create_form(csrf_token=csrf_of(listed), columns_to_sync="topic", embedding_model="", sync_mode="triggered")
    created = client.post("/vectors", data=form)
    assert created.status_code == 303 and created.headers["location"] == "/vectors/help"
    index = indexes.describe_vector_index(services, owner, "help")
    assert (index.source_table, index.primary_key, index.text_column, index.columns) == (
        f"{owner.catalog}.gold.docs",
        "id",
        "body",
        ["id", "body", "topic"],
    )
    assert index.last_run_id is not None
    built(services, owner, index.last_run_id)
    row = client.get("/vectors").text.split('data-index="help"')[1].split("</tr>")[0]
    assert "ready" in row
    found = client.get("/vectors/help/search", params={"q": "password reset"}, headers={"HX-Request": "true"})
    assert "forgotten password" in found.text.split("<tbody>")[1].split("</tr>")[0]


def test_an_index_the_service_refuses_shows_its_code_and_keeps_what_was_typed(
    client: TestClient, services: Services
) -> None:
    _index(services)
    sign_in_as(client, services, "acme", role="engineer")
    token = csrf_of(client.get("/vectors").text)
    missing = client.post("/vectors", data=_create_form(name="other", text_column="nope", csrf_token=token))
    assert missing.status_code == 400 and 'data-code="invalid_input"' in missing.text
    assert 'value="other"' in missing.text and 'value="nope"' in missing.text
    taken = client.post("/vectors", data=_create_form(csrf_token=token))
    assert taken.status_code == 409 and 'data-code="conflict"' in taken.text
    unknown = client.post("/vectors", data=_create_form(name="x", source_table="gold.absent", csrf_token=token))
    assert unknown.status_code == 404 and 'data-code="not_found"' in unknown.text


def test_an_analyst_sees_no_create_form_and_a_forged_one_is_refused(client: TestClient, services: Services) -> None:
    owner = make_principal(services, "acme", role="engineer")[0]
    write_source(services, owner, "docs", DOCS)
    sign_in_as(client, services, "acme", role="analyst")
    listed = client.get("/vectors").text
    assert 'action="/vectors"' not in listed
    forged = client.post("/vectors", data=_create_form(csrf_token=csrf_of(listed)))
    assert forged.status_code == 403 and 'data-code="permission_denied"' in forged.text
    client.cookies.clear()
    sign_in_as(client, services, "acme", role="engineer")
    no_token = client.post("/vectors", data=_create_form())
    assert no_token.status_code == 403 and 'data-code="permission_denied"' in no_token.text
    assert indexes.list_vector_indexes(services, owner).indexes == []
