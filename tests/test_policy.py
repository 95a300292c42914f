"""The pure decision core: one table of cases per rule, and properties that always hold."""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamic_dynamodb import policy
from dynamic_dynamodb.model import Capacity, Dim, Target, TargetStatus
from dynamic_dynamodb.policy import Memory, Observed, decide, decide_dimension
from dynamic_dynamodb.reasons import HOLDS, SKIPS, Reason
from dynamic_dynamodb.rules import UNITS, DimensionRules, Schedule, TargetRules, Window

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
WINDOW = 300


def seen(pct_of: float, cur: int, throttled: float = 0.0) -> Observed:
    """An observation where consumption is `pct_of` percent of `cur` units."""
    return Observed(pct_of / 100.0 * cur * WINDOW, throttled, WINDOW)


def status(reads: int = 100, writes: int = 100, **kw) -> TargetStatus:
    return TargetStatus(Target("orders"), "ACTIVE", "PROVISIONED", Capacity(reads, writes), **kw)


def one(cur: int, obs: Observed, checks: int = 0, **rules) -> int:
    decision, _ = decide_dimension(Dim.READS, cur, obs, DimensionRules(**rules), checks)
    return decision.new


# ---- thresholds and steps -------------------------------------------------------------

THRESHOLD_CASES = [
    ("at the upper threshold reads grow by half", 100, 90, {}, 150),
    ("above the upper threshold reads grow by half", 100, 95, {}, 150),
    ("just under the upper threshold nothing changes", 100, 89.9, {}, 100),
    ("between thresholds nothing changes", 100, 50, {}, 100),
    ("at the lower threshold reads halve", 100, 30, {}, 50),
    ("below the lower threshold reads halve", 100, 10, {}, 50),
    ("a 1-unit table grows because percent increases round up", 1, 100, {}, 2),
    ("a 3-unit table grows by 2 at 50 percent", 3, 95, {}, 5),
    ("an increase by units adds the units", 100, 95, {"increase_with": 25, "increase_unit": UNITS}, 125),
    ("an increase by units larger than the table is not capped at doubling", 10, 95,
     {"increase_with": 50, "increase_unit": UNITS}, 60),
    ("an increase above 100 percent is allowed", 10, 95, {"increase_with": 300}, 40),
    ("a decrease by units subtracts the units", 100, 10, {"decrease_with": 30, "decrease_unit": UNITS}, 70),
    ("a percent decrease rounds the removed part down", 5, 10, {}, 3),
    ("a decrease never goes below 1", 2, 10, {"decrease_with": 90}, 1),
    ("a decrease by units larger than the table stops at 1", 5, 10, {"decrease_with": 50, "decrease_unit": UNITS}, 1),
    ("a decrease never goes below what is consumed", 100, 29, {"decrease_with": 90}, 29),
    ("consumption above provisioned grows from the consumed units", 100, 200, {}, 300),
    ("custom thresholds apply", 100, 75, {"upper_threshold": 70, "lower_threshold": 20}, 150),
]


@pytest.mark.parametrize("cur,pct,rules,expected", [c[1:] for c in THRESHOLD_CASES],
                         ids=[c[0] for c in THRESHOLD_CASES])
def test_threshold_policy(cur, pct, rules, expected):
    assert one(cur, seen(pct, cur), **rules) == expected


# ---- limits, zero and missing data ---------------------------------------------------------

LIMIT_CASES = [
    ("an increase stops at the max", 100, 95, {"max_provisioned": 120}, 120),
    ("a decrease stops at the min", 100, 10, {"min_provisioned": 80}, 80),
    ("without a min a decrease does not double the table (1.6.0 bug fixed)", 100, 30, {}, 50),
    ("a table below its min is raised without a load trigger", 5, 50, {"min_provisioned": 10}, 10),
    ("a table above its max is lowered without a load trigger", 500, 50, {"max_provisioned": 200}, 200),
    ("no data means no change", 100, None, {}, 100),
    ("no data still brings a table inside its limits", 500, None, {"max_provisioned": 200}, 200),
    ("at 0 percent there is no decrease by default", 100, 0, {}, 100),
    ("at 0 percent a decrease is allowed when configured", 100, 0, {"allow_scaling_down_on_0_percent": True}, 50),
    ("disabled autoscaling changes nothing", 100, 95, {"enabled": False}, 100),
    ("disabled up-scaling keeps a busy table", 100, 95, {"up_scaling": False}, 100),
    ("disabled down-scaling keeps an idle table", 100, 10, {"down_scaling": False}, 100),
]


