"""End to end: a capacity schedule with the real daemon (`--run-once`) against moto_server behind
the DynamoDB rules proxy. The hours are written in Asia/Tokyo local time around the real now."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from support import metrics as M
from support.cli import assert_no_traceback, describe

pytestmark = pytest.mark.e2e

TOKYO = ZoneInfo("Asia/Tokyo")


def _hhmm(t: dt.datetime) -> str:
    return t.astimezone(TOKYO).strftime("%H:%M")


def test_a_schedule_in_force_raises_the_floor_and_one_not_in_force_leaves_normal_scaling(
        rules_proxy, proxy_aws, aws, cli, tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    in_force = f"{_hhmm(now - dt.timedelta(hours=1))}-{_hhmm(now + dt.timedelta(hours=1))}"
    later = f"{_hhmm(now + dt.timedelta(hours=2))}-{_hhmm(now + dt.timedelta(hours=3))}"
    outside = f"{(now + dt.timedelta(hours=4)):%H:%M}-{(now + dt.timedelta(hours=5)):%H:%M}"
    for table in ("sales", "quiet"):
        M.create_table(proxy_aws.dynamodb, table, 20, 20)
        M.put_consumption(proxy_aws.cloudwatch, table, read_per_second=2.0, write_per_second=2.0)
    # the day's decreases are spent and the maintenance window is hours away: an increase still goes
    now_s = rules_proxy.now()  # ten minutes ago, but never before this UTC day began
    rules_proxy.set_decreases("sales", count=4, last=max(now_s - 600, now_s - now_s % 86400 + 1))
    config = tmp_path / "c.conf"
    config.write_text(
        "[global]\nregion: us-east-1\n[logging]\nlog-level: info\n"
        f"[schedule: sales]\nhours: {in_force}\ntimezone: Asia/Tokyo\nmin-provisioned-reads: 200\n"
        f"[schedule: later]\nhours: {later}\ntimezone: Asia/Tokyo\nmin-provisioned-reads: 300\n"
        f"[default_options]\nmaintenance-windows: {outside}\nmin-provisioned-writes: 20\n"
        "[table: sales]\nschedules: sales, later\n"
        "[table: quiet]\nschedules: later\nmaintenance-windows:\n")
    result = cli(["--config", str(config), "--run-once", "--state-file", str(tmp_path / "s.json"),
                  "--pid-file-dir", str(tmp_path)])
    assert_no_traceback(result)
    assert result.returncode == 0, describe(result)
    assert M.provisioned(aws.dynamodb, "sales") == (200, 20)
    assert "schedule sales in force" in result.stderr + result.stdout, describe(result)
    assert M.provisioned(aws.dynamodb, "quiet") == (10, 20)  # 10 % consumed: halved, as without a schedule


def test_a_bad_schedule_stops_the_daemon_with_one_line(cli, tmp_path):
    config = tmp_path / "c.conf"
    config.write_text("[schedule: s]\nhours: 16:00-22:00\ntimezone: Europe/Pariss\n[table: t]\nschedules: s\n")
    result = cli(["--config", str(config), "--run-once"])
    assert_no_traceback(result)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"dynamic-dynamodb: error: {config} [schedule: s] timezone: expected an IANA time zone such as "
        "Europe/Paris, got 'Europe/Pariss'"]
