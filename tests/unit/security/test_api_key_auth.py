"""API keys: their shape, what is stored, and how they authenticate (and stop doing so)."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, inspect, select, text, update

from servicetsunami.errors import AuthError
from servicetsunami.security import auth
from servicetsunami.security.auth import (
    authenticate_api_key,
    clear_key_cache,
    generate_api_key,
    hash_api_key,
    key_prefix,
)
from servicetsunami.services.identity import tenants
from servicetsunami.store.db import Store
from servicetsunami.store.models import ApiKey, utcnow
from servicetsunami.tenancy import Role, Scope

PREFIX = "tenant_"


def _key(store: Store, slug: str = "acme", role: str = "engineer") -> tenants.CreatedKey:
    if slug not in {t.slug for t in tenants.list_tenants(store)}:
        tenants.create_tenant(store, slug)
    return tenants.create_api_key(store, tenant_slug=slug, name=f"{slug}-{role}", role=role)


def test_a_generated_key_starts_with_tsk_and_embeds_its_prefix() -> None:
    plaintext, prefix, key_hash = generate_api_key()
    assert plaintext.startswith(f"tsk_{prefix}_")
    assert len(prefix) == 8 and prefix == prefix.lower()
    assert len(plaintext) >= len("tsk_") + 8 + 1 + 43
    assert key_hash == hashlib.sha256(plaintext.encode()).hexdigest() == hash_api_key(plaintext)
    assert key_prefix(plaintext) == prefix
    assert generate_api_key()[0] != plaintext


def test_only_the_hash_of_a_key_is_stored(store: Store, tmp_path: Path) -> None:
    created = _key(store)
    authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    secret = created.plaintext.split("_", 2)[2]
    with store.engine.connect() as conn:
        for table in inspect(store.engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                assert secret not in repr(tuple(row)), table
        stored = conn.execute(select(ApiKey.key_hash)).scalar_one()
    assert stored == hash_api_key(created.plaintext)
    store.dispose()  # flush the WAL into the file as well, then scan every file SQLite wrote
    for path in (tmp_path / "store").iterdir():
        assert secret.encode() not in path.read_bytes(), path.name


def test_authenticate_returns_the_keys_tenant_and_role(store: Store) -> None:
    created = _key(store, "acme", "analyst")
    principal = authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    assert (principal.tenant_slug, principal.catalog) == ("acme", "tenant_acme")
    assert principal.role is Role.ANALYST and principal.scopes == frozenset({Scope.READ})
    assert principal.subject == f"key:{created.prefix}"


def test_keys_of_two_tenants_resolve_to_their_own_tenant(store: Store) -> None:
    acme, globex = _key(store, "acme", "admin"), _key(store, "globex", "admin")
    assert authenticate_api_key(store, acme.plaintext, catalog_prefix=PREFIX).tenant_slug == "acme"
    assert authenticate_api_key(store, globex.plaintext, catalog_prefix=PREFIX).tenant_slug == "globex"


def test_a_wrong_secret_with_the_right_prefix_is_refused(store: Store) -> None:
    created = _key(store)
    head = f"tsk_{created.prefix}_"
    secret = created.plaintext[len(head) :]
    wrong = head + ("A" if secret[0] != "A" else "B") + secret[1:]
    with pytest.raises(AuthError):
        authenticate_api_key(store, wrong, catalog_prefix=PREFIX)


def test_an_unknown_prefix_and_a_wrong_secret_fail_the_same_way(store: Store) -> None:
    created = _key(store)
    head = f"tsk_{created.prefix}_"
    wrong_secret = head + "x" * 43
    unknown_prefix = generate_api_key()[0]
    errors = []
    for candidate in (wrong_secret, unknown_prefix):
        with pytest.raises(AuthError) as info:
            authenticate_api_key(store, candidate, catalog_prefix=PREFIX)
        errors.append((info.value.code, str(info.value)))
        assert candidate not in str(info.value)
    assert errors[0] == errors[1] == ("unauthenticated", "invalid or revoked API key")


@pytest.mark.parametrize("value", ["", "tsk_", "Bearer tsk_abc", "tsk_ABCDEFGH_" + "a" * 43, "tsk_abcd1234_short"])
def test_malformed_keys_are_refused(store: Store, value: str) -> None:
    with pytest.raises(AuthError):
        authenticate_api_key(store, value, catalog_prefix=PREFIX)


def test_a_revoked_key_is_refused_even_after_a_cached_success(store: Store) -> None:
    created = _key(store)
    authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    tenants.revoke_api_key(store, tenant_slug="acme", key_id_or_prefix=created.prefix)
    with pytest.raises(AuthError):
        authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)


def test_a_key_revoked_by_another_process_is_refused_at_the_next_request(store: Store) -> None:
    created = _key(store)
    authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)  # now answered from the cache
    other = Store(str(store.engine.url))  # another process: its own connections, no shared cache
    try:
        with other.session() as s:
            s.execute(update(ApiKey).values(revoked_at=utcnow()))
    finally:
        other.dispose()
    with pytest.raises(AuthError) as refused:
        authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    assert refused.value.code == "unauthenticated"


def test_a_revoked_key_is_refused_inside_the_callers_session_after_a_cached_success(store: Store) -> None:
    created = _key(store)
    authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    with store.session() as s:
        s.execute(update(ApiKey).values(revoked_at=utcnow()))
        with pytest.raises(AuthError):
            authenticate_api_key(s, created.plaintext, catalog_prefix=PREFIX)


def test_an_expired_key_is_refused(store: Store) -> None:
    tenants.create_tenant(store, "acme")
    created = tenants.create_api_key(
        store, tenant_slug="acme", name="old", role="admin", expires_at=utcnow() - timedelta(seconds=1)
    )
    assert not created.active
    with pytest.raises(AuthError):
        authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)


def test_a_repeated_authentication_is_served_from_the_cache(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    created = _key(store)
    first = authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)  # the key's state is remembered too

    def no_reads(*args: object, **kwargs: object) -> None:
        raise AssertionError("the store was read although nothing changed in it")

    with monkeypatch.context() as patched:
        patched.setattr(auth, "_check", no_reads)
        patched.setattr(auth, "_key_state", no_reads)
        assert authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX) is first
    with store.session() as s:  # a deleted key is refused at once, cached or not
        s.execute(delete(ApiKey))
    with pytest.raises(AuthError):
        authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)


def test_the_cache_does_not_answer_for_another_database(tmp_path: Path, store: Store) -> None:
    created = _key(store)
    authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        other.migrate()
        with pytest.raises(AuthError):
            authenticate_api_key(other, created.plaintext, catalog_prefix=PREFIX)
    finally:
        other.dispose()


def test_last_use_is_recorded_at_most_once_a_minute(store: Store) -> None:
    created = _key(store)
    authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    first = tenants.list_api_keys(store, tenant_slug="acme")[0].last_used_at
    assert first is not None
    clear_key_cache()
    authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    assert tenants.list_api_keys(store, tenant_slug="acme")[0].last_used_at == first
    with store.session() as s:  # pretend the last use was two minutes ago
        s.execute(update(ApiKey).values(last_used_at=first - timedelta(minutes=2)))
    clear_key_cache()
    authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    latest = tenants.list_api_keys(store, tenant_slug="acme")[0].last_used_at
    assert latest is not None and latest >= first


def test_authenticate_works_inside_the_callers_session(store: Store) -> None:
    created = _key(store)
    with store.session(write_lock=True) as s:
        principal = authenticate_api_key(s, created.plaintext, catalog_prefix=PREFIX)
        assert principal.tenant_slug == "acme"
        assert s.scalar(select(ApiKey.last_used_at)) is not None


def test_revoking_through_the_auth_module_evicts_the_cache(store: Store) -> None:
    created = _key(store)
    principal = authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    with store.session(write_lock=True) as s:
        auth.revoke_api_key(s, created.id, tenant_id=principal.tenant_id)
    with pytest.raises(AuthError):
        authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)


def test_nothing_logged_while_authenticating_contains_the_key(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    created = _key(store)
    caplog.set_level(logging.DEBUG)
    authenticate_api_key(store, created.plaintext, catalog_prefix=PREFIX)
    with pytest.raises(AuthError):
        authenticate_api_key(store, created.plaintext[:-1] + "?", catalog_prefix=PREFIX)
    secret = created.plaintext.split("_", 2)[2]
    assert all(secret not in r.getMessage() for r in caplog.records)
