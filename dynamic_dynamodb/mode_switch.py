"""The shell of `capacity-mode`: read a table's history, simulate it with its config, switch its billing mode.

The decision itself is capacity_mode.decide_mode (pure). Here: at most hourly, the last
`capacity-mode-days` of CloudWatch history of the table and its GSIs are replayed through
the daemon's own pass (as --backtest does) for the costs; a switch is one UpdateTable with
BillingMode. Back to PROVISIONED carries capacity for the table and every GSI, sized for
their last half hour of demand at the target utilisation. The switches are counted in the
table's memory, so the state file keeps DynamoDB's four a day across restarts.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import capacity_mode as cm
from .edge import LOGGER
from .model import (
    CONSUMED_METRIC,
    THROTTLE_METRIC,
    AwsError,
    Capacity,
    Dim,
    LimitExceeded,
    MetricQuery,
    TableBusy,
    TableDescription,
    TableNotFound,
    Target,
    TargetStatus,
    Update,
)
from .policy import Memory
from .rules import TargetRules
from .settings import TableSection

if TYPE_CHECKING:
    from .loop import PassReport, Scaler

log = logging.getLogger(LOGGER)

RECENT_MINUTES = 30  # the demand a switch back to provisioned is sized for
DELAY_MINUTES = 3  # CloudWatch's newest minutes are not published yet


def manage(scaler: Scaler, section: TableSection, desc: TableDescription, now: datetime,
           report: PassReport) -> bool:
    """Apply the section's capacity mode to a described table; True when it switched (nothing to scale now)."""
    rules = section.mode
    if rules.mode == "provisioned":
        return False
    table = desc.table
    target = table.target
    memory = scaler.memory.get(target, Memory())
    mode = memory.mode or cm.ModeMemory()
    if rules.mode == "auto" and cm.history_due(mode, now):
        costs = simulated_costs(scaler, section, desc, now)
        mode = dataclasses.replace(mode, history_read=now, costs=costs or mode.costs)
    scaler.memory[target] = dataclasses.replace(memory, mode=mode)
    decision = cm.decide_mode(table.billing_mode, rules, mode, now)
    word = _word(decision.wanted)
    if not decision.switch:
        if decision.wanted != decision.current:
            log.info("%s: stays %s: %s", target, _word(decision.current), decision.reason)
        return False
    if not table.active:
        log.info("%s: status %s, the switch to %s waits until ACTIVE", target, table.status, word)
        return True
    update = switch_update(scaler, section, desc, decision.wanted, now)
    if scaler.dry_run:
        log.info("%s: dry run, would switch to %s (%s)%s", target, word, decision.reason, _capacities(update))
        return False
    try:
        scaler.live_ports.tables.update(update)
    except (TableBusy, TableNotFound) as e:
        log.info("%s: switch to %s not made (%s), trying again next pass", target, word, e)
        report.skipped += 1
        return True
    except LimitExceeded as e:
        log.warning("%s: switch to %s refused: %s", target, word, e)
        return True
    except AwsError as e:
        log.error("%s: UpdateTable (switch to %s) failed: %s", target, word, e)
        report.failures += 1
        return True
    report.updates += 1
    scaler.memory[target] = dataclasses.replace(memory, mode=cm.record_switch(mode, decision.wanted, now))
    log.info("%s: switched to %s (%s)%s", target, word, decision.reason, _capacities(update))
    return True


def switch_update(scaler: Scaler, section: TableSection, desc: TableDescription, to: str,
                  now: datetime) -> Update:
    """The UpdateTable of a switch: BillingMode, and the capacity of every target when back to provisioned."""
    name = desc.table.target.table
    if to == cm.ON_DEMAND:
        limits = (section.mode.on_demand_max_reads, section.mode.on_demand_max_writes)
        return Update(name, billing_mode=cm.ON_DEMAND,
                      on_demand_max=limits if any(v is not None for v in limits) else None)
    statuses = (desc.table, *desc.indexes)
    recent = _recent_demand(scaler, [s.target for s in statuses], now)
    caps = {s.target: _capacity(recent.get(s.target, {}), _rules(scaler, section, s)) for s in statuses}
    return Update(name, caps[desc.table.target],
                  {s.target.index or "": caps[s.target] for s in desc.indexes}, billing_mode=cm.PROVISIONED)


