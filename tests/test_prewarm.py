"""pre-warm: the pure decision (prewarm.plan), and the pass that applies it with in-memory fakes."""
from __future__ import annotations

import logging
import re
from datetime import datetime, time, timedelta, timezone

import pytest
from fakes import FakeMetrics, FakeNotifier, FakeTables, status
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dynamic_dynamodb import forecast, prewarm, state
from dynamic_dynamodb.loop import Ports, Scaler
from dynamic_dynamodb.model import AwsError, Capacity, TableBusy, TableDescription, Target, Update, WarmThroughput
from dynamic_dynamodb.policy import Memory
from dynamic_dynamodb.reasons import PRE_WARM, Reason
from dynamic_dynamodb.rules import DimensionRules, Schedule, TargetRules, Window
from dynamic_dynamodb.settings import GsiSection, Settings, TableSection

UTC = timezone.utc
NOW = datetime(2026, 11, 30, 15, 45, tzinfo=UTC)  # a Monday; "sales" comes into force at 15:50
SALES = Schedule("sales", (Window(time(16), time(22)),), min_reads=1200, min_writes=240)
END = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
WARM = WarmThroughput(100, 100, "ACTIVE")


def rules(*schedules: Schedule, max_reads: int | None = None, **kw) -> TargetRules:
    return TargetRules(reads=DimensionRules(max_provisioned=max_reads), schedules=schedules, **kw)


def at(hour: int, minute: int = 0) -> datetime:
    return NOW.replace(hour=hour, minute=minute)


# ---- the decision: tables of cases -------------------------------------------------------------


@pytest.mark.parametrize("warm, target_rules, asked, now, code, wanted", [
    # a schedule coming into force within its lead-minutes: raised to its min
    (WARM, rules(SALES), None, NOW, Reason.PRE_WARMED, WarmThroughput(1200, 240)),
    (WARM, rules(SALES), None, at(15, 40), Reason.PRE_WARMED, WarmThroughput(1200, 240)),  # 10 min ahead
    (WARM, rules(SALES), None, at(15, 39), Reason.NO_PEAK, None),  # 11 min ahead: not yet
    (WARM, rules(SALES), None, at(15, 50), Reason.NO_PEAK, None),  # in force: the floor raises capacity
    (WARM, rules(SALES), None, at(17), Reason.NO_PEAK, None),
    (WARM, rules(), None, NOW, Reason.NO_PEAK, None),
    # a longer lead looks further ahead; a lead of 0 still pre-warms ten minutes before
    (WARM, rules(Schedule("s", (Window(time(17), time(18)),), lead_minutes=90, min_reads=500)), None,
     at(15, 25), Reason.PRE_WARMED, WarmThroughput(500, None)),
    (WARM, rules(Schedule("s", (Window(time(16), time(18)),), lead_minutes=0, min_reads=500)), None,
     at(15, 51), Reason.PRE_WARMED, WarmThroughput(500, None)),
    # only what is below the need is asked for, never a lower value
    (WarmThroughput(5000, 100, "ACTIVE"), rules(SALES), None, NOW, Reason.PRE_WARMED, WarmThroughput(None, 240)),
    (WarmThroughput(1200, 240, "ACTIVE"), rules(SALES), None, NOW, Reason.WARM_ENOUGH, None),
    (WarmThroughput(9000, 9000, "ACTIVE"), rules(SALES), None, NOW, Reason.WARM_ENOUGH, None),
    # unknown: nothing, per dimension too
    (None, rules(SALES), None, NOW, Reason.WARM_UNKNOWN, None),
    (WarmThroughput(None, None, "ACTIVE"), rules(SALES), None, NOW, Reason.WARM_UNKNOWN, None),
    (WarmThroughput(100, None), rules(SALES), None, NOW, Reason.PRE_WARMED, WarmThroughput(1200, None)),
    (WarmThroughput(100, 100, "UPDATING"), rules(SALES), None, NOW, Reason.WARM_UPDATING, None),
    # never above max-provisioned-*: the table's, or a schedule's in force at the peak
    (WARM, rules(SALES, max_reads=800), None, NOW, Reason.PRE_WARMED, WarmThroughput(800, 240)),
    (WARM, rules(SALES, Schedule("cap", (Window(time(15), time(23)),), max_reads=600)), None, NOW,
     Reason.PRE_WARMED, WarmThroughput(600, 240)),
    # once per peak: asked before for this peak (until its end), not again; an older peak's request does not count
    (WARM, rules(SALES), END, NOW, Reason.PRE_WARM_DONE, None),
    (WARM, rules(SALES), NOW - timedelta(hours=20), NOW, Reason.PRE_WARMED, WarmThroughput(1200, 240)),
])
def test_the_plan_for_a_schedule(warm, target_rules, asked, now, code, wanted):
    plan = prewarm.plan(warm, target_rules, None, None, asked, now)
    assert (plan.code, plan.wanted) == (code, wanted), plan.reason
    assert (plan.until is not None) == (wanted is not None)
    assert plan.code in PRE_WARM


