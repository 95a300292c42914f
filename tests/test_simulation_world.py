"""The simulated table and its ports: SCORING.md's model, and DynamoDB's and CloudWatch's answers."""
from __future__ import annotations

import importlib.util
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamic_dynamodb.model import (
    AwsError,
    Capacity,
    LimitExceeded,
    MetricQuery,
    TableBusy,
    TableNotFound,
    Target,
    Update,
)
from dynamic_dynamodb.simulation.ports import ClosedBreaker, SimMetrics, SimTables
from dynamic_dynamodb.simulation.score import score
from dynamic_dynamodb.simulation.trace import Trace
from dynamic_dynamodb.simulation.world import World

SHARED = Path(__file__).resolve().parents[2] / "shared"
NOON = datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)
NAME = "orders"


def make_trace(reads, writes=None, start=NOON):
    writes = list(reads) if writes is None else writes
    return Trace("t", start, 1, [float(r) for r in reads], [float(w) for w in writes])


def make_table(reads, writes=None, start=NOON, initial=(10, 10)):
    world = World(make_trace(reads, writes, start), initial)
    return world, SimTables(world, NAME), SimMetrics(world, NAME)


def set_capacity(tables, reads, writes):
    tables.update(Update(NAME, Capacity(reads, writes)))


def serve(world, minutes=1):
    for _ in range(minutes):
        world.serve()


def status(tables):
    return tables.describe(NAME).table


# ---- the table model ------------------------------------------------------------------


@pytest.mark.parametrize("first, expected", [(10, 13), (8, 10), (0.5, 1), (0, 1)],
                         ids=["rounded up", "exact", "fraction", "at least 1"])
def test_initial_provisioning_is_125_percent_of_minute_0_rounded_up(first, expected):
    world = World(make_trace([first, 1]))
    assert (world.reads, world.writes) == (expected, expected)


def test_an_update_is_in_force_from_the_next_minute():
    world, tables, _ = make_table([5] * 3)
    set_capacity(tables, 20, 30)
    assert status(tables).capacity == Capacity(10, 10)
    serve(world)
    assert status(tables).capacity == Capacity(20, 30)
    serve(world, 2)
    assert world.provisioned_reads == [10, 20, 20]
    assert world.provisioned_writes == [10, 30, 30]


def test_unused_capacity_is_burst_credit_capped_at_five_minutes_of_the_current_rate():
    # 10 idle minutes at 10 units/s bank 6000 units, capped at 3000; 20 units/s then
    # exceeds capacity by 600 units a minute: five minutes from credit, then throttling
    world, _, _ = make_table([0] * 10 + [20] * 7, initial=(10, 10))
    serve(world, 17)
    assert world.throttled_reads[10:] == [0.0] * 5 + [600.0, 600.0]
    assert world.served_reads[10:] == [1200.0] * 5 + [600.0, 600.0]


def test_four_decreases_are_free_then_one_an_hour_after_the_last_accepted():
    world, tables, _ = make_table([1] * 200, initial=(100, 100))
    for i in range(4):
        set_capacity(tables, 90 - i, 100)
        serve(world)
    with pytest.raises(LimitExceeded) as refused:
        set_capacity(tables, 50, 100)
    assert refused.value.code == "LimitExceededException"
    assert str(refused.value).startswith("Subscriber limit exceeded: Provisioned throughput decreases are limited")
    assert "Number of decreases today: 4" in str(refused.value)
    assert "Last decrease at Monday, January 01, 2024 12:03:00 PM UTC" in str(refused.value)
    assert status(tables).capacity == Capacity(87, 100)  # a refused decrease changes nothing
    assert status(tables).decreases_today == 4
    serve(world, 62 - world.minute)  # 59 minutes after the last accepted decrease (minute 3)
    with pytest.raises(LimitExceeded):
        set_capacity(tables, 50, 100)
    serve(world)
    set_capacity(tables, 50, 100)
    serve(world)
    assert status(tables).decreases_today == 5
    assert status(tables).last_decrease == NOON + timedelta(minutes=63)
    assert world.refused == 2


def test_increases_are_never_limited_and_a_mixed_update_counts_as_a_decrease():
    world, tables, _ = make_table([1] * 10, initial=(100, 100))
    for i in range(4):
        set_capacity(tables, 100 + i + 1, 99 - i)  # reads up, writes down: still a decrease
        serve(world)
    with pytest.raises(LimitExceeded):
        set_capacity(tables, 200, 50)
    set_capacity(tables, 200, 96)
    serve(world)
    assert status(tables).capacity == Capacity(200, 96)
    assert status(tables).last_increase == world.time_of(4)


