"""A worker killed with SIGKILL while it executes a run: the next sweep fails the run, or re-queues it
when its kind is safe to run again, within the stale interval; nothing stays "running" forever."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from servicetsunami.services.container import Services
from servicetsunami.services.runs import service as runs
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.runs.support import FAST_RUNS, settings_for

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("worker_child.py")
ROOT = Path(__file__).resolve().parents[3]
WAIT = 30.0


class Child:
    def __init__(self, home: Path, database_url: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(home), database_url],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._pumping = threading.Thread(target=self._pump, daemon=True)
        self._pumping.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.lines.put(line.strip())

    def expect(self, prefix: str) -> str:
        deadline = time.monotonic() + WAIT
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if line.startswith(prefix):
                return line

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(WAIT)
        self._pumping.join(WAIT)  # it closes the pipe once the output ends


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def svc(home: Path, database_url: str) -> Iterator[Services]:
    services = Services.open(settings_for(home, database_url))  # the survivor; its worker starts later
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def owner(svc: Services) -> Principal:
    return make_principal(svc, "acme")[0]


def _queue(svc: Services, owner: Principal, kind: str, **params: object) -> str:
    with svc.store.session() as session:
        return runs_repo.create_run(
            session,
            tenant_id=owner.tenant_id,
            kind=kind,
            subject=owner.subject,
            role=owner.role.value,
            params=dict(params),
            max_attempts=2,
        ).id


def _killed_while_running(svc: Services, home: Path, database_url: str, run_id: str) -> float:
    child = Child(home, database_url)
    try:
        child.expect("ready")
        assert child.expect("running ") == f"running {run_id}"
        assert runs.get_run(svc, None, run_id).state == "running"
    finally:
        child.kill()
    return time.monotonic()


def test_a_run_whose_worker_was_sigkilled_ends_failed_within_the_stale_interval(
    svc: Services, owner: Principal, home: Path, database_url: str
) -> None:
    run_id = _queue(svc, owner, "test_block")
    killed_at = _killed_while_running(svc, home, database_url, run_id)
    runs.ensure_worker(svc)  # the surviving worker sweeps
    run = runs.wait_for_run(svc, owner, run_id, timeout=WAIT)
    took = time.monotonic() - killed_at
    assert (run.state, run.error_code) == ("failed", "worker_lost")
    assert took < FAST_RUNS["stale_after_seconds"] + FAST_RUNS["heartbeat_seconds"] + 3 * FAST_RUNS["sweep_seconds"] + 2


def test_a_run_safe_to_retry_is_requeued_after_its_worker_was_sigkilled_and_finishes_elsewhere(
    svc: Services, owner: Principal, home: Path, database_url: str
) -> None:
    run_id = _queue(svc, owner, "test_block_requeue", finish_on_attempt=2)
    _killed_while_running(svc, home, database_url, run_id)
    runs.ensure_worker(svc)
    run = runs.wait_for_run(svc, owner, run_id, timeout=WAIT)
    assert (run.state, run.attempts, run.result) == ("succeeded", 2, {"attempt": 2})
