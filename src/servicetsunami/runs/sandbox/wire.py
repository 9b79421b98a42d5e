"""The wire between a sandbox and the service: frames over a unix socket in the sandbox's folder.

A frame is a JSON header and an optional binary payload, each preceded by its length::

    u32 header length | header (UTF-8 JSON object) | u64 payload length | payload

The sandbox sends ``{"op": ..., ...}`` and gets ``{"ok": true, ...}`` or ``{"ok": false, "code":
..., "message": ...}`` back. Only this module is shared by both sides: the kernel imports it
without the rest of the service.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MAX_HEADER_BYTES = 4 * 1024 * 1024
Handler = Callable[[dict[str, Any], bytes], tuple[dict[str, Any], bytes]]


class WireError(Exception):
    """The other side sent something that is not a frame, or went away."""


def send(sock: socket.socket, header: dict[str, Any], payload: bytes = b"") -> None:
    head = json.dumps(header, default=str).encode("utf-8")
    sock.sendall(struct.pack("!I", len(head)) + head + struct.pack("!Q", len(payload)))
    if payload:
        sock.sendall(payload)


def receive(sock: socket.socket, *, max_payload: int) -> tuple[dict[str, Any], bytes]:
    (size,) = struct.unpack("!I", _exactly(sock, 4))
    if size > MAX_HEADER_BYTES:
        raise WireError("header too large")
    try:
        header = json.loads(_exactly(sock, size))
    except ValueError:
        raise WireError("header is not JSON") from None
    if not isinstance(header, dict):
        raise WireError("header is not an object")
    (length,) = struct.unpack("!Q", _exactly(sock, 8))
    if length > max_payload:
        raise WireError(f"payload larger than {max_payload} bytes")
    return header, _exactly(sock, length) if length else b""


def _exactly(sock: socket.socket, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise WireError("connection closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class BridgeServer:
    """Serves ``handler`` on a unix socket at ``path`` (one thread per connection) until closed.
    Only ``uid`` (the sandbox's) may connect, besides the service's own user."""

    def __init__(self, path: Path, handler: Handler, *, uid: int | None, max_payload: int) -> None:
        self.path = path
        self._handler = handler
        self._max_payload = max_payload
        self._closed = threading.Event()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        try:
            self._sock.bind(str(path))
            os.chmod(path, 0o600)
            if uid is not None:
                os.chown(path, uid, uid)
            self._sock.listen(8)
        except OSError:
            self._sock.close()
            raise
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name=f"bridge-{path.parent.name}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while not self._closed.is_set():
                try:
                    header, payload = receive(conn, max_payload=self._max_payload)
                except (WireError, OSError, struct.error):
                    return
                try:
                    answer, data = self._handler(header, payload)
                except Exception:
                    logger.exception("a sandbox request failed")
                    answer, data = {"ok": False, "code": "internal_error", "message": "internal error"}, b""
                try:
                    send(conn, answer, data)
                except OSError:
                    return

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class BridgeClient:
    """The sandbox's side: one connection, one request at a time."""

    def __init__(self, path: str, *, max_payload: int = 1 << 31) -> None:
        self._path = path
        self._max_payload = max_payload
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def call(self, op: str, payload: bytes = b"", /, **args: Any) -> tuple[dict[str, Any], bytes]:
        with self._lock:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(self._path)
                self._sock = sock
            try:
                send(self._sock, {"op": op, **args}, payload)
                return receive(self._sock, max_payload=self._max_payload)
            except (OSError, WireError):
                self._sock.close()
                self._sock = None
                raise
