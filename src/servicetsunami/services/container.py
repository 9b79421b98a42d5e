"""The service container: settings and the ports (system store, lakehouse engine, key ring, token
signer, run launcher, the mirror's outbox), built once by an entry point and handed to every service
function. It holds ports only and never imports a service: the services import it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from servicetsunami.engines.base import Engine
from servicetsunami.engines.outbox import Outbox, attach_mirror
from servicetsunami.engines.registry import create_engine
from servicetsunami.errors import AuthError
from servicetsunami.runs.base import Launcher
from servicetsunami.runs.local.launcher import LocalLauncher
from servicetsunami.security.auth import authenticate_api_key
from servicetsunami.security.secrets import KeyRing, load_keyring
from servicetsunami.security.tokens import (
    TokenSigner,
    load_token_signer,
    looks_like_jwt,
    record_grant_use,
    require_current_user,
    require_live_grant,
)
from servicetsunami.settings import Settings
from servicetsunami.store.db import Store
from servicetsunami.tenancy import Principal

logger = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    store: Store
    engine: Engine
    keyring: KeyRing
    launcher: Launcher
    tokens: TokenSigner | None = field(default=None, repr=False)
    mirror: Outbox | None = field(default=None, repr=False)  # TSUNAMI_MIRROR: the outbox of the hybrid mode

    @classmethod
    def open(cls, settings: Settings) -> Services:
        """Create the data folder, migrate the system store and start the engine."""
        settings.resolved_home.mkdir(parents=True, exist_ok=True)
        keyring = load_keyring(settings)  # a bad or unreadable master key stops the start, loudly
        tokens = load_token_signer(settings)  # so does a missing or weak token key in multi-tenant mode
        store = Store(settings.resolved_database_url)
        store.migrate()
        engine = create_engine(settings)
        mirror = None
        if settings.mirror:
            engine, mirror = attach_mirror(settings, store, engine)
        return cls(
            settings=settings,
            store=store,
            engine=engine,
            keyring=keyring,
            launcher=LocalLauncher(store, settings.runs),
            mirror=mirror,
            tokens=tokens,
        )

    @property
    def local_metadata(self) -> bool:
        """Whether the store and the table metadata are on this machine (SQLite and the local
        engine, mirrored or not), so reading them never waits on a network."""
        return self.store.dialect == "sqlite" and self.engine.kind == "local"

    def authenticate(self, credential: str, /, *, resource: str | None = None) -> Principal:
        """The principal of an API key or an access JWT (every door calls this); raises ``AuthError``
        for a missing, unknown, revoked or expired one, and for the token of a user since disabled.

        With ``resource`` (the MCP door gives its own URL, ``<base>/mcp``), an OAuth access token
        issued for exactly that resource is accepted too, while its grant is in force."""
        if self.tokens is not None and looks_like_jwt(credential):
            if resource is not None:
                try:
                    principal, grant_id = self.tokens.granted_principal(credential, resource=resource)
                except AuthError:
                    pass
                else:
                    last_used = require_live_grant(self.store, grant_id)
                    require_current_user(self.store, principal)
                    record_grant_use(self.store, grant_id, last_used=last_used)
                    return principal
            principal = self.tokens.principal(credential)
            require_current_user(self.store, principal)
            return principal
        return authenticate_api_key(self.store, credential, catalog_prefix=self.settings.catalog_prefix)

    def close(self) -> None:
        self.engine.interrupt()  # runs and requests still inside a statement end now, not at its timeout
        self.launcher.stop()
        if self.mirror is not None:
            self.mirror.close()
        self.engine.close()
        self.store.dispose()
