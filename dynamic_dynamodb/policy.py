"""The scaling decision: pure functions of plain values (metrics, capacity, rules, memory, now).

Nothing here logs, reads a clock or talks to AWS. The order of work for one target:

1. per dimension, a proposal from the load (thresholds or granular scales, throttling,
   consecutive checks before a decrease), then the [min, max] limits;
2. for the target, the guards that may hold a change back: circuit breaker (everything),
   always-decrease-rw-together, maintenance windows and the decrease budget (decreases only).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import NamedTuple, Protocol

from mypy_extensions import mypyc_attr

from . import demand, forecast, schedule
from .capacity_mode import ModeMemory
from .demand import DemandState
from .forecast import ForecastState
from .frozen import ByFields, evolve
from .model import Capacity, Dim, Target, TargetStatus
from .reasons import HOLDS, SKIPS, Reason, most_important
from .rules import PERCENT, DimensionRules, Scale, TargetRules

FREE_DECREASES_PER_DAY = 4
DECREASE_SPACING = timedelta(hours=1)


# The values built for every dimension of every pass (Observed, DimMemory, Proposal, DimDecision)
# are named tuples: immutable like frozen dataclasses, and built some three times quicker.


class Observed(NamedTuple):
    """CloudWatch Sums over the lookback window for one dimension; None means no datapoint."""

    consumed_sum: float | None
    throttled_sum: float | None
    window_seconds: int
    # per-minute detail, oldest first: (minute, consumed units, throttled units)
    series: tuple[tuple[datetime, float, float], ...] = ()

    @property
    def consumed(self) -> float | None:
        """Consumed units per second, averaged over the window."""
        return None if self.consumed_sum is None else self.consumed_sum / self.window_seconds

    @property
    def throttled(self) -> float:
        """Throttle events in the window (0 without data)."""
        return self.throttled_sum or 0.0


@mypyc_attr(native_class=False)  # a plain class in a compiled build too: evolve() copies its __dict__
@dataclass(frozen=True)
class Memory:
    """What the daemon remembers about one target between passes (persisted in the state file)."""

    read_checks: int = 0
    write_checks: int = 0
    decrease_day: date | None = None  # UTC day of the decreases counted below
    decreases_today: int = 0  # decreases this process made on decrease_day
    last_decrease: datetime | None = None
    alarm: str | None = None  # the throughput alarm last notified: "high", "low" or None
    budget_notified: date | None = None  # UTC day we last said the decrease budget was spent
    reads_demand: DemandState | None = None  # history kept by scaling-policy: demand
    writes_demand: DemandState | None = None
    mode: ModeMemory | None = None  # capacity-mode switches of a table (kept on the table's memory)
    reads_forecast: ForecastState | None = None  # half-hour demand kept by scaling-policy: forecast
    writes_forecast: ForecastState | None = None
    # the last decision's reason code(s) and its UTC time (ISO-8601), shown by --status
    last_reason: str | None = None
    last_decided: str | None = None
    # pre-warm: the end of the peak the last warm-throughput request was for (none other before it)
    prewarm_until: datetime | None = None

    def checks(self, dim: Dim) -> int:
        """Consecutive qualifying checks before a decrease, for one dimension."""
        return self.read_checks if dim is Dim.READS else self.write_checks

    def with_checks(self, dim: Dim, value: int) -> Memory:
        """A copy with one dimension's counter set."""
        return evolve(self, read_checks=value) if dim is Dim.READS else evolve(self, write_checks=value)

    def dim(self, dim: Dim) -> DimMemory:
        """What the policies remember of one dimension."""
        if dim is Dim.READS:
            return DimMemory(self.read_checks, self.reads_demand, self.reads_forecast)
        return DimMemory(self.write_checks, self.writes_demand, self.writes_forecast)

    def with_dims(self, reads: DimMemory, writes: DimMemory) -> Memory:
        """A copy with both dimensions' memories set (what decide keeps after a pass)."""
        return evolve(self, read_checks=reads.checks, reads_demand=reads.demand, reads_forecast=reads.forecast,
                      write_checks=writes.checks, writes_demand=writes.demand, writes_forecast=writes.forecast)


