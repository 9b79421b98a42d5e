"""Killable work: a subprocess in its own process group, stopped when its run is canceled or times out.

A run's handler calls :func:`run_process` with the run's :class:`~servicetsunami.runs.base.ClaimedRun`;
the child gets a clean environment (only what the caller passes), optional resource limits, and is
killed with its whole group (SIGTERM, then SIGKILL after ``grace_seconds``) when the run is canceled.
Its output goes to files, so a chatty child cannot fill a pipe and stall.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from servicetsunami.runs.base import ClaimedRun

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True, slots=True)
class Limits:
    """rlimits applied in the child before it starts (None: inherited)."""

    memory_bytes: int | None = None
    cpu_seconds: int | None = None
    file_bytes: int | None = None
    processes: int | None = None
    # Killed (SIGKILL) when the thread that started it ends, e.g. with its process: for children a
    # thread waits on to its end, never for ones that must outlive their starter.
    die_with_parent: bool = False


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    returncode: int
    stopped: bool  # killed because the run was canceled or timed out
    stdout: Path
    stderr: Path


def run_process(
    argv: Sequence[str],
    /,
    *,
    run: ClaimedRun,
    workdir: Path,
    env: Mapping[str, str],
    limits: Limits | None = None,
    grace_seconds: float = 5.0,
) -> ProcessOutcome:
    """Run ``argv`` to its end, or until ``run`` is canceled (then its process group is killed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = workdir / "stdout.log", workdir / "stderr.log"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        child = subprocess.Popen(
            list(argv),
            cwd=workdir,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group, so the kill reaches its children too
            # preexec_fn is unsafe with threads in general; this one only calls setrlimit.
            preexec_fn=_limiter(limits) if limits is not None else None,
        )
    run.on_cancel(lambda: _signal_group(child, signal.SIGTERM))
    stopped = False
    while True:
        try:
            returncode = child.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if run.cancelled:
                stopped = True
                try:
                    returncode = child.wait(timeout=grace_seconds)
                except subprocess.TimeoutExpired:
                    _signal_group(child, signal.SIGKILL)
                    returncode = child.wait()
                break
    return ProcessOutcome(returncode, stopped or run.cancelled, stdout, stderr)


def _signal_group(child: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if child.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):  # it ended between the poll and the kill
        os.killpg(child.pid, sig)


def _limiter(limits: Limits) -> Callable[[], None]:
    prctl = ctypes.CDLL(None, use_errno=True).prctl if limits.die_with_parent else None  # looked up before fork

    def apply() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        for name, value in (
            (resource.RLIMIT_AS, limits.memory_bytes),
            (resource.RLIMIT_CPU, limits.cpu_seconds),
            (resource.RLIMIT_FSIZE, limits.file_bytes),
            (resource.RLIMIT_NPROC, limits.processes),
        ):
            if value is not None:
                resource.setrlimit(name, (value, value))

    return apply