def test_the_decrease_count_resets_at_utc_midnight():
    world, tables, _ = make_table([1] * 120, start=datetime(2024, 1, 1, 23, 0, tzinfo=timezone.utc),
                                  initial=(100, 100))
    for i in range(4):
        set_capacity(tables, 90 - i, 100)
        serve(world)
    serve(world, 59 - world.minute)
    with pytest.raises(LimitExceeded):
        set_capacity(tables, 50, 100)  # 23:59, 56 minutes after the last decrease
    serve(world)
    assert world.now == datetime(2024, 1, 2, tzinfo=timezone.utc)
    assert status(tables).decreases_today == 0
    assert status(tables).last_decrease == datetime(2024, 1, 1, 23, 3, tzinfo=timezone.utc)
    set_capacity(tables, 50, 100)
    serve(world)
    assert status(tables).decreases_today == 1


def test_the_table_is_updating_and_busy_until_the_new_capacity_is_in_force():
    world, tables, _ = make_table([1] * 3)
    set_capacity(tables, 20, 20)
    assert status(tables).status == "UPDATING"
    assert not status(tables).active
    with pytest.raises(TableBusy) as busy:
        set_capacity(tables, 30, 30)
    assert busy.value.code == "ResourceInUseException"
    serve(world)
    assert status(tables).status == "ACTIVE"
    assert status(tables).capacity == Capacity(20, 20)
    assert world.rejected == 1


@pytest.mark.parametrize("update, error, code", [
    (Update(NAME, Capacity(10, 10)), AwsError, "ValidationException"),
    (Update(NAME, Capacity(0, 10)), AwsError, "ValidationException"),
    (Update(NAME, None), AwsError, "ValidationException"),
    (Update(NAME, None, {"by_customer": Capacity(5, 5)}), AwsError, "ValidationException"),
    (Update("other", Capacity(20, 20)), TableNotFound, "ResourceNotFoundException"),
], ids=["no change", "below one unit", "nothing to update", "unknown index", "unknown table"])
def test_invalid_updates_are_refused_as_dynamodb_would_and_change_nothing(update, error, code):
    world, tables, _ = make_table([1] * 3)
    with pytest.raises(error) as refused:
        tables.update(update)
    assert refused.value.code == code
    assert status(tables).capacity == Capacity(10, 10)
    assert status(tables).active


def test_describe_lists_one_active_provisioned_table_without_indexes():
    _, tables, _ = make_table([1] * 3)
    assert tables.list_tables() == [NAME]
    desc = tables.describe(NAME)
    assert desc.indexes == ()
    assert (desc.table.target, desc.table.billing_mode, desc.table.decreases_today) == (Target(NAME), "PROVISIONED", 0)
    assert desc.table.last_decrease is None
    with pytest.raises(TableNotFound):
        tables.describe("other")


def test_the_breaker_is_always_closed():
    assert ClosedBreaker().is_closed("http://example.invalid", 10.0, {})


# ---- CloudWatch -----------------------------------------------------------------------


def query(metric, start, end, period=60, target=Target(NAME)):
    return MetricQuery(target, metric, start, end, period)


def test_a_pass_at_minute_m_sees_the_datapoints_of_minutes_up_to_m_minus_2():
    world, _, metrics = make_table(range(1, 21))
    serve(world, 10)
    q = query("ConsumedReadCapacityUnits", NOON - timedelta(hours=1), NOON + timedelta(hours=1))
    points = metrics.fetch([q])[q]
    assert points == [(NOON + timedelta(minutes=k), (k + 1) * 60.0) for k in range(9)]


def test_minutes_not_yet_visible_or_outside_the_trace_are_absent_not_zero():
    world, _, metrics = make_table([1] * 20)
    serve(world, 10)
    future = query("ConsumedReadCapacityUnits", NOON + timedelta(minutes=9), NOON + timedelta(minutes=15))
    before = query("ConsumedReadCapacityUnits", NOON - timedelta(minutes=30), NOON)
    assert metrics.fetch([future, before]) == {future: [], before: []}
    world2, _, metrics2 = make_table([1] * 3)
    serve(world2, 3)
    assert len(metrics2.fetch([before])[before]) == 0


def test_buckets_of_the_query_period_are_anchored_at_its_start():
    world, _, metrics = make_table(range(1, 21))
    serve(world, 10)
    q = query("ConsumedReadCapacityUnits", NOON + timedelta(minutes=1), NOON + timedelta(minutes=20), period=300)
    # minutes 1-5 in the first bucket, 6-8 (visible so far) in the second
    assert metrics.fetch([q])[q] == [(NOON + timedelta(minutes=1), 60.0 * (2 + 3 + 4 + 5 + 6)),
                                     (NOON + timedelta(minutes=6), 60.0 * (7 + 8 + 9))]