class DimMemory:
    """What the scaling policies remember of one dimension between passes; each uses its own field.

    Built for every dimension of every pass and never changed once built: a plain class, which
    a compiled build makes native (built without an interpreted __init__, unlike a named tuple)."""

    def __init__(self, checks: int = 0, demand: DemandState | None = None,
                 forecast: ForecastState | None = None) -> None:
        self.checks = checks  # threshold: consecutive qualifying checks before a decrease
        self.demand = demand  # demand: the per-minute history and the burst estimate
        self.forecast = forecast  # forecast: the learned half-hour shape of demand

    def __repr__(self) -> str:
        return f"DimMemory(checks={self.checks!r}, demand={self.demand!r}, forecast={self.forecast!r})"


class DimDecision(NamedTuple):
    """The outcome for one dimension: a code from the closed set, and the reason a person can read."""

    dim: Dim
    current: int
    new: int
    consumed_pct: float | None
    reason: str
    code: Reason
    alarm: str | None = None  # the throughput alarm level of this dimension: "high", "low" or None

    @property
    def change(self) -> str:
        """'up', 'down' or '' (no change)."""
        return "up" if self.new > self.current else "down" if self.new < self.current else ""


@dataclass(frozen=True)
class Decision(ByFields):
    """The outcome for one table or GSI."""

    status: TargetStatus
    reads: DimDecision
    writes: DimDecision
    alarm: str | None = None  # a throughput alarm to notify now: "high" or "low"
    budget_exhausted: datetime | None = None  # set once a day when the budget first holds a decrease
    skipped: Reason | None = None  # why no decision could be made for this target (one of SKIPS)
    rules: TargetRules | None = None  # the rules decided with (None for a table DescribeTable did not describe)

    @property
    def code(self) -> Reason:
        """The one code for the target: the skip, else the most important code of a changed dimension, else of both."""
        if self.skipped is not None:
            return self.skipped
        r, w = self.reads, self.writes
        r_changed, w_changed = r.new != r.current, w.new != w.current
        if r_changed != w_changed:  # one dimension changed: its code
            return r.code if r_changed else w.code
        return most_important((r.code, w.code))

    @property
    def target(self) -> Target:
        """The table or GSI decided on."""
        return self.status.target

    @property
    def capacity(self) -> Capacity:
        """The capacity to provision."""
        return Capacity(self.reads.new, self.writes.new)

    @property
    def changed(self) -> bool:
        """True when an UpdateTable is needed (self.capacity != self.status.capacity, without building one)."""
        current = self.status.capacity
        return self.reads.new != current.reads or self.writes.new != current.writes

    @property
    def decreasing(self) -> bool:
        """True when the update lowers reads or writes (it spends a decrease)."""
        return self.reads.new < self.reads.current or self.writes.new < self.writes.current

    def without_decreases(self) -> Decision:
        """The same decision with its decreases held back."""
        held = self.capacity.increases_only(Capacity(self.reads.current, self.writes.current))
        return replace(self, reads=self.reads._replace(new=held.reads), writes=self.writes._replace(new=held.writes))

    def dims(self) -> tuple[DimDecision, DimDecision]:
        """Reads and writes."""
        return self.reads, self.writes

    @property
    def summary(self) -> str:
        """One line: consumed %, current, new and reason for both dimensions."""
        return "; ".join(_dim_summary(d) for d in self.dims())


def skipped(status: TargetStatus, code: Reason, reason: str, rules: TargetRules | None = None) -> Decision:
    """The decision for a target skipped before the policy ran: nothing changes, and the code says why."""
    assert code in SKIPS, code
    reads, writes = (DimDecision(dim, value, value, None, reason, code)
                     for dim, value in ((Dim.READS, status.capacity.reads), (Dim.WRITES, status.capacity.writes)))
    return Decision(status, reads, writes, skipped=code, rules=rules)


def retry_increases(changed: list[Decision]) -> list[Decision]:
    """After DynamoDB refused an update with a decrease in it: the update to send instead, its increases only.

    Empty when there is nothing to retry (no decrease to blame, or no increase left).
    """
    if not any(d.decreasing for d in changed):
        return []
    return [held for held in map(Decision.without_decreases, changed) if held.changed]


def _dim_summary(d: DimDecision) -> str:
    pct = "no data" if d.consumed_pct is None else f"{d.consumed_pct:.1f}%"
    arrow = f"{d.current} -> {d.new}" if d.new != d.current else f"{d.current}"
    return f"{d.dim.value} {pct} of {arrow} ({d.reason})"


