"""Webhooks without anything running: the signature matches the Standard Webhooks reference
vector, event patterns match as documented, unknown events are refused, secrets are checked."""

from __future__ import annotations

import pytest

from servicetsunami.errors import InvalidInput
from servicetsunami.services.ops import webhooks
from servicetsunami.services.ops.webhook_delivery import _retry_after, signature
from servicetsunami.store.repositories.webhooks import matches, new_delivery_id


def test_the_signature_is_the_one_the_standard_webhooks_libraries_compute() -> None:
    # The reference vector of the Standard Webhooks libraries' own tests.
    sent = signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert sent == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(
    ("patterns", "event", "expected"),
    [
        (["job_run.failed"], "job_run.failed", True),
        (["job_run.failed"], "task_run.failed", False),
        (["sync.*"], "sync.started", True),
        (["*.failed"], "notebook_run.failed", True),
        (["*.failed"], "notebook_run.timed_out", False),
        (["*"], "statement.canceled", True),
        ([], "sync.succeeded", False),
    ],
)
def test_event_patterns_match_a_whole_kind_or_event(patterns: list[str], event: str, expected: bool) -> None:
    assert matches(patterns, event) is expected


def test_events_are_checked_against_the_run_kinds_and_duplicates_dropped() -> None:
    assert webhooks.check_events(["sync.*", " sync.* ", "*.timed_out"]) == ["sync.*", "*.timed_out"]
    assert "job_run.failed" in webhooks.known_event_types()
    for bad in ([], ["sync"], ["sync.exploded"], ["nothing.failed"], ["mirror_replay.failed"]):
        with pytest.raises(InvalidInput):
            webhooks.check_events(bad)


def test_a_given_secret_must_be_whsec_and_base64_of_enough_bytes() -> None:
    generated = webhooks.generate_secret()
    assert generated.startswith("whsec_") and len(webhooks.signing_key(generated)) == 32
    assert webhooks._check_secret(generated) == generated
    for bad in ("short", "whsec_c2hvcnQ=", "whsec_not base64!", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"):
        with pytest.raises(InvalidInput):
            webhooks._check_secret(bad)


def test_retry_after_is_read_in_seconds_or_as_a_date() -> None:
    assert _retry_after("7") == 7.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: now
    assert _retry_after("soon") is None and _retry_after(None) is None


def test_delivery_ids_are_unique_and_shaped_like_the_specifications() -> None:
    ids = {new_delivery_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(i.startswith("msg_") for i in ids)
