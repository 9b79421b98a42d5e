"""Client ID metadata documents: an OAuth client whose ``client_id`` is an https URL describes itself in
the JSON document at that URL (draft-ietf-oauth-client-id-metadata-document), so it needs no
registration.

The document is fetched from inside our network, so the host goes through the SSRF guard
(:func:`servicetsunami.security.ssrf.check_source_host`, the rules and ``source_allowed_networks`` of
sources) and the connection goes to the address the guard vetted (TLS still checks the name); no
redirect is followed; the answer is cut at ``auth.oauth_client_document_bytes`` and 5 seconds. The
document must name itself (``client_id`` equal to the URL), list redirect URIs the registration
rules accept, and use no client secret (``token_endpoint_auth_method`` ``none``). What was read is
kept as a client of source ``document`` and read again after :data:`REFRESH_SECONDS`.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import httpx
from fastmcp.server.auth.cimd import CIMDDocument  # the document's schema, as fastmcp reads it
from pydantic import ValidationError

from servicetsunami.errors import InvalidInput
from servicetsunami.security.ssrf import check_source_host
from servicetsunami.services.identity import oauth
from servicetsunami.store.models import utcnow

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 3600
TIMEOUT_SECONDS = 5.0


def is_document_client_id(client_id: str, /) -> bool:
    """Whether ``client_id`` names a metadata document: an https URL with a path."""
    try:
        parts = urlsplit(client_id)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname) and parts.path not in ("", "/") and not parts.fragment


def client_of(svc: Services, client_id: str, /) -> oauth.ClientRecord:
    """The client the document at ``client_id`` describes: as kept, or read (again) when due.

    ``InvalidInput`` / ``PermissionDenied`` (the SSRF guard) when it cannot be read or is not usable."""
    kept = oauth.get_client(svc, client_id)
    fresh_since = utcnow() - timedelta(seconds=REFRESH_SECONDS)
    if kept is not None and kept.source == "document" and kept.fetched_at is not None and kept.fetched_at > fresh_since:
        return kept
    if kept is not None and kept.source != "document":
        raise InvalidInput("this client_id is taken by a registered client")
    document = _read(svc, client_id)
    if str(document.client_id).rstrip("/") != client_id.rstrip("/"):
        raise InvalidInput("the client ID metadata document names another client_id than its own URL")
    if document.token_endpoint_auth_method != "none":
        raise InvalidInput("a client ID metadata document must use token_endpoint_auth_method 'none'")
    info = document.model_dump(mode="json", exclude_none=True)
    info["client_id"] = client_id
    info.setdefault("grant_types", ["authorization_code", "refresh_token"])
    return oauth.register_client(
        svc, client_id=client_id, info=info, secret=None, source="document", fetched_at=utcnow()
    )


def _read(svc: Services, url: str) -> CIMDDocument:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 443
    addresses = check_source_host(
        host, port, multi_tenant=svc.settings.multi_tenant, allowed_networks=svc.settings.source_allowed_networks
    )
    address = addresses[0] if addresses else host
    pinned_host = f"[{address}]" if ":" in address else address
    pinned = urlunsplit(("https", f"{pinned_host}:{port}", parts.path, parts.query, ""))
    limit = svc.settings.auth.oauth_client_document_bytes
    body = bytearray()
    try:
        with (
            httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client,
            client.stream(
                "GET",
                pinned,
                headers={"Host": parts.netloc.rpartition("@")[2], "Accept": "application/json"},
                extensions={"sni_hostname": host},
            ) as response,
        ):
            if response.status_code != 200:
                raise InvalidInput(f"the client ID metadata document answered HTTP {response.status_code}")
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > limit:
                    raise InvalidInput(f"the client ID metadata document is larger than {limit} bytes")
    except httpx.HTTPError as exc:
        logger.warning("could not read a client ID metadata document: %s", type(exc).__name__)
        raise InvalidInput("the client ID metadata document could not be read") from None
    try:
        return CIMDDocument.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        raise InvalidInput("the client ID metadata document is not valid client metadata JSON") from None
