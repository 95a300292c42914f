"""End to end against moto_server: throttles by cause (CloudWatch history fed by PutMetricData)."""
from __future__ import annotations

import datetime as dt
import json
import sys

import boto3
import pytest
from support import metrics as M
from support.cli import REPO, assert_no_traceback, describe, run_cli
from support.moto import CLIENT_CONFIG

pytestmark = pytest.mark.e2e


@pytest.fixture
def run_once(cli, tmp_path):
    def run(config: str, *args: str, timeout: float = 60):
        path = tmp_path / "dynamic-dynamodb.conf"
        path.write_text(config, encoding="utf-8")
        result = cli(["--config", str(path), "--run-once", "--state-file", str(tmp_path / "state.json"),
                      "--pid-file-dir", str(tmp_path), *args], timeout=timeout)
        assert_no_traceback(result)
        return result
    return run


CONF = """[global]
region: us-east-1
check-interval: 300

[logging]
log-level: info

[table: (hot|busy)]
throttled-reads-upper-threshold: 10
"""


def test_key_range_throttles_raise_nothing_and_are_reported_provisioned_ones_raise(proxy_aws, aws, run_once):
    for name, cause in (("hot", "KeyRangeThroughput"), ("busy", "ProvisionedThroughput")):
        M.create_table(proxy_aws.dynamodb, name, 10, 10)
        M.put_consumption(proxy_aws.cloudwatch, name, read_per_second=5, write_per_second=5,
                          read_throttles_per_minute=50)
        M.put_metric_minutes(proxy_aws.cloudwatch, f"Read{cause}ThrottleEvents", name, 50)
    r = run_once(CONF)
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "hot") == (10, 10)
    assert M.provisioned(aws.dynamodb, "busy") == (15, 10)
    output = r.stdout + r.stderr
    [line] = [x for x in output.splitlines() if "hot key range" in x]
    assert "hot:" in line and "100% key range" in line and "Contributor Insights" in line
    assert "busy" not in line


# ---- the fleet report of --backtest ----------------------------------------------------------

@pytest.fixture
def stub():
    """The benchmarks' indexed CloudWatch endpoint: a day of 1-minute datapoints per table stays fast."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from cloudwatch_stub import CloudWatchStub
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    with CloudWatchStub(latency_ms=0) as server:
        yield server


def seed_fleet(ddb, cw, end: dt.datetime) -> None:
    """A day of history: steady provisioned, bursty provisioned (idle, six 10-minute bursts), steady on-demand."""
    day = 1440
    M.create_table(ddb, "steady", 60, 15)
    M.create_table(ddb, "bursty", 5, 5)
    M.create_table(ddb, "archive", on_demand=True)
    for name in ("steady", "archive"):
        M.put_consumption(cw, name, read_per_second=50, write_per_second=10, minutes=day, end=end)
    burst = [200.0 * 60 if k % 240 < 10 else 0.0 for k in range(day)]
    M.put_metric_minutes(cw, M.CONSUMED_READ, "bursty", burst, minutes=day, end=end)
    M.put_metric_minutes(cw, M.CONSUMED_WRITE, "bursty", [v / 4 for v in burst], minutes=day, end=end)


FLEET_CONF = """[global]
region: us-east-1

