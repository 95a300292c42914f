"""boto3 adapters: the only module that builds AWS clients or sees botocore responses.

Clients honour boto3's own endpoint settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB,
AWS_ENDPOINT_URL_CLOUDWATCH, AWS_ENDPOINT_URL_SNS) and credential chain; retries are
botocore's `standard` mode, set explicitly.
"""
from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .model import (
    AccessDenied,
    AwsError,
    Capacity,
    Datapoints,
    LimitExceeded,
    MetricQuery,
    TableBusy,
    TableDescription,
    TableNotFound,
    Target,
    TargetStatus,
    Update,
)

# What the daemon calls, for the IAM policy in the docs (tests check the docs list them).
REQUIRED_IAM_ACTIONS = (
    "dynamodb:ListTables",
    "dynamodb:DescribeTable",
    "dynamodb:UpdateTable",
    "cloudwatch:GetMetricData",
    "sns:Publish",
)

MAX_QUERIES_PER_CALL = 500  # GetMetricData's limit; moto does not enforce it, we do
NAMESPACE = "AWS/DynamoDB"

_ERRORS: Mapping[str, type[AwsError]] = {
    "ResourceNotFoundException": TableNotFound,
    "ResourceInUseException": TableBusy,
    "LimitExceededException": LimitExceeded,
    "AccessDeniedException": AccessDenied,
    "AccessDenied": AccessDenied,
    "UnrecognizedClientException": AccessDenied,
    "AuthorizationError": AccessDenied,
}


def translate(error: Exception) -> AwsError:
    """A botocore exception as one of our AwsError types, with a one-line message."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code", "")) or "ClientError"
        message = str(info.get("Message", "")) or str(error)
        return _ERRORS.get(code, AwsError)(f"{code}: {message}".replace("\n", " "), code)
    return AwsError(str(error).replace("\n", " "), type(error).__name__)


@dataclass(frozen=True)
class Connection:
    """Where and as whom to connect."""

    region: str
    access_key_id: Optional[str] = None
    secret_access_key: Optional[str] = None
    max_attempts: int = 4
    pool_size: int = 16


def make_session(conn: Connection) -> boto3.Session:
    """A boto3 session: explicit keys only when both are given, else the default chain."""
    if conn.access_key_id and conn.secret_access_key:
        return boto3.Session(aws_access_key_id=conn.access_key_id,
                             aws_secret_access_key=conn.secret_access_key, region_name=conn.region)
    return boto3.Session(region_name=conn.region)


def make_client(session: boto3.Session, service: str, conn: Connection) -> Any:
    """The one place clients are built: standard retries, bounded timeouts, a pool for threads."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": conn.max_attempts},
        connect_timeout=10,
        read_timeout=30,
        max_pool_connections=conn.pool_size,
        user_agent_extra="dynamic-dynamodb",
    )
    return session.client(service, config=config)


def _when(value: Any) -> Optional[datetime]:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(float(value), tz=timezone.utc)


def _status(target: Target, status: str, billing: str, throughput: Mapping[str, Any]) -> TargetStatus:
    return TargetStatus(
        target=target,
        status=status,
        billing_mode=billing,
        capacity=Capacity(int(throughput.get("ReadCapacityUnits", 0)), int(throughput.get("WriteCapacityUnits", 0))),
        decreases_today=int(throughput.get("NumberOfDecreasesToday", 0) or 0),
        last_decrease=_when(throughput.get("LastDecreaseDateTime")),
        last_increase=_when(throughput.get("LastIncreaseDateTime")),
    )


def parse_description(table: Mapping[str, Any]) -> TableDescription:
    """DescribeTable's `Table` as a plain value (fields moto omits get defaults)."""
    name = table["TableName"]
    billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    main = _status(Target(name), table.get("TableStatus", "ACTIVE"), billing, table.get("ProvisionedThroughput", {}))
    indexes = tuple(
        _status(Target(name, gsi["IndexName"]), gsi.get("IndexStatus", "ACTIVE"), billing,
                gsi.get("ProvisionedThroughput", {}))
        for gsi in table.get("GlobalSecondaryIndexes", [])
    )
    return TableDescription(main, indexes)


