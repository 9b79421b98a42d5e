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
