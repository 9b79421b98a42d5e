"""HTTP for sources that speak to web APIs (REST, Google Sheets, Salesforce): one httpx client that
vets every host it reaches.

Every request goes through :meth:`VettedClient.send`, which

- asks the ``vet`` callable (the service's server-side request forgery guard) for the addresses of
  the URL's host and connects to the first of them, so a second, different DNS answer cannot slip
  past the check (TLS still verifies the certificate against the name); the vetted address is
  reused for a minute, so a walk of many pages does not resolve its host for every page;
- follows redirects itself (at most 5), vetting each target, and sends credentials
  (:meth:`VettedClient.authenticate`) only to the origin given at construction;
- retries 429, 502, 503, 504 and dropped connections, waiting what ``Retry-After`` asks (capped by
  ``max_wait_seconds``) or ``backoff_seconds`` doubling each time, at most ``max_retries`` times.

Token endpoints are posted to with :meth:`VettedClient.post_token`. Failures are
:class:`~servicetsunami.errors.SourceError` whose ``problem`` detail is a short code (``auth``,
``permission``, ``not_found``, ``rate_limited``, ``unavailable``, ``http``, ``refused``, ``timeout``,
``dns``, ``ssl``, ``network``, ``json``); no message carries a secret, a response body, a query
string or a resolved address.
"""

from __future__ import annotations

import email.utils
import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from servicetsunami.errors import SourceError

Vet = Callable[[str, int], list[str]]
RETRIED = (429, 502, 503, 504)
VETTED_SECONDS = 60.0  # how long a host's vetted address is reused before it is resolved and checked again


class Cancelled(Exception):  # a signal between a client and its source, never raised further
    """The read was cancelled; the source turns it into a :class:`~servicetsunami.errors.SourceError`."""


@dataclass(frozen=True, slots=True)
class Retries:
    timeout_seconds: float = 30.0
    max_retries: int = 5
    backoff_seconds: float = 1.0
    max_wait_seconds: float = 60.0


