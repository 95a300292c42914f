"""End to end: `python -m dynamic_dynamodb --run-once` against moto_server behind the rules
proxy, with answers botocore cannot read and DynamoDB's refusals other than the decrease rule.

One bad answer costs one call: the table it was about (or the series of one table), never
the pass. A LimitExceededException that is not the decrease rule fails the table's pass
and goes out once. Increases are held to DescribeLimits' maxima.
"""
from __future__ import annotations

import pytest
from support import metrics as M
from support.cli import assert_no_traceback, describe

pytestmark = pytest.mark.e2e

TOO_MANY_UPDATES = "Subscriber limit exceeded: Only 10 tables can be created, updated, or deleted simultaneously"
LIMITS = {"AccountMaxReadCapacityUnits": 80000, "AccountMaxWriteCapacityUnits": 80000,
          "TableMaxReadCapacityUnits": 40000, "TableMaxWriteCapacityUnits": 40000}


@pytest.fixture
def run_once(cli, tmp_path):
    def run(*tables: str, timeout: float = 60):
        sections = "".join(f"[table: {t}]\n" for t in tables)
        path = tmp_path / "dynamic-dynamodb.conf"
        path.write_text("[global]\nregion: us-east-1\ncheck-interval: 300\n\n[logging]\nlog-level: debug\n\n"
                        + sections, encoding="utf-8")
        result = cli(["--config", str(path), "--run-once", "--state-file", str(tmp_path / "state.json"),
                      "--pid-file-dir", str(tmp_path)], timeout=timeout)
        assert_no_traceback(result)
        return result
    return run


def seed(aws, table: str, reads_pct: float = 95, writes_pct: float = 50) -> None:
    """A 10/10 table whose reads want 15 units (95 %) and whose writes stay (50 %)."""
    M.create_table(aws.dynamodb, table, 10, 10)
    M.put_consumption(aws.cloudwatch, table,
                      read_per_second=M.consumed_percent_to_units_per_second(reads_pct, 10),
                      write_per_second=M.consumed_percent_to_units_per_second(writes_pct, 10))


def output(r) -> str:
    return r.stdout + r.stderr


# ---- the proxy's made-up answers ------------------------------------------------------------

