"""boto3 adapters: the only module that builds AWS clients or sees botocore responses.

Clients honour boto3's own endpoint settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB,
AWS_ENDPOINT_URL_CLOUDWATCH, AWS_ENDPOINT_URL_SNS, AWS_ENDPOINT_URL_STS) and credential chain;
retries are botocore's `standard` mode, set explicitly. With a role ARN the session's
credentials come from STS AssumeRole and are refreshed by botocore before they expire.
"""
from __future__ import annotations

import itertools
import logging
import math
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Optional, Sequence

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from .edge import LOGGER
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
ROLE_SESSION_NAME = "dynamic-dynamodb"  # how CloudTrail names our AssumeRole sessions

log = logging.getLogger(LOGGER)

MAX_QUERIES_PER_CALL = 500  # GetMetricData's limit; moto does not enforce it, we do
MAX_DATAPOINTS_PER_CALL = 100_800  # GetMetricData returns at most this many per call (more: NextToken)
# GetMetricData calls in flight at once: a pass of 10,000 tables (240 calls) is not a queue
# of round trips, and stays well under the API's 50 calls per second per region
METRICS_CONCURRENCY = 4
NAMESPACE = "AWS/DynamoDB"
# seconds; control-plane calls answer in well under a second, a big GetMetricData in a few
CONNECT_TIMEOUT = 5
READ_TIMEOUT = {"default": 10, "cloudwatch": 15}

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
    max_attempts: int = 3  # botocore's standard-mode default
    pool_size: int = 16
    role_arn: Optional[str] = None  # assumed with the credentials above (or the default chain)


_loader_lock = threading.Lock()
_loader: Any = None


def _session(core: Optional[botocore.session.Session] = None, **kwargs: Any) -> boto3.Session:
    """A boto3 session on a botocore session that shares the process's one data loader, so
    sessions (one per region and role) share the parsed service models: about 0.6 MB per
    extra session instead of 10."""
    global _loader
    core = core or botocore.session.Session()
    with _loader_lock:
        if _loader is None:
            _loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _loader)
        session = boto3.Session(botocore_session=core, **kwargs)
        # boto3 appends its data directory to the loader's search path once per session
        _loader.search_paths[:] = dict.fromkeys(_loader.search_paths)
    return session


def make_session(conn: Connection) -> boto3.Session:
    """A boto3 session: explicit keys only when both are given, else the default chain; with a
    role ARN, the credentials of that role, assumed with those. A broken AWS set-up (such as
    AWS_PROFILE naming no profile) raises AwsError."""
    try:
        if conn.access_key_id and conn.secret_access_key:
            source = _session(aws_access_key_id=conn.access_key_id, aws_secret_access_key=conn.secret_access_key,
                              region_name=conn.region)
        else:
            source = _session(region_name=conn.region)
        if conn.role_arn is None:
            return source
        return _assume_role_session(source, conn)
    except (BotoCoreError, ValueError) as e:
        raise _setup_error("session", e) from None


def _setup_error(what: str, error: Exception) -> AwsError:
    """A client or session that cannot be built (bad profile, endpoint URL, ...): one line."""
    return AwsError(f"cannot set up the AWS {what}: " + " ".join(str(error).split()), type(error).__name__)


class _SourceCredentials:
    """The caller's credentials, looked up at each AssumeRole (they may rotate themselves)."""

    def __init__(self, session: boto3.Session) -> None:
        self.session = session

    def get_frozen_credentials(self) -> Any:
        credentials = self.session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        return credentials.get_frozen_credentials()


class _RoleProvider(CredentialProvider):
    """A credential provider that always answers with the role's refreshable credentials."""

    METHOD = "assume-role"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self.credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self.credentials


