"""One process for thousands of tables across regions and accounts (docs/fleet.rst):
batched CloudWatch reads, placements (region, role) from the config, per-placement
memory and state, the fleet pass. No AWS here: botocore's Stubber and fakes."""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from fakes import FakeBreaker, ManualClock

from dynamic_dynamodb import aws, config, state
from dynamic_dynamodb.fleet import Fleet
from dynamic_dynamodb.loop import PassReport, Ports, run_forever
from dynamic_dynamodb.model import (
    AwsError,
    Capacity,
    MetricQuery,
    TableDescription,
    TableNotFound,
    Target,
    TargetStatus,
)
from dynamic_dynamodb.policy import Memory
from dynamic_dynamodb.settings import ConfigError, Placement, Settings

UTC = timezone.utc
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ROLE = "arn:aws:iam::111122223333:role/dynamic-dynamodb"
OTHER_ROLE = "arn:aws-cn:iam::444455556666:role/ops/scaler"


# ---- 1. batched CloudWatch reads --------------------------------------------------------

def cloudwatch_client():
    return boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")


def queries(n: int, start: datetime = NOW - timedelta(minutes=15)) -> list[MetricQuery]:
    return [MetricQuery(Target(f"table-{i:04d}", None if i % 3 == 0 else f"gsi-{i % 3}"),
                        "ConsumedReadCapacityUnits", start, start + timedelta(minutes=5))
            for i in range(n)]


def capture_requests(client) -> list[dict]:
    """The parameters of every GetMetricData call the client makes."""
    seen: list[dict] = []
    client.meta.events.register("before-parameter-build.cloudwatch.GetMetricData",
                                lambda params, **_: seen.append(params))
    return seen


def answer_for(request_ids: list[str], token: str | None = None) -> dict:
    out = {"MetricDataResults": [{"Id": qid, "Timestamps": [NOW - timedelta(minutes=15)], "Values": [float(k)],
                                  "StatusCode": "Complete"} for k, qid in enumerate(request_ids)]}
    if token:
        out["NextToken"] = token
    return out


def test_1200_queries_take_3_calls_of_at_most_500_with_unique_ids():
    client = cloudwatch_client()
    seen = capture_requests(client)
    metrics = aws.CloudWatchMetrics(client, concurrency=1)  # the Stubber answers in order
    with Stubber(client) as stub:
        for size in (500, 500, 200):
            stub.add_response("get_metric_data", answer_for([f"q{k}" for k in range(size)]))
        data = metrics.fetch(queries(1200))
        stub.assert_no_pending_responses()
    assert [len(r["MetricDataQueries"]) for r in seen] == [500, 500, 200]
    for request in seen:
        ids = [q["Id"] for q in request["MetricDataQueries"]]
        assert len(set(ids)) == len(ids)
        assert all(q["MetricStat"]["Stat"] == "Sum" and q["MetricStat"]["Period"] == 60
                   for q in request["MetricDataQueries"])
    assert metrics.calls == 3
    asked = {tuple(d["Value"] for d in q["MetricStat"]["Metric"]["Dimensions"]) for r in seen
             for q in r["MetricDataQueries"]}
    assert len(asked) == 1200  # every query asked once
    assert all(len(points) == 1 for points in data.values()) and len(data) == 1200


def test_next_token_is_followed_and_the_pages_merged():
    client = cloudwatch_client()
    metrics = aws.CloudWatchMetrics(client, concurrency=1)
    qs = queries(2)
    t0, t1 = NOW - timedelta(minutes=15), NOW - timedelta(minutes=14)
    first = {"MetricDataResults": [{"Id": "q0", "Timestamps": [t0], "Values": [1.0], "StatusCode": "PartialData"}],
             "NextToken": "page-2"}
    second = {"MetricDataResults": [{"Id": "q0", "Timestamps": [t1], "Values": [2.0], "StatusCode": "Complete"},
                                    {"Id": "q1", "Timestamps": [t0], "Values": [3.0], "StatusCode": "Complete"}]}
    with Stubber(client) as stub:
        stub.add_response("get_metric_data", first)
        stub.add_response("get_metric_data", second, expected_params={
            "MetricDataQueries": stub_any(), "StartTime": qs[0].start, "EndTime": qs[0].end,
            "ScanBy": "TimestampAscending", "NextToken": "page-2"})
        data = metrics.fetch(qs)
        stub.assert_no_pending_responses()
    assert metrics.calls == 2
    assert data[qs[0]] == [(t0, 1.0), (t1, 2.0)] and data[qs[1]] == [(t0, 3.0)]
    assert all(ts.tzinfo is UTC for points in data.values() for ts, _ in points)


