"""scaling-policy: demand — each rule pinned by a case."""
from __future__ import annotations

import csv
import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamic_dynamodb import demand
from dynamic_dynamodb.config import load_settings
from dynamic_dynamodb.demand import BURST_SECONDS, DemandState
from dynamic_dynamodb.model import Capacity, Dim, Target, TargetStatus
from dynamic_dynamodb.policy import POLICIES, SCALING_POLICIES, DimMemory, Memory, Observed, decide, decide_with
from dynamic_dynamodb.reasons import Reason
from dynamic_dynamodb.rules import DimensionRules, TargetRules
from dynamic_dynamodb.simulation import simulate
from dynamic_dynamodb.simulation.trace import write_trace

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
RULES_80 = TargetRules(scaling_policy="demand", target_utilization=80)


def minutes(*per_second: float, throttled: float = 0.0, start: datetime = T0):
    """A per-minute series at the given demand (units/s), the last minute throttled as given."""
    rows = [(start + timedelta(minutes=i), v * 60.0, 0.0) for i, v in enumerate(per_second)]
    if throttled:
        m, c, _ = rows[-1]
        rows[-1] = (m, c, throttled * 60.0)
    return tuple(rows)


def full(cur: int, values: tuple[float, ...] = ()) -> DemandState:
    """A state whose burst bucket is full, the newest minute just before T0."""
    return DemandState(T0 - timedelta(minutes=1), values, BURST_SECONDS * cur)


def empty() -> DemandState:
    return DemandState(T0 - timedelta(minutes=1), (), 0.0)


CASES = [
    ("throttling empties the bucket: capacity carries the peak at the target utilisation",
     100, minutes(80, 90, 100, throttled=20), full(100), 150, Reason.THROTTLED),
    ("demand above halfway between the effective utilisation and 100 percent raises it close to the demand",
     100, minutes(98, 98), full(100), 104, Reason.DEMAND_UP),
    ("one minute above that line, from the target utilisation, is left to a bucket that carries it",
     100, minutes(80, 110), full(100), 100, Reason.BURST_CARRIED),
    ("one minute above that line after one above the target is a rise in steps: raised at once",
     100, minutes(81, 110), full(100), 120, Reason.DEMAND_UP),
    ("one minute the bucket could not carry for three more minutes raises capacity at once",
     100, minutes(70, 200), full(100), 235, Reason.DEMAND_UP),
    ("one hot minute with a bucket under half full raises capacity at once",
     100, minutes(110), DemandState(T0 - timedelta(minutes=1), (), 0.4 * BURST_SECONDS * 100), 131,
     Reason.DEMAND_UP),
    ("one throttled minute is never left to the bucket", 100, minutes(70, 110, throttled=1), full(100), 139,
     Reason.THROTTLED),
    ("demand below that halfway point keeps capacity", 100, minutes(96), full(100), 100, Reason.WITHIN_BAND),
    ("a hot minute is sized from the peak of the last three minutes",
     100, minutes(120, 99, 99), full(100), 132, Reason.DEMAND_UP),
    ("no datapoint keeps capacity", 100, (), DemandState(), 100, Reason.NO_DATA),
    ("a quiet half hour lowers capacity to what served it, at the target utilisation",
     100, minutes(*[40] * 5), full(100), 50, Reason.DEMAND_DOWN),
    ("a small drop is not worth a decrease", 100, minutes(*[76] * 5), full(100), 100, Reason.WITHIN_BAND),
    ("a level held in the last ten minutes holds a decrease back", 100, minutes(*[40] * 20 + [88] * 10),
     full(100), 100, Reason.WITHIN_BAND),
]


