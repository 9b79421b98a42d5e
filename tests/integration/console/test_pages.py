"""The console's pages over the real ASGI app: signing in, cookies, CSRF, roles and the pages' content."""

from __future__ import annotations

from fastapi.testclient import TestClient

from servicetsunami.services.container import Services
from servicetsunami.services.identity import tenants
from tests.integration.api.support import SALES_CSV, make_user
from tests.integration.console.conftest import csrf_of, sign_in, sign_in_as


def _upload(client: TestClient, name: str = "sales", data: bytes = SALES_CSV) -> None:
    token = csrf_of(client.get("/datasets").text)
    answer = client.post(
        "/datasets",
        files={"file": (f"{name}.csv", data, "text/csv")},
        data={"csrf_token": token, "name": name},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200, answer.text


def test_a_page_without_a_session_sends_you_to_sign_in_and_back(client: TestClient) -> None:
    answer = client.get("/datasets")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=%2Fdatasets"
    htmx = client.get("/datasets", headers={"HX-Request": "true"})
    assert htmx.headers["hx-redirect"] == "/signin?next=%2Fdatasets"


def test_signing_in_sets_cookies_no_script_can_read_and_opens_the_overview(
    client: TestClient, services: Services
) -> None:
    email, password = make_user(services, "acme")
    form = client.get("/signin")
    token = form.text.split('name="signin_token" value="')[1].split('"')[0]
    answer = client.post(
        "/signin", data={"signin_token": token, "email": email, "password": password, "next": "/datasets"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/datasets"
    cookies = answer.headers.get_list("set-cookie")
    session = [c for c in cookies if c.startswith("tsunami_session=")]
    assert session and all("HttpOnly" in c and "SameSite=lax" in c and "Path=/" in c for c in session)
    assert "Secure" not in session[0]  # plain HTTP here; over HTTPS the cookie is Secure
    overview = client.get("/")
    assert overview.status_code == 200
    assert "acme" in overview.text and "data-code" not in overview.text


def test_a_wrong_password_is_refused_with_the_apis_code_and_sets_no_session(
    client: TestClient, services: Services
) -> None:
    email, _ = make_user(services, "acme")
    form = client.get("/signin")
    token = form.text.split('name="signin_token" value="')[1].split('"')[0]
    answer = client.post("/signin", data={"signin_token": token, "email": email, "password": "wrong-password"})
    assert answer.status_code == 401
    assert 'data-code="unauthenticated"' in answer.text
    assert not any(c.startswith("tsunami_session=") for c in answer.headers.get_list("set-cookie"))


def test_a_sign_in_form_not_rendered_by_us_is_refused(client: TestClient, services: Services) -> None:
    email, password = make_user(services, "acme")
    answer = client.post("/signin", data={"signin_token": "forged", "email": email, "password": password})
    assert answer.status_code == 403
    assert client.get("/").status_code == 303


def test_an_api_key_signs_in_for_automation(client: TestClient, services: Services) -> None:
    tenants.create_tenant(services.store, "acme")
    key = tenants.create_api_key(services.store, tenant_slug="acme", name="console", role="engineer").plaintext
    sign_in(client, api_key=key)
    page = client.get("/datasets")
    assert page.status_code == 200 and "engineer" in page.text


def test_every_page_forbids_inline_scripts_and_frames(client: TestClient, services: Services) -> None:
    pages = [client.get("/signin")]
    sign_in_as(client, services, "acme")
    pages += [client.get(path) for path in ("/", "/datasets", "/sql")]
    for page in pages:
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy


def test_a_write_without_the_pages_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, services: Services
) -> None:
    sign_in_as(client, services, "acme")
    forged = client.post(
        "/datasets", files={"file": ("x.csv", SALES_CSV, "text/csv")}, data={"csrf_token": "1.2.3", "name": "x"}
    )
    assert forged.status_code == 403 and 'data-code="permission_denied"' in forged.text
    no_token = client.post("/sql", data={"sql": "SELECT 1"})
    assert no_token.status_code == 403
    as_multipart = client.post("/sql", files={"sql": (None, "SELECT 1")})  # only an upload reads its own field
    assert as_multipart.status_code == 403
    assert "No datasets yet" in client.get("/datasets").text


def test_a_csrf_token_is_good_only_for_the_person_it_was_rendered_for(client: TestClient, services: Services) -> None:
    sign_in_as(client, services, "acme")
    acme_token = csrf_of(client.get("/sql").text)
    client.cookies.clear()
    sign_in_as(client, services, "globex")
    answer = client.post("/sql", data={"sql": "SELECT 1", "csrf_token": acme_token})
    assert answer.status_code == 403


def test_upload_then_list_preview_and_query_a_dataset(client: TestClient, services: Services) -> None:
    sign_in_as(client, services, "acme")
    _upload(client)
    listing = client.get("/datasets")
    assert "bronze.sales" in listing.text
    dataset_id = listing.text.split('href="/datasets/')[1].split('"')[0]
    detail = client.get(f"/datasets/{dataset_id}")
    assert detail.status_code == 200 and "amount" in detail.text and "north" in detail.text
    token = csrf_of(detail.text)
    result = client.post(
        "/sql",
        data={"sql": "SELECT region, SUM(amount) AS total FROM bronze.sales GROUP BY region ORDER BY region"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert result.status_code == 200
    assert "<html" not in result.text  # a fragment for htmx to swap in
    assert "17.5" in result.text and "total" in result.text


def test_sql_the_guard_refuses_shows_its_code(client: TestClient, services: Services) -> None:
    sign_in_as(client, services, "acme")
    token = csrf_of(client.get("/sql").text)
    answer = client.post("/sql", data={"sql": "DROP TABLE bronze.sales", "csrf_token": token})
    assert answer.status_code in (400, 403, 422)
    assert "data-code=" in answer.text


def test_an_analyst_sees_no_upload_form_and_the_server_refuses_one_anyway(
    client: TestClient, services: Services
) -> None:
    sign_in_as(client, services, "acme", role="analyst")
    page = client.get("/datasets")
    assert 'id="upload"' not in page.text
    answer = client.post(
        "/datasets",
        files={"file": ("x.csv", SALES_CSV, "text/csv")},
        data={"csrf_token": csrf_of(page.text), "name": "x"},
    )
    assert answer.status_code == 403 and 'data-code="permission_denied"' in answer.text


def test_one_tenants_dataset_is_not_found_from_another(client: TestClient, services: Services) -> None:
    sign_in_as(client, services, "acme")
    _upload(client)
    dataset_id = client.get("/datasets").text.split('href="/datasets/')[1].split('"')[0]
    client.cookies.clear()
    sign_in_as(client, services, "globex")
    assert client.get(f"/datasets/{dataset_id}").status_code == 404


def test_signing_out_ends_the_session(client: TestClient, services: Services) -> None:
    sign_in_as(client, services, "acme")
    token = csrf_of(client.get("/").text)
    assert client.post("/signout", data={"csrf_token": token}).status_code == 303
    assert client.get("/").status_code == 303


def test_an_expired_access_token_is_renewed_from_the_refresh_cookie(client: TestClient, services: Services) -> None:
    sign_in_as(client, services, "acme")
    domain = next(c.domain for c in client.cookies.jar if c.name == "tsunami_session")
    client.cookies.set("tsunami_session", "not-a-token-anymore", domain=domain)
    page = client.get("/datasets")
    assert page.status_code == 200
    assert any(c.startswith("tsunami_refresh=") for c in page.headers.get_list("set-cookie"))


def test_after_sign_in_only_a_path_on_this_site_is_followed(client: TestClient, services: Services) -> None:
    email, password = make_user(services, "acme")
    form = client.get("/signin")
    token = form.text.split('name="signin_token" value="')[1].split('"')[0]
    answer = client.post(
        "/signin",
        data={"signin_token": token, "email": email, "password": password, "next": "//evil.example/x"},
    )
    assert answer.headers["location"] == "/"
