"""The HTTP side of the Salesforce source: a :class:`~servicetsunami.connectors.http.VettedClient`
for the org's one host, with OAuth2 (client credentials or refresh token) from its token endpoint,
renewed once when the API answers 401 (sessions expire by the org's policy, not a known lifetime).
Salesforce's own error codes (``MALFORMED_QUERY``, ``INVALID_FIELD``, ``REQUEST_LIMIT_EXCEEDED``)
are named in messages; their texts, which can quote the query, are not."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from servicetsunami.connectors.http import Retries, Vet, VettedClient, raise_for_status, shown
from servicetsunami.connectors.salesforce.config import SalesforceConfig
from servicetsunami.errors import SourceError


class SalesforceClient(VettedClient):
    def __init__(self, config: SalesforceConfig, vet: Vet) -> None:
        super().__init__(
            vet,
            origin=config.endpoint(),
            retries=Retries(
                timeout_seconds=config.timeout_seconds,
                max_retries=config.max_retries,
                backoff_seconds=config.backoff_seconds,
            ),
        )
        self.config = config
        self._token: str | None = None
        self._token_lock = threading.Lock()

    def send(self, method: str, url: str, *, params: dict[str, Any] | None = None) -> httpx.Response:
        renewed = False
        while True:
            response = self.follow(method, url, params=params)
            if response.status_code == 401 and not renewed:
                self._token, renewed = None, True  # the session expired: one fresh token
                continue
            if response.status_code in (400, 403):
                code = _error_code(response)
                if code == "REQUEST_LIMIT_EXCEEDED":
                    raise SourceError(
                        "the org's daily API request limit is used up; sync again later",
                        transient=True,
                        problem="rate_limited",
                    )
                if response.status_code == 400 and code:
                    raise SourceError(f"Salesforce refused the request to {shown(url)} ({code})", problem="query")
            raise_for_status(response, url)
            return response

    def authenticate(self, headers: dict[str, str], query: dict[str, Any]) -> None:
        headers["Authorization"] = f"Bearer {self._access_token()}"

    def _access_token(self) -> str:
        with self._token_lock:
            if self._token is not None:
                return self._token
            c = self.config
            form = {"client_id": c.client_id}
            if c.client_secret is not None:
                form["client_secret"] = c.client_secret.get_secret_value()
            if c.auth == "refresh_token" and c.refresh_token is not None:
                form |= {"grant_type": "refresh_token", "refresh_token": c.refresh_token.get_secret_value()}
            else:
                form["grant_type"] = "client_credentials"
            body = self.post_token(f"{c.instance_url}/services/oauth2/token", form)
            token = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise SourceError("the token endpoint did not answer an access_token", problem="auth")
            self._token = token
            return token


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    first = body[0] if isinstance(body, list) and body else body
    code = first.get("errorCode") if isinstance(first, dict) else None
    return str(code)[:64] if isinstance(code, str) and code.replace("_", "").isalnum() else None
