"""The imperative shell of one pass: gather, decide, apply.

A pass lists the tables, matches them to config sections, describes them, fetches every
metric of the pass in one batch, runs the pure policy for each table and GSI, then sends
at most one UpdateTable per table. AWS errors are logged with the table's name and the
pass goes on; the process never dies of them.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import NamedTuple, cast

from . import demand, forecast, maxima, mode_switch, notifications, policy, prewarm, throttle_causes
from .breaker import redact_url
from .edge import LOGGER
from .frozen import evolve
from .model import (
    CONSUMED_METRIC,
    THROTTLE_METRIC,
    AwsError,
    Breaker,
    Capacity,
    Datapoints,
    Dim,
    LimitExceeded,
    LimitsSource,
    MetricQuery,
    MetricsSource,
    MetricsUnavailable,
    Notifier,
    TableAdmin,
    TableBusy,
    TableDescription,
    TableNotFound,
    Target,
    TargetStatus,
    Update,
)
from .observe import CLOUDWATCH_DELAY_MINUTES, observed, queries, remember, series
from .policy import Decision, Memory
from .reasons import Reason
from .rules import TargetRules
from .settings import Settings, TableSection, matching_sections

log = logging.getLogger(LOGGER)

DESCRIBE_CONCURRENCY = 8
MIN_PASS_PERIOD = 1.0  # check-interval: 0 means passes back to back, at most one a second
NEW_MEMORY = Memory()  # what a target new to this process starts from (frozen: one value shared, not rebuilt)


@dataclass
class Ports:
    """The outside world of a pass. An adapter with a `begin_pass(stop)` method is told when a
    pass begins, with the event that stops the daemon (the AWS adapters: see aws.CallGuard)."""

    tables: TableAdmin
    metrics: MetricsSource
    notifier: Notifier | None = None
    breaker: Breaker | None = None
    limits: LimitsSource | None = None  # DescribeLimits; None: increases are not clamped


@dataclass
class PassReport:
    """What one pass did."""

    decisions: list[Decision] = field(default_factory=list)  # skipped targets too, with their code
    updates: int = 0
    skipped: int = 0
    failures: int = 0  # unexpected errors: the pass did not do all its work
    matched: int = 0  # tables that some section matched
    aws_errors: list[tuple[str, str]] = field(default_factory=list)  # (operation, AWS error code), for metrics
    prewarms: list[tuple[Target, Reason]] = field(default_factory=list)  # warm-throughput requests and outcomes

    @property
    def ok(self) -> bool:
        """True when nothing unexpected went wrong."""
        return self.failures == 0

    @property
    def decided(self) -> list[Decision]:
        """The decisions the policy made (the skipped targets left out)."""
        return [d for d in self.decisions if d.skipped is None]


class Job(NamedTuple):
    """One table or GSI to decide on this pass (one per target and pass: a named tuple, cheap to build)."""

    status: TargetStatus
    rules: TargetRules
    # consumed r/w, throttled r/w, then the throttles by cause (THROTTLE_CAUSE_METRIC), reads then writes
    queries: tuple[MetricQuery, ...]


class Scaler:
    """Runs passes for one configuration; keeps the per-target memory between them."""

    def __init__(self, settings: Settings, ports: Ports | None, memory: dict[Target, Memory] | None = None,
                 dry_run: bool | None = None) -> None:
        self.settings = settings
        self.ports = ports  # None while a Fleet cannot build the clients yet (it retries every pass)
        self.memory: dict[Target, Memory] = memory if memory is not None else {}
        self.dry_run = settings.dry_run if dry_run is None else dry_run
        self._hits: dict[str, tuple[TableSection, ...]] = {}  # every section matching a table name, in file order
        self.stop = threading.Event()  # set by SIGTERM: finish the table in progress, leave the rest
        self._aws_errors: list[tuple[str, str]] = []  # the pass's PassReport.aws_errors, for SNS failures
        self.last_report: PassReport | None = None  # set by Fleet.run_pass, read by the metrics
        # with several daemons sharing the tables (coordination.py): which tables are ours this pass,
        # and the lease check just before an UpdateTable (False: no update; it logs why)
        self.owns: Callable[[str], bool] = lambda table: True
        self.fence: Callable[[str], bool] = lambda table: True
        self.causes_reported: dict[tuple[Target, str], datetime] = {}  # (target, kind) -> last report
        self.history_checked: set[Target] = set()  # targets whose recent history this process has made sure of

    @property
    def live_ports(self) -> Ports:
        """The ports a pass uses: a Fleet builds them before it runs one."""
        if self.ports is None:
            raise RuntimeError("a pass needs its AWS clients: Fleet builds them before the first pass")
        return self.ports

    # ---- matching -------------------------------------------------------------------

    def section_for(self, table: str) -> TableSection | None:
        """The first section whose regex matches the whole table name (cached per name)."""
        return next(iter(self._sections_matching(table)), None)

    def _sections_matching(self, table: str) -> tuple[TableSection, ...]:
        """Every section matching the table name, in file order (cached per name; more than one is warned)."""
        hits = self._hits.get(table)
        if hits is None:
            hits = self._hits[table] = tuple(matching_sections(self.settings.tables, table))
            if len(hits) > 1:
                log.warning("%s: matches more than one section (%s); using [table: %s]",
                            table, ", ".join(s.key for s in hits), hits[0].key)
        return hits

    def _gsi_rules(self, section: TableSection, index: str) -> TargetRules | None:
        gsi = section.gsi_section(index)
        return None if gsi is None else gsi.rules

    # ---- the pass -------------------------------------------------------------------

    def run_pass(self, now: datetime) -> PassReport:
        """One pass over every matched table at time `now` (tz-aware UTC)."""
        report = PassReport()
        self._aws_errors = report.aws_errors
        _begin_pass(self.live_ports, self.stop)
        try:
            names = self.live_ports.tables.list_tables()
        except AwsError as e:
            log.error("Cannot list tables: %s", e)
            report.aws_errors.append(("ListTables", e.code))
            report.failures += 1
            return report
        pairs = [(name, s) for name in sorted(names) if (s := self.section_for(name)) is not None]
        report.matched = len(pairs)
        self._warn_unmatched(names, pairs)
        pairs = [(name, s) for name, s in pairs if self.owns(name)]
        jobs = self._gather(pairs, now, report)
        if self.stop.is_set():
            log.info("Stopping: %d table(s) left unchanged until the next run", len(pairs))
            return report
        # with no job (on-demand tables only, say) nothing is fetched, but the pre-warm step still runs
        jobs, by_table = self._scale(jobs, now, report) if jobs else (jobs, {})
        if not self.stop.is_set():
            self._pre_warm(jobs, by_table, now, report)
        return report

    def _scale(self, jobs: list[Job], now: datetime,
               report: PassReport) -> tuple[list[Job], dict[str, list[Decision]]]:
        """Metrics, decisions and updates for the pass's jobs; the jobs still ours, and their decisions by table."""
        self._warm_histories(jobs, now)
        data = self._fetch_metrics(jobs, report)
        breaker = self._breaker_states(jobs)
        # a pass that stalled (a partition, a pause) may have lost tables to another daemon meanwhile
        jobs = [job for job in jobs if self.owns(job.status.target.table)]
        by_table: dict[str, list[Decision]] = {}
        for job in jobs:
            found = [data.get(q) for q in job.queries]  # each query hashed once: a pass's hottest lookup
            if None in found:
                decision = replace(self._decide_without_metrics(job, breaker, now),
                                   skipped=Reason.METRICS_UNAVAILABLE)
            else:
                decision = self._decide(job, cast("list[Datapoints]", found), breaker, now)
            if decision.skipped is None:  # metrics unavailable: nothing remembered, as the policy saw nothing
                target = job.status.target
                self.memory[target] = remember(self.memory.get(target, NEW_MEMORY), decision, now)
            report.decisions.append(decision)
            by_table.setdefault(job.status.target.table, []).append(decision)
        for done, (table, decisions) in enumerate(by_table.items()):
            if self.stop.is_set():
                log.info("Stopping: %d table(s) left unchanged until the next run", len(by_table) - done)
                break
            self._apply(table, decisions, now, report)
        return jobs, by_table

    def _warn_unmatched(self, names: Sequence[str], pairs: list[tuple[str, TableSection]]) -> None:
        """Once per pass, as 2.x did: a typo in a key must not go unnoticed. A section that
        matches tables but loses each of them to an earlier one is said to be unused, not to
        match nothing."""
        used = {s.key for _, s in pairs}
        matched = {s.key for name in names for s in self._sections_matching(name)}
        unmatched = [s.key for s in self.settings.tables if s.key not in matched]
        if unmatched:
            log.warning("No table matches %s", ", ".join(f"[table: {key}]" for key in unmatched))
        shadowed = [s.key for s in self.settings.tables if s.key in matched and s.key not in used]
        if shadowed:
            log.warning("No table uses %s: each table %s matches uses an earlier section",
                        ", ".join(f"[table: {key}]" for key in shadowed), "it" if len(shadowed) == 1 else "they")

    def _gather(self, pairs: list[tuple[str, TableSection]], now: datetime, report: PassReport) -> list[Job]:
        """DescribeTable for every matched table (a few at a time) and the jobs that follow."""
        def describe(name: str) -> TableDescription | Decision:
            if self.stop.is_set():  # stopping: the pass ends after the describes (run_pass says so)
                return _unknown(name, Reason.AWS_ERROR, "not described: stopping")
            try:
                return self.live_ports.tables.describe(name)
            except TableNotFound as e:
                log.info("%s: table no longer exists, skipped", name)
                report.aws_errors.append(("DescribeTable", e.code))
                report.skipped += 1
                return _unknown(name, Reason.NOT_FOUND, "table no longer exists")
            except AwsError as e:
                log.error("%s: DescribeTable failed: %s", name, e)
                report.aws_errors.append(("DescribeTable", e.code))
                report.failures += 1
                return _unknown(name, Reason.AWS_ERROR, f"DescribeTable failed: {e}")

        names = [name for name, _ in pairs]
        if len(names) > 1:
            with ThreadPoolExecutor(max_workers=min(DESCRIBE_CONCURRENCY, len(names))) as pool:
                described = list(pool.map(describe, names))
        else:
            described = [describe(n) for n in names]
        jobs: list[Job] = []
        for (_name, section), desc in zip(pairs, described, strict=True):
            if isinstance(desc, Decision):
                report.decisions.append(desc)
                continue
            if section.mode.mode != "provisioned" and mode_switch.manage(self, section, desc, now, report):
                # switched this pass: scaled, if provisioned, from the next (and its memory is kept)
                report.decisions.append(policy.skipped(desc.table, Reason.MODE_SWITCHED,
                                                       "billing mode switched", section.rules))
                continue
            targets = [(desc.table, section.rules)]
            # while the table is not ACTIVE DynamoDB refuses any UpdateTable, its GSIs' too
            table_busy = not desc.table.active and not desc.table.on_demand
            for status in desc.indexes:
                rules = self._gsi_rules(section, status.target.index or "")
                if rules is None and self.settings.table_name is not None:
                    if _first_time("unscaled", self.settings.region, status.target):
                        log.warning("%s: GSI left unscaled: --table-name scales the table only; a config file "
                                    "with a [gsi: REGEX table: KEY] section scales its GSIs", status.target)
                if rules is not None and table_busy:
                    report.decisions.append(policy.skipped(status, Reason.GSI_BUSY,
                                                           f"table is {desc.table.status}", rules))
                elif rules is not None:
                    targets.append((status, rules))
            for status, rules in targets:
                if self._skip(status, rules, report):
                    continue
                jobs.append(Job(status, rules, queries(status.target, rules, now, self.settings.check_interval,
                                                        causes=self.settings.throttle_causes)))
        return jobs

    def _skip(self, status: TargetStatus, rules: TargetRules, report: PassReport) -> bool:
        """True (and a skipped decision in the report) when the policy cannot decide on this target."""
        if status.on_demand:
            log.info("%s: on-demand (PAY_PER_REQUEST), nothing to scale", status.target)
            code, why = Reason.ON_DEMAND, "on-demand (PAY_PER_REQUEST)"
        elif not status.active:
            log.info("%s: status %s, skipped until ACTIVE", status.target, status.status)
            code, why = Reason.NOT_ACTIVE, f"status {status.status}"
        elif status.capacity.reads < 1 or status.capacity.writes < 1:
            # DynamoDB's floor is 1: no percentage of it can be computed, no decision made
            log.warning("%s: DescribeTable reports %d read and %d write units provisioned, skipped",
                        status.target, status.capacity.reads, status.capacity.writes)
            code, why = Reason.NO_CAPACITY, "no capacity provisioned"
        else:
            return False
        report.skipped += 1
        report.decisions.append(policy.skipped(status, code, why, rules))
        return True

    def _fetch_metrics(self, jobs: list[Job], report: PassReport) -> dict[MetricQuery, Datapoints]:
        """Every series of the pass; a series that could not be read is left out (its target is
        decided without metrics), logged once per table and counted as that table's failure."""
        try:
            return dict(self.live_ports.metrics.fetch([q for job in jobs for q in job.queries]))
        except MetricsUnavailable as e:
            errors: dict[str, AwsError] = {}
            for q, error in e.failed.items():
                errors.setdefault(q.target.table, error)
            for table, error in sorted(errors.items()):
                log.error("%s: GetMetricData failed, no decrease this pass: %s", table, error)
                report.aws_errors.append(("GetMetricData", error.code))
            report.failures += len(errors)
            return dict(e.data)
        except AwsError as e:
            if self.stop.is_set():  # given up: the pass leaves every table unchanged (_scale says so)
                return {}
            tables = {job.status.target.table for job in jobs}
            log.error("Cannot read CloudWatch metrics, no decrease this pass for %d table(s): %s", len(tables), e)
            report.aws_errors.append(("GetMetricData", e.code))
            report.failures += len(tables)
            return {}

    def _decide_without_metrics(self, job: Job, breaker: dict[tuple, bool], now: datetime) -> Decision:
        """Metrics unavailable this pass: nothing is lowered and nothing is remembered (the
        policy saw no data); an increase the policy makes without them (a schedule's min) goes ahead."""
        target = job.status.target
        remembered = self.memory.get(target)
        decision = self._decide(job, [()] * len(job.queries), breaker, now)
        if remembered is None:
            self.memory.pop(target, None)
        else:
            self.memory[target] = remembered
        return decision.without_decreases()

    def _breaker_states(self, jobs: list[Job]) -> dict[tuple, bool]:
        """One probe per URL per pass; a URL set for a table or GSI is probed with its names."""
        states: dict[tuple, bool] = {}
        if self.live_ports.breaker is None:
            return states
        for job in jobs:
            key = self._breaker_key(job)
            if key is not None and key not in states:
                url, timeout, table, index = key
                headers = {}
                if table is not None:
                    headers["x-table-name"] = table
                if index is not None:
                    headers["x-gsi-name"] = index
                states[key] = self.live_ports.breaker.is_closed(url, timeout, headers)
                if not states[key]:
                    log.warning("Circuit breaker %s is OPEN: no changes for %s", redact_url(url),
                                table or "any table using it")
        return states

    def _breaker_key(self, job: Job) -> tuple | None:
        url = job.rules.circuit_breaker_url
        if not url:
            return None
        timeout = job.rules.circuit_breaker_timeout
        if url == self.settings.circuit_breaker_url:
            return (url, timeout, None, None)
        return (url, timeout, job.status.target.table, job.status.target.index)

    def _warm_histories(self, jobs: list[Job], now: datetime) -> None:
        """Targets of the demand and forecast policies new to this process start from CloudWatch's
        recent past, not blind: the half hour before the pass's window (a decrease is for a lasting
        drop, not for the five minutes one window shows), unless the state file remembers it, and
        for the forecast its last days."""
        # once per target and process (a reload makes a new one): later passes fold their own
        # minutes, even when CloudWatch has none, so an idle table costs no read each pass
        new = [job for job in jobs if job.status.target not in self.history_checked]
        if not new:
            return
        self.history_checked.update(job.status.target for job in new)
        fetch_history = getattr(self.live_ports.metrics, "fetch_history", None)
        if fetch_history is None:
            return
        end = now.replace(second=0, microsecond=0) - timedelta(minutes=CLOUDWATCH_DELAY_MINUTES)
        cold = [plan for job in new if (plan := self._history_plan(job, end)) is not None]
        if not cold:
            return
        try:
            found = fetch_history([q for plan in cold for q in plan.queries])
        except AwsError as e:
            if not self.stop.is_set():
                log.warning("Cannot read the recent history of %d target(s) from CloudWatch (%s); deciding from "
                            "this pass's window", len(cold), e)
            found = {}
        for plan in cold:
            cr, tr, cw, tw = plan.queries
            reads, writes = series(found.get(cr, ()), found.get(tr, ())), series(found.get(cw, ()), found.get(tw, ()))
            target, capacity = plan.job.status.target, plan.job.status.capacity
            memory = self.memory.get(target, NEW_MEMORY)
            if plan.forecast:
                memory = evolve(memory, reads_forecast=forecast.learn(reads), writes_forecast=forecast.learn(writes))
            if plan.seed_before is not None:
                memory = evolve(memory, reads_demand=demand.seed(reads, capacity.reads, plan.seed_before),
                                writes_demand=demand.seed(writes, capacity.writes, plan.seed_before))
            self.memory[target] = memory
        learned = sum(1 for plan in cold if plan.forecast)
        if learned:
            log.info("Forecast policy: learned from up to %d day(s) of CloudWatch history for %d target(s)",
                     forecast.HISTORY_DAYS, learned)
        seeded = sum(1 for plan in cold if plan.seed_before is not None)
        if seeded:
            log.info("Demand history: the %d minutes before this pass read from CloudWatch for %d target(s)",
                     demand.HISTORY_MINUTES, seeded)

    def _history_plan(self, job: Job, end: datetime) -> _HistoryPlan | None:
        """What a target new to this process needs read from CloudWatch, if anything (`end`: the newest minute)."""
        if not policy.POLICIES[job.rules.scaling_policy].keeps_history:
            return None
        target = job.status.target
        memory = self.memory.get(target, NEW_MEMORY)
        window = job.queries[0].start
        seed_before = window if _stale(memory.reads_demand, window) else None  # also a daemon stopped a while
        learn = job.rules.scaling_policy == "forecast" and memory.reads_forecast is None
        if seed_before is None and not learn:
            return None
        start, stop = ((end - timedelta(days=forecast.HISTORY_DAYS), end) if learn
                       else (window - timedelta(minutes=demand.HISTORY_MINUTES), window))
        return _HistoryPlan(job, seed_before, learn, tuple(MetricQuery(target, metric[dim], start, stop, 60)
                                                           for dim in (Dim.READS, Dim.WRITES)
                                                           for metric in (CONSUMED_METRIC, THROTTLE_METRIC)))

    def _decide(self, job: Job, found: Sequence[Datapoints], breaker: dict[tuple, bool], now: datetime) -> Decision:
        """The decision from the datapoints of the job's queries, in their order."""
        reads, writes, causes = observed(job.queries, found)
        key = self._breaker_key(job)
        closed = breaker.get(key, True) if key is not None else True
        target = job.status.target
        decision, memory = policy.decide(job.status, reads, writes, job.rules,
                                         self.memory.get(target, NEW_MEMORY), now, closed)
        self.memory[target] = memory
        if log.isEnabledFor(logging.INFO):
            _log_decision(decision, json_lines=self.settings.log_format == "json")
        if causes is not None:  # throttle-causes: false asks for none
            self._report_causes(job, causes, now)
        return decision

    def _report_causes(self, job: Job, causes: dict[Dim, dict[str, list]], now: datetime) -> None:
        """Throttles that capacity does not cure: a warning (and SNS alarm) at most hourly per target."""
        target = job.status.target
        splits = {dim: throttle_causes.split(dim, by) for dim, by in causes.items()}
        if not any(splits.values()):
            return  # no cause known (no by-cause datapoint): nothing to say
        for note in throttle_causes.notes(target, splits):
            key = (target, note.kind)
            if not throttle_causes.due(self.causes_reported.get(key), now):
                continue
            self.causes_reported[key] = now
            log.warning("%s", note.message)
            rules = job.rules
            if rules.sns_topic_arn and "high-throughput-alarm" in rules.sns_message_types:
                self._publish(notifications.Message(rules.sns_topic_arn, f"ALARM: {note.subject}",
                                                    note.message + "\n", target))

    # ---- applying ---------------------------------------------------------------------

    def _apply(self, table: str, decisions: list[Decision], now: datetime, report: PassReport) -> None:
        for d in decisions:
            if d.alarm:
                self._publish(notifications.alarm_message(d))
            if d.budget_exhausted:
                self._notify_budget(d)
        decisions = self._within_maxima(table, decisions, now)
        changed = [d for d in decisions if d.changed]
        if not changed:
            return
        if self.dry_run:
            for d in changed:
                log.info("%s: dry run, would set %d reads and %d writes", d.target, d.reads.new, d.writes.new)
            return
        if not self.fence(table):  # it logs why not: the lease lost or expired, or its check failed
            report.skipped += 1
            return
        self._send(table, changed, now, report)

    def _within_maxima(self, table: str, decisions: list[Decision], now: datetime) -> list[Decision]:
        """Increases held to DynamoDB's table and account maxima (DescribeLimits), with a warning."""
        if self.live_ports.limits is None or not any(d.changed for d in decisions):
            return decisions
        limits = self.live_ports.limits.current(now)
        if limits is None:
            return decisions
        floors = {d.target: self._floors(d) for d in decisions}
        held, notes = maxima.clamp(decisions, limits, floors)
        for note in notes:
            log.warning("%s", note)
        return held

    def _floors(self, d: Decision) -> Capacity:
        rules = d.rules  # decisions carry the rules they were made with
        if rules is None:
            return Capacity(1, 1)
        return Capacity(rules.dim(Dim.READS).floor, rules.dim(Dim.WRITES).floor)

    def _send(self, table: str, changed: list[Decision], now: datetime, report: PassReport,
              retry: bool = True) -> None:
        """One UpdateTable; refused by the decrease rule, it is retried once with only its increases.
        Any other LimitExceededException (too many table operations at once, a maximum) is a
        failure of this table's pass, tried again next pass."""
        try:
            self.live_ports.tables.update(_update(table, changed))
        except LimitExceeded as e:
            if not e.decrease_rule:
                log.error("%s: UpdateTable refused, trying again next pass: %s", table, e)
                report.failures += 1
                return
            log.warning("%s: UpdateTable refused: %s", table, e)
            report.aws_errors.append(("UpdateTable", e.code))
            increases = policy.retry_increases(changed) if retry else []
            if increases:
                self._send(table, increases, now, report, retry=False)
            elif not retry:
                report.failures += 1
            return
        except (TableBusy, TableNotFound) as e:
            gone = isinstance(e, TableNotFound)
            report.aws_errors.append(("UpdateTable", e.code))
            log.info("%s: %s", table,
                     "table no longer exists, skipped" if gone else f"busy ({e}), trying again next pass")
            report.skipped += 1
            return
        except AwsError as e:
            log.error("%s: UpdateTable failed: %s", table, e)
            report.aws_errors.append(("UpdateTable", e.code))
            report.failures += 1
            return
        report.updates += 1
        for d in changed:
            log.info("%s: provisioning updated to %d reads and %d writes%s", d.target, d.reads.new, d.writes.new,
                     "" if retry else " (increases only)")
            if d.decreasing:
                self.memory[d.target] = policy.record_decrease(self.memory.get(d.target, Memory()), now)
            self._publish(notifications.change_message(d))

    def _pre_warm(self, jobs: list[Job], by_table: dict[str, list[Decision]], now: datetime,
                  report: PassReport) -> None:
        """pre-warm: one UpdateTable(WarmThroughput) per table whose table or GSIs face a known peak
        (prewarm.plan decides). Not a capacity change: no decrease budget, no retry of a refusal."""
        plans: dict[str, dict[Target, tuple[prewarm.PreWarm, TargetRules]]] = {}
        for job in [*jobs, *self._on_demand_jobs(report)]:
            if not job.rules.pre_warm:
                continue
            target = job.status.target
            memory = self.memory.get(target, NEW_MEMORY)
            plan = prewarm.plan(job.status.warm, job.rules, memory.reads_forecast, memory.writes_forecast,
                                memory.prewarm_until, now, on_demand=job.status.on_demand)
            if plan.code is Reason.WARM_UNKNOWN:
                # DynamoDB Local, older moto: said once per region, nothing sent
                if _first_time("no warm throughput", self.settings.region):
                    log.info("%s: the endpoint reports no warm throughput; pre-warm sends nothing there", target)
            elif plan.wanted is None:
                log.debug("%s: no pre-warm: %s (%s)", target, plan.reason, plan.code.value)
            else:
                plans.setdefault(target.table, {})[target] = (plan, job.rules)
        for table, wanted in plans.items():
            if any(d.changed for d in by_table.get(table, ())):
                log.info("%s: pre-warm waits for the next pass (capacity changes this pass)", table)
                continue
            if self.dry_run:
                for target, (plan, _) in wanted.items():
                    log.info("%s: dry run, would raise the warm throughput to %s units/s: %s", target,
                             prewarm.shown(plan.wanted), plan.reason,
                             extra={"table": target.table, "index": target.index, "reason": plan.code.value})
                continue
            if not self.fence(table):
                continue
            self._send_pre_warm(table, wanted, report)

    def _on_demand_jobs(self, report: PassReport) -> list[Job]:
        """The on-demand tables and GSIs of the pass with pre-warm on: skipped by the scaling
        (nothing to provision, no metrics fetched), but a schedule's peak may be pre-warmed for.
        Only ACTIVE ones of an ACTIVE table (DynamoDB refuses an UpdateTable otherwise) and ours."""
        skipped = [d for d in report.decisions if d.skipped is Reason.ON_DEMAND]
        active = {d.target.table for d in skipped if d.target.index is None and d.status.active}
        return [Job(d.status, d.rules, ()) for d in skipped
                if d.rules is not None and d.rules.pre_warm and d.status.active and d.target.table in active
                and self.owns(d.target.table)]

    def _send_pre_warm(self, table: str, wanted: dict[Target, tuple[prewarm.PreWarm, TargetRules]],
                       report: PassReport) -> None:
        """The UpdateTable of a pre-warm; a refusal is one warning and is not asked again for that peak."""
        update = Update(table, table_warm=next((p.wanted for t, (p, _) in wanted.items() if t.index is None), None),
                        index_warm={t.index: p.wanted for t, (p, _) in wanted.items()
                                    if t.index is not None and p.wanted is not None})
        code = Reason.PRE_WARMED
        try:
            self.live_ports.tables.update(update)
        except (TableBusy, TableNotFound) as e:
            report.aws_errors.append(("UpdateTable", e.code))
            log.info("%s: pre-warm not sent (%s), trying again next pass", table, e)
            return
        except AwsError as e:
            report.aws_errors.append(("UpdateTable", e.code))
            log.warning("%s: pre-warm refused, not asked again for this peak: %s", table, e)
            code = Reason.PRE_WARM_REFUSED
        for target, (plan, rules) in wanted.items():
            self.memory[target] = evolve(self.memory.get(target, NEW_MEMORY), prewarm_until=plan.until)
            report.prewarms.append((target, code))
            if code is Reason.PRE_WARMED:
                log.info("%s: warm throughput raised to %s units/s: %s (%s)", target, prewarm.shown(plan.wanted),
                         plan.reason, code.value,
                         extra={"table": target.table, "index": target.index, "reason": code.value})
                self._publish(prewarm.message(target, plan, rules))

    def _notify_budget(self, d: Decision) -> None:
        """Said once per UTC day: decreases wait because DynamoDB's daily allowance is spent."""
        at = d.budget_exhausted
        log.warning("%s: decrease budget for today is spent; decreases wait until %s", d.target,
                    f"{at:%H:%M} UTC" if at else "tomorrow")
        self._publish(notifications.budget_message(d))

    def _publish(self, message: notifications.Message | None) -> None:
        if message is None or self.live_ports.notifier is None or self.dry_run:
            return  # a dry run sends no notification
        log.info("%s: SNS publish to %s: %s", message.target, message.topic, message.subject,
                 extra={"topic": message.topic, "subject": message.subject})
        try:
            self.live_ports.notifier.publish(message.topic, message.subject, message.body)
        except AwsError as e:
            log.error("%s: SNS publish to %s failed: %s", message.target, message.topic, e)
            self._aws_errors.append(("Publish", e.code))


