"""Our simulator against the reference scorer on the full shared traces; prints a table, asserts nothing.

    python benchmarks/agreement.py [TRACE.csv ...] [--stand-in]

For each trace: the config's run (the daemon's real pass, or the tests' stand-in policy)
scored by us and by `refsim.py score`, then aws-target-70 and fixed-peak as we
replay them against `refsim.py baselines`.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFSIM = SHARED / "tools" / "refsim.py"
sys.path.insert(0, str(ROOT))

from simulate import scaler_factory  # noqa: E402  (benchmarks/simulate.py)

from dynamic_dynamodb.rules import TargetRules  # noqa: E402
from dynamic_dynamodb.settings import Settings, TableSection  # noqa: E402
from dynamic_dynamodb.simulation import simulate  # noqa: E402


def refsim(*args: object) -> dict:
    done = subprocess.run([sys.executable, str(REFSIM), *map(str, args)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def row(trace: str, policy: str, ours: dict, ref: dict) -> str:
    cost_diff = (ours["cost_usd"] / ref["cost"] - 1) * 100 if ref["cost"] else 0.0
    share_diff = ours["throttled_share"] - ref["throttled_share"]
    return (f"{trace:<30} {policy:<14} {ours['cost_usd']:>10.4f} {ref['cost']:>10.4f} {cost_diff:>+8.4f}% "
            f"{ours['throttled_share']:>9.6f} {ref['throttled_share']:>9.6f} {share_diff:>+10.6f} "
            f"{ours['decreases']:>5}/{ref['decreases']:<5} {ref['illegal_decreases']:>7}")


def main(argv: list[str]) -> int:
    if not REFSIM.exists():
        print(f"no reference scorer at {REFSIM}", file=sys.stderr)
        return 2
    traces = [Path(a) for a in argv if not a.startswith("--")] or sorted((SHARED / "traces").glob("*.csv"))
    name, factory = scaler_factory("--stand-in" in argv)
    settings = Settings(check_interval=300, tables=(TableSection("simulated", re.compile("simulated"), TargetRules()),))
    print(f"config: default rules, check-interval 300 s, scaler: {name}")
    print(f"{'trace':<30} {'policy':<14} {'ours $':>10} {'refsim $':>10} {'diff':>9} {'thr ours':>9} "
          f"{'thr ref':>9} {'thr diff':>10} {'decr o/r':>11} {'illegal':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for trace in traces:
            out = Path(tmp) / trace.stem
            began = time.perf_counter()
            report = simulate(settings, trace, out, factory, table="simulated", progress=None)
            took = time.perf_counter() - began
            ours = json.loads((out / "report.json").read_text())
            print(row(trace.stem, "config", ours, refsim("score", trace, out / "timeline.csv")))
            ref = refsim("baselines", trace)[str(trace)]
            for label, figures in report.baselines.items():
                print(row(trace.stem, label, figures.as_dict(), ref[label]))
            print(f"{'':<30} ({report.config.minutes} minutes, {report.passes} passes, {took:.2f} s with outputs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
