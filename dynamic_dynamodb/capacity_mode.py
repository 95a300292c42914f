"""`capacity-mode`: provisioned or on-demand, decided from simulated costs. Pure.

The shell simulates the table's recent history with its config (as `--backtest` does) and
passes the figures in; nothing here reads a clock, logs or talks to AWS. The rule for `auto`:

* to on-demand when on-demand is cheaper than this config by `capacity-mode-margin`, or when
  provisioned with this config would throttle more than `capacity-mode-max-throttled`;
* back to provisioned when provisioned is cheaper by the margin (and throttles no more than that);
* otherwise stay: between the two marks, the current mode wins;
* never before `capacity-mode-min-hours` since the last switch, and never a fifth switch to
  on-demand within a rolling 24 hours (DynamoDB's limit; back to provisioned is always allowed).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

PROVISIONED = "PROVISIONED"
ON_DEMAND = "PAY_PER_REQUEST"
CAPACITY_MODES = ("provisioned", "on-demand", "auto")
MAX_SWITCHES_TO_ON_DEMAND = 4  # per rolling SWITCH_WINDOW (DynamoDB's limit)
SWITCH_WINDOW = timedelta(hours=24)
REREAD_EVERY = timedelta(hours=1)  # the history behind `auto` is read again at most this often
MAX_DAYS = 14


@dataclass(frozen=True)
class ModeRules:
    """The capacity-mode keys of one [table: ...] section."""

    mode: str = "provisioned"
    days: int = 7
    margin: float = 20.0  # percent
    max_throttled: float = 1.0  # percent of demand
    min_hours: float = 24.0
    on_demand_max_reads: int | None = None
    on_demand_max_writes: int | None = None


@dataclass(frozen=True)
class Costs:
    """A simulated history: this config's cost in provisioned mode, on-demand's, and what provisioned throttled."""

    provisioned: float
    on_demand: float
    throttled_share: float  # 0..1 of demand


@dataclass(frozen=True)
class ModeMemory:
    """What is remembered per table between passes (persisted in the state file)."""

    switches_to_on_demand: tuple[datetime, ...] = ()  # within the last SWITCH_WINDOW
    last_switch: datetime | None = None
    history_read: datetime | None = None  # when the costs below were simulated
    costs: Costs | None = None


@dataclass(frozen=True)
class ModeDecision:
    """Where a table should be, whether to switch now, and why."""

    current: str
    wanted: str
    switch: bool
    reason: str


def cheaper_mode(current: str, costs: Costs, margin_pct: float = 20.0,
                 max_throttled_pct: float = 1.0) -> tuple[str, str]:
    """The mode the figures argue for (switch limits aside), and why."""
    keep = 1.0 - margin_pct / 100.0
    throttled = costs.throttled_share * 100.0
    if throttled > max_throttled_pct:
        return ON_DEMAND, (f"provisioned with this config throttles {throttled:.3f}% of demand "
                           f"(> {max_throttled_pct:g}%)")
    if costs.on_demand <= costs.provisioned * keep:
        return ON_DEMAND, (f"on-demand ${costs.on_demand:.2f} against ${costs.provisioned:.2f} provisioned "
                           f"(cheaper by {margin_pct:g}% or more)")
    if costs.provisioned <= costs.on_demand * keep:
        return PROVISIONED, (f"provisioned ${costs.provisioned:.2f} against ${costs.on_demand:.2f} on-demand "
                             f"(cheaper by {margin_pct:g}% or more)")
    return current, (f"provisioned ${costs.provisioned:.2f} and on-demand ${costs.on_demand:.2f} are within "
                     f"{margin_pct:g}%: staying {_word(current)}")


def recent_switches(memory: ModeMemory, now: datetime) -> tuple[datetime, ...]:
    """The switches to on-demand within the rolling window ending now."""
    return tuple(t for t in memory.switches_to_on_demand if now - t < SWITCH_WINDOW)


def decide_mode(current: str, rules: ModeRules, memory: ModeMemory, now: datetime) -> ModeDecision:
    """The capacity mode of one table at `now` (memory.costs: the latest simulated history, if any)."""
    if rules.mode == "provisioned":
        return ModeDecision(current, current, False, "capacity-mode: provisioned")
    if rules.mode == "on-demand":
        wanted, why = ON_DEMAND, "capacity-mode: on-demand"
    elif memory.costs is None:
        return ModeDecision(current, current, False, "no history to decide on yet")
    else:
        wanted, why = cheaper_mode(current, memory.costs, rules.margin, rules.max_throttled)
    if wanted == current:
        return ModeDecision(current, wanted, False, why)
    if rules.mode == "auto" and memory.last_switch is not None \
            and now - memory.last_switch < timedelta(hours=rules.min_hours):
        until = memory.last_switch + timedelta(hours=rules.min_hours)
        return ModeDecision(current, wanted, False, f"{why}; staying until {until:%Y-%m-%d %H:%M} UTC "
                                                    f"(capacity-mode-min-hours {rules.min_hours:g})")
    if wanted == ON_DEMAND:
        recent = recent_switches(memory, now)
        if len(recent) >= MAX_SWITCHES_TO_ON_DEMAND:
            at = min(recent) + SWITCH_WINDOW
            return ModeDecision(current, wanted, False, f"{why}; {len(recent)} switches to on-demand in 24 h, "
                                                        f"the next is possible at {at:%Y-%m-%d %H:%M} UTC")
    return ModeDecision(current, wanted, True, why)


def record_switch(memory: ModeMemory, to: str, now: datetime) -> ModeMemory:
    """Memory after DynamoDB accepted a switch to `to` at `now`."""
    switches = recent_switches(memory, now) + ((now,) if to == ON_DEMAND else ())
    return replace(memory, switches_to_on_demand=switches, last_switch=now)


def history_due(memory: ModeMemory, now: datetime) -> bool:
    """True when the history behind `auto` should be read and simulated again."""
    return memory.history_read is None or now - memory.history_read >= REREAD_EVERY


def provisioned_for(recent_demand: Sequence[float], target_pct: float, floor: int = 1,
                    ceiling: int | None = None) -> int:
    """Capacity for a switch back to provisioned: the recent peak demand (units/s) at the target utilisation."""
    peak = max(recent_demand, default=0.0)
    units = max(floor, 1, math.ceil(peak / (target_pct / 100.0)))
    return min(units, ceiling) if ceiling is not None else units


def _word(mode: str) -> str:
    return "on-demand" if mode == ON_DEMAND else "provisioned"
