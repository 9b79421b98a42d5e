"""The key ring: stored credentials encrypted with AES-256-GCM, several keys, rotation without downtime.

A :class:`KeyRing` holds one or more 256-bit keys, each named by a key id (``kid``); one of them is
*active* and encrypts everything new, the others only decrypt. Every ciphertext names the key that
made it, so rows encrypted under an old key keep working while :func:`servicetsunami.services.
secrets.rotate_secrets` re-encrypts them, one row at a time.

Ciphertext layout (all lengths in bytes)::

    +---------+-----------+-----------------+-----------+-------------------------------+
    | version | kid length| kid (ASCII)     | nonce     | AES-GCM ciphertext + 16 tag   |
    | 1 = 0x01| 1 (1-64)  | kid length      | 12        | len(plaintext) + 16           |
    +---------+-----------+-----------------+-----------+-------------------------------+

The nonce is 96 random bits, fresh for every encryption. The associated data authenticated by GCM
is the header (version, kid length, kid) followed by the caller's ``aad``: changing any header byte,
any ciphertext byte, or decrypting with another ``aad`` fails. For connection credentials the
``aad`` is :func:`secret_aad` of the tenant and the connection, so a ciphertext copied to another
row (of the same or another tenant) does not decrypt.

Where the keys come from (:func:`load_keyring`):

* ``TSUNAMI_MASTER_KEY``: ``kid:base64key`` entries separated by commas, the first active; a bare
  base64 key is kid ``k1``. To rotate, prepend a new entry, restart, then run the rotation.
* otherwise the key file ``<home>/master.key``: one ``kid:base64key`` per line, the first active,
  ``#`` comments allowed. In single-user mode it is created on first start (mode 0600); in
  multi-tenant mode it must be provisioned by the operator (:func:`add_key` creates it). A file that
  group or others may read, or that holds no valid key, stops the start with an explanation.

A ring loaded from the key file re-reads the file when it meets a kid it does not know, and before
encrypting when the file changed, so a running service picks up the key that ``tsunami secrets
rotate`` (another process) added, without a restart.

Every failure raises :class:`~servicetsunami.errors.SecretError` (code ``secret_error``); messages
never contain key material or plaintext.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from servicetsunami.errors import SecretError

if TYPE_CHECKING:
    from servicetsunami.settings import Settings

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
DEFAULT_KID = "k1"
KEY_FILE_NAME = "master.key"
ENV_VAR = "TSUNAMI_MASTER_KEY"

_KID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_NUMBERED_KID_RE = re.compile(r"^k(\d{1,9})$")
_AAD_DOMAIN = b"servicetsunami/connection-secret/v1"
_KEY_FILE_HEADER = (
    "# ServiceTsunami master keys: one 'kid:base64key' per line, the first one encrypts new secrets.\n"
    "# Keep every line until `tsunami secrets rotate` reports no secret left under that kid.\n"
)


class KeyRing:
    """Named AES-256 keys, one of them active. Thread-safe; holds key bytes, never shows them."""

    def __init__(self, keys: Mapping[str, bytes], /, *, active: str) -> None:
        """``keys`` maps kid to a 32-byte key; the key ``active`` encrypts, all of them decrypt."""
        checked = {_check_kid(kid): _check_key(key, kid) for kid, key in keys.items()}
        if active not in checked:
            raise SecretError(f"the active key id {active!r} is not among the keys")
        self._keys = checked
        self._active = active
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyRing(kids={list(self._keys)!r}, active={self._active!r})"

    @property
    def active_kid(self) -> str:
        return self._active

    @property
    def kids(self) -> tuple[str, ...]:
        """Every key id, the active one first."""
        return (self._active, *(kid for kid in self._keys if kid != self._active))

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def encrypt(self, plaintext: bytes, /, *, aad: bytes) -> bytes:
        """Encrypt under the active key; ``aad`` must be given again, identical, to decrypt."""
        self._before_encrypt()
        with self._lock:
            kid, key = self._active, self._keys[self._active]
        header = _header(kid)
        nonce = os.urandom(NONCE_BYTES)
        return header + nonce + AESGCM(key).encrypt(nonce, plaintext, header + aad)

    def decrypt(self, blob: bytes, /, *, aad: bytes) -> bytes:
        """Decrypt with the key named inside ``blob``. :class:`SecretError` if the key is unknown, the
        ``aad`` differs from the one used to encrypt, or any byte was changed."""
        kid, header_length = _parse_header(blob)
        key = self._key(kid)
        header, body = blob[:header_length], blob[header_length:]
        if len(body) < NONCE_BYTES + TAG_BYTES:
            raise SecretError("stored secret is truncated and cannot be decrypted")
        try:
            return AESGCM(key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], header + aad)
        except InvalidTag:
            raise SecretError(
                "stored secret cannot be decrypted: it was changed, or it belongs to another record"
            ) from None

    def encrypt_json(self, obj: Any, /, *, aad: bytes) -> bytes:
        """:meth:`encrypt` of the compact JSON of ``obj``."""
        return self.encrypt(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8"), aad=aad)

    def decrypt_json(self, blob: bytes, /, *, aad: bytes) -> Any:
        """The object that :meth:`encrypt_json` encrypted."""
        plaintext = self.decrypt(blob, aad=aad)
        try:
            return json.loads(plaintext)
        except ValueError:
            raise SecretError("stored secret decrypted but is not JSON") from None

    def refresh(self) -> bool:
        """Re-read the keys from their source; returns False when the source cannot change (the
        environment, or keys given in code)."""
        return False

    def _replace_keys(self, other: KeyRing) -> None:
        with self._lock:
            self._keys = dict(other._keys)
            self._active = other._active

    def _before_encrypt(self) -> None:
        """Hook for rings whose keys may change under them."""

    def _key(self, kid: str) -> bytes:
        with self._lock:
            key = self._keys.get(kid)
        if key is None and self.refresh():
            with self._lock:
                key = self._keys.get(kid)
        if key is None:
            raise SecretError(
                f"stored secret was encrypted with key {kid!r}, which is not configured; "
                f"restore that key (in {ENV_VAR} or the key file) to read it"
            )
        return key


def kid_of(blob: bytes, /) -> str:
    """The key id a ciphertext was made with, without decrypting it."""
    return _parse_header(blob)[0]


def secret_aad(tenant_id: str, connection_id: str, /) -> bytes:
    """The associated data binding a connection's secret to its tenant and its row."""
    for value in (tenant_id, connection_id):
        if not value or "\x00" in value:
            raise SecretError("tenant and connection ids must be non-empty and free of NUL characters")
    return b"\x00".join((_AAD_DOMAIN, tenant_id.encode("utf-8"), connection_id.encode("utf-8")))