def test_a_planned_pre_warm_lasts_until_the_peak_ends_and_names_it():
    plan = prewarm.plan(WARM, rules(SALES), None, None, None, NOW)
    assert plan.until == END
    assert plan.reason == "schedule sales needs 1200/240 units/s, warm throughput is 100/100"


def test_several_schedules_coming_into_force_need_the_highest_min_each():
    other = Schedule("launch", (Window(time(16), time(17)),), min_reads=300, min_writes=900)
    plan = prewarm.plan(WARM, rules(SALES, other), None, None, None, NOW)
    assert plan.wanted == WarmThroughput(1200, 900) and plan.until == END
    assert plan.reason.startswith("schedule sales, launch needs")


def test_a_schedule_in_its_own_time_zone_is_pre_warmed_before_its_local_start():
    paris = Schedule("paris", (Window(time(17), time(23)),), timezone="Europe/Paris", min_reads=1000)
    assert prewarm.plan(WARM, rules(paris), None, None, None, NOW).wanted == WarmThroughput(1000, None)


# ---- the decision with the forecast ---------------------------------------------------------------


def jump(m: int) -> float:
    """50 units/s, ten times that from 13:00 to 16:00 UTC."""
    return 500.0 if 13 * 60 <= m % 1440 < 16 * 60 else 50.0


T0 = datetime(2026, 11, 2, tzinfo=UTC)
LEARNED = forecast.learn([(T0 + timedelta(minutes=m), jump(m) * 60.0, 0.0) for m in range(int((3 + 12.5 / 24) * 1440))])
BEFORE_JUMP = T0 + timedelta(days=3, hours=12, minutes=31)  # the fourth day's rise is at 13:00
FORECAST = TargetRules(scaling_policy="forecast", target_utilization=70.0)


def test_the_forecast_announces_a_recurring_rise_within_the_hour_at_the_target_utilisation():
    plan = prewarm.plan(WARM, FORECAST, LEARNED, LEARNED, None, BEFORE_JUMP)
    assert plan.code is Reason.PRE_WARMED and plan.wanted == WarmThroughput(715, 715)  # 500 / 0.7
    assert plan.until == T0 + timedelta(days=3, hours=13, minutes=30)  # the end of the half hour it peaks in
    assert plan.reason.startswith("forecast needs 715/715")


@pytest.mark.parametrize("target_rules, reads, now, code", [
    # the rise is more than an hour ahead: the steady level ahead is covered by the warm throughput
    (FORECAST, LEARNED, BEFORE_JUMP - timedelta(hours=2), Reason.WARM_ENOUGH),
    (TargetRules(scaling_policy="demand"), LEARNED, BEFORE_JUMP, Reason.NO_PEAK),  # only with scaling-policy forecast
    (FORECAST, None, BEFORE_JUMP, Reason.NO_PEAK),  # nothing learned yet
    (FORECAST, forecast.ForecastState(), BEFORE_JUMP, Reason.NO_PEAK),
])
def test_the_forecast_needs_its_policy_a_rhythm_and_a_rise_within_the_hour(target_rules, reads, now, code):
    assert prewarm.plan(WARM, target_rules, reads, None, None, now).code is code


def test_the_forecast_is_held_to_max_provisioned_and_joins_a_schedule():
    capped = TargetRules(reads=DimensionRules(max_provisioned=600), scaling_policy="forecast")
    assert prewarm.plan(WARM, capped, LEARNED, None, None, BEFORE_JUMP).wanted == WarmThroughput(600, None)
    launch = Schedule("launch", (Window(time(12, 45), time(14)),), min_writes=2000)
    both = TargetRules(scaling_policy="forecast", schedules=(launch,))
    plan = prewarm.plan(WARM, both, LEARNED, LEARNED, None, BEFORE_JUMP)
    assert plan.wanted == WarmThroughput(715, 2000) and plan.reason.startswith("schedule launch and forecast")


# ---- the decision: properties -----------------------------------------------------------------------

counts = st.one_of(st.none(), st.integers(min_value=1, max_value=50_000))


