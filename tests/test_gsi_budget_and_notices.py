"""GSIs, decrease budgets and SNS notices at unit level: one pass of the loop over in-memory fakes
(GSI budgets in a shared UpdateTable, busy tables, SNS texts) and the policy edge cases
behind them."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from fakes import DECREASE_RULE, NOW, WINDOW, FakeMetrics, FakeNotifier, FakeTables, status

from dynamic_dynamodb import policy
from dynamic_dynamodb.loop import Ports, Scaler
from dynamic_dynamodb.model import (
    Capacity,
    LimitExceeded,
    MetricQuery,
    TableDescription,
    Target,
    Update,
)
from dynamic_dynamodb.policy import Memory, Observed
from dynamic_dynamodb.reasons import Reason
from dynamic_dynamodb.rules import DimensionRules, TargetRules
from dynamic_dynamodb.settings import GsiSection, Settings, TableSection

TOPIC = "arn:aws:sns:us-east-1:123456789012:scaling"


def scaler(desc: TableDescription, pcts: dict, rules: TargetRules = TargetRules(),
           gsi_rules: TargetRules | None = None, memory=None):
    gsis = (GsiSection(".*", re.compile(".*"), desc.table.target.table, gsi_rules or rules),)
    section = TableSection(desc.table.target.table, re.compile(re.escape(desc.table.target.table)), rules, gsis)
    tables = FakeTables({desc.table.target.table: desc})
    notifier = FakeNotifier()
    ports = Ports(tables=tables, metrics=FakeMetrics(tables, pcts), notifier=notifier)
    return Scaler(Settings(tables=(section,)), ports, memory=memory), tables, notifier


# ---- a GSI has its own budget; one UpdateTable may carry both -----------------------------------


def test_a_gsi_with_its_budget_spent_keeps_its_capacity_while_its_table_decreases():
    spent = dict(decreases_today=4, last_decrease=NOW - timedelta(minutes=5))
    desc = TableDescription(status("orders"), (status("orders", "by_customer", **spent),))
    s, tables, _ = scaler(desc, {Target("orders"): (10, 10), Target("orders", "by_customer"): (10, 10)})
    report = s.run_pass(NOW)
    assert tables.refused == []
    assert tables.updates == [Update("orders", Capacity(50, 50), {})]
    assert report.updates == 1


def test_a_table_with_its_budget_spent_keeps_its_capacity_while_its_gsi_decreases():
    spent = dict(decreases_today=4, last_decrease=NOW - timedelta(minutes=5))
    desc = TableDescription(status("orders", **spent), (status("orders", "by_customer"),))
    s, tables, _ = scaler(desc, {Target("orders"): (10, 95), Target("orders", "by_customer"): (10, 10)})
    s.run_pass(NOW)
    assert tables.refused == []
    # the table's write increase goes ahead, its read decrease waits; the GSI decreases
    assert tables.updates == [Update("orders", Capacity(100, 150), {"by_customer": Capacity(50, 50)})]


def test_decreases_are_recorded_per_target():
    desc = TableDescription(status("orders"), (status("orders", "by_customer"),))
    s, _, _ = scaler(desc, {Target("orders"): (50, 50), Target("orders", "by_customer"): (10, 10)})
    s.run_pass(NOW)
    assert s.memory[Target("orders", "by_customer")].decreases_today == 1
    assert s.memory[Target("orders")].decreases_today == 0


def test_the_gsis_of_a_table_that_is_not_active_are_not_decided():
    desc = TableDescription(status("orders", state="UPDATING"), (status("orders", "by_customer"),))
    s, tables, _ = scaler(desc, {Target("orders"): (95, 95), Target("orders", "by_customer"): (95, 95)})
    report = s.run_pass(NOW)
    assert tables.updates == [] and report.decided == [] and report.skipped == 1
    assert {str(d.target): d.code for d in report.decisions} == {"orders/by_customer": Reason.GSI_BUSY,
                                                               "orders": Reason.NOT_ACTIVE}


# ---- SNS texts ---------------------------------------------------------------------------------


def test_alarm_text_names_the_dimensions_that_crossed_their_threshold():
    rules = TargetRules(reads=DimensionRules(upper_alarm_threshold=80, enabled=False),
                        writes=DimensionRules(upper_alarm_threshold=80, enabled=False),
                        sns_topic_arn=TOPIC, sns_message_types=("high-throughput-alarm",))
    desc = TableDescription(status("orders"), (status("orders", "by_customer"),))
    s, _, notifier = scaler(desc, {Target("orders"): (85, 50), Target("orders", "by_customer"): (50, 90.5)}, rules)
    s.run_pass(NOW)
    assert notifier.sent == [
        (TOPIC, "ALARM: High Throughput for Table orders",
         "orders - Consumed Read Capacity 85.000000% was greater than or equal to the upper alarm threshold "
         "80.000000%\n"),
        (TOPIC, "ALARM: High Throughput for Table orders - GSI: by_customer",
         "orders - GSI: by_customer - Consumed Write Capacity 90.500000% was greater than or equal to the upper "
         "alarm threshold 80.000000%\n"),
    ]


def test_low_alarm_text():
    rules = TargetRules(reads=DimensionRules(lower_alarm_threshold=20, enabled=False),
                        writes=DimensionRules(lower_alarm_threshold=20, enabled=False),
                        sns_topic_arn=TOPIC, sns_message_types=("low-throughput-alarm",))
    desc = TableDescription(status("orders"))
    s, _, notifier = scaler(desc, {Target("orders"): (5, 12.5)}, rules)
    s.run_pass(NOW)
    assert notifier.sent == [(TOPIC, "ALARM: Low Throughput for Table orders",
                              "orders - Consumed Read Capacity 5.000000% was below the lower alarm threshold "
                              "20.000000%\n"
                              "orders - Consumed Write Capacity 12.500000% was below the lower alarm threshold "
                              "20.000000%\n")]


def test_the_budget_notice_goes_out_once_a_day_with_scale_down_wanted():
    spent = dict(decreases_today=4, last_decrease=NOW - timedelta(minutes=5))
    rules = TargetRules(sns_topic_arn=TOPIC, sns_message_types=("scale-down",))
    desc = TableDescription(status("orders", **spent))
    s, tables, notifier = scaler(desc, {Target("orders"): (10, 10)}, rules)
    s.run_pass(NOW)
    s.run_pass(NOW + timedelta(minutes=5))
    assert tables.updates == []
    assert [subject for _, subject, _ in notifier.sent] == ["Decrease budget spent for orders"]
    assert "2026-11-28 12:55 UTC" in notifier.sent[0][2]


# ---- policy edge cases -------------------------------------------------------------------------


def test_four_decreases_reported_without_their_time_hold_the_next_until_tomorrow():
    st = status("orders", decreases_today=4)
    assert not policy.decrease_allowed(st, Memory(), NOW)
    assert policy.next_decrease_at(st, Memory(), NOW) == datetime(2026, 11, 29, tzinfo=timezone.utc)
    assert policy.decrease_allowed(status("orders", decreases_today=3), Memory(), NOW)


def test_a_pass_without_data_neither_raises_nor_clears_an_alarm():
    rules = TargetRules(reads=DimensionRules(upper_alarm_threshold=80))
    hot = Observed(0.85 * 100 * WINDOW, 0.0, WINDOW)
    nothing = Observed(None, None, WINDOW)
    st = status("orders")
    first, mem = policy.decide(st, hot, hot, rules, Memory(), NOW)
    blind, mem = policy.decide(st, nothing, nothing, rules, mem, NOW)
    back, mem = policy.decide(st, hot, hot, rules, mem, NOW)
    assert (first.alarm, blind.alarm, back.alarm) == ("high", None, None)
    assert mem.alarm == "high"


# ---- metric queries -----------------------------------------------------------------------------


def test_queries_carry_the_gsi_dimension_and_the_lookback_window():
    desc = TableDescription(status("orders"), (status("orders", "by_customer"),))
    rules = TargetRules(lookback_window_start=20, lookback_period=10)
    seen: list[MetricQuery] = []

    class Recording(FakeMetrics):
        def fetch(self, queries):
            seen.extend(queries)
            return super().fetch(queries)

    s, _, _ = scaler(desc, {}, rules)
    s.ports.metrics = Recording(s.ports.tables, {})
    s.run_pass(NOW)
    assert {q.target for q in seen} == {Target("orders"), Target("orders", "by_customer")}
    assert {(q.start, q.end) for q in seen} == {(NOW - timedelta(minutes=20), NOW - timedelta(minutes=10))}


def test_a_missing_state_file_starts_fresh_with_an_info_line(tmp_path, caplog):
    from dynamic_dynamodb import state

    caplog.set_level("INFO", logger="dynamic-dynamodb")
    assert state.load(str(tmp_path / "absent.json")) == {}
    assert [r.levelname for r in caplog.records if "starting fresh" in r.getMessage()] == ["INFO"]


def test_the_increases_only_retry_is_notified_with_what_it_changed():
    """DynamoDB refuses a decrease DescribeTable said was possible (another tool spent the budget)."""
    rules = TargetRules(sns_topic_arn=TOPIC, sns_message_types=("scale-up", "scale-down"))
    desc = TableDescription(status("orders"))
    s, tables, notifier = scaler(desc, {Target("orders"): (95, 10)}, rules)
    real_update = tables.update

    def refuse_decreases(update: Update) -> None:
        if update.table_capacity.writes < 100:
            raise LimitExceeded(DECREASE_RULE, "LimitExceededException")
        real_update(update)

    tables.update = refuse_decreases
    s.run_pass(NOW)
    assert tables.updates == [Update("orders", Capacity(150, 100), {})]
    assert notifier.sent == [(TOPIC, "Updated provisioning for table orders", "orders - Reads: UP from 100 to 150\n")]
    assert s.memory[Target("orders")].decreases_today == 0
