"""The table model of SCORING.md: one provisioned table replayed minute by minute on a virtual clock."""
from __future__ import annotations

import math
from datetime import datetime, timedelta

from ..model import AwsError, LimitExceeded, TableBusy
from .trace import Trace

RCU_HOUR = 0.00013  # us-east-1 standard table, $ per RCU-hour
WCU_HOUR = 0.00065  # $ per WCU-hour
OD_READ_PER_UNIT = 0.125 / 1e6  # on-demand, $ per read unit (since November 2024)
OD_WRITE_PER_UNIT = 0.625 / 1e6  # $ per write unit
BURST_SECONDS = 300  # burst credit is capped at five minutes of the current rate
LAG = 2  # a pass at the start of minute m sees CloudWatch datapoints of minutes <= m - LAG
FREE_DECREASES = 4  # decreases of a UTC day allowed at any time
DECREASE_GAP = 60  # minutes after the last accepted decrease before the next one, once the free ones are used
MINUTES_PER_DAY = 1440
PROVISIONED, ON_DEMAND = "PROVISIONED", "PAY_PER_REQUEST"
MAX_SWITCHES_TO_ON_DEMAND = 4  # per rolling day, DynamoDB's limit


def initial_capacity(trace: Trace) -> tuple[int, int]:
    """ceil(1.25 x demand of minute 0) per dimension, at least 1."""
    return max(1, math.ceil(trace.reads[0] * 1.25)), max(1, math.ceil(trace.writes[0] * 1.25))


def serve(provisioned: int, burst: float, demand: float) -> tuple[float, float, float]:
    """One minute of one dimension: (served units, throttled units, burst credit left)."""
    want = demand * 60.0
    cap = provisioned * 60.0
    if want <= cap:
        return want, 0.0, min(burst + (cap - want), BURST_SECONDS * provisioned)
    extra = min(want - cap, burst)
    return cap + extra, want - cap - extra, burst - extra