def stub_any():
    from botocore.stub import ANY
    return ANY


def test_batch_size_1_makes_one_call_per_metric():
    client = cloudwatch_client()
    seen = capture_requests(client)
    metrics = aws.CloudWatchMetrics(client, batch_size=1, concurrency=1)
    with Stubber(client) as stub:
        for _ in range(4):
            stub.add_response("get_metric_data", answer_for(["q0"]))
        metrics.fetch(queries(4))
    assert [len(r["MetricDataQueries"]) for r in seen] == [1, 1, 1, 1]


def test_queries_of_different_windows_never_share_a_call_and_duplicates_are_asked_once():
    client = cloudwatch_client()
    seen = capture_requests(client)
    metrics = aws.CloudWatchMetrics(client, concurrency=1)
    a, b = queries(3), queries(2, start=NOW - timedelta(minutes=30))
    with Stubber(client) as stub:
        stub.add_response("get_metric_data", answer_for(["q0", "q1", "q2"]))
        stub.add_response("get_metric_data", answer_for(["q0", "q1"]))
        data = metrics.fetch(a + b + a)
    assert sorted(len(r["MetricDataQueries"]) for r in seen) == [2, 3]
    assert set(data) == set(a + b)


class RecordingClient:
    """A thread-safe fake GetMetricData client: records the batches and the calls in flight."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.batches: list[int] = []

    def get_paginator(self, _name):
        return self

    def paginate(self, MetricDataQueries, **_):
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.batches.append(len(MetricDataQueries))
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1
        yield {"MetricDataResults": [{"Id": q["Id"], "Timestamps": [NOW], "Values": [1.0]}
                                     for q in MetricDataQueries]}


def test_a_few_calls_are_in_flight_at_once_never_more():
    client = RecordingClient()
    metrics = aws.CloudWatchMetrics(client)
    data = metrics.fetch(queries(12 * 500))
    assert client.batches == [500] * 12 and metrics.calls == 12
    assert 1 < client.max_in_flight <= aws.METRICS_CONCURRENCY
    assert all(points == [(NOW, 1.0)] for points in data.values())


def test_a_failed_call_is_an_aws_error_naming_the_code():
    client = cloudwatch_client()
    with Stubber(client) as stub:
        stub.add_client_error("get_metric_data", "Throttling", "Rate exceeded", 400)
        with pytest.raises(AwsError, match="Throttling: Rate exceeded"):
            aws.CloudWatchMetrics(client, concurrency=1).fetch(queries(3))


# ---- 3. placements from the config ------------------------------------------------------

@pytest.fixture
def load(tmp_path):
    def run(text: str, *argv: str) -> Settings:
        path = tmp_path / "fleet.conf"
        path.write_text(text, encoding="utf-8")
        return config.load_settings(["-c", str(path), *argv])
    return run


def placements(settings: Settings) -> dict[tuple, list[str]]:
    return {(p.region, p.role_arn): [s.key for s in sections] for p, sections in settings.placements().items()}


def test_without_fleet_keys_everything_is_one_placement_in_the_global_region(load):
    settings = load("[global]\nregion: eu-west-1\n[table: a]\n[table: b]\n")
    assert placements(settings) == {("eu-west-1", None): ["a", "b"]}


def test_global_regions_apply_every_section_in_each_region_unless_it_names_its_own(load):
    settings = load("[global]\nregion: eu-west-1\nregions: us-east-1, eu-central-1,us-east-1\n"
                    "[table: a]\n[table: b]\nregion: ap-southeast-2\n")
    assert settings.regions == ("us-east-1", "eu-central-1")
    assert placements(settings) == {("us-east-1", None): ["a"], ("eu-central-1", None): ["a"],
                                    ("ap-southeast-2", None): ["b"]}


def test_region_and_role_are_inherited_from_default_options_and_overridden_per_section(load):
    settings = load(f"[global]\nrole-arn: {ROLE}\n[default_options]\nregion: eu-west-1\n"
                    f"[table: a]\n[table: b]\nregion: us-west-2\nrole-arn: {OTHER_ROLE}\n"
                    "[gsi: .* table: b]\n")
    assert placements(settings) == {("eu-west-1", ROLE): ["a"], ("us-west-2", OTHER_ROLE): ["b"]}
    a, b = settings.tables
    assert (a.regions, a.role_arn) == (("eu-west-1",), None)  # None: [global] role-arn
    assert (b.regions, b.role_arn, len(b.gsis)) == (("us-west-2",), OTHER_ROLE, 1)


def test_the_command_line_region_replaces_the_global_list_but_not_a_sections_own(load):
    settings = load("[global]\nregions: us-east-1, eu-west-1\n[table: a]\n[table: b]\nregion: us-west-2\n",
                    "--region", "sa-east-1")
    assert placements(settings) == {("sa-east-1", None): ["a"], ("us-west-2", None): ["b"]}


def test_table_name_mode_takes_region_and_role_from_default_options_and_global(load):
    settings = load(f"[global]\nregions: us-east-1, eu-west-1\n[default_options]\nrole-arn: {ROLE}\n"
                    "[table: ignored]\nregion: us-west-2\n", "--table-name", "orders")
    assert placements(settings) == {("us-east-1", ROLE): ["orders"], ("eu-west-1", ROLE): ["orders"]}


@pytest.mark.parametrize(("text", "expected"), [
    ("[global]\nregions: us-east-1, EU-WEST-1\n", "[global] regions: expected an AWS region"),
    ("[global]\nregions: ,\n", "[global] regions: expected regions"),
    ("[global]\nrole-arn: arn:aws:iam::12345:role/x\n", "[global] role-arn: expected an IAM role ARN"),
    ("[global]\nrole-arn: arn:aws:iam::123456789012:user/x\n", "[global] role-arn: expected an IAM role ARN"),
    ("[global]\nmetrics-batch-size: 501\n", "[global] metrics-batch-size: expected 1 to 500"),
    ("[global]\nmetrics-batch-size: 0\n", "[global] metrics-batch-size: expected 1 to 500"),
    ("[table: t]\nregion: mars-1\n", "[table: t] region: expected an AWS region"),
    ("[default_options]\nrole-arn: my-role\n", "[default_options] role-arn: expected an IAM role ARN"),
    ("[table: t]\nrole-arn: arn:aws:iam::123456789012:role/\n", "[table: t] role-arn: expected an IAM role ARN"),
], ids=["bad region in the list", "empty list", "short account", "a user, not a role", "batch above 500",
        "batch 0", "bad section region", "bad default role", "role without name"])
def test_bad_fleet_values_are_one_line_errors_naming_section_and_key(load, text, expected):
    with pytest.raises(ConfigError) as caught:
        load(text + ("[table: t]\n" if "[table: t]" not in text else ""))
    assert expected in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("arn", [ROLE, OTHER_ROLE, "arn:aws-us-gov:iam::123456789012:role/a.b@c+d=e,f_g-h"])
def test_role_arns_of_every_partition_and_with_paths_are_accepted(arn):
    assert config.to_role_arn(f" {arn} ") == arn


def test_a_region_in_a_gsi_section_is_warned_about_with_a_hint(load):
    settings = load("[table: t]\n[gsi: g table: t]\nregion: eu-west-1\n")
    assert any("'region'" in w and "[table: ...] section" in w for w in settings.warnings)


def test_batch_size_defaults_to_500():
    assert config.load_settings([]).metrics_batch_size == 500


def test_show_config_shows_region_and_role_per_section_and_the_placements(load):
    settings = load(f"[global]\nregions: us-east-1, eu-west-1\n[table: a]\n[table: b]\nregion: us-west-2\n"
                    f"role-arn: {ROLE}\n")
    data = json.loads(json.dumps(config.settings_as_dict(settings)))
    a, b = data["tables"]
    assert (a["regions"], a["role_arn"]) == (["us-east-1", "eu-west-1"], None)
    assert (b["regions"], b["role_arn"]) == (["us-west-2"], ROLE)
    assert data["placements"] == [
        {"region": "us-east-1", "role_arn": None, "tables": ["a"]},
        {"region": "eu-west-1", "role_arn": None, "tables": ["a"]},
        {"region": "us-west-2", "role_arn": ROLE, "tables": ["b"]},
    ]


def test_the_fleet_keys_are_documented():
    docs = Path(__file__).resolve().parents[1] / "docs"
    fleet, configuration = (docs / "fleet.rst").read_text(), (docs / "configuration.rst").read_text()
    for key in ("regions", "role-arn", "metrics-batch-size", "region"):
        assert f"``{key}``" in fleet and f"``{key}``" in configuration
    for action in ("sts:AssumeRole", *aws.REQUIRED_IAM_ACTIONS):
        assert action in fleet
    assert "fleet" in (docs / "index.rst").read_text()


# ---- state: region and role per target ------------------------------------------------

def test_the_same_table_in_two_regions_keeps_two_memories_in_the_state_file(tmp_path):
    path = str(tmp_path / "s.json")
    placed = {
        ("us-east-1", None): {Target("orders"): Memory(read_checks=2)},
        ("eu-west-1", None): {Target("orders"): Memory(write_checks=1), Target("orders", "by-day"): Memory()},
        ("eu-west-1", ROLE): {Target("orders"): Memory(decreases_today=1, decrease_day=date(2026, 11, 28))},
    }
    state.save_placed(path, placed)
    raw = json.loads(Path(path).read_text())
    assert raw["version"] == 3
    assert {(e["table"], e.get("region"), e.get("role_arn")) for e in raw["targets"]} == {
        ("orders", "us-east-1", None), ("orders", "eu-west-1", None), ("orders", "eu-west-1", ROLE)}
    loaded = state.load_placed(path)
    assert loaded == {k: {t: m for t, m in v.items() if m != Memory()} for k, v in placed.items()}


def test_a_version_1_state_file_is_read_and_belongs_to_the_default_placement(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"version": 1, "targets": [
        {"table": "orders", "index": None, "memory": {"read_checks": 3}}]}))
    loaded = state.load_placed(str(path))
    assert loaded == {state.UNPLACED: {Target("orders"): Memory(read_checks=3)}}
    settings = Settings(region="eu-west-1", regions=("eu-west-1", "us-east-1"), tables=(section("orders"),))
    fleet = Fleet(settings, FakeWorld({}).ports, memory=loaded)
    assert fleet.memory[("eu-west-1", None)] == {Target("orders"): Memory(read_checks=3)}
    assert fleet.memory[("us-east-1", None)] == {}


# ---- the fleet pass ---------------------------------------------------------------------

def section(key: str, rules=None, **kw):
    import re

    from dynamic_dynamodb.rules import TargetRules
    from dynamic_dynamodb.settings import TableSection
    return TableSection(key, re.compile(key), rules or TargetRules(), **kw)


class FakeTables:
    def __init__(self, world: FakeWorld, placement: Placement) -> None:
        self.world, self.placement = world, placement
        self.updates: list = []

    def list_tables(self):
        self.world.calls.append((self.placement, "ListTables"))
        if self.world.explode == self.placement:
            raise RuntimeError("a bug")
        return sorted(self.world.tables.get(self.placement, {}))

    def describe(self, table):
        self.world.calls.append((self.placement, "DescribeTable"))
        cap = self.world.tables.get(self.placement, {}).get(table)
        if cap is None:
            raise TableNotFound("gone")
        return TableDescription(TargetStatus(Target(table), "ACTIVE", "PROVISIONED", Capacity(cap, cap)))

    def update(self, update):
        self.world.calls.append((self.placement, "UpdateTable"))
        self.updates.append(update)


class FakeMetrics:
    def __init__(self, world: FakeWorld, placement: Placement) -> None:
        self.world, self.placement = world, placement

    def fetch(self, qs):
        self.world.calls.append((self.placement, "GetMetricData"))
        out = {}
        for q in qs:
            pct = self.world.load.get((self.placement, q.target.table), 50)
            cap = self.world.tables[self.placement][q.target.table]
            per_minute = cap * pct / 100 * 60 if q.metric.startswith("Consumed") else 0.0
            out[q] = [(q.start + timedelta(minutes=m), per_minute) for m in range(5)]
        return out


class FakeWorld:
    """Tables {placement: {name: units}} and consumption {(placement, name): percent}."""

    def __init__(self, tables, load=None) -> None:
        self.tables = tables
        self.load = load or {}
        self.calls: list = []
        self.explode = None
        self.breaker = FakeBreaker()
        self.made: dict[Placement, FakeTables] = {}

    def ports(self, settings: Settings, placement: Placement) -> Ports:
        assert (settings.region, settings.role_arn) == (placement.region, placement.role_arn)
        self.made[placement] = FakeTables(self, placement)
        return Ports(self.made[placement], FakeMetrics(self, placement), breaker=self.breaker)


EAST, WEST, ROLE_EAST = Placement("us-east-1"), Placement("eu-west-1"), Placement("us-east-1", ROLE)


def fleet_settings(**kw) -> Settings:
    return Settings(region="us-east-1", regions=("us-east-1", "eu-west-1"),
                    tables=(section("orders"), section("events", role_arn=ROLE)), **kw)


def test_one_pass_scales_every_placement_with_its_own_tables_and_memory():
    world = FakeWorld({EAST: {"orders": 10}, WEST: {"orders": 10}, ROLE_EAST: {"events": 10}},
                      load={(EAST, "orders"): 95, (WEST, "orders"): 10})
    fleet = Fleet(fleet_settings(), world.ports)
    assert set(fleet.scalers) == {EAST, WEST, ROLE_EAST, Placement("eu-west-1", ROLE)}
    report = fleet.run_pass(NOW)
    assert report.ok and report.updates == 2
    assert [u.table_capacity for u in world.made[EAST].updates] == [Capacity(15, 15)]
    assert [u.table_capacity for u in world.made[WEST].updates] == [Capacity(5, 5)]
    assert world.made[ROLE_EAST].updates == []
    # the decrease is remembered in eu-west-1 only
    assert fleet.memory[("eu-west-1", None)][Target("orders")].decreases_today == 1
    assert fleet.memory[("us-east-1", None)].get(Target("orders"), Memory()).decreases_today == 0
    # one ListTables and one metrics fetch per placement
    for placement in fleet.scalers:
        ops = [op for p, op in world.calls if p == placement]
        assert ops.count("ListTables") == 1
        assert ops.count("GetMetricData") == (1 if world.tables.get(placement) else 0)


def test_the_state_file_round_trip_gives_each_placement_its_memory_back(tmp_path):
    world = FakeWorld({EAST: {"orders": 10}, WEST: {"orders": 10}}, load={(WEST, "orders"): 10})
    fleet = Fleet(fleet_settings(), world.ports)
    fleet.run_pass(NOW)
    path = str(tmp_path / "s.json")
    state.save_placed(path, fleet.memory)
    again = Fleet(fleet_settings(), FakeWorld({}).ports, memory=state.load_placed(path))
    assert again.memory[("eu-west-1", None)][Target("orders")].decreases_today == 1
    # the east table made no decrease: its memory holds only its last decision
    assert again.memory[("us-east-1", None)][Target("orders")].decreases_today == 0
    assert again.memory[("us-east-1", None)][Target("orders")].last_reason == "within_band"


@pytest.fixture
def messages():
    """The messages of the daemon's logger at INFO and above (whatever its propagation)."""
    records: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda r: records.append(r.getMessage())
    logger = logging.getLogger("dynamic-dynamodb")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old)


