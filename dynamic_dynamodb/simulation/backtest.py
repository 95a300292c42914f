"""`--backtest`: what the config would have done with each matched table's own recent history.

For every placement (region, role) of the config: ListTables and DescribeTable through the
adapters; the tables a `[table: ...]` section matches (the first match wins, as in a pass)
and their GSIs a `[gsi: ...]` section matches; GetMetricData for the 1-minute Sums of
consumed and throttled units of the last N days; demand per minute = (consumed + throttled)
/ 60 units/s, a minute without datapoints 0; then simulate() on that trace, one output
directory per table or GSI. Tables without any datapoint are skipped with a line that says
so. On-demand tables are replayed too: their consumed units say what this config would cost
them in provisioned mode. The run ends with the fleet report (fleet-report.json and a table):
per table and GSI, its mode, the mode the figures recommend and the costs behind it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol, TextIO

from ..capacity_mode import Costs, cheaper_mode
from ..edge import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, LOGGER, error
from ..model import (
    CONSUMED_METRIC,
    THROTTLE_METRIC,
    AwsError,
    Datapoints,
    Dim,
    MetricQuery,
    TableAdmin,
    TableNotFound,
    Target,
    TargetStatus,
)
from ..settings import Placement, Settings, TableSection, matching_sections
from .output import format_fleet, write_json
from .run import MakeScaler, Report, production_scaler, simulate
from .trace import write_trace

log = logging.getLogger(LOGGER)


MINUTE = timedelta(minutes=1)
# the newest minutes are left out of the history: CloudWatch may not have published them yet
SETTLE_MINUTES = 5
PROVISIONED_METRIC = {Dim.READS: "ProvisionedReadCapacityUnits", Dim.WRITES: "ProvisionedWriteCapacityUnits"}
# the provisioning at the start of the history: the first PROVISIONED_PERIOD bucket's Average
PROVISIONED_PERIOD = 300
HISTORY_FILE = "history.csv"
FLEET_REPORT = "fleet-report.json"


class History(Protocol):
    """CloudWatch, for long series (aws.CloudWatchMetrics)."""

    def fetch_history(self, queries: Sequence[MetricQuery], stat: str = "Sum") -> dict[MetricQuery, Datapoints]:
        """`stat` per bucket for every query, oldest first; a query without data maps to []."""


# connect(settings, placement) -> the DynamoDB and CloudWatch adapters of that placement
Connect = Callable[[Settings, Placement], tuple[TableAdmin, History]]


def connect(settings: Settings, placement: Placement) -> tuple[TableAdmin, History]:
    """The real adapters, with clients built by aws.py's factory."""
    from .. import aws  # boto3 is slow to import; a --simulate run never needs it

    conn = aws.connection(settings, placement.region, placement.role_arn)
    session = aws.make_session(conn)
    return (aws.DynamoTables(aws.make_client(session, "dynamodb", conn)),
            aws.CloudWatchMetrics(aws.make_client(session, "cloudwatch", conn), settings.metrics_batch_size))


@dataclass(frozen=True)
class Subject:
    """One table or GSI to backtest, and the section whose rules the simulated table gets."""

    placement: Placement
    status: TargetStatus
    section: TableSection

    @property
    def target(self) -> Target:
        return self.status.target


@dataclass
class Tally:
    """What a backtest did, for its last line and exit status."""

    done: int = 0
    on_demand: int = 0
    no_data: int = 0
    failures: int = 0
    matched: int = 0


