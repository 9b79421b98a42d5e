"""Reads and writes of the system-of-record tables: one module per aggregate, small functions over
a :class:`~sqlalchemy.orm.Session`.

- :mod:`.tenants`: tenants and their settings; :mod:`.api_keys`; :mod:`.users`: users and their
  refresh tokens; :mod:`.datasets`; :mod:`.audit`: the audit log;
- :mod:`.connections`: data source connections and their encrypted credentials; :mod:`.syncs`:
  syncs (their runs are runs of kind ``sync``);
- :mod:`.runs`: every run (syncs, mirror replays, ...): create, claim, beat, finish, cancel, sweep;
- :mod:`.transforms`: silver specs, gold definitions and their lineage edges;
- :mod:`.oauth`: OAuth clients of the MCP door, users' grants, their codes and refresh tokens;
- :mod:`.pii_flags`: the personal-data flags of each table.

Callers import the module of the aggregate they need
(``from servicetsunami.store.repositories import datasets as datasets_repo``).

Conventions every module keeps: the caller owns the transaction (``with store.session() as s:``);
functions flush, so ids and constraint errors show up at the call, and never commit. Everything
that belongs to a tenant is looked up *within* that tenant: a row of another tenant is reported as
:class:`~servicetsunami.errors.NotFound`, exactly like a row that does not exist.

Lists that front doors page through take ``after`` (the sort key of the last row already seen) and
``limit``, applied in SQL by :mod:`._keyset`; they return up to ``limit + 1`` rows, the extra one
only telling the caller that another page follows.
"""
