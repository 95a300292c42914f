"""The rules proxy itself: every DynamoDB rule it adds to moto, allowed and refused, its
fault injection, control endpoints and forwarding; plus the other test helpers."""
from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import time
import urllib.error
import urllib.request

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from support import metrics as M
from support.cli import cli_env
from support.moto import make_client
from support.rules_proxy import aws_time_text

pytestmark = pytest.mark.e2e

UTC = dt.timezone.utc
NO_RETRY = Config(disable_request_compression=True, retries={"mode": "standard", "total_max_attempts": 1},
                  connect_timeout=5, read_timeout=30)


@pytest.fixture
def ddb(rules_proxy):
    """DynamoDB through the proxy, without retries, so refusals show at once."""
    return make_client("dynamodb", rules_proxy.url, NO_RETRY)


@pytest.fixture
def cw(rules_proxy):
    return make_client("cloudwatch", rules_proxy.url, NO_RETRY)


def pt(read, write):
    return {"ReadCapacityUnits": read, "WriteCapacityUnits": write}


def gsi_update(index, read, write):
    return [{"Update": {"IndexName": index, "ProvisionedThroughput": pt(read, write)}}]


def code_of(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def table_pt(ddb, table, index=None) -> dict:
    desc = ddb.describe_table(TableName=table)["Table"]
    if index is None:
        return desc["ProvisionedThroughput"]
    return next(g for g in desc["GlobalSecondaryIndexes"] if g["IndexName"] == index)["ProvisionedThroughput"]


def decrease_n(ddb, table, start, n, index=None):
    """n accepted one-unit read decreases from `start` units (writes stay at 10)."""
    for i in range(n):
        if index is None:
            ddb.update_table(TableName=table, ProvisionedThroughput=pt(start - 1 - i, 10))
        else:
            ddb.update_table(TableName=table, GlobalSecondaryIndexUpdates=gsi_update(index, start - 1 - i, 10))


# --------------------------------------------------------------------------- decrease quota
def test_four_decreases_then_refused_with_aws_message(rules_proxy, ddb):
    M.create_table(ddb, "orders", 20, 10)
    decrease_n(ddb, "orders", 20, 4)
    assert table_pt(ddb, "orders")["NumberOfDecreasesToday"] == 4
    last = table_pt(ddb, "orders")["LastDecreaseDateTime"]
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(15, 10))
    assert code_of(e) == "LimitExceededException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    msg = e.value.response["Error"]["Message"]
    assert msg.startswith("Subscriber limit exceeded: Provisioned throughput decreases are limited "
                          "within a given UTC day. After the first 4 decreases, each subsequent "
                          "decrease in the same UTC day can be performed at most once every 3600 "
                          "seconds. Number of decreases today: 4. Last decrease at ")
    assert f"Last decrease at {aws_time_text(last.timestamp())}." in msg
    nxt = min(last.timestamp() + 3600,
              dt.datetime.combine(last.date() + dt.timedelta(days=1), dt.time(), UTC).timestamp())
    assert msg.endswith(f"Next decrease can be made at {aws_time_text(nxt)}.")
    # the refusal changed nothing
    after = table_pt(ddb, "orders")
    assert (after["ReadCapacityUnits"], after["NumberOfDecreasesToday"]) == (16, 4)
    assert after["LastDecreaseDateTime"] == last
    assert [c["error"] for c in rules_proxy.calls("UpdateTable")] == [None] * 4 + ["LimitExceededException"]


def test_fifth_decrease_allowed_3600s_after_the_last_then_hourly(rules_proxy, ddb):
    rules_proxy.set_clock(dt.datetime(2026, 11, 28, 8, 0, tzinfo=UTC))
    M.create_table(ddb, "orders", 20, 10)
    decrease_n(ddb, "orders", 20, 4)
    rules_proxy.advance_clock(3590)
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(15, 10))
    assert code_of(e) == "LimitExceededException"
    rules_proxy.advance_clock(11)  # >= 3600 s after the last accepted decrease
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(15, 10))
    assert table_pt(ddb, "orders")["NumberOfDecreasesToday"] == 5
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(14, 10))
    assert "Number of decreases today: 5." in e.value.response["Error"]["Message"]
    rules_proxy.advance_clock(3600)
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(14, 10))
    assert table_pt(ddb, "orders")["NumberOfDecreasesToday"] == 6


