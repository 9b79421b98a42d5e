"""Quartz cron expressions (Databricks' schedule syntax) over ``croniter``.

Quartz has a seconds field first, an optional year last, ``?`` in exactly one of day-of-month and
day-of-week, and numbers weekdays 1 = Sunday ... 7 = Saturday. croniter (``second_at_beginning``)
reads most of that but numbers weekdays from 0 = Sunday, spells "last Friday" ``L5`` instead of
``6L``, and has no ``LW`` (last weekday of the month) or ``L-n`` (n days before the last day). This
module turns a Quartz expression into croniter's spelling, computes ``LW`` and ``L-n`` itself (one
concrete day per month), and pins the wall-clock rules Quartz follows across DST:

- a local time skipped by a spring-forward change fires once, at the end of the gap (02:30 -> 03:00);
- a local time that occurs twice on a fall-back day fires once, at its first occurrence.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from servicetsunami.errors import InvalidInput

_DOW_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_LAST_DAY = re.compile(r"^L(?:-(\d{1,2}))?$")  # L, L-3
_MONTHS_AHEAD = 12 * 30  # how far a schedule is searched for its next fire time


@dataclass(frozen=True, slots=True)
class Schedule:
    """A validated Quartz expression in a time zone."""

    expression: str
    timezone: str
    _croniter_fields: tuple[str, ...]
    _dom_rule: str | None  # "LW" or "L-n": computed here, not by croniter

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def next_after(self, moment: datetime, /) -> datetime:
        """The first fire time strictly after ``moment`` (aware), in UTC."""
        return next(self.fire_times(moment))

    def next_times(self, moment: datetime, /, count: int) -> list[datetime]:
        times = self.fire_times(moment)
        return [next(times) for _ in range(count)]

    def fire_times(self, moment: datetime, /) -> Iterator[datetime]:
        """Fire times strictly after ``moment``, in UTC, per the module docstring's DST rules."""
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        zone = self.zone
        last = moment.astimezone(UTC)
        cursor = moment.astimezone(zone)
        for candidate in self._candidates(cursor):
            fired = candidate.astimezone(UTC)
            wall = candidate.replace(tzinfo=None)
            first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
            if first != fired and first <= last:
                continue  # the second occurrence of a repeated wall-clock time
            if fired <= last:
                continue  # two skipped local times land on the same instant after a gap
            last = fired
            yield fired

    def _candidates(self, start: datetime) -> Iterator[datetime]:
        if self._dom_rule is None:
            it = croniter(" ".join(self._croniter_fields), start, second_at_beginning=True)
            for _ in range(100_000):
                yield it.get_next(datetime)
            return
        # One concrete day per month (LW, L-n): croniter runs with that day, kept only inside its month.
        year, month = start.year, start.month
        for _ in range(_MONTHS_AHEAD):
            day = _rule_day(self._dom_rule, year, month)
            fields = list(self._croniter_fields)
            fields[3] = str(day) if day is not None else "1"
            month_start = datetime(year, month, 1, tzinfo=start.tzinfo)
            begin = max(start, month_start - timedelta(seconds=1))
            if day is not None:
                it = croniter(" ".join(fields), begin, second_at_beginning=True)
                while True:
                    found = it.get_next(datetime)
                    if (found.year, found.month) != (year, month):
                        break
                    yield found
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _rule_day(rule: str, year: int, month: int) -> int | None:
    last = calendar.monthrange(year, month)[1]
    if rule == "LW":
        day = last
        while calendar.weekday(year, month, day) >= 5:
            day -= 1
        return day
    back = int(rule[2:])
    day = last - back
    return day if day >= 1 else None


def parse(expression: str, timezone: str = "UTC", /) -> Schedule:
    """Validate a Quartz expression and time zone; :class:`InvalidInput` names what is wrong."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidInput("a schedule needs a quartz_cron_expression, e.g. '0 0 2 * * ?' (02:00 every day)")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown timezone_id {timezone!r}; use an IANA name such as 'Europe/Berlin'") from None
    fields = expression.upper().split()
    if len(fields) not in (6, 7):
        raise InvalidInput(
            f"a Quartz expression has 6 or 7 fields (seconds minutes hours day-of-month month day-of-week "
            f"[year]), not {len(fields)}: {expression!r}"
        )
    dom, dow = fields[3], fields[5]
    if (dom == "?") == (dow == "?"):
        raise InvalidInput(
            f"exactly one of day-of-month and day-of-week must be '?' in a Quartz expression: {expression!r}"
        )
    dom_rule = None
    if dom in ("LW",) or (_LAST_DAY.match(dom) and dom != "L"):
        match = _LAST_DAY.match(dom)
        if match and int(match.group(1)) > 30:
            raise InvalidInput(f"L-n takes n from 0 to 30, not {dom!r}")
        dom_rule = dom
    elif "L" in dom and dom != "L":
        raise InvalidInput(f"day-of-month {dom!r} is not Quartz: use L, LW, L-n, nW or numbers")
    fields[5] = "*" if dow == "?" else _weekdays(dow)
    fields[3] = "*" if dom == "?" else dom
    schedule = Schedule(expression.strip(), timezone, tuple(fields), dom_rule)
    probe = list(fields)
    if dom_rule is not None:
        probe[3] = "1"
    try:
        croniter(" ".join(probe), datetime(2026, 1, 1, tzinfo=UTC), second_at_beginning=True)
        schedule.next_after(datetime.now(UTC))
    except (CroniterError, ValueError, KeyError) as exc:
        raise InvalidInput(f"invalid Quartz expression {expression!r}: {exc}") from None
    except StopIteration:
        raise InvalidInput(f"the Quartz expression {expression!r} never fires again") from None
    return schedule


def _weekdays(field: str) -> str:
    """Quartz weekdays (1 = Sunday) in croniter's numbering (0 = Sunday), names and ``L``/``#`` kept."""
    parts = []
    for part in field.split(","):
        if part in ("*", "?"):
            parts.append("*")
            continue
        if m := re.fullmatch(r"(\w+)L", part):
            parts.append(f"L{_day(m.group(1))}")
        elif m := re.fullmatch(r"(\w+)#([1-5])", part):
            parts.append(f"{_day(m.group(1))}#{m.group(2)}")
        elif m := re.fullmatch(r"(\w+|\*)(?:-(\w+))?(?:/(\d+))?", part):
            start, end, step = m.groups()
            text = "*" if start == "*" else _day(start)
            if end is not None:
                text += f"-{_day(end)}"
            if step is not None:
                text += f"/{step}"
            parts.append(text)
        elif part == "L":
            parts.append("6")  # Quartz: L alone in day-of-week is Saturday
        else:
            raise InvalidInput(f"day-of-week {field!r} is not Quartz: use 1-7 (1 = Sunday), SUN-SAT, nL or n#k")
    return ",".join(parts)


def _day(token: str) -> str:
    if token in _DOW_NAMES:
        return token
    if not token.isdigit() or not 1 <= int(token) <= 7:
        raise InvalidInput(f"a Quartz day of week is 1-7 (1 = Sunday) or SUN-SAT, not {token!r}")
    return str(int(token) - 1)