class DynamoTables:
    """TableAdmin over a boto3 DynamoDB client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def list_tables(self) -> list[str]:
        """Every table name, following the pages."""
        try:
            pages = self.client.get_paginator("list_tables").paginate()
            return [name for page in pages for name in page.get("TableNames", [])]
        except (ClientError, BotoCoreError) as e:
            raise translate(e) from None

    def describe(self, table: str) -> TableDescription:
        """DescribeTable."""
        try:
            return parse_description(self.client.describe_table(TableName=table)["Table"])
        except (ClientError, BotoCoreError) as e:
            raise translate(e) from None

    def update(self, update: Update) -> None:
        """One UpdateTable for the table and its GSIs."""
        kwargs: dict[str, Any] = {"TableName": update.table}
        if update.table_capacity is not None:
            kwargs["ProvisionedThroughput"] = _throughput(update.table_capacity)
        if update.index_capacities:
            kwargs["GlobalSecondaryIndexUpdates"] = [
                {"Update": {"IndexName": name, "ProvisionedThroughput": _throughput(cap)}}
                for name, cap in sorted(update.index_capacities.items())
            ]
        try:
            self.client.update_table(**kwargs)
        except (ClientError, BotoCoreError) as e:
            raise translate(e) from None


def _throughput(cap: Capacity) -> dict[str, int]:
    return {"ReadCapacityUnits": cap.reads, "WriteCapacityUnits": cap.writes}


def _dimensions(target: Target) -> list[dict[str, str]]:
    dims = [{"Name": "TableName", "Value": target.table}]
    if target.index is not None:
        dims.append({"Name": "GlobalSecondaryIndexName", "Value": target.index})
    return dims


class CloudWatchMetrics:
    """MetricsSource over GetMetricData: all series of a pass in as few calls as the API allows."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0

    def fetch(self, queries: Sequence[MetricQuery]) -> dict[MetricQuery, Datapoints]:
        """Sums per bucket for every query, oldest first; no data gives an empty list."""
        result: dict[MetricQuery, Datapoints] = {q: [] for q in queries}
        by_window: dict[tuple[datetime, datetime], list[MetricQuery]] = defaultdict(list)
        for q in dict.fromkeys(queries):
            by_window[(q.start, q.end)].append(q)
        for (start, end), group in by_window.items():
            for batch in _chunks(group, MAX_QUERIES_PER_CALL):
                result.update(self._fetch_batch(start, end, batch))
        return result

    def _fetch_batch(self, start: datetime, end: datetime, batch: list[MetricQuery]) -> dict[MetricQuery, Datapoints]:
        ids = {f"q{i}": q for i, q in enumerate(batch)}
        request = [
            {
                "Id": qid,
                "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, "MetricName": q.metric, "Dimensions": _dimensions(q.target)},
                    "Period": q.period,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            for qid, q in ids.items()
        ]
        found: dict[MetricQuery, dict[datetime, float]] = defaultdict(dict)
        try:
            pages = self.client.get_paginator("get_metric_data").paginate(
                MetricDataQueries=request, StartTime=start, EndTime=end, ScanBy="TimestampAscending")
            for page in pages:
                self.calls += 1
                for series in page.get("MetricDataResults", []):
                    q = ids.get(series.get("Id"))
                    if q is not None:
                        found[q].update(zip(map(_when, series.get("Timestamps", [])), series.get("Values", [])))
        except (ClientError, BotoCoreError) as e:
            raise translate(e) from None
        return {q: sorted(points.items()) for q, points in found.items()}


def _chunks(items: list, size: int):
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


class SnsNotifier:
    """Notifier over SNS Publish."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def publish(self, topic_arn: str, subject: str, message: str) -> None:
        """Publish one message (SNS subjects are limited to 100 characters)."""
        try:
            self.client.publish(TopicArn=topic_arn, Subject=subject[:100], Message=message)
        except (ClientError, BotoCoreError) as e:
            raise translate(e) from None
