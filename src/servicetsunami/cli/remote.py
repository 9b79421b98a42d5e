"""``tsunami --server URL ...``: the commands that have a REST twin talk to a running server instead
of opening the data folder, as the principal of ``TSUNAMI_API_KEY``.

:data:`~servicetsunami.cli.common.REMOTE_COMMANDS` names them (``query``, ``upload``, ``tables``,
``sync``, ``syncs``, ``runs``, ``clusters``, and ``tools`` over MCP); any other command refuses ``--server`` with a
message saying where it works. The server's errors come back as the same error classes (by their ``code``), so the CLI
prints and exits as it does locally; a server that cannot be reached is
:class:`~servicetsunami.errors.ServerUnreachable`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from servicetsunami.errors import AuthError, InvalidInput, RateLimited, ServerUnreachable, TsunamiError

API = "/api/v1"
TIMEOUT_SECONDS = 300.0  # a query or an upload may take this long on the server
WAIT_STEP_SECONDS = 30.0  # the server answers a waiting GET after at most 60 s; ask again until done


class RestClient:
    """The REST door of the server at ``base_url``, with one API key."""

    def __init__(self, base_url: str, api_key: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(f"--server must be the server's URL, e.g. http://127.0.0.1:8000 (got {base_url!r})")
        if not api_key.strip():
            raise AuthError("set TSUNAMI_API_KEY to an API key of the server (`tsunami keys create` on its machine)")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key.strip()
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key.strip()}"},
            timeout=TIMEOUT_SECONDS,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, /, **kwargs: Any) -> Any:
        """The JSON answer of ``method path``; the server's error as its error class otherwise."""
        try:
            response = self._http.request(method, API + path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"cannot reach the server at {self.base_url} ({type(exc).__name__}); check the URL and that "
                "`tsunami serve` runs there"
            ) from exc
        if response.is_success:
            return response.json()
        raise _error_of(response)

    def pages(self, path: str, /, **params: Any) -> Iterator[Any]:
        """Every item of a paged list, page after page."""
        cursor: str | None = None
        while True:
            page = self.call("GET", path, params={**params, **({"cursor": cursor} if cursor else {})})
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def upload(self, path: Path, fields: dict[str, str]) -> Any:
        with path.open("rb") as data:
            return self.call("POST", "/datasets", files={"file": (path.name, data)}, data=fields)

    def wait_run(self, run_id: str, timeout: float) -> Any:
        """The run once it ends, or as it is after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            run = self.call("GET", f"/runs/{run_id}", params={"wait_seconds": max(0.0, min(WAIT_STEP_SECONDS, left))})
            if run["state"] not in ("queued", "running") or left <= 0:
                return run


def _error_of(response: httpx.Response) -> TsunamiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = str(body.get("code") or "")
    message = str(body.get("detail") or body.get("title") or f"the server answered {response.status_code}")
    retry_after = response.headers.get("retry-after", "")
    return error_of_code(code, message, retry_after=int(retry_after) if retry_after.isdigit() else 1)


def error_of_code(code: str, message: str, /, *, retry_after: int = 1) -> TsunamiError:
    """The error class of ``code`` (a server's answer, REST or MCP) with the server's message."""
    if code == RateLimited.code:
        return RateLimited(message, retry_after=retry_after)
    cls = _classes_by_code().get(code, TsunamiError)
    return cls(message)


def _classes_by_code() -> dict[str, type[TsunamiError]]:
    """Each error code with its class (the most general class of a code shared by several)."""
    found: dict[str, type[TsunamiError]] = {}
    pending: list[type[TsunamiError]] = [TsunamiError]
    while pending:
        cls = pending.pop(0)
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found
