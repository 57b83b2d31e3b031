"""Cron schedules in a time zone, as data intervals — DST-safe.

A scheduled run covers the interval between two consecutive cron ticks
``[start, end)`` and fires at ``end``; its logical date is ``start`` (the
Airflow convention, so ``{{ ds }}`` names the day the data belongs to).

Daylight saving time, with croniter on zone-aware datetimes:

* spring forward: a wall time that does not exist (02:30 in Europe/Berlin on
  the last Sunday of March) fires at the first instant after it (03:00), once;
* fall back: a wall time that happens twice fires ONCE for schedules with fixed
  hours (``30 2 * * *``: the first 02:30), but every time for schedules whose
  hour field is ``*`` or a step (``*/30 * * * *`` fires each real half hour),
  because those mean elapsed time, not a time of day.

>>> import datetime as dt
>>> s = Schedule("30 2 * * *", "Europe/Berlin")
>>> [str(t) for t in s.ticks(dt.datetime(2026, 10, 24, 12, tzinfo=dt.UTC), 2)]
['2026-10-25 00:30:00+00:00', '2026-10-26 01:30:00+00:00']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crane.errors import ConfigError

Interval = tuple[dt.datetime, dt.datetime]


class Schedule:
    """A cron expression in a time zone; ticks and intervals come back in UTC."""

    def __init__(self, cron: str, timezone: str = "UTC") -> None:
        from croniter import croniter

        if not croniter.is_valid(cron):
            raise ConfigError(f"invalid cron expression {cron!r}", field="schedule")
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {timezone!r}", field="timezone") from None
        self.cron = cron
        fields = cron.split()
        # hour field "*" or "*/n": elapsed time, every real occurrence counts
        self.wall_clock = len(fields) >= 2 and not fields[1].startswith("*")

    def ticks(self, after: dt.datetime, count: int | None = None) -> Iterator[dt.datetime]:
        """Tick times strictly after ``after`` (aware), in the schedule's zone."""
        from croniter import croniter

        local = after.astimezone(self.tz)
        it = croniter(self.cron, local)
        # a tick whose wall time is not later than the last one is the repeated hour after
        # falling back: for a time-of-day schedule, that time of day has already run
        last_wall = local.replace(tzinfo=None)
        produced = 0
        while count is None or produced < count:
            tick: dt.datetime = it.get_next(dt.datetime)
            wall = tick.replace(tzinfo=None)
            if self.wall_clock and wall <= last_wall:
                continue
            last_wall = wall
            produced += 1
            yield tick.astimezone(dt.UTC)  # UTC: aware datetimes of one zone compare ignoring fold

    def previous_tick(self, at: dt.datetime) -> dt.datetime:
        """The last tick at or before ``at`` (UTC)."""
        from croniter import croniter

        local = at.astimezone(self.tz)
        it = croniter(self.cron, local + dt.timedelta(microseconds=1))
        tick: dt.datetime = it.get_prev(dt.datetime)
        if self.wall_clock and tick.fold:
            first = tick.replace(fold=0)  # the repeated hour: this time of day ran at its first
            if first.utcoffset() != tick.utcoffset():
                tick = first
        return tick.astimezone(dt.UTC)

    def intervals(self, start: dt.datetime, end: dt.datetime) -> list[Interval]:
        """Every whole interval with ``start <= interval start`` and ``interval end <= end``."""
        first = self.previous_tick(start)
        if first < start:
            first = next(self.ticks(start - dt.timedelta(microseconds=1), 1))
        found: list[Interval] = []
        left = first
        for right in self.ticks(first):
            if right > end:
                break
            found.append((left, right))
            left = right
        return found

    def due(
        self,
        now: dt.datetime,
        last: dt.datetime | None,
        catchup: bool,
        max_runs: int | None = None,
        limit: int | None = None,
    ) -> list[Interval]:
        """Intervals to run now, oldest first, given the last logical date already fired.

        Nothing fired yet: only the latest complete interval (there is no start date to
        catch up from). ``catchup: false``: only the latest. ``max_runs``: the N most
        recent. ``limit``: at most that many (free run slots) — a scheduler down for a
        month on a minutely schedule walks only the ticks it can use.
        """
        latest_end = self.previous_tick(now)
        if last is None or not catchup or max_runs is not None:
            count = 1 if last is None or not catchup else max_runs or 0
            found = [i for i in self.latest(latest_end, count) if last is None or i[0] > last]
            return found[:limit] if limit is not None else found
        ticks = self.ticks(last)
        left = next(ticks)  # the end of the last fired interval: the first missed one's start
        missed: list[Interval] = []
        for right in ticks:
            if right > latest_end or (limit is not None and len(missed) >= limit):
                break
            missed.append((left, right))
            left = right
        return missed

    def latest(self, end: dt.datetime, count: int) -> list[Interval]:
        """The ``count`` intervals ending at or before the tick ``end``, oldest first."""
        ends = [end]
        for _ in range(count):
            ends.append(self.previous_tick(ends[-1] - dt.timedelta(microseconds=1)))
        return list(reversed([(ends[i + 1], ends[i]) for i in range(count)]))

    def next_fire(self, now: dt.datetime) -> dt.datetime:
        """When the next interval closes (the scheduler sleeps until then)."""
        return next(self.ticks(now, 1))
