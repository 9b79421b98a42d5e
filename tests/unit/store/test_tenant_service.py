"""The tenant service: tenants, API keys per tenant, revocation and the first-start bootstrap."""

from __future__ import annotations

import threading

import pytest

from servicetsunami.errors import Conflict, InvalidIdentifier, InvalidInput, NotFound
from servicetsunami.security.auth import authenticate_api_key
from servicetsunami.services.identity import tenants
from servicetsunami.store.db import Store
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.tenancy import Role


def test_created_tenants_are_listed_by_slug(store: Store) -> None:
    tenants.create_tenant(store, "globex")
    acme = tenants.create_tenant(store, "acme", name="Acme Corp")
    assert (acme.slug, acme.name) == ("acme", "Acme Corp")
    assert [t.slug for t in tenants.list_tenants(store)] == ["acme", "globex"]
    assert tenants.list_tenants(store)[1].name == "globex"


def test_creating_a_tenant_twice_is_a_conflict(store: Store) -> None:
    tenants.create_tenant(store, "acme")
    with pytest.raises(Conflict):
        tenants.create_tenant(store, "acme")


@pytest.mark.parametrize("slug", ["Acme", "1acme", "ac-me", "a" * 49, "", "acme;drop"])
def test_a_bad_tenant_slug_is_refused(store: Store, slug: str) -> None:
    with pytest.raises(InvalidIdentifier):
        tenants.create_tenant(store, slug)


def test_a_key_for_an_unknown_tenant_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        tenants.create_api_key(store, tenant_slug="nobody", name="ci", role="admin")


@pytest.mark.parametrize("role", ["root", "", "ADMIN"])
def test_an_unknown_role_is_invalid_input(store: Store, role: str) -> None:
    tenants.create_tenant(store, "acme")
    with pytest.raises(InvalidInput):
        tenants.create_api_key(store, tenant_slug="acme", name="ci", role=role)


def test_a_created_key_carries_its_plaintext_once_and_hides_it_from_repr(store: Store) -> None:
    tenants.create_tenant(store, "acme")
    created = tenants.create_api_key(store, tenant_slug="acme", name="ci", role="engineer")
    assert created.plaintext.startswith(f"tsk_{created.prefix}_")
    assert (created.tenant_slug, created.role, created.active) == ("acme", Role.ENGINEER, True)
    assert created.plaintext not in repr(created)
    listed = tenants.list_api_keys(store, tenant_slug="acme")
    assert [k.id for k in listed] == [created.id]
    dumped = listed[0].model_dump_json()
    assert created.plaintext not in dumped and "hash" not in dumped


def test_keys_are_listed_per_tenant_only(store: Store) -> None:
    tenants.create_tenant(store, "acme")
    tenants.create_tenant(store, "globex")
    a1 = tenants.create_api_key(store, tenant_slug="acme", name="one", role="admin")
    a2 = tenants.create_api_key(store, tenant_slug="acme", name="two", role="analyst")
    g1 = tenants.create_api_key(store, tenant_slug="globex", name="one", role="admin")
    assert {k.id for k in tenants.list_api_keys(store, tenant_slug="acme")} == {a1.id, a2.id}
    assert [k.id for k in tenants.list_api_keys(store, tenant_slug="globex")] == [g1.id]


def test_revoking_another_tenants_key_is_not_found_and_leaves_it_working(store: Store) -> None:
    tenants.create_tenant(store, "acme")
    tenants.create_tenant(store, "globex")
    theirs = tenants.create_api_key(store, tenant_slug="globex", name="ci", role="admin")
    for ref in (theirs.id, theirs.prefix):
        with pytest.raises(NotFound):
            tenants.revoke_api_key(store, tenant_slug="acme", key_id_or_prefix=ref)
    principal = authenticate_api_key(store, theirs.plaintext, catalog_prefix="tenant_")
    assert principal.tenant_slug == "globex"


@pytest.mark.parametrize("by", ["id", "prefix", "tsk_prefix"])
def test_a_key_can_be_revoked_by_id_or_prefix(store: Store, by: str) -> None:
    tenants.create_tenant(store, "acme")
    key = tenants.create_api_key(store, tenant_slug="acme", name="ci", role="admin")
    ref = {"id": key.id, "prefix": key.prefix, "tsk_prefix": f"tsk_{key.prefix}"}[by]
    revoked = tenants.revoke_api_key(store, tenant_slug="acme", key_id_or_prefix=ref)
    assert revoked.id == key.id
    assert revoked.revoked_at is not None and not revoked.active
    again = tenants.revoke_api_key(store, tenant_slug="acme", key_id_or_prefix=key.id)
    assert again.revoked_at == revoked.revoked_at


def test_changes_are_written_to_the_audit_log_without_secrets(store: Store) -> None:
    tenants.create_tenant(store, "acme")
    key = tenants.create_api_key(store, tenant_slug="acme", name="ci", role="admin", actor="key:ops")
    tenants.revoke_api_key(store, tenant_slug="acme", key_id_or_prefix=key.id, actor="key:ops")
    with store.session() as s:
        entries = audit_repo.list_audit(s)
        assert sorted(e.action for e in entries) == ["api_key.create", "api_key.revoke", "tenant.create"]
        assert all(key.plaintext not in repr((e.target, e.meta)) for e in entries)
        assert {e.subject for e in entries if e.action.startswith("api_key")} == {"key:ops"}


def test_bootstrap_returns_an_admin_key_only_the_first_time(store: Store) -> None:
    first = tenants.bootstrap(store, default_tenant="default")
    assert first is not None
    assert (first.tenant_slug, first.name, first.role) == ("default", "bootstrap-admin", Role.ADMIN)
    principal = authenticate_api_key(store, first.plaintext, catalog_prefix="tenant_")
    assert (principal.tenant_slug, principal.role, principal.catalog) == (
        "default",
        Role.ADMIN,
        "tenant_default",
    )
    assert tenants.bootstrap(store, default_tenant="default") is None
    assert [t.slug for t in tenants.list_tenants(store)] == ["default"]


def test_bootstrap_does_nothing_when_a_tenant_already_exists(store: Store) -> None:
    tenants.create_tenant(store, "acme")
    assert tenants.bootstrap(store, default_tenant="default") is None
    assert [t.slug for t in tenants.list_tenants(store)] == ["acme"]


def test_two_processes_bootstrapping_at_once_create_one_key(sqlite_url: str, store: Store) -> None:
    stores = [Store(sqlite_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    results: list[tenants.CreatedKey | None] = []
    errors: list[BaseException] = []

    def run(st: Store) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(tenants.bootstrap(st, default_tenant="default"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(st,)) for st in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for st in stores:
        st.dispose()
    assert errors == []
    assert len([r for r in results if r is not None]) == 1
    assert len(tenants.list_api_keys(store, tenant_slug="default")) == 1
