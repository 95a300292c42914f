"""End to end: `pre-warm: true` with the real daemon (`--run-once`) against moto_server behind the
DynamoDB rules proxy. moto reports a provisioned table's warm throughput as its created capacity
and takes UpdateTable's WarmThroughput; an endpoint that reports none is played by the proxy."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from support import metrics as M
from support.cli import assert_no_traceback, describe

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
