"""The real ASGI app served by uvicorn on a loopback port, in a thread, for tests that need a running
server (the CLI's ``--server`` mode)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from servicetsunami.api.app import create_app
from servicetsunami.services.container import Services

WAIT_SECONDS = 15.0


@contextlib.contextmanager
def live_server(services: Services) -> Iterator[str]:
    """Serve ``services`` until the block ends; yields the server's base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(services.settings, services=services), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_SECONDS
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(WAIT_SECONDS)
        sock.close()
