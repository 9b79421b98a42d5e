"""Golden fire times of Quartz expressions: Quartz's weekday numbering, L, W, LW, L-n, #, ranges,
steps, seconds, years, and the DST rules (a skipped time fires once at the end of the gap, a
repeated one once at its first occurrence)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from servicetsunami.errors import InvalidInput
from servicetsunami.services.pipelines import quartz

LA = "America/Los_Angeles"


def fires(expression: str, start: str, count: int = 4, zone: str = "UTC") -> list[str]:
    tz = ZoneInfo(zone)
    schedule = quartz.parse(expression, zone)
    begin = datetime.fromisoformat(start).replace(tzinfo=tz)
    return [t.astimezone(tz).isoformat() for t in schedule.next_times(begin, count)]


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        # seconds field and steps
        ("*/15 * * * * ?", "2026-01-01T00:00:00", ["00:00:15", "00:00:30", "00:00:45", "00:01:00"]),
        ("0 0/20 9-10 * * ?", "2026-01-01T00:00:00", ["09:00:00", "09:20:00", "09:40:00", "10:00:00"]),
        ("0 15,45 12 * * ?", "2026-01-01T00:00:00", ["12:15:00", "12:45:00", "12:15:00", "12:45:00"]),
    ],
)
def test_seconds_ranges_lists_and_steps(expression: str, start: str, expected: list[str]) -> None:
    assert [f[11:19] for f in fires(expression, start)] == expected


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        # Quartz numbers weekdays 1 = Sunday: 2-6 is Monday to Friday (croniter alone reads Tuesday to Saturday)
        ("0 0 0 ? * 2-6", "2026-01-02T12:00:00", ["2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08"]),
        ("0 0 0 ? * MON-FRI", "2026-01-02T12:00:00", ["2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08"]),
        ("0 0 0 ? * 1", "2026-01-01T00:00:00", ["2026-01-04", "2026-01-11", "2026-01-18", "2026-01-25"]),
        ("0 0 0 ? * 7", "2026-01-01T00:00:00", ["2026-01-03", "2026-01-10", "2026-01-17", "2026-01-24"]),
        ("0 0 0 ? * 1/2", "2026-01-02T00:00:00", ["2026-01-03", "2026-01-04", "2026-01-06", "2026-01-08"]),
        # third Friday (6#3), last Friday (6L)
        ("0 0 0 ? * 6#3", "2026-01-01T00:00:00", ["2026-01-16", "2026-02-20", "2026-03-20", "2026-04-17"]),
        ("0 0 0 ? * FRI#3", "2026-01-01T00:00:00", ["2026-01-16", "2026-02-20", "2026-03-20", "2026-04-17"]),
        ("0 0 0 ? * 6L", "2026-01-01T00:00:00", ["2026-01-30", "2026-02-27", "2026-03-27", "2026-04-24"]),
        # last day, last weekday, n days before the last, nearest weekday
        ("0 0 0 L * ?", "2026-01-01T00:00:00", ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]),
        ("0 0 0 LW * ?", "2026-01-01T00:00:00", ["2026-01-30", "2026-02-27", "2026-03-31", "2026-04-30"]),
        ("0 0 0 L-2 * ?", "2026-01-01T00:00:00", ["2026-01-29", "2026-02-26", "2026-03-29", "2026-04-28"]),
        ("0 0 0 15W * ?", "2026-01-01T00:00:00", ["2026-01-15", "2026-02-16", "2026-03-16", "2026-04-15"]),
        ("0 0 0 L 2 ?", "2026-01-01T00:00:00", ["2026-02-28", "2027-02-28", "2028-02-29", "2029-02-28"]),
        # the year field
        ("0 0 12 ? 1 MON 2027", "2026-01-01T00:00:00", ["2027-01-04", "2027-01-11", "2027-01-18", "2027-01-25"]),
    ],
)
def test_days_follow_quartz(expression: str, start: str, expected: list[str]) -> None:
    assert [f[:10] for f in fires(expression, start)] == expected


def test_a_time_skipped_by_spring_forward_fires_once_at_the_end_of_the_gap() -> None:
    assert fires("0 30 2 * * ?", "2026-03-07T12:00:00", 3, LA) == [
        "2026-03-08T03:00:00-07:00",
        "2026-03-09T02:30:00-07:00",
        "2026-03-10T02:30:00-07:00",
    ]


def test_a_time_repeated_by_fall_back_fires_once_at_its_first_occurrence() -> None:
    assert fires("0 30 1 * * ?", "2026-10-31T12:00:00", 3, LA) == [
        "2026-11-01T01:30:00-07:00",
        "2026-11-02T01:30:00-08:00",
        "2026-11-03T01:30:00-08:00",
    ]


def test_a_sub_hourly_schedule_neither_repeats_nor_doubles_across_dst() -> None:
    assert fires("0 */30 * * * ?", "2026-11-01T00:50:00", 4, LA) == [
        "2026-11-01T01:00:00-07:00",
        "2026-11-01T01:30:00-07:00",
        "2026-11-01T02:00:00-08:00",
        "2026-11-01T02:30:00-08:00",
    ]
    assert fires("0 */30 * * * ?", "2026-03-08T01:10:00", 3, LA) == [
        "2026-03-08T01:30:00-08:00",
        "2026-03-08T03:00:00-07:00",
        "2026-03-08T03:30:00-07:00",
    ]


def test_the_seeds_schedule_fires_at_two_in_the_morning_in_its_zone() -> None:
    assert fires("0 0 2 * * ?", "2026-06-01T00:00:00", 1, LA) == ["2026-06-01T02:00:00-07:00"]


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 * * *",  # five fields: cron, not Quartz
        "0 0 0 * * 1",  # neither day field is ?
        "0 0 0 ? * ?",  # both are
        "0 0 0 ? * 8",  # weekdays are 1-7
        "0 0 0 5L * ?",  # not Quartz
        "0 61 0 * * ?",  # minute out of range
        "0 0 0 L-31 * ?",
        "",
    ],
)
def test_expressions_quartz_refuses_are_refused(expression: str) -> None:
    with pytest.raises(InvalidInput):
        quartz.parse(expression)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(InvalidInput):
        quartz.parse("0 0 2 * * ?", "Mars/Olympus_Mons")