class DecreaseRule:
    """DynamoDB's per-table decrease allowance, on minute indexes of the replay."""

    def __init__(self, start: datetime) -> None:
        self.epoch_minute = int(start.timestamp() // 60)  # so days roll over at UTC midnight
        self.day: int | None = None  # UTC day of the last accepted decrease
        self.count = 0  # accepted decreases on that day
        self.last: int | None = None  # minute of the last accepted decrease

    def day_of(self, minute: int) -> int:
        """UTC day number of a minute."""
        return (self.epoch_minute + minute) // MINUTES_PER_DAY

    def count_on(self, minute: int) -> int:
        """Accepted decreases on the UTC day of `minute` (DescribeTable's NumberOfDecreasesToday)."""
        return self.count if self.day == self.day_of(minute) else 0

    def allowed(self, minute: int) -> bool:
        """True when a decrease issued at `minute` would be accepted."""
        if self.count_on(minute) < FREE_DECREASES:
            return True
        return self.last is None or minute - self.last >= DECREASE_GAP

    def record(self, minute: int) -> None:
        """Count an accepted decrease."""
        day = self.day_of(minute)
        if day != self.day:
            self.day, self.count = day, 0
        self.count += 1
        self.last = minute


class World:
    """One simulated table: demand, provisioning, burst credit and what each minute served.

    `minute` is the current minute, not yet served: updates issued now are in force from
    minute + 1. The per-minute lists are preallocated and filled as minutes are served:
    they are the timeline and the CloudWatch series at once.
    """

    def __init__(self, trace: Trace, initial: tuple[int, int] | None = None) -> None:
        n = trace.minutes
        self.trace = trace
        self.minute = 0
        self.reads, self.writes = initial if initial is not None else initial_capacity(trace)
        if min(self.reads, self.writes) < 1:
            raise ValueError(f"initial capacity must be at least 1 unit, got {self.reads}/{self.writes}")
        self.pending: tuple[int, int] | None = None
        self.billing = PROVISIONED  # in force for the current minute
        self.pending_mode: tuple[str, int, int] | None = None  # a switch, in force from the next minute
        self.switches_to_on_demand: list[int] = []  # minutes the accepted switches were issued
        self.billing_modes = [PROVISIONED] * n
        self.rule = DecreaseRule(trace.start)
        self.last_increase: int | None = None
        self.refused = 0  # updates refused by the decrease rule
        self.rejected = 0  # updates refused for another reason (busy, no change, invalid)
        self._burst_r = 0.0
        self._burst_w = 0.0
        self.provisioned_reads = [0] * n
        self.provisioned_writes = [0] * n
        self.served_reads = [0.0] * n
        self.served_writes = [0.0] * n
        self.throttled_reads = [0.0] * n
        self.throttled_writes = [0.0] * n

    @property
    def done(self) -> bool:
        """True once every minute of the trace is served."""
        return self.minute >= self.trace.minutes

    @property
    def now(self) -> datetime:
        """Virtual time: the start of the current minute."""
        return self.trace.start + timedelta(0, 60 * self.minute)  # (days, seconds): quicker than minutes=

    def time_of(self, minute: int) -> datetime:
        """Virtual time of the start of a minute."""
        return self.trace.start + timedelta(minutes=minute)

    @property
    def busy(self) -> bool:
        """True while an update or a mode switch is in progress (UPDATING)."""
        return self.pending is not None or self.pending_mode is not None

    def switch(self, mode: str, reads: int = 0, writes: int = 0) -> None:
        """UpdateTable with BillingMode: on-demand, or back to provisioned at (reads, writes), from the next minute."""
        if self.busy:
            self.rejected += 1
            raise TableBusy("Attempt to change a resource which is still in use: Table is being updated",
                            code="ResourceInUseException")
        if mode == self.billing:
            self.rejected += 1
            raise AwsError(f"The table is already in billing mode {mode}", code="ValidationException")
        if mode == PROVISIONED and (reads < 1 or writes < 1):
            self.rejected += 1
            raise AwsError("One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits "
                           "must both be specified when BillingMode is PROVISIONED", code="ValidationException")
        m = self.minute
        if mode == ON_DEMAND:
            recent = [k for k in self.switches_to_on_demand if m - k < MINUTES_PER_DAY]
            if len(recent) >= MAX_SWITCHES_TO_ON_DEMAND:
                self.refused += 1
                raise LimitExceeded("Subscriber limit exceeded: the table was switched to PAY_PER_REQUEST "
                                    f"{len(recent)} times in the last 24 hours", code="LimitExceededException")
            self.switches_to_on_demand.append(m)
        self.pending_mode = (mode, reads, writes)

    def update(self, reads: int, writes: int) -> None:
        """UpdateTable at the current minute, with DynamoDB's refusals; a refused update changes nothing."""
        if self.billing == ON_DEMAND:
            self.rejected += 1
            raise AwsError("One or more parameter values were invalid: Neither ReadCapacityUnits nor "
                           "WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                           code="ValidationException")
        if self.busy:
            self.rejected += 1
            raise TableBusy("Attempt to change a resource which is still in use: Table is being updated",
                            code="ResourceInUseException")
        if reads < 1 or writes < 1:
            self.rejected += 1
            raise AwsError(f"One or more parameter values were invalid: capacity units must be at least 1, "
                           f"got ReadCapacityUnits {reads}, WriteCapacityUnits {writes}", code="ValidationException")
        if (reads, writes) == (self.reads, self.writes):
            self.rejected += 1
            raise AwsError("The provisioned throughput for the table will not change. The requested value equals "
                           f"the current value. Current ReadCapacityUnits provisioned for the table: {self.reads}. "
                           f"Requested ReadCapacityUnits: {reads}. Current WriteCapacityUnits provisioned for the "
                           f"table: {self.writes}. Requested WriteCapacityUnits: {writes}.",
                           code="ValidationException")
        m = self.minute
        if reads < self.reads or writes < self.writes:
            if not self.rule.allowed(m):
                self.refused += 1
                raise LimitExceeded(self._limit_text(), code="LimitExceededException")
            self.rule.record(m)
        if reads > self.reads or writes > self.writes:
            self.last_increase = m
        self.pending = (reads, writes)

    def _limit_text(self) -> str:
        assert self.rule.last is not None, "only a decrease refused after accepted ones has a limit text"
        last = self.time_of(self.rule.last)
        nxt = last + timedelta(minutes=DECREASE_GAP)
        fmt = "%A, %B %d, %Y %I:%M:%S %p UTC"
        return ("Subscriber limit exceeded: Provisioned throughput decreases are limited within a given UTC day. "
                f"After the first {FREE_DECREASES} decreases, each subsequent decrease in the same UTC day can be "
                f"performed at most once every {DECREASE_GAP * 60} seconds. Number of decreases today: "
                f"{self.rule.count}. Last decrease at {last:{fmt}}. Next decrease can be made at {nxt:{fmt}}")

    def serve(self) -> None:
        """Serve the current minute's demand, record it, and move to the next minute."""
        m = self.minute
        trace = self.trace
        self.billing_modes[m] = self.billing
        if self.billing == ON_DEMAND:
            # every request is served and billed; nothing is provisioned (0 in the timeline)
            self.served_reads[m], self.served_writes[m] = trace.reads[m] * 60.0, trace.writes[m] * 60.0
        else:
            r, w = self.reads, self.writes
            self.provisioned_reads[m] = r
            self.provisioned_writes[m] = w
            self.served_reads[m], self.throttled_reads[m], self._burst_r = serve(r, self._burst_r, trace.reads[m])
            self.served_writes[m], self.throttled_writes[m], self._burst_w = serve(w, self._burst_w, trace.writes[m])
        self.minute = m + 1
        if self.pending_mode is not None:
            mode, reads, writes = self.pending_mode
            self.billing, self.pending_mode = mode, None
            if mode == PROVISIONED:
                self.reads, self.writes = reads, writes
                self._burst_r = self._burst_w = 0.0  # a switched table starts without burst credit
        if self.pending is not None:
            # an update issued during minute m is in force from minute m + 1
            self.reads, self.writes = self.pending
            self.pending = None
