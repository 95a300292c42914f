"""Plain value types shared by the policy, the adapters, the loop and the simulator; the adapters' errors; the ports."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import NamedTuple, Protocol

# the values of targets.py, which a compiled build compiles, imported from here as before
from .targets import Capacity as Capacity
from .targets import TableDescription as TableDescription
from .targets import Target as Target
from .targets import TargetStatus as TargetStatus
from .targets import WarmThroughput as WarmThroughput


class Dim(str, Enum):
    """A capacity dimension: reads and writes share one code path."""

    READS = "reads"
    WRITES = "writes"


# CloudWatch metric names by dimension.
CONSUMED_METRIC = {Dim.READS: "ConsumedReadCapacityUnits", Dim.WRITES: "ConsumedWriteCapacityUnits"}
THROTTLE_METRIC = {Dim.READS: "ReadThrottleEvents", Dim.WRITES: "WriteThrottleEvents"}
# Throttle events by cause (published since 2025 beside the totals above; absent in older history
# and in other DynamoDB implementations). Only the first argues for more provisioned capacity.
PROVISIONED_THROTTLES = "ProvisionedThroughput"
KEY_RANGE_THROTTLES = "KeyRangeThroughput"  # a hot key range: more table capacity does not help
ACCOUNT_LIMIT_THROTTLES = "AccountLimit"
MAX_ON_DEMAND_THROTTLES = "MaxOnDemandThroughput"
THROTTLE_CAUSES = (PROVISIONED_THROTTLES, KEY_RANGE_THROTTLES, ACCOUNT_LIMIT_THROTTLES, MAX_ON_DEMAND_THROTTLES)
THROTTLE_CAUSE_METRIC = {dim: {cause: f"{prefix}{cause}ThrottleEvents" for cause in THROTTLE_CAUSES}
                         for dim, prefix in ((Dim.READS, "Read"), (Dim.WRITES, "Write"))}


class MetricQuery(NamedTuple):
    """One CloudWatch series: Sum of `metric` for `target`, in buckets of `period` seconds.

    Several per target and pass, each a dict key: a named tuple, quicker to build and to hash
    than a frozen dataclass."""

    target: Target
    metric: str
    start: datetime
    end: datetime
    period: int = 60


# Datapoints of one series: (bucket start, Sum), oldest first. Empty means "no data".
Datapoints = Sequence[tuple[datetime, float]]


@dataclass(frozen=True)
class Update:
    """One UpdateTable call: new capacity for the table and/or some of its GSIs."""

    table: str
    table_capacity: Capacity | None = None
    index_capacities: Mapping[str, Capacity] = field(default_factory=dict)
    # a capacity-mode switch: PROVISIONED (with the capacity of the table and every GSI) or PAY_PER_REQUEST
    billing_mode: str | None = None
    on_demand_max: tuple[int | None, int | None] | None = None  # OnDemandThroughput reads, writes
    # pre-warm (UpdateTable's WarmThroughput): the table's and its GSIs'; a None field is not sent
    table_warm: WarmThroughput | None = None
    index_warm: Mapping[str, WarmThroughput] = field(default_factory=dict)


# ---- errors the adapters raise, already translated from botocore ----------------


class AwsError(Exception):
    """An AWS call failed; `code` is the AWS error code when there is one."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class TableNotFound(AwsError):
    """The table (or index) does not exist any more."""


class TableBusy(AwsError):
    """The table is not ACTIVE (ResourceInUseException): try again next pass."""


class LimitExceeded(AwsError):
    """DynamoDB refused the update with LimitExceededException (any kind)."""

    @property
    def decrease_rule(self) -> bool:
        """True when the refusal is the daily decrease rule (retrying with only the increases
        may succeed), False for the other limits (too many table operations at once, the table
        or account maximum): those wait for the next pass."""
        return DECREASE_RULE_WORDING in str(self).lower()


# DynamoDB's wording of the decrease rule: "Subscriber limit exceeded: Provisioned throughput
# decreases are limited within a given UTC day. ..." (older answers: "... decreases are limited
# to 4 times per day ...")
DECREASE_RULE_WORDING = "throughput decreases are limited"


class UnreadableAnswer(AwsError):
    """An answer that could not be read (garbage or truncated body, missing field, wrong type)."""


class MetricsUnavailable(AwsError):
    """Some series of a GetMetricData fetch could not be read; the others are in `data`."""

    def __init__(self, message: str, failed: Mapping[MetricQuery, AwsError],
                 data: Mapping[MetricQuery, Datapoints]) -> None:
        super().__init__(message, "MetricsUnavailable")
        self.failed = dict(failed)
        self.data = dict(data)


class AccessDenied(AwsError):
    """The credentials lack a permission."""


@dataclass(frozen=True)
class CapacityLimits:
    """DynamoDB's maxima (DescribeLimits): per table or GSI, and for the account in the region."""

    table: Capacity
    account: Capacity


# ---- ports: what the loop needs from the outside world ----------------------------


class TableAdmin(Protocol):
    """DynamoDB control plane."""

    def list_tables(self) -> list[str]:
        """All table names (every page)."""

    def describe(self, table: str) -> TableDescription:
        """DescribeTable, as a plain value. Raises AwsError subclasses."""

    def update(self, update: Update) -> None:
        """UpdateTable. Raises TableBusy, LimitExceeded, TableNotFound or AwsError."""


class MetricsSource(Protocol):
    """CloudWatch."""

    def fetch(self, queries: Sequence[MetricQuery]) -> dict[MetricQuery, Datapoints]:
        """Sums per bucket for every query; a query with no data maps to an empty list.
        Raises MetricsUnavailable when some queries could not be read, AwsError when none."""


class LimitsSource(Protocol):
    """DynamoDB's DescribeLimits."""

    def current(self, now: datetime) -> CapacityLimits | None:
        """The maxima in force (cached), or None when they cannot be read this pass."""


class Notifier(Protocol):
    """SNS."""

    def publish(self, topic_arn: str, subject: str, message: str) -> None:
        """Send one message. Raises AwsError."""


class Breaker(Protocol):
    """The circuit-breaker probe."""

    def is_closed(self, url: str, timeout_ms: float, headers: Mapping[str, str]) -> bool:
        """True when the URL answers 2xx within the timeout."""
