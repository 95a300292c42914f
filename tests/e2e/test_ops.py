"""Watching it run, end to end against moto_server behind the rules proxy: `--daemon status`,
`--status-json`, `/metrics` and `/healthz`, JSON logs, systemd's notify socket."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import metrics as M
from support.cli import REPO, assert_no_traceback, cli_env, describe, run_cli
from support.moto import free_port
from support.wait import wait_for

from dynamic_dynamodb.daemon import process_alive, read_pid

pytestmark = pytest.mark.e2e

QUIET = """[global]
check-interval: {interval}
{extra}
[table: {table}]
reads-lower-threshold: 30
writes-lower-threshold: 30
decrease-reads-with: 50
decrease-writes-with: 50
"""


def config(tmp_path: Path, table: str, interval: int = 1, extra: str = "") -> Path:
    path = tmp_path / f"{table}.conf"
    path.write_text(QUIET.format(interval=interval, table=table, extra=extra))
    return path


def quiet_table(aws, name: str, units: int = 100) -> None:
    """A provisioned table consuming 5 % of its reads and writes."""
    M.create_table(aws.dynamodb, name, units, units)
    M.put_consumption(aws.cloudwatch, name, read_per_second=units * 0.05, write_per_second=units * 0.05)


def http_get(url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError) as e:  # not listening yet
        return 0, str(e)


class Foreground:
    """`--daemon foreground` as a subprocess, stopped with SIGTERM at the end of the test."""

    def __init__(self, args: list[str], endpoint: str, env_extra: dict | None = None, cwd: Path | None = None):
        self.proc = subprocess.Popen([sys.executable, "-m", "dynamic_dynamodb", "--daemon", "foreground", *args],
                                     env=cli_env(endpoint, env_extra), cwd=str(cwd or REPO),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)

    def stop(self) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return out, err


@pytest.fixture
def foreground(rules_proxy):
    started: list[Foreground] = []

    def start(args, env_extra=None):
        started.append(Foreground([str(a) for a in args], rules_proxy.url, env_extra))
        return started[-1]

    yield start
    for fg in started:
        fg.stop()


# ---- --daemon status ---------------------------------------------------------------------


def test_daemon_status_of_a_stopped_a_running_and_a_killed_instance(tmp_path, rules_proxy, proxy_aws):
    quiet_table(proxy_aws, "ops_status")
    conf = config(tmp_path, "ops_status")
    name = f"ops-{uuid.uuid4().hex[:8]}"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    common = ["--config", conf, "--instance", name, "--pid-file-dir", run_dir, "--log-file", tmp_path / "dd.log"]

    def daemon(command: str) -> subprocess.CompletedProcess:
        result = run_cli(["--daemon", command, *common], endpoint_url=rules_proxy.url)
        assert_no_traceback(result)
        return result

    stopped = daemon("status")
    assert stopped.returncode == 3, describe(stopped)
    assert f"instance '{name}' is not running" in stopped.stdout

    assert daemon("start").returncode == 0
    pid = read_pid(str(run_dir / f"dynamic-dynamodb.{name}.pid"))
    try:
        running = wait_for(lambda: (r := daemon("status")).returncode == 0 and "none yet" not in r.stdout and r,
                           15, "a completed pass in --daemon status")
        line = running.stdout.strip()
        assert re.fullmatch(rf"dynamic-dynamodb: instance '{name}' is running \(pid {pid}, up \d+h\d\dm\d\ds, "
                            r"last completed pass \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)", line), line
        assert len(running.stdout.splitlines()) == 1

        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not process_alive(pid), 10, "the killed daemon to end")
        dead = daemon("status")
        assert dead.returncode == 1, describe(dead)
        assert "is dead but its pid file" in dead.stdout
        assert (run_dir / f"dynamic-dynamodb.{name}.pid").exists()  # status reports, never removes
    finally:
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)


# ---- --status and --status-json ----------------------------------------------------------


def test_status_json_after_two_decreases_shows_two_left_and_makes_no_update(tmp_path, rules_proxy, proxy_aws, cli):
    quiet_table(proxy_aws, "ops_budget")
    M.create_table(proxy_aws.dynamodb, "ops_other", 5, 5)  # matched by no section: not shown
    conf = config(tmp_path, "ops_budget")
    for _ in range(2):
        result = cli(["--config", conf, "--run-once"])
        assert result.returncode == 0, describe(result)
    assert M.provisioned(proxy_aws.dynamodb, "ops_budget") == (25, 25)
    updates_before = len(rules_proxy.calls("UpdateTable"))

    result = cli(["--config", conf, "--status-json"])
    assert result.returncode == 0, describe(result)
    [row] = json.loads(result.stdout)
    assert row["decreases_left_today"] == 2
    assert row["next_decrease_at"] is None
    assert (row["table"], row["index"], row["region"], row["billing_mode"]) == (
        "ops_budget", None, "us-east-1", "PROVISIONED")
    assert (row["provisioned_reads"], row["provisioned_writes"]) == (25, 25)
    assert row["last_decision"]["reason"] == "low_load"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["last_decision"]["at"])
    assert row["schedule"] is None
    assert len(rules_proxy.calls("UpdateTable")) == updates_before

    table = cli(["--config", conf, "--status"])
    assert table.returncode == 0, describe(table)
    header, line = table.stdout.splitlines()
    assert header.split()[:3] == ["TABLE", "INDEX", "REGION"] and line.split()[:3] == ["ops_budget", "-", "us-east-1"]


def test_status_json_shows_the_next_decrease_once_the_free_ones_are_spent(tmp_path, rules_proxy, proxy_aws, cli):
    quiet_table(proxy_aws, "ops_spent")
    rules_proxy.set_decreases("ops_spent", count=4)
    result = cli(["--config", config(tmp_path, "ops_spent"), "--status-json"])
    assert result.returncode == 0, describe(result)
    [row] = json.loads(result.stdout)
    assert row["decreases_left_today"] == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["next_decrease_at"])


# ---- /metrics and /healthz ---------------------------------------------------------------

GRACE = 8  # health-grace of the /healthz test: seconds on top of two check intervals


def test_metrics_scrape_parses_and_healthz_turns_503_when_passes_stop(tmp_path, rules_proxy, proxy_aws, breaker,
                                                                      foreground):
    quiet_table(proxy_aws, "ops_metrics")
    port = free_port()
    # AWS calls are bounded (about 45 s with retries); a breaker URL may wait up to an hour
    # health-grace shortens the wait for the 503 from two intervals plus a minute to plus GRACE seconds
    extra = f"circuit-breaker-url: {breaker.url}/ok\ncircuit-breaker-timeout: 300000\nhealth-grace: {GRACE}\n"
    fg = foreground(["--config", config(tmp_path, "ops_metrics", extra=extra), "--metrics-port", port,
                     "--state-file", tmp_path / "state.json"])
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: "dynamic_dynamodb_pass_duration_seconds_count 2.0" in http_get(f"{base}/metrics")[1], 30,
             "two passes in /metrics")
    status, text = http_get(f"{base}/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    provisioned = {(s.labels["table"], s.labels["index"], s.labels["region"], s.labels["dimension"]): s.value
                   for s in families["dynamic_dynamodb_provisioned_units"].samples}
    assert provisioned[("ops_metrics", "", "us-east-1", "reads")] in (50, 25)
    [left] = families["dynamic_dynamodb_decreases_left_today"].samples
    assert left.value in (2, 3)
    assert sum(s.value for s in families["dynamic_dynamodb_updates"].samples if s.name.endswith("_total")) >= 1
    assert any(s.value >= 1 for s in families["dynamic_dynamodb_decisions"].samples)
    assert families["dynamic_dynamodb_last_pass_timestamp_seconds"].samples[0].value > time.time() - 30
    assert http_get(f"{base}/healthz")[0] == 200

    # the breaker stops answering: no pass ends for longer than two intervals plus the grace
    breaker.delay = 120
    hung = time.monotonic()
    wait_for(lambda: http_get(f"{base}/healthz")[0] == 503, GRACE + 30, "/healthz to answer 503", interval=0.25)
    assert time.monotonic() - hung >= GRACE
    status, text = http_get(f"{base}/healthz")
    assert status == 503 and "health-grace" in text
    fg.proc.kill()


# ---- JSON logs -----------------------------------------------------------------------------


def test_every_line_of_a_json_log_parses_and_decisions_carry_their_fields(tmp_path, proxy_aws, cli):
    quiet_table(proxy_aws, "ops_json")
    log_file = tmp_path / "dd.log"
    result = cli(["--config", config(tmp_path, "ops_json"), "--run-once", "--log-format", "json",
                  "--log-file", log_file])
    assert result.returncode == 0, describe(result)
    for stream in (log_file.read_text(), result.stderr):
        records = [json.loads(line) for line in stream.splitlines()]
        assert records
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]) for r in records)
    decisions = [r for r in records if "dimension" in r]
    assert {r["dimension"] for r in decisions} == {"reads", "writes"}
    for r in decisions:
        assert (r["table"], r["index"], r["current"], r["new"]) == ("ops_json", None, 100, 50)
        assert r["reason"] and r["consumed_pct"] == pytest.approx(5.0)


def test_text_logs_start_with_a_utc_iso_time(tmp_path, proxy_aws, cli):
    quiet_table(proxy_aws, "ops_text")
    result = cli(["--config", config(tmp_path, "ops_text"), "--run-once"])
    assert result.returncode == 0, describe(result)
    lines = result.stderr.splitlines()
    assert lines and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z - dynamic-dynamodb - ", li) for li in lines)


# ---- systemd ------------------------------------------------------------------------------


def test_a_notify_socket_receives_ready_watchdog_and_stopping(tmp_path, proxy_aws, foreground):
    quiet_table(proxy_aws, "ops_systemd")
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(1)
        fg = foreground(["--config", config(tmp_path, "ops_systemd", interval=2), "--state-file",
                         tmp_path / "state.json"], env_extra={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
        got: list[str] = []

        def receive(word: str) -> bool:
            try:
                got.append(sock.recv(256).decode())
            except TimeoutError:
                pass
            return word in got

        wait_for(lambda: receive("READY=1"), 30, "READY=1")
        wait_for(lambda: receive("WATCHDOG=1") and got.count("WATCHDOG=1") >= 3, 10, "WATCHDOG=1 pings", interval=0)
        fg.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: receive("STOPPING=1"), 30, "STOPPING=1", interval=0)
        _, err = fg.proc.communicate(timeout=30)  # no second SIGTERM: it may land during the exit
        assert fg.proc.returncode == 0, err
        assert got.index("READY=1") < got.index("STOPPING=1")
