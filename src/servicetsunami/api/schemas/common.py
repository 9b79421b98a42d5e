"""Shapes shared by every resource: the problem document of errors."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """An error, as ``application/problem+json`` (RFC 9457) with our stable ``code``."""

    type: str = Field(description="urn:servicetsunami:error:<code>")
    title: str
    status: int
    code: str = Field(description="Stable error code, e.g. not_found, permission_denied, rate_limited")
    detail: str
    request_id: str


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "The request is wrong (invalid_input, query_refused, sql_syntax_error, ...)",
        401: "No credentials, or not valid ones",
        403: "Your role may not do this",
        404: "Not found in your tenant",
        409: "Conflicts with what exists",
        413: "Body or result too large",
        422: "A field is missing or malformed, or the file cannot be read",
        429: "Too many requests; see Retry-After",
        501: "Not available here: this engine, or this kind of index (not_supported)",
        502: "The lakehouse engine or a data source failed",
        503: "The system store is unavailable",
    }
    return {
        status: {"model": Problem, "description": described[status], "content": {"application/problem+json": {}}}
        for status in statuses
    }


COMMON_ERRORS = problem_responses(400, 401, 403, 404, 409, 413, 422, 429, 502, 503)
PUBLIC_ERRORS = problem_responses(400, 413, 422, 429, 502, 503)
