"""Exactly once under SIGKILL for a REST API: a sync process killed at random moments (while it
walks the pages, while it commits a batch, right after one) and run again lands every record in
bronze exactly once; in merge mode, every key with its latest values. The kill loop is
tests/integration/kill_harness.py's, running this directory's child script."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from servicetsunami.engines.local.engine import LocalEngine
from tests.fakes.rest_api import FakeApi
from tests.integration.kill_harness import KILLS, kill_repeatedly, run_to_completion
from tests.integration.pg.support import bronze

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("sync_child.py")

ROWS = 2_000


def _row(i: int, stamp: int, suffix: str = "") -> dict[str, object]:
    return {
        "id": i,
        "val": f"v{i}{suffix}",
        "updated_at": f"2024-01-01T{stamp // 3600:02d}:{stamp // 60 % 60:02d}:{stamp % 60:02d}Z",
    }


@pytest.mark.parametrize("mode", ["incremental_append", "incremental_merge"])
def test_a_rest_sync_killed_twenty_times_lands_every_record_exactly_once(tmp_path: Path, mode: str) -> None:
    api = FakeApi(items=0)
    api.state.rows = [_row(i, i // 2) for i in range(1, ROWS + 1)]
    rng = random.Random(f"rest-kill-{mode}")
    stamp = iter(range(ROWS, ROWS * 10))
    with api.running():
        config = {
            "base_url": api.base_url,
            "backoff_seconds": 0,
            "resources": [
                {
                    "name": "rows",
                    "path": "/rows",
                    "record_selector": "$.rows",
                    "paginator": {"type": "page_number"},
                    "incremental": {"cursor_field": "updated_at"},
                    "primary_key": ["id"],
                }
            ],
        }
        root = tmp_path / "lakehouse"
        args = [str(root), json.dumps(config), "rows", "rows", mode, "--sync-id", "rows", "--cursor", "updated_at"]
        args += ["--batch-rows", "100"] + (["--key", "id"] if mode == "incremental_merge" else [])
        next_id = iter(range(ROWS + 1, ROWS + 10_000))

        def change_source() -> None:
            if mode == "incremental_merge":  # records change under the sync: merge keeps the latest values
                for index in rng.sample(range(len(api.state.rows)), 10):
                    old = api.state.rows.pop(index)
                    changed = next(stamp)
                    api.state.rows.append(_row(int(str(old["id"])), changed, suffix=f"@{changed}"))
            for _ in range(rng.randint(0, 15)):
                api.state.rows.append(_row(next(next_id), next(stamp)))

        kills = kill_repeatedly(CHILD, args, rng, change_source, tmp_path / "child.err")
        last = run_to_completion(CHILD, args, tmp_path / "child.err")
    assert last.startswith("done")
    assert kills.total >= KILLS
    assert any(n > 0 for n in kills.after_commits)  # some processes died after committing some batches
    engine = LocalEngine(root)
    try:
        got = bronze(engine, "SELECT id, val, updated_at FROM rows ORDER BY id")
    finally:
        engine.close()
    expected = sorted(api.state.rows, key=lambda r: int(str(r["id"])))
    assert got == expected