@dataclass(frozen=True)
class FleetRow:
    """One table or GSI of the fleet report."""

    table: str
    index: str | None
    region: str
    billing_mode: str  # PROVISIONED or PAY_PER_REQUEST
    recommended_mode: str
    cost_this_config: float
    cost_on_demand: float
    cost_aws_target: float
    throttled_share_this_config: float
    aws_label: str = "aws-target-70"
    reason: str = ""

    def cost_of(self, mode: str) -> float:
        """What the history cost (or would have) in a mode: this config when provisioned."""
        return self.cost_on_demand if mode == "PAY_PER_REQUEST" else self.cost_this_config

    @property
    def saving(self) -> float:
        """Dollars saved over the history by the recommended mode against the current one."""
        return round(self.cost_of(self.billing_mode) - self.cost_of(self.recommended_mode), 4)

    def as_dict(self) -> dict:
        """One object of fleet-report.json."""
        return {"table": self.table, "index": self.index, "region": self.region,
                "billing_mode": self.billing_mode, "recommended_mode": self.recommended_mode,
                "cost_this_config": self.cost_this_config, "cost_on_demand": self.cost_on_demand,
                "cost_" + self.aws_label.replace("-", "_"): self.cost_aws_target,
                "throttled_share_this_config": self.throttled_share_this_config,
                "saving": self.saving, "reason": self.reason}


def fleet_row(subject: Subject, report: Report) -> FleetRow:
    """The fleet report's line for a replayed table or GSI."""
    aws_label = next(iter(report.baselines))
    mine = report.config
    current = subject.status.billing_mode
    mode = subject.section.mode
    recommended, why = cheaper_mode(current, _costs(report), mode.margin, mode.max_throttled)
    return FleetRow(subject.target.table, subject.target.index, subject.placement.region, current, recommended,
                    mine.cost_usd, mine.on_demand_cost_usd, report.baselines[aws_label].cost_usd,
                    mine.throttled_share, aws_label, why)


def _costs(report: Report) -> Costs:
    """The figures the capacity-mode rule decides on."""
    return Costs(report.config.cost_usd, report.config.on_demand_cost_usd, report.config.throttled_share)


def window(now: datetime, days: int) -> tuple[datetime, datetime]:
    """[start, end) of the history: `days` days of whole minutes ending SETTLE_MINUTES before now."""
    end = now.astimezone(timezone.utc).replace(second=0, microsecond=0) - SETTLE_MINUTES * MINUTE
    return end - timedelta(days=days), end


def history_queries(target: Target, start: datetime, end: datetime) -> dict[str, MetricQuery]:
    """The four 1-minute Sum series of a target, by metric name."""
    metrics = (CONSUMED_METRIC[Dim.READS], CONSUMED_METRIC[Dim.WRITES],
               THROTTLE_METRIC[Dim.READS], THROTTLE_METRIC[Dim.WRITES])
    return {m: MetricQuery(target, m, start, end, 60) for m in metrics}


def provisioned_queries(target: Target, start: datetime) -> tuple[MetricQuery, MetricQuery]:
    """The provisioned reads and writes of the first bucket of the history."""
    end = start + 2 * timedelta(seconds=PROVISIONED_PERIOD)
    return (MetricQuery(target, PROVISIONED_METRIC[Dim.READS], start, end, PROVISIONED_PERIOD),
            MetricQuery(target, PROVISIONED_METRIC[Dim.WRITES], start, end, PROVISIONED_PERIOD))