# ---- arithmetic ------------------------------------------------------------------------


def increase(base: int, amount: float, unit: str) -> int:
    """Increase by percent (rounded up, so a 1-unit table can grow) or by units."""
    if unit == PERCENT:
        return base + math.ceil(base * amount / 100.0)
    return base + int(amount)


def decrease(current: int, amount: float, unit: str) -> int:
    """Decrease by percent (rounded down; above 100 means 100) or by units; may go below 1 before the limits."""
    if unit == PERCENT:
        return current - math.floor(current * min(amount, 100.0) / 100.0)
    return current - int(amount)


def clamp(value: int, rules: DimensionRules) -> int:
    """Bring a value inside [min, max]; min defaults to DynamoDB's floor of 1."""
    value = max(value, rules.floor)
    if rules.max_provisioned is not None:
        value = min(value, rules.max_provisioned)
    return value


def scale_up_amount(scale: Scale | None, value: float) -> float:
    """Granular increase: the amount of the largest threshold <= value (0 below all)."""
    amount = 0.0
    scale = scale or {}
    for threshold in sorted(scale):
        if value < threshold:
            break
        amount = scale[threshold]
    return amount


def scale_down_amount(scale: Scale | None, value: float) -> float:
    """Granular decrease: the amount of the smallest threshold >= value (0 above all).

    A value equal to a threshold takes that threshold's amount, as 2.5.1's scale_reader_decrease did.
    """
    scale = scale or {}
    for threshold in sorted(scale):
        if value <= threshold:
            return scale[threshold]
    return 0.0


# ---- one dimension ---------------------------------------------------------------------


def propose(cur: int, obs: Observed, r: DimensionRules, checks: int) -> tuple[int, Reason, str, int]:
    """Proposal from the load for one dimension: (new value, code, reason, consecutive-check counter)."""
    if not r.enabled:
        return cur, Reason.DISABLED, "autoscaling disabled", 0
    consumed = obs.consumed
    if consumed is None:
        return cur, Reason.NO_DATA, "no data", checks
    pct = consumed / cur * 100.0
    if r.checks_reset_percent and pct >= r.checks_reset_percent:
        checks = 0
    if r.up_scaling:
        up, code, why = _increase_candidate(cur, obs, pct, r)
        if up > cur:
            return up, code, why, 0
    down_wanted, down_why = _wants_decrease(pct, r)
    if not down_wanted:
        return cur, Reason.WITHIN_BAND, down_why, 0
    if not r.down_scaling:
        return cur, Reason.DOWN_DISABLED, "down-scaling disabled", 0
    if pct == 0 and not r.allow_scaling_down_on_0_percent:
        return cur, Reason.ZERO_PERCENT, "consumed 0%, not scaling down", checks
    if obs.throttled > 0:
        return cur, Reason.THROTTLED_NO_DECREASE, "throttled, not scaling down", 0
    amount = scale_down_amount(r.decrease_consumed_scale, pct) if r.decrease_consumed_scale else (
        r.decrease_consumed_with if r.decrease_consumed_with is not None else r.decrease_with)
    unit = r.decrease_consumed_unit or r.decrease_unit
    # never below what is consumed now: that would throttle at once
    proposal = max(decrease(cur, amount, unit), math.ceil(consumed))
    if proposal >= cur:
        return cur, Reason.DECREASE_TOO_SMALL, down_why, checks
    checks += 1
    if checks < r.checks_before_scale_down:
        return cur, Reason.CHECKS_PENDING, f"{down_why}, check {checks}/{r.checks_before_scale_down}", checks
    return proposal, Reason.LOW_LOAD, down_why, checks


def _wants_decrease(pct: float, r: DimensionRules) -> tuple[bool, str]:
    """Whether the load asks for a decrease, and why (or why not)."""
    if r.decrease_consumed_scale:
        if scale_down_amount(r.decrease_consumed_scale, pct) > 0:
            return True, "granular down-scale"
        return False, "within granular scale"
    if pct <= r.lower_threshold:
        return True, f"<= lower threshold {r.lower_threshold:g}%"
    return False, "within thresholds"


