"""simulate(): the replay loop, its outputs and its command line, with a stand-in pass."""
from __future__ import annotations

import ast
import csv
import io
import json
import logging
import math
import re
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from test_simulation_standin import PassReport, make_standin, settings_for

from dynamic_dynamodb.model import CONSUMED_METRIC, Capacity, Dim, MetricQuery, Update
from dynamic_dynamodb.rules import TargetRules
from dynamic_dynamodb.settings import Settings, TableSection
from dynamic_dynamodb.simulation import cli as simulation_cli
from dynamic_dynamodb.simulation import simulate
from dynamic_dynamodb.simulation.output import TIMELINE_COLUMNS
from dynamic_dynamodb.simulation.run import NoTableName, passes_every, production_scaler, table_name
from dynamic_dynamodb.simulation.trace import load_trace, write_trace

START = datetime(2024, 3, 1, tzinfo=timezone.utc)
PACKAGE = Path(__file__).resolve().parents[1] / "dynamic_dynamodb" / "simulation"


def daily(minutes: int, peak: float = 400.0, seed_shift: int = 0) -> tuple[list[float], list[float]]:
    """A daily cycle with a burst every 7 hours."""
    reads = []
    for m in range(minutes):
        base = peak / 2 * (1.2 + math.sin(2 * math.pi * (m + seed_shift) / 1440))
        reads.append(round(base * (3 if (m // 60) % 7 == 3 and m % 60 < 20 else 1), 3))
    return reads, [round(r / 5, 3) for r in reads]


@pytest.fixture
def day_trace(tmp_path):
    path = tmp_path / "day.csv"
    write_trace(path, START, *daily(1440))
    return path


class Recorder:
    """A pass that records what it was called with and sees; optionally sets one capacity."""

    def __init__(self, settings, *, tables, metrics, breaker, update_at=None):
        self.tables, self.metrics = tables, metrics
        self.calls = []
        self.update_at = update_at

    def run_pass(self, now):
        name = self.tables.list_tables()[0]
        status = self.tables.describe(name).table
        q = MetricQuery(status.target, CONSUMED_METRIC[Dim.READS], now - timedelta(hours=1), now, 60)
        newest = max((stamp for stamp, _ in self.metrics.fetch([q])[q]), default=None)
        self.calls.append((now, status.capacity, newest))
        if self.update_at == now:
            self.tables.update(Update(name, Capacity(status.capacity.reads + 1, status.capacity.writes)))
        return PassReport()


def recorder(**kwargs):
    made = []

    def make(settings, **ports):
        made.append(Recorder(settings, **ports, **kwargs))
        return made[-1]
    return make, made


def read_timeline(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_simulation_writes_the_timeline_the_report_and_the_plot(tmp_path, day_trace):
    report = simulate(settings_for(), day_trace, tmp_path / "out", make_standin, progress=None)
    out = tmp_path / "out"
    rows = read_timeline(out / "timeline.csv")
    assert len(rows) == 1440 and tuple(rows[0]) == TIMELINE_COLUMNS
    assert rows[0]["timestamp"] == "2024-03-01T00:00:00Z"
    data = json.loads((out / "report.json").read_text())
    for key in ("cost_usd", "throttled_share", "throttled_read_share", "throttled_write_share", "decreases",
                "illegal_decreases", "refused_updates", "on_demand_cost_usd", "oracle_cost_usd", "cost_vs_oracle",
                "minutes", "recommendation"):
        assert key in data
    assert set(data["baselines"]) == {"aws-target-70", "fixed-peak"}
    assert data["illegal_decreases"] == 0 and data["minutes"] == 1440
    assert data["cost_usd"] == report.config.cost_usd
    assert (out / "plot.png").read_bytes().startswith(b"\x89PNG")
    assert "\n" not in report.recommendation and report.recommendation.endswith(".")
    summary = report.summary()
    for name in ("this config", "aws-target-70", "fixed-peak", "on-demand"):
        assert name in summary


def test_timeline_columns_hold_demand_consumed_and_throttled_in_units_per_second(tmp_path):
    path = tmp_path / "t.csv"
    write_trace(path, START, [10.0] * 3, [100.0] * 3)
    simulate(settings_for(), path, tmp_path / "out", make_standin, initial=(20, 50), progress=None)
    row = read_timeline(tmp_path / "out" / "timeline.csv")[0]
    assert (row["provisioned_reads"], row["provisioned_writes"]) == ("20", "50")
    assert (row["demand_reads"], row["consumed_reads"], row["throttled_reads"]) == ("10.000", "10.000", "0.000")
    assert (row["demand_writes"], row["consumed_writes"], row["throttled_writes"]) == ("100.000", "50.000", "50.000")


@pytest.mark.parametrize("interval, every", [(300, 5), (60, 1), (20, 1), (90, 2), (150, 3), (3600, 60)])
def test_passes_run_at_the_start_of_every_check_interval_in_whole_minutes(day_trace, interval, every):
    make, made = recorder()
    report = simulate(settings_for(check_interval=interval), day_trace, None, make, progress=None)
    nows = [now for now, _, _ in made[0].calls]
    assert passes_every(settings_for(check_interval=interval)) == every
    assert nows == [START + timedelta(minutes=m) for m in range(0, 1440, every)]
    assert report.passes == len(nows) and all(now.tzinfo is not None for now in nows)


def test_a_pass_runs_before_its_minute_is_served_and_sees_minutes_up_to_two_before(tmp_path, day_trace):
    make, made = recorder(update_at=START + timedelta(minutes=10))
    simulate(settings_for(check_interval=60), day_trace, tmp_path / "out", make, progress=None)
    calls = made[0].calls
    assert [newest for _, _, newest in calls[:4]] == [None, None, START, START + timedelta(minutes=1)]
    assert all(newest == now - timedelta(minutes=2) for now, _, newest in calls[2:])
    rows = read_timeline(tmp_path / "out" / "timeline.csv")
    assert int(rows[11]["provisioned_reads"]) == int(rows[10]["provisioned_reads"]) + 1
    assert calls[11][1].reads == calls[10][1].reads + 1


def test_decision_summaries_are_written_in_the_minute_of_their_pass(tmp_path, day_trace):
    simulate(settings_for(check_interval=300), day_trace, tmp_path / "out", make_standin, progress=None)
    rows = read_timeline(tmp_path / "out" / "timeline.csv")
    with_decision = [i for i, row in enumerate(rows) if row["decision"]]
    assert with_decision and all(i % 5 == 0 for i in with_decision)
    first = with_decision[0]
    assert rows[first]["decision"].startswith("reads ")


def test_changing_the_second_half_of_a_trace_leaves_the_first_half_unchanged(tmp_path):
    reads, writes = daily(2880)
    half = 1440
    other_reads = reads[:half] + [r * 7 + 100 for r in reads[half:]]
    other_writes = writes[:half] + [0.0] * half
    write_trace(tmp_path / "a.csv", START, reads, writes)
    write_trace(tmp_path / "b.csv", START, other_reads, other_writes)
    for interval in (60, 300):
        settings = settings_for(check_interval=interval)
        simulate(settings, tmp_path / "a.csv", tmp_path / "a", make_standin, table="simulated", progress=None)
        simulate(settings, tmp_path / "b.csv", tmp_path / "b", make_standin, table="simulated", progress=None)
        a = read_timeline(tmp_path / "a" / "timeline.csv")
        b = read_timeline(tmp_path / "b" / "timeline.csv")
        assert a[:half] == b[:half]
        assert a[half:] != b[half:]  # the change did reach the replay
        # what the policy saw of the change shows at the earliest 3 minutes later
        assert [r["provisioned_reads"] for r in a[:half + 3]] == [r["provisioned_reads"] for r in b[:half + 3]]


def test_the_progress_bar_is_drawn_only_on_a_terminal(day_trace):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Tty(), io.StringIO()
    simulate(settings_for(), day_trace, None, make_standin, progress=tty)
    simulate(settings_for(), day_trace, None, make_standin, progress=pipe)
    assert "\rsimulating [" in tty.getvalue() and "100 %" in tty.getvalue()
    assert pipe.getvalue() == ""


def test_without_matplotlib_there_is_no_plot_and_a_one_line_hint(tmp_path, day_trace, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)  # None makes the import fail
    report = simulate(settings_for(), day_trace, tmp_path / "out", make_standin, progress=None)
    assert not (tmp_path / "out" / "plot.png").exists()
    assert (tmp_path / "out" / "timeline.csv").exists()
    assert report.plot_hint and "matplotlib" in report.plot_hint and "\n" not in report.plot_hint
    assert report.plot_hint in report.summary()


def test_on_demand_is_recommended_when_it_is_cheaper(tmp_path):
    path = tmp_path / "idle.csv"
    write_trace(path, START, [0.01] * 600, [0.01] * 600)  # a few requests an hour: 1 unit is too much
    report = simulate(settings_for(), path, None, make_standin, progress=None)
    assert report.config.on_demand_cost_usd < report.config.cost_usd
    assert report.recommendation.startswith("On-demand would be cheaper")


def test_provisioned_is_kept_when_the_config_is_cheap_and_does_not_throttle(tmp_path):
    path = tmp_path / "flat.csv"
    write_trace(path, START, [100.0] * 600, [20.0] * 600)
    report = simulate(settings_for(), path, None, make_standin, progress=None)
    assert report.config.throttled_share == 0
    assert report.recommendation.startswith("Keep provisioned")


def section(key):
    return TableSection(key=key, regex=re.compile(key), rules=TargetRules())


@pytest.mark.parametrize("keys, expected", [
    (("orders",), "orders"),
    (("orders.*",), "orders"),
    (("^prod-.*$",), "prod-"),
    (("day|other",), "day"),
    (("[0-9]+x", "sim.*"), "sim"),
], ids=["plain name", "prefix", "anchored prefix", "trace name", "first that can be named"])
def test_the_simulated_table_is_named_so_that_the_config_matches_it(day_trace, keys, expected):
    settings = Settings(tables=tuple(section(k) for k in keys))
    assert table_name(settings, load_trace(day_trace)) == expected


def test_a_config_whose_sections_cannot_be_named_is_refused(day_trace):
    with pytest.raises(NoTableName, match=r"\[0-9\]\+x"):
        table_name(Settings(tables=(section("[0-9]+x"),)), load_trace(day_trace))


def test_a_config_without_table_sections_is_refused_as_there_is_nothing_to_simulate(tmp_path, day_trace):
    err = io.StringIO()
    settings = Settings(simulate=str(day_trace), simulate_output=str(tmp_path / "o"))
    assert simulation_cli.main(settings, make_standin, stdout=io.StringIO(), stderr=err) == 2
    assert "nothing to simulate" in err.getvalue()
    assert not (tmp_path / "o").exists()


def test_the_command_prints_the_comparison_and_writes_to_the_output_dir(tmp_path, day_trace):
    out, err = io.StringIO(), io.StringIO()
    settings = Settings(simulate=str(day_trace), simulate_output=str(tmp_path / "o"),
                        tables=settings_for().tables)
    assert simulation_cli.main(settings, make_standin, stdout=out, stderr=err) == 0
    assert "this config" in out.getvalue() and str(tmp_path / "o") in out.getvalue()
    assert (tmp_path / "o" / "report.json").exists()


def test_the_command_names_a_bad_trace_in_one_line_and_exits_2(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,reads\n")
    out, err = io.StringIO(), io.StringIO()
    settings = Settings(simulate=str(bad), simulate_output=str(tmp_path / "o"))
    assert simulation_cli.main(settings, make_standin, stdout=out, stderr=err) == 2
    assert err.getvalue().count("\n") == 1 and str(bad) in err.getvalue()
    assert out.getvalue() == ""


def test_backtest_without_table_sections_is_refused_as_there_is_nothing_to_backtest():
    # the backtest itself is tested in tests/test_backtest.py and tests/e2e/test_simulate_cli.py
    err = io.StringIO()
    assert simulation_cli.main(Settings(backtest=True), make_standin, stderr=err) == 2
    assert "nothing to backtest" in err.getvalue()


def test_the_passes_log_only_errors_during_a_replay_and_the_level_comes_back(tmp_path, day_trace):
    logger = logging.getLogger("dynamic-dynamodb")
    seen = []

    def make(settings, **ports):
        scaler = make_standin(settings, **ports)
        inner = scaler.run_pass

        def run_pass(now):
            seen.append(logger.getEffectiveLevel())
            return inner(now)
        scaler.run_pass = run_pass
        return scaler

    before = logger.level
    logger.setLevel(logging.INFO)
    try:
        settings = Settings(simulate=str(day_trace), simulate_output=str(tmp_path / "o"), tables=settings_for().tables)
        simulation_cli.main(settings, make, stdout=io.StringIO(), stderr=io.StringIO())
        assert set(seen) == {logging.ERROR}
        assert logger.level == logging.INFO
    finally:
        logger.setLevel(before)


def test_the_simulator_never_imports_the_scaling_policy():
    # the config's policy runs only through scaler.run_pass: no copy, no direct call
    for module in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = {node.module or ""} | {f"{node.module}.{a.name}" for a in node.names}
                assert not any(re.search(r"(^|\.)(policy|rules)$", n) for n in names), (module.name, names)


def test_thirty_days_every_minute_replay_in_seconds_not_minutes(tmp_path):
    path = tmp_path / "month.csv"
    write_trace(path, START, *daily(30 * 1440))
    began = time.perf_counter()
    report = simulate(settings_for(check_interval=60), path, None, make_standin, progress=None)
    took = time.perf_counter() - began
    assert report.passes == 43200
    assert took < 15, f"43,200 minutes took {took:.1f} s (benchmarks/simulate.py measures it properly)"


def test_the_daemons_own_pass_runs_in_the_simulator(tmp_path, day_trace):
    report = simulate(settings_for(), day_trace, tmp_path / "out", production_scaler, progress=None)
    rows = read_timeline(tmp_path / "out" / "timeline.csv")
    assert report.passes == 288 and report.config.illegal_decreases == 0
    assert sum(1 for r in rows if r["decision"]) == 288
    assert len({r["provisioned_reads"] for r in rows}) > 1  # it scaled
