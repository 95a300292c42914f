"""Simulated DynamoDB, CloudWatch and circuit breaker: the daemon's ports over a World."""
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from ..model import (
    CONSUMED_METRIC,
    THROTTLE_METRIC,
    AwsError,
    Capacity,
    Datapoints,
    Dim,
    MetricQuery,
    TableDescription,
    TableNotFound,
    Target,
    TargetStatus,
    Update,
)
from .world import LAG, World

_MICROSECOND = timedelta(microseconds=1)
_US_PER_MINUTE = 60_000_000

# (first visible minute, end minute, buckets or None when every bucket is one trace minute)
_Layout = tuple[int, int, list[tuple[datetime, int, int]] | None]


@functools.cache
def _target(name: str) -> Target:
    """One Target object per name, so the adapters' hot path compares targets by identity."""
    return Target(name)


class SimTables:
    """TableAdmin over one simulated table."""

    def __init__(self, world: World, name: str) -> None:
        self.world = world
        self.name = name
        self._described: tuple[tuple, TableDescription] | None = None

    def list_tables(self) -> list[str]:
        """The one simulated table."""
        return [self.name]

    def describe(self, table: str) -> TableDescription:
        """DescribeTable as DynamoDB would answer it at the virtual now."""
        if table != self.name:
            raise self._not_found(table)
        w = self.world
        rule = w.rule
        today = rule.count_on(w.minute)
        key = (w.reads, w.writes, w.busy, today, rule.last, w.last_increase, w.billing)
        if self._described is not None and self._described[0] == key:
            return self._described[1]  # passes between changes ask the same question: answer from cache
        status = TargetStatus(
            target=_target(self.name),
            status="UPDATING" if w.busy else "ACTIVE",
            billing_mode=w.billing,
            capacity=Capacity(w.reads, w.writes),
            decreases_today=today,
            last_decrease=None if rule.last is None else w.time_of(rule.last),
            last_increase=None if w.last_increase is None else w.time_of(w.last_increase),
        )
        description = TableDescription(status)
        self._described = (key, description)
        return description

    def update(self, update: Update) -> None:
        """UpdateTable: in force from the next minute; refusals raise as DynamoDB's would."""
        if update.table != self.name:
            raise self._not_found(update.table)
        problem = _invalid(update)
        if problem:
            self.world.rejected += 1
            raise AwsError(problem, code="ValidationException")
        if update.billing_mode is not None:
            cap = update.table_capacity
            self.world.switch(update.billing_mode, cap.reads if cap else 0, cap.writes if cap else 0)
            return
        assert update.table_capacity is not None, "_invalid refuses an update with neither capacity nor mode"
        self.world.update(update.table_capacity.reads, update.table_capacity.writes)

    def _not_found(self, table: str) -> TableNotFound:
        return TableNotFound(f"Requested resource not found: Table: {table} not found",
                             code="ResourceNotFoundException")


def _invalid(update: Update) -> str:
    """Why DynamoDB would reject this update outright, or "" (the simulated table has no GSI)."""
    if update.index_capacities:
        return f"The table does not have the specified index: {', '.join(sorted(update.index_capacities))}"
    if update.table_capacity is None and update.billing_mode is None:
        return "At least one of ProvisionedThroughput or GlobalSecondaryIndexUpdates is required"
    return ""


class SimMetrics:
    """MetricsSource over one simulated table: Sums of what each minute served and throttled."""

    def __init__(self, world: World, name: str) -> None:
        self.world = world
        self.target = _target(name)
        self._stamps: list[datetime] | None = None  # start of each trace minute, built on first use
        self.series: Mapping[str, list[float]] = {
            CONSUMED_METRIC[Dim.READS]: world.served_reads,
            CONSUMED_METRIC[Dim.WRITES]: world.served_writes,
            THROTTLE_METRIC[Dim.READS]: world.throttled_reads,
            THROTTLE_METRIC[Dim.WRITES]: world.throttled_writes,
        }
        # the (stamp, Sum) datapoint of each visible minute, by metric, built once: a minute's values are
        # final once it is served, and each pass asks again for the minutes the passes before it saw
        self._points: dict[str, list[tuple[datetime, float]]] = {metric: [] for metric in self.series}

    def fetch(self, queries: Sequence[MetricQuery]) -> dict[MetricQuery, Datapoints]:
        """Sum per bucket of `period` s anchored at the query's start, visible minutes only, oldest first."""
        # minute k is on CloudWatch from the start of minute k + LAG; never zero-filled
        visible = min(self.world.minute - LAG + 1, self.world.trace.minutes)
        layouts: dict[tuple, _Layout] = {}  # a pass asks for several series over the same window
        out: dict[MetricQuery, Datapoints] = {}
        for q in queries:
            series = self.series.get(q.metric)
            if series is None or (q.target is not self.target and q.target != self.target):
                out[q] = []
                continue
            key = (q.start, q.end, q.period)
            layout = layouts.get(key)
            if layout is None:
                layout = layouts[key] = self._layout(q.start, q.end, q.period, visible)
            lo, hi, buckets = layout
            if buckets is None:
                points = self._points[q.metric]
                if len(points) < hi:
                    assert self._stamps is not None, "_layout builds the minute stamps before it returns no buckets"
                    done = len(points)
                    points.extend(zip(self._stamps[done:hi], series[done:hi], strict=True))
                out[q] = points[lo:hi]
            else:
                out[q] = [(stamp, sum(series[b_lo:b_hi])) for stamp, b_lo, b_hi in buckets]
        return out

    def fetch_history(self, queries: Sequence[MetricQuery], stat: str = "Sum") -> dict[MetricQuery, Datapoints]:
        """Long series, for capacity-mode auto: the Sums of the visible minutes (no other statistic is kept)."""
        if stat != "Sum":
            return {q: [] for q in queries}
        return self.fetch(queries)

    def _layout(self, start: datetime, end: datetime, period: int, visible: int) -> _Layout:
        """Minutes [lo, hi) of the window that are visible, and their buckets.

        Buckets are None when each is one minute of the trace (the common query), else
        (bucket start, first minute, end minute) of each bucket holding a visible minute.
        """
        if visible <= 0 or period <= 0:
            return 0, 0, []
        t0 = self.world.trace.start
        start_us = (start - t0) // _MICROSECOND
        # a minute's datapoint is stamped at its start: minute k is in [start, end) when its stamp is
        lo = max(0, _ceil_minutes(start_us))
        hi = min(visible, _ceil_minutes((end - t0) // _MICROSECOND))
        if lo >= hi:
            return 0, 0, []
        if period == 60 and start_us % _US_PER_MINUTE == 0:
            if self._stamps is None:
                self._stamps = [t0 + timedelta(minutes=k) for k in range(self.world.trace.minutes)]
            return lo, hi, None
        period_us = period * 1_000_000
        buckets = []
        bucket = (lo * _US_PER_MINUTE - start_us) // period_us
        b_lo = lo
        while b_lo < hi:
            b_hi = min(hi, _ceil_minutes(start_us + (bucket + 1) * period_us))
            if b_lo < b_hi:
                buckets.append((start + timedelta(seconds=bucket * period), b_lo, b_hi))
            bucket += 1
            b_lo = b_hi
        return lo, hi, buckets


def _ceil_minutes(us: int) -> int:
    return -(-us // _US_PER_MINUTE)


class ClosedBreaker:
    """Circuit-breaker probe that always answers closed: the simulated service is always healthy."""

    def is_closed(self, url: str, timeout_ms: float, headers: Mapping[str, str]) -> bool:
        """Always True."""
        return True
