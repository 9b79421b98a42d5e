"""The OAuth 2.1 authorization server of ``/mcp``: MCP clients (Claude, IDEs, scripts) sign their
user in with a browser instead of a pasted key.

Served at the root of ``tsunami serve`` (when ``auth.oauth_enabled``)::

    GET  /.well-known/oauth-authorization-server   RFC 8414 metadata (issuer: this server's base URL)
    GET  /authorize     code flow with PKCE S256; sends the browser to the console's consent page
    POST /token         authorization_code and refresh_token grants
    POST /register      RFC 7591 dynamic registration (open; rate-limited per client address)
    POST /revoke        RFC 7009

The protocol is the MCP SDK's (``mcp.server.auth``): its handlers parse and check the requests (PKCE,
redirect URI matching, response shapes and error codes) and call :class:`ServiceTsunamiProvider`, which
adapts them to :mod:`servicetsunami.services.identity.oauth` (grants in the store, codes and refresh
tokens hashed). Four pieces of the SDK's ``create_auth_routes`` do not fit and are replaced here:

- its metadata is built once, for one fixed issuer URL; ours follows the address the client used
  (``public_url`` or ``Host``, :func:`servicetsunami.mcp.auth.base_url`), as ``/mcp``'s resource
  metadata does, so the metadata is built per request with the SDK's own ``build_metadata``;
- its ``ClientAuthenticator`` compares client secrets in the clear; we keep only their hashes
  (:class:`HashedSecretAuthenticator`);
- registration is open, so it is rate-limited per client address (``auth.oauth_register_rate_limit``);
- its revocation handler requires a ``client_secret`` field, which public clients do not have.

A client ID that is an https URL names a client ID metadata document (fetched through the SSRF
guard, size and time bounded: :mod:`servicetsunami.services.identity.oauth_documents`); such clients
need no registration. A refused document is answered with ``invalid_client`` or
``invalid_client_metadata`` and what is wrong with it (:func:`document_refusal`; at ``/token`` and
``/revoke``, ``invalid_client``), not the SDK's "not found".

``/authorize`` checks the request (client, redirect URI (a loopback one on any port: :class:`Client`),
PKCE, RFC 8707 ``resource``, which must be this server's ``<base>/mcp`` when given), seals it (HMAC,
10 minutes) and sends the browser to ``/oauth/consent`` (:mod:`servicetsunami.api.console.consent`),
where the signed-in user allows or denies; the code then goes back to the client's redirect URI with
``state`` and ``iss`` (RFC 9207).
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import logging
import time
from typing import Any
from urllib.parse import unquote

import anyio.to_thread
import jwt
from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    RegistrationError,
    TokenError,
)
from mcp.server.auth.routes import build_metadata
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.server.transport_security import RequestBodyLimitMiddleware
from mcp.shared.auth import InvalidRedirectUriError, InvalidScopeError, OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl, AnyUrl
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from servicetsunami.errors import AuthError, InvalidInput, RateLimited, TsunamiError
from servicetsunami.mcp.auth import MCP_PATH, base_url
from servicetsunami.security.ratelimits import RateLimiter
from servicetsunami.services.container import Services
from servicetsunami.services.identity import oauth, oauth_documents

logger = logging.getLogger(__name__)

METADATA_PATH = "/.well-known/oauth-authorization-server"
CONSENT_PATH = "/oauth/consent"
REQUEST_SECONDS = 600
MAX_BODY_BYTES = 64 * 1024
_REQUEST_PURPOSE = "oauth-authorization-request"
# Registration is open; a client may register the scopes it will ask for (the metadata's scopes_supported).
REGISTRATION = ClientRegistrationOptions(enabled=True, valid_scopes=list(oauth.SCOPES_SUPPORTED))

# The base URL of the request being served, for the provider (the SDK's handlers do not pass it on).
_base: contextvars.ContextVar[str] = contextvars.ContextVar("oauth_base")


class GrantRefreshToken(RefreshToken):
    grant_id: str


class GrantAuthorizationCode(AuthorizationCode):
    grant_id: str


class ServiceTsunamiProvider(OAuthAuthorizationServerProvider[GrantAuthorizationCode, GrantRefreshToken, AccessToken]):
    """The SDK's provider protocol over :mod:`servicetsunami.services.identity.oauth`."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def record(self, client_id: str) -> oauth.ClientRecord | None:
        """The client as stored, a metadata document's client read (again) when due; a document
        that is refused raises ``InvalidInput`` (:func:`document_refusal` answers it)."""
        if oauth_documents.is_document_client_id(client_id):
            try:
                return await anyio.to_thread.run_sync(lambda: oauth_documents.client_of(self.services, client_id))
            except TsunamiError as exc:
                logger.warning("client ID metadata document refused: %s", exc.details.get("oauth_error", exc.code))
                raise
        return await anyio.to_thread.run_sync(lambda: oauth.get_client(self.services, client_id))

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        try:
            found = await self.record(client_id)
        except TsunamiError:
            return None
        return None if found is None else client_information(found)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        info = client_info.model_dump(mode="json", exclude_none=True)
        secret = info.pop("client_secret", None)
        try:
            await anyio.to_thread.run_sync(
                lambda: oauth.register_client(self.services, client_id=client_info.client_id, info=info, secret=secret)
            )
        except InvalidInput as exc:
            raise RegistrationError("invalid_redirect_uri", exc.message) from None

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        resource = _base.get() + MCP_PATH
        if params.resource is not None and params.resource.rstrip("/") != resource:
            raise AuthorizeError("invalid_target", f"this server issues tokens for {resource} only")
        request = {
            "client_id": client.client_id,
            "redirect_uri": str(params.redirect_uri),
            "redirect_uri_explicit": params.redirect_uri_provided_explicitly,
            "code_challenge": params.code_challenge,
            "state": params.state,
            "scopes": params.scopes or [],
            "resource": resource,
            "issuer": _base.get(),
        }
        return f"{CONSENT_PATH}?request={seal_request(self.services, request)}"

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> GrantAuthorizationCode | None:
        found = await anyio.to_thread.run_sync(lambda: oauth.load_code(self.services, authorization_code))
        if found is None:
            return None
        return GrantAuthorizationCode(
            code=authorization_code,
            scopes=found.scopes,
            expires_at=found.expires_at,
            client_id=found.client_id,
            code_challenge=found.code_challenge,
            redirect_uri=AnyUrl(found.redirect_uri),
            redirect_uri_provided_explicitly=found.redirect_uri_explicit,
            resource=found.resource,
            subject=found.subject,
            grant_id=found.grant_id,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: GrantAuthorizationCode
    ) -> OAuthToken:
        try:
            issued = await anyio.to_thread.run_sync(
                lambda: oauth.exchange_code(self.services, authorization_code.code, client_id=client.client_id)
            )
        except AuthError as exc:
            raise TokenError("invalid_grant", exc.message) from None
        return _token(issued)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> GrantRefreshToken | None:
        found = await anyio.to_thread.run_sync(lambda: oauth.load_refresh_token(self.services, refresh_token))
        if found is None:
            return None
        return GrantRefreshToken(
            token=refresh_token,
            client_id=found.client_id,
            scopes=found.scopes,
            expires_at=found.expires_at or None,
            resource=found.resource,
            subject=found.subject or None,
            grant_id=found.grant_id,
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: GrantRefreshToken, scopes: list[str]
    ) -> OAuthToken:
        try:
            issued = await anyio.to_thread.run_sync(
                lambda: oauth.exchange_refresh_token(
                    self.services, refresh_token.token, client_id=client.client_id, scopes=scopes
                )
            )
        except AuthError as exc:
            raise TokenError("invalid_grant", exc.message) from None
        return _token(issued)

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = oauth.grant_of_access_token(self.services, token)
        if found is None:
            return None
        grant_id, client_id = found
        return AccessToken(token=token, client_id=client_id, scopes=[], claims={"gid": grant_id})

    async def revoke_token(self, token: AccessToken | GrantRefreshToken) -> None:
        grant_id = token.grant_id if isinstance(token, GrantRefreshToken) else str((token.claims or {})["gid"])
        await anyio.to_thread.run_sync(
            lambda: oauth.revoke_by_client(self.services, grant_id, client_id=token.client_id)
        )


