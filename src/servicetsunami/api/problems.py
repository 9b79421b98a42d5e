"""The one error format of the REST door: ``application/problem+json`` (RFC 9457) with our stable
``code`` and the request id."""

from __future__ import annotations

from fastapi.responses import JSONResponse


def problem(status: int, code: str, detail: str, request_id: str, *, retry_after: int | None = None) -> JSONResponse:
    headers: dict[str, str] = {}  # X-Request-ID is added to every response by RequestIdMiddleware
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="servicetsunami"'
    return JSONResponse(
        {
            "type": f"urn:servicetsunami:error:{code}",
            "title": code.replace("_", " "),
            "status": status,
            "code": code,
            "detail": detail,
            "request_id": request_id,
        },
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )
