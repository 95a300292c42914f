"""The SNS messages as pure texts of a decision: which are sent, and what they say."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dynamic_dynamodb import notifications, policy
from dynamic_dynamodb.model import Capacity, Target, TargetStatus
from dynamic_dynamodb.policy import Memory, Observed
from dynamic_dynamodb.reasons import Reason
from dynamic_dynamodb.rules import DimensionRules, TargetRules

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
TOPIC = "arn:aws:sns:us-east-1:123456789012:scaling"
WINDOW = 300


def decided(reads_pct: float, writes_pct: float, index=None, **rules):
    st = TargetStatus(Target("orders", index), "ACTIVE", "PROVISIONED", Capacity(100, 100))
    seen = [Observed(pct / 100 * 100 * WINDOW, 0.0, WINDOW) for pct in (reads_pct, writes_pct)]
    d, _ = policy.decide(st, *seen, TargetRules(sns_topic_arn=TOPIC, **rules), Memory(), NOW)
    return d


CHANGE_CASES = [
    ("a table going up and down", None, ("scale-up", "scale-down"),
     ("Updated provisioning for table orders",
      "orders - Reads: UP from 100 to 150\norders - Writes: DOWN from 100 to 50\n")),
    ("a GSI", "by_customer", ("scale-up", "scale-down"),
     ("Updated provisioning for GSI by_customer",
      "orders - GSI: by_customer - Reads: UP from 100 to 150\norders - GSI: by_customer - Writes: DOWN from 100 "
      "to 50\n")),
    ("only decreases wanted still names both changes", None, ("scale-down",),
     ("Updated provisioning for table orders",
      "orders - Reads: UP from 100 to 150\norders - Writes: DOWN from 100 to 50\n")),
    ("no change message wanted", None, ("high-throughput-alarm",), None),
]


@pytest.mark.parametrize("index,types,expected", [c[1:] for c in CHANGE_CASES], ids=[c[0] for c in CHANGE_CASES])
def test_the_change_message(index, types, expected):
    m = notifications.change_message(decided(95, 10, index, sns_message_types=types))
    assert (None if m is None else (m.subject, m.body)) == expected
    assert m is None or m.topic == TOPIC


def test_the_alarm_message_names_only_the_dimensions_the_policy_found_over_their_threshold():
    high = DimensionRules(upper_alarm_threshold=80)
    d = decided(85, 50, reads=high, writes=high,
                sns_message_types=("high-throughput-alarm",))
    m = notifications.alarm_message(d)
    assert (d.reads.alarm, d.writes.alarm) == ("high", None)
    assert (m.subject, m.body) == ("ALARM: High Throughput for Table orders",
                                   "orders - Consumed Read Capacity 85.000000% was greater than or equal to the "
                                   "upper alarm threshold 80.000000%\n")


def test_no_alarm_message_without_an_alarm_or_without_the_type():
    quiet = decided(50, 50, sns_message_types=("high-throughput-alarm",))
    unwanted = decided(95, 50, reads=DimensionRules(upper_alarm_threshold=80), sns_message_types=("scale-up",))
    assert notifications.alarm_message(quiet) is None and notifications.alarm_message(unwanted) is None


def test_the_budget_message_says_when_the_next_decrease_is_possible():
    st = TargetStatus(Target("orders"), "ACTIVE", "PROVISIONED", Capacity(100, 100), decreases_today=4,
                      last_decrease=NOW - timedelta(minutes=5))
    low = Observed(10.0 * WINDOW, 0.0, WINDOW)
    d, _ = policy.decide(st, low, low, TargetRules(sns_topic_arn=TOPIC, sns_message_types=("scale-down",)),
                         Memory(), NOW)
    m = notifications.budget_message(d)
    assert d.code is Reason.BUDGET_SPENT and m.subject == "Decrease budget spent for orders"
    assert "the next decrease is possible at 2026-11-28 12:55 UTC" in m.body


def test_a_skipped_target_sends_nothing():
    st = TargetStatus(Target("orders"), "UPDATING", "PROVISIONED", Capacity(100, 100))
    d = policy.skipped(st, Reason.NOT_ACTIVE, "status UPDATING", TargetRules(sns_topic_arn=TOPIC))
    assert [f(d) for f in (notifications.change_message, notifications.alarm_message,
                           notifications.budget_message)] == [None, None, None]
