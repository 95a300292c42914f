"""Our simulator against the reference scorer (shared/tools/refsim.py) on the shared traces.

Each trace is cut to its first two days. refsim scores the timeline we wrote and replays
the baselines itself; our report must agree to within 0.5 % on cost and 0.0001 on
throttled share, with no decrease the rule would have refused.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_simulation_standin import make_standin, settings_for

from dynamic_dynamodb.simulation import simulate
from dynamic_dynamodb.simulation.run import production_scaler

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFSIM = SHARED / "tools" / "refsim.py"
TRACES = sorted((SHARED / "traces").glob("*.csv"))
DAYS = 2

pytestmark = pytest.mark.skipif(not REFSIM.exists() or not TRACES,
                                reason=f"no reference scorer and traces in {SHARED} (shared/ beside the repository)")


SCALERS = {"stand-in": make_standin, "daemon's pass": production_scaler}


def shortened(trace: Path, tmp_path: Path) -> Path:
    """The first DAYS days of a trace, rows copied verbatim."""
    lines = trace.read_text().splitlines(keepends=True)
    step = 5 if "_5m" in trace.name else 1
    copy = tmp_path / trace.name
    copy.write_text("".join(lines[:1 + DAYS * 1440 // step]))
    return copy


def refsim(*args: str) -> dict:
    done = subprocess.run([sys.executable, str(REFSIM), *map(str, args)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def assert_agrees(ours: dict, ref: dict, what: str) -> None:
    assert ours["cost_usd"] == pytest.approx(ref["cost"], rel=0.005), what
    assert abs(ours["throttled_share"] - ref["throttled_share"]) <= 0.0001, what
    assert abs(ours["throttled_read_share"] - ref["throttled_read_share"]) <= 0.0001, what
    assert abs(ours["throttled_write_share"] - ref["throttled_write_share"]) <= 0.0001, what
    assert ours["decreases"] == ref["decreases"], what
    assert ours["illegal_decreases"] == ref["illegal_decreases"] == 0, what
    assert ours["on_demand_cost_usd"] == pytest.approx(ref["on_demand_cost"], rel=0.005), what
    assert ours["oracle_cost_usd"] == pytest.approx(ref["oracle_cost"], rel=0.005), what


@pytest.mark.parametrize("scaler", SCALERS.values(), ids=SCALERS.keys())
@pytest.mark.parametrize("trace", TRACES, ids=[t.stem for t in TRACES])
def test_the_reference_scorer_reproduces_our_report(tmp_path, trace, scaler):
    short = shortened(trace, tmp_path)
    simulate(settings_for(), short, tmp_path / "out", scaler, progress=None)
    ours = json.loads((tmp_path / "out" / "report.json").read_text())
    assert_agrees(ours, refsim("score", short, tmp_path / "out" / "timeline.csv"), "config")
    assert ours["refused_updates"] == ours["rejected_updates"] == 0


@pytest.mark.parametrize("trace", TRACES, ids=[t.stem for t in TRACES])
def test_our_baselines_are_the_reference_scorers(tmp_path, trace):
    short = shortened(trace, tmp_path)
    report = simulate(settings_for(), short, None, make_standin, progress=None)
    ref = refsim("baselines", short)[str(short)]
    for name in ("aws-target-70", "fixed-peak"):
        ours = report.baselines[name].as_dict()
        assert_agrees(ours, ref[name], name)
        assert ours["refused_updates"] == ref[name]["refused_updates"], name
