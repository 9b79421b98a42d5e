"""Request limits of the REST door: body size (ASGI middleware) and per-caller rate limits.

Bodies are counted as they arrive, so a client that sends no ``Content-Length`` (or a false one)
is cut off at the limit too. Dataset uploads and volume file uploads (``PUT
/api/v1/volumes/files/...``) have their own, larger limit (``ingest.max_upload_bytes``, 1 GiB by
default); everything else under ``/api/v1`` is held to
``api.max_body_bytes``.

Rate limits are :class:`~servicetsunami.security.ratelimits.RateLimiter`'s (shared with the MCP
door and every worker process): queries per principal, and logins (:func:`login_attempt`). A
refused request is a :class:`~servicetsunami.errors.RateLimited` with the seconds to wait, which
the error handler sends as ``Retry-After``.

Logins are throttled so that guessing slows the guesser without locking the account's owner out:

- per account and client address (``auth.login_rate_limit``), with backoff after repeated wrong
  passwords (``auth.login_backoff_after``, doubling up to ``auth.login_backoff_max_seconds``): the
  guesser waits, the owner at another address does not;
- per client address, whatever the account (``auth.login_client_rate_limit``): one address trying
  many accounts;
- per account from every address (``auth.login_account_rate_limit``), a ceiling set high enough that
  only a guess spread over many addresses reaches it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicetsunami import logs
from servicetsunami.api.problems import problem
from servicetsunami.errors import AuthError, BodyTooLarge
from servicetsunami.security.bodies import read_at_most, replay
from servicetsunami.security.ratelimits import RateLimiter, open_rate_limiter

__all__ = ["BodySizeLimit", "RateLimiter", "login_attempt", "open_rate_limiter"]

API_PREFIX = "/api/v1"
UPLOAD_PATH = f"{API_PREFIX}/datasets"
VOLUME_FILES_PREFIX = f"{API_PREFIX}/volumes/files/"
MULTIPART_OVERHEAD = 1024 * 1024  # form fields and part headers around the file


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_upload = max_upload_bytes + MULTIPART_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        method = scope.get("method")
        uploading = (method == "POST" and path.rstrip("/") == UPLOAD_PATH) or (
            method == "PUT" and path.startswith(VOLUME_FILES_PREFIX)
        )
        limit = self.max_upload if uploading else self.max_body
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(scope, receive, send, limit)
        elif limit == self.max_body:
            # Small bodies are read here, whole, so that going over the limit is answered with 413
            # (FastAPI turns any error while it reads a JSON body into a 400).
            body = await read_at_most(receive, limit)
            if body is None:
                await _too_large(scope, receive, send, limit)
            else:
                await self.app(scope, replay(body, receive), send)
        else:  # uploads are streamed by their route, which lets BodyTooLarge through
            await self.app(scope, _counting(receive, limit), send)


def _message(limit: int) -> str:
    return f"the request body is larger than {limit} bytes, the limit for this endpoint"


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = problem(BodyTooLarge.http_status, BodyTooLarge.code, _message(limit), logs.request_id.get())
    await response(scope, receive, send)


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(_message(limit))
        return message

    return counted


@contextmanager
def login_attempt(limiter: RateLimiter, email: str, client: str, /) -> Iterator[None]:
    """Around one password check: refuses it while throttled (see the module docstring), and records
    how it went (a wrong password adds to the backoff of this account at this address)."""
    account = email.strip().lower()
    limiter.check_backoff("login", account, client, what="failed logins for this account from this address")
    limiter.hit("login", account, client, what="login attempts for this account from this address")
    limiter.hit("login_client", client, what="login attempts from this address")
    limiter.hit("login_account", account, what="login attempts for this account")
    try:
        yield
    except AuthError:
        limiter.record_failure("login", account, client)
        raise
    limiter.clear_failures("login", account, client)
