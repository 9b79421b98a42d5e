"""The OAuth consent page: where ``/authorize`` (:mod:`servicetsunami.api.oauth`) sends the browser.

Nobody signed in: the sign-in page first, and back here. Then the page shows the app (its name and
where it returns to), the tenant and role it will act as (the signed-in user's own) and what it may
do: the scopes it asked for that the role has, and those it asked for that the role has not. Allow makes
the grant and sends the browser back to the app with a code; Deny sends it back with
``error=access_denied``; both carry the request's ``state`` and our ``iss`` (RFC 9207). The form
carries the page's CSRF token like every console form.

The pages' policy allows forms to post to this site only (``form-action 'self'``), and browsers
apply that to the redirect that follows the post too: this page adds the app's own origin to it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from mcp.server.auth.provider import construct_redirect_uri
from starlette.responses import Response

from servicetsunami.api.console import session
from servicetsunami.api.console.render import PAGE_POLICY, ConsoleRoute, SessionDep, call, local, page
from servicetsunami.api.deps import ServicesDep
from servicetsunami.api.oauth import CONSENT_PATH, open_request
from servicetsunami.errors import InvalidInput
from servicetsunami.services.identity import oauth, users

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
_HOST = re.compile(r"[A-Za-z0-9.\-:]{1,253}")


@router.get(CONSENT_PATH)
async def consent_page(
    request: Request, services: ServicesDep, sealed: Annotated[str, Query(alias="request")] = ""
) -> Response:
    current = await session.current(request, services)
    if current is None:
        back = local(f"{CONSENT_PATH}?request={sealed}")
        return RedirectResponse("/signin?next=" + quote(back, safe=""), status_code=303)
    request.state.console_session = current  # for the error block, when the request is refused
    pending = open_request(services, sealed)
    client = await call(lambda: oauth.get_client(services, str(pending["client_id"])))
    if client is None:
        raise InvalidInput("this app is no longer registered; start connecting it again")
    me = await call(lambda: users.me(services, current.principal))
    asked = [str(scope) for scope in pending.get("scopes") or []]
    granted = oauth.effective_scopes(asked, current.principal.role)
    context: dict[str, Any] = {
        "permissions": [(name, oauth.SCOPE_DESCRIPTIONS[name]) for name in granted if name in oauth.TOOL_SCOPES],
        "withheld": [name for name in asked if name in oauth.TOOL_SCOPES and name not in granted],
        "client_name": client.name,
        "redirect_host": _origin(str(pending["redirect_uri"])) or str(pending["redirect_uri"]),
        "user_label": me.user.email if me.user is not None else current.principal.subject,
        "can_consent": me.user is not None,
        "sealed": sealed,
    }
    response = page(request, services, current, "consent.html", context)
    response.headers["content-security-policy"] = _policy_for(str(pending["redirect_uri"]))
    response.headers["cache-control"] = "no-store"
    return response


@router.post(CONSENT_PATH)
async def decide(
    request: Request,
    services: ServicesDep,
    current: SessionDep,
    sealed: Annotated[str, Form(alias="request")] = "",
    decision: Annotated[str, Form()] = "",
) -> Response:
    pending = open_request(services, sealed)
    redirect_uri = str(pending["redirect_uri"])
    answer: dict[str, str | None] = {"state": pending.get("state"), "iss": str(pending["issuer"])}
    if decision == "allow":
        principal = current.principal
        code = await call(
            lambda: oauth.consent(
                services,
                principal,
                client_id=str(pending["client_id"]),
                redirect_uri=redirect_uri,
                redirect_uri_explicit=bool(pending["redirect_uri_explicit"]),
                code_challenge=str(pending["code_challenge"]),
                resource=str(pending["resource"]),
                scopes=list(pending.get("scopes") or []),
            )
        )
        answer["code"] = code
    elif decision == "deny":
        answer["error"] = "access_denied"
        answer["error_description"] = "the user denied the request"
    else:
        raise InvalidInput("press Allow or Deny")
    target = construct_redirect_uri(redirect_uri, **answer)
    response = RedirectResponse(target, status_code=303, headers={"cache-control": "no-store"})
    return current.apply(request, response)


def _policy_for(redirect_uri: str) -> str:
    """The pages' policy, with the app's origin added to where the form may lead."""
    origin = _origin(redirect_uri)
    if origin is None:
        return PAGE_POLICY
    return PAGE_POLICY.replace("form-action 'self'", f"form-action 'self' {origin}")


def _origin(uri: str) -> str | None:
    """``scheme://host[:port]`` of a redirect URI, built from its parsed parts only (a policy must not
    take anything else from a client's input)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not _HOST.fullmatch(host):
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}" + (f":{parts.port}" if parts.port else "")
