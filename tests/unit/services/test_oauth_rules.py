"""The OAuth rules that need nothing running: which redirect URIs a client may register, which
client IDs name a metadata document, and how granted access tokens are bound to their resource."""

from __future__ import annotations

import pytest

from servicetsunami.errors import AuthError, InvalidInput
from servicetsunami.security.tokens import TokenSigner
from servicetsunami.services.identity.oauth import check_redirect_uri
from servicetsunami.services.identity.oauth_documents import is_document_client_id

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


def _granted(signer: TokenSigner, resource: str) -> str:
    token, _ = signer.issue_granted(
        user_id="u1",
        tenant_id="t1",
        tenant_slug="acme",
        role="analyst",
        resource=resource,
        grant_id="g1",
        client_id="c1",
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