@pytest.mark.parametrize("cur,pct,rules,expected", [c[1:] for c in LIMIT_CASES], ids=[c[0] for c in LIMIT_CASES])
def test_limits_zero_and_missing_data(cur, pct, rules, expected):
    obs = Observed(None, None, WINDOW) if pct is None else seen(pct, cur)
    assert one(cur, obs, **rules) == expected


# ---- 2.x rules: throttling, granular scales, consecutive checks ----------------------------

TWO_X_CASES = [
    ("throttle events above the threshold raise reads", 100, 50, 600, {"throttled_upper_threshold": 500}, 150),
    ("throttle events at the threshold do not raise reads", 100, 50, 500, {"throttled_upper_threshold": 500}, 100),
    ("throttling blocks a decrease", 100, 10, 5, {}, 100),
    ("a granular scale uses the largest threshold not above consumption", 100, 85, 0,
     {"increase_consumed_scale": {0: 0, 80: 10, 90: 40}}, 110),
    ("a granular scale replaces the upper threshold", 100, 95, 0,
     {"increase_consumed_scale": {0: 0, 80: 10, 90: 40}}, 140),
    ("a granular down scale uses the smallest threshold above consumption", 100, 15, 0,
     {"decrease_consumed_scale": {10: 50, 20: 20, 30: 10}}, 80),
    ("throttled share of provisioned picks an increase", 100, 50, 0.2 * 100 * WINDOW,
     {"increase_throttled_by_provisioned_scale": {0: 0, 10: 100}}, 200),
    ("throttled share of consumed picks an increase", 100, 50, 0.5 * 50 * WINDOW,
     {"increase_throttled_by_consumed_scale": {0: 0, 40: 30}}, 130),
    ("consumption-based increase amounts override the default", 100, 95, 0,
     {"increase_consumed_with": 10}, 110),
]


SCALE_EDGE_CASES = [
    ("an up scale's key takes its own amount", policy.scale_up_amount, 80.0, 10),
    ("just under an up scale's key takes the amount below it", policy.scale_up_amount, 79.9, 5),
    ("below every up key nothing", policy.scale_up_amount, 1.0, 0),
    ("a down scale's key takes its own amount", policy.scale_down_amount, 20.0, 20),
    ("just over a down scale's key takes the amount above it", policy.scale_down_amount, 20.1, 10),
    ("above every down key nothing", policy.scale_down_amount, 30.5, 0),
]


@pytest.mark.parametrize("amount_of,value,expected", [c[1:] for c in SCALE_EDGE_CASES],
                         ids=[c[0] for c in SCALE_EDGE_CASES])
def test_a_consumed_percentage_equal_to_a_scale_key_takes_that_keys_amount(amount_of, value, expected):
    scale = {10: 5, 80: 10} if amount_of is policy.scale_up_amount else {10: 50, 20: 20, 30: 10}
    assert amount_of(scale, value) == expected


@pytest.mark.parametrize("cur,pct,throttled,rules,expected", [c[1:] for c in TWO_X_CASES],
                         ids=[c[0] for c in TWO_X_CASES])
def test_two_x_rules(cur, pct, throttled, rules, expected):
    assert one(cur, seen(pct, cur, throttled), **rules) == expected


def test_consecutive_checks_hold_a_decrease_until_the_nth_check():
    rules = DimensionRules(checks_before_scale_down=3)
    checks, values = 0, []
    for _ in range(3):
        d, checks = decide_dimension(Dim.READS, 100, seen(10, 100), rules, checks)
        values.append(d.new)
    assert values == [100, 100, 50]