class Client(OAuthClientInformationFull):
    """The SDK's view of a stored client, with our rules for redirect URIs (a native app's loopback
    URI matches on any port: :func:`servicetsunami.services.identity.oauth.redirect_uri_registered`;
    the SDK's own compares whole URIs only) and scopes (ours, and a request naming none asks for
    the registered ones: :func:`servicetsunami.services.identity.oauth.check_scopes`; the SDK's own
    refuses every scope of a client that registered none)."""

    def validate_scope(self, requested_scope: str | None) -> list[str] | None:
        try:
            return oauth.check_scopes(requested_scope, registered=self.scope)
        except InvalidInput as exc:
            raise InvalidScopeError(exc.message) from None

    def validate_redirect_uri(self, redirect_uri: AnyUrl | None) -> AnyUrl:
        if redirect_uri is None:
            return super().validate_redirect_uri(None)
        if not oauth.redirect_uri_registered(str(redirect_uri), [str(uri) for uri in self.redirect_uris or []]):
            raise InvalidRedirectUriError(f"redirect URI '{redirect_uri}' is not registered for this client")
        return redirect_uri


def client_information(record: oauth.ClientRecord, /) -> Client:
    """The SDK's view of a stored client. The secret stays out: :class:`HashedSecretAuthenticator`
    checks it against its hash."""
    return Client.model_validate({**record.info, "client_id": record.client_id})


