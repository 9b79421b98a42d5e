"""The SIGKILL harness of the exactly-once tests (pg, mysql, rest, salesforce): a sync run in a child
process of its own (each folder's ``sync_child.py``, which prints ``started``, ``committed <n>`` after
each commit and ``done <rows>``), killed at random moments — while it starts, mid-batch, right after a
commit — the source changed between runs, then run to completion."""

from __future__ import annotations

import os
import queue
import random
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
    """A running child script; its output lines arrive on a queue filled by a thread, its errors go
    to a file (read when it fails)."""

    def __init__(self, script: Path, args: list[str], errors: Path, env: dict[str, str] | None = None) -> None:
        self.errors = errors
        with open(errors, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), *args],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env={**os.environ, **(env or {})},
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


def kill_repeatedly(
    script: Path,
    args: list[str],
    rng: random.Random,
    change_source: Callable[[], None],
    errors: Path,
    *,
    env: dict[str, str] | None = None,
) -> Kills:
    """Start ``script``, kill it at a random moment, change the source, restart; KILLS times."""
    kills = Kills()
    attempts = 0
    while kills.total < KILLS:
        attempts += 1
        assert attempts <= KILLS * 3, "the sync kept finishing before it could be killed"
        child = Child(script, args, errors, env)
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


def run_to_completion(script: Path, args: list[str], errors: Path, *, env: dict[str, str] | None = None) -> str:
    return Child(script, args, errors, env).finish()
