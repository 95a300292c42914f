"""`scaling-policy: demand`: provision for the demand, served or throttled, with DynamoDB's burst in mind.

Pure, like the threshold policy. Per dimension, each pass:

1. Demand of a minute = (consumed + throttled units) / 60: unlike AWS target tracking, a
   throttled table shows how much it was really asked for.
2. The burst bucket is estimated from the history, as DynamoDB documents it: unused
   capacity is kept for up to 300 seconds of the provisioned rate. Its fill sets the
   effective utilisation: the target when the bucket is empty, closer to the demand as it
   fills, up to three quarters of the remaining headroom when it is full.
3. Up, at once and sized: any throttling, or demand above halfway between the effective
   utilisation and 100 %, raises capacity to carry the peak of the last three minutes at
   the effective utilisation of the *new* capacity: the burst bucket does not grow with
   an increase, so a small rise runs close to the demand while a jump to several times
   the old level is sized at about the target, with an empty bucket's headroom. Once the
   day's free decreases are spent (decreases are an hour apart), an increase is sized at
   the utilisation a full bucket allows instead: what it raises stays for an hour.
   One unthrottled minute above that line, after a minute at the target utilisation or
   below, is left to the bucket when the bucket, drained at its excess until an increase a
   pass later would arrive (the minutes not yet published, then those to the next pass),
   keeps half its fill.
4. Down, only for a drop that is deep and lasting. Over the last half hour, find the
   least capacity that would have served every minute without throttling, burst credit
   included, and still kept half a bucket in reserve; provision that at the target
   utilisation, never below what the last ten minutes need at the effective utilisation.
   A decrease must save at least 10 %. The decrease budget, maintenance windows and the
   other guards of `policy.decide` still apply, so it is never one DynamoDB would refuse.
5. Once decreases are an hour apart, `policy.decide` may hold one for a few minutes when a
   deeper one is coming (`later`, at the minutes `leaving` names) and saves more over its hour.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import NamedTuple

HISTORY_MINUTES = 30  # how long a drop must have lasted before a decrease
RECENT_MINUTES = 10  # a decrease never goes below what the newest minutes need
UP_LOOKBACK = 3  # minutes whose peak an increase is sized for
MIN_DROP = 0.10  # a decrease must save at least this share of the capacity
BURST_SECONDS = 300  # DynamoDB keeps up to five minutes of unused capacity
BUCKET_LEND = 0.75  # share of the headroom a full burst bucket may stand in for
REPLAY_START = 0.5  # bucket fill assumed at the start of the replayed history
REPLAY_RESERVE = 0.5  # bucket fill the replay must end with: a reserve for the next jump
UNSEEN_MINUTES = 2  # minutes a pass cannot see yet (CloudWatch's delay) when it is not told the time


class DemandState(NamedTuple):
    """What the demand policy remembers of one dimension (a new one every pass: a named tuple, cheap to build)."""

    last_minute: datetime | None = None  # newest datapoint folded into the history
    demand: tuple[float, ...] = ()  # units/s of the last minutes with data, oldest first
    bucket: float = 0.0  # estimated burst credit, in units


def fold(state: DemandState, series: tuple[tuple[datetime, float, float], ...],
         provisioned: int) -> tuple[DemandState, float]:
    """The state with the minutes not seen before; also the newest minute's throttled units."""
    fresh: list[float] = []  # the new minutes' demand, joined to the kept history in one tuple
    bucket = state.bucket
    last = state.last_minute
    newest_throttled = 0.0
    capacity = provisioned * 60.0
    full = BURST_SECONDS * provisioned
    for minute, consumed, throttled in series:
        if last is not None and minute <= last:
            continue
        fresh.append((consumed + throttled) / 60.0)
        if throttled > 0:  # DynamoDB throttles only once the bucket is spent, whatever we estimated
            bucket = 0.0
        elif consumed <= capacity:
            bucket = min(bucket + capacity - consumed, full)
        else:
            bucket = max(0.0, bucket - (consumed - capacity))
        last = minute
        newest_throttled = throttled
    demand = state.demand + tuple(fresh) if fresh else state.demand
    return DemandState(last, demand[-HISTORY_MINUTES:], min(bucket, full)), newest_throttled