def test_log_lines_name_the_placement_when_there_are_several(messages):
    world = FakeWorld({EAST: {"orders": 10}, WEST: {"orders": 10}})
    Fleet(fleet_settings(), world.ports).run_pass(NOW)
    assert any(m.startswith("[eu-west-1] orders: ") for m in messages)
    assert any(m.startswith("[us-east-1] orders: ") for m in messages)
    assert f"[eu-west-1 as {ROLE}] No table matches [table: events]" in messages
    assert any(m.startswith("Pass done in") for m in messages)
    assert not logging.getLogger("dynamic-dynamodb").filters


def test_one_placement_has_no_label(messages):
    world = FakeWorld({EAST: {"orders": 10}})
    Fleet(Settings(region="us-east-1", tables=(section("orders"),)), world.ports).run_pass(NOW)
    assert any(m.startswith("orders: ") for m in messages)


def test_a_bug_in_one_placement_does_not_cost_the_others_their_pass(messages):
    world = FakeWorld({EAST: {"orders": 10}, WEST: {"orders": 10}}, load={(WEST, "orders"): 95})
    world.explode = EAST
    report = Fleet(fleet_settings(), world.ports).run_pass(NOW)
    assert report.failures == 1 and report.updates == 1
    assert "[us-east-1] Unexpected error in the pass; the other regions and accounts go on" in messages