def _increase_candidate(cur: int, obs: Observed, pct: float, r: DimensionRules) -> tuple[int, Reason, str]:
    """The largest increase any up-scaling rule asks for, its code and its reason."""
    consumed = obs.consumed or 0.0
    # when the table serves more than provisioned (burst), grow from what it serves
    base = max(cur, math.ceil(consumed))
    candidates: list[tuple[int, Reason, str]] = []
    throttled_per_s = obs.throttled / obs.window_seconds
    if r.increase_throttled_by_provisioned_scale:
        tp = throttled_per_s / cur * 100.0
        amount = scale_up_amount(r.increase_throttled_by_provisioned_scale, tp)
        if amount:
            unit = r.increase_throttled_by_provisioned_unit or r.increase_unit
            candidates.append((increase(base, amount, unit), Reason.THROTTLED, f"throttled {tp:.1f}% of provisioned"))
    if r.increase_throttled_by_consumed_scale and consumed > 0:
        tc = obs.throttled / (consumed * obs.window_seconds) * 100.0
        amount = scale_up_amount(r.increase_throttled_by_consumed_scale, tc)
        if amount:
            unit = r.increase_throttled_by_consumed_unit or r.increase_unit
            candidates.append((increase(base, amount, unit), Reason.THROTTLED, f"throttled {tc:.1f}% of consumed"))
    consumed_unit = r.increase_consumed_unit or r.increase_unit
    if r.increase_consumed_scale:
        amount = scale_up_amount(r.increase_consumed_scale, pct)
        if amount:
            candidates.append((increase(base, amount, consumed_unit), Reason.HIGH_LOAD, "granular up-scale"))
    elif r.upper_threshold and pct >= r.upper_threshold:
        amount = r.increase_consumed_with if r.increase_consumed_with is not None else r.increase_with
        candidates.append((increase(base, amount, consumed_unit), Reason.HIGH_LOAD,
                           f">= upper threshold {r.upper_threshold:g}%"))
    if r.throttled_upper_threshold and obs.throttled > r.throttled_upper_threshold:
        candidates.append((increase(base, r.increase_with, r.increase_unit), Reason.THROTTLED,
                           f"{obs.throttled:g} throttle events > {r.throttled_upper_threshold:g}"))
    if not candidates:
        return cur, Reason.WITHIN_BAND, ""
    return max(candidates, key=lambda c: c[0])


# ---- one protocol for every scaling policy -------------------------------------------------


class Proposal:
    """What a scaling policy wants for one dimension, before the guards and the limits (a plain
    class, as DimMemory is)."""

    def __init__(self, new: int, code: Reason, reason: str, memory: DimMemory) -> None:
        self.new = new
        self.code = code
        self.reason = reason
        self.memory = memory  # the dimension's memory after this proposal

    def __repr__(self) -> str:
        return f"Proposal(new={self.new!r}, code={self.code!r}, reason={self.reason!r}, memory={self.memory!r})"


class ScalingPolicy(Protocol):
    """A `scaling-policy:` value: proposes from the load; the guards and the limits come after it."""

    name: str
    keeps_history: bool  # True when it folds a per-minute history: the queries reach back over the interval

    def propose(self, cur: int, obs: Observed, r: DimensionRules, rules: TargetRules,
                memory: DimMemory, now: datetime, spaced: bool = False) -> Proposal:
        """The proposal for one dimension at `cur` units; `spaced`: decreases are an hour apart now."""


class ThresholdPolicy:
    """`scaling-policy: threshold`: 1.6.0's thresholds, granular scales and consecutive checks."""

    name = "threshold"
    keeps_history = False

    def propose(self, cur: int, obs: Observed, r: DimensionRules, rules: TargetRules,
                memory: DimMemory, now: datetime, spaced: bool = False) -> Proposal:
        """Thresholds and throttling; a decrease only after its consecutive checks."""
        new, code, reason, checks = propose(cur, obs, r, memory.checks)
        return Proposal(new, code, reason, DimMemory(checks, memory.demand, memory.forecast))


class DemandPolicy:
    """`scaling-policy: demand`: provision for the demand, burst in mind (the maths are in demand.py)."""

    name = "demand"
    keeps_history = True

    def propose(self, cur: int, obs: Observed, r: DimensionRules, rules: TargetRules,
                memory: DimMemory, now: datetime, spaced: bool = False) -> Proposal:
        """demand.propose over the dimension's history."""
        new, code, reason, state = self.proposal(cur, obs, rules, memory, spaced, now)
        return Proposal(new, code, reason, DimMemory(memory.checks, state, memory.forecast))

    @staticmethod
    def proposal(cur: int, obs: Observed, rules: TargetRules, memory: DimMemory,
                 spaced: bool = False, now: datetime | None = None) -> tuple[int, Reason, str, DemandState]:
        """(new, code, reason, demand state) of demand.propose."""
        before = memory.demand or DemandState()
        new, reason, state = demand.propose(cur, obs.series, rules.target_utilization, before, spaced, now)
        return new, _demand_code(cur, new, obs, before, state, rules.target_utilization, now), reason, state


