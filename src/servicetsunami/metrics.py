"""Prometheus metrics: every counter, histogram and gauge the service exports at ``/metrics``.

The names and labels are the contract with dashboards; keep them stable. Labels never carry a tenant,
a principal or a free text (their number must stay small); per-tenant figures come from the store
(the ``metrics`` MCP tool).

With ``tsunami serve --workers N`` every worker process writes its values to files in one folder
(prometheus_client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``): the serving command empties
that folder and names it in the environment before the workers start, so each of them imports
prometheus_client already in that mode, and a scrape answered by any worker adds up all of them.
Gauges of processes that have died are dropped at the next scrape (:func:`exposition`). With one
process the values stay in memory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds; from a cached answer (well under a millisecond) to a long statement.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_RUN_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400)

MCP_REQUESTS = Counter(
    "mcp_requests_total",
    "MCP tool calls by tool (operation) and outcome (ok or an error code).",
    ["operation", "status"],
)
MCP_DURATION = Histogram(
    "mcp_request_duration_seconds", "MCP tool call latency by tool.", ["operation"], buckets=_LATENCY_BUCKETS
)
HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests by method, route template and status code.", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by method and route template.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
RUNS_FINISHED = Counter("runs_finished_total", "Runs that ended, by kind and final state.", ["kind", "state"])
RUN_DURATION = Histogram(
    "run_duration_seconds",
    "Time a run took in this worker, by kind and final state.",
    ["kind", "state"],
    buckets=_RUN_BUCKETS,
)
SYNC_ROWS = Counter("sync_rows_total", "Rows committed by syncs from sources.")
SYNC_BYTES = Counter("sync_bytes_total", "Bytes of Arrow data committed by syncs from sources.")
ENGINE_STATEMENTS = Histogram(
    "engine_statement_duration_seconds",
    "Statements run on the lakehouse engine, by engine and outcome (ok, error, cached).",
    ["engine", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
RESULT_CACHE = Counter("result_cache_requests_total", "Result cache lookups by outcome (hit, miss).", ["outcome"])
RATE_LIMITED = Counter("rate_limit_rejections_total", "Calls refused by a rate limit, by limit name.", ["limit"])
WEBHOOK_DELIVERIES = Counter(
    "webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retrying: failed and due again, failed: given up).",
    ["outcome"],
)
SANDBOX_CONTEXTS = Gauge(
    "sandbox_contexts", "Live command execution contexts (sandboxed kernels).", multiprocess_mode="livesum"
)


def prepare_multiprocess(folder: Path, /) -> None:
    """For the serving command, before its workers start: an empty ``folder`` named in the
    environment, so every worker process it starts writes its values there."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(folder)


def multiprocess_folder() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The text format of every metric of this process, or of all worker processes, plus ``extra``
    collectors (figures read at scrape time, like queue depths)."""
    folder = multiprocess_folder()
    if folder is None:
        registry: CollectorRegistry = REGISTRY
        added = list(extra)
        for collector in added:
            registry.register(collector)
        try:
            return generate_latest(registry)
        finally:
            for collector in added:
                registry.unregister(collector)
    _forget_dead_processes(folder)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, str(folder))  # type: ignore[no-untyped-call]  # untyped library
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


def _forget_dead_processes(folder: Path) -> None:
    """Live gauges of a worker that died (uvicorn starts another) no longer count; its counters do."""
    for path in folder.glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), str(folder))  # type: ignore[no-untyped-call]  # untyped library


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class GaugesAtScrape(Collector):
    """Gauges whose values are read when scraped (queue depths from the store): ``read`` returns
    ``{metric name: (help, label names, {label values: value})}``."""

    def __init__(
        self, read: Callable[[], dict[str, tuple[str, tuple[str, ...], dict[tuple[str, ...], float]]]]
    ) -> None:
        self._read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        for name, (doc, labels, values) in self._read().items():
            family = GaugeMetricFamily(name, doc, labels=list(labels))
            for label_values, value in values.items():
                family.add_metric(list(label_values), value)
            yield family
