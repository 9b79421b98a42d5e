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

A refused document is answered with an OAuth error (the ``oauth_error`` detail of the
``InvalidInput`` raised) and a description for the client's developer that names the document's URL
and what is wrong, never our addresses or internals: ``invalid_client`` when there is no document to
read (not there, not answering 200, unreachable, or at an address the guard refuses), as for any
unknown client; ``invalid_client_metadata`` (RFC 7591's code) when the document was read but does not
describe a usable client (not JSON metadata, too large, another ``client_id``, a secret, a redirect
URI registration refuses).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import httpx
from fastmcp.server.auth.cimd import CIMDDocument  # the document's schema, as fastmcp reads it

from servicetsunami.errors import InvalidInput, PermissionDenied
from servicetsunami.security.ssrf import check_source_host
from servicetsunami.services.identity import oauth
from servicetsunami.store.models import utcnow

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 3600
TIMEOUT_SECONDS = 5.0
UNREADABLE = "invalid_client"  # no document: not there, not reachable, or not ours to fetch
UNUSABLE = "invalid_client_metadata"  # a document, but not one that describes a usable client


def is_document_client_id(client_id: str, /) -> bool:
    """Whether ``client_id`` names a metadata document: an https URL with a path."""
    try:
        parts = urlsplit(client_id)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname) and parts.path not in ("", "/") and not parts.fragment


def client_of(svc: Services, client_id: str, /) -> oauth.ClientRecord:
    """The client the document at ``client_id`` describes: as kept, or read (again) when due.

    ``InvalidInput`` when it cannot be read or does not describe a usable client; its message says
    what is wrong for the client's developer, and ``details["oauth_error"]`` is the OAuth error to
    answer with: :data:`UNREADABLE` or :data:`UNUSABLE` (see the module docstring)."""
    kept = oauth.get_client(svc, client_id)
    fresh_since = utcnow() - timedelta(seconds=REFRESH_SECONDS)
    if kept is not None and kept.source == "document" and kept.fetched_at is not None and kept.fetched_at > fresh_since:
        return kept
    if kept is not None and kept.source != "document":
        raise _unreadable("this client_id is taken by a client registered at /register; use another URL")
    document = _read(svc, client_id)
    if str(document.client_id).rstrip("/") != client_id.rstrip("/"):
        raise _unusable(
            f"the client ID metadata document at {client_id} names another client_id ({document.client_id}); "
            "its client_id must be its own URL"
        )
    if document.token_endpoint_auth_method != "none":
        raise _unusable(
            "a client ID metadata document must say token_endpoint_auth_method 'none' (it cannot hold a "
            f"secret), not {document.token_endpoint_auth_method!r}"
        )
    info = document.model_dump(mode="json", exclude_none=True)
    info["client_id"] = client_id
    info.setdefault("grant_types", ["authorization_code", "refresh_token"])
    try:
        return oauth.register_client(
            svc, client_id=client_id, info=info, secret=None, source="document", fetched_at=utcnow()
        )
    except InvalidInput as exc:  # its redirect URIs
        raise _unusable(f"the client ID metadata document is not accepted: {exc.message}") from None


def _read(svc: Services, url: str) -> CIMDDocument:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 443
    try:
        addresses = check_source_host(
            host, port, multi_tenant=svc.settings.multi_tenant, allowed_networks=svc.settings.source_allowed_networks
        )
    except PermissionDenied:
        raise _unreadable(
            f"this server does not fetch client ID metadata documents from {host}: it is not an address it "
            "may connect to; publish the document at a public https address"
        ) from None
    except InvalidInput:
        raise _unreadable(f"the host of the client ID metadata document, {host}, does not resolve") from None
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
                raise _unreadable(
                    f"the client ID metadata document at {url} answered HTTP {response.status_code}; it must "
                    "answer 200 with the document (redirects are not followed)"
                )
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > limit:
                    raise _unusable(f"the client ID metadata document at {url} is larger than {limit} bytes")
    except httpx.HTTPError as exc:
        logger.warning("could not read a client ID metadata document: %s", type(exc).__name__)
        raise _unreadable(
            f"the client ID metadata document at {url} could not be read (no https answer with a trusted "
            f"certificate within {TIMEOUT_SECONDS:g} seconds); check that it is published there"
        ) from None
    try:
        return CIMDDocument.model_validate(json.loads(body))
    except ValueError:  # pydantic's ValidationError is one too
        raise _unusable(
            f"the client ID metadata document at {url} is not client metadata JSON (RFC 7591 fields: client_id, "
            "client_name, redirect_uris as a list of URLs, ...)"
        ) from None


def _unreadable(message: str) -> InvalidInput:
    return InvalidInput(message, oauth_error=UNREADABLE)


def _unusable(message: str) -> InvalidInput:
    return InvalidInput(message, oauth_error=UNUSABLE)
