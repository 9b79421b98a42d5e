"""The HTTP side of the REST source: one httpx client that vets every host it reaches.

Every request (the first page, each ``next`` URL, each redirect, the OAuth token endpoint) goes
through :meth:`RestClient.send`, which

- asks the ``vet`` callable (the service's server-side request forgery guard) for the addresses of
  the URL's host and connects to the first of them, so a second, different DNS answer cannot slip
  past the check (TLS still verifies the certificate against the name);
- follows redirects itself (at most 5), vetting each target, and sends credentials only to the
  host of ``base_url``;
- retries 429, 502, 503, 504 and dropped connections, waiting what ``Retry-After`` asks (capped by
  ``max_wait_seconds``) or ``backoff_seconds`` doubling each time, at most ``max_retries`` times;
- authenticates as configured; OAuth2 client-credentials tokens are fetched when first needed,
  renewed before they expire and once more when the API answers 401.

Failures are :class:`~servicetsunami.errors.SourceError` whose ``problem`` detail is a short code
(``auth``, ``permission``, ``not_found``, ``rate_limited``, ``unavailable``, ``http``, ``refused``,
``timeout``, ``dns``, ``json``); no message carries a secret, a response body or a resolved address.
"""

from __future__ import annotations

import email.utils
import ipaddress
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from servicetsunami.connectors.rest.config import RestConfig, host_port
from servicetsunami.errors import SourceError

Vet = Callable[[str, int], list[str]]
RETRIED = (429, 502, 503, 504)


class Cancelled(Exception):  # a signal between the client and its source, never raised further
    """The read was cancelled; the source turns it into a :class:`~servicetsunami.errors.SourceError`."""


class RestClient:
    def __init__(self, config: RestConfig, vet: Vet) -> None:
        self.config = config
        self._vet = vet
        self._origin = host_port(config.base_url)
        self._http = httpx.Client(
            timeout=config.timeout_seconds,
            follow_redirects=False,
            headers={"User-Agent": "servicetsunami", "Accept": "application/json", **config.headers},
        )
        self._token: tuple[str, float] | None = None  # OAuth2 access token and when to renew it
        self._token_lock = threading.Lock()
        self.cancelled = threading.Event()
        self.requests = 0

    def close(self) -> None:
        self._http.close()

    def get_json(self, url: str, params: dict[str, Any] | None = None) -> tuple[Any, httpx.Response]:
        """GET ``url`` and its body as JSON."""
        response = self.send("GET", url, params=params)
        try:
            return response.json(), response
        except ValueError:
            raise SourceError(
                f"{_shown(url)} did not answer JSON (content type {response.headers.get('content-type', 'none')})",
                problem="json",
            ) from None

    def send(self, method: str, url: str, *, params: dict[str, Any] | None = None) -> httpx.Response:
        renewed = False
        while True:
            response = self._follow(method, url, params=params)
            if response.status_code == 401 and self.config.auth.type == "oauth2_client_credentials" and not renewed:
                self._token, renewed = None, True  # the token may have been revoked early: one fresh try
                continue
            _raise_for_status(response, url)
            return response

    # -- internals ----------------------------------------------------------------------------

    def _follow(self, method: str, url: str, *, params: dict[str, Any] | None) -> httpx.Response:
        for _ in range(6):
            response = self._with_retries(method, url, params=params)
            if response.status_code not in (301, 302, 303, 307, 308) or "location" not in response.headers:
                return response
            target = urljoin(url, response.headers["location"])
            if urlsplit(target).scheme not in ("http", "https"):
                raise SourceError(f"{_shown(url)} redirected to a URL that is not http(s)", problem="http")
            url, params = target, None  # the target carries its own query
            if response.status_code == 303:
                method = "GET"
        raise SourceError(f"{_shown(url)} redirected more than 5 times", problem="http")

    def _with_retries(self, method: str, url: str, *, params: dict[str, Any] | None) -> httpx.Response:
        attempt = 0
        while True:
            if self.cancelled.is_set():
                raise Cancelled("the read was cancelled")
            try:
                response = self._once(method, url, params=params)
            except httpx.TransportError as exc:
                if attempt >= self.config.max_retries:
                    raise _transport_error(exc, url) from None
                self._wait(self._backoff(attempt))
                attempt += 1
                continue
            if response.status_code in RETRIED and attempt < self.config.max_retries:
                response.close()
                self._wait(self._retry_after(response) if "retry-after" in response.headers else self._backoff(attempt))
                attempt += 1
                continue
            return response

    def _once(self, method: str, url: str, *, params: dict[str, Any] | None) -> httpx.Response:
        parts = urlsplit(url)
        host, port = host_port(url)
        addresses = self._vet(host, port)  # raises PermissionDenied / InvalidInput for a refused host
        address = addresses[0] if addresses else host
        pinned_host = f"[{address}]" if _is_v6(address) else address
        netloc = pinned_host if parts.port is None else f"{pinned_host}:{parts.port}"
        pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        headers = {"Host": parts.netloc.rpartition("@")[2]}
        query = dict(params or {})
        same_origin = (host, port) == self._origin
        if same_origin:
            self._authenticate(headers, query)
        self.requests += 1
        request = self._http.build_request(
            method, pinned, params=query or None, headers=headers, extensions={"sni_hostname": host}
        )
        return self._http.send(request)

    def _authenticate(self, headers: dict[str, str], query: dict[str, Any]) -> None:
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
            response = self._token_request(auth.token_url, form, basic)
            try:
                body = response.json()
                token = str(body["access_token"])
                expires_in = float(body.get("expires_in") or 3600)
            except (ValueError, KeyError, TypeError):
                raise SourceError("the token endpoint did not answer an access_token", problem="auth") from None
            self._token = (token, time.monotonic() + max(expires_in - 30, expires_in / 2))
            return token

    def _token_request(self, url: str, form: dict[str, str], basic: httpx.BasicAuth | None) -> httpx.Response:
        parts = urlsplit(url)
        host, port = host_port(url)
        addresses = self._vet(host, port)
        address = addresses[0] if addresses else host
        pinned_host = f"[{address}]" if _is_v6(address) else address
        netloc = pinned_host if parts.port is None else f"{pinned_host}:{parts.port}"
        pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        try:
            self.requests += 1
            response = self._http.post(
                pinned,
                data=form,
                auth=basic if basic is not None else httpx.USE_CLIENT_DEFAULT,
                headers={"Host": parts.netloc},
                extensions={"sni_hostname": host},
            )
        except httpx.TransportError as exc:
            raise _transport_error(exc, url) from None
        if response.status_code in (400, 401, 403):
            raise SourceError(
                f"the token endpoint refused the client credentials (HTTP {response.status_code}); "
                "check client_id, client_secret and scopes",
                problem="auth",
            )
        _raise_for_status(response, url)
        return response

    def _backoff(self, attempt: int) -> float:
        return float(min(self.config.backoff_seconds * 2**attempt, self.config.max_wait_seconds))

    def _retry_after(self, response: httpx.Response) -> float:
        value = response.headers.get("retry-after", "").strip()
        try:
            seconds = float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value) if value else None
            seconds = when.timestamp() - time.time() if when is not None else self.config.backoff_seconds
        if seconds > self.config.max_wait_seconds:
            raise SourceError(
                f"the API asks to wait {seconds:.0f} s before the next request, longer than max_wait_seconds "
                f"({self.config.max_wait_seconds:.0f}); sync again later",
                transient=True,
                problem="rate_limited",
            )
        return max(seconds, 0.0)

    def _wait(self, seconds: float) -> None:
        if self.cancelled.wait(seconds):
            raise Cancelled("the read was cancelled")


