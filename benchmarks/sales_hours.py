"""The worked example of docs/schedules.rst: a week of 16:00-22:00 sales hours, with and without a schedule.

    python benchmarks/sales_hours.py [--plot docs/_static/sales-hours-plot.png]

Writes the trace and both configs into a temporary folder, simulates each through the
daemon's own pass, and prints cost and throttled share side by side.
"""
from __future__ import annotations

import argparse
import logging
import math
import random
import shutil
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynamic_dynamodb.config import load_settings  # noqa: E402
from dynamic_dynamodb.simulation import simulate  # noqa: E402
from dynamic_dynamodb.simulation.trace import write_trace  # noqa: E402

START = datetime(2026, 11, 2, tzinfo=timezone.utc)  # a Monday
DAYS = 7

BASE = """\
[global]
check-interval: 60

[default_options]
scaling-policy: demand
target-utilization: 80
lookback-window-start: 5
lookback-period: 5
"""

SCHEDULE = """\
[schedule: sales]
hours: 16:00-22:00
timezone: UTC
min-provisioned-reads: 1200
min-provisioned-writes: 240
"""


def sales_week() -> tuple[list[float], list[float]]:
    """Demand per minute: a quiet daily wave, and ten times more from 16:00 to 22:00 UTC."""
    rng = random.Random(16_22)
    reads, writes = [], []
    for m in range(DAYS * 1440):
        t = START + timedelta(minutes=m)
        hour = t.hour + t.minute / 60
        base = 100 * (0.8 + 0.2 * math.sin((hour - 6) / 24 * 2 * math.pi)) * rng.gauss(1.0, 0.05)
        factor = 10.0 if 16 <= hour < 22 else 1.0
        reads.append(round(base * factor, 3))
        writes.append(round(base * factor / 5, 3))
    return reads, writes


def run(folder: Path, trace: Path, name: str, text: str):
    conf = folder / f"{name}.conf"
    conf.write_text(text)
    settings = load_settings(["--config", str(conf)])
    return simulate(settings, trace, folder / name, progress=None)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", help="copy the plot of the run with the schedule here")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the budget notices of each pass are not the point here
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        trace = folder / "sales.csv"
        write_trace(trace, START, *sales_week())
        plain = run(folder, trace, "demand", BASE + "[table: sales]\n")
        scheduled = run(folder, trace, "scheduled", BASE + SCHEDULE + "[table: sales]\nschedules: sales\n")
        aws = plain.baselines["aws-target-70"]
        print(f"{'run':28} {'cost $':>8} {'throttled':>10}")
        for label, figures in (("demand policy", plain.config), ("demand policy + schedule", scheduled.config),
                               ("aws-target-70", aws)):
            print(f"{label:28} {figures.cost_usd:8.2f} {figures.throttled_share:10.3%}")
        if args.plot:
            shutil.copy(folder / "scheduled" / "plot.png", args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
