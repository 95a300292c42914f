"""`scaling-policy: demand`: provision for the demand, served or throttled, with DynamoDB's burst in mind.

Pure, like the threshold policy. Per dimension, each pass:

1. Demand of a minute = (consumed + throttled units) / 60: unlike AWS target tracking, a
   throttled table shows how much it was really asked for.
2. The burst bucket is estimated from the history DynamoDB documents: unused capacity is
   kept for up to 300 seconds of the provisioned rate. Its fill decides how close to
   the demand capacity may run: at the target utilisation when the bucket is empty, up to
   three quarters of the remaining headroom closer when it is full, because then the
   bucket covers the minutes between a jump in demand and the increase taking effect.
3. Up, at once and sized: any throttling, or demand above halfway between the effective
   utilisation and 100 %, raises capacity to the peak of the last three minutes divided
   by the target utilisation.
4. Down, only for a drop that is deep and lasting: the peak of the last hour must sit at
   least 10 % below what is provisioned. The decrease budget, maintenance windows and the
   other guards of `policy.decide` still apply.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

HISTORY_MINUTES = 60  # how far back a decrease looks for the peak it must still serve
UP_LOOKBACK = 3  # minutes whose peak an increase is sized for
MIN_DROP = 0.10  # a decrease must save at least this share of the capacity
BURST_SECONDS = 300  # DynamoDB keeps up to five minutes of unused capacity
BUCKET_LEND = 0.75  # share of the headroom a full burst bucket may stand in for


@dataclass(frozen=True)
class DemandState:
    """What the demand policy remembers of one dimension."""

    last_minute: Optional[datetime] = None  # newest datapoint folded into the history
    demand: tuple[float, ...] = ()  # units/s of the last minutes with data, oldest first
    bucket: float = 0.0  # estimated burst credit, in units


def fold(state: DemandState, series: tuple[tuple[datetime, float, float], ...],
         provisioned: int) -> tuple[DemandState, float]:
    """The state with the minutes not seen before; also the newest minute's throttled units."""
    demand = list(state.demand)
    bucket = state.bucket
    last = state.last_minute
    newest_throttled = 0.0
    capacity = provisioned * 60.0
    for minute, consumed, throttled in series:
        if last is not None and minute <= last:
            continue
        demand.append((consumed + throttled) / 60.0)
        if consumed <= capacity:
            bucket = min(bucket + capacity - consumed, BURST_SECONDS * provisioned)
        else:
            bucket = max(0.0, bucket - (consumed - capacity))
        last = minute
        newest_throttled = throttled
    return DemandState(last, tuple(demand[-HISTORY_MINUTES:]), min(bucket, BURST_SECONDS * provisioned)), \
        newest_throttled


def propose(cur: int, series: tuple[tuple[datetime, float, float], ...], target_pct: float,
            state: DemandState) -> tuple[int, str, DemandState]:
    """(new capacity, reason, state) for one dimension."""
    fresh = bool(series) and (state.last_minute is None or series[-1][0] > state.last_minute)
    state, throttled = fold(state, series, cur)
    if not state.demand:
        return cur, "no data", state
    if not fresh:
        return cur, "no new data", state
    target = target_pct / 100.0
    fill = state.bucket / (BURST_SECONDS * cur) if cur else 0.0
    effective = target + (1.0 - target) * BUCKET_LEND * min(1.0, fill)
    last = state.demand[-1]
    if throttled > 0 or last > cur * (1.0 + effective) / 2.0:
        wanted = math.ceil(max(state.demand[-UP_LOOKBACK:]) / target)
        if wanted > cur:
            why = "throttled" if throttled > 0 else f"demand {last / cur * 100:.0f}% of provisioned"
            return wanted, f"{why}, sized for {target_pct:g}% utilisation", state
    peak = max(state.demand)
    wanted = max(1, math.ceil(peak / effective))
    if wanted <= cur * (1.0 - MIN_DROP):
        return wanted, f"last hour's peak {peak:.1f}/s fits in {wanted} at {effective * 100:.0f}%", state
    return cur, f"demand {last / cur * 100:.0f}% of provisioned", state


