"""One sync run, exactly once.

A run moves rows from a :class:`~servicetsunami.connectors.base.Source` stream into a bronze table
in batches. Every batch is one Delta commit that carries, in the same commit:

- an application transaction ``(app_id = "sync:<sync id>", sequence)``, so a batch that already
  landed is recognised (delta-rs records the transaction but does not enforce it: the engine checks
  it before writing), and
- the cursor value that closes the batch (``tsunami.cursor`` in the commit info).

A resumed run reads the newest ``(sequence, cursor)`` back from the table itself
(:meth:`~servicetsunami.engines.base.Engine.last_commit_for`), never from the system store, so a
process killed at any moment (before, during or after a commit) neither loses nor duplicates rows.

A batch is staged as Parquet by the source itself when both the source
(``capabilities.stage_parquet``) and the engine (``capabilities.staged_parquet``) can, and committed
with :meth:`~servicetsunami.engines.base.Engine.commit_stage`; otherwise the source's Arrow batches
stream into :meth:`~servicetsunami.engines.base.Engine.write_table`. Both carry the idempotency
token and the cursor in the commit, so exactly-once does not depend on the path.

Modes: ``full_refresh`` replaces the table in one commit; ``incremental_append`` appends rows whose
cursor is above the committed one; ``incremental_merge`` upserts them on the primary key and starts
``lookback`` before the committed cursor, so rows committed late with an older cursor value are
picked up (the overlap is harmless under merge).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from servicetsunami import metrics
from servicetsunami.connectors.base import ReadRequest, Source
from servicetsunami.engines.base import Engine, Idempotency, WriteMode, WriteResult
from servicetsunami.errors import Conflict, InvalidInput, NotSupported, SyncCancelled
from servicetsunami.tenancy import TableRef

logger = logging.getLogger(__name__)

SyncMode = Literal["full_refresh", "incremental_append", "incremental_merge"]
SYNC_MODES: tuple[SyncMode, ...] = ("full_refresh", "incremental_append", "incremental_merge")


@dataclass(frozen=True, slots=True)
class SyncPlan:
    sync_id: str
    stream: str
    target: TableRef
    mode: SyncMode
    cursor_column: str | None = None
    primary_key: list[str] = field(default_factory=list)
    source_label: str = ""  # goes into the _source column, e.g. "postgres:<connection>/public.orders"

    @property
    def app_id(self) -> str:
        return f"sync:{self.sync_id}"


@dataclass(slots=True)
class RunProgress:
    rows: int = 0
    bytes: int = 0  # Parquet bytes staged, or Arrow bytes streamed
    batches: int = 0
    version: int | None = None
    cursor: Any = None
    batch_percent: float | None = None
    started: float = field(default_factory=time.perf_counter)

    def as_dict(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.started
        return {
            "rows": self.rows,
            "bytes": self.bytes,
            "batches": self.batches,
            "version": self.version,
            "cursor": encode_cursor(self.cursor),
            "batch_percent": self.batch_percent,
            "elapsed_seconds": round(elapsed, 2),
            "rows_per_second": round(self.rows / elapsed, 1) if elapsed > 0 else None,
        }


class SyncRunner:
    """Runs one plan against one source. ``cancel()`` may be called from another thread."""

    def __init__(
        self,
        engine: Engine,
        source: Source,
        plan: SyncPlan,
        *,
        run_id: str,
        batch_rows: int,
        lookback: dt.timedelta | int | float = 0,
        on_progress: Callable[[RunProgress], None] | None = None,
    ) -> None:
        if plan.mode not in SYNC_MODES:
            raise InvalidInput(f"sync_mode must be one of {', '.join(SYNC_MODES)}")
        if plan.mode != "full_refresh" and not plan.cursor_column:
            raise InvalidInput(f"{plan.mode} needs a cursor_column")
        if plan.mode == "incremental_merge" and not plan.primary_key:
            raise InvalidInput("incremental_merge needs a primary_key (the source table has none)")
        if plan.mode != "full_refresh" and not source.capabilities.incremental:
            raise NotSupported(
                f"the {source.kind} source does not read incrementally; sync {plan.stream} with full_refresh"
            )
        self.engine, self.source, self.plan = engine, source, plan
        self.run_id = run_id
        self.batch_rows = batch_rows
        self.lookback = lookback
        self.progress = RunProgress()
        self._on_progress = on_progress or (lambda _p: None)
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()
        self.source.cancel()

    def run(self) -> RunProgress:
        self.source.prepare()  # its connections open while the table's last commit is looked up
        committed = self.engine.last_commit_for(self.plan.target, self.plan.app_id)
        sequence = committed[0] if committed else 0
        cursor = decode_cursor((committed[1] if committed else {}).get("tsunami.cursor"))
        self.progress.cursor = cursor
        if self.plan.mode == "full_refresh":
            self._batch(ReadRequest(self.plan.stream), sequence + 1, "overwrite", cursor=None)
            return self.progress
        mode: WriteMode = "merge" if self.plan.mode == "incremental_merge" else "append"
        lower = self._minus_lookback(cursor) if mode == "merge" else cursor
        while True:
            self._check_cancelled()
            upper = self.source.cursor_bound(
                ReadRequest(self.plan.stream, cursor_column=self.plan.cursor_column, cursor_after=lower),
                rows=self.batch_rows,
            )
            if upper is None:
                return self.progress
            request = ReadRequest(
                self.plan.stream, cursor_column=self.plan.cursor_column, cursor_after=lower, cursor_upto=upper
            )
            sequence += 1
            before = self.progress.rows
            if self._batch(request, sequence, mode, cursor=upper):
                if self.progress.rows - before < self.batch_rows:
                    return self.progress  # the bound was the newest cursor value when it was asked for
                lower = upper
                continue
            # Another run of this sync committed this sequence first: carry on from what it committed.
            committed = self.engine.last_commit_for(self.plan.target, self.plan.app_id)
            sequence = committed[0] if committed else sequence
            lower = decode_cursor((committed[1] if committed else {}).get("tsunami.cursor"))
            self.progress.cursor = lower

    # -- internals ----------------------------------------------------------------------------

    def _batch(self, request: ReadRequest, sequence: int, mode: WriteMode, *, cursor: Any) -> bool:
        """Stage and commit one batch; False when the sequence had already been committed."""
        self._check_cancelled()
        request = ReadRequest(
            request.stream,
            cursor_column=request.cursor_column,
            cursor_after=request.cursor_after,
            cursor_upto=request.cursor_upto,
            extra_columns={
                "_ingested_at": dt.datetime.now(dt.UTC),
                "_source": self.plan.source_label or request.stream,
                "_sync_id": self.run_id,
            },
        )
        idempotency = Idempotency(self.plan.app_id, sequence)
        description = f"Synced from {self.plan.source_label or request.stream}"
        commit_info = {
            "tsunami.cursor": json.dumps(encode_cursor(cursor)),
            "tsunami.run_id": self.run_id,
            "tsunami.source": self.plan.source_label,
        }
        try:
            if self.source.capabilities.stage_parquet and self.engine.capabilities.staged_parquet:
                result, size = self._staged(request, mode, idempotency, description, commit_info)
            else:
                result, size = self._streamed(request, mode, idempotency, description, commit_info)
        except BaseException:
            if self._cancelled.is_set():
                raise SyncCancelled("the sync was cancelled; the table keeps its last committed version") from None
            raise
        if result.skipped:
            logger.info("batch %s of %s was already committed; skipped", sequence, self.plan.app_id)
            return False
        self.progress.rows += result.rows
        self.progress.bytes += size
        metrics.SYNC_ROWS.inc(result.rows)
        metrics.SYNC_BYTES.inc(size)
        self.progress.batches += 1
        self.progress.version = result.version
        self.progress.cursor = cursor
        self._on_progress(self.progress)
        return True

    def _staged(
        self,
        request: ReadRequest,
        mode: WriteMode,
        idempotency: Idempotency,
        description: str,
        commit_info: dict[str, str],
    ) -> tuple[WriteResult, int]:
        """The source writes Parquet files into the engine's stage; the engine commits them."""
        ref = self.plan.target
        stage = self.engine.new_stage(ref)
        try:
            self.source.stage_parquet(request, stage)
            self._check_cancelled()
            size = sum(p.stat().st_size for p in stage.rglob("*.parquet"))
        except BaseException:
            self.engine.discard_stage(ref, stage)
            raise
        result = self.engine.commit_stage(
            ref,
            stage,
            mode=mode,
            merge_keys=self.plan.primary_key or None,
            idempotency=idempotency,
            description=description,
            commit_info=commit_info,
        )
        return result, size

    def _streamed(
        self,
        request: ReadRequest,
        mode: WriteMode,
        idempotency: Idempotency,
        description: str,
        commit_info: dict[str, str],
    ) -> tuple[WriteResult, int]:
        """The source's Arrow batches stream into one write; a cancel lands between two batches."""
        reader = self.source.read(request)
        size = 0

        def batches() -> Iterator[pa.RecordBatch]:
            nonlocal size
            for batch in reader:
                self._check_cancelled()
                size += batch.nbytes
                yield batch

        try:
            result = self.engine.write_table(
                self.plan.target,
                pa.RecordBatchReader.from_batches(reader.schema, batches()),
                mode=mode,
                merge_keys=self.plan.primary_key or None,
                idempotency=idempotency,
                description=description,
                commit_info=commit_info,
            )
        finally:
            reader.close()
        return result, size

    def _minus_lookback(self, cursor: Any) -> Any:
        if cursor is None or not self.lookback:
            return cursor
        if isinstance(cursor, dt.datetime | dt.date):
            delta = self.lookback if isinstance(self.lookback, dt.timedelta) else dt.timedelta(seconds=self.lookback)
            return cursor - delta
        if isinstance(self.lookback, dt.timedelta):
            return cursor
        if isinstance(cursor, decimal.Decimal):
            return cursor - decimal.Decimal(str(self.lookback))
        if isinstance(cursor, int):
            return cursor - int(self.lookback)
        if isinstance(cursor, float):
            return cursor - float(self.lookback)
        return cursor

    def _check_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise SyncCancelled("the sync was cancelled; the table keeps its last committed version")


def encode_cursor(value: Any) -> dict[str, str] | None:
    """A cursor value as JSON that keeps its type (timestamps, dates, decimals, integers)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return {"type": "datetime", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, bool):
        raise InvalidInput("a boolean column cannot be a cursor")
    if isinstance(value, int):
        return {"type": "int", "value": str(value)}
    if isinstance(value, decimal.Decimal):
        return {"type": "decimal", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float", "value": repr(value)}
    return {"type": "str", "value": str(value)}


def decode_cursor(raw: Any) -> Any:
    if raw is None:
        return None
    data = json.loads(raw) if isinstance(raw, str) else raw
    if data is None:
        return None
    kind, value = data["type"], data["value"]
    decoders: dict[str, Callable[[str], Any]] = {
        "datetime": dt.datetime.fromisoformat,
        "date": dt.date.fromisoformat,
        "int": int,
        "decimal": decimal.Decimal,
        "float": float,
        "str": str,
    }
    if kind not in decoders:
        raise Conflict(f"the table holds a cursor of unknown type {kind!r}")
    return decoders[kind](value)
