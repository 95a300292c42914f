"""Demand traces: CSV `timestamp,reads,writes` at a regular step, expanded to one value per minute."""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

from ..frozen import ByFields

COLUMNS = ("timestamp", "reads", "writes")


class TraceError(ValueError):
    """A trace file that cannot be replayed; the message is one line naming the file and line."""


@dataclass(frozen=True)
class Trace(ByFields):
    """Demand per minute (units/s), minute 0 starting at `start` (UTC)."""

    name: str
    start: datetime
    step_minutes: int
    reads: list[float]
    writes: list[float]

    @property
    def minutes(self) -> int:
        """Number of replayed minutes."""
        return len(self.reads)

    def time_of(self, minute: int) -> datetime:
        """Virtual time of the start of `minute`."""
        return self.start + timedelta(minutes=minute)


def parse_timestamp(text: str) -> datetime:
    """ISO-8601 with `Z`, an offset or nothing (then UTC), as an aware UTC datetime."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is None:
        return ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc)


def load_trace(path: str | Path, name: str = "") -> Trace:
    """Read and check a trace file. Raises TraceError naming the file and line of the first fault."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # Excel's "CSV UTF-8" starts with a byte-order mark
            return _parse(fh, str(path), name or path.stem)
    except OSError as exc:
        raise TraceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TraceError(f"{path}: not a CSV text file: {exc}") from exc


def _parse(fh: TextIO, where: str, name: str) -> Trace:
    rows = csv.reader(fh)
    header = next(rows, None)
    if header is None or not any(cell.strip() for cell in header):
        raise TraceError(f"{where}: empty file, expected the header {','.join(COLUMNS)}")
    header = [cell.strip().lower() for cell in header]
    missing = [col for col in COLUMNS if col not in header]
    if missing:
        raise TraceError(f"{where}, line 1: missing column(s) {', '.join(missing)} (header: {','.join(header)})")
    i_ts, i_r, i_w = (header.index(col) for col in COLUMNS)
    stamps: list[datetime] = []
    reads: list[float] = []
    writes: list[float] = []
    step = None
    for row in rows:
        line = rows.line_num
        if not "".join(row).strip():  # any(cell.strip() for cell in row), once per row without a generator
            continue  # blank lines (a trailing newline or two) carry no data
        if len(row) < len(header):
            raise TraceError(f"{where}, line {line}: {len(row)} fields, the header has {len(header)}")
        try:
            ts = parse_timestamp(row[i_ts])
        except ValueError:
            raise TraceError(f"{where}, line {line}: timestamp {row[i_ts]!r} is not ISO-8601") from None
        r = _rate(row[i_r], "reads", where, line)
        w = _rate(row[i_w], "writes", where, line)
        if stamps:
            gap = ts - stamps[-1]
            if step is None:
                step = gap
                if step <= timedelta(0) or step % timedelta(minutes=1):
                    raise TraceError(f"{where}, line {line}: step {_fmt(step)} is not a positive "
                                     "whole number of minutes")
            elif gap != step:
                raise TraceError(f"{where}, line {line}: irregular step: {_fmt(gap)} after {stamps[-1].isoformat()}, "
                                 f"the trace's step is {_fmt(step)}")
        stamps.append(ts)
        reads.append(r)
        writes.append(w)
    if len(stamps) < 2 or step is None:  # the second row sets the step
        raise TraceError(f"{where}: {len(stamps)} data row(s), need at least 2 to know the step")
    per = step // timedelta(minutes=1)
    # a step longer than a minute holds its value for each of its minutes (SCORING.md)
    return Trace(name, stamps[0], per, _expand(reads, per), _expand(writes, per))


def _rate(text: str, column: str, where: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TraceError(f"{where}, line {line}: {column} {text.strip()!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise TraceError(f"{where}, line {line}: {column} {text.strip()!r} must be a finite number >= 0")
    return value


def _expand(values: list[float], per: int) -> list[float]:
    if per == 1:
        return values
    out: list[float] = []
    for v in values:
        out.extend([v] * per)
    return out


def _fmt(step: timedelta) -> str:
    seconds = int(step.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{step.total_seconds():g} s"


def write_trace(path: str | Path, start: datetime, reads: list[float], writes: list[float],
                step_minutes: int = 1) -> None:
    """Write a trace file (for tests and benchmarks)."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        for i, (r, w) in enumerate(zip(reads, writes, strict=True)):
            ts = start + timedelta(minutes=i * step_minutes)
            out.writerow((ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), r, w))
