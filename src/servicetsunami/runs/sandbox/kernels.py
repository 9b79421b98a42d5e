"""IPython kernels inside the sandbox, driven by jupyter_client.

A kernel speaks ZeroMQ over unix sockets in its own folder (``transport="ipc"``: there is no
network inside), is interrupted by a message rather than a signal (a signal to bubblewrap would
not reach it), and imports the Databricks shim (:mod:`.shim`) when it starts. Its connection file
is handed to the sandbox uid; its output goes to a log beside (not inside) its folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import KernelManager
from jupyter_core.utils import ensure_event_loop

from servicetsunami.errors import SandboxUnavailable
from servicetsunami.runs.local.processes import Limits
from servicetsunami.runs.sandbox.bwrap import SandboxSpec, command, running_as_root

logger = logging.getLogger(__name__)

SHIM_LINE = (
    "from servicetsunami.runs.sandbox.shim import install as _tsunami_install; _tsunami_install(); del _tsunami_install"
)
BRIDGE_SOCKET = "bridge.sock"


class _SandboxedKernelManager(KernelManager):
    owner_uid: int | None = None

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self.owner_uid is not None:
            os.chown(self.connection_file, self.owner_uid, self.owner_uid)


@dataclass
class Execution:
    """What one ``execute`` gave: its status (``ok``, ``error``, ``aborted``; ``timeout`` when the
    wait ended first) and the IOPub messages' contents in order (streams, results, displays, errors)."""

    status: str
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        parts = []
        for out in self.outputs:
            if out["type"] == "stream":
                parts.append(out["text"])
            elif out["type"] in ("execute_result", "display_data"):
                parts.append(str(out["data"].get("text/plain", "")) + "\n")
            elif out["type"] == "error":
                parts.append(f"{out['ename']}: {out['evalue']}\n")
        return "".join(parts)


class Kernel:
    """A started kernel: its manager, a blocking client, its folder. :meth:`close` kills it and
    removes the folder."""

    def __init__(self, km: KernelManager, kc: BlockingKernelClient, workdir: Path, log: Path) -> None:
        self.km = km
        self.kc = kc
        self.workdir = workdir
        self.log = log
        # Interrupts come from other threads than the one running code: they have a control socket
        # of their own, used under a lock (a zmq socket is not safe across threads).
        self._control: zmq.Socket[bytes] | None = None
        self._control_lock = threading.Lock()

    def execute(self, code: str, /, *, timeout: float, started: threading.Event | None = None) -> Execution:
        """Run ``code`` and collect what it shows; returns with status ``timeout`` if it outlives
        ``timeout`` (it keeps running: interrupt it). ``started`` is set once the kernel has begun
        the code (from then on an interrupt reaches it)."""
        outputs: list[dict[str, Any]] = []

        def hook(msg: dict[str, Any]) -> None:
            kind = msg["header"]["msg_type"]
            content = msg["content"]
            if kind == "execute_input" and started is not None:
                started.set()
            elif kind == "stream":
                outputs.append({"type": "stream", "name": content["name"], "text": content["text"]})
            elif kind in ("execute_result", "display_data"):
                outputs.append({"type": kind, "data": dict(content.get("data", {}))})
            elif kind == "error":
                traceback = [str(line) for line in content.get("traceback") or []]
                outputs.append(
                    {"type": "error", "ename": content["ename"], "evalue": content["evalue"], "traceback": traceback}
                )

        try:
            reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook, allow_stdin=False)
        except TimeoutError:
            return Execution("timeout", outputs)
        return Execution(str(reply["content"].get("status", "error")), outputs)

    def interrupt(self) -> None:
        """Interrupt the running code (from any thread: a cancel callback, a timer): an
        ``interrupt_request`` on the control channel, sent at once (no event loop)."""
        with self._control_lock, contextlib.suppress(Exception):  # a kernel already gone cannot be interrupted
            if self._control is None:
                self._control = self.km.connect_control()
                self._control.linger = 100
            self.km.session.send(self._control, "interrupt_request", content={})

    def interrupt_until(self, done: Callable[[], bool], /, *, started: threading.Event, seconds: float) -> bool:
        """Interrupt the running code until ``done()``, for up to ``seconds``; whether it came. A
        kernel ignores an interrupt that reaches it before the code starts, and handles one sent
        again right after the first: so the interrupt goes once ``started`` is set (the kernel has
        begun the code), and again only after a second without effect, which keeps a late duplicate
        from reaching the next code."""
        deadline = time.monotonic() + seconds
        again = 0.0
        while not done():
            now = time.monotonic()
            if now >= deadline:
                return False
            if started.is_set() and now >= again:
                self.interrupt()
                again = now + 1.0
            time.sleep(0.02)
        return True

    def _close_control(self) -> None:
        with self._control_lock:
            if self._control is not None:
                self._control.close(linger=0)
                self._control = None

    def alive(self) -> bool:
        try:
            return bool(self.km.is_alive())
        except Exception:
            return False

    def kill(self) -> None:
        self._close_control()
        with contextlib.suppress(Exception):
            self.km.shutdown_kernel(now=True)
        release_thread_loop()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.kc.stop_channels()
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.log.unlink()
        if self.workdir.parent.name.startswith("tsunami-"):  # a temporary root: gone once empty
            with contextlib.suppress(OSError):
                self.workdir.parent.rmdir()
        release_thread_loop()

    def log_tail(self, limit: int = 2000) -> str:
        try:
            return self.log.read_text("utf-8", "replace")[-limit:]
        except OSError:
            return ""