class ForecastPolicy:
    """`scaling-policy: forecast`: the demand policy, ahead of the rises its learned daily shape expects."""

    name = "forecast"
    keeps_history = True

    def propose(self, cur: int, obs: Observed, r: DimensionRules, rules: TargetRules,
                memory: DimMemory, now: datetime, spaced: bool = False) -> Proposal:
        """The demand policy's proposal, then forecast.adjust with the half-hour shape of the same minutes."""
        proposed, code, proposed_reason, state = DemandPolicy.proposal(cur, obs, rules, memory, spaced, now)
        learned = forecast.fold(memory.forecast or ForecastState(), obs.series)
        new, reason = proposed, proposed_reason
        if state.demand:
            recent = state.demand[-demand.UP_LOOKBACK:]
            new, reason = forecast.adjust(cur, proposed, proposed_reason, learned, now,
                                          rules.target_utilization / 100.0, sum(recent) / len(recent))
            if (new, reason) != (proposed, proposed_reason):
                code = Reason.FORECAST_UP if new > cur else Reason.FORECAST_HOLD if new >= cur > proposed else code
        return Proposal(new, code, reason, DimMemory(memory.checks, state, learned))


# The registry of `scaling-policy:` values; the first is the default.
POLICIES: dict[str, ScalingPolicy] = {p.name: p for p in (ThresholdPolicy(), DemandPolicy(), ForecastPolicy())}
SCALING_POLICIES = tuple(POLICIES)


def decide_with(scaling: ScalingPolicy, dim: Dim, cur: int, obs: Observed, r: DimensionRules, rules: TargetRules,
                memory: DimMemory, now: datetime | None = None, spaced: bool = False) -> tuple[DimDecision, DimMemory]:
    """Any policy's proposal for one dimension, then the switches and the [min, max] limits."""
    p = scaling.propose(cur, obs, r, rules, memory, now if now is not None else datetime.min, spaced)
    new, code, reason = _switched(cur, p, r)
    return _limited(dim, cur, obs, r, new, code, reason), p.memory


def decide_dimension(dim: Dim, cur: int, obs: Observed, r: DimensionRules, checks: int) -> tuple[DimDecision, int]:
    """Threshold policy: proposal plus limits for one dimension."""
    d, memory = decide_with(POLICIES["threshold"], dim, cur, obs, r, TargetRules(), DimMemory(checks=checks))
    return d, memory.checks


def _switched(cur: int, p: Proposal, r: DimensionRules) -> tuple[int, Reason, str]:
    """The proposal as enable-*-autoscaling, -up-scaling and -down-scaling allow it."""
    if not r.enabled:
        return cur, Reason.DISABLED, "autoscaling disabled"
    if p.new > cur and not r.up_scaling:
        return cur, Reason.UP_DISABLED, "up-scaling disabled"
    if p.new < cur and not r.down_scaling:
        return cur, Reason.DOWN_DISABLED, "down-scaling disabled"
    return p.new, p.code, p.reason


def _demand_code(cur: int, new: int, obs: Observed, before: DemandState, after: DemandState,
                 target_pct: float, now: datetime | None) -> Reason:
    """The code of a demand proposal, from the values it was made of."""
    if new > cur:
        # the demand policy raises for throttling in the newest minute it folded in
        return Reason.THROTTLED if obs.series and obs.series[-1][2] > 0 else Reason.DEMAND_UP
    if new < cur:
        return Reason.DEMAND_DOWN
    if not after.demand:
        return Reason.NO_DATA
    interval = demand.new_minutes(before.last_minute, obs.series)
    if not interval:
        return Reason.NO_NEW_DATA
    # demand.propose kept the capacity for this very reason, or for none
    return Reason.BURST_CARRIED if demand.carried(after, cur, target_pct, interval, now) else Reason.WITHIN_BAND


