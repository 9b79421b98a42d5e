"""Helpers shared by the test suites."""

from __future__ import annotations

import contextlib

from servicetsunami.errors import Conflict
from servicetsunami.services.container import Services
from servicetsunami.services.identity import tenants
from servicetsunami.tenancy import Principal


def make_principal(svc: Services, slug: str, role: str = "admin") -> tuple[Principal, str]:
    with contextlib.suppress(Conflict):  # already there: the second key of a tenant
        tenants.create_tenant(svc.store, slug)
    key = tenants.create_api_key(svc.store, tenant_slug=slug, name=f"{slug}-{role}", role=role)
    svc.engine.ensure_catalog(svc.settings.catalog_prefix + slug)
    return svc.authenticate(key.plaintext), key.plaintext


def altered(secret: str) -> str:
    """``secret`` with its last character changed: a forged copy that is never, by chance, the secret."""
    return secret[:-1] + ("B" if secret[-1] == "A" else "A")
