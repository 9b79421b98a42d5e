"""Engines by name. An engine's heavy imports happen only when it is chosen."""

from __future__ import annotations

from collections.abc import Callable

from servicetsunami.engines.base import Engine
from servicetsunami.errors import InvalidInput
from servicetsunami.settings import Settings


def _local(settings: Settings) -> Engine:
    from servicetsunami.engines.local.engine import LocalEngine

    return LocalEngine(
        settings.resolved_lakehouse_root,
        threads=settings.query.threads,
        memory_limit=settings.query.memory_limit,
        result_cache_bytes=settings.query.result_cache_mb * 1024 * 1024,
        deletion_vectors=settings.deletion_vectors,
        merge_timeout_seconds=settings.sync.merge_timeout_seconds,
    )


def _databricks(settings: Settings) -> Engine:
    from servicetsunami.engines.databricks.engine import DatabricksEngine

    return DatabricksEngine(settings.databricks, merge_timeout_seconds=settings.sync.merge_timeout_seconds)


ENGINES: dict[str, Callable[[Settings], Engine]] = {"local": _local, "databricks": _databricks}


def create_engine(settings: Settings) -> Engine:
    try:
        factory = ENGINES[settings.engine]
    except KeyError:
        raise InvalidInput(f"unknown engine {settings.engine!r}; known: {', '.join(ENGINES)}") from None
    return factory(settings)