def simulated_costs(scaler: Scaler, section: TableSection, desc: TableDescription,
                    now: datetime) -> cm.Costs | None:
    """The last capacity-mode-days of the table and its GSIs replayed with this config: provisioned and on-demand."""
    from .simulation import backtest  # the simulator imports the loop: import it when needed
    from .simulation.run import simulate
    from .simulation.trace import Trace

    target = desc.table.target
    fetch_history = getattr(scaler.live_ports.metrics, "fetch_history", None)
    if fetch_history is None:
        log.warning("%s: capacity-mode auto needs CloudWatch history, which this metrics source cannot give", target)
        return None
    start, end = backtest.window(now, section.mode.days)
    statuses = (desc.table, *desc.indexes)
    queries = {s.target: backtest.history_queries(s.target, start, end) for s in statuses}
    try:
        sums = fetch_history([q for qs in queries.values() for q in qs.values()], stat="Sum")
    except AwsError as e:
        log.error("%s: cannot read the CloudWatch history for capacity-mode auto: %s", target, e)
        return None
    stamps = [points[0][0] for points in sums.values() if points]
    if not stamps:
        log.info("%s: no CloudWatch history in the last %d day(s) for capacity-mode auto", target, section.mode.days)
        return None
    # the history starts at its first datapoint: the minutes before a table's first request are not its idle time
    start = max(start, min(stamps).replace(second=0, microsecond=0))
    minutes = int((end - start) // timedelta(minutes=1))
    provisioned = on_demand = throttled = 0.0
    for status in statuses:
        series = {metric: sums.get(q, []) for metric, q in queries[status.target].items()}
        if not any(series.values()):
            continue
        reads = backtest.per_minute(start, minutes, series[CONSUMED_METRIC[Dim.READS]],
                                    series[THROTTLE_METRIC[Dim.READS]])
        writes = backtest.per_minute(start, minutes, series[CONSUMED_METRIC[Dim.WRITES]],
                                     series[THROTTLE_METRIC[Dim.WRITES]])
        # the simulated table is provisioned, scaled by this target's rules, with no mode of its own
        alone = TableSection(str(status.target), re.compile(re.escape(str(status.target))),
                             _rules(scaler, section, status))
        local = dataclasses.replace(scaler.settings, tables=(alone,), dry_run=False)
        initial = None
        if not status.on_demand:
            initial = backtest.initial_capacity(status, start, [], [])[0]
        with _quiet():
            figures = simulate(local, Trace(str(status.target), start, 1, reads, writes), None,
                               table=str(status.target), initial=initial,
                               progress=None, baselines=False).config
        provisioned += figures.cost_usd
        on_demand += figures.on_demand_cost_usd
        throttled = max(throttled, figures.throttled_share)
    costs = cm.Costs(round(provisioned, 4), round(on_demand, 4), throttled)
    log.info("%s: the last %d day(s) with this config: $%.2f provisioned (%.3f%% throttled), $%.2f on-demand",
             target, section.mode.days, costs.provisioned, costs.throttled_share * 100, costs.on_demand)
    return costs


def _recent_demand(scaler: Scaler, targets: Sequence[Target], now: datetime) -> dict[Target, dict[Dim, list]]:
    """Per target and dimension, the demand (units/s) of its last RECENT_MINUTES minutes."""
    end = now.replace(second=0, microsecond=0) - timedelta(minutes=DELAY_MINUTES)
    start = end - timedelta(minutes=RECENT_MINUTES)
    queries = [MetricQuery(t, metric[dim], start, end, 60)
               for t in targets for dim in Dim for metric in (CONSUMED_METRIC, THROTTLE_METRIC)]
    try:
        data = scaler.live_ports.metrics.fetch(queries)
    except AwsError as e:
        log.error("%s: cannot read the recent demand for a switch to provisioned: %s", targets[0], e)
        data = {}
    by_minute: dict[Target, dict[Dim, dict[datetime, float]]] = {}
    for q in queries:
        dim = Dim.READS if q.metric in (CONSUMED_METRIC[Dim.READS], THROTTLE_METRIC[Dim.READS]) else Dim.WRITES
        minutes = by_minute.setdefault(q.target, {}).setdefault(dim, {})
        for stamp, value in data.get(q, ()):
            minutes[stamp] = minutes.get(stamp, 0.0) + value / 60.0  # consumed + throttled, units/s
    return {t: {dim: list(m.values()) for dim, m in dims.items()} for t, dims in by_minute.items()}


def _capacity(recent: dict, rules: TargetRules) -> Capacity:
    target = rules.target_utilization
    r, w = rules.reads, rules.writes
    return Capacity(cm.provisioned_for(recent.get(Dim.READS, []), target, r.floor, r.max_provisioned),
                    cm.provisioned_for(recent.get(Dim.WRITES, []), target, w.floor, w.max_provisioned))


def _rules(scaler: Scaler, section: TableSection, status: TargetStatus) -> TargetRules:
    """The rules of a table or GSI; a GSI no [gsi: ...] section matches gets its table's."""
    if status.target.index is None:
        return section.rules
    return scaler._gsi_rules(section, status.target.index) or section.rules


def _capacities(update: Update) -> str:
    if update.table_capacity is None:
        return ""
    parts = [f"{update.table_capacity.reads} reads and {update.table_capacity.writes} writes"]
    parts += [f"GSI {name} {c.reads}/{c.writes}" for name, c in sorted(update.index_capacities.items())]
    return ", provisioned at " + ", ".join(parts)


def _word(mode: str) -> str:
    return "on-demand" if mode == cm.ON_DEMAND else "provisioned"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The replayed passes' own decisions are not the daemon's: only their errors reach the log."""
    logger = logging.getLogger(LOGGER)
    level = logger.level
    if logger.getEffectiveLevel() > logging.DEBUG:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
