"""Scaling rules of one table or GSI, as parsed from the config: plain frozen values."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time

from .frozen import ByFields
from .model import Dim

PERCENT = "percent"
UNITS = "units"
UNIT_CHOICES = (PERCENT, UNITS)

# A granular scale: threshold (percent) -> amount; the largest threshold <= value applies.
Scale = Mapping[float, float]

SNS_MESSAGE_TYPES = ("scale-up", "scale-down", "high-throughput-alarm", "low-throughput-alarm")


@dataclass(frozen=True)
class Window(ByFields):
    """A maintenance window in UTC; it may wrap midnight (22:00-02:00)."""

    start: time
    end: time

    def contains(self, now: time) -> bool:
        """True when `now` (minute resolution, both ends inclusive) lies in the window."""
        t = now.replace(second=0, microsecond=0)
        if self.start <= self.end:
            return self.start <= t <= self.end
        return t >= self.start or t <= self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class Schedule(ByFields):
    """A `[schedule: NAME]` section: limits that override min/max while it is in force."""

    name: str
    hours: tuple[Window, ...]  # local wall-clock intervals, start inclusive, end exclusive
    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)  # weekdays (Monday 0) on which an interval starts
    timezone: str = "UTC"  # IANA name
    lead_minutes: int = 10  # in force this long before each start: capacity takes minutes to arrive
    min_reads: int | None = None
    min_writes: int | None = None
    max_reads: int | None = None
    max_writes: int | None = None

    def limit(self, dim: Dim, kind: str) -> int | None:
        """The schedule's 'min' or 'max' for one dimension (None: not set)."""
        return getattr(self, f"{kind}_{dim.value}")


@dataclass(frozen=True)
class DimensionRules(ByFields):
    """How one dimension (reads or writes) scales. Defaults are those of 1.6.0 / 2.5.1."""

    upper_threshold: float = 90.0
    lower_threshold: float = 30.0
    increase_with: float = 50
    increase_unit: str = PERCENT
    decrease_with: float = 50
    decrease_unit: str = PERCENT
    min_provisioned: int | None = None  # None means 1
    max_provisioned: int | None = None  # None means no ceiling
    allow_scaling_down_on_0_percent: bool = False
    # 2.x additions
    enabled: bool = True
    up_scaling: bool = True
    down_scaling: bool = True
    throttled_upper_threshold: float = 0  # throttle events in the window; 0 disables
    increase_consumed_with: float | None = None  # defaults to increase_with
    increase_consumed_unit: str | None = None  # defaults to increase_unit
    increase_consumed_scale: Scale | None = None
    increase_throttled_by_provisioned_unit: str | None = None
    increase_throttled_by_provisioned_scale: Scale | None = None
    increase_throttled_by_consumed_unit: str | None = None
    increase_throttled_by_consumed_scale: Scale | None = None
    decrease_consumed_with: float | None = None  # defaults to decrease_with
    decrease_consumed_unit: str | None = None  # defaults to decrease_unit
    decrease_consumed_scale: Scale | None = None
    checks_before_scale_down: int = 1
    checks_reset_percent: float = 0  # 0 disables
    upper_alarm_threshold: float = 0  # 0 disables
    lower_alarm_threshold: float = 0  # 0 disables

    @property
    def floor(self) -> int:
        """The effective minimum: the configured one, or DynamoDB's 1."""
        return max(1, self.min_provisioned or 1)


@dataclass(frozen=True)
class TargetRules(ByFields):
    """Everything the config says about one table or GSI."""

    reads: DimensionRules = field(default_factory=DimensionRules)
    writes: DimensionRules = field(default_factory=DimensionRules)
    always_decrease_rw_together: bool = False
    maintenance_windows: tuple[Window, ...] | None = None  # None: changes any time
    lookback_window_start: int = 15  # minutes before now where the metric window starts
    lookback_period: int = 5  # minutes the window lasts
    sns_topic_arn: str | None = None
    sns_message_types: tuple[str, ...] = ()
    circuit_breaker_url: str | None = None
    circuit_breaker_timeout: float = 10000.0  # milliseconds
    reserved_decreases: int = 0  # free decreases of the UTC day kept back for later
    scaling_policy: str = "threshold"
    target_utilization: float = 70.0  # used by scaling-policy: demand
    schedules: tuple[Schedule, ...] = ()  # [schedule: NAME] sections named by `schedules`
    pre_warm: bool = False  # raise the warm throughput ahead of a known peak (prewarm.py)

    def dim(self, dim: Dim) -> DimensionRules:
        """Rules of one dimension."""
        return self.reads if dim is Dim.READS else self.writes
