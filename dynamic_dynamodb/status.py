"""What the daemon is doing: `--status`/`--status-json` and the heartbeat file of a detached daemon.

`--status` describes every matched table and GSI (one DescribeTable per table, never an
UpdateTable) and shows it with the state file's memory: capacity, the last decision, the
decreases left today and when the next one is allowed, as the decrease planner sees them.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from . import policy, prewarm, schedule
from .edge import LOGGER
from .leases import SHARDS, account_of, shard_of
from .model import AwsError, TableNotFound, Target, TargetStatus, WarmThroughput
from .policy import Memory
from .rules import TargetRules
from .settings import Placement
from .state import decode_memory
from .statetable import StateTable, parse_state_key

log = logging.getLogger(LOGGER)

COLUMNS = ("table", "index", "region", "billing_mode", "provisioned_reads", "provisioned_writes",
           "warm_throughput", "last_decision", "decreases_left_today", "next_decrease_at", "schedule", "held_by")
# (placement, table) -> the daemon holding the table's shard, with a state table
OwnerOf = Callable[[Placement, str], str | None]


def iso(when: datetime | None) -> str | None:
    """UTC ISO-8601 with a Z, or None."""
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def status_row(status: TargetStatus, region: str, memory: Memory, now: datetime,
               reserved: int = 0, rules: TargetRules | None = None) -> dict[str, Any]:
    """One table or GSI as --status-json shows it (pure: the planner's own budget and schedule functions)."""
    spent, _ = policy.decreases_spent(status, memory, now)
    in_force: tuple = ()
    keep_for = None
    if rules is not None:
        reserved, keep_for = policy.reserve(rules, now, spent)
        in_force = schedule.in_force(rules.schedules, now) if rules.schedules else ()
    allowed_at = policy.next_decrease_at(status, memory, now, reserved, keep_for)
    last = None
    if memory.last_reason is not None:
        last = {"reason": memory.last_reason, "at": memory.last_decided}
    return {
        "table": status.target.table,
        "index": status.target.index,
        "region": region,
        "billing_mode": status.billing_mode,
        "provisioned_reads": None if status.on_demand else status.capacity.reads,
        "provisioned_writes": None if status.on_demand else status.capacity.writes,
        # DescribeTable's WarmThroughput (units/s), null when the endpoint reports none
        "warm_throughput": warm_fields(status),
        "pre_warmed_until": iso(memory.prewarm_until),  # the peak the last pre-warm was for ends then
        "last_decision": last,
        "decreases_left_today": max(0, policy.FREE_DECREASES_PER_DAY - spent),
        "next_decrease_at": None if allowed_at <= now else iso(allowed_at),
        # the schedules in force, by name ("sales" or "sales, launch"), null when none is
        "schedule": ", ".join(sched.name for sched in in_force) or None,
        "held_by": None,  # with a state table: the daemon whose lease covers the table
    }


def warm_fields(status: TargetStatus) -> dict[str, Any] | None:
    """The warm throughput as --status-json shows it; None when unknown."""
    warm = status.warm
    if warm is None:
        return None
    return {"read_units_per_second": warm.reads, "write_units_per_second": warm.writes, "status": warm.status}


@dataclass
class StatusReport:
    """The rows of every placement, and whether an AWS call failed."""

    rows: list[dict[str, Any]]
    failures: int = 0


def shared_state(table: StateTable, now: datetime) -> tuple[dict, OwnerOf]:
    """A state table's memory of every shard, by placement, and who holds which shard now."""
    memory: dict = {}
    for shard in range(SHARDS):
        for sk, (raw, _seen) in table.load(shard).items():
            try:
                region, role, name, index = parse_state_key(sk)
                memory.setdefault((region, role or None), {})[Target(name, index or None)] = decode_memory(raw)
            except (ValueError, KeyError, TypeError):
                log.warning("State table %s: memory of %s unreadable, shown without it", table.name, sk)
    leases = table.leases()

    def owner_of(placement: Placement, name: str) -> str | None:
        lease = leases.get(shard_of(placement.region, account_of(placement.role_arn), name))
        return lease.owner if lease is not None and lease.held(now.timestamp()) else None
    return memory, owner_of


def collect(fleet, now: datetime, owner_of: OwnerOf | None = None) -> StatusReport:
    """DescribeTable for every matched table and GSI of a Fleet, with its memory; no UpdateTable."""
    report = StatusReport([])
    for placement, scaler in fleet.scalers.items():
        if not fleet._connected(placement, scaler):
            report.failures += 1
            continue
        try:
            names = scaler.ports.tables.list_tables()
        except AwsError as e:
            log.error("Cannot list tables: %s", e)
            report.failures += 1
            continue
        for name in sorted(names):
            section = scaler.section_for(name)
            if section is None:
                continue
            try:
                desc = scaler.ports.tables.describe(name)
            except TableNotFound:
                continue
            except AwsError as e:
                log.error("%s: DescribeTable failed: %s", name, e)
                report.failures += 1
                continue
            targets = [(desc.table, section.rules)]
            for index in desc.indexes:
                gsi = section.gsi_section(index.target.index or "")
                if gsi is not None:
                    targets.append((index, gsi.rules))
            for status, rules in targets:
                memory = scaler.memory.get(status.target, Memory())
                row = status_row(status, placement.region, memory, now, rules=rules)
                if owner_of is not None:
                    row["held_by"] = owner_of(placement, status.target.table)
                report.rows.append(row)
    return report


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict) and "read_units_per_second" in value:  # warm_throughput
        return prewarm.shown(WarmThroughput(value["read_units_per_second"], value["write_units_per_second"]))
    if isinstance(value, dict):  # last_decision
        return f"{value['reason']} at {value['at']}" if value.get("at") else str(value["reason"])
    return str(value)


def print_table(rows: list[dict[str, Any]], out: TextIO) -> None:
    """The rows as an aligned terminal table."""
    headers = ("TABLE", "INDEX", "REGION", "MODE", "READS", "WRITES", "WARM", "LAST DECISION", "DECREASES LEFT",
               "NEXT DECREASE", "SCHEDULE", "HELD BY")
    cells = [[_cell(row[c]) for c in COLUMNS] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    for line in (headers, *cells):
        print("  ".join(text.ljust(w) for text, w in zip(line, widths, strict=False)).rstrip(), file=out)


def print_json(rows: list[dict[str, Any]], out: TextIO) -> None:
    """The rows as one JSON array."""
    json.dump(rows, out, indent=2)
    print(file=out)


# ---- the heartbeat file of a detached daemon ------------------------------------------------


def heartbeat_path(pid_file_dir: str, instance: str) -> str:
    """`<pid-file-dir>/dynamic-dynamodb.<instance>.heartbeat.json`, beside the pid file."""
    return os.path.join(pid_file_dir, f"dynamic-dynamodb.{instance}.heartbeat.json")


def write_heartbeat(path: str, pid: int, instance: str, started: datetime, last_pass: datetime, ok: bool) -> None:
    """Record a completed pass (atomically: a reader sees the old file or the new one)."""
    data = {"pid": pid, "instance": instance, "started_at": iso(started), "last_pass_at": iso(last_pass),
            "last_pass_ok": ok}
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".heartbeat-", dir=os.path.dirname(os.path.abspath(path)))
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError as e:
        log.warning("Cannot write heartbeat file %s: %s", path, e.strerror or e)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def read_heartbeat(path: str) -> dict[str, Any]:
    """The heartbeat file's fields; {} when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
