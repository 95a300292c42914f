"""End to end: one daemon process for many tables, regions and accounts (docs/fleet.rst).

The daemon runs as ``python -m dynamic_dynamodb --run-once`` against moto_server behind the
rules proxy, whose request log counts the calls. moto keeps regions apart by the SigV4
scope and accounts apart by the credentials of an assumed role (STS AssumeRole), so the
same table name can live in two regions and two accounts at once.

Also here: the benchmark's CloudWatch endpoint (benchmarks/cloudwatch_stub.py) answers the
real botocore client, with the API's 500-query limit and NextToken.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import sys
import threading

import boto3
import botocore.credentials
import pytest
from support import metrics as M
from support.cli import REPO, assert_no_traceback, describe
from support.moto import CLIENT_CONFIG

from dynamic_dynamodb import aws

pytestmark = pytest.mark.e2e

ROLE_ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ROLE_ACCOUNT}:role/dynamic-dynamodb"
GSIS = {"by-customer": (5, 5), "by-date": (5, 5)}


@pytest.fixture
def run_once(cli, tmp_path):
    """One pass with a config text; returns the CompletedProcess."""
    def run(config: str, *args: str, timeout: float = 120):
        path = tmp_path / "fleet.conf"
        path.write_text(config, encoding="utf-8")
        result = cli(["--config", str(path), "--run-once", "--state-file", str(tmp_path / "state.json"),
                      "--pid-file-dir", str(tmp_path), *args], timeout=timeout)
        assert_no_traceback(result)
        return result
    return run


def clients(endpoint: str, region: str, credentials: dict | None = None):
    """(dynamodb, cloudwatch) clients of one region (and one account, given credentials)."""
    creds = ({"aws_access_key_id": credentials["AccessKeyId"], "aws_secret_access_key": credentials["SecretAccessKey"],
              "aws_session_token": credentials["SessionToken"]} if credentials
             else {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"})
    session = boto3.session.Session()
    return tuple(session.client(s, region_name=region, endpoint_url=endpoint, config=CLIENT_CONFIG, **creds)
                 for s in ("dynamodb", "cloudwatch"))


def seed(ddb, cw, table: str, reads_pct: float | None, writes_pct: float | None = None, units: int = 10,
         gsis=None) -> None:
    M.create_table(ddb, table, units, units, gsis=gsis)
    if reads_pct is not None:
        M.put_consumption(cw, table, read_per_second=units * reads_pct / 100,
                          write_per_second=units * (writes_pct if writes_pct is not None else reads_pct) / 100)


def region_of(info) -> str | None:
    auth = {k.lower(): v for k, v in info.headers.items()}.get("authorization", "")
    scope = auth.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    return scope[2] if len(scope) >= 4 else None


@pytest.fixture
def regions_seen(rules_proxy):
    """(operation, region) of every request from now on."""
    seen: list[tuple[str, str]] = []
    rules_proxy.add_hook(None, lambda info: seen.append((info.operation, region_of(info))), times=None)
    return seen


def daemon_calls(proxy) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in proxy.calls():
        counts[call["operation"]] = counts.get(call["operation"], 0) + 1
    return counts


# ---- 2. cheap table state, batched metrics: the calls of one pass ------------------------

def test_a_pass_over_30_tables_with_2_gsis_makes_1_list_30_describes_and_3_metrics_calls(
        rules_proxy, aws, run_once):
    names = [f"fleet-{i:02d}" for i in range(30)]
    for name in names:
        M.create_table(aws.dynamodb, name, 10, 10, gsis=GSIS)
    for name in names[:3]:  # a few busy tables, so the pass also updates
        M.put_consumption(aws.cloudwatch, name, read_per_second=9.5, write_per_second=5)
    rules_proxy.clear_log()
    r = run_once("[global]\nregion: us-east-1\n[table: fleet-\\d+]\n[gsi: by-.* table: fleet-\\d+]\n")
    assert r.returncode == 0, describe(r)
    calls = daemon_calls(rules_proxy)
    queries = 30 * 3 * 12  # 4 series per table or GSI, and 8 of throttles by cause
    assert calls == {"ListTables": 1, "DescribeTable": 30, "GetMetricData": math.ceil(queries / 500),
                     "DescribeLimits": 1, "UpdateTable": 3}, calls
    assert sorted(c["table"] for c in rules_proxy.calls("DescribeTable")) == names
    calls = [[q["Id"] for q in call["params"]["MetricDataQueries"]] for call in rules_proxy.calls("GetMetricData")]
    assert sum(map(len, calls)) == queries and all(len(ids) == len(set(ids)) for ids in calls)  # unique per call
    assert M.provisioned(aws.dynamodb, names[0]) == (15, 10)


def test_pages_of_list_tables_are_followed_in_one_page_run(rules_proxy, aws, run_once):
    # moto pages ListTables by 100: 130 tables are two pages, asked once each per pass
    for i in range(130):
        M.create_table(aws.dynamodb, f"many-{i:03d}", 5, 5)
    rules_proxy.clear_log()
    r = run_once("[table: many-00\\d]\n")
    assert r.returncode == 0, describe(r)
    pages = rules_proxy.calls("ListTables")
    assert len(pages) == 2 and "ExclusiveStartTableName" not in (pages[0]["params"] or {})
    assert pages[1]["params"]["ExclusiveStartTableName"]
    assert len(rules_proxy.calls("DescribeTable")) == 10


# ---- 3. several regions in one config, one pass ----------------------------------------------

def test_one_pass_scales_the_same_table_name_in_each_region_by_its_own_metrics(
        rules_proxy, run_once, regions_seen, tmp_path):
    url = rules_proxy.url
    seed(*clients(url, "us-east-1"), "orders", reads_pct=95, writes_pct=50)
    seed(*clients(url, "eu-west-1"), "orders", reads_pct=10, writes_pct=10)
    seed(*clients(url, "ap-southeast-2"), "events", reads_pct=95, writes_pct=50)
    seed(*clients(url, "us-west-2"), "orders", reads_pct=95)  # not configured: never touched
    regions_seen.clear()
    r = run_once("[global]\nregions: us-east-1, eu-west-1\n[logging]\nlog-level: info\n"
                 "[table: orders]\n[table: events]\nregion: ap-southeast-2\n")
    assert r.returncode == 0, describe(r)
    seen = list(regions_seen)  # the daemon's requests (the checks below make more)
    provisioned = {region: M.provisioned(clients(url, region)[0], table) for region, table in
                   [("us-east-1", "orders"), ("eu-west-1", "orders"), ("ap-southeast-2", "events"),
                    ("us-west-2", "orders")]}
    assert provisioned == {"us-east-1": (15, 10), "eu-west-1": (5, 5), "ap-southeast-2": (15, 10),
                           "us-west-2": (10, 10)}
    lists = sorted(region for op, region in seen if op == "ListTables")
    assert lists == ["ap-southeast-2", "eu-west-1", "us-east-1"]
    assert sorted(region for op, region in seen if op == "GetMetricData") == lists
    assert "us-west-2" not in {region for _, region in seen}
    out = r.stdout + r.stderr
    assert "[eu-west-1] orders: " in out and "[us-east-1] orders: " in out
    # the decrease is remembered for eu-west-1's orders only
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["version"] == 3
    assert [(e["table"], e.get("region")) for e in saved["targets"]
            if e["memory"]["decreases_today"]] == [("orders", "eu-west-1")]


def test_show_config_names_the_region_and_role_of_every_section(cli, config_file):
    path = config_file(f"[global]\nregions: us-east-1, eu-west-1\n[table: orders]\n[table: events]\n"
                       f"region: ap-southeast-2\nrole-arn: {ROLE}\n")
    r = cli(["--config", str(path), "--show-config"])
    assert r.returncode == 0, describe(r)
    data = json.loads(r.stdout)
    assert [(t["regex"], t["regions"], t["role_arn"]) for t in data["tables"]] == [
        ("orders", ["us-east-1", "eu-west-1"], None), ("events", ["ap-southeast-2"], ROLE)]
    assert [(p["region"], p["role_arn"]) for p in data["placements"]] == [
        ("us-east-1", None), ("eu-west-1", None), ("ap-southeast-2", ROLE)]


def test_a_bad_role_arn_is_a_one_line_error_with_status_2(cli, config_file):
    r = cli(["--config", str(config_file("[table: orders]\nrole-arn: arn:aws:iam::42:role/x\n")), "--run-once"])
    assert r.returncode == 2, describe(r)
    [line] = r.stderr.strip().splitlines()
    assert "[table: orders] role-arn: expected an IAM role ARN" in line


# ---- 3. tables in another account through an assumed role -----------------------------------

def assume(url: str) -> dict:
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=url, aws_access_key_id="testing",
                       aws_secret_access_key="testing", config=CLIENT_CONFIG)
    return sts.assume_role(RoleArn=ROLE, RoleSessionName="test-setup")["Credentials"]


def test_a_role_arn_scales_tables_of_another_account_next_to_our_own(rules_proxy, run_once, tmp_path):
    url = rules_proxy.url
    seed(*clients(url, "us-east-1"), "orders", reads_pct=50)  # our account: no change
    other = clients(url, "us-east-1", assume(url))
    seed(*other, "orders", reads_pct=95, writes_pct=50)  # same name in the role's account: an increase
    seed(*other, "refunds", reads_pct=10)
    rules_proxy.clear_log()
    r = run_once(f"[table: orders]\n[table: orders|refunds]\nrole-arn: {ROLE}\n")
    assert r.returncode == 0, describe(r)
    assert M.provisioned(clients(url, "us-east-1")[0], "orders") == (10, 10)
    assert M.provisioned(other[0], "orders") == (15, 10)
    assert M.provisioned(other[0], "refunds") == (5, 5)
    [assumed] = rules_proxy.calls("AssumeRole")  # once per pass, not once per call
    assert assumed["params"]["RoleArn"] == ROLE and assumed["params"]["RoleSessionName"] == "dynamic-dynamodb"
    assert len(rules_proxy.calls("ListTables")) == 2
    saved = json.loads((tmp_path / "state.json").read_text())
    assert {(e["table"], e.get("role_arn")) for e in saved["targets"]
            if e["memory"]["decreases_today"]} == {("refunds", ROLE)}


def test_a_role_that_cannot_be_assumed_fails_its_tables_only(rules_proxy, run_once):
    url = rules_proxy.url
    seed(*clients(url, "us-east-1"), "orders", reads_pct=95, writes_pct=50)
    rules_proxy.add_faults({"operation": "AssumeRole", "status": 403, "code": "AccessDenied",
                            "message": "not authorized to perform: sts:AssumeRole", "times": 20})
    r = run_once(f"[table: orders]\n[table: refunds]\nrole-arn: {ROLE}\n")
    assert r.returncode == 1, describe(r)
    assert M.provisioned(clients(url, "us-east-1")[0], "orders") == (15, 10)
    assert "Cannot list tables: AccessDenied" in r.stdout + r.stderr


def test_assumed_credentials_are_reused_and_refreshed_by_botocore_before_they_expire(rules_proxy, monkeypatch):
    url = rules_proxy.url
    other = clients(url, "us-east-1", assume(url))
    M.create_table(other[0], "theirs", 5, 5)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    conn = aws.Connection("us-east-1", role_arn=ROLE)
    session = aws.make_session(conn)
    tables = aws.DynamoTables(aws.make_client(session, "dynamodb", conn))
    rules_proxy.clear_log()
    assert tables.list_tables() == ["theirs"]
    assert tables.list_tables() == ["theirs"]
    assert len(rules_proxy.calls("AssumeRole")) == 1
    # 50 minutes later the hour-long credentials are inside botocore's refresh window
    # (15 minutes before expiry): the next call assumes the role again first
    credentials = session.get_credentials()
    real_clock = credentials._time_fetcher
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=50)
    with monkeypatch.context() as m:
        m.setattr(botocore.credentials, "_local_now", lambda: later)
        credentials._time_fetcher = lambda: later
        assert tables.list_tables() == ["theirs"]
        # (moto's fresh credentials expire an hour after the real time, which this fake
        # clock already sees as near: botocore may fetch more than once)
        refreshed = len(rules_proxy.calls("AssumeRole"))
        assert refreshed >= 2
    credentials._time_fetcher = real_clock
    assert tables.list_tables() == ["theirs"]
    assert len(rules_proxy.calls("AssumeRole")) == refreshed  # fresh credentials are reused again


# ---- the benchmark's CloudWatch endpoint speaks the real protocol -----------------------------

@pytest.fixture
def stub():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from cloudwatch_stub import CloudWatchStub
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    with CloudWatchStub(latency_ms=0) as server:
        yield server


def stub_client(url: str):
    return boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=url, aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=CLIENT_CONFIG)


def test_the_stub_answers_1200_queries_in_3_calls_and_refuses_501(stub):
    from dynamic_dynamodb.model import MetricQuery, Target
    cw = stub_client(stub.url)
    end = M.minute_floor()
    M.put_consumption(cw, "t-0001", read_per_second=2, write_per_second=1, minutes=10, end=end)
    start = end - dt.timedelta(minutes=10)
    qs = [MetricQuery(Target(f"t-{i:04d}"), metric, start, end) for i in range(300)
          for metric in (M.CONSUMED_READ, M.CONSUMED_WRITE, M.READ_THROTTLES, M.WRITE_THROTTLES)]
    data = aws.CloudWatchMetrics(cw).fetch(qs)
    assert sorted(stub.stats()["queries_per_call"]) == [200, 500, 500]  # (calls run side by side)
    assert [v for _, v in data[qs[4]]] == [120.0] * 10 and data[qs[0]] == []
    with pytest.raises(Exception, match="ValidationError"):
        cw.get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[
            {"Id": f"q{i}", "MetricStat": {"Metric": {"Namespace": "AWS/DynamoDB", "MetricName": "X"},
                                           "Period": 60, "Stat": "Sum"}} for i in range(501)])


def test_the_stub_pages_with_next_token_and_the_adapter_follows(stub):
    from dynamic_dynamodb.model import MetricQuery, Target
    cw = stub_client(stub.url)
    end = M.minute_floor()
    for table in ("a-table", "b-table"):
        M.put_consumption(cw, table, read_per_second=1, minutes=10, end=end)
    stub.max_datapoints = 4
    stub.reset_stats()
    start = end - dt.timedelta(minutes=10)
    qs = [MetricQuery(Target(t), M.CONSUMED_READ, start, end) for t in ("a-table", "b-table")]
    metrics = aws.CloudWatchMetrics(cw)
    data = metrics.fetch(qs)
    assert metrics.calls == 5 and stub.stats()["calls"] == {"cloudwatch.GetMetricData": 5}
    assert [len(data[q]) for q in qs] == [10, 10]
    assert [ts for ts, _ in data[qs[0]]] == sorted(ts for ts, _ in data[qs[0]])


def test_the_stub_delays_concurrent_calls_concurrently(stub):
    import time
    stub.latency_ms = 500  # four calls one after another take 2 s; at once, about 0.5 s plus the load's share
    cw = stub_client(stub.url)
    end = M.minute_floor()

    def call():
        cw.get_metric_data(StartTime=end - dt.timedelta(minutes=5), EndTime=end, MetricDataQueries=[
            {"Id": "q0", "MetricStat": {"Metric": {"Namespace": "AWS/DynamoDB", "MetricName": "X"},
                                        "Period": 60, "Stat": "Sum"}}])
    started = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started < 1.5
    assert stub.stats()["calls"]["cloudwatch.GetMetricData"] == 4
