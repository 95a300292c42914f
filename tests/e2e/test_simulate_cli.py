"""End to end: `python -m dynamic_dynamodb --simulate TRACE.csv` and `--backtest` as separate processes.

The simulations run offline; the backtest runs against moto_server with CloudWatch
datapoints put over part of one day (moto's GetMetricData scans every stored datapoint
for every bucket, so the history is kept to one day and a few hundred datapoints).
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re

import pytest
from support import metrics as M
from support.cli import REPO, assert_no_traceback, describe, run_cli

from dynamic_dynamodb.simulation.backtest import SETTLE_MINUTES
from dynamic_dynamodb.simulation.output import TIMELINE_COLUMNS
from dynamic_dynamodb.simulation.trace import write_trace

pytestmark = pytest.mark.e2e

UTC = dt.timezone.utc
RECOMMENDED = REPO / "examples" / "recommended.conf"
REPORT_KEYS = ("cost_usd", "throttled_share", "throttled_read_share", "throttled_write_share", "decreases",
               "on_demand_cost_usd", "baselines", "recommendation")
TABLE_ROWS = ("this config", "aws-target-70", "fixed-peak", "on-demand")


def table_rows(stdout: str) -> list[str]:
    """The policy names of the comparison tables printed, in order."""
    return [row for line in stdout.splitlines() for row in TABLE_ROWS if line.startswith(row + " ")]


# ---- --simulate ----------------------------------------------------------------------------


def test_a_simulation_prints_the_comparison_and_writes_timeline_report_and_plot(tmp_path):
    trace = tmp_path / "day.csv"
    demand = [50 + 40 * math.sin(2 * math.pi * m / 1440) for m in range(1440)]
    write_trace(trace, dt.datetime(2026, 1, 5, tzinfo=UTC), demand, [d / 4 for d in demand])
    out = tmp_path / "sim"
    result = run_cli(["--config", RECOMMENDED, "--simulate", trace, "--simulate-output", out], timeout=60)
    assert_no_traceback(result)
    assert result.returncode == 0, describe(result)
    assert table_rows(result.stdout) == list(TABLE_ROWS)
    assert f"Written to {out}/: timeline.csv, report.json, plot.png" in result.stdout
    with (out / "timeline.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == TIMELINE_COLUMNS and len(rows) == 1 + 1440
    report = json.loads((out / "report.json").read_text())
    for key in REPORT_KEYS:
        assert key in report, key
    assert set(report["baselines"]) == {"aws-target-70", "fixed-peak"}
    for baseline in report["baselines"].values():
        assert {"cost_usd", "throttled_share", "decreases"} <= set(baseline)
    assert report["recommendation"] in result.stdout
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_aws_baseline_target_is_a_setting(tmp_path):
    trace = tmp_path / "flat.csv"
    write_trace(trace, dt.datetime(2026, 1, 5, tzinfo=UTC), [20.0] * 120, [5.0] * 120)
    out = tmp_path / "sim"
    result = run_cli(["--config", RECOMMENDED, "--simulate", trace, "--simulate-output", out,
                      "--aws-target-utilization", "50"])
    assert result.returncode == 0, describe(result)
    assert "aws-target-50 " in result.stdout
    assert list(json.loads((out / "report.json").read_text())["baselines"]) == ["aws-target-50", "fixed-peak"]


@pytest.mark.parametrize("value", ["19", "95", "seventy"])
def test_an_aws_target_outside_20_to_90_is_refused_in_one_line(tmp_path, value):
    result = run_cli(["--simulate", "x.csv", "--aws-target-utilization", value])
    assert result.returncode == 2, describe(result)
    assert "--aws-target-utilization" in result.stderr and repr(value) in result.stderr


BAD_TRACES = {
    "missing column": ("timestamp,reads\n2026-01-01T00:00:00Z,1\n", r"line 1: missing column\(s\) writes"),
    "irregular step": ("timestamp,reads,writes\n2026-01-01T00:00:00Z,1,1\n2026-01-01T00:01:00Z,1,1\n"
                       "2026-01-01T00:03:00Z,1,1\n", "line 4: irregular step"),
    "negative value": ("timestamp,reads,writes\n2026-01-01T00:00:00Z,1,1\n2026-01-01T00:01:00Z,-2,1\n",
                       "line 3: reads '-2' must be a finite number >= 0"),
    "non-numeric value": ("timestamp,reads,writes\n2026-01-01T00:00:00Z,1,1\n2026-01-01T00:01:00Z,1,lots\n",
                          "line 3: writes 'lots' is not a number"),
    "bad timestamp": ("timestamp,reads,writes\nyesterday,1,1\n", "line 2: timestamp 'yesterday' is not ISO-8601"),
    "empty file": ("", "empty file"),
}


@pytest.mark.parametrize("kind", list(BAD_TRACES), ids=[f"a trace with {k} exits 2 in one line" for k in BAD_TRACES])
def test_a_bad_trace_exits_2_with_one_line_naming_the_file_and_row(tmp_path, kind):
    text, message = BAD_TRACES[kind]
    bad = tmp_path / "bad.csv"
    bad.write_text(text, encoding="utf-8")
    out = tmp_path / "sim"
    result = run_cli(["--config", RECOMMENDED, "--simulate", bad, "--simulate-output", out])
    assert_no_traceback(result)
    assert result.returncode == 2, describe(result)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, describe(result)
    assert lines[0].startswith(f"dynamic-dynamodb: error: {bad}")
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()


def test_the_sample_output_in_docs_simulation_rst_is_what_the_command_prints_today(tmp_path):
    command = ["--config", RECOMMENDED, "--simulate", REPO / "examples" / "traces" / "sample-week.csv",
               "--simulate-output", tmp_path / "sim"]
    result = run_cli(command, timeout=120)
    assert result.returncode == 0, describe(result)
    page = (REPO / "docs" / "simulation.rst").read_text()
    printed = result.stdout.replace(str(tmp_path / "sim"), "/tmp/sim-sample")  # the docs' command line
    shown = "\n".join("    " + line if line else "" for line in printed.rstrip("\n").splitlines())
    assert shown in page, (
        "the figures on the sample week changed: run the command of docs/simulation.rst, paste its output "
        "there and copy /tmp/sim-sample/plot.png to docs/_static/sample-week-plot.png\n" + printed)


# ---- --backtest against moto_server ----------------------------------------------------------


BACKTEST_CONF = """
[global]
region: us-east-1
check-interval: 300

