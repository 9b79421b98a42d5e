"""A SQLite session that reads and then writes must take the write lock: why, and the check that says so."""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from servicetsunami.errors import StoreError
from servicetsunami.store import db
from servicetsunami.store.db import CHECK_WRITE_LOCKS_VARIABLE, Store, UnlockedReadThenWrite


def _store(path: Path) -> Store:
    store = Store(f"sqlite:///{path}")
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS counts (n INTEGER)"))
    return store


def test_a_deferred_session_that_read_cannot_write_after_another_connection_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CHECK_WRITE_LOCKS_VARIABLE, "0")  # the failure itself, not the check's
    ours, theirs = _store(tmp_path / "store.db"), _store(tmp_path / "store.db")
    with pytest.raises(StoreError) as failed, ours.session() as session:
        session.execute(text("SELECT count(*) FROM counts")).scalar_one()
        with theirs.session() as other:
            other.execute(text("INSERT INTO counts VALUES (1)"))
        session.execute(text("INSERT INTO counts VALUES (2)"))
    assert failed.value.code == "store_error"  # "database is locked", at once
    with ours.session(write_lock=True) as session:  # the lock taken first: the same block goes through
        session.execute(text("SELECT count(*) FROM counts")).scalar_one()
        session.execute(text("INSERT INTO counts VALUES (2)"))
    ours.dispose()
    theirs.dispose()


def _read_then_write(store: Store, *, lock: bool) -> None:
    with store.session(write_lock=lock) as session:
        session.execute(text("SELECT count(*) FROM counts")).scalar_one()
        session.execute(text("INSERT INTO counts VALUES (0)"))


def as_service_code(function: Callable[..., None]) -> Callable[..., None]:
    """``function`` as if it were defined in a module of the service (the check looks at callers' modules)."""
    return types.FunctionType(
        function.__code__, {**function.__globals__, "__name__": "servicetsunami.services.example"}
    )


def test_the_check_refuses_a_service_session_that_reads_then_writes_without_the_write_lock(tmp_path: Path) -> None:
    store = _store(tmp_path / "store.db")  # the suite turns the check on (tests/conftest.py)
    with pytest.raises(UnlockedReadThenWrite):
        as_service_code(_read_then_write)(store, lock=False)
    as_service_code(_read_then_write)(store, lock=True)
    with store.session() as session:  # a test's own set-up is not the service's code
        session.execute(text("SELECT count(*) FROM counts")).scalar_one()
        session.execute(text("INSERT INTO counts VALUES (1)"))
    with store.session(write_lock=True) as session:
        session.execute(text("SELECT count(*) FROM counts")).scalar_one()
        session.execute(text("INSERT INTO counts VALUES (1)"))
    with store.session() as session:  # a write first holds the lock for the rest of the block
        session.execute(text("INSERT INTO counts VALUES (2)"))
        session.execute(text("SELECT count(*) FROM counts")).scalar_one()
        session.execute(text("UPDATE counts SET n = n + 1"))
    with store.session() as session:
        assert session.execute(text("SELECT count(*) FROM counts")).scalar_one() == 4  # the refused block left none
    store.dispose()


def _holding_a_write_session(store: Store, release: threading.Event) -> threading.Thread:
    """A thread in a write session that has inserted 1, holding it until ``release`` is set."""
    holding = threading.Event()

    def hold() -> None:
        with store.session(write_lock=True) as session:
            session.execute(text("INSERT INTO counts VALUES (1)"))
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    return holder


def test_a_write_session_waits_for_its_turn_in_the_process_without_holding_a_connection(tmp_path: Path) -> None:
    store = _store(tmp_path / "store.db")
    release, waiting = threading.Event(), threading.Event()

    def wait_turn() -> None:
        waiting.set()
        with store.session(write_lock=True) as session:
            session.execute(text("INSERT INTO counts VALUES (2)"))

    holder = _holding_a_write_session(store, release)
    waiter = threading.Thread(target=wait_turn)
    waiter.start()
    assert waiting.wait(10)
    watch_until = time.monotonic() + 0.3
    while time.monotonic() < watch_until:  # the waiter queues on the process's lock, not at SQLite's
        assert store.engine.pool.checkedout() == 1  # type: ignore[attr-defined]  # QueuePool
        time.sleep(0.01)
    release.set()
    holder.join(10)
    waiter.join(10)
    with store.session() as session:
        assert session.execute(text("SELECT n FROM counts ORDER BY n")).scalars().all() == [1, 2]
    store.dispose()


def test_a_write_session_that_waits_past_the_busy_timeout_is_told_the_store_is_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path / "store.db")
    release = threading.Event()
    holder = _holding_a_write_session(store, release)
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    try:
        with pytest.raises(StoreError) as busy, store.session(write_lock=True) as session:
            session.execute(text("INSERT INTO counts VALUES (2)"))
    finally:
        release.set()
        holder.join(10)
    assert busy.value.code == "store_error" and busy.value.is_transient
    with store.session() as session:
        assert session.execute(text("SELECT n FROM counts")).scalars().all() == [1]  # nothing half-written
    store.dispose()
