"""pre-warm: raise a table's or GSI's warm throughput ahead of a known peak.

Warm throughput is what a table or GSI can serve at once, in units per second; DynamoDB
raises it by itself as usage grows and never lowers it, and UpdateTable's WarmThroughput
raises it ahead of time (a billed, one-time request). Pure functions of plain values: the
loop applies what `plan` returns. The rules, each one sentence:

1. A known peak is a schedule whose min comes into force within the next lead-minutes
   (at least MIN_AHEAD_MINUTES; for an on-demand target, also one in force), or, with
   scaling-policy forecast, the highest demand the forecast expects within the next
   FORECAST_AHEAD_MINUTES, while it has been right.
2. The peak needs the schedule's min, or the forecast's expected demand at
   target-utilization, in units per second, never more than max-provisioned-* when one is set.
3. Warm throughput is only raised, and only where its known value is below that need; an
   unknown one (an endpoint without warm throughput) is left alone.
4. At most one request per table or GSI and peak: after one (accepted or refused), the
   next waits until that peak has ended.
5. An on-demand table or GSI provisions nothing: a schedule's min is the units per second its
   peak needs, and only schedules announce its peaks (the forecast is learnt by the scaling pass).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import forecast, schedule
from .forecast import ForecastState
from .model import Dim, Target, WarmThroughput
from .notifications import Message
from .reasons import Reason
from .rules import TargetRules

MIN_AHEAD_MINUTES = 10  # a schedule with a shorter lead-minutes is still pre-warmed this long before
FORECAST_AHEAD_MINUTES = 60  # how far ahead the forecast is asked for a peak


@dataclass(frozen=True)
class Peak:
    """What a coming peak needs, in units per second (None: nothing for that dimension)."""

    reads: int | None
    writes: int | None
    until: datetime  # when it ends
    source: str  # "schedule sales", "forecast"

    def need(self, dim: Dim) -> int | None:
        """The need of one dimension."""
        return self.reads if dim is Dim.READS else self.writes


@dataclass(frozen=True)
class PreWarm:
    """What to do about a target's warm throughput, and why."""

    code: Reason
    reason: str
    wanted: WarmThroughput | None = None  # the values to ask for; a None field is left as it is
    until: datetime | None = None  # the peak's end: no other request for the target before it


def _capped(need: int | None, ceiling: int | None) -> int | None:
    if need is None or need < 1:
        return None
    return min(need, ceiling) if ceiling else need