def seed(series: Iterable[tuple[datetime, float, float]], provisioned: int, before: datetime) -> DemandState:
    """What a target new to the daemon starts from: its minutes of the half hour before `before`.

    The burst bucket starts empty, as nothing tells how full it was; the minutes from `before`
    on are the pass's own, which propose() folds in."""
    since = before - timedelta(minutes=HISTORY_MINUTES)
    return fold(DemandState(), tuple([p for p in series if since <= p[0] < before]), provisioned)[0]


def effective_utilisation(target: float, fill: float) -> float:
    """How close to the demand capacity may run, given the burst bucket's fill (0..1)."""
    fill = max(0.0, min(1.0, fill))
    return target + (1.0 - target) * BUCKET_LEND * fill


def propose(cur: int, series: tuple[tuple[datetime, float, float], ...], target_pct: float,
            state: DemandState, spaced: bool = False, now: datetime | None = None) -> tuple[int, str, DemandState]:
    """(new capacity, reason, state) for one dimension; `spaced`: decreases are an hour apart now."""
    interval = new_minutes(state.last_minute, series)  # also the minutes to the next pass, when data is regular
    state, throttled = fold(state, series, cur)
    demand = state.demand
    if not demand:
        return cur, "no data", state
    if not interval:
        return cur, "no new data", state
    target = target_pct / 100.0
    effective = effective_utilisation(target, state.bucket / (BURST_SECONDS * cur) if cur else 0.0)
    last = demand[-1]
    if carried(state, cur, target_pct, interval, now):  # never a throttled minute: it empties the bucket
        # one hot minute: an increase for it would stay up for an hour, the bucket serves it for nothing
        return cur, f"demand {last / cur * 100:.0f}% of provisioned for one minute, carried by burst credit", state
    if throttled > 0 or last > _line(cur, effective):
        peak = max(demand[-UP_LOOKBACK:])
        # once decreases are an hour apart, what is raised stays up for an hour, while another
        # increase may follow at any time: size it as a full bucket allows, not with the target's headroom
        wanted = sized_up(peak, state.bucket, effective_utilisation(target, 1.0) if spaced else target)
        if wanted > cur:
            why = "throttled" if throttled > 0 else f"demand {last / cur * 100:.0f}% of provisioned"
            return wanted, f"{why}, sized for {peak / wanted * 100:.0f}% utilisation", state
    # burst may carry the past half hour's spikes, but not the level of the last minutes
    recent = math.ceil(max(demand[-RECENT_MINUTES:]) / effective)
    wanted = cur
    if recent <= cur * (1.0 - MIN_DROP):
        wants = _units(demand)  # one list for the replays below
        if _may_drop(wants, cur, target):
            wanted = max(1, recent, math.ceil(_cheapest(demand, wants) / target))
    if wanted <= cur * (1.0 - MIN_DROP):
        return wanted, f"the last {len(demand)} minutes fit in {wanted}", state
    return cur, f"demand {last / cur * 100:.0f}% of provisioned", state


def new_minutes(last_minute: datetime | None, series: Iterable[tuple[datetime, float, float]]) -> int:
    """How many minutes of the series are newer than `last_minute`: a pass's interval, when data is regular."""
    return sum(1 for p in series if last_minute is None or p[0] > last_minute)


def carried(state: DemandState, cur: int, target_pct: float, interval: int, now: datetime | None = None) -> bool:
    """True when the newest minute is above rule 3's line but left to the burst bucket, a blip.

    `interval`: the minutes until the next pass, which would make the increase instead; `now`: the
    pass's time, which tells how many minutes CloudWatch has not published yet."""
    if not state.demand or cur < 1:
        return False
    effective = effective_utilisation(target_pct / 100.0, state.bucket / (BURST_SECONDS * cur))
    return (state.demand[-1] > _line(cur, effective)
            and _blip(state.demand, cur, target_pct / 100.0, state.bucket, _unseen(state, now) + interval))


