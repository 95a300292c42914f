"""pre-warm of on-demand (PAY_PER_REQUEST) tables and GSIs: the plan, and the pass that skips their
scaling yet raises their warm throughput ahead of a schedule."""
from __future__ import annotations

import dataclasses
import logging
import re
from datetime import datetime, time, timedelta, timezone

import pytest
from fakes import FakeNotifier, FakeTables, status
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dynamic_dynamodb import forecast, prewarm
from dynamic_dynamodb.capacity_mode import ON_DEMAND, ModeRules
from dynamic_dynamodb.loop import Ports, Scaler
from dynamic_dynamodb.model import TableDescription, Target, Update, WarmThroughput
from dynamic_dynamodb.policy import Memory
from dynamic_dynamodb.reasons import PRE_WARM, Reason
from dynamic_dynamodb.rules import DimensionRules, Schedule, TargetRules, Window
from dynamic_dynamodb.settings import GsiSection, Settings, TableSection

UTC = timezone.utc
NOW = datetime(2026, 11, 30, 8, 45, tzinfo=UTC)  # a Monday; "launch" comes into force at 08:50
END = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LAUNCH = Schedule("launch", (Window(time(9), time(12)),), min_reads=20000, min_writes=6000)
DEFAULT = WarmThroughput(12000, 4000, "ACTIVE")  # what DynamoDB gives a new on-demand table or GSI


def rules(*schedules: Schedule, max_reads: int | None = None, max_writes: int | None = None,
          **kw) -> TargetRules:
    return TargetRules(reads=DimensionRules(max_provisioned=max_reads),
                       writes=DimensionRules(max_provisioned=max_writes), schedules=schedules, **kw)


# ---- the plan of an on-demand target: tables of cases ---------------------------------------------


@pytest.mark.parametrize("warm, target_rules, asked, now, code, wanted", [
    # the schedule's min is what the peak needs, in units per second
    (DEFAULT, rules(LAUNCH), None, NOW, Reason.PRE_WARMED, WarmThroughput(20000, 6000)),
    (DEFAULT, rules(LAUNCH), None, NOW.replace(minute=40), Reason.PRE_WARMED, WarmThroughput(20000, 6000)),
    (DEFAULT, rules(LAUNCH), None, NOW.replace(minute=39), Reason.NO_PEAK, None),  # not yet
    # already in force, or in its hours: no capacity floor raises an on-demand table's warm
    # throughput, so a daemon started then still asks for it; once it has ended, nothing
    (DEFAULT, rules(LAUNCH), None, NOW.replace(minute=50), Reason.PRE_WARMED, WarmThroughput(20000, 6000)),
    (DEFAULT, rules(LAUNCH), None, NOW.replace(hour=11, minute=59), Reason.PRE_WARMED, WarmThroughput(20000, 6000)),
    (DEFAULT, rules(LAUNCH), None, END, Reason.NO_PEAK, None),
    # below the default warm throughput: nothing to ask for; one dimension above: that one only
    (DEFAULT, rules(Schedule("small", LAUNCH.hours, min_reads=1200, min_writes=240)), None, NOW,
     Reason.WARM_ENOUGH, None),
    (DEFAULT, rules(Schedule("reads", LAUNCH.hours, min_reads=30000, min_writes=1000)), None, NOW,
     Reason.PRE_WARMED, WarmThroughput(30000, None)),
    # never above max-provisioned-* when set (under it: only the other dimension)
    (DEFAULT, rules(LAUNCH, max_reads=15000), None, NOW, Reason.PRE_WARMED, WarmThroughput(15000, 6000)),
    (DEFAULT, rules(LAUNCH, max_reads=10000, max_writes=5000), None, NOW, Reason.PRE_WARMED,
     WarmThroughput(None, 5000)),
    # a schedule with only a max announces no peak
    (DEFAULT, rules(Schedule("cap", LAUNCH.hours, max_reads=50000, max_writes=9000)), None, NOW,
     Reason.NO_PEAK, None),
    # once per peak; a raise in progress; an endpoint without warm throughput
    (DEFAULT, rules(LAUNCH), END, NOW, Reason.PRE_WARM_DONE, None),
    (DEFAULT, rules(LAUNCH), NOW - timedelta(days=7), NOW, Reason.PRE_WARMED, WarmThroughput(20000, 6000)),
    (WarmThroughput(12000, 4000, "UPDATING"), rules(LAUNCH), None, NOW, Reason.WARM_UPDATING, None),
    (None, rules(LAUNCH), None, NOW, Reason.WARM_UNKNOWN, None),
])
def test_the_plan_of_an_on_demand_target_for_a_schedule(warm, target_rules, asked, now, code, wanted):
    plan = prewarm.plan(warm, target_rules, None, None, asked, now, on_demand=True)
    assert (plan.code, plan.wanted) == (code, wanted), plan.reason
    assert plan.code in PRE_WARM
    assert plan.until == (END if wanted is not None else None)


