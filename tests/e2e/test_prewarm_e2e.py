"""End to end: `pre-warm: true` with the real daemon (`--run-once`) against moto_server behind the
DynamoDB rules proxy. moto reports a provisioned table's warm throughput as its created capacity
and takes UpdateTable's WarmThroughput; an endpoint that reports none is played by the proxy."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import metrics as M
from support.cli import REPO, assert_no_traceback, cli_env, describe
from support.processes import reaped, terminated

pytestmark = pytest.mark.e2e


def _config(tmp_path, table: str, extra: str = "") -> str:
    """A schedule coming into force in five minutes (its start in fifteen, ten minutes of lead)."""
    start = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=15)
    end = start + dt.timedelta(hours=1)
    path = tmp_path / f"{table}.conf"
    path.write_text(
        "[global]\nregion: us-east-1\n[logging]\nlog-level: info\n"
        f"[schedule: launch]\nhours: {start:%H:%M}-{end:%H:%M}\nmin-provisioned-reads: 400\n"
        "min-provisioned-writes: 150\n"
        f"[table: {table}]\nschedules: launch\npre-warm: true\n{extra}")
    return str(path)


def _warm(ddb, table: str) -> dict:
    return ddb.describe_table(TableName=table)["Table"]["WarmThroughput"]


def _warm_requests(rules_proxy, table: str) -> list[dict]:
    return [c["params"] for c in rules_proxy.calls("UpdateTable", table=table) if "WarmThroughput" in c["params"]]


def _run(cli, conf: str, tmp_path, *more: str):
    result = cli(["--config", conf, "--run-once", "--state-file", str(tmp_path / "s.json"),
                  "--pid-file-dir", str(tmp_path), *more])
    assert_no_traceback(result)
    return result


def _table(proxy_aws, name: str) -> None:
    """20 units each way, half of them consumed: the pass changes no capacity."""
    M.create_table(proxy_aws.dynamodb, name, 20, 20)
    M.put_consumption(proxy_aws.cloudwatch, name, read_per_second=10.0, write_per_second=10.0)


def test_pre_warm_raises_the_warm_throughput_before_a_scheduled_peak_and_status_shows_it(
        rules_proxy, proxy_aws, aws, cli, tmp_path):
    _table(proxy_aws, "warm_launch")
    assert _warm(aws.dynamodb, "warm_launch")["ReadUnitsPerSecond"] == 20
    conf = _config(tmp_path, "warm_launch")
    result = _run(cli, conf, tmp_path)
    assert result.returncode == 0, describe(result)
    assert _warm_requests(rules_proxy, "warm_launch") == [
        {"TableName": "warm_launch", "WarmThroughput": {"ReadUnitsPerSecond": 400, "WriteUnitsPerSecond": 150}}]
    warm = _warm(aws.dynamodb, "warm_launch")
    assert (warm["ReadUnitsPerSecond"], warm["WriteUnitsPerSecond"]) == (400, 150)
    assert M.provisioned(aws.dynamodb, "warm_launch") == (20, 20)  # not a capacity change
    assert "warm_launch: warm throughput raised to 400/150 units/s" in result.stderr + result.stdout
    assert "0 update(s), 0 skipped, 0 failure(s); 1 pre-warm(s)" in result.stderr + result.stdout

    status = cli(["--config", conf, "--status-json", "--state-file", str(tmp_path / "s.json")])
    assert status.returncode == 0, describe(status)
    [row] = json.loads(status.stdout)
    assert row["warm_throughput"] == {"read_units_per_second": 400, "write_units_per_second": 150,
                                      "status": "ACTIVE"}
    assert row["pre_warmed_until"] is not None


def test_a_refused_pre_warm_is_a_warning_and_a_restart_does_not_send_it_again(
        rules_proxy, proxy_aws, aws, cli, tmp_path):
    _table(proxy_aws, "warm_refused")
    rules_proxy.add_faults({"operation": "UpdateTable", "table": "warm_refused", "status": 400,
                            "code": "ValidationException", "message": "WarmThroughput is not supported here"})
    conf = _config(tmp_path, "warm_refused")
    first = _run(cli, conf, tmp_path)
    assert first.returncode == 0, describe(first)
    assert "warm_refused: pre-warm refused, not asked again for this peak: ValidationException" in first.stderr
    assert len(_warm_requests(rules_proxy, "warm_refused")) == 1
    again = _run(cli, conf, tmp_path)  # a new process, the same state file
    assert again.returncode == 0, describe(again)
    assert len(_warm_requests(rules_proxy, "warm_refused")) == 1
    assert _warm(aws.dynamodb, "warm_refused")["ReadUnitsPerSecond"] == 20


def test_an_endpoint_without_warm_throughput_gets_no_pre_warm_and_the_pass_goes_on(
        rules_proxy, proxy_aws, aws, cli, tmp_path):
    _table(proxy_aws, "warm_none")
    answer = {"Table": {"TableName": "warm_none", "TableStatus": "ACTIVE", "TableId": "a1b2c3",
                        "ProvisionedThroughput": {"ReadCapacityUnits": 20, "WriteCapacityUnits": 20,
                                                  "NumberOfDecreasesToday": 0}}}
    rules_proxy.add_faults({"operation": "DescribeTable", "table": "warm_none", "json": answer, "times": 5})
    result = _run(cli, _config(tmp_path, "warm_none"), tmp_path, "--dry-run")
    assert result.returncode == 0, describe(result)
    result = _run(cli, _config(tmp_path, "warm_none"), tmp_path)
    assert result.returncode == 0, describe(result)
    assert rules_proxy.calls("UpdateTable", table="warm_none") == []
    assert "the endpoint reports no warm throughput; pre-warm sends nothing there" in result.stderr
    assert "warm_none: reads" in result.stderr  # the decision was made as ever
    assert "pre-warm(s)" not in result.stderr


def test_a_table_and_its_gsi_are_pre_warmed_in_one_update(rules_proxy, proxy_aws, aws, cli, tmp_path):
    M.create_table(proxy_aws.dynamodb, "warm_gsi", 20, 20, gsis={"by_day": (10, 10)})
    M.put_consumption(proxy_aws.cloudwatch, "warm_gsi", read_per_second=10.0, write_per_second=10.0)
    M.put_consumption(proxy_aws.cloudwatch, "warm_gsi", "by_day", read_per_second=5.0, write_per_second=5.0)
    conf = _config(tmp_path, "warm_gsi", "[gsi: by_day table: warm_gsi]\nschedules: launch\npre-warm: true\n")
    result = _run(cli, conf, tmp_path)
    assert result.returncode == 0, describe(result)
    assert _warm_requests(rules_proxy, "warm_gsi") == [{
        "TableName": "warm_gsi", "WarmThroughput": {"ReadUnitsPerSecond": 400, "WriteUnitsPerSecond": 150},
        "GlobalSecondaryIndexUpdates": [{"Update": {
            "IndexName": "by_day", "WarmThroughput": {"ReadUnitsPerSecond": 400, "WriteUnitsPerSecond": 150}}}]}]
    [gsi] = aws.dynamodb.describe_table(TableName="warm_gsi")["Table"]["GlobalSecondaryIndexes"]
    assert (gsi["WarmThroughput"]["ReadUnitsPerSecond"], gsi["WarmThroughput"]["WriteUnitsPerSecond"]) == (400, 150)
    assert M.provisioned(aws.dynamodb, "warm_gsi", "by_day") == (10, 10)


# ---- on-demand tables: no capacity to scale, but a schedule's peak to pre-warm for ----------------------


def _on_demand_config(tmp_path, interval: int = 300) -> Path:
    """Two on-demand tables under a schedule coming into force in five minutes; one with pre-warm on
    (the table and its GSI), one without."""
    start = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=15)
    end = start + dt.timedelta(hours=1)
    path = tmp_path / "on-demand.conf"
    path.write_text(
        f"[global]\nregion: us-east-1\ncheck-interval: {interval}\n[logging]\nlog-level: info\n"
        f"[schedule: launch]\nhours: {start:%H:%M}-{end:%H:%M}\nmin-provisioned-reads: 20000\n"
        "min-provisioned-writes: 6000\n"
        "[table: warm_od]\nschedules: launch\npre-warm: true\n"
        "[gsi: by_day table: warm_od]\nschedules: launch\npre-warm: true\n"
        "[table: warm_od_plain]\nschedules: launch\n")
    return path


def _wait_for(predicate, what: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text() if log.exists() else ''}")
        time.sleep(0.1)


def test_an_on_demand_table_and_its_gsi_are_pre_warmed_once_ahead_of_a_schedule(
        rules_proxy, proxy_aws, aws, cli, tmp_path):
    for name in ("warm_od", "warm_od_plain"):
        M.create_table(proxy_aws.dynamodb, name, gsis=["by_day"], on_demand=True)
    assert (_warm(aws.dynamodb, "warm_od")["ReadUnitsPerSecond"], _warm(aws.dynamodb, "warm_od")[
        "WriteUnitsPerSecond"]) == (12000, 4000)  # what DynamoDB gives a new on-demand table
    config, log, state_file = _on_demand_config(tmp_path, interval=1), tmp_path / "dd.log", tmp_path / "s.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dynamic_dynamodb", "-c", str(config), "--daemon", "fg", "--pid-file-dir",
         str(tmp_path), "--state-file", str(state_file), "--log-file", str(log)],
        env=cli_env(rules_proxy.url), cwd=str(REPO), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with reaped(proc):  # three passes: the first pre-warms, the next ones do not ask again
        _wait_for(lambda: log.exists() and log.read_text().count("Pass done") >= 3, "three passes", log)
        assert terminated(proc) == 0
    text = log.read_text()
    assert "Traceback" not in text, text
    assert _warm_requests(rules_proxy, "warm_od") == [{
        "TableName": "warm_od", "WarmThroughput": {"ReadUnitsPerSecond": 20000, "WriteUnitsPerSecond": 6000},
        "GlobalSecondaryIndexUpdates": [{"Update": {
            "IndexName": "by_day", "WarmThroughput": {"ReadUnitsPerSecond": 20000, "WriteUnitsPerSecond": 6000}}}]}]
    desc = aws.dynamodb.describe_table(TableName="warm_od")["Table"]
    for warm in (desc["WarmThroughput"], desc["GlobalSecondaryIndexes"][0]["WarmThroughput"]):
        assert (warm["ReadUnitsPerSecond"], warm["WriteUnitsPerSecond"]) == (20000, 6000)
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"  # still on-demand, nothing provisioned
    assert "warm_od: warm throughput raised to 20000/6000 units/s: schedule launch needs" in text
    assert "warm_od: on-demand (PAY_PER_REQUEST), nothing to scale" in text  # the scaling still skips it
    assert rules_proxy.calls("UpdateTable", table="warm_od_plain") == []  # without pre-warm: left alone
    assert rules_proxy.calls("GetMetricData") == []  # no metric read for on-demand tables

    again = _run(cli, str(config), tmp_path)  # a new process, the same state file: not sent again
    assert again.returncode == 0, describe(again)
    assert len(_warm_requests(rules_proxy, "warm_od")) == 1
    status = cli(["--config", str(config), "--status-json", "--state-file", str(state_file)])
    assert status.returncode == 0, describe(status)
    rows = {(r["table"], r["index"]): r for r in json.loads(status.stdout)}
    assert rows[("warm_od", None)]["warm_throughput"]["read_units_per_second"] == 20000
    assert rows[("warm_od", "by_day")]["pre_warmed_until"] is not None
    assert rows[("warm_od_plain", None)]["pre_warmed_until"] is None
