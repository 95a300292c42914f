"""scaling-policy: demand — each rule pinned by a case."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamic_dynamodb import demand
from dynamic_dynamodb.demand import BURST_SECONDS, DemandState
from dynamic_dynamodb.model import Capacity, Target, TargetStatus
from dynamic_dynamodb.policy import Memory, Observed, decide
from dynamic_dynamodb.rules import DimensionRules, TargetRules

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def minutes(*per_second: float, throttled: float = 0.0, start: datetime = T0):
    """A per-minute series at the given demand (units/s), the last minute throttled as given."""
    rows = [(start + timedelta(minutes=i), v * 60.0, 0.0) for i, v in enumerate(per_second)]
    if throttled:
        m, c, _ = rows[-1]
        rows[-1] = (m, c, throttled * 60.0)
    return tuple(rows)


def full(cur: int, values: tuple[float, ...] = ()) -> DemandState:
    return DemandState(T0 - timedelta(minutes=1), values, BURST_SECONDS * cur)


CASES = [
    ("throttling raises capacity to the recent peak over the target utilisation",
     100, minutes(80, 90, 100, throttled=20), DemandState(), 80, 150),
    ("demand above halfway between target and full capacity raises it", 100, minutes(95), DemandState(), 80, 119),
    ("demand just under that halfway point keeps capacity", 100, minutes(89), DemandState(), 80, 100),
    ("a hot minute is sized from the peak of the last three minutes", 100, minutes(99, 120, 95), DemandState(), 80,
     150),
    ("no datapoint keeps capacity", 100, (), DemandState(), 80, 100),
    ("a quiet last hour lowers capacity to its peak at the effective utilisation", 100, minutes(*[40] * 5),
     DemandState(), 80, 45),
    ("a small drop is not worth a decrease", 100, minutes(*[76] * 5), DemandState(), 80, 100),
    ("a full burst bucket lets capacity run closer to the demand", 100, minutes(*[40] * 5), full(100), 80, 43),
    ("a peak earlier in the hour holds a decrease back", 100, minutes(*[40] * 5), full(100, (88.0,)), 80, 100),
]


@pytest.mark.parametrize("cur,series,state,target,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_demand_policy(cur, series, state, target, expected):
    new, reason, _ = demand.propose(cur, series, target, state)
    assert new == expected, reason


def test_minutes_already_seen_are_not_counted_twice():
    _, _, state = demand.propose(100, minutes(50, 60), 80, DemandState())
    new, reason, again = demand.propose(100, minutes(50, 60), 80, state)
    assert (new, reason, again.demand) == (100, "no new data", (50.0, 60.0))


def test_history_keeps_the_last_hour_only():
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
    assert not d.changed and "decrease budget spent" in d.summary


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
def test_demand_never_decreases_below_the_last_hour_peak(cur, values, target, bucket):
    state = DemandState(None, (), bucket * BURST_SECONDS * cur)
    new, _, after = demand.propose(cur, minutes(*values), target, state)
    if new < cur:
        assert new >= max(after.demand)