def webhook_secret_aad(tenant_id: str, webhook_id: str, /) -> bytes:
    """The associated data binding a webhook's signing secret to its tenant and its row."""
    return secret_aad(tenant_id, f"webhook:{webhook_id}")


def generate_key() -> bytes:
    """32 random bytes, a new AES-256 key."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def format_key_entry(kid: str, key: bytes, /) -> str:
    """``kid:base64key``, the form used in the key file and in ``TSUNAMI_MASTER_KEY``."""
    return f"{_check_kid(kid)}:{base64.b64encode(_check_key(key, kid)).decode('ascii')}"


def next_kid(existing: Iterable[str], /) -> str:
    """``k<N+1>`` where ``N`` is the highest number among kids shaped ``k<N>`` (``k1`` if none)."""
    numbers = [int(m.group(1)) for kid in existing if (m := _NUMBERED_KID_RE.fullmatch(kid))]
    return f"k{max(numbers, default=0) + 1}"


def parse_keys(spec: str, /, *, source: str) -> tuple[dict[str, bytes], str]:
    """Parse ``kid:base64key`` entries (separated by commas or new lines; ``#`` lines ignored).

    Returns the keys and the active kid (the first entry). ``source`` names where the text came
    from, for messages. A bare base64 key gets kid ``k1``.
    """
    keys: dict[str, bytes] = {}
    active: str | None = None
    for raw_line in spec.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        for entry in (part.strip() for part in line.split(",")):
            if not entry:
                continue
            kid, sep, encoded = entry.partition(":")
            if not sep:  # base64 never contains ':', so a bare key is unambiguous
                kid, encoded = DEFAULT_KID, entry
            kid = kid.strip()
            if not _KID_RE.fullmatch(kid):
                raise SecretError(f"{source}: key id {kid!r} must be 1-64 letters, digits, '.', '_' or '-'")
            if kid in keys:
                raise SecretError(f"{source}: key id {kid!r} appears twice")
            keys[kid] = _decode_key(encoded.strip(), kid=kid, source=source)
            active = active or kid
    if active is None:
        raise SecretError(f"{source} holds no key (expected 'kid:base64key' entries, the first one active)")
    return keys, active


def key_file_path(settings: Settings) -> Path:
    return settings.resolved_home / KEY_FILE_NAME


def load_keyring(settings: Settings) -> KeyRing:
    """The key ring for this service, from ``TSUNAMI_MASTER_KEY`` or the key file (see module doc).

    In single-user mode a missing key file is created with one new key (mode 0600, atomically: two
    processes starting at once end up with the same key). Raises :class:`SecretError` with what to
    do when the keys are missing, malformed or readable by others.
    """
    if _env_spec(settings) is not None:
        return _ring_from_env(settings)
    path = key_file_path(settings)
    if not path.exists():
        if settings.multi_tenant:
            raise SecretError(
                f"no master key: in multi-tenant mode set {ENV_VAR} ('kid:base64key', 32 random bytes) "
                f"or create the key file {path} with `tsunami secrets add-key`"
            )
        kid = DEFAULT_KID
        if _create_exclusive(path, _KEY_FILE_HEADER + format_key_entry(kid, generate_key()) + "\n"):
            logger.info("created the master key file", extra={"path": str(path), "kid": kid})
    return _FileKeyRing(path)


def add_key(settings: Settings) -> str:
    """Make a new key the active one and return its kid; older keys are kept to decrypt old rows.

    Only for the key file (created if missing). With ``TSUNAMI_MASTER_KEY`` the keys belong to the
    operator's environment: this raises :class:`SecretError` explaining how to prepend a new key.
    """
    if _env_spec(settings) is not None:
        ring = _ring_from_env(settings)
        suggestion = format_key_entry(next_kid(ring.kids), generate_key())
        raise SecretError(
            f"the master keys come from {ENV_VAR}, which this process cannot change: prepend a new key, "
            f"e.g. {ENV_VAR}={suggestion},<current value>, restart the service, then rotate again"
        )
    path = key_file_path(settings)
    with _file_lock(path):
        if path.exists():
            _check_file_mode(path)
            keys, active = parse_keys(path.read_text("utf-8"), source=str(path))
            ordered = [active, *(kid for kid in keys if kid != active)]
        else:
            keys, ordered = {}, []
        kid = next_kid(ordered)
        lines = [format_key_entry(kid, generate_key()), *(format_key_entry(k, keys[k]) for k in ordered)]
        _replace_file(path, _KEY_FILE_HEADER + "\n".join(lines) + "\n")
    logger.info("added a master key", extra={"path": str(path), "kid": kid})
    return kid


def uses_key_file(settings: Settings) -> bool:
    """True when the keys come from the key file (no ``TSUNAMI_MASTER_KEY``)."""
    return _env_spec(settings) is None


# ---------------------------------------------------------------------------------------------


def _header(kid: str) -> bytes:
    encoded = kid.encode("ascii")
    return bytes((FORMAT_VERSION, len(encoded))) + encoded


def _parse_header(blob: bytes) -> tuple[str, int]:
    if len(blob) < 2 or blob[0] != FORMAT_VERSION:
        raise SecretError("stored secret has an unknown format and cannot be decrypted")
    end = 2 + blob[1]
    try:
        kid = bytes(blob[2:end]).decode("ascii")
    except UnicodeDecodeError:
        kid = ""
    if len(blob) < end or not _KID_RE.fullmatch(kid):
        raise SecretError("stored secret has a damaged header and cannot be decrypted")
    return kid, end


def _check_kid(kid: str) -> str:
    if not isinstance(kid, str) or not _KID_RE.fullmatch(kid):
        raise SecretError(f"key id {kid!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return kid


def _check_key(key: bytes, kid: str) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        raise SecretError(f"key {kid!r} must be exactly {KEY_BYTES} bytes")
    return bytes(key)


def _decode_key(encoded: str, *, kid: str, source: str) -> bytes:
    # Standard and URL-safe alphabets both accepted; padding optional.
    normalised = encoded.replace("-", "+").replace("_", "/")
    normalised += "=" * (-len(normalised) % 4)
    try:
        key = base64.b64decode(normalised, validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(f"{source}: key {kid!r} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise SecretError(
            f"{source}: key {kid!r} decodes to {len(key)} bytes; it must be {KEY_BYTES} random bytes "
            f'(e.g. python -c "import base64,os;print(base64.b64encode(os.urandom(32)).decode())")'
        )
    return key


def _env_spec(settings: Settings) -> str | None:
    if settings.master_key is None:
        return None
    value = settings.master_key.get_secret_value().strip()
    return value or None


def _ring_from_env(settings: Settings) -> KeyRing:
    spec = _env_spec(settings)
    assert spec is not None
    keys, active = parse_keys(spec, source=ENV_VAR)
    return KeyRing(keys, active=active)


class _FileKeyRing(KeyRing):
    """A ring read from the key file, which another process may change (``add_key``).

    It re-reads the file when a ciphertext names a kid it does not know, and before encrypting when
    the file changed since it was read (one ``stat``), so a running service follows a rotation
    without a restart and stops encrypting under the old key.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        stamp, keys, active = _read_key_file(path)
        super().__init__(keys, active=active)
        self._stamp = stamp

    def refresh(self) -> bool:
        stamp, keys, active = _read_key_file(self._path)
        self._replace_keys(KeyRing(keys, active=active))
        self._stamp = stamp
        return True

    def _before_encrypt(self) -> None:
        if _file_stamp(self._path) != self._stamp:
            self.refresh()


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def _read_key_file(path: Path) -> tuple[tuple[int, int, int] | None, dict[str, bytes], str]:
    _check_file_mode(path)
    stamp = _file_stamp(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise SecretError(f"cannot read the master key file {path}: {exc.strerror}") from exc
    keys, active = parse_keys(text, source=str(path))
    return stamp, keys, active


def _check_file_mode(path: Path) -> None:
    if os.name != "posix":  # POSIX permission bits mean nothing on Windows
        return
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SecretError(f"cannot read the master key file {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise SecretError(
            f"the master key file {path} can be read or changed by other users (mode {mode & 0o777:04o}); "
            f"refusing to start: run `chmod 600 {path}` (and consider the key compromised if others read it)"
        )


def _create_exclusive(path: Path, content: str) -> bool:
    """Create ``path`` (mode 0600) holding ``content`` unless it exists; returns whether we made it.

    The content is written to a private temporary file first and then linked into place, so another
    process never sees the file half-written; ``os.link`` fails if the name is taken.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _write_private_temporary(path, content)
    try:
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    except OSError:
        # No hard links on this file system: fall back to an exclusive create of the file itself.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        return True
    finally:
        temporary.unlink(missing_ok=True)


def _replace_file(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _write_private_temporary(path, content)
    try:
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_private_temporary(path: Path, content: str) -> Path:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    return temporary


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes changing the key file (POSIX; a no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