def test_clients_that_cannot_be_built_fail_that_placement_each_pass_until_they_can(messages):
    # e.g. AWS_PROFILE naming no profile, or a bad AWS_ENDPOINT_URL: one line a pass, never a
    # traceback, the other placements scale, and a later pass tries again
    world = FakeWorld({EAST: {"orders": 10}, WEST: {"orders": 10}}, load={(WEST, "orders"): 95})
    broken = {EAST}

    def ports(settings: Settings, placement: Placement) -> Ports:
        if placement in broken:
            raise AwsError("cannot set up the AWS session: The config profile (nope) could not be found")
        return world.ports(settings, placement)

    fleet = Fleet(fleet_settings(), ports)
    report = fleet.run_pass(NOW)
    assert report.failures == 1 and report.updates == 1
    assert ("[us-east-1] Cannot reach AWS: cannot set up the AWS session: The config profile (nope) "
            "could not be found") in messages
    assert not any("Unexpected error" in m for m in messages)
    broken.clear()
    world.load[(EAST, "orders")] = 95
    assert fleet.run_pass(NOW).ok and [u.table_capacity for u in world.made[EAST].updates] == [Capacity(15, 15)]


def test_a_bad_profile_or_endpoint_is_an_aws_error_of_one_line(monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    # botocore says so when the session is made or, once the process has one, the client
    with pytest.raises(AwsError, match=r"^cannot set up the AWS (session|dynamodb client): The config profile "
                                       r"\(no-such-profile\) could not be found$"):
        conn = aws.Connection("us-east-1")
        aws.make_client(aws.make_session(conn), "dynamodb", conn)
    monkeypatch.delenv("AWS_PROFILE")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "not a url")
    conn = aws.Connection("us-east-1", "k", "s")
    with pytest.raises(AwsError, match="^cannot set up the AWS dynamodb client: Invalid endpoint: not a url$"):
        aws.make_client(aws.make_session(conn), "dynamodb", conn)


