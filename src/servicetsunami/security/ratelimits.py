"""Rate limits shared by every door and every worker process: moving windows, and backoff after failures.

A limit is named (``"query"``, ``"login"``, ``"tool:export_notebook"``, ``"route:get_run"``) and
written like ``"10/minute"`` (the ``limits`` library
parses it); it is counted per identifier tuple (a principal's tenant and subject, an account and
a client address) in a moving window. The REST door and the MCP door call the same limiter with the
same name and identifiers for the same operation, so a caller has one allowance whichever door
they use (``query``: REST ``POST /query`` and dataset queries, MCP ``query_sql``).

Backoff, for guesses: once ``backoff_after`` failures in a row are recorded for one identifier
tuple, the next try must wait 1 s, and each further failure doubles the wait (2 s, 4 s, ...) up to
``backoff_max_seconds``; a success, or a quiet period that long, starts it over.

The counts live in a small SQLite file under the data folder (``<home>/run/ratelimits.db``, WAL,
not synced: counts need not survive a crash), so that every worker process of ``tsunami serve``
sees the same counts. (``limits``' own in-memory storage is per process, and it starts a timer
thread after almost every hit, which on the event loop cost more than the request.) A refused call
is a :class:`~servicetsunami.errors.RateLimited` with the seconds to wait (REST sends them as
``Retry-After``).
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse

from servicetsunami import metrics
from servicetsunami.errors import InvalidInput, RateLimited
from servicetsunami.store.db import open_sqlite_file

if TYPE_CHECKING:
    from servicetsunami.settings import Settings

FILE_NAME = "ratelimits.db"


class RateLimiter:
    """Named limits (``"10/minute"``), each counted per identifier in a moving window shared by
    every process that opens the same ``path``; and backoff after failures (module docstring)."""

    PURGE_EVERY = 1024  # hits between sweeps of keys whose window has passed

    def __init__(
        self,
        path: Path,
        /,
        *,
        backoff_after: int = 3,
        backoff_max_seconds: float = 900.0,
        clock: Callable[[], float] = time.time,
        extra_limits: Mapping[str, str] | None = None,
        **limits: str,
    ) -> None:
        self._items: dict[str, RateLimitItem] = {}
        for name, spec in {**limits, **(extra_limits or {})}.items():
            try:
                self._items[name] = parse(spec)
            except ValueError:
                raise InvalidInput(f"rate limit {spec!r} for {name} is not like '10/minute'") from None
        self._has_routes = any(name.startswith(ROUTE_PREFIX) for name in self._items)
        self._longest = max((float(item.get_expiry()) for item in self._items.values()), default=0.0)
        self._backoff_after = backoff_after
        self._backoff_max = backoff_max_seconds
        self._clock = clock
        self._db = open_sqlite_file(
            path,
            "PRAGMA synchronous=OFF",
            "CREATE TABLE IF NOT EXISTS hits (key TEXT NOT NULL, at REAL NOT NULL)",
            "CREATE INDEX IF NOT EXISTS hits_by_key ON hits (key, at)",
            "CREATE TABLE IF NOT EXISTS failures (key TEXT PRIMARY KEY, count INTEGER NOT NULL, "
            "last REAL NOT NULL, until REAL NOT NULL)",
        )
        self._lock = threading.Lock()
        self._since_purge = 0

    def has(self, name: str, /) -> bool:
        """Whether a limit named ``name`` is configured."""
        return name in self._items

    @property
    def has_routes(self) -> bool:
        """Whether any REST route has a limit of its own (``rate_limits.routes``)."""
        return self._has_routes

    def hit(self, name: str, *identifiers: str, what: str) -> None:
        """Count one call against the limit ``name`` of ``identifiers``; ``RateLimited`` if it is used up."""
        self._hit(self._items[name], name, identifiers, what)

    def hit_rate(self, name: str, rate: str, /, *identifiers: str, what: str) -> None:
        """:meth:`hit` for a limit whose rate (``"100/minute"``) belongs to the thing called (a serving
        endpoint's own limit) rather than to the settings."""
        self._hit(parse_rate(rate), name, identifiers, what)

    def _hit(self, item: RateLimitItem, name: str, identifiers: tuple[str, ...], what: str) -> None:
        window = float(item.get_expiry())
        key = _key(name, identifiers)
        now = self._clock()
        with self._transaction():
            self._since_purge += 1
            if self._since_purge >= self.PURGE_EVERY:
                self._since_purge = 0
                self._db.execute("DELETE FROM hits WHERE at <= ?", (now - self._longest,))
                self._db.execute("DELETE FROM failures WHERE last <= ?", (now - self._backoff_max,))
            self._db.execute("DELETE FROM hits WHERE key = ? AND at <= ?", (key, now - window))
            count, oldest = self._db.execute("SELECT count(*), min(at) FROM hits WHERE key = ?", (key,)).fetchone()
            allowed = count < item.amount
            if allowed:
                self._db.execute("INSERT INTO hits (key, at) VALUES (?, ?)", (key, now))
        if not allowed:
            metrics.RATE_LIMITED.labels(name).inc()
            wait = max(1, math.ceil(oldest + window - now))
            raise RateLimited(f"too many {what}; try again in {wait} s", retry_after=wait)

    def check_backoff(self, name: str, *identifiers: str, what: str) -> None:
        """``RateLimited`` while ``identifiers`` must wait after their last failure."""
        with self._lock:
            row = self._db.execute("SELECT until FROM failures WHERE key = ?", (_key(name, identifiers),)).fetchone()
        now = self._clock()
        if row is not None and row[0] > now:
            metrics.RATE_LIMITED.labels(name).inc()
            wait = max(1, math.ceil(row[0] - now))
            raise RateLimited(f"too many {what}; try again in {wait} s", retry_after=wait)

    def record_failure(self, name: str, *identifiers: str) -> None:
        """One more failure in a row: past ``backoff_after`` of them, the next try must wait."""
        key = _key(name, identifiers)
        now = self._clock()
        with self._transaction():
            row = self._db.execute("SELECT count, last FROM failures WHERE key = ?", (key,)).fetchone()
            count = 1 if row is None or row[1] <= now - self._backoff_max else row[0] + 1
            over = count - self._backoff_after
            until = now + min(self._backoff_max, 2.0**over) if over >= 0 else now
            self._db.execute(
                "INSERT INTO failures (key, count, last, until) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET count = excluded.count, last = excluded.last, until = excluded.until",
                (key, count, now, until),
            )

    def clear_failures(self, name: str, *identifiers: str) -> None:
        """A success: the failures of ``identifiers`` are forgotten."""
        with self._transaction():
            self._db.execute("DELETE FROM failures WHERE key = ?", (_key(name, identifiers),))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise


def open_rate_limiter(settings: Settings, /) -> RateLimiter:
    """The limiter of these settings over ``<home>/run/ratelimits.db``, shared by doors and workers.

    Besides the fixed limits it holds the settings ``rate_limits.*``: ``tool:<name>`` per MCP tool,
    ``tool:*`` for every other tool (counted per tool), and ``route:<template or operation id>`` per
    REST route (see :func:`tool_limit` and :func:`route_limit`)."""
    configured = settings.rate_limits
    extra = {TOOL_PREFIX + name: spec for name, spec in configured.tools.items()}
    if configured.default:
        extra[DEFAULT_TOOL_LIMIT] = configured.default
    extra.update({ROUTE_PREFIX + route: spec for route, spec in configured.routes.items()})
    return RateLimiter(
        settings.resolved_home / "run" / FILE_NAME,
        backoff_after=settings.auth.login_backoff_after,
        backoff_max_seconds=settings.auth.login_backoff_max_seconds,
        login=settings.auth.login_rate_limit,
        login_client=settings.auth.login_client_rate_limit,
        login_account=settings.auth.login_account_rate_limit,
        oauth_register=settings.auth.oauth_register_rate_limit,
        query=settings.api.query_rate_limit,
        extra_limits=extra,
    )


def parse_rate(rate: str, /) -> RateLimitItem:
    """A rate like ``"10/minute"``; :class:`InvalidInput` when it is not one."""
    try:
        return _parse_cached(rate)
    except ValueError:
        raise InvalidInput(f"rate limit {rate!r} is not like '10/minute'") from None


@functools.lru_cache(maxsize=256)
def _parse_cached(rate: str) -> RateLimitItem:
    return parse(rate)


TOOL_PREFIX = "tool:"
DEFAULT_TOOL_LIMIT = "tool:*"
ROUTE_PREFIX = "route:"


def tool_limit(limiter: RateLimiter, tool: str, /) -> str | None:
    """The limit a call of the MCP tool ``tool`` counts against: its own, else the default, else None."""
    own = TOOL_PREFIX + tool
    if limiter.has(own):
        return own
    return DEFAULT_TOOL_LIMIT if limiter.has(DEFAULT_TOOL_LIMIT) else None


def route_limit(limiter: RateLimiter, *names: str) -> str | None:
    """The limit of the first of a REST route's ``names`` (``"GET /api/v1/runs/{run_id}"``,
    ``"/api/v1/runs/{run_id}"``, ``"get_run"``) that has one, else None."""
    for name in names:
        if limiter.has(ROUTE_PREFIX + name):
            return ROUTE_PREFIX + name
    return None


def _key(name: str, identifiers: tuple[str, ...]) -> str:
    return "\x1f".join((name, *identifiers))
