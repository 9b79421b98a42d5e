import sys, tempfile
from pathlib import Path
from tests.differential.local import local_lakehouse
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.errors import TsunamiError
from servicetsunami.sql import guard_query, to_duckdb
with tempfile.TemporaryDirectory() as h, local_lakehouse(Path(h)/"home") as (svc, p):
    for sql in sys.argv[1:]:
        try:
            g = guard_query(sql, catalog=p.catalog)
            print("DUCK:", to_duckdb(g, resolve=lambda r: r.table.name)[:300])
            r = query_sql(svc, p, sql)
            print([ (c.name, c.type) for c in r.columns], r.rows[:8])
        except TsunamiError as e:
            print("ERR", e.code, e.message[:300])