def _unseen(state: DemandState, now: datetime | None) -> int:
    """Whole minutes from the newest minute folded in to `now`: what a rise drains before a pass sees it."""
    if now is None or now.tzinfo is None or state.last_minute is None:
        return UNSEEN_MINUTES
    return max(1, int((now - state.last_minute).total_seconds() // 60))


def _line(cur: int, effective: float) -> float:
    """Rule 3's line: the demand halfway between the effective utilisation and 100 % of `cur`."""
    return cur * (1.0 + effective) / 2.0


def _blip(demand: tuple[float, ...], cur: int, target: float, bucket: float, drained: int) -> bool:
    """True when the newest minute rose from the target's headroom and the bucket carries it until an increase arrives.

    A minute after one at the target utilisation or below is a blip, not a rise in steps, which runs
    close to the line and needs the full bucket for its next step. Waiting a pass drains the bucket
    for `drained` minutes at the blip's excess (until an increase made at the next pass is in force);
    it must then still hold the reserve a replay keeps for the next jump."""
    if len(demand) >= 2 and demand[-2] > target * cur:
        return False
    drain = drained * 60.0 * max(0.0, demand[-1] - cur)
    return bucket - drain >= REPLAY_RESERVE * BURST_SECONDS * cur


def _may_drop(wants: list[float], cur: int, target: float) -> bool:
    """False when even the deepest decrease worth making would not have served the history (`wants`: units).

    One replay instead of a search: most passes want no decrease, and this tells them so.
    """
    most = math.floor(cur * (1.0 - MIN_DROP))  # the largest capacity that is still a decrease
    return most >= 1 and _serves(max(1, math.floor(most * target)), wants)


def _units(demand: tuple[float, ...]) -> list[float]:
    """Units asked for per minute: what _serves replays (computed once for all its replays)."""
    return [d * 60.0 for d in demand]


def _serves(p: int, wants: list[float]) -> bool:
    """True when capacity p, with its burst credit, serves every minute (`wants`: units) and keeps the reserve."""
    full = float(BURST_SECONDS * p)
    bucket = REPLAY_START * full
    cap = 60.0 * p
    for want in wants:
        if want <= cap:
            bucket = bucket + cap - want
            if bucket > full:  # min() without its call: this loop runs for every minute of every replay
                bucket = full
        else:
            bucket -= want - cap
            if bucket < 0:
                return False
    return bucket >= REPLAY_RESERVE * full


def cheapest_served(demand: tuple[float, ...]) -> int:
    """The least capacity that would have served this history without throttling, burst included."""
    return _cheapest(demand, _units(demand))


def _cheapest(demand: tuple[float, ...], wants: list[float]) -> int:
    """cheapest_served, with the units of the demand (`wants`) already computed."""
    lo, hi = max(1, math.floor(sum(demand) / len(demand))), max(1, math.ceil(max(demand)))
    while lo < hi:
        mid = (lo + hi) // 2
        if _serves(mid, wants):
            hi = mid
        else:
            lo = mid + 1
    return lo


def sized_up(peak: float, bucket: float, target: float) -> int:
    """The least capacity that carries `peak` at the utilisation its own burst bucket allows.

    The bucket does not grow with an increase, so the larger the step, the emptier it is
    at the new capacity and the more headroom the step keeps: a small rise runs close to
    the demand, a jump to several times the old level is sized at about the target.
    """
    wanted = max(1, math.ceil(peak))
    for _ in range(20):  # the capacity needed grows with itself and settles within a few rounds
        needed = max(1, math.ceil(peak / effective_utilisation(target, bucket / (BURST_SECONDS * wanted))))
        if needed <= wanted:
            return wanted
        wanted = needed
    return wanted


def later(state: DemandState, cur: int, target_pct: float, minutes: int) -> int:
    """What rule 4 would provision `minutes` from now, if the coming minutes ask what the newest ones asked at most."""
    demand = state.demand
    if not demand or cur < 1:
        return cur
    fill = max(demand[-RECENT_MINUTES:])
    projected = (demand + (fill,) * minutes)[-HISTORY_MINUTES:]
    target = target_pct / 100.0
    effective = effective_utilisation(target, state.bucket / (BURST_SECONDS * cur))
    wanted = max(1, math.ceil(fill / effective), math.ceil(cheapest_served(projected) / target))
    return wanted if wanted <= cur * (1.0 - MIN_DROP) else cur


def leaving(state: DemandState, minutes: int) -> list[int]:
    """The minutes from now (1 to `minutes`) at which a minute above the newest ones' peak leaves the half hour.

    Only then can `later` find a deeper decrease than a minute before."""
    demand = state.demand
    if len(demand) <= RECENT_MINUTES:
        return []
    fill = max(demand[-RECENT_MINUTES:])
    room = HISTORY_MINUTES - len(demand)  # minutes a history still filling takes in before one leaves
    return [k for i, d in enumerate(demand[:-RECENT_MINUTES]) if d > fill and 1 <= (k := i + 1 + room) <= minutes]