def test_consecutive_checks_restart_when_consumption_returns_between_thresholds():
    rules = DimensionRules(checks_before_scale_down=2)
    _, checks = decide_dimension(Dim.READS, 100, seen(10, 100), rules, 0)
    _, checks = decide_dimension(Dim.READS, 100, seen(50, 100), rules, checks)
    d, checks = decide_dimension(Dim.READS, 100, seen(10, 100), rules, checks)
    assert (d.new, checks) == (100, 1)


def test_consecutive_checks_reset_at_the_reset_percent():
    rules = DimensionRules(checks_before_scale_down=3, checks_reset_percent=5, lower_threshold=30)
    _, checks = decide_dimension(Dim.READS, 100, seen(10, 100), rules, 2)
    assert checks == 1  # reset to 0 by 10 % >= 5 %, then this check counts


# ---- the target: guards --------------------------------------------------------------------


def run(rules: TargetRules, reads_pct=10.0, writes_pct=50.0, st=None, memory=Memory(), now=NOW, closed=True):
    st = st or status()
    d, mem = decide(st, seen(reads_pct, st.capacity.reads), seen(writes_pct, st.capacity.writes),
                    rules, memory, now, closed)
    return d, mem


def test_both_dimensions_change_in_one_decision():
    d, _ = run(TargetRules(), reads_pct=95, writes_pct=10)
    assert d.capacity == Capacity(150, 50)


def test_open_circuit_breaker_blocks_increases_and_decreases():
    d, _ = run(TargetRules(), reads_pct=95, writes_pct=10, closed=False)
    assert not d.changed and (d.reads.code, d.writes.code, d.code) == (Reason.BREAKER_OPEN,) * 3


def test_outside_maintenance_windows_only_increases_happen():
    rules = TargetRules(maintenance_windows=(Window(time(22, 0), time(23, 59)),))
    d, _ = run(rules, reads_pct=95, writes_pct=10)
    assert d.capacity == Capacity(150, 100) and (d.reads.code, d.writes.code) == (Reason.HIGH_LOAD,
                                                                                   Reason.OUTSIDE_WINDOW)


def test_inside_a_window_that_wraps_midnight_decreases_happen():
    rules = TargetRules(maintenance_windows=(Window(time(22, 0), time(2, 0)),))
    d, _ = run(rules, now=NOW.replace(hour=1), reads_pct=10, writes_pct=10)
    assert d.capacity == Capacity(50, 50)


WINDOW_CASES = [
    ("22:30 is inside 22:00-23:59", "22:30", (22, 0, 23, 59), True),
    ("23:59 is inside 22:00-23:59", "23:59", (22, 0, 23, 59), True),
    ("06:00 is inside 00:00-06:00", "06:00", (0, 0, 6, 0), True),
    ("06:01 is outside 00:00-06:00", "06:01", (0, 0, 6, 0), False),
    ("23:00 is inside 22:00-02:00", "23:00", (22, 0, 2, 0), True),
    ("01:00 is inside 22:00-02:00", "01:00", (22, 0, 2, 0), True),
    ("12:00 is outside 22:00-02:00", "12:00", (22, 0, 2, 0), False),
    ("09:05 is inside 9:00-10:00", "09:05", (9, 0, 10, 0), True),
]


@pytest.mark.parametrize("now,window,inside", [c[1:] for c in WINDOW_CASES], ids=[c[0] for c in WINDOW_CASES])
def test_maintenance_window_contains(now, window, inside):
    h, m = map(int, now.split(":"))
    assert Window(time(window[0], window[1]), time(window[2], window[3])).contains(time(h, m)) is inside


def test_always_decrease_together_holds_a_lone_read_decrease():
    d, _ = run(TargetRules(always_decrease_rw_together=True), reads_pct=10, writes_pct=50)
    assert not d.changed and (d.reads.code, d.writes.code) == (Reason.WAITING_FOR_PARTNER, Reason.WITHIN_BAND)


def test_always_decrease_together_holds_a_lone_write_decrease():
    d, _ = run(TargetRules(always_decrease_rw_together=True), reads_pct=50, writes_pct=10)
    assert not d.changed and (d.reads.code, d.writes.code) == (Reason.WITHIN_BAND, Reason.WAITING_FOR_PARTNER)