def per_minute(start: datetime, minutes: int, *series: Datapoints) -> list[float]:
    """Demand in units/s per minute: the Sums of the series added, / 60; a minute without data is 0."""
    total = [0.0] * minutes
    for points in series:
        for stamp, value in points:
            k = int((stamp - start) // MINUTE)
            if 0 <= k < minutes:
                total[k] += value
    return [round(v / 60.0, 6) for v in total]


def initial_capacity(status: TargetStatus, start: datetime, reads: Datapoints,
                     writes: Datapoints) -> tuple[tuple[int, int] | None, str]:
    """The capacity at the start of the history, and how we know it; (None, why) when we cannot tell."""
    if reads and writes and reads[0][0] < start + timedelta(seconds=PROVISIONED_PERIOD):
        r, w = round(reads[0][1]), round(writes[0][1])
        if r >= 1 and w >= 1:
            return (r, w), "CloudWatch: provisioned at the start"
    changed = [t for t in (status.last_increase, status.last_decrease) if t is not None]
    cap = status.capacity
    if cap.reads >= 1 and cap.writes >= 1 and all(t < start for t in changed):
        return (cap.reads, cap.writes), "DescribeTable: unchanged since before the start"
    return None, ("1.25 x the first minute's demand: the capacity changed during the history and CloudWatch "
                  "has no provisioned capacity at its start")


def output_name(target: Target, placement: Placement, several: bool) -> str:
    """backtest-TABLE[-GSI], with the region (and the role's account) when the config has several."""
    name = f"backtest-{target.table}" + (f"-{target.index}" if target.index else "")
    if several:
        name += f"-{placement.region}"
        if placement.role_arn:
            name += "-" + placement.role_arn.split(":")[4]
    return name


class Backtest:
    """One --backtest run: find the tables, fetch their history, simulate each, print the comparisons."""

    def __init__(self, settings: Settings, make_scaler: MakeScaler = production_scaler, *,
                 connect: Connect = connect, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr,
                 quiet: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> None:
        self.settings = settings
        self.make_scaler = make_scaler
        self.connect = connect
        self.out = stdout
        self.err = stderr
        self.quiet = quiet  # around each replay: the passes' own logging
        self.tally = Tally()
        self.base = Path(settings.simulate_output or ".")
        self.fleet: list[FleetRow] = []

    def run(self, now: datetime | None = None) -> int:
        """Backtest every placement; the exit status."""
        settings = self.settings
        if not settings.tables:
            self._error("nothing to backtest: give --config with [table: REGEX] sections, or --table-name")
            return EXIT_USAGE
        start, end = window(now or datetime.now(timezone.utc), settings.backtest_days)
        placements = settings.placements()
        for placement, sections in placements.items():
            self._placement(placement, sections, start, end, several=len(placements) > 1)
        t = self.tally
        if t.matched == 0 and t.failures == 0:
            where = ", ".join(str(p) for p in placements)
            self._error(f"nothing to backtest: no table in {where} matches "
                        f"{', '.join('[table: ' + s.key + ']' for s in settings.tables)}")
            return EXIT_FAILURE
        failed = f"; {t.failures} failure(s)" if t.failures else ""
        if self.fleet:
            self._fleet_report()
        print(f"Backtested {t.done} table(s) and GSI(s) ({t.on_demand} on-demand) over {settings.backtest_days} "
              f"day(s); skipped {t.no_data} without data{failed}", file=self.out)
        return EXIT_FAILURE if t.failures else EXIT_OK

    def _fleet_report(self) -> None:
        """fleet-report.json, and the same as a table sorted by the saving, with the total."""
        rows = sorted(self.fleet, key=lambda r: (-r.saving, r.table, r.index or ""))
        self.base.mkdir(parents=True, exist_ok=True)
        path = self.base / FLEET_REPORT
        write_json(path, [r.as_dict() for r in rows])
        print("Fleet report (saving: the recommended mode against the current one, over the history)",
              file=self.out)
        print(format_fleet(rows), file=self.out)
        print(f"Written to {path}", file=self.out)
        print("", file=self.out)

    def _error(self, message: str) -> None:
        error(message, stream=self.err)

    # ---- one placement ----------------------------------------------------------------

    def _placement(self, placement: Placement, sections: Sequence[TableSection], start: datetime,
                   end: datetime, several: bool) -> None:
        try:
            tables, history = self.connect(self.settings, placement)
            names = tables.list_tables()
        except AwsError as e:
            self._error(f"{placement}: cannot list tables: {e}")
            self.tally.failures += 1
            return
        subjects = self._subjects(placement, sections, tables, names)
        if not subjects:
            return
        log.info("%s: reading %d day(s) of CloudWatch history of %d table(s) and GSI(s)", placement,
                 self.settings.backtest_days, len(subjects))
        queries = {s.target: history_queries(s.target, start, end) for s in subjects}
        provisioned = {s.target: provisioned_queries(s.target, start) for s in subjects}
        try:
            sums = history.fetch_history([q for qs in queries.values() for q in qs.values()], stat="Sum")
            levels = history.fetch_history([q for qs in provisioned.values() for q in qs], stat="Average")
        except AwsError as e:
            self._error(f"{placement}: cannot read the CloudWatch history: {e}")
            self.tally.failures += 1
            return
        for subject in subjects:
            q = queries[subject.target]
            series = {metric: sums.get(query, []) for metric, query in q.items()}
            pr, pw = provisioned[subject.target]
            self._one(subject, series, levels.get(pr, []), levels.get(pw, []), start, end, several)

    def _subjects(self, placement: Placement, sections: Sequence[TableSection], tables: TableAdmin,
                  names: Sequence[str]) -> list[Subject]:
        """The matched tables and GSIs that are provisioned (DescribeTable), in name order."""
        subjects: list[Subject] = []
        for name in sorted(names):
            section = next(iter(matching_sections(sections, name)), None)
            if section is None:
                continue
            self.tally.matched += 1
            try:
                desc = tables.describe(name)
            except TableNotFound:
                continue  # deleted since ListTables
            except AwsError as e:
                self._error(f"{name}: DescribeTable failed: {e}")
                self.tally.failures += 1
                continue
            # the simulated table has no GSI: the table's own section, its GSIs each as a table of their own
            subjects.append(Subject(placement, desc.table, dataclasses.replace(section, gsis=())))
            for status in desc.indexes:
                gsi = section.gsi_section(status.target.index or "")
                if gsi is None:
                    continue
                # a GSI follows its table's capacity mode
                alone = TableSection(gsi.key, re.compile(re.escape(str(status.target))), gsi.rules,
                                     mode=section.mode)
                subjects.append(Subject(placement, status, alone))
        return subjects

    # ---- one table or GSI -------------------------------------------------------------

    def _one(self, subject: Subject, series: dict[str, Datapoints], prov_reads: Datapoints,
             prov_writes: Datapoints, start: datetime, end: datetime, several: bool) -> None:
        target = subject.target
        days = self.settings.backtest_days
        if not any(series.values()):
            print(f"{target}: no CloudWatch data in the last {days} day(s), skipped", file=self.out)
            self.tally.no_data += 1
            return
        minutes = int((end - start) // MINUTE)
        reads = per_minute(start, minutes, series[CONSUMED_METRIC[Dim.READS]], series[THROTTLE_METRIC[Dim.READS]])
        writes = per_minute(start, minutes, series[CONSUMED_METRIC[Dim.WRITES]],
                            series[THROTTLE_METRIC[Dim.WRITES]])
        if subject.status.on_demand:
            initial, known = None, "on-demand: what this config would provision, from its consumed units"
        else:
            initial, known = initial_capacity(subject.status, start, prov_reads, prov_writes)
        out = self.base / output_name(target, subject.placement, several)
        out.mkdir(parents=True, exist_ok=True)
        trace = out / HISTORY_FILE
        write_trace(trace, start, reads, writes)
        placement = subject.placement
        local = dataclasses.replace(self.settings, tables=(subject.section,), region=placement.region, regions=(),
                                    role_arn=placement.role_arn)
        with self.quiet():
            report = simulate(local, trace, out, self.make_scaler, table=str(target), initial=initial,
                              aws_target=self.settings.aws_target_utilization, progress=self.err)
        first = f"{initial[0]} reads / {initial[1]} writes" if initial else "default"
        print(f"== {target} in {placement}: {days} day(s), {_stamp(start)} to {_stamp(end)}; "
              f"initial capacity {first} ({known}) ==", file=self.out)
        print(report.summary(), file=self.out)
        print(f"Demand trace: {trace} (replay it with --simulate)", file=self.out)
        print("", file=self.out)
        self.tally.done += 1
        self.tally.on_demand += subject.status.on_demand
        self.fleet.append(fleet_row(subject, report))


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%MZ")


def run(settings: Settings, make_scaler: MakeScaler = production_scaler, *, connect: Connect = connect,
        stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr,
        quiet: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        now: datetime | None = None) -> int:
    """Backtest the config on its tables' CloudWatch history; the exit status."""
    return Backtest(settings, make_scaler, connect=connect, stdout=stdout, stderr=stderr, quiet=quiet).run(now)
