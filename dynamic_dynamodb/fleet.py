"""One process, one pass, every region and account.

The table sections are grouped by placement, (region, role ARN) (see Settings.placements).
Each placement gets its own Scaler with its own Ports (clients built by aws.py's factory,
with the role's credentials), so its memory, its ListTables and its batched CloudWatch
fetch never mix with another's: the same table name in two regions or accounts is two
targets. A pass runs the placements one after another; with more than one placement,
every log line of a placement starts with ``[REGION]`` or ``[REGION as ROLE-ARN]``.

The fleet also keeps the `Ledger` of the state file: which incarnation of each table its
memory belongs to (a table recreated under the same name is met with fresh memory) and
which targets this process has decided on, and when (the entries it owns when saving).
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

from .coordination import Coordinator
from .edge import LOGGER
from .loop import PassReport, Ports, Scaler
from .model import AwsError, Breaker, TableAdmin, TableDescription, Target, Update
from .policy import Memory
from .reasons import Reason
from .settings import Placement, Settings
from .state import UNPLACED, EntryKey, PlacementKey, Record

log = logging.getLogger(LOGGER)

# (the settings of one placement: its region, role and table sections; the placement)
PortsFactory = Callable[[Settings, Placement], Ports]


def placement_key(placement: Placement) -> PlacementKey:
    """How the state file records a placement."""
    return (placement.region, placement.role_arn)


class _OncePerPass:
    """A breaker probe shared by every placement: one probe per URL (and headers) per pass."""

    def __init__(self, breaker: Breaker, answers: dict) -> None:
        self.breaker = breaker
        self.answers = answers

    def is_closed(self, url: str, timeout_ms: float, headers: Mapping[str, str]) -> bool:
        key = (url, timeout_ms, tuple(sorted(headers.items())))
        if key not in self.answers:
            self.answers[key] = self.breaker.is_closed(url, timeout_ms, headers)
        return self.answers[key]


@dataclasses.dataclass
class Ledger:
    """What the state file needs beyond the memory; handed from fleet to fleet on a reload."""

    incarnations: dict[EntryKey, str] = dataclasses.field(default_factory=dict)
    seen: dict[EntryKey, datetime] = dataclasses.field(default_factory=dict)  # by this process
    adopted: set[EntryKey] = dataclasses.field(default_factory=set)  # unplaced entries given a region

    @classmethod
    def of(cls, records: Mapping[EntryKey, Record]) -> Ledger:
        """The incarnations recorded in a state file."""
        return cls({k: r.incarnation for k, r in records.items() if r.incarnation is not None})


class _Incarnations:
    """A TableAdmin that forgets a target's memory when DescribeTable shows another table of
    the same name than the one the memory was about (deleted and recreated)."""

    def __init__(self, tables: TableAdmin, where: PlacementKey, ledger: Ledger,
                 memory: Callable[[], dict[Target, Memory]]) -> None:
        self.tables = tables
        self.where = where
        self.ledger = ledger
        self.memory = memory

    def list_tables(self) -> list[str]:
        """ListTables, unchanged."""
        return self.tables.list_tables()

    def update(self, update: Update) -> None:
        """UpdateTable, unchanged."""
        self.tables.update(update)

    def describe(self, table: str) -> TableDescription:
        """DescribeTable; memory of an earlier table of that name is dropped."""
        desc = self.tables.describe(table)
        for status in (desc.table, *desc.indexes):
            key = (self.where, status.target)
            known = self.ledger.incarnations.get(key)
            if status.incarnation is None or known == status.incarnation:
                continue
            self.ledger.incarnations[key] = status.incarnation
            if known is not None and self.memory().pop(status.target, None) is not None:
                log.info("%s: a new table of that name (%s, the memory was of %s): its memory starts fresh",
                         status.target, status.incarnation, known)
        return desc


class _Label(logging.Filter):
    """Prefixes every record of the daemon's logger with the placement being scaled."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = f"[{self.label}] {record.msg}"
        return True


@contextmanager
def _labelled(label: str | None) -> Iterator[None]:
    if label is None:
        yield
        return
    flt = _Label(label)
    log.addFilter(flt)
    try:
        yield
    finally:
        log.removeFilter(flt)