def test_always_decrease_together_lets_both_decrease():
    d, _ = run(TargetRules(always_decrease_rw_together=True), reads_pct=10, writes_pct=10)
    assert d.capacity == Capacity(50, 50)


def test_always_decrease_together_lets_one_decrease_when_the_other_is_at_its_min():
    rules = TargetRules(always_decrease_rw_together=True, writes=DimensionRules(min_provisioned=100))
    d, _ = run(rules, reads_pct=10, writes_pct=50)
    assert d.capacity == Capacity(50, 100)


def test_always_decrease_together_never_holds_an_increase():
    d, _ = run(TargetRules(always_decrease_rw_together=True), reads_pct=95, writes_pct=50)
    assert d.capacity == Capacity(150, 100)


# ---- the decrease budget -------------------------------------------------------------------

BUDGET_CASES = [
    ("the first decrease of the day is allowed", 0, None, 0, True),
    ("the fourth decrease of the day is allowed back to back", 3, timedelta(minutes=1), 0, True),
    ("a fifth decrease within the hour is refused", 4, timedelta(minutes=59), 0, False),
    ("a fifth decrease an hour after the last is allowed", 4, timedelta(minutes=60), 0, True),
    ("yesterday's decreases do not count today", 10, timedelta(hours=13), 0, True),
    ("a reserved decrease is kept while the last one is recent", 2, timedelta(minutes=10), 2, False),
    ("a reserved decrease is spent an hour after the last one", 2, timedelta(minutes=61), 2, True),
]


@pytest.mark.parametrize("count,ago,reserved,allowed", [c[1:] for c in BUDGET_CASES],
                         ids=[c[0] for c in BUDGET_CASES])
def test_decrease_budget(count, ago, reserved, allowed):
    st = status(decreases_today=count, last_decrease=None if ago is None else NOW - ago)
    assert policy.decrease_allowed(st, Memory(), NOW, reserved) is allowed


def test_a_spent_budget_holds_the_decrease_and_keeps_the_increase():
    st = status(decreases_today=4, last_decrease=NOW - timedelta(minutes=5))
    d, _ = run(TargetRules(), reads_pct=95, writes_pct=10, st=st)
    assert d.capacity == Capacity(150, 100) and d.writes.code is Reason.BUDGET_SPENT and d.code is Reason.HIGH_LOAD
    assert d.budget_exhausted == NOW + timedelta(minutes=55)


def test_our_own_decreases_count_when_describe_table_lags():
    memory = Memory()
    for minute in range(4):
        memory = policy.record_decrease(memory, NOW - timedelta(minutes=10 - minute))
    assert not policy.decrease_allowed(status(), memory, NOW)


def test_a_held_decrease_keeps_its_consecutive_check_count():
    st = status(decreases_today=4, last_decrease=NOW - timedelta(minutes=5))
    rules = TargetRules(reads=DimensionRules(checks_before_scale_down=2))
    _, mem = run(rules, reads_pct=10, st=st, memory=Memory(read_checks=1))
    assert mem.read_checks == 2


# ---- alarms ----------------------------------------------------------------------------------


def test_a_throughput_alarm_is_sent_on_entering_the_state_only():
    rules = TargetRules(reads=DimensionRules(upper_alarm_threshold=80))
    first, mem = run(rules, reads_pct=85)
    second, mem = run(rules, reads_pct=85, memory=mem)
    cleared, mem = run(rules, reads_pct=50, memory=mem)
    again, _ = run(rules, reads_pct=85, memory=mem)
    assert (first.alarm, second.alarm, cleared.alarm, again.alarm) == ("high", None, None, "high")


# ---- properties ------------------------------------------------------------------------------

limits = st.tuples(st.integers(1, 500), st.integers(0, 500)).map(lambda t: (t[0], t[0] + t[1]))


@given(cur=st.integers(1, 10_000), pct=st.floats(0, 1000), lim=limits,
       inc=st.floats(0, 500), dec=st.floats(0, 100), throttled=st.floats(0, 1e6))
