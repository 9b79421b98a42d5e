"""Security headers on every response, and the interactive docs pages with the policy each needs.

Every response carries ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
``Referrer-Policy: no-referrer``, a Content-Security-Policy that allows nothing (JSON needs no
scripts, styles or frames) and ``Cache-Control: no-store``: tokens, new API keys and a tenant's rows
must not stay in a browser's or a proxy's cache. Over HTTPS it also carries Strict-Transport-Security.
A response that sets one of these headers itself keeps its own (the MCP stream's ``Cache-Control``,
the docs pages' policy); headers are added to the start of a response and never hold a body back,
so streams stream as before.

The docs pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) load their scripts, styles and icon
from this server (``/docs/assets/``: the files the ``fastapi-offline`` package ships, MIT-licensed),
so they work without any network access, and Swagger UI starts from one inline script: their policy
allows exactly those, this server's own origin and the inline scripts by their SHA-256, computed from
the page that is sent.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
    swagger_ui_default_parameters,
)
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_PATH = "/docs"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/docs/assets"

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_SWAGGER_SOURCES = {
    "script-src": ["'self'"],
    # Swagger UI sets style attributes as it renders.
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
}
_REDOC_SOURCES = {
    "script-src": ["'self'"],
    # ReDoc writes its styles into <style> elements.
    "style-src": ["'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "worker-src": ["blob:"],
}
_INLINE_SCRIPT_RE = re.compile(rb"<script>(.*?)</script>", re.DOTALL)

_DEFAULTS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", API_POLICY.encode()),
    (b"cache-control", b"no-store"),
)
_HSTS = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeaders:
    """Adds the headers above to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        defaults = (*_DEFAULTS, _HSTS) if scope.get("scheme") == "https" else _DEFAULTS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in defaults if name not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_docs_pages(app: FastAPI, *, openapi_url: str) -> None:
    """Serve Swagger UI, its OAuth2 redirect and ReDoc as FastAPI would, each with its policy."""

    def page(
        render: Callable[[str], HTMLResponse], sources: dict[str, list[str]]
    ) -> Callable[[Request], Awaitable[HTMLResponse]]:
        async def endpoint(request: Request) -> HTMLResponse:
            response = render(request.scope.get("root_path", "").rstrip("/"))
            response.headers["content-security-policy"] = page_policy(response.body, sources)
            return response

        return endpoint

    parameters = {**swagger_ui_default_parameters, "validatorUrl": None}  # no spec URL sent to a third party
    app.mount(ASSETS_PATH, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")
    app.add_route(
        DOCS_PATH,
        page(
            lambda root: get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=root + OAUTH2_REDIRECT_PATH,
                swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                swagger_ui_parameters=parameters,
            ),
            _SWAGGER_SOURCES,
        ),
        include_in_schema=False,
    )
    app.add_route(
        OAUTH2_REDIRECT_PATH,
        page(lambda root: get_swagger_ui_oauth2_redirect_html(), {}),
        include_in_schema=False,
    )
    app.add_route(
        REDOC_PATH,
        page(
            lambda root: get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                with_google_fonts=False,
            ),
            _REDOC_SOURCES,
        ),
        include_in_schema=False,
    )


def page_policy(body: bytes | memoryview, sources: dict[str, list[str]]) -> str:
    """The policy of an HTML page: ``sources`` per directive, plus its inline scripts by hash."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT_RE.findall(bytes(body))
    ]
    directives = {"default-src": ["'none'"], **sources}
    if hashes:
        directives["script-src"] = [*directives.get("script-src", []), *hashes]
    directives |= {"frame-ancestors": ["'none'"], "base-uri": ["'none'"], "form-action": ["'none'"]}
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())