def test_counter_resets_at_utc_midnight(rules_proxy, ddb):
    rules_proxy.set_clock(dt.datetime(2026, 11, 28, 23, 50, tzinfo=UTC))
    M.create_table(ddb, "orders", 20, 10)
    decrease_n(ddb, "orders", 20, 4)
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(15, 10))
    assert e.value.response["Error"]["Message"].endswith(
        "Next decrease can be made at Sunday, November 29, 2026 at 12:00:00 AM Coordinated Universal Time.")
    rules_proxy.set_clock(dt.datetime(2026, 11, 29, 0, 0, 5, tzinfo=UTC))
    assert table_pt(ddb, "orders")["NumberOfDecreasesToday"] == 0
    decrease_n(ddb, "orders", 16, 4)  # a whole new budget of 4
    assert table_pt(ddb, "orders")["NumberOfDecreasesToday"] == 4
    with pytest.raises(ClientError):
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(11, 10))


def test_increases_are_never_limited_and_set_last_increase(rules_proxy, ddb):
    M.create_table(ddb, "orders", 20, 10)
    decrease_n(ddb, "orders", 20, 4)
    before = table_pt(ddb, "orders")
    assert "LastIncreaseDateTime" not in before
    for r in (30, 40, 50):
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(r, 10))
    after = table_pt(ddb, "orders")
    assert (after["ReadCapacityUnits"], after["NumberOfDecreasesToday"]) == (50, 4)
    assert after["LastIncreaseDateTime"] >= before["LastDecreaseDateTime"]
    assert after["LastDecreaseDateTime"] == before["LastDecreaseDateTime"]


def test_reads_and_writes_down_in_one_call_count_once(ddb):
    M.create_table(ddb, "orders", 20, 20)
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(10, 10))
    assert table_pt(ddb, "orders")["NumberOfDecreasesToday"] == 1


def test_mixed_read_down_write_up_is_a_decrease(rules_proxy, ddb):
    M.create_table(ddb, "orders", 20, 10)
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(19, 11))
    p = table_pt(ddb, "orders")
    assert p["NumberOfDecreasesToday"] == 1 and "LastIncreaseDateTime" in p
    rules_proxy.set_decreases("orders", count=4)
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(18, 12))
    assert code_of(e) == "LimitExceededException"
    assert table_pt(ddb, "orders")["ReadCapacityUnits"] == 19


def test_table_and_each_gsi_have_separate_budgets(rules_proxy, ddb):
    M.create_table(ddb, "orders", 20, 10, gsis={"by_a": (20, 10), "by_b": (20, 10)})
    decrease_n(ddb, "orders", 20, 4)
    decrease_n(ddb, "orders", 20, 4, index="by_a")
    assert table_pt(ddb, "orders", "by_a")["NumberOfDecreasesToday"] == 4
    assert table_pt(ddb, "orders", "by_b")["NumberOfDecreasesToday"] == 0
    ddb.update_table(TableName="orders", GlobalSecondaryIndexUpdates=gsi_update("by_b", 10, 10))
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", GlobalSecondaryIndexUpdates=gsi_update("by_a", 10, 10))
    assert code_of(e) == "LimitExceededException"
    # increases of an exhausted GSI go through
    ddb.update_table(TableName="orders", GlobalSecondaryIndexUpdates=gsi_update("by_a", 40, 10))
    assert table_pt(ddb, "orders", "by_a")["ReadCapacityUnits"] == 40
    assert "LastIncreaseDateTime" in table_pt(ddb, "orders", "by_a")


def test_other_tables_are_not_affected(ddb):
    M.create_table(ddb, "orders", 20, 10)
    M.create_table(ddb, "invoices", 20, 10)
    decrease_n(ddb, "orders", 20, 4)
    decrease_n(ddb, "invoices", 20, 4)
    assert table_pt(ddb, "invoices")["NumberOfDecreasesToday"] == 4


