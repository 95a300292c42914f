"""--backtest: history fetching (GetMetricData batching, splitting, pages) and the backtest over fake adapters.

The end-to-end run against moto_server is in tests/e2e/test_simulate_cli.py; moto ignores
NextToken and MaxDatapoints, so the call planning is checked here with botocore's Stubber.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from dynamic_dynamodb import aws
from dynamic_dynamodb.config import load_settings
from dynamic_dynamodb.model import (
    CONSUMED_METRIC,
    THROTTLE_METRIC,
    AwsError,
    Capacity,
    Dim,
    MetricQuery,
    TableDescription,
    TableNotFound,
    Target,
    TargetStatus,
)
from dynamic_dynamodb.settings import Placement
from dynamic_dynamodb.simulation import backtest
from dynamic_dynamodb.simulation import cli as simulation_cli
from dynamic_dynamodb.simulation.trace import load_trace

UTC = timezone.utc
NOW = datetime(2026, 3, 10, 12, 0, 30, tzinfo=UTC)
START, END = backtest.window(NOW, 1)
MINUTE = timedelta(minutes=1)

CR, CW = CONSUMED_METRIC[Dim.READS], CONSUMED_METRIC[Dim.WRITES]
TR, TW = THROTTLE_METRIC[Dim.READS], THROTTLE_METRIC[Dim.WRITES]


# ---- planning the GetMetricData calls ---------------------------------------------------


def covered(calls):
    """Every (query, bucket start) the calls ask for."""
    seen = []
    for lo, hi, t0, t1 in calls:
        buckets = -(-int((t1 - t0).total_seconds()) // 60)
        seen += [(q, t0 + k * MINUTE) for q in range(lo, hi) for k in range(buckets)]
    return seen


@pytest.mark.parametrize(
    ("count", "minutes", "max_queries", "max_points", "calls"),
    [
        (4, 1440, 500, 100_800, 1),  # one day of four series: one call
        (8, 15 * 1440, 500, 100_800, 2),  # 15 days: 21,600 points a series, 4 series a call
        (2000, 60, 500, 100_800, 4),  # the 500-queries limit
        (1, 200_000, 500, 100_800, 2),  # one series longer than a call: split in time
        (3, 10, 500, 4, 9),  # tiny limits: 1 query, 4 minutes a call
    ],
    ids=["one day of 4 series: 1 call", "15 days of 8 series: 2 calls", "2000 queries: 4 calls",
         "200,000 minutes of 1 series: 2 calls", "tiny limits split queries and time"],
)
def test_history_calls_respect_both_limits_and_cover_every_bucket_once(count, minutes, max_queries, max_points,
                                                                        calls):
    end = START + minutes * MINUTE
    plan = aws.plan_history_calls(count, START, end, 60, max_queries, max_points)
    assert len(plan) == calls
    for lo, hi, t0, t1 in plan:
        assert hi - lo <= max_queries
        assert (hi - lo) * ((t1 - t0) // MINUTE) <= max_points
        assert (t0 - START) % MINUTE == timedelta(0)  # buckets stay anchored at the history's start
    seen = covered(plan)
    assert len(seen) == len(set(seen)) == count * minutes


def stubbed(batch_size=500):
    client = boto3.client("cloudwatch", region_name="us-east-1")
    return client, Stubber(client), aws.CloudWatchMetrics(client, batch_size=batch_size, concurrency=1)


def request(queries, t0, t1, stat="Sum", token=None):
    params = {
        "MetricDataQueries": [
            {"Id": f"q{i}", "MetricStat": {
                "Metric": {"Namespace": "AWS/DynamoDB", "MetricName": q.metric,
                           "Dimensions": [{"Name": "TableName", "Value": q.target.table}]},
                "Period": q.period, "Stat": stat}, "ReturnData": True}
            for i, q in enumerate(queries)],
        "StartTime": t0, "EndTime": t1, "ScanBy": "TimestampAscending",
    }
    if token:
        params["NextToken"] = token
    return params


def answer(points_by_id, token=None):
    response = {"MetricDataResults": [
        {"Id": qid, "Timestamps": [t for t, _ in points], "Values": [v for _, v in points], "StatusCode": "Complete"}
        for qid, points in points_by_id.items()]}
    if token:
        response["NextToken"] = token
    return response


def test_a_long_history_is_split_in_time_and_its_pages_are_followed():
    client, stub, cw = stubbed()
    end = START + 6 * MINUTE
    qa, qb = (MetricQuery(Target("orders"), m, START, end, 60) for m in (CR, TR))
    at = [START + k * MINUTE for k in range(6)]
    # 4 datapoints a call: one query at a time, minutes 0-3 then 4-5; the first call answers in two pages
    stub.add_response("get_metric_data", answer({"q0": [(at[0], 60.0), (at[1], 61.0)]}, token="more"),
                      request([qa], at[0], at[4]))
    stub.add_response("get_metric_data", answer({"q0": [(at[2], 62.0), (at[3], 63.0)]}),
                      request([qa], at[0], at[4], token="more"))
    stub.add_response("get_metric_data", answer({"q0": [(at[5], 65.0)]}), request([qa], at[4], end))
    stub.add_response("get_metric_data", answer({"q0": []}), request([qb], at[0], at[4]))
    stub.add_response("get_metric_data", answer({"q0": [(at[4], 2.0)]}), request([qb], at[4], end))
    with stub:
        got = cw.fetch_history([qa, qb], max_datapoints=4)
        stub.assert_no_pending_responses()
    assert got[qa] == [(at[0], 60.0), (at[1], 61.0), (at[2], 62.0), (at[3], 63.0), (at[5], 65.0)]
    assert got[qb] == [(at[4], 2.0)]
    assert cw.calls == 5


def test_history_queries_are_batched_by_the_batch_size_with_the_given_statistic():
    client, stub, cw = stubbed(batch_size=2)
    end = START + 10 * MINUTE
    queries = [MetricQuery(Target(f"table-{i}"), "ProvisionedReadCapacityUnits", START, end, 300) for i in range(5)]
    for lo in (0, 2, 4):
        batch = queries[lo:lo + 2]
        stub.add_response("get_metric_data", answer({f"q{i}": [(START, float(lo + i))] for i in range(len(batch))}),
                          request(batch, START, end, stat="Average"))
    with stub:
        got = cw.fetch_history(queries, stat="Average")
        stub.assert_no_pending_responses()
    assert [got[q] for q in queries] == [[(START, float(i))] for i in range(5)]


def test_a_cloudwatch_error_during_the_history_is_translated():
    client, stub, cw = stubbed()
    q = MetricQuery(Target("orders"), CR, START, END, 60)
    stub.add_client_error("get_metric_data", "AccessDenied", "not allowed: cloudwatch:GetMetricData", 403)
    with stub, pytest.raises(AwsError, match="AccessDenied"):
        cw.fetch_history([q])


# ---- from datapoints to a trace -----------------------------------------------------------


def test_the_history_window_is_whole_minutes_ending_a_few_minutes_before_now():
    start, end = backtest.window(NOW, 7)
    assert end == datetime(2026, 3, 10, 12, 0, tzinfo=UTC) - backtest.SETTLE_MINUTES * MINUTE
    assert end - start == timedelta(days=7)


def test_demand_is_consumed_plus_throttled_per_second_and_a_missing_minute_is_zero():
    consumed = [(START, 600.0), (START + 2 * MINUTE, 120.0)]
    throttled = [(START + 2 * MINUTE, 60.0), (START + 10 * MINUTE, 6.0)]  # the last is outside the 4 minutes
    assert backtest.per_minute(START, 4, consumed, throttled) == [10.0, 0.0, 3.0, 0.0]


def status(capacity=(10, 5), last_increase=None, last_decrease=None, index=None, billing="PROVISIONED"):
    return TargetStatus(Target("orders", index), "ACTIVE", billing, Capacity(*capacity),
                        last_increase=last_increase, last_decrease=last_decrease)


def test_the_initial_capacity_comes_from_cloudwatch_then_describe_table_then_the_default():
    cw_r, cw_w = [(START, 40.0)], [(START, 8.0)]
    assert backtest.initial_capacity(status(), START, cw_r, cw_w)[0] == (40, 8)
    # no provisioned datapoints: the current capacity, when it has not changed since the start
    assert backtest.initial_capacity(status(last_increase=START - MINUTE), START, [], [])[0] == (10, 5)
    initial, why = backtest.initial_capacity(status(last_decrease=START + MINUTE), START, [], [])
    assert initial is None and "1.25" in why


def test_output_directories_name_the_table_and_gsi_and_the_region_only_when_several():
    one = Placement("eu-west-1")
    assert backtest.output_name(Target("orders"), one, several=False) == "backtest-orders"
    assert backtest.output_name(Target("orders", "by_customer"), one, several=False) == "backtest-orders-by_customer"
    role = Placement("eu-west-1", "arn:aws:iam::123456789012:role/dd")
    assert backtest.output_name(Target("orders"), role, several=True) == "backtest-orders-eu-west-1-123456789012"


# ---- the backtest over fake adapters ------------------------------------------------------


class FakeTables:
    def __init__(self, descriptions, fail_list=False):
        self.descriptions = descriptions
        self.fail_list = fail_list

    def list_tables(self):
        if self.fail_list:
            raise AwsError("AccessDeniedException: no dynamodb:ListTables", "AccessDeniedException")
        return list(self.descriptions) + ["gone_table"]

    def describe(self, name):
        if name not in self.descriptions:
            raise TableNotFound(f"{name} not found")
        return self.descriptions[name]

    def update(self, update):
        raise AssertionError("a backtest never updates a table")


class FakeHistory:
    """Answers Sums from {(target, metric): [(minute, value)]} and Averages from {(target, metric): value}."""

    def __init__(self, sums, levels=None):
        self.sums, self.levels = sums, levels or {}
        self.asked = []

    def fetch_history(self, queries, stat="Sum"):
        self.asked.append((stat, list(queries)))
        out = {}
        for q in queries:
            if stat == "Sum":
                out[q] = [(q.start + k * MINUTE, v) for k, v in self.sums.get((q.target, q.metric), [])]
            else:
                level = self.levels.get((q.target, q.metric))
                out[q] = [] if level is None else [(q.start, level)]
        return out


CONF = """
[global]
region: eu-west-1
check-interval: 300

