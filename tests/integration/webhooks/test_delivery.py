"""Run state changes reach a tenant's receiver: signed, once each, retried with backoff on 5xx and
429, given up after the set number of attempts; each attempt in the delivery log. Both stores."""

from __future__ import annotations

import io
import itertools
import threading
import time
from datetime import timedelta
from pathlib import Path

from prometheus_client import REGISTRY
from sqlalchemy import update

from servicetsunami.services.container import Services
from servicetsunami.services.identity.secrets import rotate_secrets
from servicetsunami.services.ingestion import connections as cx
from servicetsunami.services.ingestion import syncs
from servicetsunami.services.ops import status, webhook_delivery, webhooks
from servicetsunami.services.pipelines import job_runs, jobs
from servicetsunami.store.models import WebhookDelivery, utcnow
from servicetsunami.store.repositories import webhooks as repo
from servicetsunami.tenancy import LANDING_VOLUME, Principal
from tests.helpers import make_principal
from tests.integration.webhooks.conftest import settings_for
from tests.integration.webhooks.receiver import Receiver

CSV = b"id,name\n1,ada\n2,grace\n"


def subscribe(svc: Services, who: Principal, hook: Receiver, *events: str) -> str:
    created = webhooks.create_webhook(svc, who, url=hook.url, events=list(events), description="tests")
    hook.secret = created.secret
    return created.id


def settled(svc: Services, who: Principal, webhook_id: str) -> list[webhooks.DeliveryPublic]:
    """The webhook's deliveries once none is pending or being sent (bounded wait)."""
    end = time.monotonic() + 30
    while True:
        found = webhooks.list_deliveries(svc, who, webhook_id)
        if found and all(d.status in ("succeeded", "failed") for d in found):
            return found
        assert time.monotonic() < end, [(d.status, d.attempts) for d in found]
        svc.launcher.wait_change(0.05)


def failing_job_run(svc: Services, who: Principal) -> str:
    task = {"task_key": "t", "kind": "sql", "config": {"sql": "SELECT * FROM nope"}}
    job = jobs.create_job(svc, who, {"name": "nightly", "tasks": [task]})
    run = job_runs.run_job(svc, who, job.job_id, wait_seconds=60)
    assert run.state == "failed"
    return run.run_id


def delivered_count() -> float:
    return REGISTRY.get_sample_value("webhook_deliveries_total", {"outcome": "delivered"}) or 0.0


def test_a_failed_job_run_is_delivered_once_signed_with_the_run_in_its_body(
    svc: Services, admin: Principal, hook: Receiver
) -> None:
    webhook_id = subscribe(svc, admin, hook, "job_run.failed")
    before = delivered_count()
    run_id = failing_job_run(svc, admin)
    (delivery,) = settled(svc, admin, webhook_id)
    (got,) = hook.received
    assert got.verified
    body = got.json
    assert body["type"] == "job_run.failed"
    assert (body["data"]["run_id"], body["data"]["kind"], body["data"]["state"]) == (run_id, "job_run", "failed")
    assert body["data"]["error_code"] and "params" not in body["data"]
    assert webhook_delivery.deliver_due(svc) == 0  # nothing else is due: delivered exactly once
    assert (delivery.id, delivery.status, delivery.attempts) == (got.headers["webhook-id"], "succeeded", 1)
    assert delivery.attempt_log[0].status_code == 200
    assert len(hook.received) == 1
    assert delivered_count() == before + 1
    assert status.service_status(svc).webhook_outbox == {"pending": 0, "delivering": 0, "succeeded": 1, "failed": 0}
    depth = status.scrape_gauges(svc)["webhook_outbox_deliveries"][2]
    assert depth[("pending",)] == 0 and depth[("succeeded",)] == 1


def test_a_finished_sync_is_delivered_with_its_start_when_asked_for_every_sync_event(
    svc: Services, admin: Principal, hook: Receiver
) -> None:
    webhook_id = subscribe(svc, admin, hook, "sync.*")
    svc.engine.put_file(admin.catalog, "bronze", LANDING_VOLUME, "people.csv", io.BytesIO(CSV))
    source = cx.create_connection(svc, admin, name="exports", kind="files", config={"path": "people.csv"})
    run = syncs.sync_table_to_bronze(svc, admin, source.id, "people.csv", target_table="bronze.people", wait_seconds=60)
    assert run.status == "succeeded"
    assert {d.status for d in settled(svc, admin, webhook_id)} == {"succeeded"}
    got = hook.received
    assert sorted(r.json["type"] for r in got) == ["sync.started", "sync.succeeded"]
    assert all(r.verified for r in got)
    assert webhook_delivery.deliver_due(svc) == 0
    assert len(hook.received) == 2


def test_a_job_runs_task_is_delivered_when_it_starts_and_when_it_ends(
    svc: Services, admin: Principal, hook: Receiver
) -> None:
    webhook_id = subscribe(svc, admin, hook, "task_run.*")
    failing_job_run(svc, admin)
    assert {d.status for d in settled(svc, admin, webhook_id)} == {"succeeded"}
    assert sorted(r.json["type"] for r in hook.received) == ["task_run.failed", "task_run.started"]


