"""What an operator asks the service: its status (what is configured and reachable, versions,
uptime, queue depths; never a secret), a detailed health check of each dependency, the figures
``/metrics`` reads from the store at scrape time, and one tenant's own figures (the ``metrics`` tool).
"""

from __future__ import annotations

import platform
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from servicetsunami import __version__
from servicetsunami.errors import TsunamiError
from servicetsunami.runs.sandbox import bwrap
from servicetsunami.services.models import HealthCheck, HealthReport
from servicetsunami.services.ops.health import readiness
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.store.repositories import webhooks as webhooks_repo
from servicetsunami.tenancy import Principal

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

STARTED = time.time()  # when this process imported the service layer: its uptime's start
ACTIVE_STATES = ("queued", "running")
_DELIVERY_STATUSES = ("pending", "delivering", "succeeded", "failed")


class RunCount(BaseModel):
    kind: str
    state: str
    count: int


class ServiceStatus(BaseModel):
    """The service as configured and as it answers now. Holds no secret: only whether one is set."""

    version: str
    python: str
    uptime_seconds: float
    engine: str
    store: Literal["sqlite", "postgresql", "other"]
    mirror: str | None = Field(None, description="The engine every write is copied to, if any")
    multi_tenant: bool
    workers: int
    llm_provider: str = Field(description="none, anthropic or openai")
    llm_configured: bool = Field(description="A provider is chosen and its key is set")
    metrics_enabled: bool
    cors_enabled: bool
    audit_enabled: bool
    log_format: str
    checks: dict[str, HealthCheck]
    active_runs: list[RunCount] = Field(description="Runs queued or running now, by kind (every tenant)")
    outbox: dict[str, int] | None = Field(None, description="Mirror jobs by status (pending, synced, failed)")
    webhook_outbox: dict[str, int] = Field(
        default_factory=dict, description="Webhook deliveries by status (pending, delivering, succeeded, failed)"
    )


class RunFigures(BaseModel):
    kind: str
    state: str
    count: int
    mean_seconds: float
    max_seconds: float


class TenantMetrics(BaseModel):
    """One tenant's own figures: its runs now and over the last hours."""

    tenant: str
    since: datetime
    active_runs: list[RunCount]
    finished_runs: list[RunFigures] = Field(description="Runs that ended since `since`, by kind and final state")


def service_status(svc: Services, /) -> ServiceStatus:
    settings = svc.settings
    url = settings.resolved_database_url
    store: Literal["sqlite", "postgresql", "other"] = (
        "sqlite" if url.startswith("sqlite") else "postgresql" if url.startswith("postgresql") else "other"
    )
    with svc.store.session() as session:
        active = runs_repo.counts_by_kind_and_state(session, states=ACTIVE_STATES)
        deliveries = webhooks_repo.counts_by_status(session)
    return ServiceStatus(
        version=__version__,
        python=platform.python_version(),
        uptime_seconds=round(time.time() - STARTED, 1),
        engine=svc.engine.kind,
        store=store,
        mirror=settings.mirror or None,
        multi_tenant=settings.multi_tenant,
        workers=settings.serve.resolved_workers,
        llm_provider=settings.ai.provider,
        llm_configured=_llm_configured(svc),
        metrics_enabled=settings.metrics.enabled,
        cors_enabled=settings.cors.enabled,
        audit_enabled=settings.audit.enabled,
        log_format=settings.log_format,
        checks=readiness(svc).checks,
        active_runs=[RunCount(kind=k, state=s, count=n) for (k, s), n in sorted(active.items())],
        outbox=svc.mirror.summary() if svc.mirror is not None else None,
        webhook_outbox={status: deliveries.get(status, 0) for status in _DELIVERY_STATUSES},
    )


