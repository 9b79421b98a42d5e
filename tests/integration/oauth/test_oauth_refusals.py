"""What the authorization server and /mcp refuse: each refusal with its OAuth error code (or our
error code on the console), and nothing issued."""

from __future__ import annotations

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from servicetsunami.services.container import Services
from servicetsunami.services.identity import users
from servicetsunami.settings import Settings
from tests.helpers import altered, make_principal
from tests.integration.api.support import make_user
from tests.integration.live_server import live_server
from tests.integration.oauth.support import (
    CSRF,
    REDIRECT_URI,
    SEALED,
    MemoryStorage,
    Person,
    Pkce,
    authorization_url,
    exchange,
    oauth_client,
    redirect_params,
    register,
)
from tests.integration.oauth.test_oauth_flow import post_initialize


def client_id_of(base_url: str) -> str:
    registered = register(base_url)
    assert registered.status_code == 201, registered.text
    return str(registered.json()["client_id"])


def code_for(person: Person, client_id: str, pkce: Pkce) -> str:
    return redirect_params(person.authorize(authorization_url(client_id, pkce)))["code"]


def test_a_code_exchanged_with_the_wrong_pkce_verifier_is_refused(base_url: str, person: Person) -> None:
    client_id, pkce = client_id_of(base_url), Pkce.new()
    code = code_for(person, client_id, pkce)
    refused = exchange(base_url, client_id, code, Pkce.new().verifier)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert "access_token" not in refused.json()


def test_a_code_used_twice_is_refused_and_ends_the_tokens_it_gave(base_url: str, person: Person) -> None:
    client_id, pkce = client_id_of(base_url), Pkce.new()
    code = code_for(person, client_id, pkce)
    first = exchange(base_url, client_id, code, pkce.verifier)
    assert first.status_code == 200, first.text
    again = exchange(base_url, client_id, code, pkce.verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert post_initialize(base_url, first.json()["access_token"]).status_code == 401


def test_a_redirect_uri_the_client_did_not_register_is_refused_without_redirecting(
    base_url: str, person: Person
) -> None:
    client_id = client_id_of(base_url)
    url = authorization_url(client_id, Pkce.new(), redirect_uri="https://attacker.example/steal")
    answer = person.authorize(url)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert person.consent_pages == []


def test_a_request_for_another_resource_is_refused_with_invalid_target(base_url: str, person: Person) -> None:
    client_id = client_id_of(base_url)
    url = authorization_url(client_id, Pkce.new(), resource="https://other.example/mcp")
    params = redirect_params(person.authorize(url))
    assert params["error"] == "invalid_target"
    assert person.consent_pages == []


def test_deny_sends_the_browser_back_with_access_denied_and_the_state(base_url: str, person: Person) -> None:
    person.decision = "deny"
    client_id = client_id_of(base_url)
    params = redirect_params(person.authorize(authorization_url(client_id, Pkce.new(), state="keep-me")))
    assert params["error"] == "access_denied"
    assert params["state"] == "keep-me"
    assert "code" not in params


def test_a_consent_posted_without_its_csrf_token_is_refused(base_url: str, person: Person) -> None:
    client_id = client_id_of(base_url)
    person.decision = "deny"
    person.authorize(authorization_url(client_id, Pkce.new()))  # signs in on the way
    consent = person.http.get(person.http.get(authorization_url(client_id, Pkce.new())).headers["location"])
    sealed = SEALED.search(consent.text)
    assert sealed is not None and CSRF.search(consent.text) is not None
    refused = person.http.post("/oauth/consent", data={"request": sealed.group(1), "decision": "allow"})
    assert refused.status_code == 403
    assert 'data-code="permission_denied"' in refused.text
    assert "location" not in refused.headers


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://evil.example/callback", "https://app.example/cb#fragment", "ftp://app.example/cb"],
)
def test_registering_a_redirect_uri_that_is_not_https_or_loopback_is_refused(base_url: str, redirect_uri: str) -> None:
    refused = register(base_url, redirect_uris=[redirect_uri])
    assert refused.status_code == 400
    assert refused.json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata")
    if redirect_uri.startswith("http"):
        assert refused.json()["error"] == "invalid_redirect_uri"


def test_a_token_for_another_audience_is_refused_at_mcp_and_login_tokens_and_keys_still_work(
    services: Services, base_url: str
) -> None:
    assert services.tokens is not None
    principal, key = make_principal(services, "acme", "engineer")
    email, password = make_user(services, "acme", role="engineer")
    login = httpx.post(f"{base_url}/api/v1/auth/login", json={"email": email, "password": password}, timeout=20)
    rest_token = login.json()["access_token"]
    claims = services.tokens.claims(rest_token)
    elsewhere, _ = services.tokens.issue_granted(
        user_id=str(claims["sub"]).removeprefix("user:"),
        tenant_id=principal.tenant_id,
        tenant_slug=principal.tenant_slug,
        role="engineer",
        resource="https://other.example/mcp",
        grant_id="00000000-0000-0000-0000-000000000000",
        client_id="someone",
        scopes=["read", "write"],
    )
    refused = post_initialize(base_url, elsewhere)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"
    assert post_initialize(base_url, rest_token).status_code == 200
    assert post_initialize(base_url, key).status_code == 200


async def test_an_oauth_token_is_refused_by_the_rest_api(base_url: str, person: Person) -> None:
    storage = MemoryStorage()
    async with Client(StreamableHttpTransport(f"{base_url}/mcp", auth=oauth_client(base_url, person, storage))) as c:
        await c.list_tools()
    assert storage.tokens is not None
    me = httpx.get(
        f"{base_url}/api/v1/auth/me", headers={"Authorization": f"Bearer {storage.tokens.access_token}"}, timeout=20
    )
    assert me.status_code == 401