def test_the_circuit_breaker_is_probed_once_per_pass_for_all_placements():
    from dynamic_dynamodb.rules import TargetRules
    url = "http://breaker.example/ok"
    world = FakeWorld({EAST: {"orders": 10}, WEST: {"orders": 10}, ROLE_EAST: {"events": 10}})
    rules = TargetRules(circuit_breaker_url=url)  # what config gives a table under [global] circuit-breaker-url
    settings = Settings(region="us-east-1", regions=("us-east-1", "eu-west-1"), circuit_breaker_url=url,
                        tables=(section("orders", rules=rules), section("events", rules=rules, role_arn=ROLE)))
    fleet = Fleet(settings, world.ports)
    fleet.run_pass(NOW)
    assert world.breaker.probes == 1
    fleet.run_pass(NOW + timedelta(minutes=5))
    assert world.breaker.probes == 2


def test_an_error_before_a_pass_such_as_in_a_sighup_reload_never_ends_the_loop(caplog):
    passes, stop = [], threading.Event()
    hooks = iter([RuntimeError("reload blew up")])

    def before_pass():
        error = next(hooks, None)
        if error:
            raise error

    def one_pass(now):
        passes.append(now)
        stop.set()
        return PassReport()

    run_forever(one_pass, lambda: 60, stop, before_pass, **ManualClock(stop).kwargs())
    assert len(passes) == 1 and "Unexpected error in the pass" in caplog.text


