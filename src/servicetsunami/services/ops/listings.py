"""Time-limited caches of workspace listings (jobs, notebooks, warehouses, clusters), per tenant.

A listing is remembered for ``cache.ttl[kind]`` seconds under a key made of everything that changes
the answer: the kind, the caller's tenant, role and API key tool set, and the listing's arguments
(folder, page). Nothing is ever shared between tenants, whatever the transport: a stdio server, the
HTTP door and REST all key by the principal's tenant, never by a token or a session.

A write invalidates at once, in every worker process: each (tenant, kind) has a generation number in a
small SQLite file under the data folder (``<home>/run/listings.db``, beside the rate limits), which
every write bumps (:func:`invalidate`) and every cached read compares with the one its entry was made
under. A write racing with a load leaves an entry under the older generation, which the next read
refuses. Listings changed outside the service (a warehouse started in the Databricks console) are
seen when their TTL runs out.
"""

from __future__ import annotations

import copy
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from servicetsunami.store.db import open_sqlite_file
from servicetsunami.tenancy import Principal

if TYPE_CHECKING:
    from servicetsunami.services.container import Services
    from servicetsunami.settings import Settings

T = TypeVar("T")

FILE_NAME = "listings.db"
EVERY_TENANT = "*"  # a change every tenant's listing of a kind shows (no tenant id looks like this)
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _Entry:
    generation: int
    expires: float  # time.monotonic()
    value: Any


class ListingCache:
    """The cache of one service container (module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings.cache
        self._db = open_sqlite_file(
            settings.resolved_home / "run" / FILE_NAME,
            "PRAGMA synchronous=OFF",  # a lost bump after a crash only costs a stale TTL
            "CREATE TABLE IF NOT EXISTS generations (tenant TEXT NOT NULL, kind TEXT NOT NULL, "
            "generation INTEGER NOT NULL, PRIMARY KEY (tenant, kind))",
        )
        self._lock = threading.Lock()
        self._entries: dict[tuple[Hashable, ...], _Entry] = {}
        self.hits = 0
        self.misses = 0

    def ttl(self, kind: str, /) -> float:
        return float(self._settings.ttl.get(kind, 0)) if self._settings.enabled else 0.0

    def get(self, kind: str, principal: Principal, args: tuple[Hashable, ...], load: Callable[[], T], /) -> T:
        """The listing ``load()`` returns, from the cache while it is fresh and no write came since."""
        ttl = self.ttl(kind)
        if ttl <= 0:
            return load()
        key = (kind, principal.tenant_id, principal.role.value, principal.tools, *args)
        generation = self._generation(principal.tenant_id, kind)
        entry = self._entries.get(key)
        if entry is not None and entry.generation == generation and entry.expires > time.monotonic():
            self.hits += 1
            remembered: T = copy.deepcopy(entry.value)  # callers may change what they get back
            return remembered
        self.misses += 1
        value = load()
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                now = time.monotonic()
                self._entries = {k: e for k, e in self._entries.items() if e.expires > now}
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
            self._entries[key] = _Entry(generation, time.monotonic() + ttl, copy.deepcopy(value))
        return value

    def invalidate(self, tenant_id: str, kind: str, /) -> None:
        """A write changed ``kind`` listings of ``tenant_id`` (:data:`EVERY_TENANT`: of all tenants, e.g.
        a workspace's warehouses): every process's entries are stale now."""
        with self._lock:
            self._db.execute(
                "INSERT INTO generations (tenant, kind, generation) VALUES (?, ?, 1) "
                "ON CONFLICT (tenant, kind) DO UPDATE SET generation = generation + 1",
                (tenant_id, kind),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _generation(self, tenant_id: str, kind: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT sum(generation) FROM generations WHERE tenant IN (?, ?) AND kind = ?",
                (tenant_id, EVERY_TENANT, kind),
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0


_caches: dict[int, ListingCache] = {}
_caches_lock = threading.Lock()


def cache_of(svc: Services, /) -> ListingCache:
    """The listing cache of ``svc`` (made on first use, closed when ``svc`` is collected)."""
    key = id(svc)
    cache = _caches.get(key)
    if cache is None:
        with _caches_lock:
            cache = _caches.get(key)
            if cache is None:
                cache = _caches[key] = ListingCache(svc.settings)
                weakref.finalize(svc, _forget, key)
    return cache


def cached(svc: Services, kind: str, principal: Principal, args: tuple[Hashable, ...], load: Callable[[], T], /) -> T:
    """``load()``'s listing of ``kind`` for ``principal``, through the cache of ``svc``."""
    return cache_of(svc).get(kind, principal, args, load)


def invalidate(svc: Services, tenant_id: str | None, kind: str, /) -> None:
    """After a write to ``kind`` of ``tenant_id`` (None: a service-level change, nothing to do)."""
    if tenant_id is not None:
        cache_of(svc).invalidate(tenant_id, kind)


def _forget(key: int) -> None:
    with _caches_lock:
        cache = _caches.pop(key, None)
    if cache is not None:
        cache.close()
