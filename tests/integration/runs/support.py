"""Run kinds used only by these tests, settings with short beats, and a fresh PostgreSQL database.

The kinds are registered when this module is imported (by the tests, and by ``worker_child.py``,
which executes runs in a process of its own so a test can kill it):

- ``test_echo`` returns its parameters and records who executed it in ``EXECUTED``;
- ``test_block`` reports progress, prints ``running <id>`` when it starts, then waits until canceled;
- ``test_block_requeue`` is ``test_block`` marked safe to run again after its worker died;
- ``test_context`` returns its thread and the value of ``CONTEXT`` it found, then sets it.
"""

from __future__ import annotations

import contextvars
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from servicetsunami.errors import Cancelled
from servicetsunami.services.container import Services
from servicetsunami.services.runs.context import RunContext
from servicetsunami.services.runs.kinds import RunKind, register
from servicetsunami.settings import Settings

EXECUTED: list[tuple[str, str]] = []  # (run id, worker id) of every test_echo run executed here
_executed_lock = threading.Lock()
FAST_RUNS = {"heartbeat_seconds": 0.2, "stale_after_seconds": 1.5, "sweep_seconds": 0.2, "poll_seconds": 0.1}


def _echo(svc: Services, ctx: RunContext) -> dict[str, Any]:
    with _executed_lock:
        EXECUTED.append((ctx.run_id, svc.launcher.worker_id))
    ctx.progress(done=1, total=1, unit="steps", force=True)
    return {"echo": ctx.params}


def _block(svc: Services, ctx: RunContext) -> dict[str, Any]:
    ctx.progress(done=0, unit="steps", message="blocked", force=True)
    print(f"running {ctx.run_id}", flush=True)
    stop = threading.Event()
    ctx.on_cancel(stop.set)
    if ctx.params.get("finish_on_attempt") == ctx.attempt:
        return {"attempt": ctx.attempt}
    stop.wait(float(ctx.params.get("max_seconds", 120)))
    ctx.raise_if_cancelled()
    return {"attempt": ctx.attempt}


CONTEXT: contextvars.ContextVar[str] = contextvars.ContextVar("test_context", default="unset")


def _context(svc: Services, ctx: RunContext) -> dict[str, Any]:
    found = CONTEXT.get()
    CONTEXT.set(ctx.run_id)
    return {"thread": threading.get_ident(), "found": found}


def _fail(svc: Services, ctx: RunContext) -> dict[str, Any]:
    raise Cancelled("never") if ctx.params.get("cancel") else RuntimeError("boom: secret details")


register(RunKind("test_echo", _echo))
register(RunKind("test_block", _block))
register(RunKind("test_block_requeue", _block, requeue_when_lost=True))
register(RunKind("test_crash", _fail))
register(RunKind("test_context", _context))


def settings_for(home: Path, database_url: str = "") -> Settings:
    return Settings(home=home, database_url=database_url, runs=FAST_RUNS, _env_file=None)  # type: ignore[call-arg]


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database on the test server; dropped (with its connections) afterwards."""
    server = os.environ.get("TSUNAMI_TEST_POSTGRES_URL", "")
    if not server:
        raise RuntimeError("TSUNAMI_TEST_POSTGRES_URL is not set: these tests need a PostgreSQL server")
    url = make_url(server)
    name = f"tsunami_runs_{secrets.token_hex(4)}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