class VettedClient:
    """An httpx client whose every connection goes to a vetted address; subclasses add credentials
    by overriding :meth:`authenticate`."""

    def __init__(
        self, vet: Vet, *, origin: tuple[str, int], retries: Retries, headers: dict[str, str] | None = None
    ) -> None:
        self._vet = vet
        self.origin = origin
        self.retries = retries
        self._http = httpx.Client(
            timeout=retries.timeout_seconds,
            follow_redirects=False,
            headers={"User-Agent": "servicetsunami", "Accept": "application/json", **(headers or {})},
        )
        self.cancelled = threading.Event()
        self.requests = 0
        self._addresses: dict[tuple[str, int], tuple[str, float]] = {}  # vetted address and until when

    def close(self) -> None:
        self._http.close()

    def authenticate(self, headers: dict[str, str], query: dict[str, Any]) -> None:
        """Add credentials to a request to :attr:`origin` (none by default)."""

    def get_json(self, url: str, params: dict[str, Any] | None = None) -> tuple[Any, httpx.Response]:
        """GET ``url`` and its body as JSON."""
        response = self.send("GET", url, params=params)
        try:
            return response.json(), response
        except ValueError:
            raise SourceError(
                f"{shown(url)} did not answer JSON (content type {response.headers.get('content-type', 'none')})",
                problem="json",
            ) from None

    def send(self, method: str, url: str, *, params: dict[str, Any] | None = None) -> httpx.Response:
        response = self.follow(method, url, params=params)
        raise_for_status(response, url)
        return response

    def follow(self, method: str, url: str, *, params: dict[str, Any] | None) -> httpx.Response:
        """The response after redirects (each target vetted), its status not yet judged."""
        for _ in range(6):
            response = self._with_retries(method, url, params=params)
            if response.status_code not in (301, 302, 303, 307, 308) or "location" not in response.headers:
                return response
            target = urljoin(url, response.headers["location"])
            if urlsplit(target).scheme not in ("http", "https"):
                raise SourceError(f"{shown(url)} redirected to a URL that is not http(s)", problem="http")
            url, params = target, None  # the target carries its own query
            if response.status_code == 303:
                method = "GET"
        raise SourceError(f"{shown(url)} redirected more than 5 times", problem="http")

    def post_token(self, url: str, form: dict[str, str], *, basic: httpx.BasicAuth | None = None) -> Any:
        """POST ``form`` to a token endpoint (vetted, never redirected, no other credentials) and
        return its JSON body; a refusal is a :class:`SourceError` with problem ``auth``."""
        pinned, headers, extensions = self._pin(url)
        if self.cancelled.is_set():
            raise Cancelled("the read was cancelled")
        try:
            self.requests += 1
            response = self._http.post(
                pinned,
                data=form,
                auth=basic if basic is not None else httpx.USE_CLIENT_DEFAULT,
                headers=headers,
                extensions=extensions,
            )
        except httpx.TransportError as exc:
            raise transport_error(exc, url) from None
        if response.status_code in (400, 401, 403):
            raise SourceError(
                f"the token endpoint refused the credentials (HTTP {response.status_code}); check the client id, "
                "its secret and what it is allowed",
                problem="auth",
            )
        raise_for_status(response, url)
        try:
            return response.json()
        except ValueError:
            raise SourceError("the token endpoint did not answer JSON", problem="auth") from None

    # -- internals ----------------------------------------------------------------------------

    def _with_retries(self, method: str, url: str, *, params: dict[str, Any] | None) -> httpx.Response:
        attempt = 0
        retries = self.retries
        while True:
            if self.cancelled.is_set():
                raise Cancelled("the read was cancelled")
            try:
                response = self._once(method, url, params=params)
            except httpx.TransportError as exc:
                if attempt >= retries.max_retries:
                    raise transport_error(exc, url) from None
                self._wait(self._backoff(attempt))
                attempt += 1
                continue
            if response.status_code in RETRIED and attempt < retries.max_retries:
                response.close()
                self._wait(self._retry_after(response) if "retry-after" in response.headers else self._backoff(attempt))
                attempt += 1
                continue
            return response

    def _pin(self, url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """``url`` with its host replaced by a vetted address, the Host header and the TLS name."""
        parts = urlsplit(url)
        host, port = host_port(url)
        address = self._vetted(host, port)
        pinned_host = f"[{address}]" if _is_v6(address) else address
        netloc = pinned_host if parts.port is None else f"{pinned_host}:{parts.port}"
        pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        return pinned, {"Host": parts.netloc.rpartition("@")[2]}, {"sni_hostname": host}

    def _vetted(self, host: str, port: int) -> str:
        """The address to connect to for ``host``: vetted, and kept for :data:`VETTED_SECONDS` so a
        walk of many pages resolves its host once, not once a page (the connection goes to the kept
        address, so a changed DNS answer cannot reach an address the check did not see)."""
        now = time.monotonic()
        known = self._addresses.get((host, port))
        if known is not None and now < known[1]:
            return known[0]
        addresses = self._vet(host, port)  # raises PermissionDenied / InvalidInput for a refused host
        address = addresses[0] if addresses else host
        self._addresses[(host, port)] = (address, now + VETTED_SECONDS)
        return address

    def _once(self, method: str, url: str, *, params: dict[str, Any] | None) -> httpx.Response:
        pinned, headers, extensions = self._pin(url)
        query = dict(params or {})
        if host_port(url) == self.origin:
            self.authenticate(headers, query)
        self.requests += 1
        request = self._http.build_request(method, pinned, params=query or None, headers=headers, extensions=extensions)
        return self._http.send(request)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.retries.backoff_seconds * 2**attempt, self.retries.max_wait_seconds))

    def _retry_after(self, response: httpx.Response) -> float:
        value = response.headers.get("retry-after", "").strip()
        try:
            seconds = float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value) if value else None
            seconds = when.timestamp() - time.time() if when is not None else self.retries.backoff_seconds
        if seconds > self.retries.max_wait_seconds:
            raise SourceError(
                f"the API asks to wait {seconds:.0f} s before the next request, longer than max_wait_seconds "
                f"({self.retries.max_wait_seconds:.0f}); sync again later",
                transient=True,
                problem="rate_limited",
            )
        return max(seconds, 0.0)

    def _wait(self, seconds: float) -> None:
        if self.cancelled.wait(seconds):
            raise Cancelled("the read was cancelled")


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def raise_for_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status < 400:
        return
    where = shown(url)
    if status == 401:
        raise SourceError(f"{where} refused the credentials (HTTP 401); check auth and its secret", problem="auth")
    if status == 403:
        raise SourceError(
            f"{where} forbids this request (HTTP 403); check the credentials' rights", problem="permission"
        )
    if status == 404:
        raise SourceError(f"{where} does not exist (HTTP 404); check the resource's path", problem="not_found")
    if status == 429:
        raise SourceError(f"{where} kept limiting the rate (HTTP 429)", transient=True, problem="rate_limited")
    if status in (502, 503, 504):
        raise SourceError(f"{where} is unavailable (HTTP {status})", transient=True, problem="unavailable")
    raise SourceError(f"{where} answered HTTP {status}", transient=status >= 500, problem="http")


def transport_error(exc: httpx.TransportError, url: str) -> SourceError:
    where = shown(url)
    text = str(exc).lower()
    if isinstance(exc, httpx.TimeoutException):
        return SourceError(
            f"{where} did not answer in time; check the URL and firewalls", transient=True, problem="timeout"
        )
    if "refused" in text:
        return SourceError(
            f"nothing accepts connections at {where}; check the URL and port", transient=True, problem="refused"
        )
    if "name or service" in text or "nodename" in text:
        return SourceError(f"the host of {where} does not resolve; check the URL", problem="dns")
    if "ssl" in text or "certificate" in text:
        return SourceError(f"the TLS handshake with {where} failed; check the certificate", problem="ssl")
    return SourceError(f"the connection to {where} failed ({type(exc).__name__})", transient=True, problem="network")


def shown(url: str) -> str:
    """The URL without its query (which may carry a key or a token) for messages."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _is_v6(address: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(address), ipaddress.IPv6Address)
    except ValueError:
        return False
