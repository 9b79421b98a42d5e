"""The system store: one SQLAlchemy engine, sessions, migrations and health.

:class:`Store` is the only object that knows which database it talks to. SQLite (a file under the
data folder) is the embedded default and PostgreSQL the production one; the rest of the code base
only sees sessions and the repository functions in :mod:`servicetsunami.store.repositories`
(one module per aggregate).

SQLite is opened in WAL mode with foreign keys on and a 5 s busy timeout, and SQLAlchemy (not the
``sqlite3`` module's legacy mode) emits ``BEGIN``, so transactions, savepoints and DDL behave as
they do on PostgreSQL. A transaction starts deferred; ``session(write_lock=True)`` starts it with
``BEGIN IMMEDIATE`` for read-then-write work that must not race another process.

``store.reads`` (:mod:`servicetsunami.store.cache`) remembers hot read results until the next
commit by anyone.

Driver errors are turned into ours in :func:`_translate_error`: ``IntegrityError`` becomes
:class:`~servicetsunami.errors.Conflict`, ``OperationalError`` (lost connection, locked database)
a transient :class:`~servicetsunami.errors.StoreError`, anything else a terminal ``StoreError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from servicetsunami.errors import Conflict, StoreError, TsunamiError
from servicetsunami.store.cache import ReadCache, generation_for
from servicetsunami.store.migrations import alembic_config

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000
# Execution option read by the SQLite "begin" hook: "" (deferred) or "IMMEDIATE".
_BEGIN_OPTION = "tsunami_sqlite_begin"
# Key of the PostgreSQL advisory lock held while migrating; any constant 64-bit number works.
_PG_MIGRATION_LOCK = int.from_bytes(hashlib.sha256(b"servicetsunami.migrate").digest()[:8], "big", signed=True)
_MIGRATE_ATTEMPTS = 6
# Alembic installs its migration context as a module global (alembic.context), so two migrations
# in one process must not overlap, whatever the database-level lock says.
_process_migration_lock = threading.Lock()


def _translate_error(exc: BaseException, /, *, doing: str) -> TsunamiError:
    """Turn a SQLAlchemy or driver error into ours. Most specific first; never leaks SQL or values."""
    if isinstance(exc, TsunamiError):
        return exc
    if isinstance(exc, IntegrityError):
        return Conflict("the change conflicts with an existing record (already exists, or still in use)")
    if isinstance(exc, OperationalError | PoolTimeoutError):
        return StoreError(f"the system store is unavailable while {doing}; try again", transient=True)
    if isinstance(exc, NoSuchModuleError | ModuleNotFoundError):
        return StoreError(
            "the database driver for the system store is not installed "
            "(for PostgreSQL: pip install 'servicetsunami[postgres]')"
        )
    if isinstance(exc, ArgumentError):
        return StoreError("the system store URL is not valid")
    return StoreError(f"the system store failed while {doing}")


def redact_url(url: str) -> str:
    """The URL with its password masked, fit for logs and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