def jump(m: int) -> float:
    """50 units/s, ten times that from 13:00 to 16:00 UTC."""
    return 500.0 if 13 * 60 <= m % 1440 < 16 * 60 else 50.0


T0 = datetime(2026, 11, 2, tzinfo=UTC)
LEARNED = forecast.learn([(T0 + timedelta(minutes=m), jump(m) * 60.0, 0.0) for m in range(int((3 + 12.5 / 24) * 1440))])
BEFORE_JUMP = T0 + timedelta(days=3, hours=12, minutes=31)
FORECAST = TargetRules(scaling_policy="forecast", target_utilization=70.0)


@pytest.mark.parametrize("on_demand, code", [
    (False, Reason.PRE_WARMED),  # provisioned: the forecast announces the rise
    (True, Reason.NO_PEAK),  # on-demand: a forecast learnt while it was provisioned is stale, not asked
])
def test_an_on_demand_target_is_pre_warmed_for_schedules_only(on_demand, code):
    warm = WarmThroughput(100, 100, "ACTIVE")
    assert prewarm.plan(warm, FORECAST, LEARNED, LEARNED, None, BEFORE_JUMP, on_demand=on_demand).code is code


@given(minutes=st.integers(min_value=0, max_value=2 * 1440), policy=st.sampled_from(["forecast", "demand"]),
       reads=st.integers(min_value=1, max_value=50_000), writes=st.integers(min_value=1, max_value=50_000))
@hsettings(max_examples=200, deadline=None)
def test_the_plan_of_an_on_demand_target_does_not_depend_on_a_forecast(minutes, policy, reads, writes):
    warm = WarmThroughput(reads, writes, "ACTIVE")
    target_rules = rules(LAUNCH, scaling_policy=policy)
    now = BEFORE_JUMP + timedelta(minutes=minutes)
    with_forecast = prewarm.plan(warm, target_rules, LEARNED, LEARNED, None, now, on_demand=True)
    assert with_forecast == prewarm.plan(warm, target_rules, None, None, None, now, on_demand=True)


# ---- the pass ---------------------------------------------------------------------------------------


class RecordedMetrics:
    """CloudWatch that has no datapoint, and remembers every series asked for."""

    def __init__(self) -> None:
        self.asked: list = []

    def fetch(self, queries):
        self.asked.extend(queries)
        return {q: [] for q in queries}


def on_demand(name: str = "orders", *, warm: WarmThroughput | None = DEFAULT, gsi: bool = True,
              state: str = "ACTIVE", gsi_state: str = "ACTIVE") -> TableDescription:
    indexes = (status(name, "by_day", cap=(0, 0), state=gsi_state, billing=ON_DEMAND, warm=warm),) if gsi else ()
    return TableDescription(status(name, cap=(0, 0), state=state, billing=ON_DEMAND, warm=warm), indexes)


def scaler(tables: FakeTables, table_rules: TargetRules, gsi_rules: TargetRules | None = None,
           mode: ModeRules | None = None, **settings) -> Scaler:
    gsis = () if gsi_rules is None else (GsiSection(".*", re.compile(".*"), ".*", gsi_rules),)
    section = TableSection(".*", re.compile(".*"), table_rules, gsis, mode=mode or ModeRules())
    return Scaler(Settings(tables=(section,), **settings),
                  Ports(tables, RecordedMetrics(), notifier=FakeNotifier()))


PRE_WARM_LAUNCH = rules(LAUNCH, pre_warm=True)


def test_an_on_demand_table_and_its_gsi_are_pre_warmed_once_in_one_update_and_still_not_scaled(caplog):
    caplog.set_level(logging.INFO, logger="dynamic-dynamodb")
    tables = FakeTables({"orders": on_demand()}, now=NOW)
    s = scaler(tables, PRE_WARM_LAUNCH, PRE_WARM_LAUNCH)
    report = s.run_pass(NOW)
    assert tables.updates == [Update("orders", table_warm=WarmThroughput(20000, 6000),
                                     index_warm={"by_day": WarmThroughput(20000, 6000)})]
    assert report.prewarms == [(Target("orders"), Reason.PRE_WARMED),
                               (Target("orders", "by_day"), Reason.PRE_WARMED)]
    # the scaling still skips them, and reads no metric for them
    assert [(d.target, d.skipped) for d in report.decisions] == [(Target("orders"), Reason.ON_DEMAND),
                                                                 (Target("orders", "by_day"), Reason.ON_DEMAND)]
    assert report.skipped == 2 and report.updates == 0 and report.ok
    assert s.live_ports.metrics.asked == []
    assert s.memory[Target("orders")].prewarm_until == END
    assert s.memory[Target("orders", "by_day")].prewarm_until == END
    assert "orders: warm throughput raised to 20000/6000 units/s: schedule launch needs" in caplog.text
    s.run_pass(NOW + timedelta(minutes=1))  # DynamoDB has not raised it yet: not asked twice for this peak
    assert len(tables.updates) == 1


