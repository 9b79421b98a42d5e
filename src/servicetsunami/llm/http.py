"""One JSON POST to a provider over httpx: the one place where its failures become :class:`LLMUnavailable`.

Messages and log lines name the provider, the HTTP status or the exception's class, and nothing
else: a reply body, a header or an exception's text may echo the API key back.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from servicetsunami.llm.base import LLMUnavailable

logger = logging.getLogger(__name__)


def post_json(
    url: str,
    body: dict[str, object],
    /,
    *,
    headers: dict[str, str],
    timeout: float,
    transport: httpx.BaseTransport | None,
    provider: str,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """The JSON object ``url`` answered with HTTP 200; anything else raises :class:`LLMUnavailable`.
    ``client``: a long-lived client to reuse (its connections stay open between calls)."""
    try:
        if client is not None:
            response = client.post(url, json=body, headers=headers, timeout=timeout)
        else:
            with httpx.Client(timeout=timeout, transport=transport) as own:
                response = own.post(url, json=body, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL (a bad base_url) is not an HTTPError
        logger.warning("LLM provider %s unreachable: %s", provider, type(exc).__name__)
        raise LLMUnavailable(f"{provider} could not be reached") from exc
    if response.status_code != 200:
        logger.warning("LLM provider %s answered HTTP %s", provider, response.status_code)
        raise LLMUnavailable(f"{provider} answered HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError as exc:
        raise LLMUnavailable(f"{provider} answered with something other than JSON") from exc
    if not isinstance(data, dict):
        raise LLMUnavailable(f"{provider} answered in an unexpected shape")
    return data
