"""Health: the store and the engine are really asked, not assumed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from servicetsunami import __version__
from servicetsunami.errors import TsunamiError
from servicetsunami.services.models import HealthCheck, HealthReport

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)


def health(svc: Services) -> HealthReport:
    checks = {
        "store": _check(svc.store.ping, "system store answers"),
        "engine": _check(svc.engine.ping, f"{svc.engine.kind} lakehouse answers"),
    }
    if svc.mirror is not None:
        checks["mirror"] = _mirror_check(svc)
    healthy = all(c.ok for c in checks.values())
    return HealthReport(
        status="ok" if healthy else "degraded", version=__version__, engine=svc.engine.kind, checks=checks
    )


def readiness(svc: Services) -> HealthReport:
    """:func:`health` plus: the store's schema is at this version's newest migration."""
    report = health(svc)
    started = time.perf_counter()
    try:
        current, head = svc.store.current_revision(), svc.store.head_revision()
        ok = current == head
        detail = f"schema at revision {current}" if ok else f"schema at revision {current}, expected {head}"
    except TsunamiError as exc:
        ok, detail = False, exc.message
    report.checks["migrations"] = HealthCheck(
        ok=ok, detail=detail, latency_ms=round((time.perf_counter() - started) * 1000, 2)
    )
    if not ok:
        report.status = "degraded"
    return report


def _check(probe: Callable[[], float], ok_detail: str) -> HealthCheck:
    started = time.perf_counter()
    try:
        latency = probe()
        return HealthCheck(ok=True, detail=ok_detail, latency_ms=round(latency, 2))
    except TsunamiError as exc:
        logger.warning("health check failed: %s", exc.message)
        return HealthCheck(ok=False, detail=exc.message, latency_ms=round((time.perf_counter() - started) * 1000, 2))


def _mirror_check(svc: Services) -> HealthCheck:
    """The outbox: healthy while nothing has failed for good (pending jobs are being retried)."""
    assert svc.mirror is not None
    started = time.perf_counter()
    try:
        counts = svc.mirror.summary()
    except TsunamiError as exc:
        return HealthCheck(ok=False, detail=exc.message, latency_ms=round((time.perf_counter() - started) * 1000, 2))
    pending, synced, failed = counts["pending"], counts["synced"], counts["failed"]
    detail = f"mirror to {svc.mirror.target_name}: {pending} pending, {synced} synced, {failed} failed"
    if counts["failed"]:
        detail += "; `tsunami mirror retry` replays the failed ones"
    return HealthCheck(
        ok=counts["failed"] == 0, detail=detail, latency_ms=round((time.perf_counter() - started) * 1000, 2)
    )