def _limited(dim: Dim, cur: int, obs: Observed, r: DimensionRules, new: int, code: Reason,
             reason: str) -> DimDecision:
    """The proposal brought inside [min, max], with the code and the reason saying so."""
    if r.enabled:
        limited = clamp(new, r)
        if limited != new:
            raised = limited > new
            # the bound that set the value: the max wins over a min above it (schedules may cross)
            side = "max" if r.max_provisioned == limited and limited < max(new, r.floor) else "min"
            if new != cur:
                reason = f"{reason}, limited to {side} {limited}"
                code = Reason.AT_MIN if raised else Reason.AT_MAX
            else:  # the load asked for nothing, but the capacity is outside the limits
                reason = f"outside limits, {side} is {limited}"
                code = Reason.BELOW_MIN if raised else Reason.ABOVE_MAX
            new = limited
    consumed = obs.consumed
    pct = None if consumed is None else consumed / cur * 100.0
    return DimDecision(dim, cur, new, pct, reason, code)


# ---- the decrease budget ----------------------------------------------------------------


def decreases_spent(status: TargetStatus, memory: Memory, now: datetime) -> tuple[int, datetime | None]:
    """Decreases made this UTC day and the last one, from DescribeTable and our own records."""
    today = now.date()
    count, last = 0, None
    if status.last_decrease is None or status.last_decrease.date() == today:
        count, last = status.decreases_today, status.last_decrease
    if memory.decrease_day == today and memory.last_decrease is not None:
        count = max(count, memory.decreases_today)
        last = memory.last_decrease if last is None else max(last, memory.last_decrease)
    return count, last


def decrease_allowed(status: TargetStatus, memory: Memory, now: datetime, reserved: int = 0,
                     keep_for: datetime | None = None) -> bool:
    """True when DynamoDB would accept a decrease now, `reserved` free ones stay unspent, and one
    stays possible at `keep_for` (the end of a scheduled floor, for which one of the `reserved` is kept)."""
    count, last = decreases_spent(status, memory, now)
    if count < FREE_DECREASES_PER_DAY - reserved:
        return True
    if last is None:
        # decreases reported without their time: only a free one is sure to be accepted
        allowed = count < FREE_DECREASES_PER_DAY
    else:
        allowed = now - last >= DECREASE_SPACING
    # past the free ones, a decrease within the hour before `keep_for` would leave none for then
    return allowed and (keep_for is None or now + DECREASE_SPACING <= keep_for)


def record_decrease(memory: Memory, now: datetime) -> Memory:
    """Memory after a decrease DynamoDB accepted at `now`."""
    today = now.date()
    count = memory.decreases_today + 1 if memory.decrease_day == today else 1
    return evolve(memory, decrease_day=today, decreases_today=count, last_decrease=now)


def next_decrease_at(status: TargetStatus, memory: Memory, now: datetime, reserved: int = 0,
                     keep_for: datetime | None = None) -> datetime:
    """The earliest time a decrease is allowed (now if it already is)."""
    if decrease_allowed(status, memory, now, reserved, keep_for):
        return now
    return _next_decrease(status, memory, now, keep_for)


def _next_decrease(status: TargetStatus, memory: Memory, now: datetime, keep_for: datetime | None = None) -> datetime:
    """next_decrease_at when a decrease is not allowed now."""
    _, last = decreases_spent(status, memory, now)
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)
    at = min(last + DECREASE_SPACING, tomorrow) if last else tomorrow
    if keep_for is not None and max(at, now) + DECREASE_SPACING > keep_for:
        at = max(at, keep_for)  # the decrease kept for the floor's end is the next one
    return at


# ---- the target ---------------------------------------------------------------------------


def in_maintenance_window(rules: TargetRules, now: datetime) -> bool:
    """True when changes may happen now (no windows configured means always)."""
    if rules.maintenance_windows is None:
        return True
    return any(w.contains(now.time()) for w in rules.maintenance_windows)


def alarm_level(d: DimDecision, r: DimensionRules) -> str | None:
    """'high' when the dimension is at/above its upper alarm threshold, 'low' below its lower one."""
    if d.consumed_pct is None:
        return None
    if r.upper_alarm_threshold and d.consumed_pct >= r.upper_alarm_threshold:
        return "high"
    if r.lower_alarm_threshold and d.consumed_pct < r.lower_alarm_threshold:
        return "low"
    return None


