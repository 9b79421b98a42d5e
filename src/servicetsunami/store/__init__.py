"""The system of record: SQLAlchemy models, repositories and Alembic migrations.

``db.Store`` owns the engine and sessions, ``models`` the tables, ``repositories`` the reads and
writes (one module per aggregate: tenants, api_keys, users, datasets, audit, connections, syncs,
transforms), ``migrations`` the Alembic environment shipped with the package.
"""

from servicetsunami.store.db import Store

__all__ = ["Store"]
