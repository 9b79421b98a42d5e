"""The Alembic environment of the system store, shipped inside the package.

There is no ``alembic.ini``: :func:`alembic_config` builds the configuration in code, and
:meth:`servicetsunami.store.db.Store.migrate` hands ``env.py`` an open connection (already holding
the migration lock) through ``config.attributes["connection"]``.

To write a new revision against a scratch database::

    from alembic import command
    from servicetsunami.store.migrations import alembic_config

    command.revision(alembic_config("sqlite:///scratch.db"), "add syncs", autogenerate=True, rev_id="0002")

then read and correct the generated file (revisions here are hand-checked, and named
``NNNN_<slug>.py`` with ``revision = "NNNN"``).
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    """An Alembic :class:`Config` for this package's migrations and the database at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    # ConfigParser interpolates '%', which URL-encoded passwords contain.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config
