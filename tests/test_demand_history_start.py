"""A target new to the daemon starts from CloudWatch's last half hour, not from one five-minute window.

The demand policy decreases only for a drop that has lasted its half hour of history; a
daemon that starts (or has lost its state file) must not take five quiet minutes for one.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

import pytest

from dynamic_dynamodb import demand
from dynamic_dynamodb.loop import Ports, Scaler
from dynamic_dynamodb.model import AwsError, Capacity, Dim, TableDescription, Target, TargetStatus
from dynamic_dynamodb.rules import TargetRules
from dynamic_dynamodb.settings import Settings, TableSection

NOW = datetime(2026, 3, 2, 12, 0, 30, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)


def burst(minute: datetime) -> float:
    """Units/s of reads: 60 for the seven minutes 20 to 14 minutes before NOW, 1 otherwise."""
    ago = (NOW.replace(second=0) - minute) // MINUTE
    return 60.0 if 14 <= ago <= 20 else 1.0


class Tables:
    def __init__(self, capacity: Capacity = Capacity(100, 40)) -> None:
        self.capacity = capacity

    def list_tables(self):
        return ["orders"]

    def describe(self, table):
        return TableDescription(TargetStatus(Target(table), "ACTIVE", "PROVISIONED", self.capacity))

    def update(self, update):
        pass


class CloudWatch:
    """Per-minute Sums of `burst` reads (writes at 1 unit/s) for fetch (the pass) and fetch_history."""

    def __init__(self, failing: bool = False) -> None:
        self.history_calls: list[list] = []
        self.failing = failing

    def _points(self, q):
        if "Throttle" in q.metric:
            return []
        m, out = q.start, []
        while m < q.end and m <= NOW.replace(second=0) - MINUTE:
            out.append((m, (burst(m) if "Read" in q.metric else 1.0) * 60.0))
            m += MINUTE
        return out

    def fetch(self, queries):
        return {q: self._points(q) for q in queries}

    def fetch_history(self, queries, stat="Sum"):
        self.history_calls.append(list(queries))
        if self.failing:
            raise AwsError("ThrottlingException: slow down", "ThrottlingException")
        return {q: self._points(q) for q in queries}


def scaler(cloudwatch: CloudWatch, policy: str = "demand") -> Scaler:
    rules = TargetRules(scaling_policy=policy, target_utilization=80, lookback_window_start=5, lookback_period=5)
    section = TableSection(".*", re.compile(".*"), rules)
    return Scaler(Settings(tables=(section,), check_interval=60), Ports(tables=Tables(), metrics=cloudwatch),
                  dry_run=True)


def series(start: datetime, minutes: int, value: float = 1.0) -> tuple[tuple[datetime, float, float], ...]:
    return tuple((start + k * MINUTE, value * 60.0, 0.0) for k in range(minutes))


def test_the_seed_is_the_half_hour_before_the_window_and_nothing_else():
    before = NOW.replace(second=0) - 5 * MINUTE
    points = series(before - 45 * MINUTE, 50)  # 45 minutes before the window, 5 in it
    state = demand.seed(points, 10, before)
    assert len(state.demand) == demand.HISTORY_MINUTES
    assert state.last_minute == before - MINUTE  # the window's own minutes stay fresh for the pass


def test_the_seed_starts_with_an_empty_bucket_and_may_be_empty():
    before = NOW.replace(second=0)
    assert demand.seed(series(before - MINUTE, 1, value=1.0), 10, before).bucket == pytest.approx(9 * 60.0)
    empty = demand.seed((), 10, before)
    assert empty.demand == () and empty.last_minute is None


def test_a_new_target_reads_the_half_hour_before_its_window_once_and_keeps_a_recent_burst_in_mind(caplog):
    cloudwatch = CloudWatch()
    s = scaler(cloudwatch)
    with caplog.at_level(logging.INFO, logger="dynamic-dynamodb"):
        report = s.run_pass(NOW)
    (call,) = cloudwatch.history_calls
    assert len(call) == 4 and {q.end - q.start for q in call} == {timedelta(minutes=demand.HISTORY_MINUTES)}
    assert {q.end for q in call} == {NOW.replace(second=0) - 5 * MINUTE}  # up to the pass's own window
    (decision,) = report.decisions
    # the window alone shows 1 unit/s and would go to 2; the half hour holds a burst of 60
    assert decision.reads.new >= 30 and "the last 30 minutes" in decision.reads.reason, decision.reads
    assert "Demand history: the 30 minutes before this pass read from CloudWatch for 1 target(s)" in caplog.text
    s.run_pass(NOW + MINUTE)
    assert len(cloudwatch.history_calls) == 1  # once: later passes fold the newest minutes into the memory


def test_a_target_with_a_remembered_history_reads_nothing_more():
    first = scaler(CloudWatch())
    first.run_pass(NOW)
    cloudwatch = CloudWatch()
    again = scaler(cloudwatch)
    again.memory = dict(first.memory)  # as loaded from the state file
    again.run_pass(NOW + MINUTE)
    assert cloudwatch.history_calls == []


def test_a_memory_older_than_the_half_hour_is_read_again_once():
    first = scaler(CloudWatch())
    first.run_pass(NOW - timedelta(days=2))  # the daemon was stopped two days ago
    cloudwatch = CloudWatch()
    again = scaler(cloudwatch)
    again.memory = dict(first.memory)
    report = again.run_pass(NOW)
    assert len(cloudwatch.history_calls) == 1
    (decision,) = report.decisions
    assert decision.reads.new >= 30, decision.reads  # today's burst, not two-day-old minutes and five quiet ones
    again.run_pass(NOW + MINUTE)
    assert len(cloudwatch.history_calls) == 1


def test_a_failed_read_is_one_warning_and_the_pass_decides_from_its_window(caplog):
    cloudwatch = CloudWatch(failing=True)
    s = scaler(cloudwatch)
    with caplog.at_level(logging.INFO, logger="dynamic-dynamodb"):
        report = s.run_pass(NOW)
    assert "Cannot read the recent history of 1 target(s) from CloudWatch" in caplog.text
    (decision,) = report.decisions
    assert decision.reads.new < decision.reads.current and "the last 5 minutes" in decision.reads.reason
    s.run_pass(NOW + MINUTE)
    assert len(cloudwatch.history_calls) == 1  # not asked again every pass


def test_the_threshold_policy_keeps_no_history_and_reads_none():
    cloudwatch = CloudWatch()
    scaler(cloudwatch, policy="threshold").run_pass(NOW)
    assert cloudwatch.history_calls == []


def test_the_forecast_policy_seeds_its_demand_history_from_the_same_single_call():
    cloudwatch = CloudWatch()
    s = scaler(cloudwatch, policy="forecast")
    s.run_pass(NOW)
    (call,) = cloudwatch.history_calls
    assert len(call) == 4 and {q.end - q.start for q in call} == {timedelta(days=14)}
    seeded = s.memory[Target("orders")].dim(Dim.READS).demand
    assert seeded is not None and len(seeded.demand) == demand.HISTORY_MINUTES  # not the window's 5 minutes alone