[table: (steady|bursty|archive)]
"""


def test_the_fleet_backtest_recommends_a_mode_per_table(moto, aws, stub, tmp_path):
    cw = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=stub.url, aws_access_key_id="testing",
                      aws_secret_access_key="testing", config=CLIENT_CONFIG)
    now = M.minute_floor()
    seed_fleet(aws.dynamodb, cw, now - dt.timedelta(minutes=6))
    conf = tmp_path / "fleet.conf"
    conf.write_text(FLEET_CONF, encoding="utf-8")
    result = run_cli(["--config", conf, "--backtest", "--days", "1", "--simulate-output", tmp_path / "out"],
                     endpoint_url=moto.url, env_extra={"AWS_ENDPOINT_URL_CLOUDWATCH": stub.url}, timeout=120)
    assert_no_traceback(result)
    assert result.returncode == 0, describe(result)
    rows = json.loads((tmp_path / "out" / "fleet-report.json").read_text())
    modes = {r["table"]: (r["billing_mode"], r["recommended_mode"]) for r in rows}
    assert modes == {"steady": ("PROVISIONED", "PROVISIONED"), "bursty": ("PROVISIONED", "PAY_PER_REQUEST"),
                     "archive": ("PAY_PER_REQUEST", "PROVISIONED")}
    assert all(r["index"] is None and r["region"] == "us-east-1" for r in rows)
    fleet = result.stdout[result.stdout.index("Fleet report"):]
    lines = fleet.splitlines()
    assert [line.split()[0] for line in lines[2:5]] == ["bursty", "archive", "steady"]  # by the saving
    assert lines[5].startswith("total") and lines[6].startswith("Total: $")


# ---- capacity-mode: auto ---------------------------------------------------------------------

AUTO_CONF = """[global]
region: us-east-1

[logging]
log-level: info

[table: (steady|bursty|archive)]
capacity-mode: auto
capacity-mode-days: 1
capacity-mode-min-hours: 0
"""


def billing(ddb, table: str) -> str:
    return ddb.describe_table(TableName=table)["Table"].get("BillingModeSummary", {}).get("BillingMode",
                                                                                          "PROVISIONED")


@pytest.fixture
def auto_fleet(moto, aws, stub, tmp_path):
    cw = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=stub.url, aws_access_key_id="testing",
                      aws_secret_access_key="testing", config=CLIENT_CONFIG)
    seed_fleet(aws.dynamodb, cw, M.minute_floor() - dt.timedelta(minutes=6))
    conf = tmp_path / "auto.conf"
    conf.write_text(AUTO_CONF, encoding="utf-8")

    def run(*args: str):
        result = run_cli(["--config", conf, "--run-once", "--state-file", tmp_path / "state.json",
                          "--pid-file-dir", tmp_path, *args], endpoint_url=moto.url,
                         env_extra={"AWS_ENDPOINT_URL_CLOUDWATCH": stub.url}, timeout=120)
        assert_no_traceback(result)
        assert result.returncode == 0, describe(result)
        return result.stdout + result.stderr
    return run


def test_auto_switches_the_bursty_table_to_on_demand_and_the_steady_on_demand_one_back(auto_fleet, aws):
    dry = auto_fleet("--dry-run")
    assert "bursty: dry run, would switch to on-demand" in dry
    assert "archive: dry run, would switch to provisioned" in dry and "72 reads and 15 writes" in dry
    assert [billing(aws.dynamodb, t) for t in ("steady", "bursty", "archive")] == ["PROVISIONED"] * 2 + [
        "PAY_PER_REQUEST"]
    out = auto_fleet()
    assert "bursty: switched to on-demand" in out and "archive: switched to provisioned" in out
    assert [billing(aws.dynamodb, t) for t in ("steady", "bursty", "archive")] == [
        "PROVISIONED", "PAY_PER_REQUEST", "PROVISIONED"]
    # sized for the last half hour's demand (50 reads/s, 10 writes/s) at 70 %
    assert M.provisioned(aws.dynamodb, "archive") == (72, 15)
    assert "steady: switched" not in out


def test_auto_never_switches_a_table_to_on_demand_a_fifth_time_in_24_hours(auto_fleet, aws):
    for _ in range(4):
        out = auto_fleet()
        assert "bursty: switched to on-demand" in out
        # someone switches it back by hand (back to provisioned is allowed any time)
        aws.dynamodb.update_table(TableName="bursty", BillingMode="PROVISIONED",
                                  ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
    out = auto_fleet()
    assert "bursty: switched" not in out and "4 switches to on-demand in 24 h" in out
    assert billing(aws.dynamodb, "bursty") == "PROVISIONED"
