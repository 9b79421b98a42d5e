"""The outbox of the hybrid engine: every local bronze/silver/gold write is recorded as a job, and a
replay copies it to a second engine (Databricks), retried with backoff, with its status visible per
table. Replays run as runs of kind ``mirror_replay`` (``services/ops/mirror.py``).

How a replay stays exactly-once: the mirror engine records, per table, the last local version it
applied (an idempotency token ``tsunami-mirror`` / version, see
:class:`~servicetsunami.engines.base.Idempotency`). A job for local version V replays each local
commit after that one up to V, in order, each under its own version as the token, so a job replayed
twice, or two jobs covering the same commits, apply nothing twice; a job whose outbox row was lost is
covered by the next one. Appends replay the rows the commit added, merges upsert the files the commit
rewrote, overwrites and creates copy the table as it was at that version.

Status per job: ``pending`` (waiting or being retried; ``error`` holds the last failure), ``synced``,
``failed`` (terminal error or attempts used up; ``tsunami mirror retry`` puts them back).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, update

from servicetsunami.engines.base import Engine, Idempotency, WriteMode, WriteResult
from servicetsunami.engines.local import changes
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.engines.mirror import KEYS_KEY, MODE_KEY
from servicetsunami.errors import EngineError, TsunamiError
from servicetsunami.settings import Settings
from servicetsunami.store.db import Store
from servicetsunami.store.models import MirrorJob, utcnow
from servicetsunami.tenancy import TableRef

logger = logging.getLogger(__name__)

APP_ID = "tsunami-mirror"
# Commits that change no rows: nothing to copy (the mirror engine widens columns itself when needed).
_NO_DATA_OPERATIONS = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END"})


@dataclass(frozen=True, slots=True)
class ReplayReport:
    synced: int = 0
    retrying: int = 0
    failed: int = 0


class Outbox:
    def __init__(self, settings: Settings, store: Store, local: LocalEngine, target: Callable[[], Engine]) -> None:
        self.settings = settings
        self.store = store
        self.local = local
        self._target_factory = target
        self._target: Engine | None = None
        self._replay_lock = threading.Lock()

    @property
    def target_name(self) -> str:
        return self.settings.mirror

    # -- the outbox ---------------------------------------------------------------------------

    def enqueue(self, ref: TableRef, result: WriteResult, mode: WriteMode) -> None:
        with self.store.session() as session:
            session.add(
                MirrorJob(
                    target=self.target_name,
                    catalog=ref.catalog,
                    schema_name=ref.schema,
                    table_name=ref.name,
                    mode=mode,
                    local_version=result.version,
                    status="pending",
                    attempts=0,
                )
            )

    def status_for(self, ref: TableRef) -> dict[str, Any] | None:
        """The mirror status of one table: its newest job, and ``failed`` if any job of it failed."""
        with self.store.session() as session:
            jobs = list(
                session.scalars(
                    select(MirrorJob)
                    .where(
                        MirrorJob.catalog == ref.catalog,
                        MirrorJob.schema_name == ref.schema,
                        MirrorJob.table_name == ref.name,
                        MirrorJob.status != "synced",
                    )
                    .order_by(MirrorJob.created_at)
                )
            )
            if not jobs:
                last = session.scalars(
                    select(MirrorJob)
                    .where(
                        MirrorJob.catalog == ref.catalog,
                        MirrorJob.schema_name == ref.schema,
                        MirrorJob.table_name == ref.name,
                    )
                    .order_by(MirrorJob.local_version.desc())
                    .limit(1)
                ).first()
                if last is None:
                    return None
                return {
                    "target": last.target,
                    "status": "synced",
                    "version": last.local_version,
                    "synced_at": last.synced_at.isoformat() if last.synced_at else None,
                }
            failed = [j for j in jobs if j.status == "failed"]
            shown = failed[0] if failed else jobs[0]
            return {
                "target": shown.target,
                "status": "failed" if failed else "pending",
                "pending_jobs": len(jobs),
                "version": max(j.local_version for j in jobs),
                "attempts": shown.attempts,
                "error": shown.error,
                "next_attempt_at": shown.next_attempt_at.isoformat() if not failed else None,
            }

    def summary(self) -> dict[str, int]:
        counts = {"pending": 0, "synced": 0, "failed": 0}
        with self.store.session() as session:
            for status, n in session.execute(select(MirrorJob.status, func.count()).group_by(MirrorJob.status)):
                counts[status] = n
        return counts

    def synced_tables(self, catalog: str, /) -> set[tuple[str, str]]:
        """(schema, table) of ``catalog``'s tables whose every mirror job is synced: one query."""
        unsynced = func.sum(case((MirrorJob.status != "synced", 1), else_=0))
        with self.store.session() as session:
            rows = session.execute(
                select(MirrorJob.schema_name, MirrorJob.table_name)
                .where(MirrorJob.catalog == catalog)
                .group_by(MirrorJob.schema_name, MirrorJob.table_name)
                .having(unsynced == 0)
            )
            return {(schema, table) for schema, table in rows}

    def retry_failed(self) -> int:
        """Put failed jobs back in the queue, due now. Returns how many."""
        with self.store.session(write_lock=True) as session:
            result = session.execute(
                update(MirrorJob)
                .where(MirrorJob.status == "failed")
                .values(status="pending", attempts=0, next_attempt_at=utcnow())
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]  # CursorResult of an UPDATE

    # -- replay -------------------------------------------------------------------------------

    def replay_due(self, *, now: datetime | None = None) -> ReplayReport:
        """Replay every due job, oldest first per table; a table stops at its first failure so its
        commits are applied in order."""
        with self._replay_lock:
            now = now or utcnow()
            with self.store.session() as session:
                due = [
                    (j.id, TableRef(j.catalog, j.schema_name, j.table_name), j.local_version)
                    for j in session.scalars(
                        select(MirrorJob)
                        .where(MirrorJob.status == "pending", MirrorJob.next_attempt_at <= now)
                        .order_by(MirrorJob.created_at)
                    )
                ]
            synced = retrying = failed = 0
            blocked: set[str] = set()
            done: dict[str, int] = {}
            for job_id, ref, version in due:
                key = str(ref)
                if key in blocked:
                    continue
                if done.get(key, -1) >= version:
                    continue  # an earlier replay of this table already covered it
                try:
                    self._replay_table(ref, version)
                except Exception as exc:
                    blocked.add(key)
                    if self._record_failure(job_id, exc, now):
                        retrying += 1
                    else:
                        failed += 1
                    continue
                done[key] = version
                synced += self._record_success(ref, version)
            return ReplayReport(synced=synced, retrying=retrying, failed=failed)

    def _target_engine(self) -> Engine:
        if self._target is None:
            self._target = self._target_factory()
        return self._target

    def _replay_table(self, ref: TableRef, upto: int) -> None:
        target = self._target_engine()
        target.ensure_catalog(ref.catalog)
        last = target.last_commit_for(ref, APP_ID)
        start = last[0] + 1 if last is not None else 0
        for version in range(start, upto + 1):
            self._replay_commit(target, ref, version)

    def _replay_commit(self, target: Engine, ref: TableRef, version: int) -> None:
        info = changes.commit_info(self.local, ref, version)
        mode = info.get(MODE_KEY)
        token = Idempotency(APP_ID, version)
        if mode is None and (
            info.get("operation") in _NO_DATA_OPERATIONS or info.get("tsunami.operation") == "widen columns"
        ):
            return
        if version == 0 or mode in (None, "create", "overwrite"):
            target.write_table(ref, changes.rows_at(self.local, ref, version), mode="overwrite", idempotency=token)
        elif mode == "append":
            target.write_table(ref, changes.rows_added_at(self.local, ref, version), mode="append", idempotency=token)
        else:
            keys = json.loads(info.get(KEYS_KEY) or "[]")
            rows = changes.rows_added_at(self.local, ref, version)
            target.write_table(ref, rows, mode="merge", merge_keys=keys, idempotency=token)

    def _record_success(self, ref: TableRef, version: int) -> int:
        with self.store.session(write_lock=True) as session:
            result = session.execute(
                update(MirrorJob)
                .where(
                    MirrorJob.catalog == ref.catalog,
                    MirrorJob.schema_name == ref.schema,
                    MirrorJob.table_name == ref.name,
                    MirrorJob.status != "synced",
                    MirrorJob.local_version <= version,
                )
                .values(status="synced", error=None, synced_at=utcnow())
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]  # CursorResult of an UPDATE

    def _record_failure(self, job_id: str, exc: BaseException, now: datetime) -> bool:
        """Note the failure; True when the job will be retried, False when it is now failed."""
        transient = isinstance(exc, EngineError) and exc.is_transient
        message = exc.message if isinstance(exc, TsunamiError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, TsunamiError):
            logger.exception("mirror job %s failed unexpectedly", job_id)
        else:
            logger.warning("mirror job %s failed (%s): %s", job_id, "will retry" if transient else "terminal", message)
        cfg = self.settings.mirror_worker
        with self.store.session(write_lock=True) as session:
            job = session.get(MirrorJob, job_id)
            if job is None:
                return False
            job.attempts += 1
            job.error = message[:2000]
            if transient and job.attempts < cfg.max_attempts:
                wait = min(cfg.backoff_seconds * 2 ** (job.attempts - 1), cfg.max_backoff_seconds)
                job.next_attempt_at = now + timedelta(seconds=wait)
                return True
            job.status = "failed"
            return False

    def has_due(self, *, now: datetime | None = None) -> bool:
        """Whether a pending job is due now (one indexed query)."""
        with self.store.session() as session:
            return (
                session.scalar(
                    select(MirrorJob.id)
                    .where(MirrorJob.status == "pending", MirrorJob.next_attempt_at <= (now or utcnow()))
                    .limit(1)
                )
                is not None
            )

    def close(self) -> None:
        if self._target is not None:
            self._target.close()
            self._target = None


def attach_mirror(settings: Settings, store: Store, engine: Engine) -> tuple[Engine, Outbox]:
    """Wrap the local engine so its writes feed the outbox; the mirror engine is built on first use."""
    from servicetsunami.engines.mirror import MirroredEngine

    if not isinstance(engine, LocalEngine):
        raise EngineError("a mirror copies writes of the local engine; set TSUNAMI_ENGINE=local")

    def target() -> Engine:
        from servicetsunami.engines.databricks.engine import DatabricksEngine

        return DatabricksEngine(settings.databricks)

    outbox = Outbox(settings, store, engine, target)
    return MirroredEngine(engine, outbox.enqueue), outbox
