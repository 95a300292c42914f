"""Units of the watching side: the health rule, metrics from pass reports, the status rows,
systemd's notify socket, the shipped Grafana dashboard and the log formats."""
from __future__ import annotations

import json
import logging
import re
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dynamic_dynamodb import policy, status
from dynamic_dynamodb.logsetup import make_formatter
from dynamic_dynamodb.metrics import Liveness, Metrics, TargetSample, healthy
from dynamic_dynamodb.model import Capacity, Dim, Target, TargetStatus
from dynamic_dynamodb.policy import Decision, DimDecision, Memory
from dynamic_dynamodb.reasons import Reason
from dynamic_dynamodb.sdnotify import SystemdNotifier
from dynamic_dynamodb.settings import Settings

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 1, 20, 0, tzinfo=timezone.utc)


def active(reads: int = 10, writes: int = 10, decreases: int = 0, last: datetime | None = None) -> TargetStatus:
    return TargetStatus(Target("orders"), "ACTIVE", "PROVISIONED", Capacity(reads, writes), decreases, last)


# ---- the health rule ---------------------------------------------------------------------


@pytest.mark.parametrize("ago, interval, ok", [
    (0, 300, True),
    (659, 300, True),
    (660, 300, True),  # two intervals plus a minute, exactly
    (661, 300, False),
    (62, 1, True),
    (63, 1, False),
])
def test_healthy_while_the_last_pass_ended_within_two_intervals_and_a_minute(ago, interval, ok):
    assert healthy(1000.0 - ago, 1000.0, interval) is ok


def test_liveness_counts_from_the_start_until_a_pass_ends():
    clock = [100.0]
    live = Liveness(lambda: 10, clock=lambda: clock[0])
    clock[0] += 81
    assert not live.healthy()  # no pass in 81 s with a 10 s interval: 2 x 10 + 60 is the limit
    live.pass_ended()
    assert live.healthy()


def test_liveness_waits_health_grace_on_top_of_two_intervals():
    clock, grace = [100.0], [5.0]
    live = Liveness(lambda: 10, clock=lambda: clock[0], grace=lambda: grace[0])
    clock[0] += 25
    assert live.healthy()  # 2 x 10 + 5, exactly
    clock[0] += 1
    assert not live.healthy()
    grace[0] = 60  # a reload that raises it counts at once
    assert live.healthy()


# ---- metrics from a pass -------------------------------------------------------------------


def decision(reads_new: int = 5, pct: float | None = 20.0) -> Decision:
    st_ = active()
    code = Reason.LOW_LOAD if reads_new < 10 else Reason.WITHIN_BAND
    return Decision(st_, DimDecision(Dim.READS, 10, reads_new, pct, "low", code),
                    DimDecision(Dim.WRITES, 10, 10, pct, "ok", Reason.WITHIN_BAND))


def scrape(m: Metrics) -> dict:
    return {f.name: f for f in text_string_to_metric_families(generate_latest(m.registry).decode())}


