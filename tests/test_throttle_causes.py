"""Throttles by cause: the pure split, and one pass of the loop over in-memory fakes."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamic_dynamodb import throttle_causes as tc
from dynamic_dynamodb.loop import Ports, Scaler
from dynamic_dynamodb.model import (
    THROTTLE_CAUSE_METRIC,
    Capacity,
    Dim,
    TableDescription,
    Target,
    TargetStatus,
)
from dynamic_dynamodb.rules import DimensionRules, TargetRules
from dynamic_dynamodb.settings import Settings, TableSection

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
T0 = NOW - timedelta(minutes=15)
KEY, PROV, ACCOUNT = "KeyRangeThroughput", "ProvisionedThroughput", "AccountLimit"


def points(*values: float):
    return [(T0 + timedelta(minutes=k), v) for k, v in enumerate(values)]


# ---- the pure part -----------------------------------------------------------------------------

@pytest.mark.parametrize(("total", "by_cause", "expected"), [
    (points(10, 20), {}, points(10, 20)),                                  # no cause metric: every throttle
    (points(10, 20), {KEY: [], PROV: []}, points(10, 20)),                 # cause series without datapoints
    (points(10, 20), {KEY: points(10, 20)}, []),                           # all on a hot key range
    (points(10, 20), {KEY: points(5, 5), PROV: points(5, 15)}, points(5, 15)),
    ([], {ACCOUNT: points(3)}, []),
])
def test_only_provisioned_throughput_throttles_call_for_capacity(total, by_cause, expected):
    assert tc.capacity_throttles(total, by_cause) == expected


def test_the_split_gives_shares_by_cause():
    s = tc.split(Dim.READS, {KEY: points(30, 30), PROV: points(20), ACCOUNT: []})
    assert s.total == 80 and s.share(KEY) == 0.75 and s.share(PROV) == 0.25
    assert s.describe() == "75% key range, 25% provisioned throughput"
    assert tc.split(Dim.READS, {KEY: [], PROV: []}) is None


@given(st.dictionaries(st.sampled_from(sorted(tc.CAUSE_WORDS)), st.lists(st.floats(0, 1e6), max_size=5)))
def test_shares_add_up_to_one_whenever_there_are_events(events):
    s = tc.split(Dim.WRITES, {c: points(*v) for c, v in events.items()})
    if s is not None and s.total > 0:
        assert sum(s.share(c) for c in tc.CAUSE_WORDS) == pytest.approx(1.0)


def test_notes_name_the_target_the_share_and_contributor_insights():
    target = Target("orders", "by_customer")
    [note] = tc.notes(target, {Dim.READS: tc.split(Dim.READS, {KEY: points(60)}), Dim.WRITES: None})
    assert note.kind == "key-range" and "orders/by_customer" in note.message
    assert "100% key range" in note.message and "Contributor Insights" in note.message
    assert "--index-name by_customer" in note.message
    kinds = [n.kind for n in tc.notes(target, {Dim.WRITES: tc.split(Dim.WRITES, {ACCOUNT: points(1), KEY: points(1)})})]
    assert kinds == ["key-range", "account-limit"]
    assert tc.notes(target, {Dim.READS: tc.split(Dim.READS, {PROV: points(9)})}) == []


@pytest.mark.parametrize(("last", "expected"), [
    (None, True), (NOW - timedelta(minutes=59), False), (NOW - timedelta(hours=1), True)])
def test_a_cause_is_reported_at_most_hourly(last, expected):
    assert tc.due(last, NOW) is expected


# ---- one pass of the loop ----------------------------------------------------------------------

@dataclass
class SeriesMetrics:
    """The same datapoints for every target: {metric name: Sum per minute}."""

    per_minute: dict[str, float]

    def fetch(self, queries):
        return {q: [(q.start + timedelta(minutes=k), self.per_minute[q.metric])
                    for k in range(int((q.end - q.start).total_seconds() // 60))]
                if q.metric in self.per_minute else [] for q in queries}


class Tables:
    def __init__(self):
        self.updates = []

    def list_tables(self):
        return ["orders"]

    def describe(self, table):
        return TableDescription(TargetStatus(Target("orders"), "ACTIVE", "PROVISIONED", Capacity(100, 100)))

    def update(self, update):
        self.updates.append(update)


class Notes:
    def __init__(self):
        self.sent = []

    def publish(self, topic, subject, message):
        self.sent.append(subject)


RULES = TargetRules(reads=DimensionRules(throttled_upper_threshold=10), sns_topic_arn="arn:aws:sns:us-east-1:1:t",
                    sns_message_types=("high-throughput-alarm",))
HALF = {"ConsumedReadCapacityUnits": 50 * 60.0, "ConsumedWriteCapacityUnits": 50 * 60.0}


def one_pass(per_minute, now=NOW, scaler=None):
    tables, notes = Tables(), Notes()
    if scaler is None:
        section = TableSection("orders", re.compile("orders"), RULES)
        scaler = Scaler(Settings(tables=(section,)), None)
    scaler.ports = Ports(tables=tables, metrics=SeriesMetrics({**HALF, **per_minute}), notifier=notes)
    scaler.run_pass(now)
    return scaler, tables.updates, notes.sent


@pytest.mark.parametrize(("throttles", "raised"), [
    ({"ReadThrottleEvents": 100}, True),  # no cause metrics: as before
    ({"ReadThrottleEvents": 100, THROTTLE_CAUSE_METRIC[Dim.READS][PROV]: 100}, True),
    ({"ReadThrottleEvents": 100, THROTTLE_CAUSE_METRIC[Dim.READS][KEY]: 100}, False),
    ({"ReadThrottleEvents": 100, THROTTLE_CAUSE_METRIC[Dim.READS][ACCOUNT]: 100}, False),
])
def test_only_provisioned_throughput_throttles_raise_capacity(throttles, raised):
    _, updates, _ = one_pass(throttles)
    assert bool(updates) is raised


def test_key_range_throttling_is_a_warning_and_an_alarm_once_an_hour(caplog):
    hot = {"ReadThrottleEvents": 100, THROTTLE_CAUSE_METRIC[Dim.READS][KEY]: 100}
    with caplog.at_level(logging.WARNING, logger="dynamic-dynamodb"):
        s, _, sent = one_pass(hot)
        _, _, again = one_pass(hot, NOW + timedelta(minutes=5), s)
        _, _, later = one_pass(hot, NOW + timedelta(hours=1), s)
    warnings = [r.getMessage() for r in caplog.records if "hot key range" in r.getMessage()]
    assert len(warnings) == 2 and "Contributor Insights" in warnings[0]
    assert sent == ["ALARM: Key-range throttling on table orders"] and again == [] and len(later) == 1


def test_without_throttle_causes_a_pass_asks_for_the_four_series_and_every_throttle_counts():
    section = TableSection("orders", re.compile("orders"), RULES)
    asked = []

    class Recording(SeriesMetrics):
        def fetch(self, queries):
            asked.extend(q.metric for q in queries)
            return super().fetch(queries)

    scaler = Scaler(Settings(tables=(section,), throttle_causes=False), None)
    tables = Tables()
    scaler.ports = Ports(tables=tables, metrics=Recording({**HALF, "ReadThrottleEvents": 100,
                                                           THROTTLE_CAUSE_METRIC[Dim.READS][KEY]: 100}))
    scaler.run_pass(NOW)
    assert sorted(asked) == sorted(["ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits", "ReadThrottleEvents",
                                    "WriteThrottleEvents"])
    assert tables.updates  # the key-range throttles are not known apart: they count, as before
