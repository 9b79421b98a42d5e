"""A MariaDB server of the tests' own that speaks TLS, for the source's ``ssl_mode`` paths.

Started from the same ``mariadb-server`` package as the main test server (``.ci/run`` installs it),
in a temporary data directory, on a free loopback port, with a certificate signed by a CA made here
(so no system trust store knows it) for the name ``db.test`` only. Its user ``reader`` must use TLS
(``REQUIRE SSL``): a read over a plain connection is refused by the server itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER, PASSWORD, DATABASE = "reader", "tls-only-reader", "shop"


@dataclass(frozen=True)
class TlsServer:
    host: str
    port: int
    socket: str  # the unix socket its root user connects through

    def execute(self, *statements: str) -> list[tuple[object, ...]]:
        conn = pymysql.connect(unix_socket=self.socket, user="root", autocommit=True)
        try:
            rows: list[tuple[object, ...]] = []
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
                    rows = list(cur.fetchall())
            return rows
        finally:
            conn.close()


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(f"{name} is missing: install Debian's mariadb-server (.ci/run does)")
    return found


def _certificates(folder: Path) -> None:
    """A CA, and a server certificate it signs for ``db.test``, as PEM files in ``folder``."""
    now = dt.datetime.now(dt.UTC)

    def certificate(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey, *, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("db.test")]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("tsunami test CA", ca_key, "tsunami test CA", ca_key, ca=True)
    server = certificate("db.test", server_key, "tsunami test CA", ca_key, ca=False)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "cert.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def tls_mariadb() -> Iterator[TlsServer]:
    folder = Path(tempfile.mkdtemp(prefix="tsunami-tls-mariadb-"))
    as_root = os.geteuid() == 0  # mariadbd refuses to run as root: it runs as the package's user
    user = ["--user=mysql"] if as_root else []
    process: subprocess.Popen[bytes] | None = None
    try:
        _certificates(folder)
        if as_root:
            shutil.chown(folder, "mysql", "mysql")
            for path in folder.iterdir():
                shutil.chown(path, "mysql", "mysql")
        subprocess.run(
            [_binary("mariadb-install-db"), "--no-defaults", f"--datadir={folder / 'data'}", *user,
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        port, sock = _free_port(), str(folder / "sock")
        process = subprocess.Popen(
            [_binary("mariadbd"), "--no-defaults", f"--datadir={folder / 'data'}", *user, f"--port={port}",
             "--bind-address=127.0.0.1", f"--socket={sock}", f"--pid-file={folder / 'pid'}", "--skip-name-resolve",
             f"--ssl-cert={folder / 'cert.pem'}", f"--ssl-key={folder / 'key.pem'}", f"--ssl-ca={folder / 'ca.pem'}",
             "--innodb-buffer-pool-size=16M", f"--log-error={folder / 'error.log'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (folder / "error.log").read_text(errors="replace")[-2000:]
                        if (folder / "error.log").exists()
                        else ""
                    )
                    raise RuntimeError(f"the TLS MariaDB did not start:\n{log}") from None
                time.sleep(0.1)
        server = TlsServer("127.0.0.1", port, sock)
        server.execute(
            f"CREATE DATABASE {DATABASE}",
            f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}' REQUIRE SSL",
            f"GRANT SELECT ON {DATABASE}.* TO '{USER}'@'%'",
            f"CREATE TABLE {DATABASE}.orders (id int PRIMARY KEY, amount decimal(12,2), at datetime)",
            f"INSERT INTO {DATABASE}.orders VALUES (1, 9.50, '2024-01-01 10:00:00'), (2, 12.25, '2024-01-02 11:00:00')",
        )
        yield server
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(folder, ignore_errors=True)
