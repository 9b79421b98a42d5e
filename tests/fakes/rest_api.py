"""A local fake REST API for the REST source's tests: real HTTP over a loopback socket on a random port.

It serves the same records behind every pagination style and every auth kind, a parent/child pair
(``/users`` and ``/users/{id}/orders``), an incremental ``/events`` endpoint whose ``since`` means
"at or after" (as many APIs do), an OAuth2 client-credentials token endpoint, and traps: a ``next``
URL and a redirect pointing at the cloud metadata address. Faults (:meth:`FakeApi.fail`) answer a
path's next requests with 429 or 503 and a ``Retry-After``.
"""

from __future__ import annotations

import base64
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

TOKEN = "bearer-" + secrets.token_hex(8)
API_KEY = "key-" + secrets.token_hex(8)
BASIC = ("reader", "pw-" + secrets.token_hex(8))
CLIENT = ("client-1", "client-secret-" + secrets.token_hex(8))


@dataclass
class FakeState:
    items: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # served as they are at /rows, 10 a page
    users: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    faults: dict[str, list[tuple[int, str | None]]] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)  # issued OAuth tokens and when they expire
    token_lifetime: int = 3600
    issued: int = 0
    requests: list[str] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    seen_authorization: list[str | None] = field(default_factory=list)


def _items(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "name": f"item {i}",
            "price": round(i * 1.25, 2),
            "tags": ["a", "b"] if i % 2 else [],
            "owner": {"id": i % 7, "email": f"o{i % 7}@example.com"},
            "updated_at": f"2024-01-{1 + i // 10:02d}T00:00:{i % 60:02d}Z",
        }
        for i in range(1, n + 1)
    ]


