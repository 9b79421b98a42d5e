"""The workspace as the engine sees it: one SDK client, one ``_translate_error``, the warehouse, and
statement execution (submit with a wait timeout, poll, cancel at the deadline, fetch the chunks).

Every SDK call goes through :meth:`Workspace.call`, so drivers' exceptions become ours in exactly one
place. The SDK itself retries 429 (honouring ``Retry-After``) and 503 for up to
``retry_timeout_seconds``; what still fails reaches ``_translate_error`` and is marked transient when a
later retry may help.

Whether the SDK also re-sends a POST whose answer was lost (a read timeout, a reset after the request
was sent) changed between releases (0.162 did, 0.167 does not), so correctness never rests on it: a
statement submitted with ``idempotent=True`` (reads, and loads whose effect is keyed by file or replaces
the table) is re-submitted by :meth:`Workspace.execute` itself until ``retry_timeout_seconds``; any
other statement whose answer was lost is reported as a transient error, because it may have run.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from servicetsunami.engines.base import statement_stop
from servicetsunami.engines.databricks.types import arrow_schema, from_json_array
from servicetsunami.errors import (
    AuthError,
    Conflict,
    EngineError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    QueryTimeout,
    SqlSyntaxError,
    TsunamiError,
)
from servicetsunami.settings import DatabricksSettings

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.sql import EndpointInfo, StatementResponse

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Warehouse sizes, smallest first: the one started when none is running.
SIZES = ("2X-Small", "X-Small", "Small", "Medium", "Large", "X-Large", "2X-Large", "3X-Large", "4X-Large")
_ERROR_CLASS = re.compile(r"^\[([A-Z0-9_]+)(?:\.[A-Z0-9_]+)?\]")
_TRANSIENT_CODES = frozenset(
    {"TEMPORARILY_UNAVAILABLE", "WORKSPACE_TEMPORARILY_UNAVAILABLE", "SERVICE_UNDER_MAINTENANCE", "IO_ERROR", "ABORTED"}
)


class StatementFailed(Exception):
    """A statement the warehouse accepted but did not complete (state FAILED or CANCELED)."""

    def __init__(self, state: str, error_code: str, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.error_code = error_code
        self.message = message


def _translate_error(exc: BaseException, *, action: str) -> TsunamiError:
    """The one place where SDK, HTTP and statement errors become the project's errors."""
    import requests
    from databricks.sdk import errors as dbx
    from databricks.sdk.errors.base import DatabricksError

    if isinstance(exc, TsunamiError):
        return exc
    if isinstance(exc, StatementFailed):
        return _statement_error(exc, action=action)
    message = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
    if isinstance(exc, dbx.NotFound):
        return NotFound(f"{action}: {message}")
    if isinstance(exc, dbx.AlreadyExists | dbx.ResourceAlreadyExists):
        return Conflict(f"{action}: {message}")
    if isinstance(exc, dbx.PermissionDenied):
        return PermissionDenied(f"{action}: the workspace refused it: {message}")
    if isinstance(exc, dbx.Unauthenticated):
        return AuthError("the Databricks workspace refused the credentials; check the token or OAuth client")
    if isinstance(
        exc, dbx.TooManyRequests | dbx.TemporarilyUnavailable | dbx.DeadlineExceeded | dbx.InternalError | dbx.Aborted
    ):
        return EngineError(f"{action}: the workspace is busy or unavailable ({message}); retry later", transient=True)
    if isinstance(exc, dbx.ResourceConflict):
        return Conflict(f"{action}: {message}")
    if isinstance(exc, dbx.BadRequest | dbx.InvalidParameterValue):
        return InvalidInput(f"{action}: {message}")
    if isinstance(exc, requests.ConnectionError | requests.Timeout | TimeoutError | ConnectionError):
        return EngineError(f"{action}: the workspace could not be reached ({type(exc).__name__})", transient=True)
    if isinstance(exc, DatabricksError):
        return EngineError(f"{action}: {message}")
    if isinstance(exc, OSError):
        return EngineError(f"{action}: {message}", transient=True)
    return EngineError(f"{action}: {type(exc).__name__}: {message}")