def test_a_pass_becomes_gauges_per_target_and_counters_by_code():
    m = Metrics()
    memory = policy.record_decrease(Memory(), NOW - timedelta(hours=2))
    sample = TargetSample(Target("orders"), "eu-west-1", decision(), memory)
    m.observe([sample], updates=1, failures=0, aws_errors=[("UpdateTable", "LimitExceededException")],
              now=NOW, seconds=1.5)
    families = scrape(m)
    value = {(f.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    labels = (("dimension", "reads"), ("index", ""), ("region", "eu-west-1"), ("table", "orders"))
    assert value[("dynamic_dynamodb_provisioned_units", labels)] == 10
    assert value[("dynamic_dynamodb_consumed_units", labels)] == pytest.approx(2.0)
    assert value[("dynamic_dynamodb_utilisation_ratio", labels)] == pytest.approx(0.2)
    assert value[("dynamic_dynamodb_decreases_left_today",
                  (("index", ""), ("region", "eu-west-1"), ("table", "orders")))] == 3
    decisions = {s.labels["reason"]: s.value for s in families["dynamic_dynamodb_decisions"].samples
                 if s.name.endswith("_total")}
    assert decisions == {"low_load": 1, "within_band": 1}
    [err] = [s for s in families["dynamic_dynamodb_aws_errors"].samples if s.name.endswith("_total")]
    assert err.labels == {"operation": "UpdateTable", "code": "LimitExceededException"} and err.value == 1
    assert families["dynamic_dynamodb_last_pass_timestamp_seconds"].samples[0].value == NOW.timestamp() + 1.5


def test_a_skipped_target_is_counted_by_code_but_shows_no_capacity():
    m = Metrics()
    skipped = policy.skipped(TargetStatus(Target("gone"), "UNKNOWN", "", Capacity(0, 0)), Reason.NOT_FOUND, "gone")
    m.observe([TargetSample(Target("gone"), "us-east-1", skipped, Memory())], 0, 0, [], NOW, 0.1)
    families = scrape(m)
    assert not families["dynamic_dynamodb_provisioned_units"].samples
    assert {s.labels["reason"] for s in families["dynamic_dynamodb_decisions"].samples} == {"not_found"}


def test_the_grafana_dashboard_uses_only_metric_names_the_daemon_exports():
    dashboard = json.loads((REPO / "examples" / "grafana-dashboard.json").read_text())
    text = json.dumps(dashboard)
    used = set(re.findall(r"\bdynamic_dynamodb_[a-z_]+", text))
    assert used, "the dashboard shows no metric"
    assert used - Metrics().names() == set()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 8


# ---- status rows -----------------------------------------------------------------------------


@pytest.mark.parametrize("aws_count, ours, left, next_at", [
    (0, 0, 4, None),
    (2, 0, 2, None),
    (1, 2, 2, None),  # our own records when DynamoDB lags behind
    (4, 0, 0, "2026-12-01T20:30:00Z"),  # the last one at 19:30: an hour later
])
def test_status_row_counts_decreases_as_the_planner_does(aws_count, ours, left, next_at):
    last = NOW - timedelta(minutes=30)
    memory = Memory()
    for _ in range(ours):
        memory = policy.record_decrease(memory, last)
    row = status.status_row(active(decreases=aws_count, last=last if aws_count else None), "us-east-1", memory, NOW)
    assert row["decreases_left_today"] == left
    assert row["next_decrease_at"] == next_at
    assert row["index"] is None and row["schedule"] is None


@given(st.integers(0, 8), st.integers(0, 8), st.integers(0, 23 * 60))
def test_status_left_and_next_agree_with_decrease_allowed(aws_count, ours, minutes):
    now = NOW.replace(hour=0, minute=0) + timedelta(minutes=minutes, seconds=30)
    last = now - timedelta(minutes=minutes % 90)
    memory = Memory()
    for _ in range(ours):
        memory = policy.record_decrease(memory, last)
    target = active(decreases=aws_count, last=last if aws_count else None)
    row = status.status_row(target, "us-east-1", memory, now)
    assert 0 <= row["decreases_left_today"] <= 4
    assert (row["next_decrease_at"] is None) == policy.decrease_allowed(target, memory, now)


def test_the_status_table_has_one_aligned_line_per_row(capsys):
    rows = [status.status_row(active(), "us-east-1", Memory(last_reason="within_band",
                                                            last_decided="2026-12-01T20:00:00Z"), NOW)]
    status.print_table(rows, __import__("sys").stdout)
    header, line = capsys.readouterr().out.splitlines()
    assert header.startswith("TABLE") and line.startswith("orders")
    assert "within_band at 2026-12-01T20:00:00Z" in line


# ---- systemd -------------------------------------------------------------------------------------


def test_notify_messages_reach_the_socket_and_ready_is_sent_once(tmp_path):
    path = str(tmp_path / "n.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(2)
        notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
        notifier.ready()
        notifier.ready()
        notifier.stopping()
        assert [sock.recv(64), sock.recv(64)] == [b"READY=1", b"STOPPING=1"]


@pytest.mark.parametrize("environ, address, seconds", [
    ({}, None, None),
    ({"NOTIFY_SOCKET": "@sd"}, "\0sd", None),
    ({"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "30000000"}, "/run/n", 30.0),
    ({"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, "/run/n", None),
    ({"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "junk"}, "/run/n", None),
])
def test_notify_settings_come_from_the_environment(environ, address, seconds):
    notifier = SystemdNotifier(environ)
    assert (notifier.address, notifier.watchdog_seconds) == (address, seconds)


def test_without_notify_socket_nothing_is_sent_and_nothing_fails():
    notifier = SystemdNotifier({})
    notifier.ready()
    notifier.start_watchdog(lambda: True)
    notifier.stopping()


def test_a_dead_notify_socket_is_a_warning_not_a_crash(tmp_path, caplog):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "missing.sock")})
    with caplog.at_level(logging.WARNING, logger="dynamic-dynamodb"):
        notifier.ready()
    assert "Cannot notify systemd" in caplog.text


# ---- log formats ------------------------------------------------------------------------------------


def record(message: str = "orders: reads", **extra) -> logging.LogRecord:
    rec = logging.LogRecord("dynamic-dynamodb", logging.INFO, __file__, 1, message, (), None)
    rec.created, rec.msecs = 1796158160.057, 57.0
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_text_lines_start_with_a_utc_iso_time():
    assert make_formatter(Settings()).format(record()) == \
        "2026-12-01T20:49:20.057Z - dynamic-dynamodb - INFO - orders: reads"


def test_json_lines_are_one_object_with_the_extra_fields():
    line = make_formatter(Settings(log_format="json", dry_run=True)).format(record(table="orders", index=None))
    data = json.loads(line)
    assert data == {"time": "2026-12-01T20:49:20.057Z", "level": "INFO", "logger": "dynamic-dynamodb",
                    "message": "orders: reads", "dry_run": True, "table": "orders", "index": None}


# ---- the docs' examples -------------------------------------------------------------------------


def ini_blocks() -> list[tuple[str, str]]:
    """Every config-file example of the docs: (page, text)."""
    blocks = []
    for page in sorted((REPO / "docs").glob("*.rst")):
        for match in re.finditer(r"^\.\. code-block:: ini\n\n((?:    .*\n|\n)+)", page.read_text(), re.M):
            text = "\n".join(line[4:] for line in match[1].splitlines())
            if re.search(r"^\[(global|logging|default_options|table: |gsi: )", text, re.M):
                blocks.append((page.name, text))
    return blocks


@pytest.mark.parametrize("page, text", ini_blocks(), ids=lambda v: v if v.endswith(".rst") else "")
def test_every_config_example_in_the_docs_loads_when_pasted(tmp_path, page, text):
    from dynamic_dynamodb.config import load_settings

    path = tmp_path / "pasted.conf"
    path.write_text(text)
    load_settings(["-c", str(path)])  # a ConfigError (exit 2) fails the test


# ---- SNS publishes are logged; a dry run sends none ------------------------------------------------


def sns_scaler(dry_run: bool = False, fail: bool = False):
    from dataclasses import replace as _replace

    from test_gsi_budget_and_notices import TOPIC, FakeNotifier, TableDescription, scaler
    from test_gsi_budget_and_notices import status as target_status

    from dynamic_dynamodb.model import AwsError
    from dynamic_dynamodb.rules import TargetRules

    rules = TargetRules(sns_topic_arn=TOPIC, sns_message_types=("scale-up",))
    s, _, notifier = scaler(TableDescription(target_status("orders")), {Target("orders"): (95, 50)}, rules)
    if fail:
        class Failing(FakeNotifier):
            def publish(self, topic_arn, subject, message):
                raise AwsError("denied", "AuthorizationError")
        s.ports = _replace(s.ports, notifier=Failing())
    s.dry_run = dry_run
    return s, notifier, TOPIC


def test_every_sns_publish_is_logged_at_info_with_topic_and_subject(caplog):
    s, notifier, topic = sns_scaler()
    with caplog.at_level(logging.INFO, logger="dynamic-dynamodb"):
        s.run_pass(NOW)
    [sent] = notifier.sent
    [line] = [r for r in caplog.records if "SNS publish" in r.getMessage()]
    assert line.levelno == logging.INFO and (line.topic, line.subject) == (topic, sent[1])


def test_a_dry_run_sends_and_logs_no_notification(caplog):
    s, notifier, _ = sns_scaler(dry_run=True)
    with caplog.at_level(logging.INFO, logger="dynamic-dynamodb"):
        s.run_pass(NOW)
    assert notifier.sent == [] and "SNS publish" not in caplog.text


def test_a_failed_publish_is_an_aws_error_of_the_pass():
    s, _, _ = sns_scaler(fail=True)
    report = s.run_pass(NOW)
    assert ("Publish", "AuthorizationError") in report.aws_errors


# ---- --show-config says its warnings on stderr too ---------------------------------------------------


def test_show_config_prints_its_warnings_on_stderr_as_well(tmp_path, capsys):
    from dynamic_dynamodb import cli

    conf = tmp_path / "c.conf"
    conf.write_text("[global]\nno-such-key: 1\n[table: t]\n")
    assert cli.main(["-c", str(conf), "--show-config"]) == 0
    out, err = capsys.readouterr()
    assert "no-such-key" in json.dumps(json.loads(out)["warnings"])
    assert re.search(r"^dynamic-dynamodb: warning: .*no-such-key", err, re.M)


# ---- the HTTP server -----------------------------------------------------------------------------------


def test_the_server_answers_metrics_and_healthz_by_the_liveness_and_a_taken_port_is_a_config_error():
    import urllib.error
    import urllib.request

    from dynamic_dynamodb import metrics
    from dynamic_dynamodb.settings import ConfigError

    clock = [0.0]
    live = Liveness(lambda: 1, clock=lambda: clock[0])
    server = metrics.serve(Metrics(), live, 0)
    port = server.server_port
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(path: str) -> int:
        try:
            with opener.open(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    try:
        assert get("/healthz") == 200 and get("/metrics") == 200
        clock[0] = 63.0  # two 1-second intervals plus a minute, and one second more
        assert get("/healthz") == 503
        live.pass_ended()
        assert get("/healthz") == 200
        with pytest.raises(ConfigError, match=rf"metrics-port {port}: cannot listen on 127.0.0.1"):
            metrics.serve(Metrics(), live, port)
    finally:
        server.shutdown()
        server.server_close()


def test_the_status_row_names_the_schedules_in_force():
    from datetime import time as clock

    from dynamic_dynamodb.rules import Schedule, TargetRules, Window

    def sched(name, start, end):
        return Schedule(name, (Window(clock(start), clock(end)),), lead_minutes=0, min_reads=50)

    rules = TargetRules(schedules=(sched("sales", 16, 22), sched("night", 1, 3), sched("all-day", 0, 23)))
    at_17 = NOW.replace(hour=17, minute=0)
    assert status.status_row(active(), "us-east-1", Memory(), at_17, rules=rules)["schedule"] == "sales, all-day"
    assert status.status_row(active(), "us-east-1", Memory(), NOW.replace(hour=23, minute=30),
                             rules=rules)["schedule"] is None


def _gauged_tables(m: Metrics) -> set[str]:
    families = scrape(m)
    names = ("dynamic_dynamodb_provisioned_units", "dynamic_dynamodb_decreases_left_today")
    return {s.labels["table"] for name in names for s in families[name].samples}


def test_a_table_no_longer_seen_loses_its_gauges_but_not_after_a_pass_that_failed():
    m = Metrics()
    orders, archive = (TargetSample(Target(t), "eu-west-1", decision(), Memory()) for t in ("orders", "archive"))
    m.observe([orders, archive], 0, 0, [], NOW, 0.1)
    assert _gauged_tables(m) == {"orders", "archive"}
    m.observe([orders], 0, 1, [("DescribeTable", "ThrottlingException")], NOW, 0.1)  # archive may be back
    assert _gauged_tables(m) == {"orders", "archive"}
    m.observe([orders], 0, 0, [], NOW, 0.1)  # a clean pass without it: deleted, or no longer matched
    assert _gauged_tables(m) == {"orders"}
    m.observe([orders, archive], 0, 0, [], NOW, 0.1)  # and back when it is seen again
    assert _gauged_tables(m) == {"orders", "archive"}
