"""The capacity-mode rule (pure): cheaper mode, margin, throttling, minimum stay, four switches a day."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamic_dynamodb import capacity_mode as cm
from dynamic_dynamodb.capacity_mode import ON_DEMAND, PROVISIONED, Costs, ModeMemory, ModeRules

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)


@pytest.mark.parametrize(("current", "costs", "expected"), [
    (PROVISIONED, Costs(10.0, 7.9, 0.0), ON_DEMAND),      # on-demand cheaper by more than 20 %
    (PROVISIONED, Costs(10.0, 8.5, 0.0), PROVISIONED),    # cheaper, but within the margin: stay
    (ON_DEMAND, Costs(10.0, 8.5, 0.0), ON_DEMAND),        # ... either way round
    (ON_DEMAND, Costs(7.9, 10.0, 0.0), PROVISIONED),      # provisioned cheaper by more than 20 %
    (ON_DEMAND, Costs(7.9, 10.0, 0.02), ON_DEMAND),       # ... but it would throttle 2 % of demand
    (PROVISIONED, Costs(1.0, 10.0, 0.011), ON_DEMAND),    # throttling > 1 % wins over the cost
    (PROVISIONED, Costs(1.0, 10.0, 0.01), PROVISIONED),   # exactly 1 % is allowed
])
def test_the_cheaper_mode_with_its_margin_and_the_throttling_limit(current, costs, expected):
    assert cm.cheaper_mode(current, costs)[0] == expected


AUTO = ModeRules(mode="auto")
BURSTY = Costs(10.0, 2.0, 0.2)
STEADY = Costs(2.0, 10.0, 0.0)


@pytest.mark.parametrize(("current", "rules", "memory", "switch", "wanted"), [
    (PROVISIONED, ModeRules(), ModeMemory(costs=BURSTY), False, PROVISIONED),     # default: as before
    (ON_DEMAND, ModeRules(), ModeMemory(costs=STEADY), False, ON_DEMAND),
    (PROVISIONED, ModeRules(mode="on-demand"), ModeMemory(), True, ON_DEMAND),
    (ON_DEMAND, ModeRules(mode="on-demand"), ModeMemory(costs=STEADY), False, ON_DEMAND),
    (PROVISIONED, AUTO, ModeMemory(), False, PROVISIONED),                        # no history yet
    (PROVISIONED, AUTO, ModeMemory(costs=BURSTY), True, ON_DEMAND),
    (ON_DEMAND, AUTO, ModeMemory(costs=STEADY), True, PROVISIONED),
    (ON_DEMAND, AUTO, ModeMemory(costs=STEADY, last_switch=NOW - 23 * H), False, PROVISIONED),  # min stay
    (ON_DEMAND, AUTO, ModeMemory(costs=STEADY, last_switch=NOW - 24 * H), True, PROVISIONED),
    (PROVISIONED, ModeRules(mode="auto", min_hours=0),
     ModeMemory(costs=BURSTY, switches_to_on_demand=(NOW - 20 * H, NOW - 10 * H, NOW - 5 * H, NOW - H)),
     False, ON_DEMAND),                                                          # a fifth in 24 h: no
    (PROVISIONED, ModeRules(mode="auto", min_hours=0),
     ModeMemory(costs=BURSTY, switches_to_on_demand=(NOW - 24 * H, NOW - 10 * H, NOW - 5 * H, NOW - H)),
     True, ON_DEMAND),                                                           # the oldest left the window
])
def test_decide_mode(current, rules, memory, switch, wanted):
    d = cm.decide_mode(current, rules, memory, NOW)
    assert (d.switch, d.wanted) == (switch, wanted), d.reason


@given(st.lists(st.tuples(st.integers(0, 60 * 24 * 3), st.booleans()), max_size=200))
def test_never_a_fifth_switch_to_on_demand_within_24_hours(steps):
    """Whatever the costs say minute after minute, the switches to on-demand keep DynamoDB's limit."""
    rules = ModeRules(mode="auto", min_hours=0)
    memory, mode, switched = ModeMemory(), PROVISIONED, []
    for minute, bursty in sorted(steps):
        now = NOW + timedelta(minutes=minute)
        memory = ModeMemory(memory.switches_to_on_demand, memory.last_switch, costs=BURSTY if bursty else STEADY)
        d = cm.decide_mode(mode, rules, memory, now)
        if d.switch:
            memory, mode = cm.record_switch(memory, d.wanted, now), d.wanted
            if mode == ON_DEMAND:
                switched.append(now)
    for i, t in enumerate(switched):
        assert sum(1 for u in switched[i:] if u - t < timedelta(hours=24)) <= cm.MAX_SWITCHES_TO_ON_DEMAND


def test_the_history_is_read_again_at_most_hourly():
    assert cm.history_due(ModeMemory(), NOW)
    assert not cm.history_due(ModeMemory(history_read=NOW - 59 * timedelta(minutes=1)), NOW)
    assert cm.history_due(ModeMemory(history_read=NOW - H), NOW)


@pytest.mark.parametrize(("recent", "target", "floor", "ceiling", "expected"), [
    ([7.0, 14.0, 10.0], 70, 1, None, 20),
    ([], 70, 1, None, 1),
    ([0.1], 70, 5, None, 5),
    ([700.0], 70, 1, 500, 500),
])
def test_capacity_for_a_switch_back_is_the_recent_peak_at_the_target(recent, target, floor, ceiling, expected):
    assert cm.provisioned_for(recent, target, floor, ceiling) == expected


