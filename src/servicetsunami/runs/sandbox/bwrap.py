"""The bubblewrap command that confines tenant code.

Inside, the code sees the machine's root read-only, with the folders that hold anything private
(the service's data folder, the lakehouse, ``/root``, ``/home``, ``/tmp``) replaced by empty
tmpfs; the Python installation is bound back read-only where it lived under one of them. Its own
``workdir`` (same path inside and out, so unix sockets named in it work from both sides) is the only
writable folder. It has no network (its own empty network namespace), its own PID namespace (it
sees and can signal only its own processes), a clean environment, a new session (no terminal
injection), and rlimits on memory, CPU time, processes and file size.

When the service runs as root, bubblewrap runs privileged and the code is switched to an
unprivileged uid with ``setpriv`` (no capabilities, no supplementary groups) before it starts; the
limits go on last with ``prlimit``, so they bind that uid. Otherwise bubblewrap makes a user
namespace and the code keeps the service's uid outside it.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from servicetsunami.runs.local.processes import Limits

_ALWAYS_HIDDEN = ("/root", "/home", "/tmp", "/var/tmp", "/run", "/mnt", "/media", "/srv")


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """What one sandbox sees and may do."""

    workdir: Path  # the only writable folder
    hide: Sequence[Path] = ()  # private folders replaced by empty tmpfs (plus the usual ones)
    env: Mapping[str, str] = field(default_factory=dict)  # the whole environment inside
    limits: Limits = field(default_factory=Limits)
    uid: int | None = None  # switch to this uid (and gid) inside; needs the service to run as root


def running_as_root() -> bool:
    return os.geteuid() == 0


def python_roots() -> list[Path]:
    """Folders the kernel's Python needs (the installation, the virtualenv, this package's source)."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent.parent}
    roots.add(Path(__file__).resolve().parents[3])  # src/ of an editable install, or site-packages
    return sorted(roots)


def command(spec: SandboxSpec, argv: Sequence[str], /) -> list[str]:
    """``argv`` wrapped so it runs confined by ``spec``."""
    bwrap = shutil.which("bwrap") or "bwrap"
    out = [bwrap]
    privileged = spec.uid is not None and running_as_root()
    if privileged:  # no user namespace: bubblewrap mounts as root, setpriv then drops to spec.uid
        out += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    else:
        out += ["--unshare-all"]
    out += ["--die-with-parent", "--new-session", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
    hidden = sorted({Path(p) for p in _ALWAYS_HIDDEN} | {Path(p).resolve() for p in spec.hide}, key=str)
    scratch = str(spec.limits.file_bytes or 256 * 1024 * 1024)
    for path in hidden:
        if path.is_dir() and not _inside(path, hidden):
            size = scratch if str(path) in ("/tmp", "/var/tmp") else str(4 * 1024 * 1024)
            out += ["--size", size, "--tmpfs", str(path)]
    for root in python_roots():
        if any(_under(root, h) for h in hidden):
            out += [*_parents(root, hidden), "--ro-bind", str(root), str(root)]
    workdir = spec.workdir.resolve()
    out += _parents(workdir, hidden)
    out += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir), "--clearenv"]
    for key, value in spec.env.items():
        out += ["--setenv", key, value]
    out += ["--"]
    if privileged:
        uid = str(spec.uid)
        out += [_tool("setpriv"), f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        out += ["--inh-caps=-all", "--bounding-set=-all", "--"]
    out += _limits(spec.limits)
    return out + list(argv)


def _parents(path: Path, hidden: Sequence[Path]) -> list[str]:
    """Folders leading to a mount point inside a hidden folder, made traversable (bubblewrap would
    create them private to root)."""
    out: list[str] = []
    for parent in reversed(path.parents):
        if parent != Path("/") and any(_under(parent, h) for h in hidden):
            out += ["--perms", "0755", "--dir", str(parent)]
    return out


def _limits(limits: Limits) -> list[str]:
    flags = [
        f"--{name}={value}"
        for name, value in (
            ("as", limits.memory_bytes),
            ("cpu", limits.cpu_seconds),
            ("nproc", limits.processes),
            ("fsize", limits.file_bytes),
        )
        if value is not None
    ]
    return [_tool("prlimit"), *flags, "--"] if flags else []


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/bin/{name}"


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _inside(path: Path, hidden: Sequence[Path]) -> bool:
    return any(h != path and h in path.parents for h in hidden)


@functools.cache
def probe(uid: int | None) -> str | None:
    """Why a sandbox cannot start here (None: it can). Tried once per process: a trivial program
    is run in a real sandbox."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (the bwrap command, Debian package bubblewrap) is not installed"
    missing = [t for t in ("setpriv", "prlimit") if shutil.which(t) is None]
    if missing:
        return f"{' and '.join(missing)} (util-linux) not found"
    with tempfile.TemporaryDirectory(prefix="tsunami-probe-") as tmp:
        work = Path(tmp)
        if uid is not None and running_as_root():
            os.chown(work, uid, uid)
        spec = SandboxSpec(workdir=work, uid=uid, limits=Limits(memory_bytes=512 * 1024 * 1024))
        try:
            done = subprocess.run(
                command(spec, [sys.executable, "-c", "print('ok')"]),
                capture_output=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap could not start ({type(exc).__name__})"
    if done.returncode != 0 or done.stdout.strip() != b"ok":
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"bubblewrap refused to start: {reason[-1][:200] if reason else f'exit {done.returncode}'}"
    return None
