"""The query watchdog: one thread, deadlines in a heap."""

from __future__ import annotations

import threading

from servicetsunami.engines.local.watchdog import Watchdog


def test_a_block_past_its_deadline_gets_its_callback() -> None:
    fired = threading.Event()
    with Watchdog().guard(0.05, fired.set):
        assert fired.wait(10)


def test_a_block_that_ends_in_time_is_not_interrupted_and_later_ones_still_are() -> None:
    dog = Watchdog()
    early = threading.Event()
    with dog.guard(0.2, early.set):
        pass
    late = threading.Event()
    with dog.guard(0.3, late.set):
        assert late.wait(10)
    assert not early.is_set()


def test_a_shorter_deadline_armed_later_fires_first() -> None:
    dog = Watchdog()
    order: list[str] = []
    done = threading.Event()
    with dog.guard(30, lambda: order.append("long")), dog.guard(0.05, lambda: (order.append("short"), done.set())):
        assert done.wait(10)
    assert order == ["short"]