# ---- the UpdateTable of a switch ----------------------------------------------------------------

import re  # noqa: E402

import boto3  # noqa: E402
from botocore.stub import Stubber  # noqa: E402

from dynamic_dynamodb import aws, mode_switch  # noqa: E402
from dynamic_dynamodb.loop import Ports, Scaler  # noqa: E402
from dynamic_dynamodb.model import Capacity, TableDescription, Target, TargetStatus, Update  # noqa: E402
from dynamic_dynamodb.rules import DimensionRules, TargetRules  # noqa: E402
from dynamic_dynamodb.settings import GsiSection, Settings, TableSection  # noqa: E402


def stubbed():
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


@pytest.mark.parametrize(("update", "params"), [
    (Update("tab", billing_mode=ON_DEMAND), {"TableName": "tab", "BillingMode": ON_DEMAND}),
    (Update("tab", billing_mode=ON_DEMAND, on_demand_max=(100, None)),
     {"TableName": "tab", "BillingMode": ON_DEMAND, "OnDemandThroughput": {"MaxReadRequestUnits": 100}}),
    (Update("tab", Capacity(72, 15), {"gsi": Capacity(3, 2)}, billing_mode=PROVISIONED),
     {"TableName": "tab", "BillingMode": PROVISIONED,
      "ProvisionedThroughput": {"ReadCapacityUnits": 72, "WriteCapacityUnits": 15},
      "GlobalSecondaryIndexUpdates": [{"Update": {"IndexName": "gsi", "ProvisionedThroughput": {
          "ReadCapacityUnits": 3, "WriteCapacityUnits": 2}}}]}),
])
def test_a_switch_is_one_update_table_with_billing_mode(update, params):
    client, stub = stubbed()
    stub.add_response("update_table", {"TableDescription": {"TableName": "tab"}}, params)
    with stub:
        aws.DynamoTables(client).update(update)
    stub.assert_no_pending_responses()


class Recent:
    """Per-minute Sums of every consumed series: reads 70 units/s, writes 14 (throttles: none)."""

    def fetch(self, queries):
        return {q: [(q.start, 70 * 60.0 if "Read" in q.metric else 14 * 60.0)] if "Consumed" in q.metric else []
                for q in queries}


def test_back_to_provisioned_carries_capacity_for_the_table_and_every_gsi_within_their_limits():
    gsi_rules = TargetRules(reads=DimensionRules(max_provisioned=50))
    section = TableSection("t", re.compile("t"), TargetRules(), (GsiSection("g", re.compile("g"), "t", gsi_rules),),
                           mode=ModeRules(mode="auto"))
    scaler = Scaler(Settings(tables=(section,)), Ports(tables=None, metrics=Recent()))
    status = [TargetStatus(Target("t", i), "ACTIVE", ON_DEMAND, Capacity(0, 0)) for i in (None, "g", "h")]
    update = mode_switch.switch_update(scaler, section, TableDescription(status[0], tuple(status[1:])),
                                       PROVISIONED, NOW)
    assert update == Update("t", Capacity(100, 20), {"g": Capacity(50, 20), "h": Capacity(100, 20)},
                            billing_mode=PROVISIONED)


# ---- the simulator switches modes too -----------------------------------------------------------

from dynamic_dynamodb.config import load_settings  # noqa: E402
from dynamic_dynamodb.simulation.run import simulate  # noqa: E402
from dynamic_dynamodb.simulation.trace import Trace  # noqa: E402


def bursty_trace(days: int = 2) -> Trace:
    """Mostly idle (0.5 reads/s, 0.2 writes/s), with a 15-minute burst every 6 hours from the second hour."""
    reads, writes = [], []
    for k in range(days * 1440):
        burst = k >= 60 and (k - 60) % 360 < 15
        reads.append(300.0 if burst else 0.5)
        writes.append(50.0 if burst else 0.2)
    return Trace("bursty", NOW, 1, reads, writes)


def simulated(tmp_path, mode: str):
    conf = tmp_path / f"{mode}.conf"
    conf.write_text(f"[global]\ncheck-interval: 300\n[table: bursty]\ncapacity-mode: {mode}\n"
                    "capacity-mode-days: 1\n", encoding="utf-8")
    return simulate(load_settings(["--config", str(conf)]), bursty_trace(), tmp_path / mode, progress=None)


def test_a_simulated_bursty_table_with_auto_costs_no_more_than_on_demand_and_throttles_less(tmp_path):
    fixed, hybrid = simulated(tmp_path, "provisioned"), simulated(tmp_path, "auto")
    assert hybrid.config.cost_usd <= hybrid.config.on_demand_cost_usd
    assert hybrid.config.throttled_share < fixed.config.throttled_share
    assert hybrid.config.switches_to_on_demand >= 1 and fixed.config.on_demand_minutes == 0
    assert "capacity-mode" in hybrid.recommendation
    with (tmp_path / "auto" / "timeline.csv").open() as fh:
        modes = [line.rstrip("\n").split(",")[9] for line in fh][1:]
    assert modes[0] == "PROVISIONED" and modes[-1] == "PAY_PER_REQUEST"
    assert set(modes) == {"PROVISIONED", "PAY_PER_REQUEST"}
