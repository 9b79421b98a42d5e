"""The app routes a request to the REST API only under /api/v1 (the API's routers are passed over
with one prefix test), and the same holds when a proxy serves the app under a root path."""

from __future__ import annotations

from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.services.container import Services
from tests.integration.api.support import login


def test_api_routes_answer_under_the_prefix_and_nowhere_else(client: TestClient, services: Services) -> None:
    admin = login(client, services, "acme")
    assert client.get("/api/v1/tables", headers=admin.headers).status_code == 200
    for path in ("/tables", "/v1/tables", "/api/tables", "/api/v1tables", "/API/v1/tables"):
        answer = client.get(path, headers=admin.headers)
        assert answer.status_code == 404, path
    assert client.get("/signin").status_code == 200  # a console page, past the API's routers
    assert client.get("/health").status_code == 200


def test_behind_a_proxy_prefix_the_api_and_the_console_still_answer(client: TestClient, services: Services) -> None:
    admin = login(client, services, "acme")
    with TestClient(create_app(services.settings, services=services), root_path="/proxy") as proxied:
        # as uvicorn --root-path passes them: the path keeps the prefix, root_path names it
        assert proxied.get("/proxy/api/v1/tables", headers=admin.headers).status_code == 200
        assert proxied.get("/proxy/signin").status_code == 200
        assert proxied.get("/proxy/tables", headers=admin.headers).status_code == 404
