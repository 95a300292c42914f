"""Replay a demand trace through the daemon's real pass against simulated DynamoDB and CloudWatch."""
from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from ..frozen import ByFields
from ..loop import Ports, Scaler
from ..settings import Settings
from .baselines import baseline_policies, replay
from .output import Progress, format_table, write_json, write_timeline
from .plot import write_plot
from .ports import ClosedBreaker, SimMetrics, SimTables
from .score import Figures, oracle_cost, score
from .trace import Trace, load_trace
from .world import World

# make_scaler(settings, tables=..., metrics=..., breaker=...) -> an object with run_pass(now)
MakeScaler = Callable[..., Any]

DEFAULT_NAME = "simulated"


class NoTableName(ValueError):
    """No table section, or none that a name for the simulated table can match."""


@dataclass(frozen=True)
class Report(ByFields):
    """The outcome of one simulation: the config's figures against the baselines'."""

    trace: Trace
    table: str
    check_interval_minutes: int
    passes: int
    config: Figures
    baselines: dict[str, Figures]
    recommendation: str
    output_dir: Path | None = None
    plot_hint: str | None = None  # why there is no plot.png, when there is none

    def as_dict(self) -> dict:
        """report.json: the config's figures at the top, the baselines' under `baselines`."""
        return {
            "trace": self.trace.name,
            "table": self.table,
            "start": self.trace.start.isoformat(),
            "check_interval_minutes": self.check_interval_minutes,
            "passes": self.passes,
            **self.config.as_dict(),
            "baselines": {name: f.as_dict() for name, f in self.baselines.items()},
            "recommendation": self.recommendation,
        }

    def summary(self) -> str:
        """The terminal comparison, the recommendation and where the files are."""
        lines = [format_table(self.config, self.baselines), "", self.recommendation]
        if self.output_dir is not None:
            files = "timeline.csv, report.json" + ("" if self.plot_hint else ", plot.png")
            lines.append(f"Written to {self.output_dir}/: {files}")
        if self.plot_hint:
            lines.append(self.plot_hint)
        return "\n".join(lines)


def production_scaler(settings: Settings, *, tables: SimTables, metrics: SimMetrics,
                      breaker: ClosedBreaker) -> Scaler:
    """The daemon's own pass, wired to the simulated ports."""
    return Scaler(settings, Ports(tables=tables, metrics=metrics, notifier=None, breaker=breaker), dry_run=False)


def table_name(settings: Settings, trace: Trace) -> str:
    """A name for the simulated table that the config's first table section matches."""
    if not settings.tables:
        # the pass would scale nothing: the report would score the initial capacity, not a config
        raise NoTableName("nothing to simulate: give --config with a [table: REGEX] section, or --table-name")
    for section in settings.tables:
        # "orders.*" -> "orders": a prefix pattern's own prefix is the likeliest real name
        plain = re.sub(r"\.[*+]|[\^$]", "", section.key)
        for name in (plain, section.key, trace.name, DEFAULT_NAME):
            if name and section.regex.fullmatch(name):
                return name
    keys = ", ".join(s.key for s in settings.tables)
    raise NoTableName(f"cannot name the simulated table: no [table: ...] section ({keys}) matches its own key, "
                      f"{trace.name!r} or {DEFAULT_NAME!r}")


def passes_every(settings: Settings) -> int:
    """Minutes between passes: the check interval rounded to whole minutes (half up), at least 1."""
    return max(1, int(settings.check_interval / 60 + 0.5))


