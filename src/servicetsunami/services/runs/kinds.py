"""The registry of run kinds: what executes a run of each kind, and how the launcher treats it.

Each area registers its kinds where it defines them (``services/ingestion/syncs.py`` registers
``sync``); :func:`registered` imports those modules first, so a worker knows every kind.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from servicetsunami.runs.base import KindPolicy
from servicetsunami.settings import Settings

if TYPE_CHECKING:
    from servicetsunami.services.container import Services
    from servicetsunami.services.runs.context import RunContext

Handler = Callable[["Services", "RunContext"], "dict[str, Any] | None"]

# Modules that register kinds when imported.
_KIND_MODULES = (
    "servicetsunami.services.ingestion.syncs",
    "servicetsunami.services.ops.mirror",
    "servicetsunami.services.pipelines.runner",
    "servicetsunami.services.notebooks.runs",
    "servicetsunami.services.vectors.indexes",
    "servicetsunami.services.serving.endpoints",
    "servicetsunami.services.catalog.statements",
    "servicetsunami.services.ops.webhook_delivery",
)


@dataclass(frozen=True, slots=True)
class RunKind:
    name: str
    handler: Handler
    requeue_when_lost: bool = False  # safe to run again from the start after its worker died
    max_parallel: Callable[[Settings], int] | None = None  # per process, from settings
    # Called by every worker on a period (from settings), e.g. to queue a run when work is due.
    ticker: Callable[[Services], float | None] | None = None  # may return the seconds until it is due again
    ticker_seconds: Callable[[Settings], float] | None = None

    def policy(self, settings: Settings) -> KindPolicy:
        limit = self.max_parallel(settings) if self.max_parallel is not None else None
        return KindPolicy(max_parallel=limit, requeue_when_lost=self.requeue_when_lost)


_KINDS: dict[str, RunKind] = {}


def register(kind: RunKind, /) -> RunKind:
    _KINDS[kind.name] = kind
    return kind


def registered() -> dict[str, RunKind]:
    for module in _KIND_MODULES:
        importlib.import_module(module)
    return dict(_KINDS)
