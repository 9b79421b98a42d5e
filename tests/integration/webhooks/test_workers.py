"""`tsunami serve --workers 2`: each run event is posted once, whichever worker ran the run and
whichever worker's ticker found the delivery due."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.served import WAIT_SECONDS, serving
from tests.integration.webhooks.receiver import Receiver


def test_every_event_is_delivered_once_by_two_workers(tmp_path: Path, hook: Receiver) -> None:
    env = {"TSUNAMI_WEBHOOKS__POLL_SECONDS": "0.1", "TSUNAMI_RUNS__POLL_SECONDS": "0.1"}
    with serving(tmp_path, env=env) as served:
        url, key = served.url, served.key
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            created = http.post("/api/v1/webhooks", json={"url": hook.url, "events": ["statement.*"]})
            assert created.status_code == 201, created.text
            hook.secret = created.json()["secret"]
        for n in range(8):  # a new connection each time, so both workers take some
            with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
                answer = http.post("/api/v1/statements", json={"statement": f"SELECT {n} AS n", "wait_timeout": "10s"})
                assert answer.status_code == 200, answer.text
        got = hook.wait_for(16, timeout=WAIT_SECONDS)
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            page = http.get(f"/api/v1/webhooks/{created.json()['id']}/deliveries", params={"limit": 100}).json()
        assert len(page["items"]) == 16 and {d["status"] for d in page["items"]} == {"succeeded"}
        assert len(hook.received) == 16 and all(r.verified for r in got)
        assert len({r.headers["webhook-id"] for r in hook.received}) == 16
        types = sorted(r.json["type"] for r in hook.received)
        assert types == ["statement.started"] * 8 + ["statement.succeeded"] * 8
