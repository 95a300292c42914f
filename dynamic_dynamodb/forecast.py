"""scaling-policy: forecast: the demand policy, ahead of the rises the table has shown before.

Pure functions of plain values. The table's own demand (served plus throttled, the same
per-minute series the demand policy reads) is averaged into half-hour slots of UTC time;
the last 15 days of slots are kept. The rules, each one sentence:

1. A slot's expected demand is what the same half hour asked for on each of the two days
   before (the lower of the two, when they are within 50 % of each other), or likewise on
   the two same weekdays before, whichever is higher: a level recurs once it has come
   twice at the same time.
   The forecast acts only on a rise: an expected demand at least 1.5 times the newest
   minutes' demand; and only while it has been right: the last two finished half hours
   came within 25 % of what it expected of them.
2. Capacity is raised ahead of time to carry the expected demand of the next
   `LEAD_MINUTES` at the target utilisation: an increase, sized like any other.
3. A decrease never goes below what the expected demand of the next `HOLD_MINUTES` needs
   at the target utilisation, and is held when what is left would save less than the
   demand policy's 10 %: a decrease is not spent just before a recurring rise takes it back.
4. Everything else is the demand policy's: without a rhythm, rules 2 and 3 never bind.

Strictly causal: a slot is learned only once it has ended.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import NamedTuple

from .demand import MIN_DROP

SLOT_MINUTES = 30
SLOTS_PER_DAY = 24 * 60 // SLOT_MINUTES
DAYS_KEPT = 15  # two weeks back from yesterday, and today
RING = DAYS_KEPT * SLOTS_PER_DAY
LEAD_MINUTES = 20  # how far ahead an increase is made: capacity takes minutes to arrive
HOLD_MINUTES = 60  # how far ahead a decrease looks for a recurring rise
HISTORY_DAYS = 14  # what the daemon loads from CloudWatch at start (1-minute data is kept 15 days)
UNKNOWN = -1.0  # a slot without data
AGREE = 1.5  # two past half hours recur when the higher asked for at most this much more than the lower
TRUST = 0.25  # the forecast is trusted while the last hour came within this share of what it expected
RISE = 1.5  # the forecast acts only for a rise to at least this many times the newest minutes' demand
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NO_SLOTS = (UNKNOWN,) * RING  # the ring before any slot has ended


class ForecastState(NamedTuple):
    """What the forecast policy remembers of one dimension: half-hour mean demands.

    A new one every minute: a named tuple, immutable like a frozen dataclass and cheaper to build."""

    newest_slot: int | None = None  # absolute index of the newest slot in `slots`
    slots: tuple[float, ...] = ()  # mean demand (units/s) by absolute slot % RING; UNKNOWN: no data
    open_slot: int | None = None  # the slot being summed
    open_sum: float = 0.0  # units/s summed over the open slot's minutes so far
    open_minutes: int = 0
    last_minute: datetime | None = None  # newest minute folded in


def slot_of(t: datetime) -> int:
    """The absolute half-hour slot of a time (tz-aware; slots count from 1970-01-01 UTC)."""
    assert t.tzinfo is not None, "a naive time has no slot"
    return int(t.timestamp() // (SLOT_MINUTES * 60))  # (t - EPOCH).total_seconds(), without the timedelta


def _store(slots: list[float], newest: int | None, slot: int, value: float) -> int:
    """Write a finished slot's mean, marking the skipped slots between as unknown."""
    if newest is not None:
        for k in range(max(newest + 1, slot - RING + 1), slot):
            slots[k % RING] = UNKNOWN
    slots[slot % RING] = value
    return slot if newest is None else max(newest, slot)


def fold(state: ForecastState, series: Iterable[tuple[datetime, float, float]]) -> ForecastState:
    """The state with the minutes not seen before (per-minute consumed and throttled units)."""
    # the ring is copied only when a slot closes (once a half hour), not every minute
    slots: tuple[float, ...] = state.slots or _NO_SLOTS
    ring: list[float] | None = None
    newest, open_slot = state.newest_slot, state.open_slot
    total, count, last = state.open_sum, state.open_minutes, state.last_minute
    changed = False
    for minute, consumed, throttled in series:
        if last is not None and minute <= last:
            continue
        slot = slot_of(minute)
        if open_slot is not None and slot != open_slot and count:
            if ring is None:
                ring = list(slots)
            newest = _store(ring, newest, open_slot, total / count)
            total, count = 0.0, 0
        open_slot = slot
        total += (consumed + throttled) / 60.0
        count += 1
        last = minute
        changed = True
    if not changed:
        return state
    return ForecastState(newest, slots if ring is None else tuple(ring), open_slot, total, count, last)


