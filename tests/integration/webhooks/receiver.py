"""A webhook receiver on loopback for the tests: a small HTTP server in a thread that checks each
request's Standard Webhooks signature with the secret it is given, records what came and when, and
answers with the status codes it is told to (then 200)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    verified: bool

    @property
    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    secret: str = ""
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # status, headers, in order
    received: list[Received] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        """The five lines the README shows a receiver."""
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        return any(hmac.compare_digest(expected, sig) for sig in headers["webhook-signature"].split())

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        end = time.monotonic() + timeout
        with self.changed:
            while len(self.received) < count:
                left = end - time.monotonic()
                assert left > 0, f"{len(self.received)} of {count} deliveries came"
                self.changed.wait(left)
            return list(self.received)


@contextmanager
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = state["r"]
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                verified = rec.verify(headers, body)
            except (KeyError, ValueError):
                verified = False
            with rec.changed:
                status, extra = rec.answers.pop(0) if rec.answers else (200, {})
                rec.received.append(Received(headers, body, time.monotonic(), verified))
                rec.changed.notify_all()
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["r"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks/tsunami")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
