"""Policy quality: the recommended config, the 1.6.0 defaults and AWS target tracking on real traces.

    python benchmarks/policy_quality.py [TRACE.csv ...] [--perturb]

Runs the simulator (the daemon's real pass on SCORING.md's table model) over every trace
(default: ../shared/traces/*.csv) and prints cost, cost against the clairvoyant oracle and
throttled share per trace, with geometric means. `--perturb` adds variants of each trace
(time-shifted, scaled down and up, noisy, days reordered) to check that the policy is not
tuned to the shape of the shared traces.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import logging  # noqa: E402

from dynamic_dynamodb.config import load_settings  # noqa: E402
from dynamic_dynamodb.simulation.run import simulate  # noqa: E402
from dynamic_dynamodb.simulation.trace import load_trace, write_trace  # noqa: E402

CONFIGS = {
    "recommended": ROOT / "examples" / "recommended.conf",
    "dd-1.6.0-defaults": ROOT / "example-dynamic-dynamodb.conf",
}
SHARED = ROOT.parent / "shared" / "traces"


def run_one(args: tuple[str, str]) -> tuple[str, dict]:
    """Simulate one trace with every config; the AWS baseline comes with the first."""
    trace, recommended, only = args
    logging.getLogger("dynamic-dynamodb").setLevel(logging.CRITICAL)  # decisions are in the figures
    out: dict = {}
    configs = {**CONFIGS, **({"recommended": Path(recommended)} if recommended else {})}
    for name, conf in configs.items():
        if only and name != "recommended":
            continue
        settings = load_settings(["--config", str(conf)])
        report = simulate(settings, trace, None, progress=None)
        out[name] = report.config
        out["aws-target-70"] = report.baselines["aws-target-70"]
    return trace, out


def perturbations(path: Path, tmp: Path) -> list[Path]:
    """Variants of a trace that keep its character but not its exact shape."""
    trace = load_trace(path)
    step = trace.step_minutes
    rows = list(zip(trace.reads[::step], trace.writes[::step], strict=True))
    per_day = 1440 // step
    rng = random.Random(7)
    variants = {
        "shift7h": rows[7 * 60 // step:] + rows[:7 * 60 // step],
        "x0.2": [(r * 0.2, w * 0.2) for r, w in rows],
        "x5": [(r * 5, w * 5) for r, w in rows],
        "noise15": [(r * max(0.0, rng.gauss(1, 0.15)), w * max(0.0, rng.gauss(1, 0.15))) for r, w in rows],
        "days-reordered": [row for day in sorted(range(0, len(rows), per_day), key=lambda d: rng.random())
                           for row in rows[day:day + per_day]],
    }
    paths = []
    for name, data in variants.items():
        p = tmp / f"{path.stem}~{name}.csv"
        write_trace(p, trace.start + timedelta(0), [r for r, _ in data], [w for _, w in data], step)
        paths.append(p)
    return paths


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="*", type=Path)
    parser.add_argument("--perturb", action="store_true", help="also run perturbed variants of each trace")
    parser.add_argument("--config", default="", help="score this config in the recommended column instead")
    parser.add_argument("--no-defaults", action="store_true", help="leave out the 1.6.0 defaults (twice as fast)")
    args = parser.parse_args()
    traces = args.traces or sorted(SHARED.glob("*.csv"))
    if not traces:
        print(f"no traces given and none in {SHARED}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        if args.perturb:
            traces = traces + [p for t in traces for p in perturbations(t, Path(tmp))]
        with ProcessPoolExecutor(max_workers=2) as pool:
            results = dict(pool.map(run_one, [(str(t), args.config, args.no_defaults) for t in traces]))
    names = ["recommended", "aws-target-70"] if args.no_defaults else ["recommended", "dd-1.6.0-defaults",
                                                                      "aws-target-70"]
    print(f"{'trace':42} " + " ".join(f"{n:>38}" for n in names))
    print(f"{'':42} " + " ".join(f"{'cost $':>12}{'x oracle':>10}{'throttled':>11}{'x aws':>5}" for _ in names))
    ratios: dict[str, list[float]] = {n: [] for n in names}
    worse = []
    for trace in map(str, traces):
        r = results[trace]
        aws = r["aws-target-70"]
        cells = []
        for n in names:
            f = r[n]
            ratios[n].append(f.cost_usd / aws.cost_usd)
            cells.append(f"{f.cost_usd:12.2f}{f.cost_vs_oracle:10.2f}{f.throttled_share * 100:10.4f}%"
                         f"{f.cost_usd / aws.cost_usd:5.2f}")
            if n == "recommended" and f.throttled_share > aws.throttled_share:
                worse.append(Path(trace).stem)
            if n == "recommended" and f.illegal_decreases:
                worse.append(f"{Path(trace).stem} (illegal decreases!)")
        print(f"{Path(trace).stem[:42]:42} " + " ".join(cells))
    print("geometric mean of cost / aws-target-70: " + ", ".join(f"{n} {geomean(ratios[n]):.3f}" for n in names))
    print("recommended throttles more than aws-target-70 on: " + (", ".join(worse) if worse else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