class Fleet:
    """Runs passes over every placement of a configuration; keeps each placement's memory."""

    def __init__(self, settings: Settings, make_ports: PortsFactory,
                 memory: Mapping[PlacementKey, dict[Target, Memory]] | None = None,
                 dry_run: bool | None = None, ledger: Ledger | None = None,
                 coordinator: Coordinator | None = None) -> None:
        self.settings = settings
        self.coordinator = coordinator
        self.dry_run = settings.dry_run if dry_run is None else dry_run
        self.ledger = ledger if ledger is not None else Ledger()
        saved = dict(memory or {})
        if UNPLACED in saved:  # a state file of before regions were recorded: the default placement
            if (settings.region, None) not in saved:
                self.ledger.adopted.update((UNPLACED, t) for t in saved[UNPLACED])
            saved.setdefault((settings.region, None), saved.pop(UNPLACED))
        self._probes: dict = {}
        self._make_ports = make_ports
        self.scalers: dict[Placement, Scaler] = {}
        for placement, sections in settings.placements().items():
            local = dataclasses.replace(settings, region=placement.region, regions=(),
                                        role_arn=placement.role_arn, tables=sections)
            try:
                ports: Ports | None = self._ports(local, placement)
            except AwsError:
                ports = None  # a broken AWS set-up: said, and tried again, by each pass
            scaler = Scaler(local, ports, memory=saved.get(placement_key(placement), {}), dry_run=self.dry_run)
            if coordinator is not None:
                scaler.owns = functools.partial(coordinator.owns, placement)
                scaler.fence = functools.partial(coordinator.fence, placement)
            self.scalers[placement] = scaler

    def _ports(self, local: Settings, placement: Placement) -> Ports:
        ports = self._make_ports(local, placement)
        if ports.breaker is not None:
            ports = dataclasses.replace(ports, breaker=_OncePerPass(ports.breaker, self._probes))
        tables = _Incarnations(ports.tables, placement_key(placement), self.ledger,
                               lambda: self.scalers[placement].memory)
        return dataclasses.replace(ports, tables=tables)

    def _connected(self, placement: Placement, scaler: Scaler) -> bool:
        """True when the placement has its AWS clients (built now if they could not be before)."""
        if scaler.ports is None:
            try:
                scaler.ports = self._ports(scaler.settings, placement)
            except AwsError as e:
                log.error("Cannot reach AWS: %s", e)
                return False
        return True

    def stop_with(self, stop) -> None:
        """Make every placement's pass end after the table in progress once `stop` is set."""
        for scaler in self.scalers.values():
            scaler.stop = stop

    @property
    def memory(self) -> dict[PlacementKey, dict[Target, Memory]]:
        """Every placement's memory, for the state file."""
        return {placement_key(p): scaler.memory for p, scaler in self.scalers.items()}

    def _no_table_matched(self) -> None:
        """A run that scales nothing is a failure: a wrong region must not pass as success."""
        origins = self.settings.region_origins()
        looked = ", ".join(f"{p} ({origins.get(p.region, 'region')})" for p in self.scalers)
        sections = ", ".join(f"[table: {s.key}]" for s in self.settings.tables)
        log.error("No table matches any section: looked in %s for %s", looked, sections)

    def records(self) -> dict[EntryKey, Record | None]:
        """The state file entries this process owns: every target of its placements it has
        decided on (None: nothing left to remember, remove the entry)."""
        out: dict[EntryKey, Record | None] = {}
        memories = {placement_key(p): scaler.memory for p, scaler in self.scalers.items()}
        default = (self.settings.region, None)
        for key in self.ledger.adopted:  # written under the default placement from now on
            out[key] = None
            memory = memories.get(default, {}).get(key[1])
            if memory is not None:
                out[(default, key[1])] = Record(memory, self.ledger.incarnations.get((default, key[1])))
        for key, when in self.ledger.seen.items():
            where, target = key
            if where not in memories:
                continue  # a placement a reload took away: its entries stay as they are
            memory = memories[where].get(target)
            out[key] = None if memory is None else Record(memory, self.ledger.incarnations.get(key), when)
        return out

    def _saw(self, placement: Placement, report: PassReport, now: datetime) -> None:
        where = placement_key(placement)
        for d in report.decisions:
            self.ledger.seen[(where, d.target)] = now
            if d.status.incarnation is not None:
                self.ledger.incarnations[(where, d.target)] = d.status.incarnation

    def run_pass(self, now: datetime) -> PassReport:
        """One pass over every placement; trouble in one never stops the others."""
        started = time.monotonic()
        self._probes.clear()
        if self.coordinator is not None:
            self.coordinator.begin_pass(self.scalers, now)
        total = PassReport()
        tables = 0
        several = len(self.scalers) > 1
        for placement, scaler in self.scalers.items():
            if scaler.stop.is_set():
                break
            with _labelled(str(placement) if several else None):
                try:
                    report = scaler.run_pass(now) if self._connected(placement, scaler) else PassReport(failures=1)
                except Exception:  # a bug must not cost the other regions their pass
                    log.exception("Unexpected error in the pass; the other regions and accounts go on")
                    report = PassReport(failures=1)
            scaler.last_report = report  # for the metrics, with the placement's region
            self._saw(placement, report, now)
            tables += len({d.target.table for d in report.decided})
            total.aws_errors.extend(report.aws_errors)
            total.decisions.extend(report.decisions)
            total.updates += report.updates
            total.skipped += report.skipped
            total.failures += report.failures
            total.matched += report.matched
            total.prewarms.extend(report.prewarms)
        if not total.matched and not total.failures and not any(s.stop.is_set() for s in self.scalers.values()):
            self._no_table_matched()
            total.failures += 1
        if self.coordinator is not None:
            self.coordinator.end_pass(self.scalers, now)
            # a state table that failed (leases, memory) cost this pass tables or their memory
            total.failures += self.coordinator.take_failures()
        warmed = sum(1 for _, code in total.prewarms if code is Reason.PRE_WARMED)
        log.info("Pass done in %.1f s: %d table(s) and GSI(s) decided in %d table(s), %d region/account "
                 "group(s); %d update(s), %d skipped, %d failure(s)%s", time.monotonic() - started,
                 len(total.decided), tables, len(self.scalers), total.updates, total.skipped, total.failures,
                 f"; {warmed} pre-warm(s)" if warmed else "")
        return total