def test_combined_table_and_gsi_decrease_refused_whole(rules_proxy, ddb):
    M.create_table(ddb, "orders", 20, 10, gsis={"by_a": (20, 10)})
    rules_proxy.set_decreases("orders", "by_a", count=4)  # only the GSI is exhausted
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(10, 10),
                         GlobalSecondaryIndexUpdates=gsi_update("by_a", 10, 10))
    assert code_of(e) == "LimitExceededException"
    assert table_pt(ddb, "orders")["ReadCapacityUnits"] == 20  # nothing applied
    assert table_pt(ddb, "orders")["NumberOfDecreasesToday"] == 0
    assert table_pt(ddb, "orders", "by_a")["ReadCapacityUnits"] == 20
    # the table alone may decrease; a table decrease + GSI increase is fine as well
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(10, 10),
                     GlobalSecondaryIndexUpdates=gsi_update("by_a", 30, 10))
    assert table_pt(ddb, "orders")["NumberOfDecreasesToday"] == 1
    assert table_pt(ddb, "orders", "by_a")["ReadCapacityUnits"] == 30


def test_combined_decrease_counts_once_for_each(ddb):
    M.create_table(ddb, "orders", 20, 10, gsis={"by_a": (20, 10)})
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(10, 5),
                     GlobalSecondaryIndexUpdates=gsi_update("by_a", 10, 5))
    assert table_pt(ddb, "orders")["NumberOfDecreasesToday"] == 1
    assert table_pt(ddb, "orders", "by_a")["NumberOfDecreasesToday"] == 1


def test_preset_decreases(rules_proxy, ddb):
    M.create_table(ddb, "orders", 20, 10)
    rules_proxy.set_clock(dt.datetime(2026, 11, 28, 12, 0, tzinfo=UTC))  # an hour before stays on the same UTC day
    now = rules_proxy.now_datetime()
    rules_proxy.set_decreases("orders", count=4, last=now - dt.timedelta(minutes=10))
    p = table_pt(ddb, "orders")
    assert p["NumberOfDecreasesToday"] == 4
    assert abs(p["LastDecreaseDateTime"].timestamp() - (now.timestamp() - 600)) < 1
    with pytest.raises(ClientError):
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(19, 10))
    rules_proxy.set_decreases("orders", count=7, last=now - dt.timedelta(seconds=3601))
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(19, 10))
    assert table_pt(ddb, "orders")["NumberOfDecreasesToday"] == 8


def test_preset_on_an_earlier_day_leaves_today_free(rules_proxy, ddb):
    rules_proxy.set_clock(dt.datetime(2026, 11, 28, 0, 30, tzinfo=UTC))
    M.create_table(ddb, "orders", 20, 10)
    rules_proxy.set_decreases("orders", count=27, last=dt.datetime(2026, 11, 27, 23, 59, tzinfo=UTC))
    p = table_pt(ddb, "orders")
    assert p["NumberOfDecreasesToday"] == 0
    assert p["LastDecreaseDateTime"] == dt.datetime(2026, 11, 27, 23, 59, tzinfo=UTC)
    decrease_n(ddb, "orders", 20, 4)


def test_describe_fields_follow_the_proxy_clock(rules_proxy, ddb):
    M.create_table(ddb, "orders", 20, 10, gsis={"by_a": (5, 5)})
    fresh = table_pt(ddb, "orders")
    assert fresh["NumberOfDecreasesToday"] == 0
    assert "LastDecreaseDateTime" not in fresh and "LastIncreaseDateTime" not in fresh
    assert table_pt(ddb, "orders", "by_a")["NumberOfDecreasesToday"] == 0  # moto omits it
    when = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    rules_proxy.set_clock(when)
    ddb.update_table(TableName="orders", GlobalSecondaryIndexUpdates=gsi_update("by_a", 4, 6))
    g = table_pt(ddb, "orders", "by_a")
    assert abs(g["LastDecreaseDateTime"].timestamp() - when.timestamp()) < 5
    assert abs(g["LastIncreaseDateTime"].timestamp() - when.timestamp()) < 5
    assert g["NumberOfDecreasesToday"] == 1
    assert table_pt(ddb, "orders")["NumberOfDecreasesToday"] == 0  # NumberOfDecreasesToday kept by moto too
    raw = rules_proxy.counters("orders", "by_a")
    assert raw["NumberOfDecreasesToday"] == 1 and raw["NextDecreaseAt"] is None


def test_update_response_shows_old_counter_and_new_time(rules_proxy, ddb):
    M.create_table(ddb, "orders", 20, 10)
    first = ddb.update_table(TableName="orders", ProvisionedThroughput=pt(19, 10))["TableDescription"]
    assert first["ProvisionedThroughput"]["NumberOfDecreasesToday"] == 0
    assert "LastDecreaseDateTime" in first["ProvisionedThroughput"]
    second = ddb.update_table(TableName="orders", ProvisionedThroughput=pt(18, 10))["TableDescription"]
    assert second["ProvisionedThroughput"]["NumberOfDecreasesToday"] == 1


