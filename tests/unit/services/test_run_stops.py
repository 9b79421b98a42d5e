"""A run's stop reaches its statements even when it comes before they began executing: DuckDB loses
such an interrupt, so the stops of statements still running are made again until they end."""

from __future__ import annotations

import threading

from servicetsunami.services.runs.stops import Stops


def test_a_stop_lost_before_its_statement_started_is_made_again_until_the_statement_ends() -> None:
    stops, calls, ended = Stops(), [], threading.Event()

    def stop() -> None:  # the first call comes too early and is lost; the second ends the statement
        calls.append(1)
        if len(calls) == 2:
            ended.set()

    release = stops.add(stop)
    stops.stop_all()
    assert ended.wait(5)
    release()


def test_a_statement_that_starts_after_the_stop_is_stopped_again_too_and_an_ended_one_no_more() -> None:
    stops = Stops()
    stops.stop_all()
    calls: list[int] = []
    twice = threading.Event()

    def stop() -> None:
        calls.append(1)
        if len(calls) == 2:
            twice.set()

    release = stops.add(stop)
    assert twice.wait(5)
    release()
    count = len(calls)
    assert not threading.Event().wait(0.3)  # the next rounds would have come by now
    assert len(calls) == count
