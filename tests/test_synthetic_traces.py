"""benchmarks/synthetic_traces.py: the six shapes docs/policy.rst quotes are valid traces of the shapes it names."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dynamic_dynamodb.simulation.trace import load_trace

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "synthetic_traces.py"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> dict[str, Path]:
    """The script's files, by name, written once for the module."""
    folder = tmp_path_factory.mktemp("shapes")
    done = subprocess.run([sys.executable, str(SCRIPT), str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    paths = [Path(line) for line in done.stdout.split()]
    return {p.stem: p for p in paths}


def test_six_two_week_one_minute_traces_with_writes_at_three_tenths(shapes):
    assert sorted(shapes) == ["batch_sawtooth_4h", "diurnal_bursts", "diurnal_lognormal30", "diurnal_noise10",
                              "hourly_job_5x", "random_walk"]
    for path in shapes.values():
        trace = load_trace(path)
        assert (trace.step_minutes, trace.minutes) == (1, 14 * 1440)
        assert all(abs(w - 0.3 * r) < 0.01 for r, w in zip(trace.reads, trace.writes, strict=True))


def test_the_hourly_job_runs_at_five_times_the_base_for_the_first_ten_minutes_of_each_hour(shapes):
    reads = load_trace(shapes["hourly_job_5x"]).reads
    job = [r for m, r in enumerate(reads) if m % 60 < 10]
    rest = [r for m, r in enumerate(reads) if m % 60 >= 10]
    assert 4.5 < (sum(job) / len(job)) / (sum(rest) / len(rest)) < 5.5


def test_the_same_folder_gets_the_same_files_and_a_missing_folder_argument_is_a_usage_error(shapes, tmp_path):
    again = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0
    assert (tmp_path / "random_walk.csv").read_bytes() == shapes["random_walk"].read_bytes()
    usage = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "usage:" in usage.stderr and not usage.stdout
