"""Cron arithmetic: when is the next run, and is one due now.

A missed run (operator down, cluster busy) is run once when the operator comes back, never
one run per missed tick: only the latest tick at or before `now` counts.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from croniter import croniter

from retrain_contract.api.spec import ScheduleSpec


def next_tick(schedule: ScheduleSpec, after: dt.datetime) -> dt.datetime:
    """The first tick strictly after `after`, in UTC; the cron is read in the schedule's time zone."""
    zone = ZoneInfo(schedule.time_zone)
    iterator = croniter(schedule.cron, after.astimezone(zone))
    return iterator.get_next(dt.datetime).astimezone(dt.UTC)


def latest_tick(schedule: ScheduleSpec, at_or_before: dt.datetime) -> dt.datetime:
    """The last tick at or before the given moment, in UTC."""
    zone = ZoneInfo(schedule.time_zone)
    probe = at_or_before.astimezone(zone) + dt.timedelta(seconds=1)
    iterator = croniter(schedule.cron, probe)
    return iterator.get_prev(dt.datetime).astimezone(dt.UTC)


def due_tick(
    schedule: ScheduleSpec,
    last_consumed: dt.datetime | None,
    created: dt.datetime,
    now: dt.datetime,
) -> dt.datetime | None:
    """The tick to run now, or None.

    Ticks before the policy existed never count; ticks already consumed never count twice;
    of several missed ticks only the latest one is returned; a tick older than the
    schedule's starting deadline is dropped.
    """
    floor = last_consumed if last_consumed and last_consumed > created else created
    tick = latest_tick(schedule, now)
    if tick <= floor:
        return None
    if schedule.starting_deadline is not None and now - tick > schedule.starting_deadline:
        return None
    return tick