# --------------------------------------------------------------------------- UPDATING
def test_updating_window_table(rules_proxy, ddb):
    rules_proxy.set_updating_seconds(30)
    M.create_table(ddb, "orders", 20, 10, gsis={"by_a": (5, 5)})
    resp = ddb.update_table(TableName="orders", ProvisionedThroughput=pt(30, 10))["TableDescription"]
    assert resp["TableStatus"] == "UPDATING"
    assert resp["ProvisionedThroughput"]["ReadCapacityUnits"] == 20  # AWS echoes the old units
    desc = ddb.describe_table(TableName="orders")["Table"]
    assert desc["TableStatus"] == "UPDATING"
    assert desc["GlobalSecondaryIndexes"][0]["IndexStatus"] == "ACTIVE"
    assert rules_proxy.is_updating("orders")
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(40, 10))
    assert code_of(e) == "ResourceInUseException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert e.value.response["Error"]["Message"].startswith(
        "Attempt to change a resource which is still in use")
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", GlobalSecondaryIndexUpdates=gsi_update("by_a", 6, 6))
    assert code_of(e) == "ResourceInUseException"
    rules_proxy.advance_clock(30)
    assert ddb.describe_table(TableName="orders")["Table"]["TableStatus"] == "ACTIVE"
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(40, 10))
    assert table_pt(ddb, "orders")["ReadCapacityUnits"] == 40


def test_updating_window_gsi_only(rules_proxy, ddb):
    rules_proxy.set_updating_seconds(10)
    M.create_table(ddb, "orders", 20, 10, gsis={"by_a": (5, 5), "by_b": (5, 5)})
    ddb.update_table(TableName="orders", GlobalSecondaryIndexUpdates=gsi_update("by_a", 6, 6))
    desc = ddb.describe_table(TableName="orders")["Table"]
    status = {g["IndexName"]: g["IndexStatus"] for g in desc["GlobalSecondaryIndexes"]}
    assert status == {"by_a": "UPDATING", "by_b": "ACTIVE"}
    assert desc["TableStatus"] == "ACTIVE"  # as measured on AWS for a GSI throughput update
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(30, 10))
    assert code_of(e) == "ResourceInUseException"
    rules_proxy.advance_clock(10)
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(30, 10))


def test_updating_off_by_default(rules_proxy, ddb):
    M.create_table(ddb, "orders", 20, 10)
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(30, 10))
    assert ddb.describe_table(TableName="orders")["Table"]["TableStatus"] == "ACTIVE"
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(40, 10))


def test_set_updating_directly(rules_proxy, ddb):
    M.create_table(ddb, "orders", 20, 10)
    rules_proxy.set_updating("orders", seconds=60)
    assert ddb.describe_table(TableName="orders")["Table"]["TableStatus"] == "UPDATING"
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(30, 10))
    assert code_of(e) == "ResourceInUseException"


# --------------------------------------------------------------------------- validation
def test_no_change_is_a_validation_error(ddb):
    M.create_table(ddb, "orders", 20, 10, gsis={"by_a": (5, 5)})
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(20, 10))
    assert code_of(e) == "ValidationException"
    assert e.value.response["Error"]["Message"] == (
        "The provisioned throughput for the table will not change. The requested value equals the "
        "current value. Current ReadCapacityUnits provisioned for the table: 20. Requested "
        "ReadCapacityUnits: 20. Current WriteCapacityUnits provisioned for the table: 10. Requested "
        "WriteCapacityUnits: 10. Refer to the Amazon DynamoDB Developer Guide for current limits and "
        "how to request higher limits.")
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", GlobalSecondaryIndexUpdates=gsi_update("by_a", 5, 5))
    assert code_of(e) == "ValidationException"
    assert e.value.response["Error"]["Message"].startswith(
        "The provisioned throughput for the index by_a will not change.")
    # an unchanged part in a call that changes something else is refused too
    with pytest.raises(ClientError):
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(30, 10),
                         GlobalSecondaryIndexUpdates=gsi_update("by_a", 5, 5))
    assert table_pt(ddb, "orders")["ReadCapacityUnits"] == 20
    assert table_pt(ddb, "orders")["NumberOfDecreasesToday"] == 0
    # changing one dimension only is fine
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(20, 11))
    assert table_pt(ddb, "orders")["WriteCapacityUnits"] == 11