def _begin_pass(ports: Ports, stop: threading.Event) -> None:
    """Tell the adapters that have a begin_pass that a pass begins (see Ports)."""
    for port in (ports.tables, ports.metrics, ports.limits, ports.notifier):
        begin = getattr(port, "begin_pass", None)
        if begin is not None:
            begin(stop)


def _log_decision(decision: Decision, json_lines: bool) -> None:
    """The decision line: one per target in text, one per dimension with its fields in JSON."""
    target = decision.target
    if not json_lines:
        log.info("%s: %s", target, decision.summary)
        return
    for d in decision.dims():
        log.info("%s: %s", target, policy._dim_summary(d), extra={
            "table": target.table, "index": target.index, "dimension": d.dim.value, "current": d.current,
            "new": d.new, "reason": d.code.value, "reason_text": d.reason, "consumed_pct": d.consumed_pct})

class _HistoryPlan(NamedTuple):
    """A target's start-up read: its four series, and what they are for."""

    job: Job
    seed_before: datetime | None  # the demand history: the half hour before this minute (the pass's window)
    forecast: bool  # the forecast's days
    queries: tuple[MetricQuery, ...]  # consumed and throttled reads, then writes


def _stale(state: demand.DemandState | None, window: datetime) -> bool:
    """True when a demand history is missing or ends before the half hour that precedes the window."""
    # the two dimensions are kept together: the reads' history stands for both
    return (state is None or state.last_minute is None
            or state.last_minute < window - timedelta(minutes=demand.HISTORY_MINUTES))


