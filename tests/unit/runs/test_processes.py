"""Killable work: a subprocess of a run is stopped with its children when the run is canceled."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from servicetsunami.runs.base import ClaimedRun
from servicetsunami.runs.local.processes import Limits, run_process

DEADLINE = 30.0


def _run() -> ClaimedRun:
    return ClaimedRun(
        id="r1",
        kind="k",
        tenant_id=None,
        subject="s",
        role=None,
        params={},
        attempt=1,
        max_attempts=1,
        timeout_seconds=None,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_finished_process_reports_its_exit_code_and_output(tmp_path: Path) -> None:
    outcome = run_process(
        [sys.executable, "-c", "import sys; print('hi'); sys.exit(3)"], run=_run(), workdir=tmp_path, env={}
    )
    assert (outcome.returncode, outcome.stopped) == (3, False)
    assert outcome.stdout.read_text() == "hi\n"


def test_canceling_the_run_kills_the_process_and_its_children(tmp_path: Path) -> None:
    run = _run()
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    result: list[object] = []
    worker = threading.Thread(
        target=lambda: result.append(run_process([sys.executable, "-c", script], run=run, workdir=tmp_path, env={}))
    )
    worker.start()
    pid_file = tmp_path / "stdout.log"
    deadline = time.monotonic() + DEADLINE
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the child never started"
        worker.join(0.05)
    grandchild = int(pid_file.read_text().split()[0])
    run.request_cancel("canceled")
    worker.join(DEADLINE)
    assert not worker.is_alive() and result and result[0].stopped  # type: ignore[attr-defined]
    deadline = time.monotonic() + DEADLINE
    while _alive(grandchild):
        assert time.monotonic() < deadline, "the grandchild outlived the cancel"
        worker.join(0.05)


def test_limits_apply_to_the_child(tmp_path: Path) -> None:
    outcome = run_process(
        [sys.executable, "-c", "open('big', 'wb').write(b'x' * 10_000_000)"],
        run=_run(),
        workdir=tmp_path,
        env={},
        limits=Limits(file_bytes=1_000_000),
    )
    assert outcome.returncode != 0
    assert (tmp_path / "big").stat().st_size <= 1_000_000


PARENT = """
import os, sys, threading, time
from pathlib import Path
from servicetsunami.runs.base import ClaimedRun
from servicetsunami.runs.local.processes import Limits, run_process

pid_file, workdir = sys.argv[1], Path(sys.argv[2])
run = ClaimedRun(id="r", kind="k", tenant_id=None, subject="s", role=None, params={}, attempt=1,
                 max_attempts=1, timeout_seconds=None)
argv = [sys.executable, "-c", "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)",
        pid_file]
work = lambda: run_process(argv, run=run, workdir=workdir, env={}, limits=Limits(die_with_parent=True))
threading.Thread(target=work, daemon=True).start()
while not os.path.exists(pid_file) or not open(pid_file).read():
    time.sleep(0.05)
os._exit(0)  # the waiting thread ends with the process, as in a worker that is killed
"""


def test_a_process_started_to_die_with_its_parent_does_not_outlive_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    subprocess.run([sys.executable, "-c", PARENT, str(pid_file), str(tmp_path / "work")], check=True, timeout=60)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + DEADLINE
    while _alive(child):
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.05)
