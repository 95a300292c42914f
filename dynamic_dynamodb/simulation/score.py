"""Figures of a replay, as SCORING.md defines them (and rounded as tools/refsim.py prints them)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..frozen import ByFields
from .trace import Trace
from .world import OD_READ_PER_UNIT, OD_WRITE_PER_UNIT, ON_DEMAND, RCU_HOUR, WCU_HOUR, DecreaseRule, World


@dataclass(frozen=True)
class Figures(ByFields):
    """Cost and throttling of one policy over one trace."""

    cost_usd: float
    throttled_share: float
    throttled_read_share: float
    throttled_write_share: float
    decreases: int
    illegal_decreases: int
    refused_updates: int  # refused by the decrease rule (LimitExceeded)
    on_demand_cost_usd: float
    oracle_cost_usd: float
    cost_vs_oracle: float | None
    minutes: int
    rejected_updates: int = 0  # refused for another reason: table busy, no change, invalid
    on_demand_minutes: int = 0  # minutes the table spent in on-demand mode (capacity-mode)
    switches_to_on_demand: int = 0

    def as_dict(self) -> dict:
        """Plain dict for report.json."""
        return asdict(self)


def provisioned_cost(reads: list[int], writes: list[int]) -> float:
    """Dollars for the provisioned timeline, minute by minute."""
    cost = 0.0
    for r, w in zip(reads, writes, strict=True):
        cost += (r * RCU_HOUR + w * WCU_HOUR) / 60.0
    return cost


def oracle_cost(trace: Trace) -> float:
    """Dollars for exactly ceil(demand) every minute: a clairvoyant lower bound."""
    return sum((max(1, math.ceil(r)) * RCU_HOUR + max(1, math.ceil(w)) * WCU_HOUR) / 60.0
               for r, w in zip(trace.reads, trace.writes, strict=True))


def count_decreases(trace: Trace, reads: list[int], writes: list[int]) -> tuple[int, int]:
    """(decreases, illegal decreases) seen in a timeline, re-checked against the decrease rule."""
    rule = DecreaseRule(trace.start)
    decreases = illegal = 0
    for m in range(1, len(reads)):
        if not (reads[m] and reads[m - 1]):
            continue  # a minute in on-demand mode (nothing provisioned): a mode switch is no decrease
        if reads[m] < reads[m - 1] or writes[m] < writes[m - 1]:
            decreases += 1
            # in force from minute m, so it was issued at minute m - 1
            if not rule.allowed(m - 1):
                illegal += 1
            rule.record(m - 1)
    return decreases, illegal


def score(world: World, oracle: float | None = None) -> Figures:
    """Figures of a finished replay; `oracle` may be passed in when several replays share a trace."""
    trace = world.trace
    if oracle is None:
        oracle = oracle_cost(trace)
    n = world.minute
    cost = provisioned_cost(world.provisioned_reads[:n], world.provisioned_writes[:n])
    on_demand = [m for m in range(n) if world.billing_modes[m] == ON_DEMAND]
    # minutes in on-demand mode provision nothing and pay per request
    cost += sum(trace.reads[m] * 60 * OD_READ_PER_UNIT + trace.writes[m] * 60 * OD_WRITE_PER_UNIT for m in on_demand)
    dem_r = sum(d * 60 for d in trace.reads[:n])
    dem_w = sum(d * 60 for d in trace.writes[:n])
    thr_r = sum(world.throttled_reads[:n])
    thr_w = sum(world.throttled_writes[:n])
    decreases, illegal = count_decreases(trace, world.provisioned_reads[:n], world.provisioned_writes[:n])
    dem = dem_r + dem_w
    return Figures(
        cost_usd=round(cost, 4),
        throttled_share=round((thr_r + thr_w) / dem, 6) if dem else 0.0,
        throttled_read_share=round(thr_r / dem_r, 6) if dem_r else 0.0,
        throttled_write_share=round(thr_w / dem_w, 6) if dem_w else 0.0,
        decreases=decreases,
        illegal_decreases=illegal,
        refused_updates=world.refused,
        on_demand_cost_usd=round(dem_r * OD_READ_PER_UNIT + dem_w * OD_WRITE_PER_UNIT, 4),
        oracle_cost_usd=round(oracle, 4),
        cost_vs_oracle=round(cost / oracle, 3) if oracle else None,
        minutes=n,
        rejected_updates=world.rejected,
        on_demand_minutes=len(on_demand),
        switches_to_on_demand=len(world.switches_to_on_demand),
    )