def _statement_error(exc: StatementFailed, *, action: str) -> TsunamiError:
    match = _ERROR_CLASS.match(exc.message)
    error_class = match.group(1) if match else ""
    text = exc.message[:800]
    if exc.state == "CANCELED":
        return EngineError(f"{action}: the statement was canceled on the warehouse", transient=True)
    if error_class.endswith("_NOT_FOUND") or exc.error_code == "NOT_FOUND":
        return NotFound(text)
    if error_class.endswith("_ALREADY_EXISTS") or exc.error_code == "ALREADY_EXISTS":
        return Conflict(text)
    if error_class == "PARSE_SYNTAX_ERROR":
        return SqlSyntaxError(text)
    if exc.error_code == "DEADLINE_EXCEEDED":
        return QueryTimeout(text)
    if exc.error_code == "RESOURCE_EXHAUSTED":
        return LimitExceeded(text)
    if exc.error_code in _TRANSIENT_CODES:
        return EngineError(f"{action}: {text}", transient=True)
    if exc.error_code == "BAD_REQUEST" or error_class:
        return InvalidInput(text)
    return EngineError(f"{action}: {text}")


@dataclass(frozen=True, slots=True)
class Rows:
    """A small result read INLINE as JSON_ARRAY: typed by the manifest's column types."""

    columns: list[tuple[str, str]]
    data: list[list[str | None]]
    truncated: bool

    def dicts(self) -> list[dict[str, str | None]]:
        names = [c[0] for c in self.columns]
        return [dict(zip(names, row, strict=False)) for row in self.data]

    def arrow(self) -> pa.Table:
        return from_json_array(self.columns, self.data)


