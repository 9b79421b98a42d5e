"""Exactly once under SIGKILL for Salesforce: a sync process killed at random moments (while it
pages through a query, while it commits a batch, right after one) and run again lands every record
in bronze exactly once; in merge mode, every record with its latest values. The kill loop is
tests/integration/kill_harness.py's, running this directory's child script."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest

from servicetsunami.engines.local.engine import LocalEngine
from tests.fakes.salesforce import CLIENT, FakeSalesforce, sf_datetime, sf_field
from tests.integration.kill_harness import KILLS, kill_repeatedly, run_to_completion
from tests.integration.pg.support import bronze

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("sync_child.py")

ROWS = 2_000
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _record(i: int, second: int, suffix: str = "") -> dict[str, Any]:
    return {
        "Id": f"a00{i:015d}",
        "Val": f"v{i}{suffix}",
        "SystemModstamp": sf_datetime(START + dt.timedelta(seconds=second)),
    }


@pytest.mark.parametrize("mode", ["incremental_append", "incremental_merge"])
def test_a_salesforce_sync_killed_twenty_times_lands_every_record_exactly_once(tmp_path: Path, mode: str) -> None:
    org = FakeSalesforce()
    org.state.page_size = 200
    described = [sf_field("Id", "id"), sf_field("Val", "string"), sf_field("SystemModstamp", "datetime")]
    records = org.add("Row__c", described, [_record(i, i // 2) for i in range(1, ROWS + 1)]).records
    rng = random.Random(f"salesforce-kill-{mode}")
    stamp = iter(range(ROWS, ROWS * 10))
    with org.running():
        config = {
            "instance_url": org.base_url,
            "client_id": CLIENT[0],
            "client_secret": CLIENT[1],
            "backoff_seconds": 0,
        }
        root = tmp_path / "lakehouse"
        args = [
            str(root),
            json.dumps(config),
            "Row__c",
            "rows",
            mode,
            "--sync-id",
            "rows",
            "--cursor",
            "SystemModstamp",
        ]
        args += ["--batch-rows", "100"] + (["--key", "Id"] if mode == "incremental_merge" else [])
        next_id = iter(range(ROWS + 1, ROWS + 10_000))

        def change_source() -> None:
            if mode == "incremental_merge":  # records change under the sync: merge keeps the latest values
                for index in rng.sample(range(len(records)), 10):
                    old = records.pop(index)
                    changed = next(stamp)
                    records.append(_record(int(str(old["Id"])[3:]), changed, suffix=f"@{changed}"))
            for _ in range(rng.randint(0, 15)):
                records.append(_record(next(next_id), next(stamp)))

        kills = kill_repeatedly(CHILD, args, rng, change_source, tmp_path / "child.err")
        last = run_to_completion(CHILD, args, tmp_path / "child.err")
    assert last.startswith("done")
    assert kills.total >= KILLS
    assert any(n > 0 for n in kills.after_commits)  # some processes died after committing some batches
    engine = LocalEngine(root)
    try:
        got = bronze(engine, "SELECT Id, Val FROM rows ORDER BY Id")
    finally:
        engine.close()
    expected = sorted(({"Id": r["Id"], "Val": r["Val"]} for r in records), key=lambda r: str(r["Id"]))
    assert got == expected