def _higher(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def scheduled_peak(rules: TargetRules, now: datetime, in_force_too: bool = False) -> Peak | None:
    """Rule 1 and 2 for schedules: the mins of the schedules coming into force soon, at their start.

    `in_force_too`: also those already in force (an on-demand target, whose warm throughput
    no capacity floor raises: a daemon started during the peak still pre-warms for it).
    """
    reads: int | None = None
    writes: int | None = None
    until: datetime | None = None
    names: list[str] = []
    for s in rules.schedules:
        if s.min_reads is None and s.min_writes is None:
            continue
        ahead = timedelta(minutes=max(s.lead_minutes, MIN_AHEAD_MINUTES))
        for start, end in schedule.intervals(s, now, 1 if in_force_too else 0, 1):
            # in force from `start` (the lead included); a provisioned target's floor raises it once in force
            known = now < end if in_force_too else now < start and not schedule.is_in_force(s, now)
            if not (known and start <= now + ahead):
                continue
            at_start, _ = schedule.effective_rules(rules, max(start, now))  # the max in force then
            reads = _higher(reads, _capped(s.min_reads, at_start.reads.max_provisioned))
            writes = _higher(writes, _capped(s.min_writes, at_start.writes.max_provisioned))
            until = end if until is None else max(until, end)
            names.append(s.name)
    if until is None or (reads is None and writes is None):
        return None
    return Peak(reads, writes, until, f"schedule {', '.join(dict.fromkeys(names))}")


def _forecast_need(state: ForecastState | None, now: datetime, target: float,
                   ceiling: int | None) -> tuple[int | None, datetime | None]:
    """One dimension's need by the forecast (rules 1 and 2), and the end of the half hour it peaks in."""
    if state is None or not forecast.trusted(state):
        return None, None
    peak = forecast.expected_peak(state, now, FORECAST_AHEAD_MINUTES)
    if peak <= 0:
        return None, None
    first = forecast.slot_of(now)
    last = forecast.slot_of(now + timedelta(minutes=FORECAST_AHEAD_MINUTES))
    slot = next((k for k in range(first, last + 1) if forecast.expected(state, k) >= peak), last)
    ends = forecast.EPOCH + timedelta(minutes=(slot + 1) * forecast.SLOT_MINUTES)
    return _capped(math.ceil(peak / target), ceiling), ends


def forecast_peak(rules: TargetRules, reads: ForecastState | None, writes: ForecastState | None,
                  now: datetime) -> Peak | None:
    """Rule 1 and 2 for scaling-policy forecast: the expected peak of the next hour at the target utilisation."""
    if rules.scaling_policy != "forecast":
        return None
    target = rules.target_utilization / 100.0
    need_r, end_r = _forecast_need(reads, now, target, rules.reads.max_provisioned)
    need_w, end_w = _forecast_need(writes, now, target, rules.writes.max_provisioned)
    ends = [t for t, need in ((end_r, need_r), (end_w, need_w)) if t is not None and need is not None]
    if not ends:
        return None
    return Peak(need_r, need_w, max(ends), "forecast")


def coming_peak(rules: TargetRules, reads: ForecastState | None, writes: ForecastState | None,
                now: datetime, on_demand: bool = False) -> Peak | None:
    """The peak a schedule or the forecast announces; both: the higher need of each dimension."""
    peaks = [p for p in (scheduled_peak(rules, now, in_force_too=on_demand), forecast_peak(rules, reads, writes, now))
             if p is not None]
    if len(peaks) < 2:
        return peaks[0] if peaks else None
    a, b = peaks
    return Peak(_higher(a.reads, b.reads), _higher(a.writes, b.writes), max(a.until, b.until),
                f"{a.source} and {b.source}")


def plan(warm: WarmThroughput | None, rules: TargetRules, reads: ForecastState | None,
         writes: ForecastState | None, asked_until: datetime | None, now: datetime,
         on_demand: bool = False) -> PreWarm:
    """The warm throughput to ask for now (rules 1 to 5), or None with the reason there is none.

    `warm`: what DescribeTable reports (None: nothing); `asked_until`: the end of the peak the
    last request was for (the target's memory); `on_demand`: a PAY_PER_REQUEST target, whose
    forecast states (learnt while it was provisioned, if ever) are stale and not asked."""
    if on_demand:
        reads = writes = None
    peak = coming_peak(rules, reads, writes, now, on_demand)
    if peak is None:
        return PreWarm(Reason.NO_PEAK, "no known peak ahead")
    if warm is None or (warm.reads is None and warm.writes is None):
        return PreWarm(Reason.WARM_UNKNOWN, "the endpoint reports no warm throughput")
    if warm.status == "UPDATING":
        return PreWarm(Reason.WARM_UPDATING, "a raise of the warm throughput is in progress")
    if asked_until is not None and now < asked_until:
        return PreWarm(Reason.PRE_WARM_DONE, f"already asked for the peak ending {asked_until:%Y-%m-%d %H:%M} UTC")
    current = {Dim.READS: warm.reads, Dim.WRITES: warm.writes}
    wanted = {dim: need if (need := peak.need(dim)) is not None and (cur := current[dim]) is not None
              and need > cur else None for dim in Dim}
    if all(v is None for v in wanted.values()):
        return PreWarm(Reason.WARM_ENOUGH, f"warm throughput {_pair(warm.reads, warm.writes)} covers the "
                                           f"{peak.source} peak ({_pair(peak.reads, peak.writes)})")
    return PreWarm(Reason.PRE_WARMED,
                   f"{peak.source} needs {_pair(peak.reads, peak.writes)} units/s, warm throughput is "
                   f"{_pair(warm.reads, warm.writes)}", WarmThroughput(wanted[Dim.READS], wanted[Dim.WRITES]),
                   peak.until)


def _pair(reads: int | None, writes: int | None) -> str:
    """reads/writes as `--status` shows them, `-` for unknown."""
    return f"{'-' if reads is None else reads}/{'-' if writes is None else writes}"


def shown(warm: WarmThroughput | None) -> str:
    """A warm throughput as the WARM column of --status shows it: R/W, or - when unknown."""
    return "-" if warm is None else _pair(warm.reads, warm.writes)


def message(target: Target, plan: PreWarm, rules: TargetRules) -> Message | None:
    """After an accepted pre-warm: an SNS message for the scale-up type, when the rules ask for those."""
    if not rules.sns_topic_arn or "scale-up" not in rules.sns_message_types or plan.wanted is None:
        return None
    what = f"GSI {target.index}" if target.index else f"table {target.table}"
    return Message(rules.sns_topic_arn, f"Pre-warmed {what}",
                   f"{target}: warm throughput raised to {shown(plan.wanted)} units/s (reads/writes): "
                   f"{plan.reason}.\n", target)