def test_a_5xx_is_retried_with_growing_waits_until_it_is_delivered(
    svc: Services, admin: Principal, hook: Receiver
) -> None:
    webhook_id = subscribe(svc, admin, hook, "job_run.failed")
    hook.answers = [(500, {}), (503, {})]
    failing_job_run(svc, admin)
    (delivery,) = settled(svc, admin, webhook_id)
    got = hook.received
    assert [r.json["type"] for r in got] == ["job_run.failed"] * 3 and all(r.verified for r in got)
    assert len({r.headers["webhook-id"] for r in got}) == 1  # the same webhook-id on every attempt
    assert (delivery.status, delivery.attempts) == ("succeeded", 3)
    assert [a.status_code for a in delivery.attempt_log] == [500, 503, 200]
    times = [a.at for a in delivery.attempt_log]
    first_wait, second_wait = ((b - a).total_seconds() for a, b in itertools.pairwise(times))
    # Each attempt comes at or after its due time (a busy loop makes it later, never earlier): the
    # first wait is at least half of 0.2 s (jitter of 50-100 %), the second at least half of 0.4 s.
    assert first_wait >= 0.1
    assert second_wait >= 0.2


def test_each_wait_before_a_retry_doubles_within_its_jitter(svc: Services) -> None:
    base = svc.settings.webhooks.backoff_seconds
    for attempts in (1, 2, 3):
        full = base * 2 ** (attempts - 1)
        waits = [webhook_delivery._backoff(svc, attempts, None) for _ in range(50)]
        assert all(full * 0.5 <= wait <= full for wait in waits), (attempts, min(waits), max(waits))


def test_a_delivery_gives_up_after_the_set_attempts_and_honours_retry_after(
    svc: Services, admin: Principal, hook: Receiver
) -> None:
    webhook_id = subscribe(svc, admin, hook, "job_run.failed")
    hook.answers = [(429, {"Retry-After": "1"}), (502, {}), (502, {}), (502, {})]
    failing_job_run(svc, admin)
    (delivery,) = settled(svc, admin, webhook_id)
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert [a.error for a in delivery.attempt_log] == ["http_status"] * 3
    assert (delivery.attempt_log[1].at - delivery.attempt_log[0].at).total_seconds() >= 1.0  # Retry-After: 1
    assert webhook_delivery.deliver_due(svc) == 0
    assert len(hook.received) == 3


def test_deliveries_are_claimed_once_by_two_workers_sending_at_the_same_time(
    tmp_path: Path, database_url: str, hook: Receiver
) -> None:
    first = Services.open(settings_for(tmp_path / "home", database_url))
    second = Services.open(settings_for(tmp_path / "home", database_url))
    try:
        who = make_principal(first, "acme")[0]
        webhook_id = subscribe(first, who, hook, "*")
        with first.store.session() as session:
            for n in range(40):
                repo.enqueue(session, tenant_id=who.tenant_id, webhook_id=webhook_id, event_type="x.y", data={"n": n})
        done: list[int] = []
        workers = [
            threading.Thread(target=lambda s=s: done.append(webhook_delivery.deliver_due(s))) for s in (first, second)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert sum(done) == 40
        ids = [r.headers["webhook-id"] for r in hook.wait_for(40)]
        assert len(ids) == len(set(ids)) == 40
    finally:
        first.close()
        second.close()


def test_a_key_rotation_re_encrypts_the_signing_secrets_and_deliveries_stay_signed_with_them(
    svc: Services, admin: Principal, hook: Receiver
) -> None:
    webhook_id = subscribe(svc, admin, hook, "*")
    report = rotate_secrets(svc.store, svc.settings)
    assert (report.key_added, report.rotated, report.remaining, report.failed) == (True, 1, 0, [])
    with svc.store.session() as session:
        (row,) = repo.list_webhook_secrets(session)
    assert row.kid == report.active_kid != "k1"
    rotated = Services.open(svc.settings)  # a service that loads the new key ring
    try:
        delivery = webhook_delivery.test_webhook(rotated, admin, webhook_id)
    finally:
        rotated.close()
    assert delivery.status == "succeeded" and hook.received[-1].verified  # the same secret, re-encrypted


def test_deliveries_that_ended_long_ago_leave_the_log_and_the_others_stay(
    svc: Services, admin: Principal, hook: Receiver
) -> None:
    webhook_id = subscribe(svc, admin, hook, "*")
    old = webhook_delivery.test_webhook(svc, admin, webhook_id)
    recent = webhook_delivery.test_webhook(svc, admin, webhook_id)
    with svc.store.session() as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == old.id)
            .values(finished_at=utcnow() - timedelta(days=svc.settings.webhooks.keep_days, hours=1))
        )
        repo.enqueue(session, tenant_id=admin.tenant_id, webhook_id=webhook_id, event_type="x.y", data={})
    assert webhook_delivery.forget_old(svc) == 1
    left = {d.id: d.status for d in webhooks.list_deliveries(svc, admin, webhook_id)}
    assert old.id not in left and left[recent.id] == "succeeded"
    assert sorted(left.values()) == ["pending", "succeeded"]  # the pending one stays whatever its age


def test_a_disabled_webhook_gets_no_events_and_another_tenants_runs_reach_no_one_else(
    svc: Services, admin: Principal, hook: Receiver
) -> None:
    webhook_id = subscribe(svc, admin, hook, "*")
    failing_job_run(svc, make_principal(svc, "globex")[0])
    assert webhooks.list_deliveries(svc, admin, webhook_id) == []
    webhooks.update_webhook(svc, admin, webhook_id, enabled=False)
    failing_job_run(svc, admin)
    assert webhooks.list_deliveries(svc, admin, webhook_id) == []
    assert webhook_delivery.deliver_due(svc) == 0 and hook.received == []
