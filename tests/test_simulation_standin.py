"""A stand-in for the daemon's pass with the loop's API: a second, independent scaler for the simulator's tests.

It uses the ports exactly as dynamic_dynamodb.loop does (list_tables, describe, fetch, update)
and keeps to the decrease rule from DescribeTable's fields, so a replay has no refused update.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dynamic_dynamodb.model import (
    CONSUMED_METRIC,
    THROTTLE_METRIC,
    AwsError,
    Capacity,
    Dim,
    MetricQuery,
    Target,
    TargetStatus,
    Update,
)
from dynamic_dynamodb.rules import TargetRules
from dynamic_dynamodb.settings import Settings, TableSection

WINDOW = timedelta(minutes=5)
DELAY = timedelta(minutes=2)  # newest datapoint CloudWatch has at the start of a minute ends 2 minutes ago


@dataclass(frozen=True)
class Decision:
    """What the pass did for one target, and why."""

    target: Target
    summary: str
    code: str  # as dynamic_dynamodb.reasons.Reason spells it


@dataclass
class PassReport:
    """Decisions of one pass."""

    decisions: list[Decision] = field(default_factory=list)


class StandInScaler:
    """Threshold policy: +50 % at >= 90 % or any throttling, -50 % at <= 30 % (not at 0 %)."""

    def __init__(self, settings: Settings, *, tables: Any, metrics: Any, breaker: Any) -> None:
        self.settings, self.tables, self.metrics, self.breaker = settings, tables, metrics, breaker

    def run_pass(self, now: datetime) -> PassReport:
        """One pass over every matched table."""
        report = PassReport()
        for name in self.tables.list_tables():
            if not any(s.regex.fullmatch(name) for s in self.settings.tables):
                continue
            status = self.tables.describe(name).table
            if not status.active or status.on_demand:
                continue
            decision = self._scale(status, now)
            if decision is not None:
                report.decisions.append(decision)
        return report

    def _scale(self, status: TargetStatus, now: datetime) -> Decision | None:
        queries = {
            (dim, kind): MetricQuery(status.target, names[dim], now - DELAY - WINDOW, now - DELAY, 300)
            for dim in Dim for kind, names in (("consumed", CONSUMED_METRIC), ("throttled", THROTTLE_METRIC))
        }
        data = self.metrics.fetch(list(queries.values()))
        cur = status.capacity
        want = {}
        for dim in Dim:
            consumed = data[queries[dim, "consumed"]]
            throttled = data[queries[dim, "throttled"]]
            units = sum(v for _, v in consumed) / WINDOW.total_seconds() if consumed else None
            want[dim] = _step(getattr(cur, dim.value), units, sum(v for _, v in throttled))
        new = Capacity(want[Dim.READS], want[Dim.WRITES])
        if new == cur:
            return None
        if (new.reads < cur.reads or new.writes < cur.writes) and not _may_decrease(status, now):
            new = Capacity(max(new.reads, cur.reads), max(new.writes, cur.writes))
            if new == cur:
                return Decision(status.target, "decrease held back: no decrease left now", "budget_spent")
        try:
            self.tables.update(Update(status.target.table, new))
        except AwsError as exc:
            return Decision(status.target, f"update refused: {exc.code}", "aws_error")
        code = "high_load" if new.reads > cur.reads or new.writes > cur.writes else "low_load"
        return Decision(status.target, f"reads {cur.reads} -> {new.reads}, writes {cur.writes} -> {new.writes}", code)


def _step(cur: int, units: float | None, throttled: float) -> int:
    if units is None:
        return cur  # no data is never a reason to change
    if throttled > 0 or units >= 0.9 * cur:
        return max(cur + math.ceil(cur * 0.5), math.ceil(units * 1.2))
    if 0 < units <= 0.3 * cur:
        return max(1, cur - cur // 2)
    return cur


def _may_decrease(status: TargetStatus, now: datetime) -> bool:
    if status.decreases_today < 4:
        return True
    return status.last_decrease is not None and now - status.last_decrease >= timedelta(hours=1)


def settings_for(name: str = "simulated", check_interval: int = 300) -> Settings:
    """Settings with one table section matching `name`."""
    return Settings(check_interval=check_interval,
                    tables=(TableSection(key=name, regex=re.compile(re.escape(name)), rules=TargetRules()),))


def make_standin(settings: Settings, *, tables: Any, metrics: Any, breaker: Any) -> StandInScaler:
    """make_scaler for simulate()."""
    return StandInScaler(settings, tables=tables, metrics=metrics, breaker=breaker)
