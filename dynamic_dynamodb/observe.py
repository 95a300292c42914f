"""What a pass asks CloudWatch about one target, and what the answers tell the policy.

Pure, like the policy it feeds: the series a decision needs over the target's lookback
window, the `Observed` values made of their datapoints, and the memory a decision leaves.
It runs for every target of every pass, so it is among the modules a compiled build compiles.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from . import throttle_causes
from .frozen import evolve
from .model import (
    CONSUMED_METRIC,
    THROTTLE_CAUSE_METRIC,
    THROTTLE_CAUSES,
    THROTTLE_METRIC,
    Datapoints,
    Dim,
    MetricQuery,
    Target,
)
from .policy import POLICIES, Decision, Memory, Observed
from .rules import TargetRules

CLOUDWATCH_DELAY_MINUTES = 3  # a minute's datapoint is usually published within two or three

# the metrics of queries(), in its order (built once, not per target and pass)
TOTALS = tuple(metric[dim] for metric in (CONSUMED_METRIC, THROTTLE_METRIC) for dim in (Dim.READS, Dim.WRITES))
ALL_SERIES = TOTALS + tuple(THROTTLE_CAUSE_METRIC[dim][cause]
                            for dim in (Dim.READS, Dim.WRITES) for cause in THROTTLE_CAUSES)

_windows: dict[tuple[int, int, str, int], tuple[timedelta, timedelta]] = {}  # a handful of rule sets


def queries(target: Target, rules: TargetRules, now: datetime, interval: int = 60,
            causes: bool = True) -> tuple[MetricQuery, ...]:
    """The series a decision needs, over the target's lookback window: four, then the throttles by cause."""
    end_minute = now.replace(second=0, microsecond=0)
    back, period = window(rules.lookback_window_start, rules.lookback_period, rules.scaling_policy, interval)
    start = end_minute - back
    end = start + period
    return tuple([MetricQuery(target, metric, start, end, 60) for metric in (ALL_SERIES if causes else TOTALS)])


def window(window_start: int, lookback_period: int, scaling_policy: str, interval: int) -> tuple[timedelta, timedelta]:
    """(how far before the minute the window starts, its length) for queries() (kept per rule set)."""
    key = (window_start, lookback_period, scaling_policy, interval)
    found = _windows.get(key)
    if found is None:
        start = -timedelta(minutes=window_start)
        end = start + timedelta(minutes=lookback_period)
        if POLICIES[scaling_policy].keeps_history:
            # a policy that keeps a per-minute history: reach back over the whole interval
            # since the last pass, and the CloudWatch delay, so that no minute is missed
            start = min(start, end - timedelta(minutes=math.ceil(interval / 60) + CLOUDWATCH_DELAY_MINUTES))
        found = _windows[key] = (-start, end - start)
    return found


def observed(asked: Sequence[MetricQuery], found: Sequence[Datapoints]
             ) -> tuple[Observed, Observed, dict[Dim, dict[str, list]] | None]:
    """Reads and writes as the policy sees them, from the datapoints of queries() (`found`, in
    its order); also the throttles by cause, when they were asked for."""
    seconds = int((asked[0].end - asked[0].start).total_seconds())
    cr, cw, tr, tw = found[0], found[1], found[2], found[3]
    causes = by_cause(asked[4:], found[4:]) if len(found) > 4 else None
    if causes is not None:
        tr = throttle_causes.capacity_throttles(tr, causes[Dim.READS])
        tw = throttle_causes.capacity_throttles(tw, causes[Dim.WRITES])
    return (Observed(total(cr), total(tr), seconds, series(cr, tr)),
            Observed(total(cw), total(tw), seconds, series(cw, tw)), causes)


def total(points: Datapoints) -> float | None:
    """The Sum over the window, or None when CloudWatch had no datapoint."""
    return sum([point[1] for point in points]) if points else None


def series(consumed: Iterable, throttled: Iterable) -> tuple[tuple[datetime, float, float], ...]:
    """Per-minute (minute, consumed, throttled), for policies that keep a history."""
    throttles = dict(throttled)
    return tuple([(ts, value, throttles.get(ts, 0.0)) for ts, value in consumed])


def by_cause(asked: Iterable[MetricQuery], found: Iterable[Datapoints]) -> dict[Dim, dict[str, list]]:
    """The datapoints of the throttles-by-cause queries (`found`, in their order), by dimension and cause."""
    out: dict[Dim, dict[str, list]] = {Dim.READS: {}, Dim.WRITES: {}}
    for q, points in zip(asked, found, strict=True):
        dim, cause = throttle_causes.CAUSE_OF_METRIC[q.metric]
        out[dim][cause] = list(points)
    return out


def remember(memory: Memory, decision: Decision, now: datetime) -> Memory:
    """The memory with the decision's reason code and time, for --status (kept as text: plain JSON)."""
    return evolve(memory, last_reason=decision.code.value, last_decided=now.isoformat(timespec="seconds")[:19] + "Z")
