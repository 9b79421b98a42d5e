"""Exactly once under SIGKILL: a sync process killed at random moments (while it starts, while it
reads a batch, while it commits one, right after a commit) and run again lands every source row
in bronze exactly once; in merge mode, every key with its latest values."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from servicetsunami.engines.local.engine import LocalEngine
from tests.integration.kill_harness import KILLS, kill_repeatedly, run_to_completion
from tests.integration.pg.support import ENV, bronze, server_url

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CHILD = Path(__file__).with_name("sync_child.py")
ROWS = 20_000
BATCH_ROWS = 500


def _table(pg: psycopg.Connection[Any], schema: str) -> str:
    table = sql.Identifier(schema, "orders")
    pg.execute(
        sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, val text, updated_at timestamptz NOT NULL)").format(table)
    )
    pg.execute(
        sql.SQL(
            "INSERT INTO {} SELECT i, 'v' || i, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' "
            "FROM generate_series(1, %s) AS i"
        ).format(table),
        [ROWS],
    )
    return f"{schema}.orders"


@pytest.mark.parametrize("mode", ["incremental_append", "incremental_merge"])
def test_a_sync_killed_twenty_times_at_random_moments_lands_every_row_exactly_once(
    pg: psycopg.Connection[Any], schema: str, tmp_path: Path, mode: str
) -> None:
    stream = _table(pg, schema)
    rng = random.Random(f"kill-{mode}")
    root = tmp_path / "lakehouse"
    args = [str(root), stream, "orders", mode, "--sync-id", "orders", "--cursor", "updated_at"]
    args += ["--batch-rows", str(BATCH_ROWS)] + (["--key", "id"] if mode == "incremental_merge" else [])
    orders = sql.Identifier(schema, "orders")
    next_id = iter(range(ROWS + 1, ROWS + 10_000))

    def change_source() -> None:
        if mode == "incremental_merge":  # rows change under the sync: merge must keep the latest values
            ids = rng.sample(range(1, ROWS + 1), 40)
            pg.execute(
                sql.SQL("UPDATE {} SET val = val || '+', updated_at = clock_timestamp() WHERE id = ANY(%s)").format(
                    orders
                ),
                [ids],
            )
        new = [next(next_id) for _ in range(rng.randint(0, 30))]
        pg.execute(
            sql.SQL("INSERT INTO {} SELECT i, 'new ' || i, clock_timestamp() FROM unnest(%s::bigint[]) AS i").format(
                orders
            ),
            [new],
        )

    kills = kill_repeatedly(CHILD, args, rng, change_source, tmp_path / "child.err", env={ENV: server_url()})
    last = run_to_completion(CHILD, args, tmp_path / "child.err", env={ENV: server_url()})
    assert last.startswith("done")

    assert kills.total >= KILLS
    assert kills.before_start >= 1 and any(n == 0 for n in kills.after_commits)
    assert any(n > 0 for n in kills.after_commits)  # some processes died after committing some batches
    engine = LocalEngine(root)
    try:
        got = bronze(engine, "SELECT id, val, updated_at FROM orders ORDER BY id")
        counts = bronze(engine, "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM orders")[0]
    finally:
        engine.close()
    source = pg.execute(sql.SQL("SELECT id, val, updated_at FROM {} ORDER BY id").format(orders)).fetchall()
    assert counts == {"n": len(source), "ids": len(source)}
    assert got == [{"id": i, "val": v, "updated_at": u} for i, v, u in source]