def simulate(settings: Settings, trace_path: str | Path | Trace, output_dir: str | Path | None,
             make_scaler: MakeScaler = production_scaler, *, table: str | None = None,
             initial: tuple[int, int] | None = None, aws_target: float = 70.0,
             progress: TextIO | None = sys.stderr, baselines: bool = True) -> Report:
    """Replay the trace; write timeline.csv, report.json and plot.png into `output_dir` unless it is None.

    `baselines=False` scores the config alone (for capacity-mode auto's hourly look back). Raises TraceError
    for a bad trace.
    """
    # a backtest's plot is titled with its table
    trace = trace_path if isinstance(trace_path, Trace) else load_trace(trace_path, name=table or "")
    name = table or table_name(settings, trace)
    world = World(trace, initial)
    tables, metrics = SimTables(world, name), SimMetrics(world, name)
    # a trace has only the totals: the simulated CloudWatch keeps no throttles by cause, so the
    # pass asks only for the four series it answers, as with `throttle-causes: false` (the same
    # decisions: every throttle counts when no cause is known), a third of a pass's work less
    settings = replace(settings, throttle_causes=False)
    scaler = make_scaler(settings, tables=tables, metrics=metrics, breaker=ClosedBreaker())
    every = passes_every(settings)
    decisions: dict[int, str] = {}
    reasons: dict[int, str] = {}  # the codes of the pass's decisions, one per table or GSI
    bar = Progress(trace.minutes, progress)
    passes = 0
    while not world.done:
        m = world.minute
        if m % every == 0:
            # the pass runs at the start of the minute, before the minute is served
            outcome = scaler.run_pass(world.now)
            passes += 1
            if outcome.decisions and output_dir is not None:  # only timeline.csv shows them
                decisions[m] = "; ".join(str(d.summary) for d in outcome.decisions)
                reasons[m] = ";".join(str(d.code) for d in outcome.decisions)
        world.serve()
        bar.update(m + 1)
    bar.close()

    oracle = oracle_cost(trace)
    mine = score(world, oracle)
    if not baselines:
        return Report(trace, name, every, passes, mine, {}, "")
    others = {label: replay(trace, policy, initial) for label, policy in baseline_policies(trace, aws_target).items()}
    theirs = {label: score(w, oracle) for label, w in others.items()}
    aws_label = next(iter(others))
    report = Report(trace, name, every, passes, mine, theirs, recommend(mine, aws_label, theirs[aws_label]))
    if output_dir is None:
        return report
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_timeline(out / "timeline.csv", world, decisions, reasons)
    hint = write_plot(out / "plot.png", world, mine, others[aws_label], aws_label, theirs[aws_label])
    report = replace(report, output_dir=out, plot_hint=hint)
    write_json(out / "report.json", report.as_dict())
    return report


def recommend(config: Figures, aws_label: str, aws: Figures) -> str:
    """One sentence: what to do with this table, given the config's figures and AWS target tracking's."""
    cost, od = config.cost_usd, config.on_demand_cost_usd
    if config.on_demand_minutes:
        share = config.on_demand_minutes / max(1, config.minutes)
        vs = f"{abs(1 - cost / od):.0%} {'below' if cost <= od else 'above'} on-demand" if od else "no on-demand cost"
        return (f"Provisioned and on-demand by turns with capacity-mode (on-demand {share:.0%} of the time, "
                f"{config.switches_to_on_demand} switch(es) to on-demand): ${cost:.2f}, {vs}, "
                f"{config.throttled_share:.3%} of demand throttled.")
    if od < cost:
        return (f"On-demand would be cheaper for this traffic: ${od:.2f} against ${cost:.2f} provisioned "
                f"with this config.")
    if aws.cost_usd < cost and aws.throttled_share <= config.throttled_share:
        return (f"Keep provisioned capacity, but {aws_label} (AWS target tracking) would cost less "
                f"(${aws.cost_usd:.2f} against ${cost:.2f}) and throttle no more "
                f"({aws.throttled_share:.3%} against {config.throttled_share:.3%}).")
    if config.throttled_share > max(aws.throttled_share, 0.001):
        return (f"Keep provisioned capacity, but this config throttles {config.throttled_share:.3%} of demand "
                f"against {aws.throttled_share:.3%} for {aws_label}: scale up sooner or by more.")
    saving = 1 - cost / od if od else 0.0
    return (f"Keep provisioned with this config: ${cost:.2f}, {saving:.0%} below on-demand, "
            f"{config.throttled_share:.3%} of demand throttled.")