def test_throttle_events_are_the_throttled_units_of_each_minute():
    world, _, metrics = make_table([0] * 5 + [20] * 5, initial=(1, 10))
    serve(world, 10)
    q = query("ReadThrottleEvents", NOON, NOON + timedelta(minutes=10))
    w = query("WriteThrottleEvents", NOON, NOON + timedelta(minutes=10))
    data = metrics.fetch([q, w])
    # reads: 1 unit/s banks at most 300 units, and 20 units/s wants 1200 a minute against 60;
    # writes: 10 units/s banked 3000 units, enough for the 600 a minute over capacity
    assert [v for _, v in data[q]] == [0.0] * 5 + [840.0, 1140.0, 1140.0, 1140.0]
    assert [v for _, v in data[w]] == [0.0] * 9


def test_other_targets_and_metrics_have_no_data():
    world, _, metrics = make_table([1] * 10)
    serve(world, 10)
    gsi = query("ConsumedReadCapacityUnits", NOON, NOON + timedelta(hours=1), target=Target(NAME, "by_customer"))
    other = query("ConsumedReadCapacityUnits", NOON, NOON + timedelta(hours=1), target=Target("other"))
    unknown = query("ProvisionedReadCapacityUnits", NOON, NOON + timedelta(hours=1))
    assert metrics.fetch([gsi, other, unknown]) == {gsi: [], other: [], unknown: []}


@settings(max_examples=300, deadline=None)
@given(start_s=st.integers(-900, 3600), length_s=st.integers(0, 3600), period=st.sampled_from([30, 60, 90, 120, 300]),
       minute=st.integers(0, 70), offset_s=st.sampled_from([0, 53]))
def test_buckets_hold_exactly_the_visible_minutes_stamped_inside_them(start_s, length_s, period, minute, offset_s):
    t0 = NOON + timedelta(seconds=offset_s)
    world = World(make_trace([k % 7 for k in range(60)], start=t0), (5, 5))
    serve(world, min(minute, 60))
    world.minute = minute  # past the end of the trace too
    metrics = SimMetrics(world, NAME)
    start = NOON + timedelta(seconds=start_s)
    q = query("ConsumedReadCapacityUnits", start, start + timedelta(seconds=length_s), period)
    expected: dict[datetime, float] = {}
    for k in range(min(minute - 1, 60)):
        stamp = t0 + timedelta(minutes=k)
        if q.start <= stamp < q.end:
            bucket = q.start + timedelta(seconds=period * ((stamp - q.start) // timedelta(seconds=period)))
            expected[bucket] = expected.get(bucket, 0.0) + world.served_reads[k]
    assert metrics.fetch([q])[q] == sorted(expected.items())


# ---- agreement with the reference model -----------------------------------------------


def load_refsim():
    path = SHARED / "tools" / "refsim.py"
    if not path.exists():
        pytest.skip(f"reference scorer not found at {path} (shared/ beside the repository)")
    spec = importlib.util.spec_from_file_location("refsim", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demand = st.floats(0, 60, allow_nan=False).map(lambda x: round(x, 3))
wish = st.none() | st.tuples(st.integers(0, 80), st.integers(0, 80))


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(demand, demand, wish), min_size=2, max_size=400),
       start_minute=st.integers(0, 1439))
def test_any_replay_scores_as_the_reference_scorer_scores_its_timeline(rows, start_minute):
    refsim = load_refsim()
    start = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=start_minute)
    world = World(make_trace([r for r, _, _ in rows], [w for _, w, _ in rows], start))
    tables = SimTables(world, NAME)
    for _, _, want in rows:
        if want is not None:
            try:
                set_capacity(tables, *want)
            except AwsError:
                pass
        world.serve()
    ours = score(world)
    timeline = list(zip(world.provisioned_reads, world.provisioned_writes, strict=True))
    ref = refsim.score_timeline(start, [(r, w) for r, w, _ in rows], timeline)
    assert ours.illegal_decreases == ref["illegal_decreases"] == 0
    assert (ours.cost_usd, ours.throttled_share, ours.throttled_read_share, ours.throttled_write_share,
            ours.decreases, ours.oracle_cost_usd, ours.on_demand_cost_usd) == (
        ref["cost"], ref["throttled_share"], ref["throttled_read_share"], ref["throttled_write_share"],
        ref["decreases"], ref["oracle_cost"], ref["on_demand_cost"])
    assert math.isclose(ours.cost_vs_oracle or 0, ref["cost_vs_oracle"] or 0)
