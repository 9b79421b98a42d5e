"""Runs over REST: followed, long-polled, listed page by page, canceled; another tenant sees nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from servicetsunami.services.container import Services
from servicetsunami.services.runs import service as runs
from tests.integration.api.support import login
from tests.integration.runs import support  # noqa: F401  # importing it registers the test run kinds


def test_a_run_is_long_polled_until_it_ends_and_listed_by_kind(client: TestClient, services: Services) -> None:
    acme = login(client, services, "acme")
    principal = services.authenticate(acme.access_token)
    run_id = runs.submit(services, principal, "test_echo", params={"x": 1})
    reply = client.get(f"/api/v1/runs/{run_id}", params={"wait_seconds": 30}, headers=acme.headers)
    assert reply.status_code == 200, reply.text
    assert (reply.json()["state"], reply.json()["result"]) == ("succeeded", {"echo": {"x": 1}})
    listed = client.get("/api/v1/runs", params={"kind": "test_echo"}, headers=acme.headers).json()
    assert [r["run_id"] for r in listed["items"]] == [run_id]
    assert client.get("/api/v1/runs", params={"kind": "sync"}, headers=acme.headers).json()["items"] == []


def test_runs_are_paged_newest_first_without_repeats(client: TestClient, services: Services) -> None:
    acme = login(client, services, "acme")
    principal = services.authenticate(acme.access_token)
    made = [runs.submit(services, principal, "test_echo", params={"i": i}) for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/runs", params=params, headers=acme.headers).json()
        seen += [r["run_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    bad = client.get("/api/v1/runs", params={"cursor": "not-a-cursor"}, headers=acme.headers)
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_input")


def test_a_running_run_is_canceled_and_another_tenant_cannot_see_or_cancel_it(
    client: TestClient, services: Services
) -> None:
    acme, globex = login(client, services, "acme"), login(client, services, "globex")
    run_id = runs.submit(services, services.authenticate(acme.access_token), "test_block", params={})
    assert client.get(f"/api/v1/runs/{run_id}", headers=globex.headers).json()["code"] == "not_found"
    refused = client.post(f"/api/v1/runs/{run_id}/cancel", headers=globex.headers)
    assert (refused.status_code, refused.json()["code"]) == (404, "not_found")
    canceled = client.post(f"/api/v1/runs/{run_id}/cancel", headers=acme.headers)
    assert canceled.status_code == 200 and canceled.json()["state"] == "canceled"
    again = client.post(f"/api/v1/runs/{run_id}/cancel", headers=acme.headers)
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
