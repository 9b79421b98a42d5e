"""Volume files over REST (``/api/v1/volumes``): upload streamed and capped, list, download streamed,
delete; paths inside the caller's own catalog only, with no way out by ``..``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.services.container import Services
from tests.integration.api.support import login

FILES = "/api/v1/volumes/files/tenant_acme/bronze/landing"


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services=services)) as c:
        yield c


def test_a_file_is_uploaded_listed_downloaded_and_deleted(client: TestClient, services: Services) -> None:
    acme = login(client, services, "acme", role="engineer")
    data = bytes(range(256)) * 5000  # 1.28 MB: more than one chunk each way
    stored = client.put(f"{FILES}/in/raw.bin", content=data, headers=acme.headers)
    assert stored.status_code == 201, stored.text
    assert stored.json() == {"path": "/Volumes/tenant_acme/bronze/landing/in/raw.bin", "bytes": len(data)}
    top = client.get("/api/v1/volumes/directories/tenant_acme/bronze/landing", headers=acme.headers)
    assert [f["name"] for f in top.json()["files"]] == ["in/"]
    inside = client.get("/api/v1/volumes/directories/tenant_acme/bronze/landing/in", headers=acme.headers).json()
    assert [(f["name"], f["size"]) for f in inside["files"]] == [("raw.bin", len(data))]
    got = client.get(f"{FILES}/in/raw.bin", headers=acme.headers)
    assert got.status_code == 200 and got.content == data
    again = client.put(f"{FILES}/in/raw.bin", content=b"new", headers=acme.headers)
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    replaced = client.put(f"{FILES}/in/raw.bin", params={"overwrite": "true"}, content=b"new", headers=acme.headers)
    assert replaced.status_code == 201 and client.get(f"{FILES}/in/raw.bin", headers=acme.headers).content == b"new"
    assert client.delete(f"{FILES}/in/raw.bin", headers=acme.headers).status_code == 204
    gone = client.get(f"{FILES}/in/raw.bin", headers=acme.headers)
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")
    assert client.delete(f"{FILES}/in/raw.bin", headers=acme.headers).json()["code"] == "not_found"


def test_a_folder_is_deleted_only_with_recurse(client: TestClient, services: Services) -> None:
    acme = login(client, services, "acme", role="engineer")
    for name in ("a.csv", "b.csv"):
        assert client.put(f"{FILES}/batch/{name}", content=b"x,y\n", headers=acme.headers).status_code == 201
    assert client.delete(f"{FILES}/batch", headers=acme.headers).status_code == 404
    assert client.delete(f"{FILES}/batch", params={"recurse": "true"}, headers=acme.headers).status_code == 204
    listed = client.get("/api/v1/volumes/directories/tenant_acme/bronze/landing", headers=acme.headers)
    assert listed.json()["files"] == []


def test_another_tenants_volume_is_not_found_either_way(client: TestClient, services: Services) -> None:
    acme = login(client, services, "acme", role="engineer")
    globex = login(client, services, "globex", role="engineer")
    assert client.put(f"{FILES}/secret.txt", content=b"acme only", headers=acme.headers).status_code == 201
    for method, url in (
        ("GET", f"{FILES}/secret.txt"),
        ("GET", "/api/v1/volumes/directories/tenant_acme/bronze/landing"),
        ("DELETE", f"{FILES}/secret.txt"),
        ("PUT", f"{FILES}/planted.txt"),
    ):
        answer = client.request(method, url, content=b"x" if method == "PUT" else None, headers=globex.headers)
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found"), (method, url)
    assert client.get(f"{FILES}/secret.txt", headers=acme.headers).content == b"acme only"


@pytest.mark.parametrize(
    "path",
    [
        "tenant_acme/bronze/landing/%2e%2e/%2e%2e/%2e%2e/tenant_globex/bronze/landing/x",
        "tenant_acme/bronze/landing/%2e/x",
        "tenant_acme/bronze/%2e%2e/silver/landing/x",
        "tenant_acme/bronze/landing/a/%2e%2e%2f%2e%2e%2fx",
    ],
)
def test_a_path_that_climbs_out_is_refused(client: TestClient, services: Services, path: str) -> None:
    acme = login(client, services, "acme", role="engineer")
    for method in ("GET", "PUT", "DELETE"):
        answer = client.request(
            method, f"/api/v1/volumes/files/{path}", content=b"x" if method == "PUT" else None, headers=acme.headers
        )
        assert answer.status_code in (400, 404), (method, answer.text)
        assert answer.json()["code"] in ("invalid_input", "not_found"), (method, answer.text)
    assert services.engine.list_files("tenant_acme", "bronze", "landing") == []


def test_an_upload_past_the_limit_is_refused_and_leaves_nothing(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.settings.ingest, "max_upload_bytes", 1000)
    with TestClient(create_app(services.settings, services=services)) as client:
        acme = login(client, services, "acme", role="engineer")

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(10):
                yield b"x" * 500

        answer = client.put(f"{FILES}/big.bin", content=chunks(), headers=acme.headers)
        assert (answer.status_code, answer.json()["code"]) == (413, "limit_exceeded")
        declared = client.put(f"{FILES}/big.bin", content=b"x" * 5000, headers=acme.headers)
        assert declared.status_code == 413
        assert client.put(f"{FILES}/small.bin", content=b"x" * 900, headers=acme.headers).status_code == 201
    assert [f.path.rsplit("/", 1)[-1] for f in services.engine.list_files("tenant_acme", "bronze", "landing")] == [
        "small.bin"
    ]
    spool = services.settings.resolved_home / "tmp" / "uploads"
    assert not any(spool.glob("volume-*"))


def test_an_analyst_reads_volume_files_but_cannot_write_them(client: TestClient, services: Services) -> None:
    engineer = login(client, services, "acme", role="engineer")
    analyst = login(client, services, "acme", role="analyst")
    assert client.put(f"{FILES}/r.txt", content=b"read me", headers=engineer.headers).status_code == 201
    assert client.get(f"{FILES}/r.txt", headers=analyst.headers).content == b"read me"
    assert client.put(f"{FILES}/w.txt", content=b"no", headers=analyst.headers).status_code == 403
    assert client.delete(f"{FILES}/r.txt", headers=analyst.headers).status_code == 403
