"""Answers the adapters cannot read, and DynamoDB's other refusals, at the adapter edge.

Raw answers go through botocore's real parsers: a `before-send` hook answers the request
with the bytes given (TESTING.md, 5), so garbage, truncated and badly encoded bodies reach
the adapters exactly as from the network. Shapes the Stubber can express use the Stubber.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamic_dynamodb import aws
from dynamic_dynamodb.model import (
    AwsError,
    Capacity,
    CapacityLimits,
    LimitExceeded,
    MetricQuery,
    MetricsUnavailable,
    Target,
    UnreadableAnswer,
    Update,
)

START = datetime(2026, 11, 28, 11, 45, tzinfo=timezone.utc)
JSON = {"Content-Type": "application/x-amz-json-1.0"}
DECREASE_RULE = ("Subscriber limit exceeded: Provisioned throughput decreases are limited within a given UTC day. "
                 "After the first 4 decreases, each subsequent decrease in the same UTC day can be performed at "
                 "most once every 3600 seconds. Number of decreases today: 4.")
TOO_MANY_UPDATES = "Subscriber limit exceeded: Only 10 tables can be created, updated, or deleted simultaneously"
ABOVE_TABLE_MAXIMUM = ("Subscriber limit exceeded: The requested throughput value exceeds the maximum of "
                       "40000 read capacity units for a table")


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_):
        yield self.body


def client(service: str, max_attempts: int = 3):
    conn = aws.Connection("us-east-1", "k", "s", max_attempts=max_attempts)
    return aws.make_client(aws.make_session(conn), service, conn)


def answer_with(c, operation: str, *answers: tuple[int, bytes]) -> list[dict]:
    """Answer `operation` with the given (status, body) in turn (the last one again and again);
    returns the requests seen (one per attempt)."""
    seen: list[dict] = []

    def send(request, **_):
        seen.append(json.loads(request.body or b"{}") if request.body and request.body[:1] == b"{" else {})
        status, body = answers[min(len(seen), len(answers)) - 1]
        return AWSResponse(request.url, status, JSON, _Raw(body))

    c.meta.events.register(f"before-send.{c.meta.service_model.service_id.hyphenize()}.{operation}", send)
    return seen


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()


def table_body(**throughput) -> bytes:
    pt = {"ReadCapacityUnits": 10, "WriteCapacityUnits": 5, **throughput}
    return json.dumps({"Table": {"TableName": "orders", "TableStatus": "ACTIVE", "ProvisionedThroughput": pt}}).encode()


# ---- 1. every malformed answer is an AwsError of that call ------------------------------

@pytest.mark.parametrize("body", [
    b"\x00garbage{",
    b'{"Table": {"TableName": "orders", "ProvisionedThroughput": {"ReadCapa',
    b'{"Table": {"TableName": "orders\xff\xfe"}}',
    b'{"Table": {"TableStatus": "ACTIVE"}}',
    b'{"Table": [1, 2]}',
    b'{}',
    table_body(ReadCapacityUnits="abc"),
    b'{"Table": {"TableName": "orders", "ProvisionedThroughput": {"ReadCapacityUnits": NaN}}}',
    table_body(WriteCapacityUnits=-5),
    table_body(WriteCapacityUnits=2.5),
    table_body(NumberOfDecreasesToday=True),
    table_body(LastDecreaseDateTime="yesterday"),
    table_body(LastDecreaseDateTime=[1]),
    table_body(LastDecreaseDateTime=1e300),
    json.dumps({"Table": {"TableName": "orders", "GlobalSecondaryIndexes": ["by-customer"]}}).encode(),
    json.dumps({"Table": {"TableName": "orders", "GlobalSecondaryIndexes": [{"IndexName": 7}]}}).encode(),
    json.dumps({"Table": {"TableName": "invoices"}}).encode(),
], ids=["garbage", "truncated", "bad encoding", "no name", "a list", "empty", "units as text",
        "NaN units", "negative units", "fractional units", "a boolean count", "a date in words", "a date as a list",
        "a date out of range", "a GSI that is a string", "a GSI name that is a number",
        "another table"])
def test_a_describe_table_answer_that_cannot_be_read_is_an_error_of_that_call(body):
    ddb = client("dynamodb")
    answer_with(ddb, "DescribeTable", (200, body))
    with pytest.raises(UnreadableAnswer) as raised:
        aws.DynamoTables(ddb).describe("orders")
    message = str(raised.value)
    assert message.startswith("unreadable answer (") and "\n" not in message and len(message) < 400


def test_a_well_formed_describe_table_answer_still_reads():
    ddb = client("dynamodb")
    answer_with(ddb, "DescribeTable", (200, table_body(NumberOfDecreasesToday=2, LastDecreaseDateTime=1764330300)))
    desc = aws.DynamoTables(ddb).describe("orders")
    assert desc.table.capacity == Capacity(10, 5) and desc.table.decreases_today == 2
    assert desc.table.last_decrease == datetime(2025, 11, 28, 11, 45, tzinfo=timezone.utc)


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"TableNames": ["a", 5]}', b'{"TableNames": null}',
                                  b'{"TableNam'],
                         ids=["garbage", "a name that is a number", "no names", "truncated"])
def test_a_list_tables_answer_that_cannot_be_read_is_an_error_not_an_empty_account(body):
    ddb = client("dynamodb")
    answer_with(ddb, "ListTables", (200, body))
    with pytest.raises(UnreadableAnswer):
        aws.DynamoTables(ddb).list_tables()


@pytest.mark.parametrize("body", [b"garbage", b'{"TableDescription": "x"}', b'{"TableDescription": {"Tab'],
                         ids=["garbage", "a description that is text", "truncated"])
def test_an_update_table_answer_that_cannot_be_read_is_an_error_of_that_call(body):
    ddb = client("dynamodb")
    answer_with(ddb, "UpdateTable", (200, body))
    with pytest.raises(UnreadableAnswer):
        aws.DynamoTables(ddb).update(Update("orders", Capacity(2, 2)))


@pytest.mark.parametrize("body", [b"<PublishResponse><oops", b"\xff\xfe<a>"], ids=["truncated XML", "bad encoding"])
def test_an_sns_answer_that_cannot_be_read_is_an_error_and_never_echoes_the_body(body):
    sns = client("sns")
    headers = {"Content-Type": "text/xml"}
    sns.meta.events.register("before-send.sns.Publish",
                             lambda request, **_: AWSResponse(request.url, 200, headers, _Raw(body)))
    with pytest.raises(UnreadableAnswer) as raised:
        aws.SnsNotifier(sns).publish("arn:aws:sns:us-east-1:123456789012:ops", "s", "m")
    assert "PublishResponse" not in str(raised.value) and "\n" not in str(raised.value)


def query(table: str, metric: str = "ConsumedReadCapacityUnits") -> MetricQuery:
    return MetricQuery(Target(table), metric, START, START + timedelta(minutes=5))


@pytest.mark.parametrize("results", [
    "garbage",
    [{"Id": "q0", "Timestamps": ["soon"], "Values": [1.0]}],
    [{"Id": "q0", "Timestamps": [{}], "Values": [1.0]}],
    [{"Id": "q0", "Timestamps": [1764330300], "Values": ["1.0"]}],
    [{"Id": "q0", "Timestamps": [1764330300], "Values": [None]}],
    [{"Id": "q0", "Timestamps": [1764330300, 1764330360], "Values": [1.0]}],
    [{"Id": "q0", "Timestamps": 1764330300, "Values": 1.0}],
], ids=["garbage", "a time in words", "a time that is an object", "a value as text", "a null value",
        "more times than values", "not lists"])
def test_a_get_metric_data_answer_that_cannot_be_read_is_an_error(results):
    cw = client("cloudwatch")
    body = b"\x00\x01" if results == "garbage" else json.dumps({"MetricDataResults": results}).encode()
    answer_with(cw, "GetMetricData", (200, body))
    with pytest.raises(AwsError) as raised:
        aws.CloudWatchMetrics(cw, concurrency=1).fetch([query("orders")])
    assert isinstance(raised.value, UnreadableAnswer) and "\n" not in str(raised.value)


def test_a_series_cloudwatch_could_not_compute_costs_that_series_only():
    cw = client("cloudwatch")
    good, bad = query("orders"), query("invoices")
    with Stubber(cw) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": [
            {"Id": "q0", "Timestamps": [START], "Values": [30.0], "StatusCode": "Complete"},
            {"Id": "q1", "StatusCode": "InternalError", "Messages": [{"Code": "InternalError", "Value": "try later"}]},
        ]})
        with pytest.raises(MetricsUnavailable) as raised:
            aws.CloudWatchMetrics(cw, concurrency=1).fetch([good, bad])
    assert raised.value.data == {good: [(START, 30.0)]} and list(raised.value.failed) == [bad]
    assert "InternalError: try later" in str(raised.value.failed[bad])


# ---- 2. a failed batch is tried again in halves -----------------------------------------

class PoisonedCloudWatch:
    """GetMetricData that fails every call asking for a query of a `poisoned` table."""

    def __init__(self, poisoned: set[str], error: Exception | None = None) -> None:
        self.poisoned, self.calls = poisoned, []
        self.error = error if error is not None else ValueError("Invalid timestamp")

    def get_paginator(self, name):
        return self

    def paginate(self, MetricDataQueries, **_):
        tables = {q["MetricStat"]["Metric"]["Dimensions"][0]["Value"] for q in MetricDataQueries}
        self.calls.append(len(MetricDataQueries))
        if tables & self.poisoned:
            raise self.error
        return [{"MetricDataResults": [{"Id": q["Id"], "Timestamps": [START], "Values": [1.0]}
                                       for q in MetricDataQueries]}]


def fleet_queries(tables: int) -> list[MetricQuery]:
    return [query(f"t{i:03d}", m) for i in range(tables)
            for m in ("ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits", "ReadThrottleEvents",
                      "WriteThrottleEvents")]


def test_one_bad_series_in_a_batch_costs_only_its_own_table():
    cw = PoisonedCloudWatch({"t037"})
    qs = fleet_queries(125)  # 500 queries: one call
    with pytest.raises(MetricsUnavailable) as raised:
        aws.CloudWatchMetrics(cw, concurrency=1).fetch(qs)
    assert {q.target.table for q in raised.value.failed} == {"t037"} and len(raised.value.failed) == 4
    assert set(raised.value.data) == {q for q in qs if q.target.table != "t037"}
    assert all(points == [(START, 1.0)] for points in raised.value.data.values())
    assert len(cw.calls) <= 1 + 2 * 10  # ceil(log2(500)) + 1 levels of two halves, at most


@pytest.mark.parametrize("code", ["Throttling", "AccessDenied", "InternalServiceFault"])
def test_a_failure_every_half_would_share_is_not_split(code):
    error = ClientError({"Error": {"Code": code, "Message": "no"}}, "GetMetricData")
    cw = PoisonedCloudWatch({f"t{i:03d}" for i in range(125)}, error)
    with pytest.raises(AwsError, match=f"{code}: no"):
        aws.CloudWatchMetrics(cw, concurrency=1).fetch(fleet_queries(125))
    assert cw.calls == [500]


@settings(max_examples=60)
@given(tables=st.integers(1, 40), poisoned=st.sets(st.integers(0, 39), max_size=2),
       batch_size=st.sampled_from([1, 7, 64, 500]), concurrency=st.sampled_from([1, 3]))
def test_halving_loses_exactly_the_series_of_the_tables_whose_calls_fail(tables, poisoned, batch_size, concurrency):
    bad = {f"t{i:03d}" for i in poisoned if i < tables}
    cw = PoisonedCloudWatch(bad)
    qs = fleet_queries(tables)
    metrics = aws.CloudWatchMetrics(cw, batch_size=batch_size, concurrency=concurrency)
    if not bad:
        assert set(metrics.fetch(qs)) == set(qs)
        return
    with pytest.raises(AwsError) as raised:
        metrics.fetch(qs)
    if len(bad) == tables:
        assert isinstance(raised.value, UnreadableAnswer)
        return
    assert isinstance(raised.value, MetricsUnavailable)
    assert {q.target.table for q in raised.value.failed} == bad
    assert set(raised.value.data) == {q for q in qs if q.target.table not in bad}


def test_halving_is_bounded_when_every_query_fails():
    cw = PoisonedCloudWatch({f"t{i:03d}" for i in range(250)})
    with pytest.raises(UnreadableAnswer):
        aws.CloudWatchMetrics(cw, concurrency=2).fetch(fleet_queries(250))
    assert len(cw.calls) <= 2 + aws.MAX_SPLIT_CALLS


# ---- 3. LimitExceededException: the decrease rule, or not -------------------------------

@pytest.mark.parametrize("message,decrease_rule", [
    (DECREASE_RULE, True),
    ("Subscriber limit exceeded: Provisioned throughput decreases are limited to 4 times per day", True),
    (TOO_MANY_UPDATES, False),
    (ABOVE_TABLE_MAXIMUM, False),
    ("Subscriber limit exceeded", False),
])
def test_limit_exceeded_is_the_decrease_rule_only_when_its_message_says_so(message, decrease_rule):
    ddb = client("dynamodb")
    answer_with(ddb, "UpdateTable", (400, error_body("LimitExceededException", message)))
    with pytest.raises(LimitExceeded) as raised:
        aws.DynamoTables(ddb).update(Update("orders", Capacity(2, 2)))
    assert raised.value.decrease_rule is decrease_rule and message in str(raised.value)


@pytest.mark.parametrize("message", [DECREASE_RULE, TOO_MANY_UPDATES, ABOVE_TABLE_MAXIMUM])
def test_a_limit_exceeded_update_is_sent_once_not_three_times(message):
    ddb = client("dynamodb")
    seen = answer_with(ddb, "UpdateTable", (400, error_body("LimitExceededException", message)))
    with pytest.raises(LimitExceeded):
        aws.DynamoTables(ddb).update(Update("orders", Capacity(2, 2)))
    assert len(seen) == 1


def test_other_update_table_errors_are_still_retried_by_botocore():
    ddb = client("dynamodb")
    seen = answer_with(ddb, "UpdateTable", (500, error_body("InternalServerError", "oops")),
                       (200, b'{"TableDescription": {"TableName": "orders"}}'))
    aws.DynamoTables(ddb).update(Update("orders", Capacity(2, 2)))
    assert len(seen) == 2


# ---- 4. DescribeLimits ------------------------------------------------------------------

LIMITS = {"AccountMaxReadCapacityUnits": 80000, "AccountMaxWriteCapacityUnits": 80000,
          "TableMaxReadCapacityUnits": 40000, "TableMaxWriteCapacityUnits": 40000}


def test_describe_limits_is_read_once_an_hour():
    ddb = client("dynamodb")
    seen = answer_with(ddb, "DescribeLimits", (200, json.dumps(LIMITS).encode()))
    limits = aws.DynamoLimits(ddb)
    for minutes in (0, 5, 59):
        assert limits.current(START + timedelta(minutes=minutes)) == CapacityLimits(Capacity(40000, 40000),
                                                                                    Capacity(80000, 80000))
    assert len(seen) == 1
    limits.current(START + timedelta(minutes=60))
    assert len(seen) == 2


@pytest.mark.parametrize("body", [b"garbage", json.dumps({**LIMITS, "TableMaxReadCapacityUnits": "x"}).encode(),
                                  json.dumps({**LIMITS, "AccountMaxWriteCapacityUnits": 0}).encode(),
                                  json.dumps({k: v for k, v in LIMITS.items() if k != "TableMaxWriteCapacityUnits"}
                                             ).encode()],
                         ids=["garbage", "text", "zero", "missing"])
def test_a_failed_describe_limits_means_no_clamp_this_pass_with_one_warning(body, caplog):
    ddb = client("dynamodb")
    seen = answer_with(ddb, "DescribeLimits", (200, body), (200, json.dumps(LIMITS).encode()))
    limits = aws.DynamoLimits(ddb)
    assert limits.current(START) is None and limits.current(START) is None  # two tables of one pass
    assert caplog.text.count("DescribeLimits failed") == 1 and len(seen) == 1
    assert limits.current(START + timedelta(minutes=1)) is not None and len(seen) == 2  # tried again next pass


def test_an_endpoint_without_describe_limits_is_said_once_and_not_asked_again(caplog):
    ddb = client("dynamodb")
    seen = answer_with(ddb, "DescribeLimits", (400, error_body("UnknownOperationException", "")))
    limits = aws.DynamoLimits(ddb)
    with caplog.at_level(logging.INFO):
        for minutes in range(3):
            assert limits.current(START + timedelta(minutes=minutes)) is None
    assert len(seen) == 1 and "DescribeLimits failed" not in caplog.text
    assert caplog.text.count("does not implement DescribeLimits") == 1


def test_describe_limits_is_in_the_iam_actions():
    assert "dynamodb:DescribeLimits" in aws.REQUIRED_IAM_ACTIONS


def test_describe_limits_round_trip_with_the_stubber():
    ddb = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    with Stubber(ddb) as stub:
        stub.add_response("describe_limits", dict(LIMITS, TableMaxReadCapacityUnits=120))
        assert aws.DynamoLimits(ddb).current(START).table == Capacity(120, 40000)


def test_no_halves_are_started_once_the_fetch_has_run_its_split_seconds(monkeypatch):
    monkeypatch.setattr(aws, "SPLIT_SECONDS", 0.0)
    cw = PoisonedCloudWatch({"t037"})
    with pytest.raises(UnreadableAnswer):
        aws.CloudWatchMetrics(cw, concurrency=1).fetch(fleet_queries(125))
    assert cw.calls == [500]
