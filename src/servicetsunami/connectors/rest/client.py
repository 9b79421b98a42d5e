"""The HTTP side of the REST source: a :class:`~servicetsunami.connectors.http.VettedClient` (every
host vetted, redirects followed and vetted, Retry-After backoff) that authenticates as the
connection says.

Credentials go only to the host of ``base_url``. OAuth2 client-credentials tokens are fetched when
first needed, renewed before they expire and once more when the API answers 401. Failures are
:class:`~servicetsunami.errors.SourceError` with a short ``problem`` code (see
:mod:`servicetsunami.connectors.http`); no message carries a secret, a response body or a resolved
address.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from servicetsunami.connectors.http import Cancelled, Retries, Vet, VettedClient, raise_for_status, shown
from servicetsunami.connectors.rest import jsonpath
from servicetsunami.connectors.rest.config import RestConfig, host_port
from servicetsunami.errors import SourceError


class RestClient(VettedClient):
    def __init__(self, config: RestConfig, vet: Vet) -> None:
        super().__init__(
            vet,
            origin=host_port(config.base_url),
            retries=Retries(
                timeout_seconds=config.timeout_seconds,
                max_retries=config.max_retries,
                backoff_seconds=config.backoff_seconds,
                max_wait_seconds=config.max_wait_seconds,
            ),
            headers=config.headers,
        )
        self.config = config
        self._token: tuple[str, float] | None = None  # OAuth2 access token and when to renew it
        self._token_lock = threading.Lock()

    def send(self, method: str, url: str, *, params: dict[str, Any] | None = None) -> httpx.Response:
        renewed = False
        while True:
            response = self.follow(method, url, params=params)
            if response.status_code == 401 and self.config.auth.type == "oauth2_client_credentials" and not renewed:
                self._token, renewed = None, True  # the token may have been revoked early: one fresh try
                continue
            raise_for_status(response, url)
            return response

    def get_page(
        self, url: str, params: dict[str, Any] | None, selector: list[str | int | None]
    ) -> tuple[Any, str | None, httpx.Response]:
        """GET a page: its body as JSON, the text of the records ``selector`` picks when it can keep
        it (:func:`.jsonpath.load_selecting`), and the response."""
        response = self.send("GET", url, params=params)
        try:
            body, texts = jsonpath.load_selecting(response.content, selector)
        except ValueError:
            raise SourceError(
                f"{shown(url)} did not answer JSON (content type {response.headers.get('content-type', 'none')})",
                problem="json",
            ) from None
        return body, texts, response

    def authenticate(self, headers: dict[str, str], query: dict[str, Any]) -> None:
        auth, c = self.config.auth, self.config
        if auth.type == "bearer" and c.token is not None:
            headers["Authorization"] = f"Bearer {c.token.get_secret_value()}"
        elif auth.type == "basic" and c.password is not None:
            basic = httpx.BasicAuth(auth.username, c.password.get_secret_value())
            headers["Authorization"] = next(basic.auth_flow(httpx.Request("GET", "http://x"))).headers["Authorization"]
        elif auth.type == "api_key" and c.api_key is not None:
            if auth.location == "header":
                headers[auth.name] = c.api_key.get_secret_value()
            else:
                query[auth.name] = c.api_key.get_secret_value()
        elif auth.type == "oauth2_client_credentials":
            headers["Authorization"] = f"Bearer {self._access_token()}"

    def _access_token(self) -> str:
        with self._token_lock:
            if self._token is not None and time.monotonic() < self._token[1]:
                return self._token[0]
            auth = self.config.auth
            assert auth.type == "oauth2_client_credentials" and self.config.client_secret is not None
            secret = self.config.client_secret.get_secret_value()
            form = {"grant_type": "client_credentials"}
            if auth.scopes:
                form["scope"] = " ".join(auth.scopes)
            basic: httpx.BasicAuth | None = None
            if auth.client_auth == "basic":
                basic = httpx.BasicAuth(auth.client_id, secret)
            else:
                form |= {"client_id": auth.client_id, "client_secret": secret}
            body = self.post_token(auth.token_url, form, basic=basic)
            try:
                token = str(body["access_token"])
                expires_in = float(body.get("expires_in") or 3600)
            except (KeyError, TypeError, ValueError, AttributeError):
                raise SourceError("the token endpoint did not answer an access_token", problem="auth") from None
            self._token = (token, time.monotonic() + max(expires_in - 30, expires_in / 2))
            return token


__all__ = ["Cancelled", "RestClient", "Vet"]
