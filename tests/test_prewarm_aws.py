"""Warm throughput at the edges: DescribeTable's WarmThroughput read, UpdateTable's sent (botocore's
Stubber checks the call against the installed service model), and --status showing it."""
from __future__ import annotations

import io
import logging
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber

from dynamic_dynamodb import status
from dynamic_dynamodb.aws import DynamoTables, parse_description, parse_warm
from dynamic_dynamodb.model import AwsError, Capacity, Target, TargetStatus, Update, WarmThroughput
from dynamic_dynamodb.policy import Memory

NOW = datetime(2026, 11, 30, 15, 45, tzinfo=timezone.utc)


def client():
    return boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")


def described(warm=None, gsi_warm=None) -> dict:
    """A DescribeTable `Table` with a GSI; a warm value of None leaves the field out."""
    gsi = {"IndexName": "by_customer", "IndexStatus": "ACTIVE",
           "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}}
    if gsi_warm is not None:
        gsi["WarmThroughput"] = gsi_warm
    table = {"TableName": "orders", "TableStatus": "ACTIVE",
             "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 10},
             "GlobalSecondaryIndexes": [gsi]}
    if warm is not None:
        table["WarmThroughput"] = warm
    return table


def read(table: dict):
    desc = parse_description(table)
    return desc.table.warm, desc.indexes[0].warm


# ---- DescribeTable ---------------------------------------------------------------------------------


def test_the_warm_throughput_of_the_table_and_each_gsi_is_read_through_the_client():
    c = client()
    with Stubber(c) as stub:
        stub.add_response("describe_table", {"Table": described(
            {"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 4000, "Status": "ACTIVE"},
            {"ReadUnitsPerSecond": 300, "WriteUnitsPerSecond": 100, "Status": "UPDATING"})}, {"TableName": "orders"})
        desc = DynamoTables(c).describe("orders")
    assert desc.table.warm == WarmThroughput(12000, 4000, "ACTIVE")
    assert desc.indexes[0].warm == WarmThroughput(300, 100, "UPDATING")
    assert desc.table.capacity == Capacity(10, 10)  # the rest of the parse is as it was


@pytest.mark.parametrize("warm, gsi_warm, expected", [
    (None, None, (None, None)),  # an endpoint without warm throughput: unknown
    ({"ReadUnitsPerSecond": 8, "WriteUnitsPerSecond": 9}, None, (WarmThroughput(8, 9), None)),
    ({}, {}, (None, None)),
    # malformed: only that field is lost
    ({"ReadUnitsPerSecond": "lots", "WriteUnitsPerSecond": 9, "Status": "ACTIVE"}, None,
     (WarmThroughput(None, 9, "ACTIVE"), None)),
    ({"ReadUnitsPerSecond": -1, "WriteUnitsPerSecond": 2.5}, {"ReadUnitsPerSecond": True}, (None, None)),
    ({"ReadUnitsPerSecond": float("nan"), "WriteUnitsPerSecond": None, "Status": 7}, None, (None, None)),
    ("12000/4000", ["x"], (None, None)),
    (None, {"ReadUnitsPerSecond": 3, "WriteUnitsPerSecond": 4, "Status": ""}, (None, WarmThroughput(3, 4))),
])
def test_present_absent_and_malformed_warm_throughput(warm, gsi_warm, expected):
    assert read(described(warm, gsi_warm)) == expected


def test_a_malformed_warm_throughput_never_fails_the_describe(caplog):
    caplog.set_level(logging.DEBUG, logger="dynamic-dynamodb")

    class Answers:
        def describe_table(self, TableName):  # noqa: N803 - botocore's name
            return {"Table": described({"ReadUnitsPerSecond": {"a": 1}, "WriteUnitsPerSecond": 40}, 17)}

    desc = DynamoTables(Answers()).describe("orders")
    assert (desc.table.warm, desc.indexes[0].warm) == (WarmThroughput(None, 40), None)
    assert "orders: WarmThroughput ReadUnitsPerSecond is {'a': 1}, not a number; taken as unknown" in caplog.text
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_parse_warm_reads_a_structure_only():
    assert parse_warm(None, "t") is None
    assert parse_warm({"Status": "ACTIVE"}, "t") == WarmThroughput(None, None, "ACTIVE")


# ---- UpdateTable ----------------------------------------------------------------------------------


@pytest.mark.parametrize("update, expected", [
    (Update("orders", table_warm=WarmThroughput(1200, 240)),
     {"TableName": "orders", "WarmThroughput": {"ReadUnitsPerSecond": 1200, "WriteUnitsPerSecond": 240}}),
    (Update("orders", table_warm=WarmThroughput(None, 240)),
     {"TableName": "orders", "WarmThroughput": {"WriteUnitsPerSecond": 240}}),
    (Update("orders", index_warm={"by_customer": WarmThroughput(400, None)}),
     {"TableName": "orders", "GlobalSecondaryIndexUpdates": [
         {"Update": {"IndexName": "by_customer", "WarmThroughput": {"ReadUnitsPerSecond": 400}}}]}),
    (Update("orders", table_warm=WarmThroughput(1200, 240),
            index_warm={"by_zip": WarmThroughput(7, 8), "by_day": WarmThroughput(5, 6)}),
     {"TableName": "orders", "WarmThroughput": {"ReadUnitsPerSecond": 1200, "WriteUnitsPerSecond": 240},
      "GlobalSecondaryIndexUpdates": [
          {"Update": {"IndexName": "by_day", "WarmThroughput": {"ReadUnitsPerSecond": 5, "WriteUnitsPerSecond": 6}}},
          {"Update": {"IndexName": "by_zip", "WarmThroughput": {"ReadUnitsPerSecond": 7, "WriteUnitsPerSecond": 8}}}]}),
])
def test_a_pre_warm_is_update_table_with_warm_throughput_for_the_table_and_its_gsis(update, expected):
    c = client()
    with Stubber(c) as stub:
        stub.add_response("update_table", {"TableDescription": {"TableName": "orders"}}, expected)
        DynamoTables(c).update(update)
        stub.assert_no_pending_responses()


def test_a_capacity_update_sends_no_warm_throughput():
    c = client()
    with Stubber(c) as stub:
        stub.add_response("update_table", {"TableDescription": {}},
                          {"TableName": "orders", "ProvisionedThroughput": {"ReadCapacityUnits": 5,
                                                                             "WriteCapacityUnits": 5}})
        DynamoTables(c).update(Update("orders", Capacity(5, 5)))


@pytest.mark.parametrize("code", ["ValidationException", "AccessDeniedException", "UnknownOperationException"])
def test_a_refused_pre_warm_is_an_aws_error_with_its_code(code):
    c = client()
    with Stubber(c) as stub:
        stub.add_client_error("update_table", code, "no warm throughput here", 400)
        with pytest.raises(AwsError) as raised:
            DynamoTables(c).update(Update("orders", table_warm=WarmThroughput(1200, None)))
    assert raised.value.code == code and str(raised.value) == f"{code}: no warm throughput here"


# ---- --status -------------------------------------------------------------------------------------


def test_status_shows_the_warm_throughput_or_a_dash():
    warm = TargetStatus(Target("orders"), "ACTIVE", "PROVISIONED", Capacity(10, 10),
                        warm=WarmThroughput(12000, 4000, "ACTIVE"))
    cold = TargetStatus(Target("legacy"), "ACTIVE", "PROVISIONED", Capacity(10, 10))
    rows = [status.status_row(warm, "us-east-1", Memory(prewarm_until=NOW), NOW),
            status.status_row(cold, "us-east-1", Memory(), NOW)]
    assert rows[0]["warm_throughput"] == {"read_units_per_second": 12000, "write_units_per_second": 4000,
                                          "status": "ACTIVE"}
    assert rows[0]["pre_warmed_until"] == "2026-11-30T15:45:00Z"
    assert (rows[1]["warm_throughput"], rows[1]["pre_warmed_until"]) == (None, None)
    out = io.StringIO()
    status.print_table(rows, out)
    header, first, second = out.getvalue().splitlines()
    assert header.split()[:7] == ["TABLE", "INDEX", "REGION", "MODE", "READS", "WRITES", "WARM"]
    assert first.split()[6] == "12000/4000" and second.split()[6] == "-"