def throughput_alarm(decisions: tuple[DimDecision, DimDecision], rules: TargetRules) -> str | None:
    """'high' when a dimension is at/above its upper alarm threshold, else 'low' when one is below its lower one."""
    return _target_alarm([alarm_level(d, rules.dim(d.dim)) for d in decisions])


def _target_alarm(levels: list[str | None]) -> str | None:
    """The target's alarm from its dimensions' levels: 'high' before 'low'."""
    return "high" if "high" in levels else "low" if "low" in levels else None


def _hold(d: DimDecision, code: Reason, why: str) -> DimDecision:
    """The dimension kept at its current value by a guard; the guard's code replaces the load's."""
    assert code in HOLDS, code
    return DimDecision(d.dim, d.current, d.current, d.consumed_pct, f"{d.reason}; {why}", code, d.alarm)


def decide(status: TargetStatus, reads: Observed, writes: Observed, rules: TargetRules, memory: Memory,
           now: datetime, breaker_closed: bool = True) -> tuple[Decision, Memory]:
    """The decision for one table or GSI, and the memory to keep for the next pass."""
    cap = status.capacity
    rules, scheduled = schedule.effective_rules(rules, now)
    scaling = POLICIES[rules.scaling_policy]
    spent, last_decrease = decreases_spent(status, memory, now)
    reserved, keep_for = reserve(rules, now, spent)
    # the day's free decreases spent: the next decrease is an hour after the last (policies with a history plan for it)
    spaced = scaling.keeps_history and spent >= FREE_DECREASES_PER_DAY - reserved
    dr, mr = decide_with(scaling, Dim.READS, cap.reads, reads, rules.reads, rules, memory.dim(Dim.READS), now, spaced)
    dw, mw = decide_with(scaling, Dim.WRITES, cap.writes, writes, rules.writes, rules, memory.dim(Dim.WRITES), now,
                         spaced)
    memory = memory.with_dims(mr, mw)
    if scheduled:
        dr, dw = _schedule_note(dr, scheduled), _schedule_note(dw, scheduled)

    level_r, level_w = alarm_level(dr, rules.reads), alarm_level(dw, rules.writes)
    if level_r is not None:
        dr = dr._replace(alarm=level_r)
    if level_w is not None:
        dw = dw._replace(alarm=level_w)
    alarm = _target_alarm([level_r, level_w])
    if dr.consumed_pct is None and dw.consumed_pct is None:
        alarm = memory.alarm  # a pass without data neither raises nor clears an alarm
    notify = alarm if alarm != memory.alarm else None
    if alarm != memory.alarm:
        memory = evolve(memory, alarm=alarm)

    if not breaker_closed:
        dr, dw = (_hold(d, Reason.BREAKER_OPEN, "circuit breaker open") if d.change else d for d in (dr, dw))
        return Decision(status, dr, dw, notify, rules=rules), memory

    if rules.always_decrease_rw_together:
        dr, dw = _decrease_together(dr, dw, rules)
    if (dr.new < dr.current or dw.new < dw.current) and not in_maintenance_window(rules, now):
        dr, dw = (_hold(d, Reason.OUTSIDE_WINDOW, "outside maintenance windows") if d.change == "down" else d
                  for d in (dr, dw))
    if dr.new < dr.current or dw.new < dw.current:
        if not decrease_allowed(status, memory, now, reserved, keep_for):
            at = _next_decrease(status, memory, now, keep_for)  # next_decrease_at without a second decrease_allowed()
            # {at:%H:%M} without strftime, a pass's slowest call when the budget is spent
            why = f"decrease budget spent, next at {at.hour:02d}:{at.minute:02d} UTC"
            if dr.new < dr.current:
                dr = _hold(dr, Reason.BUDGET_SPENT, why)
            if dw.new < dw.current:
                dw = _hold(dw, Reason.BUDGET_SPENT, why)
            if memory.budget_notified != now.date():
                memory = evolve(memory, budget_notified=now.date())
                return Decision(status, dr, dw, notify, budget_exhausted=at, rules=rules), memory
        elif spaced and last_decrease is not None:
            wait = _deeper_decrease_in(dr, dw, rules, memory, now - last_decrease - DECREASE_SPACING)
            if wait is not None:
                why = f"a deeper decrease in {wait} min saves more over its hour"
                if dr.new < dr.current:
                    dr = _hold(dr, Reason.DECREASE_TIMED, why)
                if dw.new < dw.current:
                    dw = _hold(dw, Reason.DECREASE_TIMED, why)
    # a decrease that will really be sent restarts its consecutive-check count
    if dr.new < dr.current:
        memory = memory.with_checks(Dim.READS, 0)
    if dw.new < dw.current:
        memory = memory.with_checks(Dim.WRITES, 0)
    return Decision(status, dr, dw, notify, rules=rules), memory