def test_result_always_lies_within_min_and_max(cur, pct, lim, inc, dec, throttled):
    rules = DimensionRules(min_provisioned=lim[0], max_provisioned=lim[1], increase_with=inc, decrease_with=dec)
    d, _ = decide_dimension(Dim.READS, cur, seen(pct, cur, throttled), rules, 0)
    assert lim[0] <= d.new <= lim[1]


@given(cur=st.integers(1, 10_000), pct=st.floats(0, 1000), lower=st.floats(0, 89), dec=st.floats(0, 100))
def test_never_a_decrease_above_the_lower_threshold(cur, pct, lower, dec):
    rules = DimensionRules(lower_threshold=lower, decrease_with=dec)
    d, _ = decide_dimension(Dim.READS, cur, seen(pct, cur), rules, 0)
    if pct > lower:
        assert d.new >= cur


@given(cur=st.integers(1, 10_000), lower=st.floats(0, 100), allow0=st.booleans())
def test_no_data_never_decreases(cur, lower, allow0):
    rules = DimensionRules(lower_threshold=lower, allow_scaling_down_on_0_percent=allow0)
    d, _ = decide_dimension(Dim.READS, cur, Observed(None, None, WINDOW), rules, 0)
    assert d.new == cur


@given(count=st.integers(0, 30), minutes_ago=st.integers(0, 2000), r=st.integers(0, 100), w=st.integers(0, 100))
def test_never_a_decrease_that_dynamodb_would_refuse(count, minutes_ago, r, w):
    last = NOW - timedelta(minutes=minutes_ago)
    st_ = status(decreases_today=count if last.date() == NOW.date() else 0, last_decrease=last)
    d, _ = decide(st_, seen(r, 100), seen(w, 100), TargetRules(), Memory(), NOW)
    refused = last.date() == NOW.date() and count >= 4 and minutes_ago < 60
    if refused:
        assert not d.decreasing


def test_a_spent_budget_is_reported_once_a_day():
    st = status(decreases_today=4, last_decrease=NOW - timedelta(minutes=5))
    first, mem = run(TargetRules(), reads_pct=10, st=st)
    second, mem = run(TargetRules(), reads_pct=10, st=st, memory=mem, now=NOW + timedelta(minutes=5))
    assert first.budget_exhausted == NOW + timedelta(minutes=55) and second.budget_exhausted is None


# ---- reason codes ----------------------------------------------------------------------

CODE_CASES = [
    ("above the upper threshold", 100, seen(95, 100), 0, {}, Reason.HIGH_LOAD),
    ("a granular up step", 100, seen(95, 100), 0, {"increase_consumed_scale": {80: 10}}, Reason.HIGH_LOAD),
    ("throttle events over the threshold", 100, seen(50, 100, 1000), 0, {"throttled_upper_threshold": 100},
     Reason.THROTTLED),
    ("throttling by provisioned", 100, seen(50, 100, 3000), 0, {"increase_throttled_by_provisioned_scale": {5: 20}},
     Reason.THROTTLED),
    ("between the thresholds", 100, seen(50, 100), 0, {}, Reason.WITHIN_BAND),
    ("below the lower threshold", 100, seen(10, 100), 0, {}, Reason.LOW_LOAD),
    ("a decrease waiting for its checks", 100, seen(10, 100), 0, {"checks_before_scale_down": 3},
     Reason.CHECKS_PENDING),
    ("no datapoint", 100, Observed(None, None, WINDOW), 0, {}, Reason.NO_DATA),
    ("autoscaling off", 100, seen(95, 100), 0, {"enabled": False}, Reason.DISABLED),
    ("down-scaling off", 100, seen(10, 100), 0, {"down_scaling": False}, Reason.DOWN_DISABLED),
    ("consumed 0 percent", 100, seen(0, 100), 0, {}, Reason.ZERO_PERCENT),
    ("low load while throttled", 100, seen(10, 100, 1), 0, {}, Reason.THROTTLED_NO_DECREASE),
    ("a step that removes nothing", 1, seen(10, 1), 0, {}, Reason.DECREASE_TOO_SMALL),
    ("an increase limited to max", 100, seen(95, 100), 0, {"max_provisioned": 120}, Reason.AT_MAX),
    ("a decrease limited to min", 100, seen(10, 100), 0, {"min_provisioned": 80}, Reason.AT_MIN),
    ("capacity below min", 10, seen(50, 10), 0, {"min_provisioned": 20}, Reason.BELOW_MIN),
    ("capacity above max", 200, seen(50, 200), 0, {"max_provisioned": 100}, Reason.ABOVE_MAX),
]


