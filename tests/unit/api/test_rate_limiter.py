"""The moving-window rate limiter of the REST door."""

from __future__ import annotations

import pytest

from servicetsunami.api.limits import RateLimiter
from servicetsunami.errors import RateLimited


def test_the_hit_past_the_limit_is_refused_with_the_seconds_to_wait() -> None:
    limiter = RateLimiter(query="3/minute")
    for _ in range(3):
        limiter.hit("query", "tenant", "key:a", what="queries")
    with pytest.raises(RateLimited) as refused:
        limiter.hit("query", "tenant", "key:a", what="queries")
    assert 1 <= refused.value.retry_after <= 60
    assert "too many queries" in refused.value.message
    limiter.hit("query", "tenant", "key:b", what="queries")  # another principal has its own window


def test_each_of_several_workers_allows_its_share_so_together_they_stay_within_the_limit() -> None:
    workers = [RateLimiter(share=2, login="10/minute") for _ in range(2)]
    allowed = 0
    for worker in workers:
        for _ in range(10):
            try:
                worker.hit("login", "ada@example.com", what="login attempts")
                allowed += 1
            except RateLimited:
                pass
    assert allowed == 10


def test_a_share_never_drops_below_one_request() -> None:
    limiter = RateLimiter(share=8, login="2/minute")
    limiter.hit("login", "x", what="login attempts")
    with pytest.raises(RateLimited):
        limiter.hit("login", "x", what="login attempts")