class FakeApi:
    def __init__(self, items: int = 95) -> None:
        self.state = FakeState(items=_items(items))
        self.state.events = [
            {"id": i, "kind": "e", "updated_at": f"2024-03-01T00:{i // 60:02d}:{i % 60:02d}Z"} for i in range(1, 41)
        ]
        self.state.users = [{"id": u, "login": f"user{u}"} for u in range(1, 5)]
        self.state.orders = {u: [{"order_id": u * 100 + k, "total": k * 10} for k in range(u)] for u in range(1, 5)}
        self.base_url = ""
        self._server: uvicorn.Server | None = None

    def fail(self, path: str, *statuses: int, retry_after: str | None = "0") -> None:
        """The next ``len(statuses)`` requests of ``path`` answer these statuses."""
        self.state.faults.setdefault(path, []).extend((s, retry_after) for s in statuses)

    # -- app ------------------------------------------------------------------------------------

    def app(self) -> Starlette:
        state = self.state

        def page(request: Request, size: int = 10) -> tuple[int, int]:
            return int(request.query_params.get("page", "1")), int(request.query_params.get("per_page", str(size)))

        async def items_pages(request: Request) -> Response:
            number, size = page(request)
            chunk = state.items[(number - 1) * size : number * size]
            pages = (len(state.items) + size - 1) // size
            return JSONResponse({"data": {"items": chunk}, "total_pages": pages})

        async def items_offset(request: Request) -> Response:
            offset, limit = int(request.query_params.get("offset", "0")), int(request.query_params.get("limit", "10"))
            return JSONResponse({"results": state.items[offset : offset + limit], "count": len(state.items)})

        async def items_cursor(request: Request) -> Response:
            start = int(request.query_params.get("cursor", "0"))
            chunk = state.items[start : start + 10]
            following = start + 10 if start + 10 < len(state.items) else None
            return JSONResponse({"items": chunk, "meta": {"next_cursor": str(following) if following else None}})

        async def items_next(request: Request) -> Response:
            number = int(request.query_params.get("page", "1"))
            chunk = state.items[(number - 1) * 10 : number * 10]
            following = None
            if number * 10 < len(state.items):
                following = f"{self.base_url}/next?page={number + 1}"
            return JSONResponse({"items": chunk, "next": following})

        async def items_link(request: Request) -> Response:
            number = int(request.query_params.get("page", "1"))
            chunk = state.items[(number - 1) * 10 : number * 10]
            headers = {}
            if number * 10 < len(state.items):
                headers["Link"] = f'</linked?page={number + 1}>; rel="next", </linked?page=1>; rel="first"'
            return JSONResponse(chunk, headers=headers)

        async def events(request: Request) -> Response:
            since = request.query_params.get("since")
            rows = [e for e in state.events if since is None or e["updated_at"] >= since]  # "at or after"
            number = int(request.query_params.get("page", "1"))
            return JSONResponse({"events": rows[(number - 1) * 7 : number * 7]})

        async def rows(request: Request) -> Response:
            number = int(request.query_params.get("page", "1"))
            return JSONResponse({"rows": state.rows[(number - 1) * 10 : number * 10]})

        async def users(request: Request) -> Response:
            return JSONResponse(state.users)

        async def orders(request: Request) -> Response:
            user = int(request.path_params["user_id"])
            if user not in state.orders:
                return JSONResponse({"error": "no such user"}, status_code=404)
            return JSONResponse({"orders": state.orders[user]})

        async def token(request: Request) -> Response:
            form = await request.form()
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
            header = request.headers.get("authorization", "")
            if header.startswith("Basic "):
                client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
            if form.get("grant_type") != "client_credentials" or (client_id, client_secret) != CLIENT:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            issued = "access-" + secrets.token_hex(8)
            state.tokens[issued] = time.monotonic() + state.token_lifetime
            state.issued += 1
            return JSONResponse({"access_token": issued, "token_type": "bearer", "expires_in": state.token_lifetime})

        async def evil_next(request: Request) -> Response:
            return JSONResponse({"items": [{"id": 1}], "next": "http://169.254.169.254/latest/meta-data/"})

        async def redirect(request: Request) -> Response:
            return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)

        async def moved(request: Request) -> Response:
            return RedirectResponse(f"{self.base_url}/pages", status_code=301)

        async def gate(request: Request, call: Any) -> Response:
            state.requests.append(request.url.path)
            state.queries.append(dict(request.query_params))
            state.seen_authorization.append(request.headers.get("authorization"))
            queue = state.faults.get(request.url.path)
            if queue:
                status, retry_after = queue.pop(0)
                headers = {"Retry-After": retry_after} if retry_after is not None else {}
                return JSONResponse({"error": "slow down"}, status_code=status, headers=headers)
            if request.url.path.startswith("/bearer/") and request.headers.get("authorization") != f"Bearer {TOKEN}":
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            if request.url.path.startswith("/key/"):
                given = request.headers.get("x-api-key") or request.query_params.get("api_key")
                if given != API_KEY:
                    return JSONResponse({"error": "unauthorized"}, status_code=401)
            if request.url.path.startswith("/basic/"):
                expected = "Basic " + base64.b64encode(f"{BASIC[0]}:{BASIC[1]}".encode()).decode()
                if request.headers.get("authorization") != expected:
                    return JSONResponse({"error": "unauthorized"}, status_code=401)
            if request.url.path.startswith("/oauth/") and request.url.path != "/oauth/token":
                header = request.headers.get("authorization", "")
                expires = state.tokens.get(header.removeprefix("Bearer "))
                if expires is None or expires < time.monotonic():
                    return JSONResponse({"error": "invalid_token"}, status_code=401)
            response: Response = await call(request)
            return response

        routes = []
        for prefix in ("", "/bearer", "/key", "/basic", "/oauth"):
            routes += [
                Route(f"{prefix}/pages", items_pages),
                Route(f"{prefix}/offset", items_offset),
            ]
        routes += [
            Route("/cursor", items_cursor),
            Route("/next", items_next),
            Route("/linked", items_link),
            Route("/events", events),
            Route("/rows", rows),
            Route("/users", users),
            Route("/users/{user_id}/orders", orders),
            Route("/oauth/token", token, methods=["POST"]),
            Route("/evil-next", evil_next),
            Route("/redirect", redirect),
            Route("/moved", moved),
        ]
        return Starlette(routes=routes, middleware=[Middleware(BaseHTTPMiddleware, dispatch=gate)])

    # -- server ---------------------------------------------------------------------------------

    @contextmanager
    def running(self) -> Iterator[FakeApi]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the fake REST API did not start")
            time.sleep(0.01)
        try:
            yield self
        finally:
            server.should_exit = True
            thread.join(timeout=20)
            sock.close()