class Store:
    """The system of record: an engine, sessions, migrations and a health probe.

    Thread-safe; build one per process (``Store(settings.resolved_database_url)``), call
    :meth:`migrate` at start, and :meth:`dispose` at shutdown.
    """

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise _translate_error(exc, doing="opening the store") from exc
        self._url = url  # holds the password: never log it, use redacted_url
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            _create_parent_folder(parsed.database)
        try:
            self.engine: Engine = create_engine(url, pool_pre_ping=self.dialect != "sqlite")
        except (SQLAlchemyError, ModuleNotFoundError) as exc:
            raise _translate_error(exc, doing="opening the store") from exc
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
            if os.environ.get(CHECK_WRITE_LOCKS_VARIABLE) == "1":
                event.listen(self.engine, "begin", _track_transaction)
                event.listen(self.engine, "before_cursor_execute", _check_write_lock)
        self._disposed = False
        self._writer = threading.RLock()  # see _writing
        event.listen(self.engine, "checkin", self._close_after_dispose)
        self._generation = generation_for(self.dialect, parsed.database)
        self.reads = ReadCache(self._generation)  # see servicetsunami.store.cache
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._locked_sessions = sessionmaker(
            self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"}), expire_on_commit=False
        )

    def __repr__(self) -> str:
        return f"Store({self.redacted_url!r})"

    @property
    def redacted_url(self) -> str:
        """The database URL with the password masked."""
        return redact_url(self._url)

    @contextmanager
    def session(self, *, write_lock: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on any error.

        ``write_lock=True`` takes SQLite's write lock at the start (``BEGIN IMMEDIATE``) so a
        read-then-write block cannot fail half-way because another process wrote in between (the
        process's own such sessions take turns before that: :meth:`_writing`); it changes nothing
        on PostgreSQL. Errors from the database come out translated.
        """
        factory = self._locked_sessions if write_lock else self._sessions
        with self._writing() if write_lock else contextlib.nullcontext():
            session = factory()
            try:
                yield session
                session.commit()
            except SQLAlchemyError as exc:
                session.rollback()
                raise _translate_error(exc, doing="reading or writing data") from exc
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """On SQLite, this process's write-lock sessions take turns on a lock of the process first.
        They would otherwise meet at SQLite's lock, whose busy handler sleeps 1, 2, 5, 10 ms and
        more between tries however soon the lock is free again; here the next one starts as soon
        as the last commits. Other processes still wait at SQLite's lock. Bounded like SQLite's
        wait: after the busy timeout the store is busy, as it would be there."""
        if self.dialect != "sqlite":
            yield
            return
        if not self._writer.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise StoreError("the system store is unavailable while writing data (busy); try again", transient=True)
        try:
            yield
        finally:
            self._writer.release()

    def ping(self) -> float:
        """Run ``SELECT 1`` and return how long it took in milliseconds; raise StoreError if it fails."""
        started = time.perf_counter()
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1")).scalar_one()
        except SQLAlchemyError as exc:
            raise _translate_error(exc, doing="checking the connection") from exc
        return (time.perf_counter() - started) * 1000.0

    def migrate(self) -> None:
        """Bring the schema to the newest revision (``upgrade head``).

        Safe to call at every start and from several processes at once: the whole upgrade runs in
        one transaction that first takes a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on
        PostgreSQL), so the second caller waits and then finds nothing to do.
        """
        with _process_migration_lock:
            for attempt in range(1, _MIGRATE_ATTEMPTS + 1):
                try:
                    self._migrate_once()
                    return
                except OperationalError as exc:
                    # SQLite gives up on a lock after busy_timeout; another migrator may be slow.
                    if self.dialect != "sqlite" or attempt == _MIGRATE_ATTEMPTS:
                        raise _translate_error(exc, doing="migrating the schema") from exc
                    logger.warning("system store busy while migrating; retrying (attempt %d)", attempt)
                except SQLAlchemyError as exc:
                    raise _translate_error(exc, doing="migrating the schema") from exc

    def current_revision(self) -> str | None:
        """The revision the database is at (None before the first migration)."""
        try:
            with self.engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        except SQLAlchemyError as exc:
            raise _translate_error(exc, doing="reading the schema revision") from exc

    @staticmethod
    def head_revision() -> str | None:
        """The newest revision shipped with this version of the package."""
        return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()

    def dispose(self) -> None:
        """Close every pooled connection, and from now on each one handed back (a session that was
        still open, a late caller)."""
        self._disposed = True
        if self._generation is not None:
            self._generation.close()
        self.reads.clear()
        self.engine.dispose()

    def _close_after_dispose(self, dbapi_connection: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
        # dispose() closes only the connections in the pool; one checked out then would go back to
        # the discarded pool and be garbage-collected open.
        if self._disposed and dbapi_connection is not None:
            record.invalidate()

    def _migrate_once(self) -> None:
        config = alembic_config(self._url)
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                self._migrate_sqlite(conn, config)
            else:
                with conn.begin():
                    if self.dialect == "postgresql":
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")

    @staticmethod
    def _migrate_sqlite(conn: Connection, config: Any) -> None:
        # Table rebuilds in batch mode need foreign keys off, and the pragma is ignored inside a
        # transaction, so switch it on the raw connection before SQLAlchemy begins one.
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            with conn.begin():
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise StoreError("migration left rows that break foreign keys; nothing was changed")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


def _create_parent_folder(database: str | None) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # SQLAlchemy emits BEGIN itself (see _sqlite_on_begin); the sqlite3 module's legacy mode
    # would skip it for SELECT and DDL and break savepoints.
    dbapi_connection.isolation_level = None
    set_up_sqlite(
        cast(sqlite3.Connection, dbapi_connection),
        f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "PRAGMA journal_mode=WAL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA synchronous=NORMAL",
    )


def open_sqlite_file(path: Path, /, *statements: str) -> sqlite3.Connection:
    """A connection to the small SQLite file ``path`` shared by every worker process (rate limits,
    listing generations): WAL, autocommit, a 5 s busy timeout, and ``statements`` run once
    (``CREATE TABLE IF NOT EXISTS ...``), as :func:`set_up_sqlite` does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        set_up_sqlite(db, "PRAGMA journal_mode=WAL", *statements)
    except BaseException:
        db.close()
        raise
    return db


def set_up_sqlite(db: sqlite3.Connection, /, *statements: str) -> None:
    """Run the set-up ``statements`` of a new SQLite connection, trying again while the file is locked.

    Switching a file to WAL needs it alone for a moment, and SQLite answers "database is locked" at
    once, without waiting out the busy timeout, when another process is switching it or creating
    its tables at the same time (every worker of ``tsunami serve`` opening it on start). So each
    statement is tried again for up to the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    for statement in statements:
        while True:
            try:
                db.execute(statement)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


def _sqlite_on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")


# The write-lock check (CHECK_WRITE_LOCKS_VARIABLE=1, which the test suite sets for itself and the
# processes it starts): a SQLite transaction begun deferred that reads and then writes fails at once
# with "database is locked" when another connection commits in between (a deferred transaction cannot
# take the write lock over a stale snapshot, and SQLite does not wait), so such a block must be
# ``session(write_lock=True)``. With the check on, the first write after a read in a deferred
# transaction made by the service's code raises :class:`UnlockedReadThenWrite`, whether or not
# another connection wrote.
CHECK_WRITE_LOCKS_VARIABLE = "SERVICETSUNAMI_CHECK_WRITE_LOCKS"
_TXN_STATE = "tsunami_txn_state"
_READS = frozenset({"SELECT", "WITH"})
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE"})


class UnlockedReadThenWrite(AssertionError):
    """A store session read, then wrote, without ``write_lock=True`` (see the write-lock check)."""


@dataclass(slots=True)
class _TxnState:
    immediate: bool
    read: bool = False
    wrote: bool = False


def _track_transaction(conn: Connection) -> None:
    conn.info[_TXN_STATE] = _TxnState(immediate=conn.get_execution_options().get(_BEGIN_OPTION) == "IMMEDIATE")


def _check_write_lock(
    conn: Connection, _cursor: Any, statement: str, _parameters: Any, _context: Any, _executemany: bool
) -> None:
    state: _TxnState | None = conn.info.get(_TXN_STATE)
    if state is None or state.immediate or state.wrote or not conn.in_transaction():
        return
    words = statement.split(None, 1)
    verb = words[0].upper() if words else ""
    if verb in _READS:
        state.read = True
    elif verb in _WRITES:
        state.wrote = True
        if state.read and _called_by_the_service():
            raise UnlockedReadThenWrite(
                "a store session read, then wrote, without write_lock=True: on SQLite another "
                f"connection's commit in between fails it with 'database is locked' ({statement[:80]!r})"
            )


def _called_by_the_service() -> bool:
    """Whether the statement comes from the service's code above the store (not from a test that
    calls the repositories itself to set up its data)."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("servicetsunami.") and not module.startswith("servicetsunami.store"):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def flush_or_conflict(session: Session, message: str) -> None:
    """Flush, turning a uniqueness or foreign-key violation into :class:`Conflict` with ``message``."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(message) from exc
