"""Key rotation: put every stored credential (connection credentials, webhook signing secrets) under
the newest master key, while the service runs.

:func:`rotate_secrets` is the operator's act behind ``tsunami secrets rotate``. It works in two steps:

1. **A new active key.** With the key file, a new key is added as its first line (older keys are
   kept); with ``TSUNAMI_MASTER_KEY`` the operator has already prepended one and restarted.
2. **Re-encryption, one row per short transaction.** Each credential still under another key is
   decrypted and encrypted again under the active key, and written back only if nobody changed it in
   between. Nothing is locked for long; a service running meanwhile keeps decrypting old rows with
   the old key and new rows with the new one (a ring loaded from the key file re-reads it when it
   meets an unknown key id).

Interrupting it is safe, and running it again finishes the job: when credentials are still under an
older key of the ring, the run *resumes* (no further key is added); only when none is left does a
run start a new rotation. A credential under a key the ring no longer has cannot be re-encrypted;
it is reported in ``failed`` by every run until that key is restored or the credential re-entered.

An old key may be removed once a rotation reports ``remaining == 0`` and no backup of the store still
needs it. (A service that holds the key file's keys re-reads the file before its next encryption, so
it stops writing under the old key as soon as the new one is added.)
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from servicetsunami.errors import InvalidInput, TsunamiError
from servicetsunami.security import secrets
from servicetsunami.settings import Settings
from servicetsunami.store.db import Store
from servicetsunami.store.repositories import connections as connections_repo
from servicetsunami.store.repositories import webhooks as webhooks_repo

logger = logging.getLogger(__name__)


class RotationReport(BaseModel):
    """What one rotation run did."""

    active_kid: str = Field(description="The key every re-encrypted secret now uses")
    key_added: bool = Field(description="A new key was added to the key file by this run")
    resumed: bool = Field(description="Key file only: this run finished an earlier, interrupted rotation")
    rotated: int = Field(0, description="Secrets re-encrypted under the active key")
    already_current: int = Field(0, description="Secrets that already used the active key")
    changed_meanwhile: int = Field(0, description="Secrets changed by someone else during the run; left as they are")
    failed: list[str] = Field(
        default_factory=list,
        description="Ids of connections (and webhook:<id> of webhooks) whose secret could not be decrypted",
    )
    remaining: int = Field(0, description="Secrets still under another key after this run (0 = old keys unused)")


def rotate_secrets(store: Store, settings: Settings, *, limit: int | None = None) -> RotationReport:
    """Make sure a new key is active, then re-encrypt every secret under an older key (see module doc).

    ``limit`` re-encrypts at most that many rows (the rest stay for the next run). Raises
    :class:`~servicetsunami.errors.InvalidInput` when the keys come from ``TSUNAMI_MASTER_KEY`` and
    every secret already uses its first key: there is nothing to rotate to until one is prepended.
    """
    if limit is not None and limit < 0:
        raise InvalidInput("limit must not be negative")
    ring = secrets.load_keyring(settings)
    with store.session() as session:
        pending = _pending(session, exclude_kid=ring.active_kid)
        total = sum(connections_repo.count_connection_secrets_by_kid(session).values()) + sum(
            webhooks_repo.count_webhook_secrets_by_kid(session).values()
        )
    file_keys = secrets.uses_key_file(settings)
    # Rows under a kid the ring lacks cannot be re-encrypted by any run; they must not make every
    # later run look like the resumption of an unfinished rotation.
    rotatable = [item for item in pending if item.kid in ring]
    resumed = bool(rotatable) and file_keys
    key_added = False
    if not file_keys and not pending and total:
        raise InvalidInput(
            f"every stored secret already uses key {ring.active_kid!r}, the first in "
            f"{secrets.ENV_VAR}; to rotate, prepend a new key to it "
            f"(e.g. {secrets.next_kid(ring.kids)}:<32 random bytes, base64>), restart, and run again"
        )
    if file_keys and not rotatable:
        secrets.add_key(settings)
        key_added = True
        ring = secrets.load_keyring(settings)
        with store.session() as session:
            pending = _pending(session, exclude_kid=ring.active_kid)
    report = RotationReport(
        active_kid=ring.active_kid,
        key_added=key_added,
        resumed=resumed,
        already_current=max(0, total - len(pending)),
    )
    for item in pending if limit is None else pending[:limit]:
        _rotate_one(store, ring, item, report)
    with store.session() as session:
        report.remaining = len(_pending(session, exclude_kid=ring.active_kid))
    logger.info(
        "secrets rotated",
        extra={
            "kid": report.active_kid,
            "rotated": report.rotated,
            "failed": len(report.failed),
            "remaining": report.remaining,
        },
    )
    return report


_WEBHOOK = "webhook:"  # the id prefix of a webhook's signing secret among the stored secrets


def _pending(session: Session, /, *, exclude_kid: str) -> list[connections_repo.ConnectionSecret]:
    """Connection credentials, then webhook signing secrets (their ids as ``webhook:<id>``)."""
    webhooks = webhooks_repo.list_webhook_secrets(session, exclude_kid=exclude_kid)
    return [
        *connections_repo.list_connection_secrets(session, exclude_kid=exclude_kid),
        *(item._replace(id=_WEBHOOK + item.id) for item in webhooks),
    ]


def _rotate_one(
    store: Store, ring: secrets.KeyRing, item: connections_repo.ConnectionSecret, report: RotationReport
) -> None:
    webhook_id = item.id.removeprefix(_WEBHOOK) if item.id.startswith(_WEBHOOK) else None
    if webhook_id is not None:
        aad = secrets.webhook_secret_aad(item.tenant_id, webhook_id)
    else:
        aad = secrets.secret_aad(item.tenant_id, item.id)
    try:
        plaintext = ring.decrypt(item.ciphertext, aad=aad)
    except TsunamiError:
        logger.warning("secret cannot be decrypted; left as it is", extra={"connection_id": item.id, "kid": item.kid})
        report.failed.append(item.id)
        return
    ciphertext = ring.encrypt(plaintext, aad=aad)
    with store.session() as session:
        if webhook_id is not None:
            swapped = webhooks_repo.replace_webhook_secret(
                session, webhook_id, old_ciphertext=item.ciphertext, ciphertext=ciphertext, kid=ring.active_kid
            )
        else:
            swapped = connections_repo.replace_connection_secret(
                session, item.id, old_ciphertext=item.ciphertext, ciphertext=ciphertext, kid=ring.active_kid
            )
    if swapped:
        report.rotated += 1
    else:
        report.changed_meanwhile += 1