async def test_an_analyst_who_consents_gives_the_client_only_the_analysts_tools(
    services: Services, base_url: str
) -> None:
    email, password = make_user(services, "acme", role="analyst")
    person = Person(base_url, email, password)
    try:
        auth = oauth_client(base_url, person, MemoryStorage())
        async with Client(StreamableHttpTransport(f"{base_url}/mcp", auth=auth)) as client:
            names = {tool.name for tool in await client.list_tools()}
            refused = await client.call_tool_mcp("sync_table_to_bronze", {"connection_id": "x", "table": "y"})
    finally:
        person.close()
    assert "query_sql" in names
    assert "sync_table_to_bronze" not in names and "upload_file" not in names
    assert refused.is_error


def test_someone_signed_in_with_an_api_key_cannot_consent(services: Services, base_url: str) -> None:
    _, key = make_principal(services, "acme", "admin")
    client_id = client_id_of(base_url)
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=20) as http:
        form = http.get("/signin")
        token = form.text.split('name="signin_token" value="', 1)[1].split('"', 1)[0]
        http.post("/signin", data={"signin_token": token, "api_key": key, "next": "/"})
        consent = http.get(http.get(authorization_url(client_id, Pkce.new())).headers["location"])
        assert consent.status_code == 200
        assert 'id="consent-allow"' not in consent.text
        sealed, csrf = SEALED.search(consent.text), CSRF.search(consent.text)
        assert sealed is not None and csrf is not None
        refused = http.post(
            "/oauth/consent", data={"csrf_token": csrf.group(1), "request": sealed.group(1), "decision": "allow"}
        )
    assert refused.status_code == 403
    assert 'data-code="permission_denied"' in refused.text


def test_registrations_from_one_address_are_rate_limited(settings: Settings) -> None:
    limited = settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"oauth_register_rate_limit": "2/hour"})}
    )
    services = Services.open(limited)
    try:
        with live_server(services) as url:
            answers = [register(url).status_code for _ in range(3)]
            last = register(url)
    finally:
        services.close()
    assert answers == [201, 201, 429]
    assert last.json()["error"] == "rate_limited"
    assert int(last.headers["retry-after"]) > 0


def test_with_oauth_off_there_is_no_authorization_server(settings: Settings) -> None:
    off = settings.model_copy(update={"auth": settings.auth.model_copy(update={"oauth_enabled": False})})
    services = Services.open(off)
    try:
        with live_server(services) as url:
            metadata = httpx.get(f"{url}/.well-known/oauth-protected-resource/mcp", timeout=20).json()
            authorize = httpx.get(f"{url}/.well-known/oauth-authorization-server", timeout=20)
    finally:
        services.close()
    assert "authorization_servers" not in metadata
    assert authorize.status_code == 404


def test_a_client_revoking_its_refresh_token_at_revoke_ends_its_grant(base_url: str, person: Person) -> None:
    client_id, pkce = client_id_of(base_url), Pkce.new()
    tokens = exchange(base_url, client_id, code_for(person, client_id, pkce), pkce.verifier).json()
    revoked = httpx.post(
        f"{base_url}/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token", "client_id": client_id},
        timeout=20,
    )
    assert revoked.status_code == 200
    assert post_initialize(base_url, tokens["access_token"]).status_code == 401


def test_another_client_cannot_revoke_or_use_a_clients_tokens(base_url: str, person: Person) -> None:
    client_id, other, pkce = client_id_of(base_url), client_id_of(base_url), Pkce.new()
    tokens = exchange(base_url, client_id, code_for(person, client_id, pkce), pkce.verifier).json()
    httpx.post(f"{base_url}/revoke", data={"token": tokens["access_token"], "client_id": other}, timeout=20)
    assert post_initialize(base_url, tokens["access_token"]).status_code == 200
    stolen = httpx.post(
        f"{base_url}/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": other},
        timeout=20,
    )
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("how", ["post", "basic"])
def test_a_confidential_client_with_a_wrong_secret_gets_no_tokens(base_url: str, person: Person, how: str) -> None:
    registered = register(base_url, token_endpoint_auth_method=f"client_secret_{how}").json()
    client_id, secret, pkce = registered["client_id"], registered["client_secret"], Pkce.new()
    code = code_for(person, client_id, pkce)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": client_id,
        "code_verifier": pkce.verifier,
    }

    def token(with_secret: str) -> httpx.Response:
        if how == "basic":
            return httpx.post(f"{base_url}/token", data=form, auth=(client_id, with_secret), timeout=20)
        return httpx.post(f"{base_url}/token", data={**form, "client_secret": with_secret}, timeout=20)

    wrong = token(altered(secret))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    right = token(secret)
    assert right.status_code == 200, right.text


def test_disabling_the_user_ends_the_access_of_the_apps_they_allowed(services: Services, base_url: str) -> None:
    email, password = make_user(services, "acme", role="engineer")
    person = Person(base_url, email, password)
    try:
        client_id, pkce = client_id_of(base_url), Pkce.new()
        tokens = exchange(base_url, client_id, code_for(person, client_id, pkce), pkce.verifier).json()
    finally:
        person.close()
    admin, _ = make_principal(services, "acme", "admin")
    user = next(u for u in users.list_users(services, admin) if u.email == email)
    users.update_user(services, admin, user.id, active=False)
    assert post_initialize(base_url, tokens["access_token"]).status_code == 401
    refreshed = httpx.post(
        f"{base_url}/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id},
        timeout=20,
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