def test_throughput_on_on_demand_table_refused(ddb):
    M.create_table(ddb, "ondemand", on_demand=True)
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="ondemand", ProvisionedThroughput=pt(5, 5))
    assert code_of(e) == "ValidationException"
    # switching to provisioned with throughput works
    ddb.update_table(TableName="ondemand", BillingMode="PROVISIONED", ProvisionedThroughput=pt(5, 5))
    assert table_pt(ddb, "ondemand")["ReadCapacityUnits"] == 5


def test_unknown_gsi_and_missing_table(ddb):
    M.create_table(ddb, "orders", 20, 10)
    with pytest.raises(ClientError) as e:  # moto alone answers HTTP 500 here
        ddb.update_table(TableName="orders", GlobalSecondaryIndexUpdates=gsi_update("nope", 5, 5))
    assert code_of(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="missing", ProvisionedThroughput=pt(5, 5))
    assert code_of(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        ddb.describe_table(TableName="missing")
    assert code_of(e) == "ResourceNotFoundException"


def test_deleted_and_recreated_table_starts_fresh(rules_proxy, ddb):
    M.create_table(ddb, "orders", 20, 10)
    decrease_n(ddb, "orders", 20, 4)
    ddb.delete_table(TableName="orders")
    M.create_table(ddb, "orders", 20, 10)
    assert table_pt(ddb, "orders")["NumberOfDecreasesToday"] == 0
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(19, 10))


# --------------------------------------------------------------------------- faults
def test_fault_consumed_once_then_retry_succeeds(rules_proxy):
    client = make_client("dynamodb", rules_proxy.url)  # the default test config retries
    M.create_table(client, "orders", 20, 10)
    rules_proxy.add_faults([{"operation": "DescribeTable", "status": 500, "code": "InternalServerError"}])
    resp = client.describe_table(TableName="orders")
    assert resp["ResponseMetadata"]["RetryAttempts"] == 1
    calls = rules_proxy.calls("DescribeTable")
    assert [c["status"] for c in calls] == [500, 200]
    assert calls[0]["fault"]["code"] == "InternalServerError"
    assert rules_proxy.pending_faults() == []


@pytest.mark.parametrize("status,code", [(400, "ThrottlingException"), (500, "InternalServerError"),
                                         (400, "AccessDeniedException"),
                                         (400, "ProvisionedThroughputExceededException")])
def test_error_faults(rules_proxy, ddb, status, code):
    M.create_table(ddb, "orders", 20, 10)
    rules_proxy.add_faults([{"operation": "UpdateTable", "status": status, "code": code,
                             "message": "injected"}])
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(30, 10))
    assert code_of(e) == code
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert e.value.response["Error"]["Message"] == "injected"
    assert table_pt(ddb, "orders")["ReadCapacityUnits"] == 20  # not forwarded
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(30, 10))  # consumed


def test_fault_matches_table_and_operation(rules_proxy, ddb):
    M.create_table(ddb, "orders", 20, 10)
    M.create_table(ddb, "invoices", 20, 10)
    rules_proxy.add_faults([{"operation": "DescribeTable", "table": "invoices", "status": 400,
                             "code": "AccessDeniedException", "times": 2}])
    ddb.describe_table(TableName="orders")
    ddb.list_tables()
    for _ in range(2):
        with pytest.raises(ClientError):
            ddb.describe_table(TableName="invoices")
    ddb.describe_table(TableName="invoices")


def test_cloudwatch_throttling_fault(rules_proxy, cw):
    rules_proxy.add_faults([{"operation": "GetMetricData", "table": "orders", "fault": "400:Throttling"}])
    now = dt.datetime.now(UTC)
    query = dict(MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {
        "Namespace": M.NAMESPACE, "MetricName": M.CONSUMED_READ, "Dimensions": M.dimensions("orders")},
        "Period": 300, "Stat": "Sum"}}], StartTime=now - dt.timedelta(minutes=15), EndTime=now)
    with pytest.raises(ClientError) as e:
        cw.get_metric_data(**query)
    assert code_of(e) == "Throttling"
    assert cw.get_metric_data(**query)["MetricDataResults"][0]["Values"] == []
    assert rules_proxy.calls("GetMetricData")[0]["service"] == "cloudwatch"