def _unknown(table: str, code: Reason, why: str) -> Decision:
    """The skipped decision for a table DescribeTable could not describe."""
    return policy.skipped(TargetStatus(Target(table), "UNKNOWN", "", Capacity(0, 0)), code, why)


_SAID: set[tuple] = set()  # notices said once per process, not every pass (SIGHUP included)


def _first_time(*key: object) -> bool:
    """True the first time this process asks with this key: for notices that would repeat every pass."""
    if key in _SAID:
        return False
    _SAID.add(key)
    return True


def _update(table: str, decisions: list[Decision]) -> Update:
    """One UpdateTable for a table and its GSIs."""
    table_cap = None
    indexes: dict[str, Capacity] = {}
    for d in decisions:
        cap = d.capacity
        if cap == d.status.capacity:
            continue
        if d.target.index is None:
            table_cap = cap
        else:
            indexes[d.target.index] = cap
    return Update(table, table_cap, indexes)


def pass_period(check_interval: float) -> float:
    """Seconds from the start of one pass to the start of the next."""
    return max(MIN_PASS_PERIOD, float(check_interval))


def utcnow() -> datetime:
    """The wall clock, in UTC (only the shell reads it)."""
    return datetime.now(timezone.utc)


def run_forever(run_pass: Callable[[datetime], PassReport], interval: Callable[[], float],
                stop: threading.Event, before_pass: Callable[[], None] = lambda: None,
                wake: threading.Event | None = None, *,
                monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], datetime] = utcnow,
                wait: Callable[[float], object] | None = None) -> None:
    """Passes on a fixed period (no drift); an overrunning pass is logged and the next starts at once.

    `stop` ends the loop mid-sleep; a pass in progress ends first, after the table in progress
    (the AWS adapters give up a call still waiting for its answer: see Ports). `wake` (set
    when shards of a stopped daemon were taken over) runs an extra pass at once, off the period.
    The clocks and the sleep (`wait`, by default stop.wait) are given so that tests need not sleep.
    """
    wait = wait or stop.wait
    next_start = monotonic()
    while not stop.is_set():
        started = monotonic()
        try:
            before_pass()
            run_pass(wall())
        except Exception:  # the daemon must outlive any bug in one pass
            log.exception("Unexpected error in the pass; trying again next pass")
        period = interval()
        next_start += period
        now = monotonic()
        if now > next_start and not stop.is_set():
            log.warning("Pass took %.1f s, longer than the check interval of %g s; starting the next at once",
                        now - started, period)
            next_start = now
        while _sleep_until(next_start, stop, wake, monotonic, wait):
            try:  # off the period: the schedule of the regular passes stays as it is
                run_pass(wall())
            except Exception:
                log.exception("Unexpected error in the pass; trying again next pass")


def _sleep_until(deadline: float, stop: threading.Event, wake: threading.Event | None,
                 monotonic: Callable[[], float], wait: Callable[[float], object]) -> bool:
    """Sleep until the monotonic `deadline` or `stop`; True when `wake` cut it short (then cleared)."""
    if wake is None:
        wait(max(0.0, deadline - monotonic()))
        return False
    while not stop.is_set() and (left := deadline - monotonic()) > 0:
        if wake.is_set():
            wake.clear()
            return True
        wait(min(left, 0.5))
    return False
