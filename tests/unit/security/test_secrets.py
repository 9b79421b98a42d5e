"""The key ring (AES-256-GCM with key ids), the master key file, and key rotation over a real SQLite store."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from servicetsunami.errors import InvalidInput, SecretError, StoreError, TsunamiError
from servicetsunami.security import secrets
from servicetsunami.security.secrets import KeyRing, secret_aad
from servicetsunami.services.identity.secrets import rotate_secrets
from servicetsunami.settings import Settings
from servicetsunami.store.db import Store
from servicetsunami.store.models import new_id
from servicetsunami.store.repositories import connections as connections_repo
from servicetsunami.store.repositories import tenants as tenants_repo

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
AAD = secret_aad("tenant-1", "connection-1")


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {"home": tmp_path / "home", "master_key": None, "multi_tenant": False}
    fields.update(overrides)
    return Settings(_env_file=None, **fields)  # type: ignore[call-arg]  # pydantic-settings option


def _entry(kid: str, key: bytes) -> str:
    return f"{kid}:{base64.b64encode(key).decode()}"


def _ring(*keys: tuple[str, bytes]) -> KeyRing:
    return KeyRing(dict(keys), active=keys[0][0])


# --- the key ring ----------------------------------------------------------------------------


def test_a_secret_decrypts_with_the_aad_it_was_encrypted_with() -> None:
    ring = _ring(("k1", KEY_A))
    blob = ring.encrypt(b"s3cret password", aad=AAD)
    assert b"s3cret" not in blob
    assert ring.decrypt(blob, aad=AAD) == b"s3cret password"


def test_every_encryption_uses_a_fresh_nonce() -> None:
    ring = _ring(("k1", KEY_A))
    assert ring.encrypt(b"same", aad=AAD) != ring.encrypt(b"same", aad=AAD)


def test_the_ciphertext_follows_the_documented_layout() -> None:
    blob = _ring(("key-2025", KEY_A)).encrypt(b"abc", aad=AAD)
    assert blob[0] == secrets.FORMAT_VERSION
    assert blob[1] == len("key-2025")
    assert blob[2:10] == b"key-2025"
    assert len(blob) == 2 + 8 + secrets.NONCE_BYTES + len(b"abc") + secrets.TAG_BYTES
    assert secrets.kid_of(blob) == "key-2025"


def test_a_secret_copied_to_another_tenants_connection_does_not_decrypt() -> None:
    ring = _ring(("k1", KEY_A))
    blob = ring.encrypt(b"pw", aad=secret_aad("acme", "conn-1"))
    with pytest.raises(SecretError):
        ring.decrypt(blob, aad=secret_aad("globex", "conn-1"))


def test_a_secret_copied_to_another_connection_of_the_same_tenant_does_not_decrypt() -> None:
    ring = _ring(("k1", KEY_A))
    blob = ring.encrypt(b"pw", aad=secret_aad("acme", "conn-1"))
    with pytest.raises(SecretError):
        ring.decrypt(blob, aad=secret_aad("acme", "conn-2"))


def test_the_aad_cannot_be_shifted_between_tenant_and_connection_ids() -> None:
    assert secret_aad("ab", "c") != secret_aad("a", "bc")
    with pytest.raises(SecretError):
        secret_aad("a\x00b", "c")


@pytest.mark.parametrize(
    "position", [0, 1, 3, 10, 20, -1], ids=["version", "kid-length", "kid", "nonce", "body", "tag"]
)
def test_any_changed_byte_is_detected(position: int) -> None:
    ring = _ring(("k1", KEY_A))
    blob = bytearray(ring.encrypt(b"a secret long enough", aad=AAD))
    blob[position] ^= 0x01
    with pytest.raises(SecretError) as info:
        ring.decrypt(bytes(blob), aad=AAD)
    assert info.value.code == "secret_error"


def test_a_truncated_ciphertext_is_detected() -> None:
    ring = _ring(("k1", KEY_A))
    blob = ring.encrypt(b"pw", aad=AAD)
    for cut in (0, 1, 4, len(blob) - 1):
        with pytest.raises(SecretError):
            ring.decrypt(blob[:cut], aad=AAD)


def test_a_ciphertext_under_an_unknown_key_is_a_secret_error() -> None:
    blob = _ring(("old", KEY_A)).encrypt(b"pw", aad=AAD)
    with pytest.raises(SecretError):
        _ring(("new", KEY_B)).decrypt(blob, aad=AAD)


def test_relabelling_a_ciphertext_with_another_known_kid_does_not_decrypt() -> None:
    ring = _ring(("ka", KEY_A), ("kb", KEY_B))
    blob = bytearray(ring.encrypt(b"pw", aad=AAD))
    blob[2:4] = b"kb"
    with pytest.raises(SecretError):
        ring.decrypt(bytes(blob), aad=AAD)


def test_secret_errors_belong_to_the_tsunami_error_tree() -> None:
    assert issubclass(SecretError, StoreError) and issubclass(SecretError, TsunamiError)
    assert SecretError("x").to_dict()["code"] == "secret_error"


def test_old_keys_still_decrypt_after_a_new_key_becomes_active() -> None:
    old = _ring(("k1", KEY_A)).encrypt(b"old", aad=AAD)
    ring = _ring(("k2", KEY_B), ("k1", KEY_A))
    new = ring.encrypt(b"new", aad=AAD)
    assert secrets.kid_of(new) == "k2"
    assert (ring.decrypt(old, aad=AAD), ring.decrypt(new, aad=AAD)) == (b"old", b"new")
    assert ring.kids == ("k2", "k1")


def test_json_helpers_round_trip_an_object() -> None:
    ring = _ring(("k1", KEY_A))
    value = {"password": "pä55", "extra": [1, None]}
    assert ring.decrypt_json(ring.encrypt_json(value, aad=AAD), aad=AAD) == value


def test_a_ring_refuses_keys_of_the_wrong_size_and_an_active_kid_it_lacks() -> None:
    with pytest.raises(SecretError):
        KeyRing({"k1": b"short"}, active="k1")
    with pytest.raises(SecretError):
        KeyRing({"k1": KEY_A}, active="k2")


def test_the_repr_of_a_ring_shows_kids_but_no_key_material() -> None:
    text = repr(_ring(("k1", KEY_A)))
    assert "k1" in text and base64.b64encode(KEY_A).decode() not in text and str(KEY_A) not in text


# --- keys from the environment ---------------------------------------------------------------


def test_a_bare_base64_master_key_is_kid_k1(tmp_path: Path) -> None:
    settings = _settings(tmp_path, master_key=SecretStr(base64.b64encode(KEY_A).decode()))
    ring = secrets.load_keyring(settings)
    assert ring.kids == ("k1",)
    assert not secrets.key_file_path(settings).exists()


def test_the_first_of_several_master_keys_is_active(tmp_path: Path) -> None:
    spec = f"{_entry('k2', KEY_B)}, {_entry('k1', KEY_A)}"
    ring = secrets.load_keyring(_settings(tmp_path, master_key=SecretStr(spec)))
    assert ring.active_kid == "k2" and ring.kids == ("k2", "k1")


def test_url_safe_base64_without_padding_is_accepted(tmp_path: Path) -> None:
    spec = "k1:" + base64.urlsafe_b64encode(KEY_B).decode().rstrip("=")
    ring = secrets.load_keyring(_settings(tmp_path, master_key=SecretStr(spec)))
    assert ring.decrypt(_ring(("k1", KEY_B)).encrypt(b"x", aad=AAD), aad=AAD) == b"x"


@pytest.mark.parametrize(
    "spec",
    [
        "k1:" + base64.b64encode(b"too short").decode(),
        "k1:not base64 at all!",
        f"{_entry('k1', KEY_A)},{_entry('k1', KEY_B)}",
        "bad kid!:" + base64.b64encode(KEY_A).decode(),
        " , ",
    ],
    ids=["short", "not-base64", "duplicate-kid", "bad-kid", "empty"],
)
def test_a_malformed_master_key_stops_the_start_without_echoing_it(tmp_path: Path, spec: str) -> None:
    with pytest.raises(SecretError) as info:
        secrets.load_keyring(_settings(tmp_path, master_key=SecretStr(spec)))
    assert base64.b64encode(KEY_A).decode() not in info.value.message


def test_add_key_with_an_environment_key_explains_how_to_prepend_one(tmp_path: Path) -> None:
    settings = _settings(tmp_path, master_key=SecretStr(_entry("k1", KEY_A)))
    with pytest.raises(SecretError) as info:
        secrets.add_key(settings)
    assert secrets.ENV_VAR in info.value.message
    assert not secrets.key_file_path(settings).exists()


# --- the key file ----------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_the_key_file_is_created_with_mode_0600_on_first_start(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = secrets.load_keyring(settings)
    path = secrets.key_file_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.active_kid == "k1"
    blob = first.encrypt(b"pw", aad=AAD)
    assert secrets.load_keyring(settings).decrypt(blob, aad=AAD) == b"pw"  # the same key, read back


def test_processes_starting_at_once_agree_on_one_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    barrier = threading.Barrier(8)
    rings: list[KeyRing] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait(timeout=10)
            rings.append(secrets.load_keyring(settings))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and len(rings) == 8
    blob = rings[0].encrypt(b"pw", aad=AAD)
    assert all(r.decrypt(blob, aad=AAD) == b"pw" for r in rings)
    assert [p.name for p in secrets.key_file_path(settings).parent.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_may_read_stops_the_start(tmp_path: Path, mode: int) -> None:
    settings = _settings(tmp_path)
    secrets.load_keyring(settings)
    path = secrets.key_file_path(settings)
    path.chmod(mode)
    with pytest.raises(SecretError) as info:
        secrets.load_keyring(settings)
    assert "chmod 600" in info.value.message


def test_multi_tenant_mode_does_not_create_a_key_file_on_its_own(tmp_path: Path) -> None:
    settings = _settings(tmp_path, multi_tenant=True)
    with pytest.raises(SecretError):
        secrets.load_keyring(settings)
    assert not secrets.key_file_path(settings).exists()
    secrets.add_key(settings)  # the operator provisions it explicitly
    assert secrets.load_keyring(settings).active_kid == "k1"


def test_a_key_file_without_keys_stops_the_start(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = secrets.key_file_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text("# nothing here\n")
    path.chmod(0o600)
    with pytest.raises(SecretError):
        secrets.load_keyring(settings)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_add_key_puts_a_new_active_key_first_and_keeps_the_old_ones(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    old = secrets.load_keyring(settings)
    blob = old.encrypt(b"pw", aad=AAD)
    assert secrets.add_key(settings) == "k2"
    path = secrets.key_file_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    assert [line.split(":")[0] for line in lines] == ["k2", "k1"]
    ring = secrets.load_keyring(settings)
    assert ring.active_kid == "k2" and ring.decrypt(blob, aad=AAD) == b"pw"


def test_a_ring_loaded_before_a_key_was_added_reads_secrets_under_the_new_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    running_service = secrets.load_keyring(settings)
    secrets.add_key(settings)  # another process, e.g. `tsunami secrets rotate`
    blob = secrets.load_keyring(settings).encrypt(b"pw", aad=AAD)
    assert running_service.decrypt(blob, aad=AAD) == b"pw"
    assert running_service.active_kid == "k2"  # and it encrypts under the new key from now on


def test_a_running_service_encrypts_under_a_key_added_by_another_process(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    running_service = secrets.load_keyring(settings)
    secrets.add_key(settings)
    assert secrets.kid_of(running_service.encrypt(b"pw", aad=AAD)) == "k2"


# --- rotation --------------------------------------------------------------------------------


def _tenant(store: Store, slug: str) -> str:
    with store.session() as s:
        return tenants_repo.create_tenant(s, slug=slug, name=slug).id


def _connection(store: Store, ring: KeyRing, tenant_id: str, name: str, password: str) -> str:
    connection_id = new_id()
    blob = ring.encrypt(password.encode(), aad=secret_aad(tenant_id, connection_id))
    with store.session() as s:
        connections_repo.create_connection(
            s,
            tenant_id=tenant_id,
            name=name,
            kind="postgres",
            config={"host": "db.example.com", "port": 5432, "database": "app", "user": "reader"},
            secret_ciphertext=blob,
            secret_kid=ring.active_kid,
            connection_id=connection_id,
        )
    return connection_id


def _secrets_by_id(store: Store) -> dict[str, connections_repo.ConnectionSecret]:
    with store.session() as s:
        return {item.id: item for item in connections_repo.list_connection_secrets(s)}


def _passwords(store: Store, ring: KeyRing) -> dict[str, str]:
    return {
        item.id: ring.decrypt(item.ciphertext, aad=secret_aad(item.tenant_id, item.id)).decode()
        for item in _secrets_by_id(store).values()
    }


def _three_connections(store: Store, ring: KeyRing) -> dict[str, str]:
    acme, globex = _tenant(store, "acme"), _tenant(store, "globex")
    return {
        _connection(store, ring, acme, "warehouse", "pw-acme-1"): "pw-acme-1",
        _connection(store, ring, acme, "crm", "pw-acme-2"): "pw-acme-2",
        _connection(store, ring, globex, "warehouse", "pw-globex"): "pw-globex",
    }


def test_rotation_re_encrypts_every_secret_under_a_new_key(store: Store, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    expected = _three_connections(store, secrets.load_keyring(settings))
    report = rotate_secrets(store, settings)
    assert (report.active_kid, report.key_added, report.rotated, report.remaining) == ("k2", True, 3, 0)
    assert {item.kid for item in _secrets_by_id(store).values()} == {"k2"}
    assert {secrets.kid_of(item.ciphertext) for item in _secrets_by_id(store).values()} == {"k2"}
    assert _passwords(store, secrets.load_keyring(settings)) == expected


def test_old_rows_still_decrypt_mid_rotation_and_a_rerun_finishes_it(store: Store, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    running_service = secrets.load_keyring(settings)
    expected = _three_connections(store, running_service)

    partial = rotate_secrets(store, settings, limit=1)  # as if killed after the first row
    assert (partial.rotated, partial.remaining) == (1, 2)
    assert sorted(item.kid for item in _secrets_by_id(store).values()) == ["k1", "k1", "k2"]
    assert _passwords(store, running_service) == expected
    assert _passwords(store, secrets.load_keyring(settings)) == expected

    rerun = rotate_secrets(store, settings)
    assert (rerun.key_added, rerun.resumed, rerun.rotated, rerun.already_current, rerun.remaining) == (
        False,
        True,
        2,
        1,
        0,
    )
    assert secrets.load_keyring(settings).kids == ("k2", "k1")  # no third key for a resumed rotation
    assert _passwords(store, running_service) == expected


def test_rotating_again_after_a_finished_rotation_starts_a_new_one(store: Store, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    expected = _three_connections(store, secrets.load_keyring(settings))
    rotate_secrets(store, settings)
    again = rotate_secrets(store, settings)
    assert (again.active_kid, again.key_added, again.resumed, again.rotated) == ("k3", True, False, 3)
    assert _passwords(store, secrets.load_keyring(settings)) == expected


def test_rotation_with_environment_keys_re_encrypts_under_the_prepended_key(store: Store, tmp_path: Path) -> None:
    before = _settings(tmp_path, master_key=SecretStr(_entry("k1", KEY_A)))
    expected = _three_connections(store, secrets.load_keyring(before))
    after = _settings(tmp_path, master_key=SecretStr(f"{_entry('k2', KEY_B)},{_entry('k1', KEY_A)}"))

    report = rotate_secrets(store, after)
    assert (report.active_kid, report.key_added, report.rotated, report.remaining) == ("k2", False, 3, 0)
    assert _passwords(store, secrets.load_keyring(after)) == expected
    assert not secrets.key_file_path(after).exists()

    with pytest.raises(InvalidInput) as info:  # nothing left to rotate until a new key is prepended
        rotate_secrets(store, after)
    assert secrets.ENV_VAR in info.value.message


def test_rotation_with_environment_keys_and_no_secrets_does_nothing(store: Store, tmp_path: Path) -> None:
    settings = _settings(tmp_path, master_key=SecretStr(_entry("k1", KEY_A)))
    report = rotate_secrets(store, settings)
    assert (report.rotated, report.remaining, report.key_added) == (0, 0, False)


def test_a_secret_that_cannot_be_decrypted_is_reported_and_left_as_it_is(store: Store, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    good = _connection(store, secrets.load_keyring(settings), _tenant(store, "acme"), "good", "pw")
    lost = _connection(store, _ring(("lost", KEY_B)), _tenant(store, "globex"), "lost", "pw")
    report = rotate_secrets(store, settings)
    assert (report.rotated, report.failed, report.remaining) == (1, [lost], 1)
    stored = _secrets_by_id(store)
    assert (stored[good].kid, stored[lost].kid) == ("k2", "lost")