def learn(series: Iterable[tuple[datetime, float, float]]) -> ForecastState:
    """A state learned from a history: per-minute (minute, consumed units, throttled units), oldest first."""
    return fold(ForecastState(), series)


def _known(state: ForecastState, slot: int) -> float | None:
    """The learned mean of an absolute slot, if it is still kept and had data."""
    if state.newest_slot is None or not state.slots or slot > state.newest_slot or slot <= state.newest_slot - RING:
        return None
    value = state.slots[slot % RING]
    return None if value < 0 else value


# expected() and trusted() read only the finished slots, which change once a half hour, and are
# asked several times a minute: their answers are kept per ring, keyed by that very ring object
# (a tuple, never changed; held here, so its id cannot pass to another object) and the newest
# slot; trusted()'s answer is kept under the key None
_MEMO_RINGS = 256  # rings remembered (two per target); past that the memo starts afresh
_memo: dict[int, tuple[tuple[float, ...], int | None, dict[int | None, float]]] = {}


def _answers(state: ForecastState) -> dict[int | None, float]:
    """The memo of the state's ring: expected demand by slot, and trusted() (1.0 or 0.0) under None."""
    kept = _memo.get(id(state.slots))
    if kept is None or kept[0] is not state.slots or kept[1] != state.newest_slot:
        if len(_memo) >= _MEMO_RINGS:
            _memo.clear()
        kept = _memo[id(state.slots)] = (state.slots, state.newest_slot, {})
    return kept[2]


def expected(state: ForecastState, slot: int) -> float:
    """Expected mean demand of an absolute slot: rule 1 (0 when nothing recurs)."""
    return _remembered(state, _answers(state), slot)


def _remembered(state: ForecastState, answers: dict[int | None, float], slot: int) -> float:
    """expected(), with the state's memo already looked up."""
    value = answers.get(slot)
    if value is None:
        value = answers[slot] = _expected(state, slot)
    return value


def _expected(state: ForecastState, slot: int) -> float:
    best = 0.0
    for period in (SLOTS_PER_DAY, 7 * SLOTS_PER_DAY):
        a, b = _known(state, slot - period), _known(state, slot - 2 * period)
        if a is not None and b is not None and max(a, b) <= AGREE * min(a, b):
            best = max(best, min(a, b))
    return best


def trusted(state: ForecastState) -> bool:
    """True when the two newest finished half hours came within TRUST of what was expected of them."""
    if state.newest_slot is None:
        return False
    answers = _answers(state)
    value = answers.get(None)
    if value is None:
        value = answers[None] = 1.0 if _trusted(state, state.newest_slot) else 0.0
    return value > 0


def _trusted(state: ForecastState, newest: int) -> bool:
    for k in (newest, newest - 1):
        actual, wanted = _known(state, k), expected(state, k)
        if actual is None or wanted <= 0 or abs(actual - wanted) > TRUST * wanted:
            return False
    return True


def expected_peak(state: ForecastState, now: datetime, minutes: int) -> float:
    """The highest expected demand over the slots from now to `minutes` ahead."""
    if state.newest_slot is None:
        return 0.0
    assert now.tzinfo is not None, "a naive time has no slot"
    seconds = now.timestamp()  # slot_of(now) and slot_of(now + minutes), from one timestamp
    first, last = int(seconds // (SLOT_MINUTES * 60)), int((seconds + minutes * 60) // (SLOT_MINUTES * 60))
    answers = _answers(state)
    return max([_remembered(state, answers, k) for k in range(first, last + 1)])


def adjust(cur: int, new: int, reason: str, state: ForecastState, now: datetime,
           target: float, recent: float) -> tuple[int, str]:
    """The demand policy's proposal with rules 2 and 3 applied; `recent`: the newest minutes' demand."""
    if not trusted(state):
        return new, reason
    ahead = expected_peak(state, now, LEAD_MINUTES)
    if ahead < RISE * recent:
        ahead = 0.0
    needed = math.ceil(ahead / target) if ahead > 0 else 0
    if needed > max(cur, new):
        return needed, f"a recurring rise expected: {ahead:.0f} units/s within {LEAD_MINUTES} minutes"
    if new < cur:
        hold = expected_peak(state, now, HOLD_MINUTES)
        hold = hold if hold >= RISE * recent else 0.0
        floor = math.ceil(hold / target) if hold > 0 else 0
        if floor > cur * (1.0 - MIN_DROP):  # what is left would not be worth a decrease
            return cur, f"{reason}; held: a recurring rise expected within {HOLD_MINUTES} minutes"
        if floor > new:
            return floor, f"{reason}, no lower than a recurring rise within {HOLD_MINUTES} minutes needs"
    return new, reason