def test_a_pass_longer_than_the_interval_is_reported_and_never_run_twice_at_once(caplog):
    """loop.run_forever drives the fleet: a slow pass (a fake slow DescribeTable) is logged,
    the next starts right after it, never alongside."""
    world = FakeWorld({EAST: {"orders": 10}, WEST: {"orders": 10}})
    fleet = Fleet(fleet_settings(), world.ports)
    running, overlaps, starts = [], [], []
    stop = threading.Event()
    clock = ManualClock(stop)
    for scaler in fleet.scalers.values():
        slow = scaler.ports.tables.describe

        def describe(table, slow=slow):
            clock.advance(0.1)
            return slow(table)
        scaler.ports.tables.describe = describe

    def one_pass(now):
        overlaps.append(len(running))
        running.append(1)
        starts.append(clock.monotonic())
        try:
            return fleet.run_pass(now)
        finally:
            running.pop()
            if len(starts) == 3:
                stop.set()

    with caplog.at_level(logging.WARNING, logger="dynamic-dynamodb"):
        run_forever(one_pass, lambda: 0.05, stop, **clock.kwargs())
    assert overlaps == [0, 0, 0]
    assert all(b - a == pytest.approx(0.2) for a, b in zip(starts, starts[1:], strict=False))
    assert set(clock.waits) == {0.0}
    assert "longer than the check interval" in caplog.text


