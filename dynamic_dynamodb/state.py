"""The state file: per-target memory (check counters, our decreases, alarms) across restarts."""
from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, fields
from datetime import date, datetime
from typing import Any

from .model import Target
from .policy import Memory

log = logging.getLogger("dynamic-dynamodb")
VERSION = 1


def default_path(pid_file_dir: str, instance: str) -> str:
    """Where an instance keeps its state unless --state-file says otherwise."""
    return os.path.join(pid_file_dir, f"dynamic-dynamodb.{instance}.state.json")


def _encode(memory: Memory) -> dict[str, Any]:
    out = {}
    for key, value in asdict(memory).items():
        out[key] = value.isoformat() if isinstance(value, (date, datetime)) else value
    return out


def _decode(raw: dict[str, Any]) -> Memory:
    known = {f.name for f in fields(Memory)}
    values = {k: v for k, v in raw.items() if k in known}
    for key in ("decrease_day", "budget_notified"):
        if values.get(key):
            values[key] = date.fromisoformat(values[key])
    if values.get("last_decrease"):
        values["last_decrease"] = datetime.fromisoformat(values["last_decrease"])
    return Memory(**values)


def load(path: str) -> dict[Target, Memory]:
    """The saved memory; a missing file starts fresh, a corrupt one starts fresh with a warning."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("version") != VERSION:
            raise ValueError(f"unknown version {data.get('version')!r}")
        return {Target(e["table"], e.get("index")): _decode(e["memory"]) for e in data["targets"]}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        log.warning("State file %s unreadable (%s); starting fresh", path, e)
        return {}


def save(path: str, memory: dict[Target, Memory]) -> None:
    """Write the memory atomically (a crash leaves the old file or the new one, never half)."""
    data = {
        "version": VERSION,
        "targets": [{"table": t.table, "index": t.index, "memory": _encode(m)}
                    for t, m in sorted(memory.items(), key=lambda kv: str(kv[0])) if m != Memory()],
    }
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)
    except OSError as e:
        log.warning("Cannot write state file %s: %s", path, e)
