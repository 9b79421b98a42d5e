"""Driving the OAuth flow as a person would: the console's sign-in and consent forms, over plain HTTP
with a cookie jar (the browser test drives the same pages in Chromium), and an MCP client with the
SDK's ``OAuthClientProvider`` that discovers, registers and authorizes by itself."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from servicetsunami.services.container import Services
from tests.integration.api.support import make_user

SIGNIN_TOKEN = re.compile(r'name="signin_token" value="([^"]+)"')
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
SEALED = re.compile(r'name="request" value="([^"]+)"')
NEXT = re.compile(r'name="next" value="([^"]+)"')
REDIRECT_URI = "http://127.0.0.1:43117/callback"


@dataclass
class MemoryStorage:
    """The client's token storage, in memory."""

    tokens: OAuthToken | None = None
    client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


@dataclass
class Person:
    """Someone at a browser: signs in on the console when asked, then allows (or denies) the app."""

    base_url: str
    email: str
    password: str
    decision: str = "allow"
    # A new connection for each request: with several workers, any of them may answer each one.
    fresh_connections: bool = False
    http: httpx.Client = field(init=False)
    consent_pages: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0) if self.fresh_connections else httpx.Limits()
        self.http = httpx.Client(base_url=self.base_url, follow_redirects=False, timeout=20, limits=limits)

    def close(self) -> None:
        self.http.close()

    def authorize(self, authorization_url: str) -> httpx.Response:
        """Follow ``authorization_url`` through sign-in and consent; the answer that leaves this
        server (the redirect to the app), or the first page that is neither form."""
        response = self.http.get(authorization_url)
        for _ in range(10):
            if response.status_code in (302, 303):
                target = urljoin(str(response.request.url), response.headers["location"])
                if not target.startswith(self.base_url + "/"):
                    return response
                response = self.http.get(target)
            elif response.status_code == 200 and SIGNIN_TOKEN.search(response.text):
                response = self._sign_in(response.text)
            elif response.status_code == 200 and SEALED.search(response.text):
                response = self._consent(response.text)
            else:
                return response
        raise AssertionError("the sign-in went round in circles")

    def _sign_in(self, page: str) -> httpx.Response:
        token, nxt = SIGNIN_TOKEN.search(page), NEXT.search(page)
        assert token is not None and nxt is not None, page
        form = {"signin_token": token.group(1), "email": self.email, "password": self.password}
        return self.http.post("/signin", data={**form, "next": unescape(nxt.group(1))})

    def _consent(self, page: str) -> httpx.Response:
        self.consent_pages.append(page)
        csrf, sealed = CSRF.search(page), SEALED.search(page)
        assert csrf is not None and sealed is not None, page
        return self.http.post(
            "/oauth/consent",
            data={"csrf_token": csrf.group(1), "request": sealed.group(1), "decision": self.decision},
        )


def redirect_params(response: httpx.Response, /, *, to: str = REDIRECT_URI) -> dict[str, str]:
    """The query of a redirect to the app's redirect URI ``to``."""
    location = response.headers["location"]
    assert location.split("?", 1)[0] == to, location
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def oauth_client(
    base_url: str, person: Person, storage: MemoryStorage, *, client_metadata_url: str | None = None, **metadata: Any
) -> OAuthClientProvider:
    """The SDK's OAuth client for ``<base_url>/mcp``, whose user is ``person``; a second sign-in
    (after its grant was revoked) fails the test."""
    asked: list[str] = []
    answers: list[AuthorizationCodeResult] = []

    async def redirect(url: str) -> None:
        assert not asked, "the client asked the person to sign in a second time"
        asked.append(url)
        params = redirect_params(person.authorize(url))
        answers.append(AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss")))

    async def callback() -> AuthorizationCodeResult:
        return answers[-1]

    client_metadata = OAuthClientMetadata(
        client_name=metadata.pop("client_name", "Scripted MCP client"),
        redirect_uris=[AnyUrl(REDIRECT_URI)],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method=metadata.pop("token_endpoint_auth_method", "client_secret_post"),
        **metadata,
    )
    return OAuthClientProvider(
        server_url=f"{base_url}/mcp",
        client_metadata=client_metadata,
        storage=storage,
        redirect_handler=redirect,
        callback_handler=callback,
        client_metadata_url=client_metadata_url,
    )


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).decode().rstrip("="))


def register(base_url: str, **metadata: Any) -> httpx.Response:
    body = {
        "client_name": "Hand-driven client",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **metadata,
    }
    return httpx.post(f"{base_url}/register", json=body, timeout=20)


def authorization_url(client_id: str, pkce: Pkce, **params: str) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "state": "st-" + secrets.token_hex(4),
        **params,
    }
    return "/authorize?" + urlencode(query)


def exchange(
    base_url: str, client_id: str, code: str, verifier: str, *, redirect_uri: str = REDIRECT_URI
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    return httpx.post(f"{base_url}/token", data=form, timeout=20)


def person_of(services: Services, base_url: str, role: str) -> Person:
    """A new user of tenant acme with ``role``, ready to sign in at ``base_url``."""
    email, password = make_user(services, "acme", role=role)
    return Person(base_url, email, password)