def _raise_for_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status < 400:
        return
    shown = _shown(url)
    if status == 401:
        raise SourceError(f"{shown} refused the credentials (HTTP 401); check auth and its secret", problem="auth")
    if status == 403:
        raise SourceError(
            f"{shown} forbids this request (HTTP 403); check the credentials' rights", problem="permission"
        )
    if status == 404:
        raise SourceError(f"{shown} does not exist (HTTP 404); check the resource's path", problem="not_found")
    if status == 429:
        raise SourceError(f"{shown} kept limiting the rate (HTTP 429)", transient=True, problem="rate_limited")
    if status in (502, 503, 504):
        raise SourceError(f"{shown} is unavailable (HTTP {status})", transient=True, problem="unavailable")
    raise SourceError(f"{shown} answered HTTP {status}", transient=status >= 500, problem="http")


def _transport_error(exc: httpx.TransportError, url: str) -> SourceError:
    shown = _shown(url)
    text = str(exc).lower()
    if isinstance(exc, httpx.TimeoutException):
        return SourceError(
            f"{shown} did not answer in time; check the URL and firewalls", transient=True, problem="timeout"
        )
    if "refused" in text:
        return SourceError(
            f"nothing accepts connections at {shown}; check the URL and port", transient=True, problem="refused"
        )
    if "name or service" in text or "nodename" in text:
        return SourceError(f"the host of {shown} does not resolve; check the URL", problem="dns")
    if "ssl" in text or "certificate" in text:
        return SourceError(f"the TLS handshake with {shown} failed; check the certificate", problem="ssl")
    return SourceError(f"the connection to {shown} failed ({type(exc).__name__})", transient=True, problem="network")


def _shown(url: str) -> str:
    """The URL without its query (which may carry an API key) for messages."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _is_v6(address: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(address), ipaddress.IPv6Address)
    except ValueError:
        return False


__all__ = ["Cancelled", "RestClient", "Vet"]
