"""The OAuth rules that need nothing running: which redirect URIs a client may register and use, which
scopes a request may name and what they let a token do, which client IDs name a metadata document,
and how granted access tokens are bound to their resource and scopes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from servicetsunami.errors import AuthError, InvalidInput, PermissionDenied
from servicetsunami.security.tokens import TokenSigner
from servicetsunami.services.identity.oauth import (
    check_redirect_uri,
    check_scopes,
    effective_scopes,
    redirect_uri_registered,
)
from servicetsunami.services.identity.oauth_documents import is_document_client_id
from servicetsunami.tenancy import ROLE_SCOPES, Role, Scope, principal_for

KEY = b"k" * 48


@pytest.mark.parametrize(
    "uri",
    [
        "https://claude.ai/api/mcp/auth_callback",
        "http://localhost:33418/callback",
        "http://127.0.0.1/cb",
        "http://[::1]:8080/cb",
        "https://app.example/cb?x=1",
    ],
)
def test_https_and_loopback_http_redirect_uris_are_accepted(uri: str) -> None:
    check_redirect_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example/cb",
        "http://localhost.evil.example/cb",
        "https://app.example/cb#frag",
        "javascript:alert(1)",
        "myapp:/callback",
        "https:///nohost",
    ],
)
def test_other_redirect_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidInput):
        check_redirect_uri(uri)


@pytest.mark.parametrize(
    ("uri", "registered"),
    [
        ("http://127.0.0.1:50001/cb", "http://127.0.0.1/cb"),
        ("http://127.0.0.1:50001/cb", "http://127.0.0.1:43117/cb"),
        ("http://localhost:50001/cb", "http://localhost/cb"),
        ("http://[::1]:50001/cb", "http://[::1]:8080/cb"),
        ("https://app.example/cb", "https://app.example/cb"),
    ],
)
def test_a_registered_redirect_uri_matches_and_a_loopback_one_on_any_port(uri: str, registered: str) -> None:
    assert redirect_uri_registered(uri, [registered])


@pytest.mark.parametrize(
    ("uri", "registered"),
    [
        ("http://127.0.0.1:50001/other", "http://127.0.0.1/cb"),
        ("http://localhost:50001/cb", "http://127.0.0.1/cb"),
        ("https://localhost:50001/cb", "http://localhost/cb"),
        ("http://127.0.0.1:50001/cb?x=1", "http://127.0.0.1/cb"),
        ("http://user@127.0.0.1:50001/cb", "http://127.0.0.1/cb"),
        ("http://127.0.0.1:50001/cb#x", "http://127.0.0.1/cb"),
        ("https://app.example:8443/cb", "https://app.example/cb"),
        ("https://localhost:8443/cb", "https://localhost/cb"),
        ("http://127.0.0.1:notaport/cb", "http://127.0.0.1/cb"),
    ],
)
def test_any_other_difference_from_the_registered_redirect_uri_is_no_match(uri: str, registered: str) -> None:
    assert not redirect_uri_registered(uri, [registered])


def test_a_request_naming_no_scope_asks_for_the_registered_ones_or_every_permission() -> None:
    assert check_scopes(None, registered=None) == ["read", "write", "manage"]
    assert check_scopes(None, registered="read offline_access") == ["read", "offline_access"]
    assert check_scopes("write read write", registered=None) == ["write", "read"]


@pytest.mark.parametrize(("requested", "registered"), [("read openid", None), ("admin", None), ("write", "read")])
def test_an_unknown_or_unregistered_scope_is_refused(requested: str, registered: str | None) -> None:
    with pytest.raises(InvalidInput):
        check_scopes(requested, registered=registered)


@pytest.mark.parametrize(
    ("granted", "role", "effective"),
    [
        (["read", "write", "manage", "offline_access"], "engineer", ["read", "write", "offline_access"]),
        (["write", "manage"], "analyst", []),
        (["read"], "admin", ["read"]),
        ([], "engineer", ["read", "write"]),  # a grant kept before scopes were: the role's
    ],
)
def test_a_grant_does_what_both_its_scopes_and_its_users_role_allow(
    granted: list[str], role: str, effective: list[str]
) -> None:
    assert effective_scopes(granted, role) == effective


def test_a_granted_tokens_principal_has_its_scopes_that_its_role_has() -> None:
    signer = _signer()
    token = _granted(signer, "https://a.example/mcp", role="engineer", scopes=("read", "manage"))
    principal, _ = signer.granted_principal(token, resource="https://a.example/mcp")
    assert {scope.value for scope in principal.scopes} == {"read"}


@pytest.mark.parametrize(
    ("client_id", "is_document"),
    [
        ("https://app.example/oauth/client.json", True),
        ("https://app.example/", False),
        ("https://app.example", False),
        ("http://app.example/client.json", False),
        ("0b5c0f3e-6a47-4c55-9d3a-9f6f1f6c2f44", False),
    ],
)
def test_only_https_urls_with_a_path_name_a_metadata_document(client_id: str, is_document: bool) -> None:
    assert is_document_client_id(client_id) is is_document


def _signer() -> TokenSigner:
    return TokenSigner(
        KEY, issuer="servicetsunami", audience="servicetsunami-api", access_seconds=900, catalog_prefix="t_"
    )


def _granted(signer: TokenSigner, resource: str, *, role: str = "analyst", scopes: tuple[str, ...] = ("read",)) -> str:
    token, _ = signer.issue_granted(
        user_id="u1",
        tenant_id="t1",
        tenant_slug="acme",
        role=role,
        resource=resource,
        grant_id="g1",
        client_id="c1",
        scopes=scopes,
    )
    return token


def test_a_granted_token_is_accepted_for_its_own_resource_only() -> None:
    signer = _signer()
    token = _granted(signer, "https://a.example/mcp")
    principal, grant_id = signer.granted_principal(token, resource="https://a.example/mcp")
    assert (principal.tenant_slug, principal.role.value, principal.subject, grant_id) == (
        "acme",
        "analyst",
        "user:u1",
        "g1",
    )
    with pytest.raises(AuthError):
        signer.granted_principal(token, resource="https://b.example/mcp")
    with pytest.raises(AuthError):  # REST's audience: refused
        signer.principal(token)


def test_a_login_token_is_not_a_granted_token() -> None:
    signer = _signer()
    login, _ = signer.issue(user_id="u1", tenant_id="t1", tenant_slug="acme", role="admin")
    with pytest.raises(AuthError):
        signer.granted_principal(login, resource="servicetsunami-api")
    assert signer.grant_of(login) is None
    assert signer.grant_of(_granted(signer, "https://a.example/mcp")) == ("g1", "c1")


@pytest.mark.parametrize(
    ("role", "granted", "acts_as"),
    [
        ("admin", {"read", "write", "manage"}, "admin"),
        ("admin", {"read", "write"}, "engineer"),
        ("admin", {"read", "manage"}, "analyst"),
        ("engineer", {"read"}, "analyst"),
        ("analyst", {"read"}, "analyst"),
    ],
)
def test_what_a_narrowed_token_starts_runs_later_as_no_more_than_its_scopes(
    role: str, granted: set[str], acts_as: str
) -> None:
    full = principal_for(tenant_id="t", tenant_slug="acme", subject="u", role=role, catalog_prefix="tenant_")
    narrowed = replace(full, scopes=frozenset(s for s in full.scopes if s.value in granted))
    assert narrowed.run_role == Role(acts_as)
    assert ROLE_SCOPES[narrowed.run_role] <= narrowed.scopes


def test_a_token_whose_scopes_fit_no_role_starts_nothing_that_runs_later() -> None:
    full = principal_for(tenant_id="t", tenant_slug="acme", subject="u", role="admin", catalog_prefix="tenant_")
    with pytest.raises(PermissionDenied):
        _ = replace(full, scopes=frozenset({Scope.WRITE})).run_role
