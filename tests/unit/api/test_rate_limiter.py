"""The moving-window rate limiter of the REST door, shared by the worker processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from servicetsunami.api.limits import RateLimiter
from servicetsunami.errors import RateLimited


def test_the_hit_past_the_limit_is_refused_with_the_seconds_to_wait(tmp_path: Path) -> None:
    limiter = RateLimiter(tmp_path / "limits.db", query="3/minute")
    for _ in range(3):
        limiter.hit("query", "tenant", "key:a", what="queries")
    with pytest.raises(RateLimited) as refused:
        limiter.hit("query", "tenant", "key:a", what="queries")
    assert 1 <= refused.value.retry_after <= 60
    assert "too many queries" in refused.value.message
    limiter.hit("query", "tenant", "key:b", what="queries")  # another principal has its own window
    limiter.close()


def _use_up(path: Path, times: int) -> None:
    limiter = RateLimiter(path, login="10/minute")
    for _ in range(times):
        limiter.hit("login", "ada@example.com", what="login attempts")
    limiter.close()


def test_worker_processes_count_against_one_allowance(tmp_path: Path) -> None:
    path = tmp_path / "limits.db"
    workers = [multiprocessing.get_context("spawn").Process(target=_use_up, args=(path, 4)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    here = RateLimiter(path, login="10/minute")
    here.hit("login", "ada@example.com", what="login attempts")
    here.hit("login", "ada@example.com", what="login attempts")  # 4 + 4 + 2 = the 10 allowed
    with pytest.raises(RateLimited):
        here.hit("login", "ada@example.com", what="login attempts")
    here.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _waits(limiter: RateLimiter) -> int | None:
    try:
        limiter.check_backoff("login", "ada@example.com", "203.0.113.5", what="failed logins")
    except RateLimited as exc:
        return exc.retry_after
    return None


def test_repeated_failures_back_off_doubling_up_to_the_ceiling(tmp_path: Path) -> None:
    clock = Clock()
    limiter = RateLimiter(tmp_path / "limits.db", backoff_after=3, backoff_max_seconds=10, clock=clock)
    waits = []
    for _ in range(7):
        waits.append(_waits(limiter))
        limiter.record_failure("login", "ada@example.com", "203.0.113.5")
        clock.now += 0.5
    assert waits == [None, None, None, 1, 2, 4, 8]  # each try made right after the previous failure
    assert _waits(limiter) == 10
    limiter.check_backoff("login", "ada@example.com", "198.51.100.7", what="failed logins")  # another address
    clock.now += 10
    assert _waits(limiter) is None
    limiter.close()


def test_a_success_or_a_quiet_period_starts_the_backoff_over(tmp_path: Path) -> None:
    clock = Clock()
    limiter = RateLimiter(tmp_path / "limits.db", backoff_after=2, backoff_max_seconds=60, clock=clock)
    for _ in range(3):
        limiter.record_failure("login", "ada@example.com", "203.0.113.5")
    assert _waits(limiter) == 2
    limiter.clear_failures("login", "ada@example.com", "203.0.113.5")
    assert _waits(limiter) is None
    limiter.record_failure("login", "ada@example.com", "203.0.113.5")
    clock.now += 61  # a quiet period as long as the longest wait
    limiter.record_failure("login", "ada@example.com", "203.0.113.5")
    assert _waits(limiter) is None  # counted as the first failure again
    limiter.close()
