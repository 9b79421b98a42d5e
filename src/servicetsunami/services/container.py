"""The service container: settings, the system store and the lakehouse engine, built once by an
entry point and handed to every service function."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from servicetsunami.engines.base import Engine
from servicetsunami.engines.registry import create_engine
from servicetsunami.security.auth import authenticate_api_key
from servicetsunami.security.secrets import KeyRing, load_keyring
from servicetsunami.security.tokens import TokenSigner, load_token_signer, looks_like_jwt
from servicetsunami.settings import Settings
from servicetsunami.store.db import Store
from servicetsunami.tenancy import Principal

if TYPE_CHECKING:
    from servicetsunami.services.identity.tenants import CreatedKey
    from servicetsunami.services.ingestion.syncs import SyncManager
    from servicetsunami.services.ops.mirror import MirrorService

logger = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    store: Store
    engine: Engine
    keyring: KeyRing
    tokens: TokenSigner | None = field(default=None, repr=False)
    _syncs: SyncManager | None = field(default=None, repr=False)
    mirror: MirrorService | None = field(default=None, repr=False)  # TSUNAMI_MIRROR: the outbox and its worker

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
            from servicetsunami.services.ops.mirror import attach_mirror

            engine, mirror = attach_mirror(settings, store, engine)
        return cls(settings=settings, store=store, engine=engine, keyring=keyring, mirror=mirror, tokens=tokens)

    @property
    def syncs(self) -> SyncManager:
        """The sync runs of this process (thread pool, running runners), created on first use."""
        if self._syncs is None:
            from servicetsunami.services.ingestion.syncs import SyncManager

            self._syncs = SyncManager(self)
        return self._syncs

    @property
    def local_metadata(self) -> bool:
        """Whether the store and the table metadata are on this machine (SQLite and the local
        engine, mirrored or not), so reading them never waits on a network."""
        return self.store.dialect == "sqlite" and self.engine.kind == "local"

    def authenticate(self, credential: str) -> Principal:
        """The principal of an API key or an access JWT (every door calls this); raises ``AuthError``
        for a missing, unknown, revoked or expired one."""
        if self.tokens is not None and looks_like_jwt(credential):
            return self.tokens.principal(credential)
        return authenticate_api_key(self.store, credential, catalog_prefix=self.settings.catalog_prefix)

    def bootstrap(self) -> CreatedKey | None:
        """On the first start only: the default tenant, its catalog and an admin key (returned once)."""
        from servicetsunami.services.identity.tenants import bootstrap

        created = bootstrap(self.store, default_tenant=self.settings.default_tenant)
        if created is not None:
            self.engine.ensure_catalog(self.settings.catalog_prefix + created.tenant_slug)
        return created

    def close(self) -> None:
        if self._syncs is not None:
            self._syncs.shutdown()
        if self.mirror is not None:
            self.mirror.stop()
        self.engine.close()
        self.store.dispose()