class Workspace:
    """One workspace client, shared by every thread of the engine."""

    def __init__(self, settings: DatabricksSettings) -> None:
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.core import Config

        if not settings.host:
            raise InvalidInput("the Databricks engine needs TSUNAMI_DATABRICKS__HOST (the workspace URL)")
        auth: dict[str, Any] = {}
        if settings.token is not None:
            auth = {"token": settings.token.get_secret_value(), "auth_type": "pat"}
        elif settings.client_id and settings.client_secret is not None:
            auth = {
                "client_id": settings.client_id,
                "client_secret": settings.client_secret.get_secret_value(),
                "auth_type": "oauth-m2m",
            }
        else:
            raise InvalidInput(
                "the Databricks engine needs TSUNAMI_DATABRICKS__TOKEN, or TSUNAMI_DATABRICKS__CLIENT_ID and "
                "TSUNAMI_DATABRICKS__CLIENT_SECRET"
            )
        self.settings = settings
        config = self.call(
            lambda: Config(
                host=settings.host,
                http_timeout_seconds=settings.http_timeout_seconds,
                retry_timeout_seconds=settings.retry_timeout_seconds,
                # Files are uploaded in one request each (we size them); no presigned multipart machinery.
                disable_experimental_files_api_client=True,
                product="servicetsunami",
                **auth,
            ),
            action="configuring the Databricks client",
        )
        self.client: WorkspaceClient = WorkspaceClient(config=config)
        self._warehouse: str | None = settings.warehouse_id or None
        self._warehouse_ready = False
        self._warehouse_lock = threading.Lock()

    def call(self, fn: Callable[[], T], /, *, action: str) -> T:
        try:
            return fn()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise _translate_error(exc, action=action) from exc

    @contextlib.contextmanager
    def translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            raise _translate_error(exc, action=action) from exc

    # -- warehouses ---------------------------------------------------------------------------

    def list_warehouses(self) -> list[EndpointInfo]:
        return self.call(lambda: list(self.client.warehouses.list()), action="listing SQL warehouses")

    def get_warehouse(self, warehouse_id: str, /) -> Any:
        return self.call(lambda: self.client.warehouses.get(warehouse_id), action=f"reading warehouse {warehouse_id}")

    def start_warehouse(self, warehouse_id: str, /, *, wait: bool = True) -> Any:
        """Start a warehouse; with ``wait`` block (bounded) until it is running."""
        timeout = timedelta(seconds=self.settings.warehouse_start_timeout_seconds)
        with self.translated(f"starting warehouse {warehouse_id}"):
            waiter = self.client.warehouses.start(warehouse_id)
            if not wait:
                return self.client.warehouses.get(warehouse_id)
            try:
                return waiter.result(timeout=timeout)
            except TimeoutError as exc:
                raise EngineError(
                    f"warehouse {warehouse_id} was not running after {timeout.total_seconds():g} s; "
                    "start it in the workspace or raise TSUNAMI_DATABRICKS__WAREHOUSE_START_TIMEOUT_SECONDS",
                    transient=True,
                ) from exc

    def warehouse_id(self) -> str:
        """The warehouse statements run on: the configured one, else a running one, else the smallest
        started and waited for (bounded). Chosen once per engine."""
        with self._warehouse_lock:
            if self._warehouse and self._warehouse_ready:
                return self._warehouse
            if self._warehouse:
                info = self.get_warehouse(self._warehouse)
            else:
                warehouses = [w for w in self.list_warehouses() if _state(w) not in ("DELETED", "DELETING")]
                if not warehouses:
                    raise NotFound(
                        "the workspace has no SQL warehouse; create one or set TSUNAMI_DATABRICKS__WAREHOUSE_ID"
                    )
                running = [w for w in warehouses if _state(w) == "RUNNING"]
                info = min(running or warehouses, key=_size_rank)
            if _state(info) != "RUNNING":
                logger.info("starting SQL warehouse %s (%s)", info.id, info.cluster_size)
                self.start_warehouse(str(info.id))
            self._warehouse, self._warehouse_ready = str(info.id), True
            return self._warehouse

    # -- statements ---------------------------------------------------------------------------

    def execute(
        self,
        sql: str,
        /,
        *,
        timeout: float,
        arrow: bool = False,
        row_limit: int | None = None,
        byte_limit: int | None = None,
        idempotent: bool = True,
    ) -> StatementResponse:
        """Run one statement to completion: wait up to the wait timeout, then poll; at ``timeout`` the
        statement is canceled on the warehouse and ``QueryTimeout`` raised. An ``idempotent`` statement
        whose submission lost its answer is submitted again (see the module docstring)."""
        from databricks.sdk.service.sql import Disposition, ExecuteStatementRequestOnWaitTimeout, Format

        action = "running a statement on the SQL warehouse"
        started = time.monotonic()
        warehouse = self.warehouse_id()
        wait = min(self.settings.wait_timeout_seconds, int(timeout))

        def submit() -> StatementResponse:
            return self.client.statement_execution.execute_statement(
                statement=sql,
                warehouse_id=warehouse,
                wait_timeout=f"{wait if wait >= 5 else 0}s",
                on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CONTINUE,
                disposition=Disposition.EXTERNAL_LINKS if arrow else Disposition.INLINE,
                format=Format.ARROW_STREAM if arrow else Format.JSON_ARRAY,
                row_limit=row_limit,
                byte_limit=byte_limit,
            )

        with self.translated(action):
            response = self._resubmitting(submit) if idempotent else submit()
            pause = 0.05
            stopped = threading.Event()
            statement_id = str(response.statement_id)

            def stop() -> None:  # a canceled run (a job's task, a long statement) cancels it on the warehouse
                stopped.set()
                self._cancel(statement_id)

            with statement_stop(stop):
                while _statement_state(response) in ("PENDING", "RUNNING"):
                    left = timeout - (time.monotonic() - started)
                    if left <= 0:
                        self._cancel(statement_id)
                        raise QueryTimeout(
                            f"the statement ran longer than {timeout:g} s and was canceled; add filters or aggregate"
                        )
                    stopped.wait(min(pause, left))
                    pause = min(pause * 2, 1.0)
                    response = self.client.statement_execution.get_statement(statement_id)
            if stopped.is_set():
                raise QueryTimeout("the statement was stopped and canceled on the warehouse")
            state = _statement_state(response)
            if state != "SUCCEEDED":
                error = response.status.error if response.status else None
                raise StatementFailed(
                    state,
                    error.error_code.value if error and error.error_code else "",
                    (error.message if error else None) or f"statement ended {state}",
                )
        return response

    def _resubmitting(self, submit: Callable[[], T]) -> T:
        """``submit()``, sent again with backoff while its answer is lost in transit, up to
        ``retry_timeout_seconds``; the last loss is raised (and translated as transient)."""
        import requests

        deadline = time.monotonic() + self.settings.retry_timeout_seconds
        pause = 0.2
        while True:
            try:
                return submit()
            except (requests.Timeout, requests.ConnectionError, TimeoutError, ConnectionError):
                if time.monotonic() + pause > deadline:
                    raise
                logger.warning("a statement's answer was lost in transit; submitting it again")
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _cancel(self, statement_id: str) -> None:
        try:
            self.client.statement_execution.cancel_execution(statement_id)
        except Exception:  # the timeout is what the caller must hear about; a failed cancel is only logged
            logger.warning("could not cancel statement %s", statement_id, exc_info=True)

    def rows(self, sql: str, /, *, timeout: float = 300, idempotent: bool = True) -> Rows:
        """A statement whose (small) result is read INLINE as JSON_ARRAY: DDL, DESCRIBE, counts."""
        response = self.execute(sql, timeout=timeout, idempotent=idempotent)
        columns = _columns(response)
        data: list[list[str | None]] = []
        with self.translated("reading a statement result"):
            chunk = response.result
            while chunk is not None:
                data.extend(list(row) for row in chunk.data_array or [])
                if chunk.next_chunk_index is None:
                    break
                chunk = self.client.statement_execution.get_statement_result_chunk_n(
                    str(response.statement_id), chunk.next_chunk_index
                )
        truncated = bool(response.manifest and response.manifest.truncated)
        return Rows(columns, data, truncated)

    def arrow(self, sql: str, /, *, timeout: float, row_limit: int, byte_limit: int) -> tuple[pa.Table, bool]:
        """A query's result as Arrow: ARROW_STREAM chunks behind external links, fetched without our
        credentials (the links carry their own). ``truncated`` comes from the manifest."""
        import requests

        started = time.monotonic()
        response = self.execute(sql, timeout=timeout, arrow=True, row_limit=row_limit, byte_limit=byte_limit)
        schema = arrow_schema(_columns(response))
        tables: list[pa.Table] = []
        with self.translated("fetching a statement result"):
            links = list(response.result.external_links or []) if response.result else []
            while links:
                link = links.pop(0)
                body = _download(requests, str(link.external_link), link.http_headers or {}, self.settings)
                tables.append(pa.ipc.open_stream(body).read_all())
                if time.monotonic() - started > timeout:
                    raise QueryTimeout(f"fetching the result took longer than {timeout:g} s")
                if link.next_chunk_index is not None and not links:
                    chunk = self.client.statement_execution.get_statement_result_chunk_n(
                        str(response.statement_id), link.next_chunk_index
                    )
                    links.extend(chunk.external_links or [])
        truncated = bool(response.manifest and response.manifest.truncated)
        if not tables:
            return schema.empty_table(), truncated
        return pa.concat_tables(tables, promote_options="permissive"), truncated


def _download(requests: Any, url: str, headers: dict[str, str], settings: DatabricksSettings) -> bytes:
    attempts = 4
    for attempt in range(attempts):
        try:
            reply = requests.get(url, headers=headers, timeout=settings.http_timeout_seconds)
            if reply.status_code in (429, 503) and attempt < attempts - 1:
                time.sleep(min(float(reply.headers.get("Retry-After", 1)), 5))
                continue
            reply.raise_for_status()
            return bytes(reply.content)
        except requests.ConnectionError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * 2**attempt)
    raise EngineError("a result chunk could not be fetched", transient=True)


def _columns(response: StatementResponse) -> list[tuple[str, str]]:
    manifest = response.manifest
    if manifest is None or manifest.schema is None:
        return []
    return [(str(c.name), str(c.type_text or c.type_name or "STRING")) for c in manifest.schema.columns or []]


def _statement_state(response: StatementResponse) -> str:
    state = response.status.state if response.status else None
    return state.value if state is not None else "PENDING"


def _state(info: Any) -> str:
    return info.state.value if info.state is not None else ""


def _size_rank(info: Any) -> int:
    size = info.cluster_size or ""
    return SIZES.index(size) if size in SIZES else len(SIZES)
