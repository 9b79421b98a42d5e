"""Tenant code in the sandbox tries to get out; every attempt fails, and each test says which.

The code runs in a real kernel in bubblewrap, as the notebook runs do. Each snippet prints
``ESCAPED`` only if the attempt worked.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator

import pytest

from servicetsunami.runs.sandbox.kernels import Kernel
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion.uploads import upload_file
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.notebooks import runs as nbruns
from servicetsunami.services.notebooks.runs import open_kernel
from servicetsunami.tenancy import Principal

pytestmark = pytest.mark.slow


@pytest.fixture
def kernel(services: Services, acme: Principal) -> Iterator[Kernel]:
    k, server = open_kernel(services, acme, "escape-tests")
    try:
        yield k
    finally:
        server.close()
        k.close()


def attempt(kernel: Kernel, code: str, *, timeout: float = 60) -> str:
    run = kernel.execute(textwrap.dedent(code), timeout=timeout)
    assert run.status in ("ok", "error"), run
    return run.text


def test_reading_another_tenants_tables_fails(services: Services, kernel: Kernel, globex: Principal) -> None:
    upload_file(services, globex, file_name="people.csv", dataset_name="people", content=b"name\nalice\n")
    root = services.settings.resolved_lakehouse_root
    assert any(root.rglob("*.parquet"))
    out = attempt(
        kernel,
        f"""
        import os
        found = [os.path.join(d, f) for d, _, fs in os.walk({str(root)!r}) for f in fs]
        print("ESCAPED" if found else "nothing there")
        """,
    )
    assert "nothing there" in out and "ESCAPED" not in out


def test_reading_another_sandboxs_folder_fails(services: Services, kernel: Kernel, globex: Principal) -> None:
    other, server = open_kernel(services, globex, "escape-other")
    try:
        (other.workdir / "secret.txt").write_text("globex")
        out = attempt(
            kernel,
            f"""
            try:
                print("ESCAPED", open({str(other.workdir / "secret.txt")!r}).read())
            except OSError as exc:
                print("blocked", type(exc).__name__)
            """,
        )
    finally:
        server.close()
        other.close()
    assert "blocked" in out and "ESCAPED" not in out


@pytest.mark.parametrize("name", ["master.key", "tsunami.db", "jwt.key"])
def test_reading_the_master_key_or_the_system_store_fails(services: Services, kernel: Kernel, name: str) -> None:
    target = services.settings.resolved_home / name
    target.touch()
    out = attempt(
        kernel,
        f"""
        try:
            print("ESCAPED", len(open({str(target)!r}, "rb").read()))
        except OSError as exc:
            print("blocked", type(exc).__name__)
        """,
    )
    assert "blocked" in out and "ESCAPED" not in out


def test_reading_etc_shadow_fails(kernel: Kernel) -> None:
    out = attempt(
        kernel,
        """
        try:
            print("ESCAPED", open("/etc/shadow").read()[:5])
        except OSError as exc:
            print("blocked", type(exc).__name__)
        """,
    )
    assert "blocked PermissionError" in out


@pytest.mark.parametrize("address", [("127.0.0.1", 5432), ("8.8.8.8", 53), ("::1", 5432)])
def test_connecting_to_postgres_or_any_address_fails(kernel: Kernel, address: tuple[str, int]) -> None:
    out = attempt(
        kernel,
        f"""
        import socket
        try:
            socket.create_connection({address!r}, timeout=5)
            print("ESCAPED")
        except OSError as exc:
            print("blocked", type(exc).__name__)
        """,
    )
    assert "blocked" in out and "ESCAPED" not in out


def test_a_fork_bomb_hits_the_process_limit(kernel: Kernel) -> None:
    out = attempt(
        kernel,
        """
        import os, time
        children = 0
        try:
            for _ in range(5000):
                if os.fork() == 0:
                    time.sleep(120)
                    os._exit(0)
                children += 1
            print("ESCAPED", children)
        except OSError as exc:
            print("blocked after", children, type(exc).__name__)
        """,
    )
    assert "blocked after" in out and "ESCAPED" not in out
    assert int(out.split("blocked after")[1].split()[0]) < 64


def test_allocating_50_gb_fails(kernel: Kernel) -> None:
    out = attempt(
        kernel,
        """
        try:
            block = bytearray(50 * 1024**3)
            print("ESCAPED")
        except MemoryError:
            print("blocked MemoryError")
        """,
    )
    assert "blocked MemoryError" in out


def test_an_endless_loop_is_stopped_by_the_runs_time_limit(services: Services, acme: Principal) -> None:
    made = notebooks.create_notebook(services, acme, "/loop", cells=[{"source": "while True:\n    pass"}])
    run_id = nbruns.run_notebook(services, acme, made.notebook_id, timeout_seconds=3)
    done = nbruns.wait_notebook_run(services, acme, run_id, timeout=60)
    assert done.run.state == "timed_out"
    assert done.run.error_code == "timed_out"


def test_writing_10_gb_fails(kernel: Kernel) -> None:
    out = attempt(
        kernel,
        """
        chunk = b"0" * (16 * 1024 * 1024)
        written = 0
        try:
            with open("big.bin", "wb") as f:
                for _ in range(640):
                    f.write(chunk)
                    written += len(chunk)
            print("ESCAPED", written)
        except OSError as exc:
            print("blocked after", written, type(exc).__name__)
        """,
    )
    assert "blocked after" in out and "ESCAPED" not in out


def test_writing_outside_its_folder_fails(kernel: Kernel) -> None:
    out = attempt(
        kernel,
        """
        for path in ("/work-escape.txt", "/usr/escape.txt", "/etc/escape.txt"):
            try:
                open(path, "w").write("x")
                print("ESCAPED", path)
            except OSError as exc:
                print("blocked", type(exc).__name__)
        """,
    )
    assert out.count("blocked") == 3 and "ESCAPED" not in out


def test_reading_the_services_environment_fails(
    monkeypatch: pytest.MonkeyPatch, services: Services, acme: Principal
) -> None:
    monkeypatch.setenv("TSUNAMI_CANARY_SECRET", "canary-5f2e")
    k, server = open_kernel(services, acme, "escape-env")
    try:
        out = attempt(
            k,
            """
            import glob, os
            seen = "canary-5f2e" in repr(dict(os.environ))
            for path in glob.glob("/proc/*/environ"):
                try:
                    seen = seen or b"canary-5f2e" in open(path, "rb").read()
                except OSError:
                    pass
            print("ESCAPED" if seen else "not found", sorted(os.environ))
            """,
        )
    finally:
        server.close()
        k.close()
    assert "not found" in out and "ESCAPED" not in out
    assert "TSUNAMI_CANARY_SECRET" not in out


def test_signalling_the_server_fails(kernel: Kernel) -> None:
    pid = os.getpid()
    out = attempt(
        kernel,
        f"""
        import os
        try:
            os.kill({pid}, 0)  # the permission check of a signal, without its effect
            cmd = open("/proc/{pid}/cmdline", "rb").read()
            print("ESCAPED" if b"pytest" in cmd else "another process")
        except OSError as exc:
            print("blocked", type(exc).__name__)
        """,
    )
    assert "ESCAPED" not in out and ("blocked" in out or "another process" in out)


def test_the_kernel_runs_as_an_unprivileged_uid_without_capabilities(services: Services, kernel: Kernel) -> None:
    out = attempt(
        kernel,
        """
        import os
        caps = [l for l in open("/proc/self/status") if l.startswith("CapEff")][0].split()[1]
        print("uid", os.getuid(), os.geteuid(), "caps", caps)
        """,
    )
    if os.geteuid() == 0:
        uid = services.settings.sandbox.uid
        assert f"uid {uid} {uid} caps 0000000000000000" in out
    else:
        assert "caps 0000000000000000" in out