[table: orders.*]
reads-upper-threshold: 80
increase-reads-with: 50
reads-lower-threshold: 30
decrease-reads-with: 50

[gsi: by_.* table: orders.*]
reads-upper-threshold: 80
increase-reads-with: 50

[table: idle_table]
"""


def settings(tmp_path, *argv, conf=CONF):
    path = tmp_path / "bt.conf"
    path.write_text(conf, encoding="utf-8")
    return load_settings(["-c", str(path), "--backtest", "--days", "1", "--simulate-output",
                          str(tmp_path / "out"), *argv])


def busy_minutes(level, extra=0.0):
    """A table busy for 3 hours in the middle of the day: Sum per minute."""
    return [(k, level * 60 + extra) for k in range(600, 780)]


@pytest.fixture
def fakes():
    orders, gsi = Target("orders"), Target("orders", "by_customer")
    descriptions = {
        "orders": TableDescription(status((20, 5), last_increase=NOW - timedelta(hours=2)),
                                   (status((8, 2), index="by_customer"), status((3, 3), index="unmatched_gsi"))),
        "orders_archive": TableDescription(TargetStatus(Target("orders_archive"), "ACTIVE", "PAY_PER_REQUEST",
                                                        Capacity(0, 0))),
        "idle_table": TableDescription(TargetStatus(Target("idle_table"), "ACTIVE", "PROVISIONED", Capacity(5, 5))),
        "someone_elses": TableDescription(TargetStatus(Target("someone_elses"), "ACTIVE", "PROVISIONED",
                                                       Capacity(5, 5))),
    }
    history = FakeHistory(
        {(orders, CR): busy_minutes(30), (orders, TR): busy_minutes(0, extra=120.0), (orders, CW): busy_minutes(4),
         (gsi, CR): busy_minutes(9)},
        levels={(orders, "ProvisionedReadCapacityUnits"): 25.0, (orders, "ProvisionedWriteCapacityUnits"): 6.0},
    )
    return FakeTables(descriptions), history


def run(tmp_path, tables, history, *argv, conf=CONF):
    out, err = io.StringIO(), io.StringIO()
    connected = []

    def connect(s, placement):
        connected.append(placement)
        return tables, history

    code = backtest.run(settings(tmp_path, *argv, conf=conf), connect=connect, stdout=out, stderr=err, now=NOW)
    return code, out.getvalue(), err.getvalue(), connected


def test_every_matched_table_and_gsi_gets_its_replay_and_the_others_a_line(tmp_path, fakes):
    code, out, err, connected = run(tmp_path, *fakes)
    assert code == 0, err
    assert connected == [Placement("eu-west-1")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["backtest-orders", "backtest-orders-by_customer",
                                                                     "fleet-report.json"]
    assert "orders_archive: no CloudWatch data in the last 1 day(s), skipped" in out  # on-demand, but idle
    assert "idle_table: no CloudWatch data in the last 1 day(s), skipped" in out
    assert "someone_elses" not in out and "unmatched_gsi" not in out
    names = ("this config ", "aws-target-", "fixed-peak ", "on-demand ")
    rows = [line.split()[0] for line in out.splitlines() if line.startswith(names)]
    assert rows == ["this", "aws-target-70", "fixed-peak", "on-demand"] * 2
    assert "Backtested 2 table(s) and GSI(s) (0 on-demand) over 1 day(s); skipped 2 without data" in out


def test_the_replayed_demand_is_consumed_plus_throttled_over_the_whole_window(tmp_path, fakes):
    run(tmp_path, *fakes)
    trace = load_trace(tmp_path / "out" / "backtest-orders" / "history.csv")
    assert trace.start == START and trace.minutes == 1440
    assert trace.reads[600] == 32.0 and trace.writes[600] == 4.0  # 30 consumed + 120/60 throttled
    assert trace.reads[0] == trace.reads[1439] == 0.0


def test_the_replay_starts_from_the_capacity_the_table_had_at_the_start(tmp_path, fakes):
    run(tmp_path, *fakes)
    orders = read_timeline(tmp_path / "out" / "backtest-orders" / "timeline.csv")
    gsi = read_timeline(tmp_path / "out" / "backtest-orders-by_customer" / "timeline.csv")
    assert (orders[0]["provisioned_reads"], orders[0]["provisioned_writes"]) == ("25", "6")  # CloudWatch
    assert (gsi[0]["provisioned_reads"], gsi[0]["provisioned_writes"]) == ("8", "2")  # DescribeTable, unchanged


def test_the_gsi_is_scaled_by_its_gsi_section(tmp_path, fakes):
    run(tmp_path, *fakes)
    report = json.loads((tmp_path / "out" / "backtest-orders-by_customer" / "report.json").read_text())
    assert report["table"] == "orders/by_customer"
    timeline = read_timeline(tmp_path / "out" / "backtest-orders-by_customer" / "timeline.csv")
    assert max(int(r["provisioned_reads"]) for r in timeline) > 8  # the GSI's busy hours raised it


def test_the_aws_baseline_takes_the_target_utilization_setting(tmp_path, fakes):
    code, out, _, _ = run(tmp_path, *fakes, "--aws-target-utilization", "55")
    report = json.loads((tmp_path / "out" / "backtest-orders" / "report.json").read_text())
    assert list(report["baselines"]) == ["aws-target-55", "fixed-peak"]
    assert "aws-target-55" in out


def test_the_history_is_asked_for_in_one_batch_of_sums_and_one_of_averages(tmp_path, fakes):
    tables, history = fakes
    run(tmp_path, tables, history)
    (stat1, sums), (stat2, levels) = history.asked
    assert (stat1, stat2) == ("Sum", "Average")
    assert len(sums) == 4 * 4 and {(q.start, q.end, q.period) for q in sums} == {(START, END, 60)}
    assert len(levels) == 4 * 2


def test_a_failing_list_tables_is_one_error_line_and_exit_1(tmp_path, fakes):
    _, history = fakes
    code, out, err, _ = run(tmp_path, FakeTables({}, fail_list=True), history)
    assert code == 1
    assert err.count("\n") == 1 and "eu-west-1: cannot list tables: AccessDeniedException" in err


def test_no_matching_table_is_said_and_exits_1(tmp_path, fakes):
    code, out, err, _ = run(tmp_path, FakeTables({}), fakes[1])
    assert code == 1 and "nothing to backtest: no table in eu-west-1 matches" in err


def test_backtest_without_table_sections_is_a_usage_error():
    err = io.StringIO()
    assert simulation_cli.main(load_settings(["--backtest"]), stderr=err) == 2
    assert "nothing to backtest" in err.getvalue()


def test_simulate_and_backtest_together_is_a_usage_error():
    err = io.StringIO()
    assert simulation_cli.main(load_settings(["--backtest", "--simulate", "x.csv"]), stderr=err) == 2
    assert "not both" in err.getvalue()


def test_each_region_of_the_config_is_backtested_into_its_own_directories(tmp_path, fakes):
    conf = CONF.replace("region: eu-west-1", "regions: eu-west-1, us-east-2")
    code, out, err, connected = run(tmp_path, *fakes, conf=conf)
    assert code == 0, err
    assert [p.region for p in connected] == ["eu-west-1", "us-east-2"]
    assert (tmp_path / "out" / "backtest-orders-us-east-2" / "report.json").exists()


def read_timeline(path: Path):
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_fleet_report_covers_on_demand_tables_and_recommends_a_mode_each(tmp_path, fakes):
    tables, history = fakes
    archive = Target("orders_archive")
    # steady all day: provisioned at this config costs far less than its requests on demand
    history.sums[(archive, CR)] = [(k, 50 * 60.0) for k in range(1440)]
    history.sums[(archive, CW)] = [(k, 10 * 60.0) for k in range(1440)]
    code, out, err, _ = run(tmp_path, tables, history)
    assert code == 0, err
    rows = json.loads((tmp_path / "out" / "fleet-report.json").read_text())
    by_name = {(r["table"], r["index"]): r for r in rows}
    assert set(by_name) == {("orders", None), ("orders", "by_customer"), ("orders_archive", None)}
    arch = by_name[("orders_archive", None)]
    assert arch["billing_mode"] == "PAY_PER_REQUEST" and arch["recommended_mode"] == "PROVISIONED"
    assert arch["region"] == "eu-west-1" and arch["cost_this_config"] < arch["cost_on_demand"]
    assert set(arch) >= {"cost_aws_target_70", "throttled_share_this_config"}
    assert [r["saving"] for r in rows] == sorted((r["saving"] for r in rows), reverse=True)
    assert rows[0]["table"] == "orders_archive" and rows[0]["saving"] > 0
    table = out[out.index("Fleet report"):].splitlines()
    assert table[1].split()[:5] == ["table", "index", "region", "mode", "recommended"]
    assert table[2].split()[:5] == ["orders_archive", "-", "eu-west-1", "on-demand", "provisioned"]
    assert any(line.startswith("total") for line in table)
    assert "(1 on-demand)" in out
