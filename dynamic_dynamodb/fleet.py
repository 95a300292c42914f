"""One process, one pass, every region and account.

The table sections are grouped by placement, (region, role ARN) (see Settings.placements).
Each placement gets its own Scaler with its own Ports (clients built by aws.py's factory,
with the role's credentials), so its memory, its ListTables and its batched CloudWatch
fetch never mix with another's: the same table name in two regions or accounts is two
targets. A pass runs the placements one after another; with more than one placement,
every log line of a placement starts with ``[REGION]`` or ``[REGION as ROLE-ARN]``.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Callable, Iterator, Mapping, Optional

from .edge import LOGGER
from .loop import PassReport, Ports, Scaler
from .model import AwsError, Breaker, Target
from .policy import Memory
from .settings import Placement, Settings
from .state import UNPLACED, PlacementKey

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


class _Label(logging.Filter):
    """Prefixes every record of the daemon's logger with the placement being scaled."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = f"[{self.label}] {record.msg}"
        return True


@contextmanager
def _labelled(label: Optional[str]) -> Iterator[None]:
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
                 memory: Optional[Mapping[PlacementKey, dict[Target, Memory]]] = None,
                 dry_run: Optional[bool] = None) -> None:
        self.settings = settings
        self.dry_run = settings.dry_run if dry_run is None else dry_run
        saved = dict(memory or {})
        if UNPLACED in saved:  # a state file of before regions were recorded: the default placement
            saved.setdefault((settings.region, None), saved.pop(UNPLACED))
        self._probes: dict = {}
        self._make_ports = make_ports
        self.scalers: dict[Placement, Scaler] = {}
        for placement, sections in settings.placements().items():
            local = dataclasses.replace(settings, region=placement.region, regions=(),
                                        role_arn=placement.role_arn, tables=sections)
            try:
                ports: Optional[Ports] = self._ports(local, placement)
            except AwsError:
                ports = None  # a broken AWS set-up: said, and tried again, by each pass
            self.scalers[placement] = Scaler(local, ports, memory=saved.get(placement_key(placement), {}),
                                             dry_run=self.dry_run)

    def _ports(self, local: Settings, placement: Placement) -> Ports:
        ports = self._make_ports(local, placement)
        if ports.breaker is not None:
            ports = dataclasses.replace(ports, breaker=_OncePerPass(ports.breaker, self._probes))
        return ports

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

    def run_pass(self, now: datetime) -> PassReport:
        """One pass over every placement; trouble in one never stops the others."""
        started = time.monotonic()
        self._probes.clear()
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
            tables += len({d.target.table for d in report.decided})
            total.aws_errors.extend(report.aws_errors)
            total.decisions.extend(report.decisions)
            total.updates += report.updates
            total.skipped += report.skipped
            total.failures += report.failures
        log.info("Pass done in %.1f s: %d table(s) and GSI(s) decided in %d table(s), %d region/account "
                 "group(s); %d update(s), %d skipped, %d failure(s)", time.monotonic() - started,
                 len(total.decided), tables, len(self.scalers), total.updates, total.skipped, total.failures)
        return total