def test_slow_fault_times_out(rules_proxy):
    client = make_client("dynamodb", rules_proxy.url, Config(
        retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=0.3, connect_timeout=1))
    rules_proxy.add_faults([{"operation": "ListTables", "fault": "slow:1"}])
    with pytest.raises(ReadTimeoutError):
        client.list_tables()
    # a slow answer is still the real answer
    rules_proxy.add_faults([{"operation": "ListTables", "slow": 0.2}])
    t0 = time.monotonic()
    assert make_client("dynamodb", rules_proxy.url, NO_RETRY).list_tables()["TableNames"] == []
    assert time.monotonic() - t0 >= 0.2
    assert rules_proxy.pending_faults() == []


@pytest.mark.parametrize("kind", ["reset", "drop"])
def test_connection_faults(rules_proxy, ddb, kind):
    rules_proxy.add_faults([{"operation": "ListTables", "fault": kind}])
    with pytest.raises(ConnectionClosedError):
        ddb.list_tables()
    assert ddb.list_tables()["TableNames"] == []
    expected = {"reset": "reset", "drop": "dropped"}[kind]
    assert [c["status"] for c in rules_proxy.calls("ListTables")] == [expected, 200]


def test_hook_before_forward_deletes_table(rules_proxy, ddb, aws):
    M.create_table(ddb, "orders", 20, 10)
    rules_proxy.add_hook("DescribeTable", lambda info: aws.dynamodb.delete_table(TableName=info.table),
                         table="orders")
    with pytest.raises(ClientError) as e:
        ddb.describe_table(TableName="orders")
    assert code_of(e) == "ResourceNotFoundException"


# --------------------------------------------------------------------------- control endpoints
def _control(proxy, path, data=None, method=None):
    req = urllib.request.Request(proxy.url + path, method=method or ("POST" if data is not None else "GET"),
                                 data=None if data is None else json.dumps(data).encode())
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_http_control_endpoints(rules_proxy, ddb):
    M.create_table(ddb, "orders", 20, 10)
    assert _control(rules_proxy, "/__updating__", {"seconds": 5}) == {"seconds": 5.0}
    clock = _control(rules_proxy, "/__clock__", {"offset": -86400})
    assert clock["offset"] == -86400 and abs(clock["now"] - (time.time() - 86400)) < 5
    assert _control(rules_proxy, "/__clock__", {"advance": 60})["offset"] == -86340
    counters = _control(rules_proxy, "/__decreases__", {"table": "orders", "count": 4})
    assert counters["NumberOfDecreasesToday"] == 4
    assert _control(rules_proxy, "/__faults__", [{"operation": "ListTables", "fault": "500:InternalServerError"}]) \
        == {"pending": 1}
    with pytest.raises(ClientError):
        ddb.list_tables()
    log = _control(rules_proxy, "/__log__")
    assert [(r["operation"], r["status"]) for r in log][-1] == ("ListTables", 500)
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="orders", ProvisionedThroughput=pt(19, 10))
    assert code_of(e) == "LimitExceededException"
    assert _control(rules_proxy, "/__reset__", {}) == {"reset": True}
    assert rules_proxy.calls() == [] and rules_proxy.clock_offset == 0
    ddb.update_table(TableName="orders", ProvisionedThroughput=pt(19, 10))
    assert ddb.describe_table(TableName="orders")["Table"]["TableStatus"] == "ACTIVE"


# --------------------------------------------------------------------------- forwarding
def test_forwards_other_services(rules_proxy, proxy_aws, moto):
    sns, sqs = proxy_aws.sns, proxy_aws.sqs
    topic = sns.create_topic(Name="scaling")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
    sns.publish(TopicArn=topic, Subject="scaled", Message="orders: reads 5 -> 10")
    msgs = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)["Messages"]
    assert [m["Body"] for m in msgs] == ["orders: reads 5 -> 10"]
    assert moto.sns_notifications() == [{"topic_arn": topic, "message": "orders: reads 5 -> 10",
                                         "subject": "scaled"}]
    ops = {(c["service"], c["operation"]) for c in rules_proxy.calls()}
    assert ("sns", "Publish") in ops and ("sqs", "ReceiveMessage") in ops