@pytest.mark.parametrize("cur,obs,checks,rules,code", [c[1:] for c in CODE_CASES], ids=[c[0] for c in CODE_CASES])
def test_every_threshold_outcome_has_its_code(cur, obs, checks, rules, code):
    d, _ = decide_dimension(Dim.READS, cur, obs, DimensionRules(**rules), checks)
    assert d.code is code


def test_a_skipped_target_is_a_decision_that_changes_nothing():
    d = policy.skipped(status(), Reason.NOT_ACTIVE, "status UPDATING")
    assert not d.changed and d.code is Reason.NOT_ACTIVE and d.reads.code is Reason.NOT_ACTIVE


@given(cur=st.integers(1, 10_000), r=st.floats(0, 300), w=st.floats(0, 300), count=st.integers(0, 10),
       closed=st.booleans(), together=st.booleans())
def test_a_change_always_carries_a_code_of_the_load_and_a_steady_dimension_never_does(cur, r, w, count, closed,
                                                                                       together):
    st_ = status(cur, cur, decreases_today=count, last_decrease=NOW - timedelta(minutes=5))
    d, _ = decide(st_, seen(r, cur), seen(w, cur), TargetRules(always_decrease_rw_together=together), Memory(),
                  NOW, closed)
    changes = {Reason.HIGH_LOAD, Reason.THROTTLED, Reason.LOW_LOAD, Reason.AT_MIN, Reason.AT_MAX}
    for dim in d.dims():
        assert (dim.code in changes) if dim.change else (dim.code not in changes - {Reason.AT_MIN, Reason.AT_MAX})
        assert dim.code not in SKIPS
    assert d.code in changes if d.changed else d.code in HOLDS | {c for c in Reason if c not in changes}


def test_the_docs_list_every_reason_code_in_the_order_of_importance():
    text = (Path(__file__).parent.parent / "docs" / "scaling.rst").read_text(encoding="utf-8")
    listed = re.findall(r"^``([a-z_]+)``  ", text.split(".. _reason-codes:")[1], re.MULTILINE)
    assert listed == [code.value for code in Reason]


# ---- the decrease kept for the end of a scheduled floor ---------------------------------------

FLOOR_END = NOW + timedelta(hours=3)  # 15:00 UTC, later the same day
KEPT_CASES = [
    ("an hourly decrease more than an hour before the floor's end still goes",
     FLOOR_END - timedelta(minutes=61), timedelta(minutes=61), None),
    ("an hourly decrease within the hour before the floor's end would spend the kept one: it waits for the end",
     FLOOR_END - timedelta(minutes=59), timedelta(minutes=61), FLOOR_END),
    ("a decrease within the hour of the last waits for the hour, as ever",
     FLOOR_END - timedelta(hours=2), timedelta(minutes=30), FLOOR_END - timedelta(minutes=90)),
]


@pytest.mark.parametrize("now,ago,next_at", [c[1:] for c in KEPT_CASES], ids=[c[0] for c in KEPT_CASES])
def test_the_decrease_kept_for_a_floors_end_is_not_spent_by_the_hourly_rule(now, ago, next_at):
    # 3 spent, one of the 4 kept: past the free ones, decreases are an hour apart
    st = status(decreases_today=3, last_decrease=now - ago)
    assert policy.decrease_allowed(st, Memory(), now, 1, keep_for=FLOOR_END) is (next_at is None)
    assert policy.next_decrease_at(st, Memory(), now, 1, keep_for=FLOOR_END) == (next_at or now)