class HashedSecretAuthenticator(ClientAuthenticator):
    """The SDK's client authentication for ``/token`` and ``/revoke`` (``client_secret_basic``,
    ``client_secret_post`` or ``none``), against the secret's stored hash instead of the secret."""

    provider: ServiceTsunamiProvider

    def __init__(self, provider: ServiceTsunamiProvider) -> None:
        super().__init__(provider)
        self.provider = provider

    async def authenticate_request(self, request: Request) -> OAuthClientInformationFull:
        form = await request.form()
        client_id = form.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            raise AuthenticationError("Missing client_id")
        try:
            record = await self.provider.record(client_id)
        except TsunamiError as exc:  # a refused metadata document: what is wrong with it
            raise AuthenticationError(exc.message) from None
        if record is None:
            raise AuthenticationError("Invalid client_id")
        client = client_information(record)
        if record.secret_hash is None:  # a public client (token_endpoint_auth_method "none"): PKCE only
            return client
        presented: str | None = None
        header = request.headers.get("authorization", "")
        if client.token_endpoint_auth_method == "client_secret_basic" or header.startswith("Basic "):
            presented = _basic_secret(header, client_id)
        else:
            value = form.get("client_secret")
            presented = value if isinstance(value, str) else None
        if not record.secret_matches(presented):
            raise AuthenticationError("Invalid client_secret")
        expires = client.client_secret_expires_at
        if expires and expires < int(time.time()):
            raise AuthenticationError("Client secret has expired")
        return client


def _basic_secret(header: str, client_id: str) -> str:
    if not header.startswith("Basic "):
        raise AuthenticationError("Missing or invalid Basic authentication in Authorization header")
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationError("Invalid Basic authentication header") from None
    user, sep, secret = decoded.partition(":")
    if not sep or unquote(user) != client_id:
        raise AuthenticationError("Client ID mismatch in Basic auth")
    return unquote(secret)


def _token(issued: oauth.IssuedTokens) -> OAuthToken:
    return OAuthToken(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        scope=" ".join(issued.scopes) or None,
    )


# --- the pending authorization request, between /authorize and the consent page -----------------


def seal_request(services: Services, request: dict[str, Any], /) -> str:
    """``request`` signed (HMAC with a key derived from the token key) and valid 10 minutes, for the
    consent page's URL: nothing is stored until the user decides, and any worker can open it."""
    if services.tokens is None:
        raise AuthorizeError("server_error", "sign-in is not available: this server has no token signing key")
    claims = {**request, "exp": int(time.time()) + REQUEST_SECONDS}
    return jwt.encode(claims, services.tokens.derived_key(_REQUEST_PURPOSE), algorithm="HS256")


def open_request(services: Services, sealed: str, /) -> dict[str, Any]:
    """The request :func:`seal_request` sealed; ``InvalidInput`` when it was changed or is too old."""
    if services.tokens is None:
        raise InvalidInput("sign-in is not available: this server has no token signing key")
    try:
        claims: dict[str, Any] = jwt.decode(
            sealed, services.tokens.derived_key(_REQUEST_PURPOSE), algorithms=["HS256"], options={"require": ["exp"]}
        )
    except jwt.PyJWTError:
        raise InvalidInput(
            "this sign-in request is not valid or has expired: go back to the app and connect again"
        ) from None
    return claims


# --- routes -------------------------------------------------------------------------------------