def test_metric_statistics_match_dimensions_exactly(rules_proxy, aws, cw):
    M.create_table(aws.dynamodb, "orders", 10, 10, gsis={"by_a": (10, 10)})
    M.put_consumption(aws.cloudwatch, "orders", read_per_second=2)
    M.put_consumption(aws.cloudwatch, "orders", "by_a", read_per_second=100)
    now = dt.datetime.now(UTC)
    kw = dict(Namespace=M.NAMESPACE, MetricName=M.CONSUMED_READ, StartTime=now - dt.timedelta(minutes=15),
              EndTime=now - dt.timedelta(minutes=10), Period=300, Statistics=["Sum", "SampleCount"])
    table = cw.get_metric_statistics(Dimensions=M.dimensions("orders"), **kw)["Datapoints"]
    assert [(p["Sum"], p["SampleCount"], p["Unit"]) for p in table] == [(600.0, 5.0, "Count")]
    gsi = cw.get_metric_statistics(Dimensions=M.dimensions("orders", "by_a"), **kw)["Datapoints"]
    assert [p["Sum"] for p in gsi] == [30000.0]
    # moto alone mixes the GSI series into the table's (the bug the proxy hides)
    raw = aws.cloudwatch.get_metric_statistics(Dimensions=M.dimensions("orders"), **kw)["Datapoints"]
    assert [p["Sum"] for p in raw] == [30600.0]
    # and the window sums read by GetMetricData agree
    assert [v for _, v in M.get_sum(cw, M.CONSUMED_READ, "orders", start=kw["StartTime"],
                                    end=kw["EndTime"])] == [600.0]


def test_no_data_gives_no_datapoints(rules_proxy, cw):
    now = dt.datetime.now(UTC)
    resp = cw.get_metric_statistics(Namespace=M.NAMESPACE, MetricName=M.CONSUMED_WRITE,
                                    Dimensions=M.dimensions("ghost"), StartTime=now - dt.timedelta(minutes=15),
                                    EndTime=now - dt.timedelta(minutes=10), Period=300, Statistics=["Sum"])
    assert resp["Datapoints"] == []


# --------------------------------------------------------------------------- other helpers
def test_put_consumption_minutes_and_throttles(aws):
    end = dt.datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)
    M.put_consumption(aws.cloudwatch, "orders", write_per_second=3, read_throttles_per_minute=2,
                      minutes=10, end=end)
    start = M.minute_floor(end) - dt.timedelta(minutes=10)
    sums = M.get_sum(aws.cloudwatch, M.CONSUMED_WRITE, "orders", start=start, end=end, period=60)
    assert [ts.astimezone(UTC) for ts, _ in sums] == [dt.datetime(2026, 11, 28, 11, 50 + k, tzinfo=UTC)
                                                     for k in range(10)]
    assert {v for _, v in sums} == {180.0}
    thr = M.get_sum(aws.cloudwatch, M.READ_THROTTLES, "orders", start=start, end=end, period=600)
    assert [v for _, v in thr] == [20.0]
    assert M.get_sum(aws.cloudwatch, M.CONSUMED_READ, "orders", start=end - dt.timedelta(minutes=10), end=end) == []
    assert M.consumed_percent_to_units_per_second(80, 10) == 8.0


def test_breaker_fixture(breaker):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(breaker.url, headers={"x-table-name": "orders"})
    with opener.open(req, timeout=5) as resp:
        assert resp.status == 200
    breaker.status = 503
    req = urllib.request.Request(breaker.url, headers={
        "Authorization": "Basic " + base64.b64encode(b"user:p@ss:word").decode()})
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(req, timeout=5)
    assert e.value.code == 503
    assert breaker.table_names() == ["orders", None]
    assert breaker.requests[1].auth == ("user", "p@ss:word")
    assert breaker.url_with_auth("user", "p@ss:word") == \
        f"http://user:p%40ss%3Aword@127.0.0.1:{breaker.port}/breaker"


def test_fake_aws_environment(rules_proxy):
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert "AWS_PROFILE" not in os.environ
    env = cli_env(rules_proxy.url, {"EXTRA": "1"})
    assert env["AWS_ENDPOINT_URL"] == rules_proxy.url and env["EXTRA"] == "1"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1" and "AWS_PROFILE" not in env
    assert re.match(r"http://127\.0\.0\.1:9$", env["HTTPS_PROXY"])
