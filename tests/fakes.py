"""In-memory fakes of the ports and of the clock, shared by the unit tests (one set, not a copy per file)."""
from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone

from dynamic_dynamodb import policy
from dynamic_dynamodb.model import (
    Capacity,
    LimitExceeded,
    TableDescription,
    Target,
    TargetStatus,
    Update,
)
from dynamic_dynamodb.policy import Memory

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
WINDOW = 300  # seconds of the default lookback period: one datapoint holds the window's Sum
# DynamoDB's wording of the decrease rule (LimitExceededException has other kinds too)
DECREASE_RULE = ("LimitExceededException: Subscriber limit exceeded: Provisioned throughput decreases are limited "
                 "within a given UTC day.")


def status(table: str, index: str | None = None, cap=(100, 100), state: str = "ACTIVE",
           billing: str = "PROVISIONED", **kw) -> TargetStatus:
    """What DescribeTable says of a table or GSI."""
    return TargetStatus(Target(table, index), state, billing, Capacity(*cap), **kw)


class FakeTables:
    """TableAdmin over DescribeTable answers, as DynamoDB behaves for the loop.

    Every update is recorded; `update_errors` are raised by the next updates (first in, first
    out); a decrease DynamoDB would refuse at `now` (the target's budget spent) is recorded in
    `refused` and raised as LimitExceeded; an accepted update changes the described capacity.
    `describe_errors` are raised by DescribeTable of their table.
    """

    def __init__(self, described: Mapping[str, TableDescription | Capacity], now: datetime = NOW,
                 on_update: Callable[[Update], None] | None = None) -> None:
        self.described = {name: d if isinstance(d, TableDescription) else TableDescription(status(name, cap=(
            d.reads, d.writes))) for name, d in described.items()}
        self.now = now
        self.on_update = on_update
        self.updates: list[Update] = []
        self.refused: list[Update] = []
        self.update_errors: list[Exception] = []
        self.describe_errors: dict[str, Exception] = {}

    @property
    def tables(self) -> dict[str, Capacity]:
        """The provisioned capacity of every table, now."""
        return {name: d.table.capacity for name, d in self.described.items()}

    def list_tables(self) -> list[str]:
        return list(self.described)

    def describe(self, table: str) -> TableDescription:
        if table in self.describe_errors:
            raise self.describe_errors[table]
        return self.described[table]

    def capacity(self, target: Target) -> Capacity:
        """The provisioned capacity of a table or GSI."""
        desc = self.described[target.table]
        return next(s.capacity for s in (desc.table, *desc.indexes) if s.target == target)

    def update(self, update: Update) -> None:
        desc = self.described[update.table]
        statuses = {None: desc.table, **{s.target.index: s for s in desc.indexes}}
        wanted = {None: update.table_capacity, **update.index_capacities}
        for index, cap in wanted.items():
            st = statuses[index]
            if cap is not None and (cap.reads < st.capacity.reads or cap.writes < st.capacity.writes) \
                    and not policy.decrease_allowed(st, Memory(), self.now):
                self.refused.append(update)
                raise LimitExceeded(DECREASE_RULE, "LimitExceededException")
        self.updates.append(update)
        if self.on_update:
            self.on_update(update)
        if self.update_errors:
            raise self.update_errors.pop(0)
        changed = {index: dataclasses.replace(statuses[index], capacity=cap)
                   for index, cap in wanted.items() if cap is not None}
        self.described[update.table] = TableDescription(
            changed.get(None, desc.table), tuple(changed.get(s.target.index, s) for s in desc.indexes))


class FakeMetrics:
    """Consumed percent of the provisioned units, per target or per table name; no throttling.

    A target without a percentage has no datapoint (CloudWatch's "no data").
    """

    def __init__(self, tables: FakeTables, pct: Mapping[Target | str, tuple[float, float]]) -> None:
        self.tables, self.pct = tables, pct

    def fetch(self, queries):
        out = {}
        for q in queries:
            pcts = self.pct.get(q.target, self.pct.get(q.target.table) if q.target.index is None else None)
            if pcts is None or "Throttle" in q.metric:
                out[q] = []
                continue
            cap = self.tables.capacity(q.target)
            pct, units = (pcts[0], cap.reads) if "Read" in q.metric else (pcts[1], cap.writes)
            out[q] = [(q.start, pct / 100.0 * units * WINDOW)]
        return out


class FakeNotifier:
    """SNS: every message sent, as (topic, subject, body)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def publish(self, topic_arn: str, subject: str, message: str) -> None:
        self.sent.append((topic_arn, subject, message))


class FakeBreaker:
    """A circuit breaker that is always closed, counting its probes."""

    def __init__(self) -> None:
        self.probes = 0

    def is_closed(self, url, timeout_ms, headers) -> bool:
        self.probes += 1
        return True


class ManualClock:
    """A monotonic clock and a sleep that only move when told: run_forever without sleeping.

    `wait(seconds)` advances the clock by the time asked for, or stops early when `stop` is set.
    """

    def __init__(self, stop: threading.Event, start: datetime = NOW) -> None:
        self.stop = stop
        self.t = 0.0
        self.start = start
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        if not self.stop.is_set():
            self.t += seconds
        return self.stop.is_set()

    def kwargs(self) -> dict:
        """The clock arguments of run_forever."""
        return {"monotonic": self.monotonic, "wall": self.wall, "wait": self.wait}
