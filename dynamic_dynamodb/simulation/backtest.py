"""`--backtest`: what the config would have done with each matched table's own recent history.

For every placement (region, role) of the config: ListTables and DescribeTable through the
adapters; the tables a `[table: ...]` section matches (the first match wins, as in a pass)
and their GSIs a `[gsi: ...]` section matches; GetMetricData for the 1-minute Sums of
consumed and throttled units of the last N days; demand per minute = (consumed + throttled)
/ 60 units/s, a minute without datapoints 0; then simulate() on that trace, one output
directory per table or GSI. On-demand tables, and tables without any datapoint, are skipped
with a line that says so.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, ContextManager, Optional, Protocol, Sequence, TextIO

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
from ..edge import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, LOGGER, error
from ..settings import Placement, Settings, TableSection
from .run import MakeScaler, production_scaler, simulate
from .trace import write_trace

log = logging.getLogger(LOGGER)


MINUTE = timedelta(minutes=1)
# the newest minutes are left out of the history: CloudWatch may not have published them yet
SETTLE_MINUTES = 5
PROVISIONED_METRIC = {Dim.READS: "ProvisionedReadCapacityUnits", Dim.WRITES: "ProvisionedWriteCapacityUnits"}
# the provisioning at the start of the history: the first PROVISIONED_PERIOD bucket's Average
PROVISIONED_PERIOD = 300
HISTORY_FILE = "history.csv"


class History(Protocol):
    """CloudWatch, for long series (aws.CloudWatchMetrics)."""

    def fetch_history(self, queries: Sequence[MetricQuery], stat: str = "Sum") -> dict[MetricQuery, Datapoints]:
        """`stat` per bucket for every query, oldest first; a query without data maps to []."""


# connect(settings, placement) -> the DynamoDB and CloudWatch adapters of that placement
Connect = Callable[[Settings, Placement], tuple[TableAdmin, History]]


def connect(settings: Settings, placement: Placement) -> tuple[TableAdmin, History]:
    """The real adapters, with clients built by aws.py's factory."""
    from .. import aws  # boto3 is slow to import; a --simulate run never needs it

    conn = aws.Connection(placement.region, settings.aws_access_key_id, settings.aws_secret_access_key,
                          role_arn=placement.role_arn)
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
                     writes: Datapoints) -> tuple[Optional[tuple[int, int]], str]:
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
                 quiet: Callable[[], ContextManager] = contextlib.nullcontext) -> None:
        self.settings = settings
        self.make_scaler = make_scaler
        self.connect = connect
        self.out = stdout
        self.err = stderr
        self.quiet = quiet  # around each replay: the passes' own logging
        self.tally = Tally()
        self.base = Path(settings.simulate_output or ".")

    def run(self, now: Optional[datetime] = None) -> int:
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
        print(f"Backtested {t.done} table(s) and GSI(s) over {settings.backtest_days} day(s); skipped "
              f"{t.on_demand} on-demand, {t.no_data} without data{failed}", file=self.out)
        return EXIT_FAILURE if t.failures else EXIT_OK

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
            section = next((s for s in sections if s.regex.fullmatch(name)), None)
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
            if desc.table.on_demand:
                print(f"{name}: on-demand (PAY_PER_REQUEST), skipped: it has no provisioned capacity to "
                      "compare", file=self.out)
                self.tally.on_demand += 1
                continue
            # the simulated table has no GSI: the table's own section, its GSIs each as a table of their own
            subjects.append(Subject(placement, desc.table, dataclasses.replace(section, gsis=())))
            for status in desc.indexes:
                gsi = next((g for g in section.gsis if g.regex.fullmatch(status.target.index or "")), None)
                if gsi is None:
                    continue
                alone = TableSection(gsi.key, re.compile(re.escape(str(status.target))), gsi.rules)
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


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%MZ")


def run(settings: Settings, make_scaler: MakeScaler = production_scaler, *, connect: Connect = connect,
        stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr,
        quiet: Callable[[], ContextManager] = contextlib.nullcontext, now: Optional[datetime] = None) -> int:
    """Backtest the config on its tables' CloudWatch history; the exit status."""
    return Backtest(settings, make_scaler, connect=connect, stdout=stdout, stderr=stderr, quiet=quiet).run(now)
