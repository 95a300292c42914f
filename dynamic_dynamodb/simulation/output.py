"""What a simulation leaves behind: timeline.csv, report.json, the terminal table and a progress bar."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from .score import Figures
from .world import World

TIMELINE_COLUMNS = (
    "timestamp", "provisioned_reads", "provisioned_writes", "demand_reads", "demand_writes",
    "consumed_reads", "consumed_writes", "throttled_reads", "throttled_writes", "billing_mode", "decision",
    "reason",
)


def write_timeline(path: Path, world: World, decisions: Mapping[int, str],
                   reasons: Mapping[int, str] | None = None) -> None:
    """One row per minute; demand, consumed and throttled in units/s like the trace; the pass's codes."""
    trace = world.trace
    reasons = reasons or {}
    row = "%s,%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%s,%s,%s\n"
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(TIMELINE_COLUMNS) + "\n")
        for m in range(world.minute):
            fh.write(row % (
                world.time_of(m).strftime("%Y-%m-%dT%H:%M:%SZ"),
                world.provisioned_reads[m], world.provisioned_writes[m],
                trace.reads[m], trace.writes[m],
                world.served_reads[m] / 60.0, world.served_writes[m] / 60.0,
                world.throttled_reads[m] / 60.0, world.throttled_writes[m] / 60.0, world.billing_modes[m],
                _csv_field(decisions[m]) if m in decisions else "",
                _csv_field(reasons.get(m, "")),
            ))


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_json(path: Path, data: Any) -> None:
    """report.json, stable key order, trailing newline."""
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def format_table(config: Figures, baselines: Mapping[str, Figures]) -> str:
    """The comparison printed after a simulation: config, baselines and on-demand."""
    rows = [("policy", "cost $", "vs on-demand", "throttled", "decreases")]
    on_demand = config.on_demand_cost_usd
    for name, f in {"this config": config, **baselines}.items():
        vs = f"{(f.cost_usd / on_demand - 1) * 100:+.0f} %" if on_demand else "-"
        rows.append((name, f"{f.cost_usd:.2f}", vs, f"{f.throttled_share * 100:.3f} %", str(f.decreases)))
    rows.append(("on-demand", f"{on_demand:.2f}", "0 %", "0.000 %", "0"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=False)]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def format_fleet(rows: Sequence[Any]) -> str:
    """The fleet report as a table (rows as given: sorted by the saving), and the total."""
    mode = {"PROVISIONED": "provisioned", "PAY_PER_REQUEST": "on-demand"}
    aws = rows[0].aws_label if rows else "aws-target-70"
    head = ("table", "index", "region", "mode", "recommended", "this config $", "on-demand $", f"{aws} $",
            "throttled", "saving $")
    lines = [head]
    for r in rows:
        lines.append((r.table, r.index or "-", r.region, mode.get(r.billing_mode, r.billing_mode),
                      mode.get(r.recommended_mode, r.recommended_mode), f"{r.cost_this_config:.2f}",
                      f"{r.cost_on_demand:.2f}", f"{r.cost_aws_target:.2f}",
                      f"{r.throttled_share_this_config * 100:.3f} %", f"{r.saving:.2f}"))
    now = sum(r.cost_of(r.billing_mode) for r in rows)
    then = sum(r.cost_of(r.recommended_mode) for r in rows)
    lines.append(("total", "", "", "", "", "", "", "", "", f"{now - then:.2f}"))
    widths = [max(len(x[i]) for x in lines) for i in range(len(head))]
    text = []
    for x in lines:
        left = [c.ljust(w) for c, w in zip(x[:5], widths[:5], strict=False)]
        text.append("  ".join(left + [c.rjust(w) for c, w in zip(x[5:], widths[5:], strict=False)]).rstrip())
    text.append(f"Total: ${now:.2f} in the current modes, ${then:.2f} in the recommended ones "
                f"(this config where provisioned).")
    return "\n".join(text)


class Progress:
    """A one-line progress bar on a terminal; silent when the stream is not a TTY."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO | None, label: str = "simulating") -> None:
        self.total = total
        self.stream = stream if stream is not None and _isatty(stream) else None
        self.label = label
        self.every = max(1, total // 100)  # redraw at most ~100 times

    def update(self, done: int) -> None:
        """Redraw every percent or so, and at the end."""
        if self.stream is None or (done % self.every and done != self.total):
            return
        filled = self.WIDTH * done // self.total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {100 * done // self.total:3d} %")
        self.stream.flush()

    def close(self) -> None:
        """Erase the bar."""
        if self.stream is not None:
            self.stream.write("\r" + " " * (len(self.label) + self.WIDTH + 10) + "\r")
            self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
