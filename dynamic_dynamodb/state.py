"""The state file: per-target memory (check counters, our decreases, alarms) across restarts.

Version 2 records the region and the IAM role of each target, so the same table name in two
regions or accounts never shares a memory; version 1 files (no region) are still read, their
targets belonging to the default placement (region None)."""
from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import fields
from datetime import date, datetime
from typing import Any, Optional

from .demand import DemandState
from .edge import LOGGER
from .model import Target
from .policy import Memory

log = logging.getLogger(LOGGER)
VERSION = 2
READABLE_VERSIONS = (1, 2)
# (region, role ARN) of a group of targets; (None, None): not recorded (a version 1 file)
PlacementKey = tuple[Optional[str], Optional[str]]
UNPLACED: PlacementKey = (None, None)


def default_path(pid_file_dir: str, instance: str) -> str:
    """Where an instance keeps its state unless --state-file says otherwise."""
    return os.path.join(pid_file_dir, f"dynamic-dynamodb.{instance}.state.json")


def _encode(memory: Memory) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Memory):
        value = getattr(memory, f.name)
        if isinstance(value, DemandState):
            value = {"last_minute": value.last_minute.isoformat() if value.last_minute else None,
                     "demand": list(value.demand), "bucket": value.bucket}
        elif isinstance(value, (date, datetime)):
            value = value.isoformat()
        out[f.name] = value
    return out


def _decode(raw: dict[str, Any]) -> Memory:
    known = {f.name for f in fields(Memory)}
    values = {k: v for k, v in raw.items() if k in known}
    for key in ("decrease_day", "budget_notified"):
        if values.get(key):
            values[key] = date.fromisoformat(values[key])
    if values.get("last_decrease"):
        values["last_decrease"] = datetime.fromisoformat(values["last_decrease"])
    for key in ("reads_demand", "writes_demand"):
        if values.get(key):
            d = values[key]
            values[key] = DemandState(datetime.fromisoformat(d["last_minute"]) if d.get("last_minute") else None,
                                      tuple(float(x) for x in d.get("demand", ())), float(d.get("bucket", 0.0)))
    return Memory(**values)


def load_placed(path: str) -> dict[PlacementKey, dict[Target, Memory]]:
    """The saved memory by (region, role ARN); a missing file starts fresh, a corrupt one
    starts fresh with a warning."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"unknown version {data.get('version')!r}")
        placed: dict[PlacementKey, dict[Target, Memory]] = {}
        for e in data["targets"]:
            where = (e.get("region"), e.get("role_arn"))
            placed.setdefault(where, {})[Target(e["table"], e.get("index"))] = _decode(e["memory"])
        return placed
    except FileNotFoundError:
        # the first run of an instance: normal, so not a warning
        log.info("State file %s not found; starting fresh", path)
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        log.warning("State file %s unreadable (%s); starting fresh", path, e)
        return {}


def load(path: str) -> dict[Target, Memory]:
    """The saved memory of a one-placement run (what load_placed files under (None, None))."""
    return load_placed(path).get(UNPLACED, {})


def save(path: str, memory: dict[Target, Memory]) -> None:
    """Write one memory without region or role (see save_placed)."""
    save_placed(path, {UNPLACED: memory})


def save_placed(path: str, placed: dict[PlacementKey, dict[Target, Memory]]) -> None:
    """Write the memory of every placement atomically (a crash leaves the old file or the new
    one, never half)."""
    targets = []
    for (region, role), memory in sorted(placed.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or "")):
        for t, m in sorted(memory.items(), key=lambda kv: str(kv[0])):
            if m != Memory():
                entry: dict[str, Any] = {"table": t.table, "index": t.index}
                if region is not None:
                    entry["region"] = region
                if role is not None:
                    entry["role_arn"] = role
                entry["memory"] = _encode(m)
                targets.append(entry)
    data = {"version": VERSION, "targets": targets}
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)
    except OSError as e:
        log.warning("Cannot write state file %s: %s", path, e.strerror or e)
        if tmp is not None:  # never leave a temporary file behind, one per pass
            try:
                os.unlink(tmp)
            except OSError:
                pass