def oauth_routes(services: Services, limiter: RateLimiter) -> list[Route]:
    """The authorization server's routes, for the parent app."""
    provider = ServiceTsunamiProvider(services)
    authenticator = HashedSecretAuthenticator(provider)
    registration = RegistrationHandler(provider, options=REGISTRATION)
    token = TokenHandler(provider, authenticator)
    authorize = AuthorizationHandler(provider)

    async def metadata(request: Request) -> Response:
        return JSONResponse(authorization_server_metadata(services, request.scope))

    async def authorize_request(request: Request) -> Response:
        # A refused metadata document is answered here, saying what is wrong with it: the SDK's
        # handler would only say that the client was not found.
        client_id = request.query_params.get("client_id", "")
        if oauth_documents.is_document_client_id(client_id):
            try:
                await provider.record(client_id)
            except TsunamiError as exc:
                return document_refusal(exc)
        return await authorize.handle(request)

    async def revoke(request: Request) -> Response:
        # RFC 7009. Not the SDK's RevocationHandler: its request model requires a client_secret
        # field, so a public client (PKCE, no secret), which every native MCP client is, could not
        # revoke anything.
        try:
            client = await authenticator.authenticate_request(request)
        except AuthenticationError as exc:
            return JSONResponse({"error": "invalid_client", "error_description": exc.message}, status_code=401)
        token = (await request.form()).get("token")
        if not isinstance(token, str) or not token:
            return JSONResponse({"error": "invalid_request", "error_description": "token is required"}, status_code=400)
        found: AccessToken | GrantRefreshToken | None = await provider.load_access_token(token)
        if found is None:
            found = await provider.load_refresh_token(client, token)
        if found is not None and found.client_id == client.client_id:  # another client's: answered alike
            await provider.revoke_token(found)
        return Response(status_code=200, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def register(request: Request) -> Response:
        client = request.client.host if request.client else "-"
        try:
            await anyio.to_thread.run_sync(
                lambda: limiter.hit("oauth_register", client, what="client registrations from this address")
            )
        except RateLimited as exc:
            return JSONResponse(
                {"error": exc.code, "error_description": exc.message},
                status_code=429,
                headers={"Retry-After": str(exc.retry_after)},
            )
        return await registration.handle(request)

    post = ["POST", "OPTIONS"]
    return [
        Route(METADATA_PATH, _cors(request_response(metadata), ["GET", "OPTIONS"]), methods=["GET", "OPTIONS"]),
        # Browsers are sent here; no CORS.
        Route("/authorize", _WithBase(services, _limited(request_response(authorize_request))), methods=["GET"]),
        Route("/token", _cors(_limited(request_response(token.handle)), post), methods=post),
        Route("/register", _cors(_limited(request_response(register)), post), methods=post),
        Route("/revoke", _cors(_limited(request_response(revoke)), post), methods=post),
    ]


def document_refusal(exc: TsunamiError, /) -> JSONResponse:
    """The answer to an authorization request whose client ID metadata document was refused: its
    OAuth error and what is wrong (:mod:`servicetsunami.services.identity.oauth_documents`), shown
    to the person at the browser (never a redirect: the client and its redirect URIs are unknown)."""
    error = str(exc.details.get("oauth_error", oauth_documents.UNREADABLE))
    return JSONResponse(
        {"error": error, "error_description": exc.message}, status_code=400, headers={"Cache-Control": "no-store"}
    )


def authorization_server_metadata(services: Services, scope: Scope, /) -> dict[str, Any]:
    """RFC 8414 metadata for the address the client used."""
    issuer = base_url(services.settings, scope)
    metadata = build_metadata(
        AnyHttpUrl(issuer), AnyHttpUrl(issuer + "/docs"), REGISTRATION, RevocationOptions(enabled=True)
    )
    metadata.client_id_metadata_document_supported = True
    metadata.authorization_response_iss_parameter_supported = True
    document = metadata.model_dump(mode="json", exclude_none=True)
    # The SDK adds the methods of confidential clients only; a native app registers as public.
    document["token_endpoint_auth_methods_supported"] = ["client_secret_post", "client_secret_basic", "none"]
    document["issuer"] = issuer  # exactly as /mcp's resource metadata names it (no trailing slash)
    return document


class _WithBase:
    """Runs ``app`` with the request's base URL in :data:`_base` (an ASGI app, not a function:
    Starlette would take a function for a request handler)."""

    def __init__(self, services: Services, app: ASGIApp) -> None:
        self.settings = services.settings
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _base.set(base_url(self.settings, scope))
        try:
            await self.app(scope, receive, send)
        finally:
            _base.reset(token)


def _limited(app: ASGIApp) -> ASGIApp:
    return RequestBodyLimitMiddleware(app, MAX_BODY_BYTES)


def _cors(app: ASGIApp, methods: list[str]) -> ASGIApp:
    # Browser-based MCP clients call these from their own origin; nothing here reads cookies.
    return CORSMiddleware(app=app, allow_origins="*", allow_methods=methods, allow_headers=["mcp-protocol-version"])