def test_the_fleet_report_adds_up_its_placements():
    world = FakeWorld({EAST: {"orders": 10}, WEST: {"orders": 10}},
                      load={(EAST, "orders"): 95, (WEST, "orders"): 95})
    report = Fleet(fleet_settings(dry_run=True), world.ports).run_pass(NOW)
    assert isinstance(report, PassReport) and report.updates == 0 and len(report.decisions) == 2
    assert world.made[EAST].updates == [] and world.made[WEST].updates == []


# ---- SNS topics live in their own region -------------------------------------------------

class FakeSns:
    def __init__(self, region: str) -> None:
        self.meta = type("Meta", (), {"region_name": region})()
        self.sent: list[str] = []

    def publish(self, TopicArn, Subject, Message):
        self.sent.append(TopicArn)


def test_a_topic_of_another_region_is_published_with_a_client_of_that_region():
    home, made = FakeSns("eu-west-1"), {}

    def client_for(region):
        made[region] = FakeSns(region)
        return made[region]

    notifier = aws.SnsNotifier(home, client_for)
    notifier.publish("arn:aws:sns:eu-west-1:123456789012:local", "s", "m")
    notifier.publish("arn:aws:sns:us-east-1:123456789012:ops", "s", "m")
    notifier.publish("arn:aws:sns:us-east-1:123456789012:ops", "s", "m")
    assert home.sent == ["arn:aws:sns:eu-west-1:123456789012:local"]
    assert list(made) == ["us-east-1"] and len(made["us-east-1"].sent) == 2