# how long an hourly decrease may wait for a deeper one: until a spike that came just before the
# last ten minutes (which it never goes below) has left the half hour of history
DECREASE_WAIT_MINUTES = demand.HISTORY_MINUTES - demand.RECENT_MINUTES
UNIT_PRICE = {Dim.READS: 1.0, Dim.WRITES: 5.0}  # a provisioned write unit costs five read units, in every region


def _deeper_decrease_in(dr: DimDecision, dw: DimDecision, rules: TargetRules, memory: Memory,
                        waited: timedelta) -> int | None:
    """Minutes until a decrease that saves more per hour than this one (None: this one goes now).

    Past the free decreases the next one comes an hour after this one. When a spike is about
    to leave the half hour of history, a decrease a few minutes later may go deeper, and it
    is worth waiting for when what it saves over its hour, spread over the wait too, is more
    than what this one saves. The coming minutes are taken to ask what the newest ones asked
    at most, so a rise makes the later decrease shallower, and the wait shorter or none."""
    left = DECREASE_WAIT_MINUTES - int(waited.total_seconds() // 60)
    if left <= 0:
        return None
    dims = [(d, memory.dim(d.dim).demand if rules.dim(d.dim).enabled and rules.dim(d.dim).down_scaling else None)
            for d in (dr, dw)]
    candidates = sorted({k for _, state in dims if state is not None for k in demand.leaving(state, left)})
    if not candidates:
        return None

    def saved(minutes: int) -> float:
        total = 0.0
        for d, state in dims:
            new = d.new if minutes == 0 or state is None else min(
                d.current, clamp(demand.later(state, d.current, rules.target_utilization, minutes), rules.dim(d.dim)))
            total += UNIT_PRICE[d.dim] * (d.current - new)
        return total

    per_hour, sooner = max((saved(k) * 60.0 / (60.0 + k), -k) for k in candidates)  # a tie: the sooner
    return -sooner if per_hour > saved(0) else None


class Reserve(NamedTuple):
    """What the decrease budget keeps back for a target (the planner's and --status's view)."""

    free: int  # free decreases of the day kept unspent: the configured ones, one more for a floor's end
    until: datetime | None  # the end of a scheduled floor later this UTC day, a decrease kept for it


def reserve(rules: TargetRules, now: datetime, spent: int = 0) -> Reserve:
    """The target's Reserve at `now`, `spent` decreases into the day. The schedules are looked at
    only once the free decreases a floor's end would keep one of are nearly spent: before that
    the reserve cannot matter, and a pass need not work out the floor's end."""
    free = rules.reserved_decreases
    if not rules.schedules or spent < FREE_DECREASES_PER_DAY - free - 1:
        return Reserve(free, None)
    end = schedule.next_floor_end(rules.schedules, now)
    if end is None or end.date() != now.date():
        return Reserve(free, None)
    return Reserve(min(free + 1, FREE_DECREASES_PER_DAY - 1), end)


def _schedule_note(d: DimDecision, scheduled: tuple) -> DimDecision:
    """A decision held at a limit says which schedule set it."""
    if "limit" not in d.reason:
        return d
    return d._replace(reason=f"{d.reason}, {schedule.describe(scheduled)}")


def _decrease_together(dr: DimDecision, dw: DimDecision, rules: TargetRules) -> tuple[DimDecision, DimDecision]:
    """A decrease waits until the other dimension also decreases or sits at its minimum."""
    def ready(d: DimDecision) -> bool:
        return d.change == "down" or d.current <= rules.dim(d.dim).floor

    if dr.change == "down" and not ready(dw):
        dr = _hold(dr, Reason.WAITING_FOR_PARTNER, "waiting for writes to decrease too")
    if dw.change == "down" and not ready(dr):
        dw = _hold(dw, Reason.WAITING_FOR_PARTNER, "waiting for reads to decrease too")
    return dr, dw
