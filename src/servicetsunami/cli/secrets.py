"""``tsunami secrets``: the master key ring that encrypts stored secrets (operator)."""

from __future__ import annotations

import typer

from servicetsunami.cli.common import console, open_services, reported_errors
from servicetsunami.settings import Settings

app = typer.Typer(help="The master key ring for stored secrets (operator).", no_args_is_help=True)


@app.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored secret under a new master key, while the service keeps running."""
    from servicetsunami.services.identity.secrets import rotate_secrets

    with open_services() as svc:
        report = rotate_secrets(svc.store, svc.settings)
    console.print_json(report.model_dump_json())


@app.command("add-key")
def secrets_add_key() -> None:
    """Add a new active master key (key file mode); older keys stay for decryption."""
    from servicetsunami.security.secrets import add_key

    # No services here: opening them loads the key ring, which in multi-tenant mode fails until this
    # command has created the first key.
    settings = Settings()
    with reported_errors():
        kid = add_key(settings)
    console.print(f"new active key {kid}; run `tsunami secrets rotate` to re-encrypt stored secrets")
