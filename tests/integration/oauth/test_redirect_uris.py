"""Which redirect URIs ``/authorize`` accepts: a native app listening on a loopback address may come
back on any port (RFC 8252 section 7.3: it picks a free one each time), with the registered scheme,
host and path; every other redirect URI must be exactly one the client registered."""

from __future__ import annotations

import pytest

from tests.integration.oauth.support import Person, Pkce, authorization_url, exchange, redirect_params, register


def client_with(base_url: str, redirect_uri: str) -> str:
    registered = register(base_url, redirect_uris=[redirect_uri])
    assert registered.status_code == 201, registered.text
    return str(registered.json()["client_id"])


@pytest.mark.parametrize(
    ("registered", "used"),
    [
        ("http://127.0.0.1/callback", "http://127.0.0.1:51234/callback"),
        ("http://127.0.0.1:43117/callback", "http://127.0.0.1:51234/callback"),
        ("http://localhost:8123/callback", "http://localhost:40111/callback"),
        ("http://[::1]/callback", "http://[::1]:40111/callback"),
    ],
)
def test_a_native_app_on_a_loopback_address_comes_back_on_any_port(
    base_url: str, person: Person, registered: str, used: str
) -> None:
    client_id, pkce = client_with(base_url, registered), Pkce.new()
    answer = person.authorize(authorization_url(client_id, pkce, redirect_uri=used))
    code = redirect_params(answer, to=used)["code"]
    tokens = exchange(base_url, client_id, code, pkce.verifier, redirect_uri=used)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["access_token"]


@pytest.mark.parametrize(
    ("registered", "used"),
    [
        ("http://127.0.0.1/callback", "http://127.0.0.1:51234/elsewhere"),  # another path
        ("http://127.0.0.1/callback", "http://127.0.0.1:51234/callback?next=x"),  # another query
        ("http://127.0.0.1/callback", "http://localhost:51234/callback"),  # another loopback host
        ("http://localhost/callback", "https://localhost:51234/callback"),  # another scheme
        ("https://app.example/callback", "https://app.example:8443/callback"),  # not loopback: exact only
    ],
)
def test_a_redirect_uri_that_differs_in_more_than_a_loopback_port_is_refused_without_redirecting(
    base_url: str, person: Person, registered: str, used: str
) -> None:
    client_id = client_with(base_url, registered)
    answer = person.authorize(authorization_url(client_id, Pkce.new(), redirect_uri=used))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert person.consent_pages == []


def test_a_code_is_exchanged_only_with_the_redirect_uri_it_was_given_to(base_url: str, person: Person) -> None:
    client_id, pkce = client_with(base_url, "http://127.0.0.1/callback"), Pkce.new()
    used = "http://127.0.0.1:51234/callback"
    code = redirect_params(person.authorize(authorization_url(client_id, pkce, redirect_uri=used)), to=used)["code"]
    refused = exchange(base_url, client_id, code, pkce.verifier, redirect_uri="http://127.0.0.1:51235/callback")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request"
