"""Passwords: argon2id hashes (argon2-cffi), never the password itself.

:func:`hash_password` makes a hash with argon2-cffi's default parameters (RFC 9106 low-memory
profile); :func:`verify_password` checks one and says whether the hash should be remade with the
current parameters. :func:`burn_verify` spends the same time as a real check, so a login for an
unknown account cannot be told from a wrong password by its timing.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from servicetsunami.errors import InvalidInput

MIN_LENGTH = 8
MAX_LENGTH = 1024

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("servicetsunami: not a password of anyone")


def check_password_rules(password: str, /) -> str:
    """The password if it may be used; :class:`InvalidInput` (without the password) otherwise."""
    if not isinstance(password, str) or not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput(f"a password must be {MIN_LENGTH} to {MAX_LENGTH} characters long")
    if password.strip() != password or not password.strip():
        raise InvalidInput("a password must not start or end with spaces")
    return password


def hash_password(password: str, /) -> str:
    return _hasher.hash(check_password_rules(password))


def verify_password(password_hash: str, password: str, /) -> tuple[bool, bool]:
    """``(matches, needs_rehash)``."""
    try:
        _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, _hasher.check_needs_rehash(password_hash)


def burn_verify(password: str, /) -> None:
    """Cost one verification, for an account that does not exist."""
    verify_password(_DUMMY_HASH, password)