def test_only_an_on_demand_target_with_pre_warm_is_pre_warmed():
    tables = FakeTables({"orders": on_demand()}, now=NOW)
    scaler(tables, rules(LAUNCH), PRE_WARM_LAUNCH).run_pass(NOW)
    assert tables.updates == [Update("orders", index_warm={"by_day": WarmThroughput(20000, 6000)})]
    tables = FakeTables({"orders": on_demand()}, now=NOW)
    report = scaler(tables, rules(LAUNCH), rules(LAUNCH)).run_pass(NOW)
    assert tables.updates == [] and report.prewarms == []


@pytest.mark.parametrize("described", [
    on_demand(state="UPDATING"),  # DynamoDB refuses any UpdateTable of a table that is not ACTIVE
    on_demand(gsi=False, state="UPDATING"),
    on_demand(warm=None),  # an endpoint without warm throughput
])
def test_an_on_demand_table_that_cannot_be_pre_warmed_is_left_alone(described):
    tables = FakeTables({"orders": described}, now=NOW)
    report = scaler(tables, PRE_WARM_LAUNCH, PRE_WARM_LAUNCH).run_pass(NOW)
    assert tables.updates == [] and report.prewarms == [] and report.ok
    assert {d.skipped for d in report.decisions} == {Reason.ON_DEMAND}


def test_a_gsi_not_active_is_left_out_and_its_table_pre_warmed():
    tables = FakeTables({"orders": on_demand(gsi_state="CREATING")}, now=NOW)
    scaler(tables, PRE_WARM_LAUNCH, PRE_WARM_LAUNCH).run_pass(NOW)
    assert tables.updates == [Update("orders", table_warm=WarmThroughput(20000, 6000))]


def test_an_on_demand_table_is_pre_warmed_beside_a_provisioned_one_that_is_scaled():
    provisioned = TableDescription(status("legacy", cap=(100, 100), warm=WarmThroughput(100, 100, "ACTIVE")))
    tables = FakeTables({"orders": on_demand(gsi=False), "legacy": provisioned}, now=NOW)
    s = scaler(tables, PRE_WARM_LAUNCH)
    report = s.run_pass(NOW)
    assert sorted(tables.updates, key=lambda u: u.table) == [
        Update("legacy", table_warm=WarmThroughput(20000, 6000)),
        Update("orders", table_warm=WarmThroughput(20000, 6000))]
    assert {q.target.table for q in s.live_ports.metrics.asked} == {"legacy"}  # none for the on-demand one
    assert len(report.prewarms) == 2


def test_a_stale_forecast_of_an_on_demand_table_announces_no_peak():
    tables = FakeTables({"orders": on_demand(gsi=False, warm=WarmThroughput(100, 100, "ACTIVE"))},
                        now=BEFORE_JUMP)
    s = scaler(tables, dataclasses.replace(FORECAST, pre_warm=True))
    s.memory[Target("orders")] = Memory(reads_forecast=LEARNED, writes_forecast=LEARNED)
    s.run_pass(BEFORE_JUMP)
    assert tables.updates == []


def test_a_dry_run_only_logs_the_pre_warm_of_an_on_demand_table(caplog):
    caplog.set_level(logging.INFO, logger="dynamic-dynamodb")
    tables = FakeTables({"orders": on_demand(gsi=False)}, now=NOW)
    s = scaler(tables, PRE_WARM_LAUNCH, dry_run=True)
    s.run_pass(NOW)
    assert tables.updates == []
    assert "orders: dry run, would raise the warm throughput to 20000/6000 units/s" in caplog.text


def test_an_on_demand_table_of_another_daemon_is_not_pre_warmed():
    tables = FakeTables({"orders": on_demand(gsi=False)}, now=NOW)
    s = scaler(tables, PRE_WARM_LAUNCH)
    s.owns = lambda table: False
    s.run_pass(NOW)
    assert tables.updates == []


def test_a_table_the_daemon_switched_to_on_demand_is_pre_warmed_from_the_next_pass():
    tables = FakeTables({"orders": TableDescription(status("orders", warm=WarmThroughput(100, 100, "ACTIVE")))},
                        now=NOW - timedelta(minutes=30))
    s = scaler(tables, PRE_WARM_LAUNCH, mode=ModeRules(mode="on-demand"))
    first = s.run_pass(NOW - timedelta(minutes=30))  # no peak yet: the switch alone
    assert [u.billing_mode for u in tables.updates] == [ON_DEMAND]
    assert [d.skipped for d in first.decisions] == [Reason.MODE_SWITCHED]
    # DescribeTable after the switch: on-demand, with the warm throughput of its provisioned past
    tables.described["orders"] = on_demand(gsi=False, warm=WarmThroughput(100, 100, "ACTIVE"))
    report = s.run_pass(NOW)
    assert tables.updates[1:] == [Update("orders", table_warm=WarmThroughput(20000, 6000))]
    assert [d.skipped for d in report.decisions] == [Reason.ON_DEMAND]
    assert s.memory[Target("orders")].mode is not None  # the switch is still remembered
    s.run_pass(NOW + timedelta(minutes=1))
    assert len(tables.updates) == 2
