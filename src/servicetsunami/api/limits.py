"""Request limits of the REST door: body size (ASGI middleware) and per-caller rate limits.

Bodies are counted as they arrive, so a client that sends no ``Content-Length`` (or a false one)
is cut off at the limit too. Dataset uploads have their own, larger limit
(``ingest.max_upload_bytes``, 1 GiB by default); everything else under ``/api/v1`` is held to
``api.max_body_bytes``.

Rate limits are moving windows keyed by the principal (queries) or by the account and the client
address (logins); the ``limits`` library parses their ``"10/minute"`` form. The hits are counted in
a small SQLite file under the data folder (``<home>/run/ratelimits.db``, WAL, not synced: counts
need not survive a crash), so that every worker process of ``tsunami serve`` sees the same counts
and a client gets its whole allowance whichever worker answers it. (``limits``' own in-memory
storage is per process, and it starts a timer thread after almost every hit, which on the event
loop cost more than the request.) A refused request is a
:class:`~servicetsunami.errors.RateLimited` with the seconds to wait, which the error handler sends
as ``Retry-After``.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from pathlib import Path

from limits import RateLimitItem, parse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicetsunami import logs
from servicetsunami.api.problems import problem
from servicetsunami.errors import BodyTooLarge, InvalidInput, RateLimited

API_PREFIX = "/api/v1"
UPLOAD_PATH = f"{API_PREFIX}/datasets"
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
        limit = self.max_upload if scope.get("method") == "POST" and path.rstrip("/") == UPLOAD_PATH else self.max_body
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(scope, receive, send, limit)
        elif limit == self.max_body:
            # Small bodies are read here, whole, so that going over the limit is answered with 413
            # (FastAPI turns any error while it reads a JSON body into a 400).
            body = await _read_at_most(receive, limit)
            if body is None:
                await _too_large(scope, receive, send, limit)
            else:
                await self.app(scope, _replay(body, receive), send)
        else:  # uploads are streamed by their route, which lets BodyTooLarge through
            await self.app(scope, _counting(receive, limit), send)


def _message(limit: int) -> str:
    return f"the request body is larger than {limit} bytes, the limit for this endpoint"


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = problem(BodyTooLarge.http_status, BodyTooLarge.code, _message(limit), logs.request_id.get())
    await response(scope, receive, send)


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect, when the client goes

    return replay


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


class RateLimiter:
    """Named limits (``"10/minute"``), each counted per identifier in a moving window shared by
    every process that opens the same ``path``."""

    PURGE_EVERY = 1024  # hits between sweeps of keys whose window has passed

    def __init__(self, path: Path, /, **limits: str) -> None:
        self._items: dict[str, RateLimitItem] = {}
        for name, spec in limits.items():
            try:
                self._items[name] = parse(spec)
            except ValueError:
                raise InvalidInput(f"rate limit {spec!r} for {name} is not like '10/minute'") from None
        self._longest = max((float(item.get_expiry()) for item in self._items.values()), default=0.0)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE IF NOT EXISTS hits (key TEXT NOT NULL, at REAL NOT NULL)")
        self._db.execute("CREATE INDEX IF NOT EXISTS hits_by_key ON hits (key, at)")
        self._lock = threading.Lock()
        self._since_purge = 0

    def hit(self, name: str, *identifiers: str, what: str) -> None:
        item = self._items[name]
        window = float(item.get_expiry())
        key = "\x1f".join((name, *identifiers))
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._since_purge += 1
                if self._since_purge >= self.PURGE_EVERY:
                    self._since_purge = 0
                    self._db.execute("DELETE FROM hits WHERE at <= ?", (now - self._longest,))
                self._db.execute("DELETE FROM hits WHERE key = ? AND at <= ?", (key, now - window))
                count, oldest = self._db.execute("SELECT count(*), min(at) FROM hits WHERE key = ?", (key,)).fetchone()
                allowed = count < item.amount
                if allowed:
                    self._db.execute("INSERT INTO hits (key, at) VALUES (?, ?)", (key, now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if not allowed:
            wait = max(1, math.ceil(oldest + window - now))
            raise RateLimited(f"too many {what}; try again in {wait} s", retry_after=wait)

    def close(self) -> None:
        with self._lock:
            self._db.close()
