"""Time a 30-day, 1-minute simulation (43,200 minutes); prints figures, asserts nothing.

    python benchmarks/simulate.py [TRACE.csv] [--stand-in] [--recommended-only]
    PYTHONPATH=build/compiled python benchmarks/simulate.py    # the compiled build (make compiled)

First with examples/recommended.conf (the figure the docs quote), then with the
built-in threshold rules at two check intervals, split into the simulator's own cost,
the decisions and the output files. It measures the build that is imported: the checkout's
pure Python, or the compiled one when PYTHONPATH names it (`make bench` measures both).

Without a trace it generates 30 days of diurnal demand with bursts (seeded). The passes are
the daemon's own (dynamic_dynamodb.loop), or the tests' stand-in policy with --stand-in.
"""
from __future__ import annotations

import logging
import math
import random
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # after PYTHONPATH: a compiled build named there is the one measured

from dynamic_dynamodb import policy as _policy  # noqa: E402
from dynamic_dynamodb.config import load_settings  # noqa: E402
from dynamic_dynamodb.model import CONSUMED_METRIC, THROTTLE_METRIC, Dim, MetricQuery  # noqa: E402
from dynamic_dynamodb.rules import TargetRules  # noqa: E402
from dynamic_dynamodb.settings import Settings, TableSection  # noqa: E402
from dynamic_dynamodb.simulation import simulate  # noqa: E402
from dynamic_dynamodb.simulation.run import production_scaler  # noqa: E402
from dynamic_dynamodb.simulation.trace import write_trace  # noqa: E402

MINUTES = 30 * 24 * 60


def make_trace(path: Path) -> None:
    """30 days: a daily cycle, weekends at half, noise and a few bursts."""
    rng = random.Random(7)
    start = datetime(2024, 3, 1, tzinfo=timezone.utc)
    reads, writes = [], []
    burst = 0
    for m in range(MINUTES):
        day = 1 + 0.8 * math.sin(2 * math.pi * (m % 1440) / 1440 - math.pi / 2)
        weekly = 0.5 if (m // 1440) % 7 in (5, 6) else 1.0
        if burst == 0 and rng.random() < 0.0005:
            burst = rng.randint(10, 90)
        factor = 4.0 if burst else 1.0
        burst = max(0, burst - 1)
        base = 300 * day * weekly * factor * rng.uniform(0.85, 1.15)
        reads.append(round(base, 3))
        writes.append(round(base * 0.2, 3))
    write_trace(path, start, reads, writes)


def scaler_factory(stand_in: bool = False):
    """The daemon's real pass, or the tests' stand-in policy."""
    # as `--simulate` does: the passes' decisions are in the timeline, not in the log
    logging.getLogger("dynamic-dynamodb").setLevel(logging.ERROR)
    if stand_in:
        sys.path.insert(0, str(ROOT / "tests"))
        from test_simulation_standin import make_standin
        return "stand-in (tests/test_simulation_standin.py)", make_standin
    return "dynamic_dynamodb.loop", production_scaler


class PortsOnly:
    """A pass that makes the loop's port calls and decides nothing: the simulator's own cost."""

    def __init__(self, settings: Settings, *, tables, metrics, breaker) -> None:
        self.tables, self.metrics = tables, metrics

    def run_pass(self, now: datetime) -> SimpleNamespace:
        for name in self.tables.list_tables():
            target = self.tables.describe(name).table.target
            start = now.replace(second=0, microsecond=0) - timedelta(minutes=15)
            self.metrics.fetch([MetricQuery(target, metric[dim], start, start + timedelta(minutes=5), 60)
                                for metric in (CONSUMED_METRIC, THROTTLE_METRIC) for dim in Dim])
        return SimpleNamespace(decisions=[])


def build() -> str:
    """Which build is measured: the policy core's module file tells."""
    where = Path(_policy.__file__)
    kind = "compiled by mypyc" if where.suffix != ".py" else "pure Python"
    return f"{kind}, from {where.parent.parent}"


def best_of(runs: int, job) -> float:
    """Fastest of a few runs: the machine is shared, the minimum is the least disturbed."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        job()
        times.append(time.perf_counter() - began)
    return min(times)


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(args[0]) if args else Path(tmp) / "bench_30d_1m.csv"
        if not args:
            make_trace(trace)
        name, factory = scaler_factory("--stand-in" in argv)
        print(f"trace {trace.name}, scaler: {name}; best of 3 runs; build: {build()}")
        recommended = load_settings(["--config", str(ROOT / "examples" / "recommended.conf")])
        seconds = best_of(3, lambda: simulate(recommended, trace, None, factory, table="simulated", progress=None))
        policy = recommended.tables[0].rules.scaling_policy
        print(f"examples/recommended.conf (scaling-policy {policy}), no output files  {seconds:5.2f} s")
        if "--recommended-only" in argv:
            return 0
        for interval in (60, 300):
            settings = Settings(check_interval=interval,
                                tables=(TableSection("simulated", re.compile("simulated"), TargetRules()),))

            def run(make, out=None, settings=settings):  # called before the loop moves on
                return simulate(settings, trace, out, make, table="simulated", progress=None)

            report = run(factory)
            bare = best_of(3, lambda: run(PortsOnly))
            core = best_of(3, lambda: run(factory))
            full = best_of(3, lambda interval=interval: run(factory, Path(tmp) / f"out{interval}"))
            print(f"check-interval {interval:>3} s, {report.config.minutes} minutes, {report.passes} passes:")
            print(f"  world, ports and baselines (passes only call the ports)  {bare:5.2f} s")
            print(f"  the same with the scaler's decisions                      {core:5.2f} s")
            print(f"  ... and timeline.csv, report.json, plot.png               {full:5.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
