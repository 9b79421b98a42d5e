"""Small SQLite files shared by worker processes are set up even while another process holds them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from servicetsunami.store import db as store_db
from servicetsunami.store.db import open_sqlite_file, set_up_sqlite


class LockedFor:
    """A connection whose first ``times`` statements find the file locked, as SQLite answers at once
    when two processes switch a new file to WAL together."""

    def __init__(self, times: int) -> None:
        self.left = times
        self.done: list[str] = []

    def execute(self, statement: str) -> None:
        if self.left > 0:
            self.left -= 1
            raise sqlite3.OperationalError("database is locked")
        self.done.append(statement)


def test_a_set_up_statement_that_finds_the_file_locked_is_tried_again() -> None:
    db = LockedFor(times=3)
    set_up_sqlite(db, "PRAGMA journal_mode=WAL", "CREATE TABLE IF NOT EXISTS t (a)")  # type: ignore[arg-type]
    assert db.done == ["PRAGMA journal_mode=WAL", "CREATE TABLE IF NOT EXISTS t (a)"]


def test_a_file_locked_past_the_busy_timeout_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT_MS", 50)
    with pytest.raises(sqlite3.OperationalError):
        set_up_sqlite(LockedFor(times=10_000), "PRAGMA journal_mode=WAL")  # type: ignore[arg-type]


def test_other_errors_are_not_tried_again() -> None:
    with pytest.raises(sqlite3.OperationalError):
        set_up_sqlite(sqlite3.connect(":memory:"), "CREATE TABLE broken (")


def test_an_opened_file_is_in_wal_mode_with_its_tables(tmp_path: Path) -> None:
    db = open_sqlite_file(tmp_path / "run" / "counts.db", "CREATE TABLE IF NOT EXISTS hits (key TEXT)")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.execute("INSERT INTO hits VALUES ('a')")  # autocommit: visible to the next connection at once
    assert sqlite3.connect(tmp_path / "run" / "counts.db").execute("SELECT count(*) FROM hits").fetchone() == (1,)
    db.close()