@st.composite
def schedules(draw) -> Schedule:
    start = draw(st.integers(min_value=0, max_value=23 * 60))
    length = draw(st.integers(min_value=1, max_value=600))
    end = (start + length) % 1440
    return Schedule(draw(st.sampled_from(["a", "b", "c"])),
                    (Window(time(start // 60, start % 60), time(end // 60, end % 60)),),
                    lead_minutes=draw(st.integers(min_value=0, max_value=120)),
                    min_reads=draw(counts), min_writes=draw(counts), max_reads=draw(counts), max_writes=draw(counts))


warms = st.one_of(st.none(), st.builds(WarmThroughput, counts, counts, st.sampled_from([None, "ACTIVE", "UPDATING"])))


@given(warm=warms,
       scheds=st.lists(schedules(), max_size=3), max_reads=counts, max_writes=counts,
       minutes=st.integers(min_value=0, max_value=2 * 1440),
       asked=st.one_of(st.none(), st.integers(min_value=-1440, max_value=1440)))
@hsettings(max_examples=300, deadline=None)
def test_a_pre_warm_never_lowers_never_exceeds_the_max_and_never_guesses_an_unknown(
        warm, scheds, max_reads, max_writes, minutes, asked):
    target_rules = TargetRules(reads=DimensionRules(max_provisioned=max_reads),
                               writes=DimensionRules(max_provisioned=max_writes), schedules=tuple(scheds))
    now = NOW + timedelta(minutes=minutes)
    asked_until = None if asked is None else now + timedelta(minutes=asked)
    plan = prewarm.plan(warm, target_rules, None, None, asked_until, now)
    assert plan.code in PRE_WARM
    if plan.wanted is None:
        return
    assert plan.code is Reason.PRE_WARMED and warm is not None and warm.status != "UPDATING"
    assert asked_until is None or asked_until <= now  # once per peak
    assert plan.until is not None and plan.until > now
    for wanted, known, ceiling, scheduled_max in (
            (plan.wanted.reads, warm.reads, max_reads, [s.max_reads for s in scheds if s.max_reads]),
            (plan.wanted.writes, warm.writes, max_writes, [s.max_writes for s in scheds if s.max_writes])):
        if wanted is None:
            continue
        assert known is not None and wanted > known  # only raised, only from a known value
        # never above the max in force at the peak: the table's, or a schedule's that replaces it then
        assert wanted <= max([ceiling or wanted, *scheduled_max])
    assert plan.wanted.reads is not None or plan.wanted.writes is not None


# ---- the pass that applies it -----------------------------------------------------------------------


def scaler(tables: FakeTables, target_rules: TargetRules, gsi_rules: TargetRules | None = None, **settings) -> Scaler:
    gsis = () if gsi_rules is None else (GsiSection(".*", re.compile(".*"), ".*", gsi_rules),)
    section = TableSection(".*", re.compile(".*"), target_rules, gsis)
    return Scaler(Settings(tables=(section,), **settings), Ports(tables, FakeMetrics(tables, {"orders": (50, 50)}),
                                                                  notifier=FakeNotifier()))


def orders(warm: WarmThroughput | None = WARM, gsi_warm: WarmThroughput | None = None) -> FakeTables:
    indexes = () if gsi_warm is None else (status("orders", "by_customer", warm=gsi_warm),)
    return FakeTables({"orders": TableDescription(status("orders", warm=warm), indexes)}, now=NOW)


PRE_WARM_SALES = rules(SALES, pre_warm=True)


def test_a_pass_raises_the_warm_throughput_once_before_a_scheduled_peak(caplog):
    caplog.set_level(logging.INFO, logger="dynamic-dynamodb")
    tables = orders()
    s = scaler(tables, PRE_WARM_SALES)
    report = s.run_pass(NOW)
    assert tables.updates == [Update("orders", table_warm=WarmThroughput(1200, 240))]
    assert report.prewarms == [(Target("orders"), Reason.PRE_WARMED)] and report.ok
    assert s.memory[Target("orders")].prewarm_until == END
    assert "orders: warm throughput raised to 1200/240 units/s: schedule sales needs" in caplog.text
    s.run_pass(NOW + timedelta(minutes=1))  # DynamoDB has not raised it yet: not asked twice for this peak
    assert len(tables.updates) == 1


def test_a_pre_warm_is_not_a_decrease_and_leaves_the_budget_alone():
    tables = orders()
    s = scaler(tables, PRE_WARM_SALES)
    s.run_pass(NOW)
    memory = s.memory[Target("orders")]
    assert (memory.decreases_today, memory.last_decrease) == (0, None)
    assert tables.tables["orders"] == Capacity(100, 100)


def test_the_pre_warm_of_a_gsi_goes_in_the_same_update_as_its_tables():
    tables = orders(gsi_warm=WarmThroughput(50, 10, "ACTIVE"))
    gsi = rules(Schedule("sales", SALES.hours, min_reads=400), pre_warm=True)
    report = scaler(tables, PRE_WARM_SALES, gsi).run_pass(NOW)
    assert tables.updates == [Update("orders", table_warm=WarmThroughput(1200, 240),
                                     index_warm={"by_customer": WarmThroughput(400, None)})]
    assert len(report.prewarms) == 2


def test_only_the_targets_with_pre_warm_on_are_pre_warmed():
    tables = orders(gsi_warm=WarmThroughput(50, 10, "ACTIVE"))
    scaler(tables, rules(SALES), rules(SALES, pre_warm=True)).run_pass(NOW)
    assert tables.updates == [Update("orders", index_warm={"by_customer": WarmThroughput(1200, 240)})]


def test_an_endpoint_without_warm_throughput_gets_nothing_and_is_named_once(caplog):
    caplog.set_level(logging.INFO, logger="dynamic-dynamodb")
    tables = orders(warm=None)
    s = scaler(tables, PRE_WARM_SALES, region="eu-north-1")
    s.run_pass(NOW)
    s.run_pass(NOW + timedelta(minutes=1))
    assert tables.updates == []
    assert caplog.text.count("reports no warm throughput") == 1


def test_a_refused_pre_warm_is_one_warning_and_is_not_asked_again_for_that_peak(caplog):
    tables = orders()
    tables.update_errors.append(AwsError("ValidationException: One or more parameter values were invalid",
                                         "ValidationException"))
    s = scaler(tables, PRE_WARM_SALES)
    report = s.run_pass(NOW)
    assert report.ok and report.prewarms == [(Target("orders"), Reason.PRE_WARM_REFUSED)]
    assert report.aws_errors == [("UpdateTable", "ValidationException")]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "orders: pre-warm refused, not asked again for this peak: ValidationException: One or more parameter "
        "values were invalid"]
    s.run_pass(NOW + timedelta(minutes=1))
    assert len(tables.updates) == 1
    s.run_pass(NOW + timedelta(days=1))  # the next day's peak is another one
    assert len(tables.updates) == 2


def test_a_busy_table_is_pre_warmed_on_the_next_pass():
    tables = orders()
    tables.update_errors.append(TableBusy("ResourceInUseException: updating", "ResourceInUseException"))
    s = scaler(tables, PRE_WARM_SALES)
    assert s.run_pass(NOW).prewarms == []
    s.run_pass(NOW + timedelta(minutes=1))
    assert len(tables.updates) == 2 and s.memory[Target("orders")].prewarm_until == END


def test_a_table_whose_capacity_changes_this_pass_is_pre_warmed_on_the_next():
    tables = orders()
    section = TableSection(".*", re.compile(".*"), PRE_WARM_SALES)
    load = {"orders": (95.0, 50.0)}
    s = Scaler(Settings(tables=(section,)), Ports(tables, FakeMetrics(tables, load)))
    s.run_pass(NOW)
    assert [u.table_warm for u in tables.updates] == [None]  # the capacity increase alone
    load["orders"] = (50.0, 50.0)
    s.run_pass(NOW + timedelta(minutes=1))
    assert tables.updates[-1].table_warm == WarmThroughput(1200, 240)


def test_a_dry_run_only_logs_the_pre_warm(caplog):
    caplog.set_level(logging.INFO, logger="dynamic-dynamodb")
    tables = orders()
    s = scaler(tables, PRE_WARM_SALES, dry_run=True)
    report = s.run_pass(NOW)
    assert tables.updates == [] and report.prewarms == []
    assert "orders: dry run, would raise the warm throughput to 1200/240 units/s" in caplog.text
    assert s.memory[Target("orders")].prewarm_until is None


def test_an_accepted_pre_warm_is_published_to_a_scale_up_topic():
    tables = orders()
    topic = "arn:aws:sns:us-east-1:123456789012:ops"
    s = scaler(tables, rules(SALES, pre_warm=True, sns_topic_arn=topic, sns_message_types=("scale-up",)))
    s.run_pass(NOW)
    [(sent_to, subject, body)] = s.live_ports.notifier.sent
    assert (sent_to, subject) == (topic, "Pre-warmed table orders")
    assert body.startswith("orders: warm throughput raised to 1200/240 units/s")


def test_what_a_pre_warm_was_for_survives_a_restart():
    memory = Memory(prewarm_until=END)
    assert state.decode_memory(state.encode_memory(memory)) == memory
    assert state.decode_memory(state.encode_memory(Memory())).prewarm_until is None


def test_the_metrics_count_pre_warms_by_outcome():
    from prometheus_client import generate_latest

    from dynamic_dynamodb.metrics import Metrics

    m = Metrics()
    m.observe([], 0, 0, [], NOW, 0.1, prewarms=[(Target("orders"), Reason.PRE_WARMED),
                                                  (Target("orders", "by_customer"), Reason.PRE_WARMED),
                                                  (Target("legacy"), Reason.PRE_WARM_REFUSED)])
    text = generate_latest(m.registry).decode()
    assert 'dynamic_dynamodb_prewarms_total{reason="pre_warmed"} 2.0' in text
    assert 'dynamic_dynamodb_prewarms_total{reason="pre_warm_refused"} 1.0' in text
