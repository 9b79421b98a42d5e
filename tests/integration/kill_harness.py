"""The SIGKILL harness of the exactly-once tests (pg, mysql, rest, salesforce): a sync run in a child
process of its own (each folder's ``sync_child.py``, which prints ``started``, ``committed <n>`` after
each commit and ``done <rows>``), killed at random moments — while it starts, mid-batch, right after a
commit — the source changed between runs, then run to completion.

Each child is forked by a multiprocessing fork server that imported the child scripts (and so the
service) once: a fresh interpreter per child would spend seconds importing before every kill, and
the kill of a forked process is the same SIGKILL."""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import runpy
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TextIO

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


_ROOT = Path(__file__).resolve().parents[2]
_FORKS = multiprocessing.get_context("forkserver")


def _forks() -> multiprocessing.context.ForkServerContext:
    """The fork server's context; it imports every ``sync_child.py`` (not running its ``main``) when
    it starts, on the first child."""
    scripts = sorted(Path(__file__).parent.glob("*/sync_child.py"))
    _FORKS.set_forkserver_preload([".".join(p.relative_to(_ROOT).with_suffix("").parts) for p in scripts])
    return _FORKS


def _run_script(script: str, args: list[str], stdout: Connection, errors: str, env: dict[str, str]) -> None:
    """In the forked child: the script as ``__main__``, its output on the pipe, its errors in the file."""
    os.environ.update(env)
    err = os.open(errors, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(err, 2)
    os.dup2(stdout.fileno(), 1)
    os.close(err)
    stdout.close()
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115  # fd 1 lives as long as the process
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")
    sys.stdout.flush()


class Child:
    """A running child script; its output lines arrive on a queue filled by a thread, its errors go
    to a file (read when it fails)."""

    def __init__(self, script: Path, args: list[str], errors: Path, env: dict[str, str] | None = None) -> None:
        self.errors = errors
        errors.write_text("")
        forks = _forks()
        read, write = forks.Pipe(duplex=False)
        self.proc = forks.Process(target=_run_script, args=(str(script), args, write, str(errors), env or {}))
        self.proc.start()
        write.close()  # the child holds the only write end: end of file when it dies
        self._stdout: TextIO = open(os.dup(read.fileno()))  # noqa: SIM115  # closed by the pump
        read.close()
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.started = False
        self.commits = 0
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        with self._stdout:
            for line in self._stdout:
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
        self.proc.join(timeout=seconds)
        if self.proc.exitcode is not None:
            return False
        self.proc.kill()
        self.proc.join(timeout=WAIT)
        self._pump.join(timeout=WAIT)
        while self.next_line() is not None:  # what it printed before it died
            pass
        return True

    def finish(self) -> str:
        """Wait for a normal end; its last line."""
        self.proc.join(timeout=WAIT)
        self._pump.join(timeout=WAIT)
        assert self.proc.exitcode == 0, self.errors.read_text()[-3000:]
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
        if rng.random() < 0.15:  # while it starts: opens the lakehouse and the source
            # Forked with everything imported, a child starts in tens of milliseconds: the first such
            # kill comes at once, so one surely lands before the start.
            killed = child.kill_after(0.0 if kills.before_start == 0 else rng.uniform(0.0, 0.1))
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
