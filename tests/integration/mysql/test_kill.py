"""Exactly once under SIGKILL against MariaDB: a sync process killed at random moments (while it
starts, while it reads a batch, while it commits one, right after a commit) and run again lands
every source row in bronze exactly once; in merge mode, every key with its latest values."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from servicetsunami.engines.local.engine import LocalEngine
from tests.integration.kill_harness import KILLS, kill_repeatedly, run_to_completion
from tests.integration.mysql.support import ENV, execute, server_url
from tests.integration.pg.support import bronze

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

CHILD = Path(__file__).with_name("sync_child.py")
ROWS = 20_000
BATCH_ROWS = 500


def _table(database: str) -> str:
    execute(
        database,
        "CREATE TABLE orders (id bigint PRIMARY KEY, val varchar(60), updated_at timestamp(6) NOT NULL, "
        "KEY (updated_at))",
        "INSERT INTO orders SELECT seq, CONCAT('v', seq), TIMESTAMPADD(SECOND, seq, TIMESTAMP'2024-01-01 00:00:00') "
        f"FROM seq_1_to_{ROWS}",
    )
    return f"{database}.orders"


@pytest.mark.parametrize("mode", ["incremental_append", "incremental_merge"])
def test_a_sync_killed_twenty_times_at_random_moments_lands_every_row_exactly_once(
    database: str, tmp_path: Path, mode: str
) -> None:
    stream = _table(database)
    rng = random.Random(f"mysql-kill-{mode}")
    root = tmp_path / "lakehouse"
    args = [str(root), database, stream, "orders", mode, "--sync-id", "orders", "--cursor", "updated_at"]
    args += ["--batch-rows", str(BATCH_ROWS)] + (["--key", "id"] if mode == "incremental_merge" else [])
    next_id = iter(range(ROWS + 1, ROWS + 10_000))

    def change_source() -> None:
        if mode == "incremental_merge":  # rows change under the sync: merge must keep the latest values
            ids = ", ".join(str(i) for i in rng.sample(range(1, ROWS + 1), 40))
            execute(
                database,
                f"UPDATE orders SET val = CONCAT(val, '+'), updated_at = CURRENT_TIMESTAMP(6) WHERE id IN ({ids})",
            )
        new = [next(next_id) for _ in range(rng.randint(0, 30))]
        if new:
            values = ", ".join(f"({i}, 'new {i}', CURRENT_TIMESTAMP(6))" for i in new)
            execute(database, f"INSERT INTO orders VALUES {values}")

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
    source = execute(database, "SELECT id, val, updated_at FROM orders ORDER BY id")
    assert counts == {"n": len(source), "ids": len(source)}
    assert [(r["id"], r["val"], r["updated_at"].replace(tzinfo=None)) for r in got] == source