def _assume_role_session(source: boto3.Session, conn: Connection) -> boto3.Session:
    """A session whose credentials botocore fetches with sts:AssumeRole on first use and
    refreshes before they expire (RefreshableCredentials' advisory and mandatory windows);
    the STS client is built by make_client in the table's region."""
    def sts_client(service: str, **credentials: Any) -> Any:
        return make_client(source, service, conn, **credentials)

    fetcher = AssumeRoleCredentialFetcher(sts_client, _SourceCredentials(source), conn.role_arn,
                                          extra_args={"RoleSessionName": ROLE_SESSION_NAME})
    credentials = DeferredRefreshableCredentials(fetcher.fetch_credentials, method=_RoleProvider.METHOD)
    core = botocore.session.Session()
    core.register_component("credential_provider", CredentialResolver([_RoleProvider(credentials)]))
    return _session(core, region_name=conn.region)


def make_client(session: boto3.Session, service: str, conn: Connection, region: Optional[str] = None,
                **credentials: Any) -> Any:
    """The one place clients are built: standard retries, bounded timeouts, a pool for threads.
    `region` overrides the session's (SNS topics live in their own region). The timeouts bound
    a call to an endpoint that accepts but never answers to about half a minute, retries
    included (CONNECT_TIMEOUT, READ_TIMEOUT). A client that cannot be built raises AwsError."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": conn.max_attempts},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT.get(service, READ_TIMEOUT["default"]),
        max_pool_connections=conn.pool_size,
        user_agent_extra="dynamic-dynamodb",
    )
    try:
        return session.client(service, config=config, region_name=region, **credentials)
    except (BotoCoreError, ValueError) as e:
        raise _setup_error(f"{service} client", e) from None


def _when(value: Any) -> Optional[datetime]:
    if value is None:
        return None
    if isinstance(value, datetime):
        # in UTC: botocore gives every parsed timestamp its own tzlocal() instance, which
        # kept ~0.6 kB per datapoint alive (40 MB for a 1,000-table pass)
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
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

    def __init__(self, client: Any, batch_size: int = MAX_QUERIES_PER_CALL,
                 concurrency: int = METRICS_CONCURRENCY) -> None:
        self.client = client
        self.batch_size = max(1, min(batch_size, MAX_QUERIES_PER_CALL))
        self.concurrency = max(1, concurrency)
        self.calls = 0
        self._lock = threading.Lock()

    def fetch(self, queries: Sequence[MetricQuery]) -> dict[MetricQuery, Datapoints]:
        """Sums per bucket for every query, oldest first; no data gives an empty list.

        One call per window and `batch_size` queries (pages followed), a few in flight at once."""
        result: dict[MetricQuery, Datapoints] = {q: [] for q in queries}
        by_window: dict[tuple[datetime, datetime], list[MetricQuery]] = defaultdict(list)
        for q in dict.fromkeys(queries):
            by_window[(q.start, q.end)].append(q)
        batches = [(start, end, batch) for (start, end), group in by_window.items()
                   for batch in _chunks(group, self.batch_size)]
        if len(batches) > 1 and self.concurrency > 1:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(batches))) as pool:
                for found in pool.map(lambda b: self._fetch_batch(*b), batches):
                    result.update(found)
        else:
            for start, end, batch in batches:
                result.update(self._fetch_batch(start, end, batch))
        return result

    def fetch_history(self, queries: Sequence[MetricQuery], stat: str = "Sum",
                      max_datapoints: int = MAX_DATAPOINTS_PER_CALL) -> dict[MetricQuery, Datapoints]:
        """Long series, such as a backtest's days of 1-minute datapoints: `stat` per bucket, oldest first.

        Each call asks for at most `batch_size` queries and `max_datapoints` datapoints: the queries of a
        window are batched and the window split in time (on bucket boundaries) as needed; the pages of
        every call are followed (NextToken). No data gives an empty list."""
        groups: dict[tuple[datetime, datetime, int], list[MetricQuery]] = defaultdict(list)
        for q in dict.fromkeys(queries):
            groups[(q.start, q.end, q.period)].append(q)
        calls = [(t0, t1, group[lo:hi])
                 for (start, end, period), group in groups.items()
                 for lo, hi, t0, t1 in plan_history_calls(len(group), start, end, period, self.batch_size,
                                                          max_datapoints)]
        merged: dict[MetricQuery, dict[datetime, float]] = defaultdict(dict)

        def one(call: tuple[datetime, datetime, list[MetricQuery]]) -> dict[MetricQuery, Datapoints]:
            return self._fetch_batch(*call, stat=stat)

        if len(calls) > 1 and self.concurrency > 1:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(calls))) as pool:
                found_all = list(pool.map(one, calls))
        else:
            found_all = [one(call) for call in calls]
        for found in found_all:
            for q, points in found.items():
                merged[q].update(points)
        return {q: sorted(merged[q].items()) for q in queries}

    def _fetch_batch(self, start: datetime, end: datetime, batch: list[MetricQuery],
                     stat: str = "Sum") -> dict[MetricQuery, Datapoints]:
        ids = {f"q{i}": q for i, q in enumerate(batch)}
        request = [
            {
                "Id": qid,
                "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, "MetricName": q.metric, "Dimensions": _dimensions(q.target)},
                    "Period": q.period,
                    "Stat": stat,
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
                with self._lock:
                    self.calls += 1
                for series in page.get("MetricDataResults", []):
                    q = ids.get(series.get("Id"))
                    if q is not None:
                        found[q].update(_valid(q, series.get("Timestamps", []), series.get("Values", [])))
        except (ClientError, BotoCoreError) as e:
            raise translate(e) from None
        return {q: sorted(points.items()) for q, points in found.items()}


def _valid(q: MetricQuery, stamps: Sequence[Any], values: Sequence[Any]) -> list[tuple[datetime, float]]:
    """Datapoints that can be capacity: a negative or non-finite Sum is dropped with a warning."""
    good = []
    for stamp, value in zip(stamps, values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if math.isfinite(number) and number >= 0:
            good.append((_when(stamp), number))
        else:
            log.warning("%s: ignoring %s datapoint %r at %s", q.target, q.metric, value, stamp)
    return good


def plan_history_calls(count: int, start: datetime, end: datetime, period: int, max_queries: int,
                       max_datapoints: int) -> list[tuple[int, int, datetime, datetime]]:
    """GetMetricData calls for `count` queries over [start, end) in buckets of `period` s:
    (first query, end query, call start, call end), each call at most `max_queries` queries and
    `max_datapoints` datapoints; call windows start on bucket boundaries, so buckets stay anchored."""
    buckets = max(1, -(-int((end - start).total_seconds()) // period))
    per_call = max(1, min(max_queries, count, max_datapoints // buckets))  # queries per call
    span = max(1, min(buckets, max_datapoints // per_call))  # buckets per call
    calls = []
    for lo in range(0, count, per_call):
        for first in range(0, buckets, span):
            t0 = start + timedelta(seconds=first * period)
            t1 = min(end, start + timedelta(seconds=(first + span) * period))
            calls.append((lo, min(count, lo + per_call), t0, t1))
    return calls


def _chunks(items: list, size: int):
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


class SnsNotifier:
    """Notifier over SNS Publish. SNS accepts a topic only in its own region: given
    `client_for_region`, a topic of another region is published with a client of that region."""

    def __init__(self, client: Any, client_for_region: Optional[Callable[[str], Any]] = None) -> None:
        self.client = client
        self.client_for_region = client_for_region
        self._regional: dict[str, Any] = {}

    def _client(self, topic_arn: str) -> Any:
        parts = topic_arn.split(":")
        region = parts[3] if len(parts) > 3 else ""
        if self.client_for_region is None or not region or region == self.client.meta.region_name:
            return self.client
        if region not in self._regional:
            self._regional[region] = self.client_for_region(region)
        return self._regional[region]

    def publish(self, topic_arn: str, subject: str, message: str) -> None:
        """Publish one message (SNS subjects are limited to 100 characters)."""
        try:
            self._client(topic_arn).publish(TopicArn=topic_arn, Subject=subject[:100], Message=message)
        except (ClientError, BotoCoreError) as e:
            raise translate(e) from None
