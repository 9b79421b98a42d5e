"""What the database sources (PostgreSQL, MySQL/MariaDB) share: two connections and their lifecycle.

A database source holds a *control* connection of its driver (psycopg, PyMySQL) for checks,
discovery and cursor bounds, and a DuckDB connection with the source attached for bulk reads.
:class:`DatabaseSource` opens both ahead of time (:meth:`~DatabaseSource.prepare`, in a thread, while
the run looks up its table's last commit), stops a running read (:meth:`~DatabaseSource.cancel`) and
closes both (:meth:`~DatabaseSource.close`), each under its own lock, so a ``close`` racing a late
``prepare`` leaves nothing open. A subclass says how to open each (:meth:`_open_control`,
:meth:`_open_duckdb`) and how to close its control connection (:meth:`_close_control`).
"""

from __future__ import annotations

import abc
import contextlib
import logging
import threading
from typing import Generic, TypeVar

import duckdb

from servicetsunami.connectors.base import Source
from servicetsunami.errors import SourceError

logger = logging.getLogger(__name__)

ConnT = TypeVar("ConnT")


class DatabaseSource(Source, Generic[ConnT]):
    def __init__(self, *, threads: int = 0) -> None:
        self._threads = threads
        self._duck: duckdb.DuckDBPyConnection | None = None
        self._guard = threading.Lock()  # guards _duck and _closed
        self._closed = False  # close() came after the last read: a late prepare() opens nothing
        self._control: ConnT | None = None  # for catalog and cursor queries, kept open
        self._control_guard = threading.Lock()
        self._failed_ahead: SourceError | None = None  # prepare() could not connect

    @abc.abstractmethod
    def _open_control(self) -> ConnT:
        """A new control connection; :class:`SourceError` with a diagnosis when it cannot connect."""

    @abc.abstractmethod
    def _open_duckdb(self) -> duckdb.DuckDBPyConnection:
        """DuckDB with the source attached, stored in ``_duck``; the caller holds ``_guard``."""

    def _close_control(self, connection: ConnT) -> None:
        close = getattr(connection, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close: it is gone either way
                close()

    def _take_failed_ahead(self) -> None:
        """Raise what :meth:`prepare` met connecting (once): waiting out the same timeout again helps
        no one. The caller holds ``_control_guard``."""
        failed, self._failed_ahead = self._failed_ahead, None
        if failed is not None:
            raise failed

    def prepare(self) -> None:
        if self._duck is None:
            self._closed, self._failed_ahead = False, None
            threading.Thread(target=self._open_ahead, name=f"{self.kind}-source-open", daemon=True).start()

    def _open_ahead(self) -> None:
        with self._control_guard:
            if self._control is None and not self._closed:
                try:
                    self._control = self._open_control()
                except SourceError as exc:
                    self._failed_ahead = exc  # the next query reports it
                    return
        try:
            with self._guard:
                if self._duck is None and not self._closed:
                    self._open_duckdb()
        except Exception:  # the read that needs it opens it again and reports the error
            logger.debug("opening a %s source ahead of the read failed", self.kind, exc_info=True)

    def cancel(self) -> None:
        duck = self._duck
        if duck is not None:
            duck.interrupt()

    def close(self) -> None:
        with self._guard:
            self._closed = True
            if self._duck is not None:
                self._duck.close()
                self._duck = None
        with self._control_guard:
            self._failed_ahead = None
            if self._control is not None:
                self._close_control(self._control)
                self._control = None

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        with self._guard:
            self._closed = False
            return self._duck or self._open_duckdb()
