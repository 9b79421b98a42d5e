"""The HTTP side of the Google Sheets source: a
:class:`~servicetsunami.connectors.http.VettedClient` (every host vetted, redirects vetted, Retry-After
backoff) that signs in as the service account.

The service account's access token comes from the OAuth 2.0 JWT bearer grant (RFC 7523): an RS256
assertion signed with the key's ``private_key``, ``iss`` its ``client_email``, ``aud`` the token
endpoint, asking for ``spreadsheets.readonly``. It is fetched when first needed, renewed before it
expires and once more when the API answers 401, and sent only to the API's host.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import jwt

from servicetsunami.connectors.http import Retries, Vet, VettedClient, host_port, raise_for_status
from servicetsunami.connectors.sheets.config import GoogleUrls, SheetsConfig
from servicetsunami.errors import SourceError

SCOPE = "https://www.googleapis.com/auth/spreadsheets.readonly"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class SheetsClient(VettedClient):
    def __init__(self, config: SheetsConfig, urls: GoogleUrls, vet: Vet) -> None:
        super().__init__(
            vet,
            origin=host_port(urls.api),
            retries=Retries(
                timeout_seconds=config.timeout_seconds,
                max_retries=config.max_retries,
                backoff_seconds=config.backoff_seconds,
            ),
        )
        self.config = config
        self.urls = urls
        self._token: tuple[str, float] | None = None
        self._token_lock = threading.Lock()

    def send(self, method: str, url: str, *, params: dict[str, Any] | None = None) -> httpx.Response:
        renewed = False
        while True:
            response = self.follow(method, url, params=params)
            if response.status_code == 401 and self.config.auth == "service_account" and not renewed:
                self._token, renewed = None, True  # revoked or expired early: one fresh token
                continue
            raise_for_status(response, url)
            return response

    def authenticate(self, headers: dict[str, str], query: dict[str, Any]) -> None:
        if self.config.auth == "service_account":
            headers["Authorization"] = f"Bearer {self._access_token()}"

    def _access_token(self) -> str:
        with self._token_lock:
            if self._token is not None and time.monotonic() < self._token[1]:
                return self._token[0]
            key = self.config.key()
            now = int(time.time())
            claims = {"iss": key["client_email"], "scope": SCOPE, "aud": self.urls.token, "iat": now, "exp": now + 3600}
            headers = {"kid": key["private_key_id"]} if key.get("private_key_id") else None
            try:
                assertion = jwt.encode(claims, key["private_key"], algorithm="RS256", headers=headers)
            except (ValueError, TypeError, jwt.PyJWTError):
                raise SourceError(
                    "the service account key's private_key cannot sign; download a new JSON key", problem="auth"
                ) from None
            body = self.post_token(self.urls.token, {"grant_type": GRANT, "assertion": assertion})
            try:
                token = str(body["access_token"])
                expires_in = float(body.get("expires_in") or 3600)
            except (KeyError, TypeError, ValueError, AttributeError):
                raise SourceError("the token endpoint did not answer an access_token", problem="auth") from None
            self._token = (token, time.monotonic() + max(expires_in - 60, expires_in / 2))
            return token