def release_thread_loop() -> None:
    """Close the event loop jupyter_client made for this thread (its blocking calls run on one), so a
    worker thread that ends leaves no open sockets behind; the next call makes a new one."""
    loop = ensure_event_loop()
    if not loop.is_running():
        loop.close()
        asyncio.set_event_loop(None)


def kernel_env(workdir: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of a kernel: nothing of the service's (no keys, no store URL)."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "HOME": str(workdir),
        "IPYTHONDIR": str(workdir / ".ipython"),
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "TSUNAMI_BRIDGE": str(workdir / BRIDGE_SOCKET),
    }
    env.update(extra)
    return env


def start_kernel(
    workdir: Path,
    /,
    *,
    env: Mapping[str, str],
    sandboxed: bool,
    uid: int | None,
    limits: Limits,
    hide: tuple[Path, ...],
    start_seconds: float,
) -> Kernel:
    """Start a kernel with ``workdir`` as its only writable folder (created here, emptied at close)."""
    workdir.mkdir(parents=True, exist_ok=True)
    uid = uid if (sandboxed and running_as_root()) else None
    os.chmod(workdir, 0o700)
    if uid is not None:
        os.chown(workdir, uid, uid)
    argv = [
        sys.executable,
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
        f"--IPKernelApp.exec_lines={SHIM_LINE}",
        "--HistoryManager.enabled=False",
        "--IPKernelApp.quiet=True",
    ]
    inner_env = kernel_env(workdir, env)
    if sandboxed:
        argv = command(SandboxSpec(workdir=workdir, hide=hide, env=inner_env, limits=limits, uid=uid), argv)
        launch_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    else:
        launch_env = inner_env
    km = _SandboxedKernelManager(transport="ipc", ip=str(workdir / "k"))
    km.owner_uid = uid
    km.connection_file = str(workdir / "kernel.json")
    km._kernel_spec = KernelSpec(argv=argv, display_name="tsunami", language="python", interrupt_mode="message", env={})
    log = workdir.with_name(workdir.name + ".log")
    kc: BlockingKernelClient | None = None
    with open(log, "wb") as out:
        try:
            km.start_kernel(env=launch_env, stdout=out, stderr=out, cwd=str(workdir))
            kc = km.client()
            kc.start_channels()
            kc.wait_for_ready(timeout=start_seconds)
        except Exception as exc:
            kernel = Kernel(km, kc or km.client(), workdir, log)
            tail = kernel.log_tail(400).strip().splitlines()
            kernel.close()
            reason = tail[-1] if tail else type(exc).__name__
            logger.warning("a kernel did not start: %s", reason)
            raise SandboxUnavailable(f"the kernel did not start: {reason}") from None
    return Kernel(km, kc, workdir, log)
