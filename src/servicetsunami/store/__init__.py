"""The system of record: SQLAlchemy models, repositories and Alembic migrations.

``db.Store`` owns the engine and sessions, ``models`` the tables, ``repositories`` the reads and
writes (those of connections, syncs and runs live in ``source_repositories`` and are re-exported by
``repositories``), ``migrations`` the Alembic environment shipped with the package.
"""

from servicetsunami.store.db import Store

__all__ = ["Store"]