def test_a_floors_end_gets_its_decrease_though_hourly_decreases_go_on_during_the_floor():
    sales = Schedule("sales", (Window(time(16), time(22)),), lead_minutes=0, min_reads=1000)
    rules = TargetRules(schedules=(sales,))
    memory, cap = Memory(), Capacity(1000, 400)
    day = datetime(2026, 11, 30, tzinfo=timezone.utc)
    low = Observed(10 * 300, 0.0, 300)
    sent = []
    for minute in range(24 * 60):
        now = day + timedelta(minutes=minute)
        if minute % 60 == 50:
            cap = Capacity(cap.reads, max(cap.writes, 400))  # writes come back every hour: one more decrease
        d, memory = policy.decide(TargetStatus(Target("orders"), "ACTIVE", "PROVISIONED", cap), low, low, rules,
                                  memory, now)
        if d.decreasing:
            memory = policy.record_decrease(memory, now)
            sent.append(now)
        cap = d.capacity
    assert day + timedelta(hours=22) in sent, [f"{t:%H:%M}" for t in sent]


LIMIT_CASES = [
    ("below the min: raised to it, named min", DimensionRules(min_provisioned=60, max_provisioned=100), 5,
     "outside limits, min is 60", Reason.BELOW_MIN),
    ("above the max: lowered to it, named max", DimensionRules(max_provisioned=30), 50,
     "outside limits, max is 30", Reason.ABOVE_MAX),
    ("a min above the max (two schedules crossing): the max wins and is named", DimensionRules(min_provisioned=60,
                                                                                               max_provisioned=30),
     5, "outside limits, max is 30", Reason.BELOW_MIN),
    ("the min equal to the max", DimensionRules(min_provisioned=30, max_provisioned=30), 5,
     "outside limits, min is 30", Reason.BELOW_MIN),
]


@pytest.mark.parametrize("r,cur,text,code", [c[1:] for c in LIMIT_CASES], ids=[c[0] for c in LIMIT_CASES])
def test_a_capacity_outside_the_limits_names_the_bound_that_set_it(r, cur, text, code):
    d = policy._limited(Dim.READS, cur, Observed(None, None, 300), r, cur, Reason.NO_DATA, "no data")
    assert (d.reason, d.code) == (text, code) and d.new == policy.clamp(cur, r)


@given(spent=st.integers(0, 6), minute=st.integers(0, 24 * 60 - 1), ago=st.integers(1, 24 * 60),
       configured=st.integers(0, 3))
def test_the_reserve_looked_at_lazily_gives_the_answers_of_the_full_one(spent, minute, ago, configured):
    # the floor's end is worked out only once the free decreases are nearly spent: the answers are the same
    sales = Schedule("sales", (Window(time(16), time(22)),), lead_minutes=0, min_reads=1000)
    rules = TargetRules(schedules=(sales,), reserved_decreases=configured)
    now = datetime(2026, 11, 30, tzinfo=timezone.utc) + timedelta(minutes=minute)
    st_ = status(decreases_today=spent, last_decrease=now - timedelta(minutes=ago) if spent else None)
    lazy, full = policy.reserve(rules, now, spent), policy.reserve(rules, now, policy.FREE_DECREASES_PER_DAY)
    assert policy.decrease_allowed(st_, Memory(), now, *lazy) == policy.decrease_allowed(st_, Memory(), now, *full)
    assert policy.next_decrease_at(st_, Memory(), now, *lazy) == policy.next_decrease_at(st_, Memory(), now, *full)


def test_a_dimension_memory_and_a_proposal_show_their_fields():
    # plain classes (not named tuples, for the compiled build): an assertion that fails still shows them
    memory = policy.DimMemory(checks=2)
    assert repr(memory) == "DimMemory(checks=2, demand=None, forecast=None)"
    proposal = policy.Proposal(5, Reason.DEMAND_UP, "up", memory)
    assert repr(proposal) == f"Proposal(new=5, code={Reason.DEMAND_UP!r}, reason='up', memory={memory!r})"
