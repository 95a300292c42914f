"""Capacity schedules: which `[schedule: NAME]` limits are in force at `now`, and when that changes.

Pure functions of the schedules and an aware `now`. Hours are wall-clock times in the
schedule's own time zone (zoneinfo, so DST-correct; a time the clocks skip means the end of the
gap, a time they repeat its first occurrence); an interval belongs to the day it
starts on, may wrap midnight, starts `lead-minutes` early and ends at its end time.
Several schedules in force: the highest min and the lowest max of each dimension.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from functools import cache
from zoneinfo import ZoneInfo

from .model import Dim
from .rules import DimensionRules, Schedule, TargetRules

UTC = timezone.utc


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _moment(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first UTC moment whose wall-clock time in `zone` is at or after `day` `wall`.

    A time that exists once is itself; an ambiguous one (clocks set back) its first occurrence;
    one the clocks skip (set forward) the moment the gap ends (02:30 in a 02:00-03:00 gap is 03:00)."""
    local = datetime.combine(day, wall)
    early = local.replace(tzinfo=zone).astimezone(UTC)  # fold 0: the offset before any transition
    if early.astimezone(zone).replace(tzinfo=None) == local:
        return early
    # in a gap: fold 1 reads it with the offset after the transition, which lies between the two
    late, before = early, local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    while late - before > timedelta(seconds=1):  # a few steps: a gap is an hour or so, at most a day
        middle = before + (late - before) // 2
        if middle.astimezone(zone).replace(tzinfo=None) >= local:
            late = middle
        else:
            before = middle
    return late.replace(microsecond=0)


def _local_intervals(s: Schedule, day: date) -> Iterator[tuple[datetime, datetime]]:
    """The UTC [start - lead, end) intervals of the schedule that start on local `day`."""
    if day.weekday() not in s.days:
        return
    zone = _zone(s.timezone)
    lead = timedelta(minutes=s.lead_minutes)
    for w in s.hours:
        start = _moment(day, w.start, zone)
        end_day = day if w.end > w.start else day + timedelta(days=1)  # equal ends: the whole day round
        end = _moment(end_day, w.end, zone)
        yield start - lead, end


def intervals(s: Schedule, now: datetime, days_before: int = 1, days_after: int = 1
              ) -> Iterator[tuple[datetime, datetime]]:
    """The schedule's UTC intervals (lead included) starting on local days around `now`."""
    today = now.astimezone(_zone(s.timezone)).date()
    for offset in range(-days_before, days_after + 1):
        yield from _local_intervals(s, today + timedelta(days=offset))


def is_in_force(s: Schedule, now: datetime) -> bool:
    """True when `now` lies in one of the schedule's intervals (lead included)."""
    return any(start <= now < end for start, end in intervals(s, now))


def in_force(schedules: tuple[Schedule, ...], now: datetime) -> tuple[Schedule, ...]:
    """The schedules in force at `now`, in configuration order."""
    return tuple(s for s in schedules if is_in_force(s, now))


def next_change(schedules: tuple[Schedule, ...], now: datetime) -> datetime | None:
    """The next time (after `now`, within a week) the set of schedules in force changes."""
    current = in_force(schedules, now)
    times = sorted({t for s in schedules for interval in intervals(s, now, 1, 8) for t in interval if t > now})
    # touching or overlapping intervals: a boundary where nothing changes is no change
    return next((t for t in times if in_force(schedules, t) != current), None)


def next_floor_end(schedules: tuple[Schedule, ...], now: datetime) -> datetime | None:
    """When the next scheduled floor (a schedule with a min) ends, after `now`, within a week."""
    ends = [end for s in schedules if s.min_reads or s.min_writes
            for _, end in intervals(s, now, 1, 8) if end > now]
    return min(ends, default=None)


def _dim_limits(base: DimensionRules, active: tuple[Schedule, ...], dim: Dim) -> DimensionRules:
    """One dimension's rules with the min and max of the schedules in force."""
    mins = [m for m in (s.limit(dim, "min") for s in active) if m is not None]
    maxes = [m for m in (s.limit(dim, "max") for s in active) if m is not None]
    if not mins and not maxes:
        return base
    return replace(base, min_provisioned=max(mins) if mins else base.min_provisioned,
                   max_provisioned=min(maxes) if maxes else base.max_provisioned)


def effective_rules(rules: TargetRules, now: datetime) -> tuple[TargetRules, tuple[Schedule, ...]]:
    """The rules with the limits of the schedules in force at `now`, and those schedules."""
    if not rules.schedules:
        return rules, ()
    active = in_force(rules.schedules, now)
    if not active:
        return rules, ()
    return replace(rules, reads=_dim_limits(rules.reads, active, Dim.READS),
                   writes=_dim_limits(rules.writes, active, Dim.WRITES)), active


def describe(active: tuple[Schedule, ...]) -> str:
    """How a reason names the schedules in force."""
    names = ", ".join(s.name for s in active)
    return f"schedule {names} in force" if len(active) == 1 else f"schedules {names} in force"
