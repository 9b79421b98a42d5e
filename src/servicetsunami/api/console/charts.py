"""Small charts drawn on the server as SVG (no script): the overview's syncs and runs per day."""

from __future__ import annotations

import dataclasses
from datetime import date

from servicetsunami.services.ops.activity import Activity

HEIGHT = 120  # of the plot, in SVG units; labels go below it
BAR = 9
GAP = 8  # between days


@dataclasses.dataclass(frozen=True, slots=True)
class Bar:
    x: int
    y: float
    height: float
    series: str  # syncs or runs: the CSS class colouring it
    count: int
    day: str


@dataclasses.dataclass(frozen=True, slots=True)
class DayChart:
    bars: list[Bar]
    labels: list[tuple[int, str]]  # (x, day of the month) under each day
    width: int
    height: int
    top: int  # the largest count, the plot's full height
    total_syncs: int
    total_runs: int


def day_chart(activity: Activity, /) -> DayChart:
    """Two bars a day (syncs, then runs), scaled to the busiest bar; a day without either has none."""
    top = max([max(d.syncs, d.runs) for d in activity.days] + [1])
    bars: list[Bar] = []
    labels: list[tuple[int, str]] = []
    step = 2 * BAR + GAP
    for i, d in enumerate(activity.days):
        x = i * step + GAP // 2
        for offset, series, count in ((0, "syncs", d.syncs), (BAR, "runs", d.runs)):
            if count:
                h = max(HEIGHT * count / top, 2.0)
                bars.append(Bar(x + offset, round(HEIGHT - h, 1), round(h, 1), series, count, d.day))
        labels.append((x + BAR, str(date.fromisoformat(d.day).day)))
    return DayChart(
        bars=bars,
        labels=labels,
        width=len(activity.days) * step,
        height=HEIGHT + 16,
        top=top,
        total_syncs=sum(d.syncs for d in activity.days),
        total_runs=sum(d.runs for d in activity.days),
    )
