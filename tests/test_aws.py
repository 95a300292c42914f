"""The boto3 adapters, with botocore's Stubber: AWS-exact shapes in, plain values out."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import Stubber

from dynamic_dynamodb import aws
from dynamic_dynamodb.model import (
    AccessDenied,
    AwsError,
    Capacity,
    LimitExceeded,
    MetricQuery,
    TableBusy,
    TableNotFound,
    Target,
    Update,
)

START = datetime(2026, 11, 28, 11, 45, tzinfo=timezone.utc)


def client(service: str):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")


def test_describe_table_becomes_a_plain_value_with_gsis_and_the_decrease_counters():
    ddb = client("dynamodb")
    with Stubber(ddb) as stub:
        stub.add_response("describe_table", {"Table": {
            "TableName": "orders", "TableStatus": "ACTIVE",
            "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 5, "NumberOfDecreasesToday": 3,
                                      "LastDecreaseDateTime": START},
            "GlobalSecondaryIndexes": [{"IndexName": "by-customer", "IndexStatus": "UPDATING",
                                        "ProvisionedThroughput": {"ReadCapacityUnits": 4, "WriteCapacityUnits": 2}}],
        }}, {"TableName": "orders"})
        desc = aws.DynamoTables(ddb).describe("orders")
    assert desc.table.capacity == Capacity(10, 5) and desc.table.decreases_today == 3
    assert desc.table.last_decrease == START
    assert desc.indexes[0].target == Target("orders", "by-customer") and not desc.indexes[0].active


@pytest.mark.parametrize("code,error", [
    ("ResourceInUseException", TableBusy),
    ("LimitExceededException", LimitExceeded),
    ("ResourceNotFoundException", TableNotFound),
    ("AccessDeniedException", AccessDenied),
    ("ValidationException", AwsError),
], ids=["a busy table", "the decrease limit", "a deleted table", "a missing permission", "anything else"])
def test_update_table_errors_become_domain_errors(code, error):
    ddb = client("dynamodb")
    with Stubber(ddb) as stub:
        stub.add_client_error("update_table", service_error_code=code, service_message="no", http_status_code=400)
        with pytest.raises(error) as raised:
            aws.DynamoTables(ddb).update(Update("orders", Capacity(2, 2)))
    assert raised.value.code == code and "\n" not in str(raised.value)


def test_one_update_table_carries_the_table_and_its_gsis():
    ddb = client("dynamodb")
    with Stubber(ddb) as stub:
        stub.add_response("update_table", {"TableDescription": {"TableName": "orders"}}, {
            "TableName": "orders",
            "ProvisionedThroughput": {"ReadCapacityUnits": 20, "WriteCapacityUnits": 5},
            "GlobalSecondaryIndexUpdates": [{"Update": {"IndexName": "by-customer", "ProvisionedThroughput": {
                "ReadCapacityUnits": 3, "WriteCapacityUnits": 1}}}],
        })
        aws.DynamoTables(ddb).update(Update("orders", Capacity(20, 5), {"by-customer": Capacity(3, 1)}))
        stub.assert_no_pending_responses()


def test_impossible_datapoints_are_dropped_not_believed(caplog):
    cw = client("cloudwatch")
    query = MetricQuery(Target("orders"), "ConsumedReadCapacityUnits", START, START + timedelta(minutes=5))
    with Stubber(cw) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": [{
            "Id": "q0", "Timestamps": [START, START + timedelta(minutes=1)], "Values": [-5.0, 120.0],
            "StatusCode": "Complete"}]})
        data = aws.CloudWatchMetrics(cw).fetch([query])
    assert data[query] == [(START + timedelta(minutes=1), 120.0)]
    assert "orders: ignoring ConsumedReadCapacityUnits datapoint -5.0" in caplog.text


def test_clients_retry_in_standard_mode_set_explicitly():
    conn = aws.Connection("us-east-1", "k", "s")
    ddb = aws.make_client(aws.make_session(conn), "dynamodb", conn)
    assert ddb.meta.config.retries["mode"] == "standard"


@pytest.mark.parametrize("service", ["dynamodb", "cloudwatch", "sns", "sts"])
def test_a_silent_endpoint_costs_well_under_a_minute_retries_included(service):
    # an endpoint that accepts and never answers used to hold a --run-once 2 minutes (4 x 30 s)
    conn = aws.Connection("us-east-1", "k", "s")
    cfg = aws.make_client(aws.make_session(conn), service, conn).meta.config
    attempts = cfg.retries["total_max_attempts"]
    assert attempts == 3 and cfg.connect_timeout <= 5
    assert attempts * max(cfg.read_timeout, cfg.connect_timeout) <= 45