def detailed_health(svc: Services, /) -> HealthReport:
    """:func:`readiness` (store, engine, migrations, mirror) plus the sandbox and the LLM provider;
    degraded when a dependency the configuration needs does not answer."""
    report = readiness(svc)
    started = time.perf_counter()
    reason = bwrap.probe(svc.settings.sandbox.uid if bwrap.running_as_root() else None)
    elapsed = round((time.perf_counter() - started) * 1000, 2)
    if reason is None:
        report.checks["sandbox"] = HealthCheck(ok=True, detail="bubblewrap sandbox starts", latency_ms=elapsed)
    else:
        # Code then cannot run; single-user mode with sandbox.unsandboxed runs it without one.
        allowed = not svc.settings.multi_tenant and svc.settings.sandbox.unsandboxed
        detail = reason + ("; code runs unsandboxed (sandbox.unsandboxed)" if allowed else "; notebooks cannot run")
        report.checks["sandbox"] = HealthCheck(ok=allowed, detail=detail, latency_ms=elapsed)
    provider = svc.settings.ai.provider
    if provider == "none":
        llm = HealthCheck(
            ok=True, detail="no LLM provider configured: MCP sampling, then answers without a model", latency_ms=0
        )
    elif _llm_configured(svc):
        llm = HealthCheck(
            ok=True, detail=f"{provider} configured (model {svc.settings.ai.model or 'default'})", latency_ms=0
        )
    else:
        llm = HealthCheck(ok=False, detail=f"{provider} chosen but ai.api_key is not set", latency_ms=0)
    report.checks["llm"] = llm
    if not all(check.ok for check in report.checks.values()):
        report.status = "degraded"
    return report


def tenant_metrics(svc: Services, principal: Principal, /, *, hours: float = 24) -> TenantMetrics:
    """The caller's tenant's runs: active now, and those that finished in the last ``hours``."""
    since = datetime.now(UTC) - timedelta(hours=hours)
    with svc.store.session() as session:
        active = runs_repo.counts_by_kind_and_state(session, states=ACTIVE_STATES, tenant_id=principal.tenant_id)
        finished = runs_repo.finished_since(session, tenant_id=principal.tenant_id, since=since)
    groups: dict[tuple[str, str], list[float]] = {}
    for kind, state, seconds in finished:
        groups.setdefault((kind, state), []).append(seconds)
    return TenantMetrics(
        tenant=principal.tenant_slug,
        since=since,
        active_runs=[RunCount(kind=k, state=s, count=n) for (k, s), n in sorted(active.items())],
        finished_runs=[
            RunFigures(
                kind=k, state=s, count=len(v), mean_seconds=round(sum(v) / len(v), 3), max_seconds=round(max(v), 3)
            )
            for (k, s), v in sorted(groups.items())
        ],
    )


GaugeValues = dict[str, tuple[str, tuple[str, ...], dict[tuple[str, ...], float]]]


def scrape_gauges(svc: Services, /) -> GaugeValues:
    """Figures read from the store when ``/metrics`` is scraped: the same whichever worker answers."""
    values: GaugeValues = {}
    try:
        with svc.store.session() as session:
            active = runs_repo.counts_by_kind_and_state(session, states=ACTIVE_STATES)
            deliveries = webhooks_repo.counts_by_status(session)
        values["webhook_outbox_deliveries"] = (
            "Webhook deliveries by status (pending and delivering are the depth of the queue).",
            ("status",),
            {(status,): float(deliveries.get(status, 0)) for status in _DELIVERY_STATUSES},
        )
        values["runs_active"] = (
            "Runs queued or running now, by kind and state.",
            ("kind", "state"),
            {(k, s): float(n) for (k, s), n in active.items()},
        )
        if svc.mirror is not None:
            values["outbox_jobs"] = (
                "Mirror outbox jobs by status (pending is the depth of the queue).",
                ("status",),
                {(status,): float(n) for status, n in svc.mirror.summary().items()},
            )
    except TsunamiError:
        values["store_up"] = ("Whether the system store answered this scrape.", (), {(): 0.0})
        return values
    values["store_up"] = ("Whether the system store answered this scrape.", (), {(): 1.0})
    return values


def _llm_configured(svc: Services) -> bool:
    ai = svc.settings.ai
    return ai.provider != "none" and ai.api_key is not None and bool(ai.api_key.get_secret_value())
