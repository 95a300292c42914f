"""Write two weeks of one-minute demand in six shapes the shared traces lack; prints the files.

    python benchmarks/synthetic_traces.py DIR
    python benchmarks/policy_quality.py DIR/*.csv

The shapes (seeded, writes at 0.3 of reads): a daily cycle with 10 % noise, the same with
30 % log-normal noise, a slow random walk, an hourly job at five times the base for its
first ten minutes, a daily cycle with random bursts of 2 to 12 times for 2 to 30 minutes,
and a four-hour sawtooth of a batch that grows until it restarts. They are a check on
traffic the policy was not developed on, not a target: docs/policy.rst quotes the figures.
"""
from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynamic_dynamodb.simulation.trace import write_trace  # noqa: E402

MINUTES = 14 * 1440
START = datetime(2025, 6, 2, tzinfo=timezone.utc)  # a Monday


def diurnal(m: int) -> float:
    """A daily cycle from 0.3 to 1.7, lowest at midnight UTC."""
    return 1 + 0.7 * math.sin(2 * math.pi * (m % 1440) / 1440 - math.pi / 2)


def random_walk(rng: random.Random) -> list[float]:
    """A level that drifts by about 2 % a minute, never below 5."""
    out, level = [], 100.0
    for _ in range(MINUTES):
        level = max(5.0, level * math.exp(rng.gauss(0, 0.02)))
        out.append(level)
    return out


def bursts(rng: random.Random) -> list[float]:
    """A daily cycle with a burst of 2 to 12 times, 2 to 30 minutes long, about every 8 hours."""
    out, left, factor = [], 0, 1.0
    for m in range(MINUTES):
        if left == 0 and rng.random() < 0.002:
            left, factor = rng.randint(2, 30), rng.choice([2.0, 3.0, 6.0, 12.0])
        out.append(120 * diurnal(m) * rng.gauss(1, 0.08) * (factor if left else 1.0))
        left = max(0, left - 1)
    return out


SHAPES: dict[str, Callable[[random.Random], list[float]]] = {
    "diurnal_noise10": lambda rng: [200 * diurnal(m) * rng.gauss(1, 0.10) for m in range(MINUTES)],
    "diurnal_lognormal30": lambda rng: [150 * diurnal(m) * rng.lognormvariate(0, 0.3) for m in range(MINUTES)],
    "random_walk": random_walk,
    "hourly_job_5x": lambda rng: [100 * (5 if m % 60 < 10 else 1) * rng.gauss(1, 0.05) for m in range(MINUTES)],
    "diurnal_bursts": bursts,
    "batch_sawtooth_4h": lambda rng: [80 + 400 * (m % 240) / 240 for m in range(MINUTES)],
}


def main(argv: list[str]) -> int:
    """Write every shape into the folder argv[0] names."""
    if len(argv) != 1:
        print("usage: python benchmarks/synthetic_traces.py DIR", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    folder.mkdir(parents=True, exist_ok=True)
    for seed, (name, make) in enumerate(SHAPES.items()):
        reads = [round(max(0.0, v), 3) for v in make(random.Random(seed))]
        path = folder / f"{name}.csv"
        write_trace(path, START, reads, [round(v * 0.3, 3) for v in reads])
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