@pytest.mark.parametrize("cur,series,state,expected,code", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_demand_policy(cur, series, state, expected, code):
    obs = Observed(sum(c for _, c, _ in series) if series else None, 0.0, 60 * max(1, len(series)), series)
    d, _ = decide_with(POLICIES["demand"], Dim.READS, cur, obs, DimensionRules(), RULES_80, DimMemory(demand=state))
    assert (d.new, d.code) == (expected, code), d.reason


def test_a_jump_keeps_more_headroom_than_a_small_rise():
    bucket = BURST_SECONDS * 100  # full at the old capacity of 100
    small, jump = demand.sized_up(105, bucket, 0.8), demand.sized_up(300, bucket, 0.8)
    assert 105 / small > 300 / jump and 300 / jump < 0.85


def test_an_increase_is_the_least_capacity_that_carries_the_peak():
    wanted = demand.sized_up(300, BURST_SECONDS * 100, 0.8)

    def fits(p):
        return 300 <= p * demand.effective_utilisation(0.8, BURST_SECONDS * 100 / (BURST_SECONDS * p))

    assert fits(wanted) and not fits(wanted - 1)


def test_throttling_empties_the_estimated_bucket():
    state, _ = demand.fold(full(100), minutes(100, throttled=5), 100)
    assert state.bucket == 0


def test_an_empty_bucket_makes_an_increase_earlier_and_bigger():
    new, _, state = demand.propose(100, minutes(92), 80, empty())
    assert new == demand.sized_up(92, state.bucket, 0.8) and new >= 92 / 0.8
    assert demand.propose(100, minutes(92), 80, full(100))[0] == 100


def test_a_spike_that_burst_would_carry_does_not_hold_a_decrease_back():
    new, reason, _ = demand.propose(100, minutes(*[40] * 10 + [90] + [40] * 19), 80, full(100))
    assert 50 <= new < 90, reason


@pytest.mark.parametrize("target", [20, 50, 80, 90])
@pytest.mark.parametrize("fill", [0.0, 0.5, 1.0])
def test_effective_utilisation_stays_between_half_the_target_and_full(target, fill):
    assert target / 200 <= demand.effective_utilisation(target / 100, fill) < 1


def test_minutes_already_seen_are_not_counted_twice():
    _, _, state = demand.propose(100, minutes(50, 60), 80, DemandState())
    obs = Observed(110 * 60.0, 0.0, 120, minutes(50, 60))
    d, again = decide_with(POLICIES["demand"], Dim.READS, 100, obs, DimensionRules(), RULES_80, DimMemory(demand=state))
    assert (d.new, d.code, again.demand.demand) == (100, Reason.NO_NEW_DATA, (50.0, 60.0))


def test_history_keeps_the_last_half_hour_only():
    _, _, state = demand.propose(100, minutes(*range(90)), 80, DemandState())
    assert len(state.demand) == demand.HISTORY_MINUTES and state.demand[-1] == 89.0


def test_the_bucket_fills_with_unused_capacity_and_drains_with_burst():
    state, _ = demand.fold(DemandState(), minutes(50, 50), 100)
    assert state.bucket == 2 * 50 * 60
    state, _ = demand.fold(state, minutes(150, start=T0 + timedelta(minutes=5)), 100)
    assert state.bucket == 2 * 50 * 60 - 50 * 60


def status(reads=100, writes=100, **kw):
    return TargetStatus(Target("orders"), "ACTIVE", "PROVISIONED", Capacity(reads, writes), **kw)


def observed(*per_second: float) -> Observed:
    series = minutes(*per_second)
    return Observed(sum(c for _, c, _ in series), 0.0, 60 * len(series), series)


def test_demand_mode_still_obeys_the_decrease_budget():
    st_ = status(decreases_today=4, last_decrease=T0 - timedelta(minutes=5))
    d, _ = decide(st_, observed(10, 10), observed(10, 10), TargetRules(scaling_policy="demand"), Memory(),
                  T0 + timedelta(minutes=3))
    assert not d.changed and (d.reads.code, d.writes.code) == (Reason.BUDGET_SPENT,) * 2


def test_demand_mode_still_obeys_min_and_max():
    rules = TargetRules(scaling_policy="demand", reads=DimensionRules(max_provisioned=120),
                        writes=DimensionRules(min_provisioned=80))
    d, _ = decide(status(), observed(200, 200), observed(10, 10), rules, Memory(), T0 + timedelta(minutes=3))
    assert d.capacity == Capacity(120, 80)


def test_demand_mode_keeps_its_history_in_memory():
    _, mem = decide(status(), observed(50, 60), observed(5, 6), TargetRules(scaling_policy="demand"), Memory(),
                    T0 + timedelta(minutes=3))
    assert mem.reads_demand.demand == (50.0, 60.0) and mem.writes_demand.demand == (5.0, 6.0)


@given(cur=st.integers(1, 5000), values=st.lists(st.floats(0, 10_000), min_size=1, max_size=90),
       target=st.floats(20, 90), bucket=st.floats(0, 1))
def test_a_decrease_never_goes_below_what_the_last_minutes_demanded(cur, values, target, bucket):
    state = DemandState(None, (), bucket * BURST_SECONDS * cur)
    new, _, after = demand.propose(cur, minutes(*values), target, state)
    if new < cur:
        assert new >= max(after.demand[-demand.RECENT_MINUTES:])


@given(cur=st.integers(1, 5000), shares=st.lists(st.floats(0, 1.1), max_size=28), before=st.floats(0, 1.2),
       newest=st.floats(0.9, 2), fill=st.floats(0, 1))
def test_only_a_lone_minute_from_the_target_that_leaves_half_a_bucket_is_carried(cur, shares, before, newest, fill):
    # demand as shares of the capacity (a history mostly below it, which leaves a bucket to carry with),
    # the last two minutes near the line, where the rule decides
    state = DemandState(T0 - timedelta(minutes=len(shares) + 1), (), fill * BURST_SECONDS * cur)
    series = minutes(*[s * cur for s in [*shares, before, newest]], start=T0 - timedelta(minutes=len(shares)))
    new, _, after = demand.propose(cur, series[-2:], 80, demand.fold(state, series[:-2], cur)[0])
    effective = demand.effective_utilisation(0.8, after.bucket / (BURST_SECONDS * cur))
    if after.demand[-1] > cur * (1 + effective) / 2:  # above the line: carried, or raised at once
        assert (new == cur) == demand.carried(after, cur, 80, interval=2)
    if demand.carried(after, cur, 80, interval=2):
        assert new == cur
        # the pass folded in two minutes: the next is two minutes away, as two unseen ones are
        drain = (demand.UNSEEN_MINUTES + 2) * 60.0 * max(0.0, after.demand[-1] - cur)
        assert after.bucket - drain >= 0.5 * BURST_SECONDS * cur
        assert len(after.demand) < 2 or after.demand[-2] <= 0.8 * cur


def test_every_scaling_policy_is_named_in_the_registry_and_accepted_by_the_config():
    from dynamic_dynamodb import config

    assert SCALING_POLICIES == tuple(POLICIES) == ("threshold", "demand", "forecast")
    assert all(POLICIES[name].name == name for name in POLICIES)
    assert [config.to_policy(name) for name in SCALING_POLICIES] == list(SCALING_POLICIES)


@given(on=st.booleans(), up=st.booleans(), down=st.booleans(), values=st.lists(st.floats(0, 500), min_size=1,
                                                                                 max_size=30),
       name=st.sampled_from(("threshold", "demand")))
def test_the_switches_hold_for_every_policy(on, up, down, values, name):
    obs = Observed(sum(values) * 60.0, 0.0, 60 * len(values), minutes(*values))
    r = DimensionRules(enabled=on, up_scaling=up, down_scaling=down)
    d, _ = decide_with(POLICIES[name], Dim.READS, 100, obs, r, TargetRules(scaling_policy=name), DimMemory())
    assert on or d.code is Reason.DISABLED
    assert d.new <= 100 or (on and up)
    assert d.new >= 100 or (on and down)


def test_once_decreases_are_an_hour_apart_an_increase_is_sized_as_a_full_bucket_allows():
    # a jump from an empty bucket: at the target with free decreases left, closer to the peak once they are spent
    free, _, _ = demand.propose(100, minutes(300), 80, empty())
    spaced, reason, _ = demand.propose(100, minutes(300), 80, empty(), spaced=True)
    assert free == math.ceil(300 / 0.8) and spaced == math.ceil(300 / demand.effective_utilisation(0.8, 1.0))
    assert "95% utilisation" in reason


def test_the_policy_sizes_increases_closer_once_the_days_free_decreases_are_spent():
    rules = TargetRules(scaling_policy="demand", target_utilization=80)
    now = T0 + timedelta(minutes=3)
    fresh, _ = decide(status(), observed(300), observed(10), rules, Memory(), now)
    spent = status(decreases_today=4, last_decrease=T0 - timedelta(minutes=30))
    later, _ = decide(spent, observed(300), observed(10), rules, Memory(), now)
    assert fresh.reads.new == 375 and later.reads.new == 316  # 300 at 80 %, then at 95 %
    # the threshold policy has no history: its steps are as configured either way
    one, _ = decide(status(), observed(300), observed(10), TargetRules(), Memory(), now)
    two, _ = decide(spent, observed(300), observed(10), TargetRules(), Memory(), now)
    assert one.reads.new == two.reads.new


def spiked(cur: int, spike_minutes: int, spike: float = 300.0, level: float = 40.0) -> DemandState:
    """A full half hour whose oldest minutes were a spike, quiet since."""
    values = (spike,) * spike_minutes + (level,) * (demand.HISTORY_MINUTES - spike_minutes)
    return DemandState(T0 - timedelta(minutes=1), values, BURST_SECONDS * cur)


def test_a_spike_leaving_the_half_hour_makes_a_later_decrease_deeper():
    state = spiked(500, 5)
    assert demand.leaving(state, 20) == [1, 2, 3, 4, 5]
    now, after = demand.later(state, 500, 80, 0), demand.later(state, 500, 80, 5)
    assert after < now < 500 and after == math.ceil(40 / 0.8)
    # a quiet half hour: nothing leaves that would change the decrease
    assert demand.leaving(DemandState(T0, (40.0,) * 30, 0.0), 20) == []


def test_a_rise_in_the_newest_minutes_makes_the_later_decrease_no_deeper():
    values = (300.0,) * 5 + (40.0,) * 20 + (290.0,) * 5
    state = DemandState(T0, values, BURST_SECONDS * 500)
    # the coming minutes are taken to ask what the newest ones did: the rise sets the decrease, later as now
    assert demand.leaving(state, 20) == [1, 2, 3, 4, 5]
    assert demand.later(state, 500, 80, 5) == demand.later(state, 500, 80, 0) >= 290 / 0.95


def timed_decide(state: DemandState, last_ago: timedelta, cur: int = 500):
    """A pass with the day's free decreases spent, the last one `last_ago` before it."""
    now = T0 + timedelta(minutes=1)
    st_ = status(reads=cur, writes=cur, decreases_today=4, last_decrease=now - last_ago)
    memory = Memory(reads_demand=state, writes_demand=state)
    quiet = observed(40)._replace(series=minutes(40, start=T0))
    return decide(st_, quiet, quiet, RULES_80, memory, now)[0]


def test_an_hourly_decrease_waits_for_the_deeper_one_a_leaving_spike_allows():
    d = timed_decide(spiked(500, 5), timedelta(minutes=61))
    assert not d.changed and d.reads.code is Reason.DECREASE_TIMED and "deeper decrease in" in d.reads.reason
    # the wait is bounded: 20 minutes past the hour, the decrease goes as it is
    d = timed_decide(spiked(500, 5), timedelta(minutes=81))
    assert d.reads.new < 500 and d.reads.code is Reason.DEMAND_DOWN


def test_a_decrease_with_nothing_deeper_coming_goes_at_once():
    d = timed_decide(DemandState(T0 - timedelta(minutes=1), (40.0,) * 30, BURST_SECONDS * 500), timedelta(minutes=61))
    assert d.reads.new == d.writes.new < 100 and d.reads.code is Reason.DEMAND_DOWN


def test_free_decreases_are_not_timed():
    now = T0 + timedelta(minutes=1)
    state = spiked(500, 5)
    memory = Memory(reads_demand=state, writes_demand=state)
    quiet = observed(40)._replace(series=minutes(40, start=T0))
    d, _ = decide(status(500, 500, decreases_today=2), quiet, quiet, RULES_80, memory, now)
    assert d.reads.new < 500 and d.reads.code is Reason.DEMAND_DOWN


@given(values=st.lists(st.floats(0, 1000), min_size=11, max_size=30), cur=st.integers(1, 2000),
       ago=st.integers(60, 200), now_reads=st.floats(0, 1000))
def test_a_timed_decrease_waits_at_most_twenty_minutes_past_the_hour_and_holds_only_decreases(values, cur, ago,
                                                                                               now_reads):
    state = DemandState(T0 - timedelta(minutes=1), tuple(values), BURST_SECONDS * cur / 2)
    now = T0 + timedelta(minutes=1)
    st_ = status(reads=cur, writes=cur, decreases_today=4, last_decrease=now - timedelta(minutes=ago))
    obs = observed(now_reads)._replace(series=minutes(now_reads, start=T0))
    d, _ = decide(st_, obs, obs, RULES_80, Memory(reads_demand=state, writes_demand=state), now)
    for dim in d.dims():
        if dim.code is Reason.DECREASE_TIMED:
            assert ago < 60 + 20 and dim.new == dim.current
        else:
            assert dim.code is not Reason.BUDGET_SPENT  # an hour after the last, the budget allows it


def test_in_the_simulator_lone_hot_minutes_of_noisy_traffic_ride_on_burst_credit(tmp_path):
    # ten hours of one-minute data: a level with 5 % noise and one minute at 1.6 times it every 20 minutes
    rng = random.Random(5)
    reads = [100.0 * rng.uniform(0.95, 1.05) * (1.6 if m % 20 == 19 else 1.0) for m in range(600)]
    trace = tmp_path / "noisy.csv"
    write_trace(trace, T0, reads, [r / 5 for r in reads])
    recommended = Path(__file__).resolve().parents[1] / "examples" / "recommended.conf"
    report = simulate(load_settings(["--config", str(recommended)]), trace, tmp_path / "out", progress=None)
    with open(tmp_path / "out" / "timeline.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    reads_capacity = [int(r["provisioned_reads"]) for r in rows]
    raises = sum(b > a for a, b in zip(reads_capacity, reads_capacity[1:], strict=False))
    assert report.config.throttled_share == 0
    assert any("burst_carried" in r["reason"] for r in rows)
    assert raises < 30 / 4  # without the rule, 17 of the 30 hot minutes raised reads, each for an hour
    assert report.config.cost_usd < report.baselines["aws-target-70"].cost_usd  # 0.35 against 0.39; 0.41 without


def test_a_blip_is_left_to_the_bucket_only_if_it_lasts_until_the_next_pass_would_raise():
    # one minute at 1.5 times a full bucket's capacity: drained for three minutes when passes run every
    # minute (half the bucket is left), for seven with a pass every five minutes (too little is left)
    state = demand.fold(full(100), minutes(70, 70, 70, 70), 100)[0]
    every_minute, _, _ = demand.propose(100, minutes(150, start=T0 + timedelta(minutes=4)), 80, state)
    every_five, _, _ = demand.propose(100, minutes(70, 70, 70, 70, 150, start=T0 + timedelta(minutes=4)), 80,
                                      full(100)._replace(last_minute=T0 + timedelta(minutes=3)))
    assert every_minute == 100 and every_five > 100


def test_a_blip_counts_the_minutes_cloudwatch_has_not_published_yet():
    # the same minute at 1.5 times a full bucket's capacity, seen two minutes after it began (carried:
    # three minutes drained) or four (five drained: too little would be left)
    state = demand.fold(full(100), minutes(70, 70, 70, 70), 100)[0]
    hot = minutes(150, start=T0 + timedelta(minutes=4))
    on_time, _, _ = demand.propose(100, hot, 80, state, now=T0 + timedelta(minutes=6, seconds=20))
    late, _, _ = demand.propose(100, hot, 80, state, now=T0 + timedelta(minutes=8, seconds=20))
    assert on_time == 100 and late > 100