[table: orders.*]
reads-upper-threshold: 80
increase-reads-with: 50
reads-lower-threshold: 30
decrease-reads-with: 50
writes-upper-threshold: 80
increase-writes-with: 50

[gsi: by_.* table: orders.*]

[table: idle_table]
"""


def test_backtest_replays_each_matched_table_and_gsi_from_its_cloudwatch_history(aws, moto, tmp_path):
    M.create_table(aws.dynamodb, "orders", 10, 5, gsis={"by_customer": (4, 2)})
    M.create_table(aws.dynamodb, "orders_ondemand", on_demand=True)
    M.create_table(aws.dynamodb, "idle_table", 5, 5)
    M.create_table(aws.dynamodb, "not_in_config", 5, 5)
    now = M.minute_floor()
    busy_end = now - dt.timedelta(minutes=30)
    # an hour of traffic half an hour ago: 8 units/s read (+30 throttled requests a minute), 2 written
    M.put_consumption(aws.cloudwatch, "orders", read_per_second=8, write_per_second=2,
                      read_throttles_per_minute=30, minutes=60, end=busy_end)
    M.put_consumption(aws.cloudwatch, "orders", "by_customer", read_per_second=3, minutes=60, end=busy_end)
    M.put_consumption(aws.cloudwatch, "not_in_config", read_per_second=3, minutes=10, end=busy_end)
    # what CloudWatch says the table had at the start of the history (a day ago)
    start = now - dt.timedelta(days=1, minutes=SETTLE_MINUTES)
    for metric, units in (("ProvisionedReadCapacityUnits", 12), ("ProvisionedWriteCapacityUnits", 6)):
        M.put_metric_minutes(aws.cloudwatch, metric, "orders", units, minutes=6, end=start + dt.timedelta(minutes=4))
    conf = tmp_path / "bt.conf"
    conf.write_text(BACKTEST_CONF, encoding="utf-8")

    result = run_cli(["--config", conf, "--backtest", "--days", "1"], endpoint_url=moto.url, cwd=tmp_path,
                     timeout=60)

    assert_no_traceback(result)
    assert result.returncode == 0, describe(result)
    out = result.stdout
    assert table_rows(out) == list(TABLE_ROWS) * 2
    assert "== orders in us-east-1: 1 day(s)" in out and "initial capacity 12 reads / 6 writes" in out
    assert "== orders/by_customer in us-east-1: 1 day(s)" in out and "initial capacity 4 reads / 2 writes" in out
    assert "orders_ondemand: no CloudWatch data in the last 1 day(s), skipped" in out  # on-demand and idle
    assert "idle_table: no CloudWatch data in the last 1 day(s), skipped" in out
    assert "not_in_config" not in out
    assert "Backtested 2 table(s) and GSI(s) (0 on-demand) over 1 day(s); skipped 2 without data" in out
    assert sorted(p.name for p in tmp_path.glob("backtest-*")) == ["backtest-orders", "backtest-orders-by_customer"]

    table = tmp_path / "backtest-orders"
    for name in ("history.csv", "timeline.csv", "report.json", "plot.png"):
        assert (table / name).exists(), name
    with (table / "timeline.csv").open(newline="") as fh:
        timeline = list(csv.DictReader(fh))
    assert len(timeline) == 1440
    assert (timeline[0]["provisioned_reads"], timeline[0]["provisioned_writes"]) == ("12", "6")
    demand = [float(r["demand_reads"]) for r in timeline]
    assert max(demand) == 8.5  # consumed 8 units/s + 30 throttled a minute
    assert sum(1 for d in demand if d) == 60  # the minutes without datapoints are no demand
    report = json.loads((table / "report.json").read_text())
    assert report["table"] == "orders" and report["minutes"] == 1440
    assert report["baselines"]["fixed-peak"]["throttled_share"] == 0  # the peak, 9 units, all day
    assert report["on_demand_cost_usd"] > 0 and report["cost_usd"] > 0
    gsi = json.loads((tmp_path / "backtest-orders-by_customer" / "report.json").read_text())
    assert gsi["table"] == "orders/by_customer"


def test_backtest_of_a_config_matching_nothing_exits_1_in_one_line(aws, moto, tmp_path):
    M.create_table(aws.dynamodb, "something_else", 5, 5)
    conf = tmp_path / "bt.conf"
    conf.write_text("[table: orders]\n", encoding="utf-8")
    result = run_cli(["--config", conf, "--backtest", "--days", "1"], endpoint_url=moto.url, cwd=tmp_path)
    assert result.returncode == 1, describe(result)
    assert "nothing to backtest: no table in us-east-1 matches [table: orders]" in result.stderr
    assert not list(tmp_path.glob("backtest-*"))