def test_the_proxy_answers_with_bytes_json_or_a_cut_real_answer(rules_proxy, proxy_aws):
    import boto3
    from botocore.config import Config
    ddb = boto3.client("dynamodb", endpoint_url=rules_proxy.url, region_name="us-east-1",
                       config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    M.create_table(proxy_aws.dynamodb, "orders", 10, 10)
    rules_proxy.add_faults([{"operation": "DescribeTable", "body": '{"Table": {"TableName": "x\u00ff"}}'},
                            {"operation": "DescribeTable", "json": {"Table": {"TableName": "made-up"}}},
                            {"operation": "DescribeTable", "truncate": 20}])
    with pytest.raises(UnicodeDecodeError):  # botocore lets it escape: our adapter must not
        ddb.describe_table(TableName="orders")
    assert ddb.describe_table(TableName="orders")["Table"]["TableName"] == "made-up"
    assert ddb.describe_table(TableName="orders").get("Table") is None  # 20 bytes: not JSON, read as nothing
    assert ddb.describe_table(TableName="orders")["Table"]["TableName"] == "orders"
    assert [c["status"] for c in rules_proxy.calls("DescribeTable")] == [200, 200, 200, 200]


# ---- one bad answer costs one call ----------------------------------------------------------

@pytest.mark.parametrize("fault", [
    {"body": "\x00garbage{"},
    {"truncate": 60},
    {"body": '{"Table": {"TableName": "orders\u00ff"}}'},
    {"json": {"Table": {"TableName": "orders", "ProvisionedThroughput": {"ReadCapacityUnits": "ten"}}}},
    {"json": {"Table": {"TableName": "orders", "ProvisionedThroughput": {"ReadCapacityUnits": -10,
                                                                         "WriteCapacityUnits": 10}}}},
], ids=["garbage", "truncated", "bad encoding", "wrong type", "negative units"])
def test_an_unreadable_describe_table_costs_only_that_table(rules_proxy, proxy_aws, aws, run_once, fault):
    seed(proxy_aws, "orders")
    seed(proxy_aws, "invoices")
    rules_proxy.add_faults([{"operation": "DescribeTable", "table": "orders", "times": 10, **fault}])
    r = run_once("orders", "invoices")
    assert r.returncode == 1, describe(r)
    assert "orders: DescribeTable failed: unreadable answer (" in output(r)
    assert M.provisioned(aws.dynamodb, "orders") == (10, 10)
    assert M.provisioned(aws.dynamodb, "invoices") == (15, 10)


def test_a_garbage_metric_batch_is_read_again_in_halves_and_no_table_is_lost(rules_proxy, proxy_aws, aws,
                                                                             run_once):
    for table in ("alpha", "beta", "gamma"):
        seed(proxy_aws, table)
    rules_proxy.add_faults([{"operation": "GetMetricData", "body": "<html>502 Bad Gateway</html>"}])
    r = run_once("alpha", "beta", "gamma")
    assert r.returncode == 0, describe(r)
    assert [M.provisioned(aws.dynamodb, t) for t in ("alpha", "beta", "gamma")] == [(15, 10)] * 3
    assert len(rules_proxy.calls("GetMetricData")) == 3  # the batch, then its two halves


def test_a_table_whose_series_cannot_be_read_is_not_lowered_and_the_others_are_decided(rules_proxy, proxy_aws,
                                                                                     aws, run_once):
    seed(proxy_aws, "alpha", reads_pct=5, writes_pct=5)  # wants to decrease
    seed(proxy_aws, "beta")
    seed(proxy_aws, "gamma")
    rules_proxy.add_faults([{"operation": "GetMetricData", "table": "alpha", "times": 100,
                             "json": {"MetricDataResults": [{"Id": "q0", "Timestamps": ["soon"], "Values": [1]}]}}])
    r = run_once("alpha", "beta", "gamma")
    assert r.returncode == 1, describe(r)
    assert "alpha: GetMetricData failed, no decrease this pass: unreadable answer" in output(r)
    assert updates_of(rules_proxy, "alpha") == []
    assert M.provisioned(aws.dynamodb, "beta") == M.provisioned(aws.dynamodb, "gamma") == (15, 10)
    # 36 series (12 a table with the throttle causes), alpha's first: the halving narrows down to
    # alpha's series in fewer calls than one per series
    assert len(rules_proxy.calls("GetMetricData")) < 36


def updates_of(proxy, table: str) -> list[dict]:
    return proxy.calls("UpdateTable", table=table)


# ---- LimitExceededException of other kinds --------------------------------------------------

def test_a_limit_other_than_the_decrease_rule_fails_the_run_and_goes_out_once(rules_proxy, proxy_aws, aws,
                                                                            run_once):
    seed(proxy_aws, "orders")
    seed(proxy_aws, "invoices")
    rules_proxy.add_faults([{"operation": "UpdateTable", "table": "orders", "status": 400,
                             "code": "LimitExceededException", "message": TOO_MANY_UPDATES, "times": 10}])
    r = run_once("orders", "invoices")
    assert r.returncode == 1, describe(r)
    assert f"orders: UpdateTable refused, trying again next pass: LimitExceededException: {TOO_MANY_UPDATES}" \
        in output(r)
    assert len(updates_of(rules_proxy, "orders")) == 1  # not retried by botocore, nor with increases only
    assert M.provisioned(aws.dynamodb, "invoices") == (15, 10)


def test_the_decrease_rule_still_gets_its_one_increases_only_retry(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, "orders", reads_pct=95, writes_pct=5)  # reads up, writes down
    rules_proxy.set_decreases("orders", count=4)
    r = run_once("orders")
    assert r.returncode == 0, describe(r)
    calls = updates_of(rules_proxy, "orders")
    assert [c["status"] for c in calls] == [200] or [c["status"] for c in calls] == [400, 200]
    assert M.provisioned(aws.dynamodb, "orders") == (15, 10)


# ---- DescribeLimits -------------------------------------------------------------------------

def test_an_increase_is_held_to_the_table_maximum_with_a_warning(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, "orders")
    rules_proxy.add_faults([{"operation": "DescribeLimits", "json": {**LIMITS, "TableMaxReadCapacityUnits": 12}}])
    r = run_once("orders")
    assert r.returncode == 0, describe(r)
    assert "orders: reads increase to 15 held at 12: DynamoDB's table maximum is 12 read capacity units" in output(r)
    assert M.provisioned(aws.dynamodb, "orders") == (12, 10)
    assert len(rules_proxy.calls("DescribeLimits")) == 1


def test_without_describe_limits_the_increase_goes_out_unclamped_with_one_warning(rules_proxy, proxy_aws, aws,
                                                                                 run_once):
    seed(proxy_aws, "orders")
    seed(proxy_aws, "invoices")
    rules_proxy.add_faults([{"operation": "DescribeLimits", "status": 400, "code": "AccessDeniedException",
                             "message": "not authorized to perform: dynamodb:DescribeLimits", "times": 10}])
    r = run_once("orders", "invoices")
    assert r.returncode == 0, describe(r)
    assert output(r).count("DescribeLimits failed") == 1 and len(rules_proxy.calls("DescribeLimits")) == 1
    assert M.provisioned(aws.dynamodb, "orders") == M.provisioned(aws.dynamodb, "invoices") == (15, 10)
