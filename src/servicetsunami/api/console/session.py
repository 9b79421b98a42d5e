"""Who is signed in to the console, kept in cookies, and the CSRF token of their forms.

Signing in with an e-mail address and password stores the access token and the refresh token the
REST API would return (``POST /api/v1/auth/login``) in two cookies; when the access token expires,
the next page exchanges the refresh token for a new pair, as a REST client would, and rotation and
replay detection work the same. Signing in with an API key (for automation, and for the first admin,
who has only the key ``tsunami serve`` printed) stores the key itself. Every cookie is ``HttpOnly``
(no script reads it), ``SameSite=Lax`` (not sent with another site's form posts), ``Secure`` when the
request came over HTTPS, and scoped to the whole site.

Each page carries a CSRF token, and every request that changes anything must send it back (form
field ``csrf_token`` or header ``X-CSRF-Token``, which the console's script sets on htmx requests).
The token is ``<expiry>.<nonce>.<HMAC>`` over the expiry, the nonce, the tenant and the subject,
with a key derived from the access-token key: it cannot be made by another site, and it is valid
only for the person it was rendered for, until it expires.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials
from starlette.responses import Response

from servicetsunami.api.deps import get_principal
from servicetsunami.errors import AuthError, PermissionDenied
from servicetsunami.services.container import Services
from servicetsunami.services.identity import users
from servicetsunami.tenancy import Principal

SESSION_COOKIE = "tsunami_session"
REFRESH_COOKIE = "tsunami_refresh"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
CSRF_SECONDS = 12 * 3600
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class ConsoleSession:
    """The signed-in principal of one request, and the cookies the response must set or clear."""

    principal: Principal
    set_cookies: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (value, max_age)
    csrf_checked: bool = True  # False: the route checks its form's token itself (a streamed upload)

    def apply(self, request: Request, response: Response) -> Response:
        for name, (value, max_age) in self.set_cookies.items():
            set_cookie(request, response, name, value, max_age=max_age)
        return response


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_cookies(response: Response) -> None:
    for name in (SESSION_COOKIE, REFRESH_COOKIE):
        response.delete_cookie(name, path="/")


async def sign_in_with_password(services: Services, email: str, password: str) -> users.TokenPair:
    return await run_in_threadpool(lambda: users.login(services, email=email, password=password))


async def current(request: Request, services: Services) -> ConsoleSession | None:
    """The request's session, refreshing an expired access token; None when nobody is signed in."""
    credential = request.cookies.get(SESSION_COOKIE, "")
    if credential:
        try:  # as the API resolves a bearer: on the event loop when that is only a memory read
            return ConsoleSession(
                await get_principal(services, HTTPAuthorizationCredentials(scheme="Bearer", credentials=credential))
            )
        except AuthError:
            pass
    refresh_token = request.cookies.get(REFRESH_COOKIE, "")
    if not refresh_token:
        return None
    try:
        pair = await run_in_threadpool(lambda: users.refresh(services, refresh_token=refresh_token))
        principal = await run_in_threadpool(services.authenticate, pair.access_token)
    except AuthError:
        return None
    return ConsoleSession(
        principal,
        {
            SESSION_COOKIE: (pair.access_token, pair.refresh_expires_in),
            REFRESH_COOKIE: (pair.refresh_token, pair.refresh_expires_in),
        },
    )


def _csrf_key(services: Services) -> bytes:
    if services.tokens is None:  # no key to sign with: no form can be accepted
        raise PermissionDenied("the console cannot accept forms: the service has no signing key")
    return services.tokens.derived_key("console-csrf")


def _mac(key: bytes, expiry: int, nonce: str, principal: Principal) -> str:
    message = f"{expiry}.{nonce}.{principal.tenant_id}.{principal.subject}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def csrf_token(services: Services, principal: Principal) -> str:
    expiry = int(time.time()) + CSRF_SECONDS
    nonce = secrets.token_urlsafe(12)
    return f"{expiry}.{nonce}.{_mac(_csrf_key(services), expiry, nonce, principal)}"


def check_csrf(services: Services, principal: Principal, token: str | None) -> None:
    """``PermissionDenied`` unless ``token`` was rendered for ``principal`` and has not expired."""
    expiry_text, _, rest = (token or "").partition(".")
    nonce, _, mac = rest.partition(".")
    if not (expiry_text.isdigit() and nonce and mac):
        raise PermissionDenied("this form has no valid CSRF token: reload the page and try again")
    expiry = int(expiry_text)
    expected = _mac(_csrf_key(services), expiry, nonce, principal)
    if not hmac.compare_digest(expected, mac) or expiry < time.time():
        raise PermissionDenied("this form's CSRF token is not valid or has expired: reload the page and try again")


def is_safe(request: Request) -> bool:
    return request.method in _SAFE_METHODS
