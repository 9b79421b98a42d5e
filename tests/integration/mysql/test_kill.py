"""Exactly once under SIGKILL against MariaDB: a sync process killed at random moments (while it
starts, while it reads a batch, while it commits one, right after a commit) and run again lands
every source row in bronze exactly once; in merge mode, every key with its latest values."""

from __future__ import annotations

import os
import queue
import random
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from servicetsunami.engines.local.engine import LocalEngine
from tests.integration.mysql.support import ENV, execute, server_url
from tests.integration.pg.support import bronze

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

CHILD = Path(__file__).with_name("sync_child.py")
ROWS = 20_000
BATCH_ROWS = 500
KILLS = 20
WAIT = 60.0  # seconds any one step of a child may take before the test gives up on it


@dataclass
class Kills:
    """Where the kills landed: before the run started, or after how many commits of that process."""

    before_start: int = 0
    after_commits: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.before_start + len(self.after_commits)

    def record(self, child: Child) -> None:
        if child.started:
            self.after_commits.append(child.commits)
        else:
            self.before_start += 1


class Child:
    """A running ``sync_child.py``; its output lines arrive on a queue filled by a thread, its
    errors go to a file (read when it fails)."""

    def __init__(self, args: list[str], errors: Path) -> None:
        self.errors = errors
        with open(errors, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(CHILD), *args],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env={**os.environ, ENV: server_url()},
            )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.started = False
        self.commits = 0
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.lines.put(line.strip())
        self.lines.put(None)

    def next_line(self) -> str | None:
        line = self.lines.get(timeout=WAIT)
        self.started |= line == "started"
        if line is not None and line.startswith("committed"):
            self.commits += 1
        return line

    def kill_after(self, seconds: float) -> bool:
        """SIGKILL after ``seconds`` unless it ended first; True when it was killed."""
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)
            self._pump.join(timeout=WAIT)
            while self.next_line() is not None:  # what it printed before it died
                pass
            return True
        return False

    def finish(self) -> str:
        """Wait for a normal end; its last line."""
        self.proc.wait(timeout=WAIT)
        self._pump.join(timeout=WAIT)
        assert self.proc.returncode == 0, self.errors.read_text()[-3000:]
        last = ""
        while (line := self.lines.get_nowait()) is not None:
            last = line
        return last


def _kill_repeatedly(args: list[str], rng: random.Random, change_source: Any, errors: Path) -> Kills:
    """Start the sync, kill it at a random moment, change the source, restart; KILLS times."""
    kills = Kills()
    attempts = 0
    while kills.total < KILLS:
        attempts += 1
        assert attempts <= KILLS * 3, "the sync kept finishing before it could be killed"
        child = Child(args, errors)
        if rng.random() < 0.15:  # while it imports, attaches and finds its cursor
            killed = child.kill_after(rng.uniform(0.05, 0.5))
        else:
            assert child.next_line() == "started"
            wait_for = rng.choice([0, 0, 1, 2, 4])
            for _ in range(wait_for):  # let a few batches commit first
                line = child.next_line()
                if line is None or line.startswith("done"):
                    break
            # A batch takes ~50 ms: mid-batch or between. Until one kill has landed before the first
            # commit, a kill right after the start makes sure one does (timing alone may not).
            first_batch = wait_for == 0 and 0 not in kills.after_commits
            killed = child.kill_after(0.0 if first_batch else rng.uniform(0.0, 0.12))
        if killed:
            kills.record(child)
        else:
            child.finish()  # it ended before the kill: the sync was complete
        change_source()
    return kills


def _run_to_completion(args: list[str], errors: Path) -> str:
    return Child(args, errors).finish()


def _table(database: str) -> str:
    execute(
        database,
        "CREATE TABLE orders (id bigint PRIMARY KEY, val varchar(60), updated_at timestamp(6) NOT NULL, "
        "KEY (updated_at))",
        "INSERT INTO orders SELECT seq, CONCAT('v', seq), TIMESTAMPADD(SECOND, seq, TIMESTAMP'2024-01-01 00:00:00') "
        f"FROM seq_1_to_{ROWS}",
    )
    return f"{database}.orders"


@pytest.mark.parametrize("mode", ["incremental_append", "incremental_merge"])
def test_a_sync_killed_twenty_times_at_random_moments_lands_every_row_exactly_once(
    database: str, tmp_path: Path, mode: str
) -> None:
    stream = _table(database)
    rng = random.Random(f"mysql-kill-{mode}")
    root = tmp_path / "lakehouse"
    args = [str(root), database, stream, "orders", mode, "--sync-id", "orders", "--cursor", "updated_at"]
    args += ["--batch-rows", str(BATCH_ROWS)] + (["--key", "id"] if mode == "incremental_merge" else [])
    next_id = iter(range(ROWS + 1, ROWS + 10_000))

    def change_source() -> None:
        if mode == "incremental_merge":  # rows change under the sync: merge must keep the latest values
            ids = ", ".join(str(i) for i in rng.sample(range(1, ROWS + 1), 40))
            execute(
                database,
                f"UPDATE orders SET val = CONCAT(val, '+'), updated_at = CURRENT_TIMESTAMP(6) WHERE id IN ({ids})",
            )
        new = [next(next_id) for _ in range(rng.randint(0, 30))]
        if new:
            values = ", ".join(f"({i}, 'new {i}', CURRENT_TIMESTAMP(6))" for i in new)
            execute(database, f"INSERT INTO orders VALUES {values}")

    kills = _kill_repeatedly(args, rng, change_source, tmp_path / "child.err")
    last = _run_to_completion(args, tmp_path / "child.err")
    assert last.startswith("done")

    assert kills.total >= KILLS
    assert kills.before_start >= 1 and any(n == 0 for n in kills.after_commits)
    assert any(n > 0 for n in kills.after_commits)  # some processes died after committing some batches
    engine = LocalEngine(root)
    try:
        got = bronze(engine, "SELECT id, val, updated_at FROM orders ORDER BY id")
        counts = bronze(engine, "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM orders")[0]
    finally:
        engine.close()
    source = execute(database, "SELECT id, val, updated_at FROM orders ORDER BY id")
    assert counts == {"n": len(source), "ids": len(source)}
    assert [(r["id"], r["val"], r["updated_at"].replace(tzinfo=None)) for r in got] == source
