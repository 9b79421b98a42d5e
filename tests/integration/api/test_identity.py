"""Logins, access and refresh tokens, API keys as bearer, roles, tenants and signing keys."""

from __future__ import annotations

import os
import time
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.errors import SigningKeyError
from servicetsunami.security.tokens import load_token_signer
from servicetsunami.services.container import Services
from servicetsunami.settings import Settings
from tests.helpers import make_principal
from tests.integration.api.support import login, make_user


def test_a_login_returns_tokens_that_open_the_api(client: TestClient, services: Services) -> None:
    session = login(client, services, "acme", role="engineer")
    me = client.get("/api/v1/auth/me", headers=session.headers)
    assert me.status_code == 200
    body = me.json()
    assert body["tenant_slug"] == "acme" and body["role"] == "engineer"
    assert body["user"]["email"] == session.email
    assert "password" not in me.text and "hash" not in me.text


def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(client: TestClient, services: Services) -> None:
    email, _ = make_user(services, "acme")
    wrong = client.post("/api/v1/auth/login", json={"email": email, "password": "not-the-password"})
    unknown = client.post("/api/v1/auth/login", json={"email": "nobody@acme.example", "password": "whatever1"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.headers["content-type"].startswith("application/problem+json")


def test_a_refresh_token_works_once_and_its_replay_ends_the_session(client: TestClient, services: Services) -> None:
    session = login(client, services, "acme")
    first = client.post("/api/v1/auth/refresh", json={"refresh_token": session.refresh_token})
    assert first.status_code == 200
    rotated = first.json()["refresh_token"]
    assert rotated != session.refresh_token
    replay = client.post("/api/v1/auth/refresh", json={"refresh_token": session.refresh_token})
    assert replay.status_code == 401
    # The replay revoked the whole family: the token handed out by the rotation is dead too.
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": rotated}).status_code == 401


def test_an_api_key_is_accepted_as_a_bearer_too(client: TestClient, services: Services) -> None:
    _, key = make_principal(services, "acme", "analyst")
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200 and me.json()["role"] == "analyst" and me.json()["user"] is None


@pytest.mark.parametrize(
    "change",
    [{"aud": "another-api"}, {"iss": "someone-else"}, {"exp": 1_000_000}, {"typ": "refresh"}],
)
def test_an_access_token_that_is_not_ours_for_us_now_gets_401(
    client: TestClient, services: Services, change: dict[str, object]
) -> None:
    session = login(client, services, "acme")
    claims = jwt.decode(session.access_token, options={"verify_signature": False})
    claims.update(change)
    assert services.tokens is not None
    forged = jwt.encode(claims, services.tokens._key, algorithm="HS256")
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"


def test_an_unsigned_or_foreign_signed_token_gets_401(client: TestClient, services: Services) -> None:
    session = login(client, services, "acme")
    claims = jwt.decode(session.access_token, options={"verify_signature": False})
    for forged in (
        jwt.encode(claims, None, algorithm="none"),
        jwt.encode(claims, "another-key-that-is-long-enough-for-hs256!", algorithm="HS256"),
    ):
        assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_a_role_without_the_permission_gets_403(client: TestClient, services: Services) -> None:
    analyst = login(client, services, "acme", role="analyst")
    refused = client.post("/api/v1/api-keys", json={"name": "mine", "role": "admin"}, headers=analyst.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    files = {"file": ("s.csv", b"a\n1\n", "text/csv")}
    assert client.post("/api/v1/datasets", files=files, headers=analyst.headers).status_code == 403


def test_admins_manage_users_and_keys_of_their_own_tenant(client: TestClient, services: Services) -> None:
    admin = login(client, services, "acme")
    made = client.post(
        "/api/v1/users",
        json={"email": "Grace@Acme.example", "password": "a-long-password", "role": "analyst"},
        headers=admin.headers,
    )
    assert made.status_code == 201 and made.json()["email"] == "grace@acme.example"
    assert "a-long-password" not in made.text
    assert (
        client.post(
            "/api/v1/auth/login", json={"email": "grace@acme.example", "password": "a-long-password"}
        ).status_code
        == 200
    )
    key = client.post("/api/v1/api-keys", json={"name": "ci", "role": "engineer"}, headers=admin.headers)
    assert key.status_code == 201
    plaintext, key_id = key.json()["plaintext"], key.json()["id"]
    listed = client.get("/api/v1/api-keys", headers=admin.headers).json()
    assert key_id in {k["id"] for k in listed["items"]} and plaintext not in str(listed)
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {plaintext}"}).status_code == 200
    assert client.delete(f"/api/v1/api-keys/{key_id}", headers=admin.headers).json()["active"] is False
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {plaintext}"}).status_code == 401


def test_only_a_platform_admin_creates_tenants(client: TestClient, services: Services) -> None:
    admin = login(client, services, "acme")
    body = {"slug": "initech", "admin_email": "boss@initech.example", "admin_password": "initech-password"}
    assert client.post("/api/v1/tenants", json=body, headers=admin.headers).status_code == 403
    platform = login(client, services, "acme", platform_admin=True)
    created = client.post("/api/v1/tenants", json=body, headers=platform.headers)
    assert created.status_code == 201 and created.json()["slug"] == "initech"
    first = client.post("/api/v1/auth/login", json={"email": "boss@initech.example", "password": "initech-password"})
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {first.json()['access_token']}"}).json()
    assert me["tenant_slug"] == "initech" and me["role"] == "admin"
    assert client.post("/api/v1/tenants", json=body, headers=platform.headers).status_code == 409


def test_a_disabled_users_access_token_is_refused_at_once(client: TestClient, services: Services) -> None:
    admin = login(client, services, "acme")
    analyst = login(client, services, "acme", role="analyst")
    me = client.get("/api/v1/auth/me", headers=analyst.headers)
    assert me.status_code == 200  # verified once, so remembered until it expires
    disabled = client.patch(f"/api/v1/users/{me.json()['user']['id']}", json={"active": False}, headers=admin.headers)
    assert disabled.status_code == 200
    refused = client.get("/api/v1/auth/me", headers=analyst.headers)
    assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
    assert client.get("/api/v1/datasets", headers=analyst.headers).status_code == 401


def test_an_access_token_no_longer_carries_a_role_its_user_lost(client: TestClient, services: Services) -> None:
    admin = login(client, services, "acme")
    engineer = login(client, services, "acme", role="engineer")
    user_id = client.get("/api/v1/auth/me", headers=engineer.headers).json()["user"]["id"]
    assert client.patch(f"/api/v1/users/{user_id}", json={"role": "analyst"}, headers=admin.headers).status_code == 200
    assert client.get("/api/v1/auth/me", headers=engineer.headers).status_code == 401
    fresh = client.post("/api/v1/auth/refresh", json={"refresh_token": engineer.refresh_token})
    assert fresh.status_code == 200
    headers = {"Authorization": f"Bearer {fresh.json()['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=headers).json()["role"] == "analyst"


def test_a_revoked_api_key_is_refused_at_once(client: TestClient, services: Services) -> None:
    admin = login(client, services, "acme")
    created = client.post("/api/v1/api-keys", json={"name": "ci", "role": "analyst"}, headers=admin.headers)
    assert created.status_code == 201, created.text
    key_headers = {"Authorization": f"Bearer {created.json()['plaintext']}"}
    assert client.get("/api/v1/auth/me", headers=key_headers).status_code == 200
    assert client.delete(f"/api/v1/api-keys/{created.json()['id']}", headers=admin.headers).status_code == 200
    assert client.get("/api/v1/auth/me", headers=key_headers).status_code == 401


def test_wrong_passwords_from_one_address_back_off_with_retry_after(client: TestClient, services: Services) -> None:
    email, _ = make_user(services, "acme")
    answers = [client.post("/api/v1/auth/login", json={"email": email, "password": "wrong-pass"}) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [401] * 3
    assert answers[3].status_code == 429 and answers[3].json()["code"] == "rate_limited"
    assert int(answers[3].headers["retry-after"]) == 1


def test_the_owner_logs_in_from_another_address_while_a_guesser_is_held_back(services: Services) -> None:
    email, password = make_user(services, "acme")
    with TestClient(create_app(services.settings, services=services), client=("203.0.113.5", 40000)) as guesser:
        answers = [
            guesser.post("/api/v1/auth/login", json={"email": email, "password": "wrong-pass"}) for _ in range(12)
        ]
        assert answers[-1].status_code == 429
        assert guesser.post("/api/v1/auth/login", json={"email": email, "password": password}).status_code == 429
    with TestClient(create_app(services.settings, services=services), client=("198.51.100.7", 40000)) as owner:
        assert owner.post("/api/v1/auth/login", json={"email": email, "password": password}).status_code == 200


def test_logins_for_one_account_from_many_addresses_hit_a_ceiling(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "ceiling",
        auth={"login_account_rate_limit": "3/minute"},
        _env_file=None,  # type: ignore[call-arg]  # pydantic-settings option
    )
    services = Services.open(settings)
    try:
        email, _ = make_user(services, "acme")
        statuses = []
        for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"):
            with TestClient(create_app(settings, services=services), client=(address, 40000)) as one:
                statuses.append(one.post("/api/v1/auth/login", json={"email": email, "password": "wrong-pass"}))
        assert [s.status_code for s in statuses] == [401, 401, 401, 429]
        assert statuses[3].json()["code"] == "rate_limited"
    finally:
        services.close()


def test_multi_tenant_mode_refuses_an_empty_or_default_signing_key(tmp_path: Path) -> None:
    for secret in (None, "secret", "short-key"):
        settings = Settings(
            home=tmp_path,
            multi_tenant=True,
            auth={"jwt_secret": secret},
            _env_file=None,  # type: ignore[call-arg]
        )
        with pytest.raises(SigningKeyError):
            load_token_signer(settings)
    strong = Settings(
        home=tmp_path,
        multi_tenant=True,
        auth={"jwt_secret": "x" * 8 + os.urandom(24).hex()},
        _env_file=None,  # type: ignore[call-arg]
    )
    assert load_token_signer(strong).audience == "servicetsunami-api"


def test_single_user_mode_makes_a_private_key_file_once(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option
    first = load_token_signer(settings)
    key_file = tmp_path / "jwt.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    token, _ = first.issue(user_id="u", tenant_id="t", tenant_slug="acme", role="analyst")
    assert load_token_signer(settings).claims(token)["tsl"] == "acme"  # same key on the next start
    key_file.chmod(0o644)
    with pytest.raises(SigningKeyError):
        load_token_signer(settings)


def test_an_access_token_expires(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, auth={"access_token_seconds": 60}, _env_file=None)  # type: ignore[call-arg]
    signer = load_token_signer(settings)
    token, lifetime = signer.issue(user_id="u", tenant_id="t", tenant_slug="acme", role="analyst")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert lifetime == 60 and claims["exp"] - claims["iat"] == 60 and claims["exp"] > time.time()


def test_a_disabled_user_can_neither_log_in_nor_refresh(client: TestClient, services: Services) -> None:
    admin = login(client, services, "acme")
    analyst = login(client, services, "acme", role="analyst")
    user_id = client.get("/api/v1/auth/me", headers=analyst.headers).json()["user"]["id"]
    assert client.patch(f"/api/v1/users/{user_id}", json={"active": False}, headers=analyst.headers).status_code == 403
    changed = client.patch(
        f"/api/v1/users/{user_id}", json={"active": False, "role": "engineer"}, headers=admin.headers
    )
    assert changed.status_code == 200 and changed.json()["active"] is False and changed.json()["role"] == "engineer"
    again = client.post("/api/v1/auth/login", json={"email": analyst.email, "password": analyst.password})
    assert again.status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": analyst.refresh_token}).status_code == 401


def test_a_key_is_made_with_a_tool_preset_over_rest_and_a_wrong_name_is_refused(
    client: TestClient, services: Services
) -> None:
    admin = login(client, services, "acme")
    body = {"name": "bi", "role": "analyst", "tool_preset": "analyst", "tools": ["health"]}
    created = client.post("/api/v1/api-keys", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    assert created.json()["tool_preset"] == "analyst" and created.json()["tools"] == ["health"]
    listed = client.get("/api/v1/api-keys", headers=admin.headers).json()["items"]
    assert [k["tool_preset"] for k in listed if k["id"] == created.json()["id"]] == ["analyst"]
    wrong = client.post("/api/v1/api-keys", json={**body, "tools": ["helth"]}, headers=admin.headers)
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_input"
