"""A fake embeddings API on loopback, served by uvicorn in a thread: OpenAI-compatible
(``POST /v1/embeddings``) and a Databricks serving endpoint's invocations
(``POST /serving-endpoints/{name}/invocations`` with ``{"input": [...]}``, as the SDK's
``serving_endpoints.query`` sends it). Deterministic vectors (character trigrams hashed into ``dim``
numbers), a key it checks, an HTTP ``status`` to answer instead, and every request's inputs recorded."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def trigram_vector(text: str, dim: int) -> list[float]:
    out = [0.0] * dim
    padded = f"  {text.lower()}  "
    for i in range(len(padded) - 2):
        h = int.from_bytes(hashlib.blake2b(padded[i : i + 3].encode(), digest_size=4).digest(), "little")
        out[h % dim] += 1.0 if h & 1 << 31 else -1.0
    return out


@dataclass
class FakeEmbeddings:
    key: str = "sk-fake"
    dim: int = 32
    status: int = 200
    url: str = ""
    host: str = ""
    inputs: list[list[str]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def embeddings(request: Request) -> JSONResponse:
            if request.headers.get("authorization") != f"Bearer {self.key}":
                return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
            if self.status != 200:
                return JSONResponse({"error": {"message": "failing on purpose"}}, status_code=self.status)
            body = await request.json()
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            self.inputs.append(list(texts))
            data = [
                {"object": "embedding", "index": i, "embedding": trigram_vector(t, self.dim)}
                for i, t in enumerate(texts)
            ]
            data.reverse()  # providers may answer out of order; the index says where each belongs
            return JSONResponse({"object": "list", "data": data, "model": body.get("model")})

        return Starlette(
            routes=[
                Route("/v1/embeddings", embeddings, methods=["POST"]),
                Route("/serving-endpoints/{name}/invocations", embeddings, methods=["POST"]),
            ]
        )


@contextlib.contextmanager
def running_fake_embeddings() -> Iterator[FakeEmbeddings]:
    fake = FakeEmbeddings()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    fake.host = f"http://127.0.0.1:{sock.getsockname()[1]}"
    fake.url = f"{fake.host}/v1"
    server = uvicorn.Server(uvicorn.Config(fake.app(), log_level="critical", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="fake-embeddings")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:  # a bounded wait for the server's own start-up flag
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake embeddings server did not start")
        time.sleep(0.01)
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
