"""End to end: GSIs, defaults, SNS, the decrease budget and state, through the real CLI
(``--run-once``) against
moto_server behind the DynamoDB rules proxy (decrease quota, UPDATING, no-op updates).

GSIs and ``[default_options]``, the 2.5.1 option set, the 2.5.1 example configuration,
SNS notifications and alarms, the decrease budget (per table and per GSI) and the state
kept between runs. Every run has its own ``--state-file`` in tmp_path.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import signal
import subprocess
import sys
import time

import pytest
from support import metrics as M
from support.cli import REPO, assert_no_traceback, cli_env, describe
from support.moto import CLIENT_CONFIG

pytestmark = pytest.mark.e2e

UTC = dt.timezone.utc
ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture
def state_file(tmp_path):
    return tmp_path / "state.json"


@pytest.fixture
def run_once(cli, tmp_path, state_file):
    """One pass with a config text; returns the CompletedProcess."""
    def run(config: str, *args: str, timeout: float = 60):
        path = tmp_path / "dynamic-dynamodb.conf"
        path.write_text(config, encoding="utf-8")
        result = cli(["--config", str(path), "--run-once", "--state-file", str(state_file),
                      "--pid-file-dir", str(tmp_path), *args], timeout=timeout)
        assert_no_traceback(result)
        return result
    return run


def conf(*sections: str, defaults: str = "", global_extra: str = "") -> str:
    """[global] (+ [default_options]) + the given sections, log level debug."""
    text = "[global]\nregion: us-east-1\n" + global_extra + "\n[logging]\nlog-level: debug\n\n"
    if defaults:
        text += "[default_options]\n" + defaults + "\n"
    return text + "\n".join(sections)


def section(header: str, **keys) -> str:
    lines = [f"[{header}]"] + [f"{k.replace('_', '-')}: {v}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def pct(percent: float, units: int) -> float:
    return M.consumed_percent_to_units_per_second(percent, units)


def seed(aws, table: str, read: int = 10, write: int = 10, *, reads: float | None = None,
         writes: float | None = None, index: str | None = None, gsis=None, create: bool = True,
         **throttles) -> None:
    """Create a table (unless create=False) and give it (or one GSI) consumption in percent."""
    if create:
        M.create_table(aws.dynamodb, table, read, write, gsis=gsis)
    M.put_consumption(aws.cloudwatch, table, index,
                      read_per_second=None if reads is None else pct(reads, read),
                      write_per_second=None if writes is None else pct(writes, write), **throttles)


def accepted_updates(proxy, table: str | None = None) -> list[dict]:
    return [c for c in proxy.calls("UpdateTable", table=table) if c["status"] == 200]


def refused(proxy) -> list[dict]:
    return [c for c in proxy.calls("UpdateTable") if c["error"] == "LimitExceededException"]


def gsi_updates(call: dict) -> dict[str, tuple[int, int]]:
    out = {}
    for u in call["params"].get("GlobalSecondaryIndexUpdates", []):
        pt = u["Update"]["ProvisionedThroughput"]
        out[u["Update"]["IndexName"]] = (pt["ReadCapacityUnits"], pt["WriteCapacityUnits"])
    return out


def table_update(call: dict) -> tuple[int, int] | None:
    pt = call["params"].get("ProvisionedThroughput")
    return None if pt is None else (pt["ReadCapacityUnits"], pt["WriteCapacityUnits"])


@pytest.fixture
def inbox(proxy_aws):
    """An SNS topic with an SQS queue subscribed (raw delivery): ``.arn``, ``.bodies()``."""
    class Inbox:
        def __init__(self, name: str = "scaling"):
            self.arn = proxy_aws.sns.create_topic(Name=name)["TopicArn"]
            self.queue = proxy_aws.sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
            queue_arn = proxy_aws.sqs.get_queue_attributes(
                QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            proxy_aws.sns.subscribe(TopicArn=self.arn, Protocol="sqs", Endpoint=queue_arn,
                                    Attributes={"RawMessageDelivery": "true"})

        def bodies(self) -> list[str]:
            out = []
            while True:
                got = proxy_aws.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10,
                                                    WaitTimeSeconds=0).get("Messages", [])
                if not got:
                    return out
                for m in got:
                    out.append(m["Body"])
                    proxy_aws.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])
    return Inbox


def sent(moto, topic_arn: str | None = None) -> list[tuple[str, str]]:
    """(subject, message) of every SNS publish, oldest first (moto's own record)."""
    return [(n["subject"], n["message"]) for n in moto.sns_notifications()
            if topic_arn is None or n["topic_arn"] == topic_arn]


# --------------------------------------------------------------------------- GSIs
def test_table_and_gsis_scale_from_their_own_metrics_in_one_update_table(rules_proxy, proxy_aws, aws, run_once):
    gsis = {"by_customer": (10, 10), "by_date": (10, 10), "legacy_idx": (10, 10)}
    seed(proxy_aws, "orders", reads=95, writes=50, gsis=gsis)
    seed(proxy_aws, "orders", index="by_customer", reads=50, writes=95, create=False)
    seed(proxy_aws, "orders", index="by_date", reads=20, writes=50, create=False)
    seed(proxy_aws, "orders", index="legacy_idx", reads=95, writes=95, create=False)  # no section matches
    r = run_once(conf(section("table: orders"), section("gsi: by_.* table: orders")))
    assert r.returncode == 0, describe(r)

    [call] = accepted_updates(rules_proxy)
    assert table_update(call) == (15, 10)
    assert gsi_updates(call) == {"by_customer": (10, 15), "by_date": (5, 10)}
    assert M.provisioned(aws.dynamodb, "orders", "legacy_idx") == (10, 10)
    # each GSI was measured with its own GlobalSecondaryIndexName dimension
    asked = {tuple(sorted((d["Name"], d["Value"]) for d in q["MetricStat"]["Metric"]["Dimensions"]))
             for c in rules_proxy.calls("GetMetricData") for q in c["params"]["MetricDataQueries"]}
    assert (("GlobalSecondaryIndexName", "by_customer"), ("TableName", "orders")) in asked
    assert (("TableName", "orders"),) in asked
    assert not any(("GlobalSecondaryIndexName", "legacy_idx") in q for q in asked)
    # the GSI's decrease counts against the GSI, not the table
    assert rules_proxy.counters("orders", "by_date")["NumberOfDecreasesToday"] == 1
    assert rules_proxy.counters("orders")["NumberOfDecreasesToday"] == 0


def test_a_gsi_that_is_not_active_is_skipped_and_its_table_still_scales(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, "orders", reads=95, writes=50, gsis={"by_customer": (10, 10), "by_date": (10, 10)})
    seed(proxy_aws, "orders", index="by_customer", reads=95, writes=50, create=False)
    seed(proxy_aws, "orders", index="by_date", reads=95, writes=50, create=False)
    rules_proxy.set_updating("orders", "by_customer", seconds=600)
    r = run_once(conf(section("table: orders"), section("gsi: .* table: orders")))
    assert r.returncode == 0, describe(r)
    assert "orders/by_customer: status UPDATING, skipped until ACTIVE" in r.stderr
    for call in rules_proxy.calls("UpdateTable"):
        assert "by_customer" not in gsi_updates(call)
    assert M.provisioned(aws.dynamodb, "orders", "by_customer") == (10, 10)


def test_the_gsis_of_an_updating_table_are_not_sent(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, "orders", reads=95, writes=50, gsis={"by_customer": (10, 10)})
    seed(proxy_aws, "orders", index="by_customer", reads=95, writes=50, create=False)
    rules_proxy.set_updating("orders", seconds=600)
    r = run_once(conf(section("table: orders"), section("gsi: by_customer table: orders")))
    assert r.returncode == 0, describe(r)
    assert rules_proxy.calls("UpdateTable") == []  # DynamoDB would refuse it: not even tried


# --------------------------------------------------------------------------- [default_options]
def test_default_options_are_inherited_by_every_table_and_gsi(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, "orders", reads=85, writes=50, gsis={"by_customer": (10, 10)})
    seed(proxy_aws, "orders", index="by_customer", reads=85, writes=50, create=False)
    seed(proxy_aws, "invoices", 10, 5, reads=85, writes=50)
    r = run_once(conf(
        section("table: orders"),
        section("table: invoices", increase_reads_with=20),  # overrides the default
        section("gsi: by_customer table: orders"),
        defaults="reads-upper-threshold: 80\nincrease-reads-with: 100\nmin-provisioned-writes: 7\n"))
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "orders") == (20, 10)  # 85 % >= 80 %: +100 %
    assert M.provisioned(aws.dynamodb, "orders", "by_customer") == (20, 10)
    assert M.provisioned(aws.dynamodb, "invoices") == (12, 7)  # +20 %; writes raised to the min


# --------------------------------------------------------------------------- the 2.5.1 options
def test_the_2_5_1_scaling_options(rules_proxy, proxy_aws, aws, run_once, breaker):
    """One table per option, one pass."""
    ddb, cw = proxy_aws.dynamodb, proxy_aws.cloudwatch
    seed(proxy_aws, "throttled", reads=50, writes=50, read_throttles_per_minute=40)
    seed(proxy_aws, "burst", reads=300, writes=50)
    seed(proxy_aws, "granular_up", reads=60, writes=50)
    seed(proxy_aws, "granular_down", 20, 10, reads=5, writes=50)
    seed(proxy_aws, "granular_down_less", 20, 10, reads=30, writes=50)
    seed(proxy_aws, "no_up", reads=95, writes=50)
    seed(proxy_aws, "no_down", 20, 10, reads=10, writes=50)
    seed(proxy_aws, "reads_off", reads=95, writes=95)
    seed(proxy_aws, "throttled_low", 20, 10, reads=10, writes=50, read_throttles_per_minute=1)
    # the last 6 minutes are hot, before that 50 %
    for name in ("recent_window", "default_window"):
        M.create_table(ddb, name, 10, 10)
        M.put_metric_minutes(cw, M.CONSUMED_READ, name, [300.0] * 24 + [1200.0] * 6)
        M.put_metric_minutes(cw, M.CONSUMED_WRITE, name, 300.0)
    M.create_table(ddb, "guarded", 10, 10, gsis={"by_customer": (10, 10), "by_date": (10, 10)})
    for index in (None, "by_customer", "by_date"):
        seed(proxy_aws, "guarded", index=index, reads=95, writes=50, create=False)
    breaker.statuses["/gsi-breaker"] = 503

    r = run_once(conf(
        section("table: throttled", throttled_reads_upper_threshold=100),
        section("table: burst"),
        section("table: granular_up", reads_upper_threshold=55, increase_consumed_reads_unit="units",
                increase_consumed_reads_scale="{0: 0, 50: 10, 80: 100}"),
        section("table: granular_down.*", decrease_consumed_reads_scale="{10: 50, 40: 20}"),
        section("table: no_up", enable_reads_up_scaling="false"),
        section("table: no_down", enable_reads_down_scaling="false"),
        section("table: reads_off", enable_reads_autoscaling="false"),
        section("table: throttled_low"),
        section("table: recent_window", lookback_window_start=5, lookback_period=5),
        section("table: default_window"),
        section("table: guarded", circuit_breaker_url=breaker.url, circuit_breaker_timeout=2000),
        section("gsi: by_date table: guarded", circuit_breaker_url=breaker.url.replace("/breaker", "/gsi-breaker"),
                circuit_breaker_timeout=2000),
        section("gsi: by_customer table: guarded"),
    ))
    assert r.returncode == 0, describe(r)
    got = {name: M.provisioned(aws.dynamodb, name) for name in (
        "throttled", "burst", "granular_up", "granular_down", "granular_down_less", "no_up", "no_down",
        "reads_off", "throttled_low", "default_window")}
    assert got == {
        "throttled": (15, 10),  # 200 throttle events in the window > 100
        "burst": (45, 10),  # 30 units/s consumed of 10: grows from 30 by 50 %
        "granular_up": (20, 10),  # 60 %: the scale's 50 -> +10 units, not the threshold's +50 %
        "granular_down": (10, 10),  # 5 %: smallest key above is 10 -> -50 %
        "granular_down_less": (16, 10),  # 30 %: smallest key above is 40 -> -20 %
        "no_up": (10, 10),
        "no_down": (20, 10),
        "reads_off": (10, 15),  # reads left alone, writes still scale
        "throttled_low": (20, 10),  # no decrease while requests are throttled
        "default_window": (10, 10),  # 15..10 minutes ago: 50 %
    }, describe(r)
    assert M.provisioned(aws.dynamodb, "recent_window")[0] > 10  # the last 5 minutes: hot
    # per-table breaker: the table and each GSI probed with their names; the GSI's own breaker is open
    probes = {(q.path, q.table_name, q.gsi_name) for q in breaker.requests}
    assert probes == {("/breaker", "guarded", None), ("/breaker", "guarded", "by_customer"),
                      ("/gsi-breaker", "guarded", "by_date")}
    assert M.provisioned(aws.dynamodb, "guarded") == (15, 10)
    assert M.provisioned(aws.dynamodb, "guarded", "by_customer") == (15, 10)
    assert M.provisioned(aws.dynamodb, "guarded", "by_date") == (10, 10)


def test_the_2_5_1_example_config_parses_and_runs(rules_proxy, tmp_path, cli, breaker, state_file):
    """tests/data/dynamic-dynamodb-2.5.1.conf, every section and key, against tables that
    match it (eu-west-1), with --dry-run; only its breaker URLs point at the local breaker."""
    region = "eu-west-1"
    ddb = _client("dynamodb", rules_proxy.url, region)
    cw = _client("cloudwatch", rules_proxy.url, region)
    M.create_table(ddb, "orders", 100, 100, gsis={"by_customer": (50, 50)})
    M.create_table(ddb, "events_2024", 100, 100)
    M.create_table(ddb, "events_old", 100, 100)  # events_\d{4} must match the whole name
    for table, index in (("orders", None), ("orders", "by_customer"), ("events_2024", None), ("events_old", None)):
        M.put_consumption(cw, table, index, read_per_second=95, write_per_second=95)

    local = f"http://ops:hunter2@127.0.0.1:{breaker.port}"
    text = (REPO / "tests" / "data" / "dynamic-dynamodb-2.5.1.conf").read_text(encoding="utf-8")
    text = (text.replace("https://ops:hunter2@breaker.example.com/ok", f"{local}/ok")
            .replace("http://breaker.example.com/orders", f"http://127.0.0.1:{breaker.port}/orders"))
    assert f"{local}/ok" in text and f"127.0.0.1:{breaker.port}/orders" in text
    config = tmp_path / "dynamic-dynamodb-2.5.1.conf"
    config.write_text(text, encoding="utf-8")
    own_log = tmp_path / "own.log"
    log_config = tmp_path / "logging.ini"
    log_config.write_text(
        "[loggers]\nkeys=root,dd\n\n[handlers]\nkeys=file\n\n[formatters]\nkeys=plain\n\n"
        "[logger_root]\nlevel=WARNING\nhandlers=\n\n"
        "[logger_dd]\nlevel=DEBUG\nhandlers=file\nqualname=dynamic-dynamodb\npropagate=0\n\n"
        f"[handler_file]\nclass=FileHandler\nlevel=DEBUG\nformatter=plain\nargs=({str(own_log)!r},)\n\n"
        "[formatter_plain]\nformat=OWN %(levelname)s %(message)s\n", encoding="utf-8")
    args = ["--config", str(config), "--log-file", str(tmp_path / "dd.log"), "--log-config-file", str(log_config),
            "--pid-file-dir", str(tmp_path), "--state-file", str(state_file)]

    shown = cli([*args, "--show-config"])
    assert shown.returncode == 0, describe(shown)
    settings = json.loads(shown.stdout)
    assert [t["key"] for t in settings["tables"]] == ["orders", r"events_\d{4}"]
    assert [g["key"] for g in settings["tables"][0]["gsis"]] == ["by_customer"]
    assert settings["aws_secret_access_key"] == "***"
    assert "hunter2" not in shown.stdout and "wJalrXUtnFEMI" not in shown.stdout

    r = cli([*args, "--run-once", "--dry-run"])
    assert_no_traceback(r)
    assert r.returncode == 0, describe(r)
    assert rules_proxy.calls("UpdateTable") == []
    log = own_log.read_text(encoding="utf-8")
    for target in ("orders", "orders/by_customer", "events_2024"):
        assert re.search(rf"^OWN INFO {re.escape(target)}: reads ", log, re.M), log
    assert not re.search(r"^OWN INFO events_old: ", log, re.M)
    assert "hunter2" not in log + r.stderr + r.stdout
    assert not state_file.exists()  # a dry run keeps no state
    # the global breaker once (with its credentials), orders' own breaker for the table and its GSI
    probes = {(q.path, q.table_name, q.gsi_name, q.auth) for q in breaker.requests}
    assert probes == {("/ok", None, None, ("ops", "hunter2")), ("/orders", "orders", None, None),
                      ("/orders", "orders", "by_customer", None)}


def _client(service: str, endpoint: str, region: str):
    import boto3
    return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint,
                                          aws_access_key_id="testing", aws_secret_access_key="testing",
                                          config=CLIENT_CONFIG)


# --------------------------------------------------------------------------- SNS
def test_scale_notifications_one_message_per_event(rules_proxy, proxy_aws, aws, run_once, inbox, moto):
    box = inbox()
    seed(proxy_aws, "orders", reads=95, writes=50, gsis={"by_customer": (10, 10)})
    seed(proxy_aws, "orders", index="by_customer", reads=50, writes=10, create=False)
    seed(proxy_aws, "quiet", reads=95, writes=50)
    r = run_once(conf(section("table: orders"), section("gsi: by_customer table: orders"),
                      section("table: quiet", sns_message_types="scale-down"),
                      defaults=f"sns-topic-arn: {box.arn}\nsns-message-types: scale-up, scale-down\n"))
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "quiet") == (15, 10)  # scaled up, but only scale-down is wanted
    assert sorted(sent(moto, box.arn)) == [
        ("Updated provisioning for GSI by_customer", "orders - GSI: by_customer - Writes: DOWN from 10 to 5\n"),
        ("Updated provisioning for table orders", "orders - Reads: UP from 10 to 15\n"),
    ]
    assert sorted(box.bodies()) == ["orders - GSI: by_customer - Writes: DOWN from 10 to 5\n",
                                    "orders - Reads: UP from 10 to 15\n"]


def test_a_throughput_alarm_is_sent_on_entering_the_state_and_again_only_after_it_cleared(
        rules_proxy, proxy_aws, aws, run_once, inbox, moto, state_file):
    box = inbox()
    seed(proxy_aws, "hot", reads=90, writes=50)
    seed(proxy_aws, "cold", reads=10, writes=50)
    config = conf(section("table: hot", reads_upper_alarm_threshold=85),
                  section("table: cold", reads_lower_alarm_threshold=20, writes_lower_alarm_threshold=20),
                  defaults=(f"sns-topic-arn: {box.arn}\nsns-message-types: high-throughput-alarm, "
                            "low-throughput-alarm\nenable-reads-autoscaling: false\n"
                            "enable-writes-autoscaling: false\n"))

    def set_reads(units: int) -> None:  # straight to moto: the consumed % changes, nothing else
        aws.dynamodb.update_table(TableName="hot", ProvisionedThroughput={
            "ReadCapacityUnits": units, "WriteCapacityUnits": 10})

    high = ("ALARM: High Throughput for Table hot",
            "hot - Consumed Read Capacity 90.000000% was greater than or equal to the upper alarm threshold "
            "85.000000%\n")
    low = ("ALARM: Low Throughput for Table cold",
           "cold - Consumed Read Capacity 10.000000% was below the lower alarm threshold 20.000000%\n")
    counts = []
    for reads in (10, 10, 20, 20, 10):  # 90 % (enter), 90 % (still), 45 % (cleared), 45 %, 90 % (again)
        set_reads(reads)
        r = run_once(config)
        assert r.returncode == 0, describe(r)
        counts.append(len(sent(moto, box.arn)))
        assert json.loads(state_file.read_text())  # the alarm state is kept between runs
    assert counts == [2, 2, 2, 2, 3]
    messages = sent(moto, box.arn)
    assert sorted(messages[:2]) == sorted([high, low]) and messages[2] == high, messages
    assert len(box.bodies()) == 3
    assert rules_proxy.calls("UpdateTable") == []


def test_a_failing_publish_is_logged_and_never_fatal(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, "orders", reads=95, writes=50)
    missing = f"arn:aws:sns:us-east-1:{ACCOUNT}:no-such-topic"
    r = run_once(conf(section("table: orders", sns_topic_arn=missing, sns_message_types="scale-up")))
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "orders") == (15, 10)
    assert re.search(r"orders: SNS publish to .*no-such-topic failed", r.stderr), describe(r)


# --------------------------------------------------------------------------- the decrease budget
def test_a_burst_of_runs_never_sends_a_refused_decrease(rules_proxy, proxy_aws, aws, run_once, moto):
    """Eight passes in a row, each wanting to decrease: the table stops after DynamoDB's 4,
    its GSI (2 spent already today) after 2 more, the table with reserved-decreases: 1
    after 3; DynamoDB never answers LimitExceeded; one budget notice per target."""
    now = rules_proxy.now_datetime()
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), UTC)
    if now - dt.timedelta(minutes=2) < dt.datetime.combine(now.date(), dt.time(), UTC) or \
            midnight - now < dt.timedelta(minutes=2):
        pytest.skip("too close to 00:00 UTC, when DynamoDB's count restarts")
    topic = proxy_aws.sns.create_topic(Name="budget")["TopicArn"]
    seed(proxy_aws, "burst", 1000, 1000, reads=0.1, writes=0.1, gsis={"burst_idx": (1000, 1000)})
    seed(proxy_aws, "burst", 1000, 1000, index="burst_idx", reads=0.1, writes=0.1, create=False)
    seed(proxy_aws, "reserved", 1000, 1000, reads=0.1, writes=0.1)
    rules_proxy.set_decreases("burst", "burst_idx", count=2, last=rules_proxy.now() - 60)
    config = conf(section("table: burst"), section("gsi: burst_idx table: burst"),
                  section("table: reserved", reserved_decreases=1),
                  defaults=f"sns-topic-arn: {topic}\nsns-message-types: scale-down\n")
    for _ in range(8):
        r = run_once(config)
        assert r.returncode == 0, describe(r)

    assert refused(rules_proxy) == []
    assert [c["error"] for c in rules_proxy.calls("UpdateTable")] == [None] * 7
    assert rules_proxy.counters("burst")["NumberOfDecreasesToday"] == 4
    assert rules_proxy.counters("burst", "burst_idx")["NumberOfDecreasesToday"] == 4
    assert rules_proxy.counters("reserved")["NumberOfDecreasesToday"] == 3
    assert M.provisioned(aws.dynamodb, "burst") == (63, 63)  # 1000 -> 500 -> 250 -> 125 -> 63
    assert M.provisioned(aws.dynamodb, "burst", "burst_idx") == (250, 250)
    assert M.provisioned(aws.dynamodb, "reserved") == (125, 125)
    # reads and writes go down together, in one call per table (GSI included)
    for call in accepted_updates(rules_proxy, "burst"):
        assert table_update(call) in (None, (500, 500), (250, 250), (125, 125), (63, 63))
    subjects = [s for s, _ in sent(moto, topic)]
    assert subjects.count("Updated provisioning for table burst") == 4
    assert subjects.count("Updated provisioning for GSI burst_idx") == 2
    assert subjects.count("Updated provisioning for table reserved") == 3
    budget = sorted(s for s in subjects if s.startswith("Decrease budget spent"))
    assert budget == ["Decrease budget spent for burst", "Decrease budget spent for burst/burst_idx",
                      "Decrease budget spent for reserved"], subjects


# --------------------------------------------------------------------------- state across runs
def test_consecutive_checks_count_across_separate_runs(rules_proxy, proxy_aws, aws, run_once, state_file):
    seed(proxy_aws, "orders", 20, 20, reads=10, writes=50)
    config = conf(section("table: orders", num_read_checks_before_scale_down=3))
    for expected in ((20, 20), (20, 20), (10, 20)):
        r = run_once(config)
        assert r.returncode == 0, describe(r)
        assert M.provisioned(aws.dynamodb, "orders") == expected, describe(r)
    assert len(accepted_updates(rules_proxy)) == 1
    saved = json.loads(state_file.read_text())
    [entry] = [t for t in saved["targets"] if t["table"] == "orders"]
    assert entry["memory"]["read_checks"] == 0 and entry["memory"]["decreases_today"] == 1


def test_a_corrupt_state_file_starts_fresh_with_a_warning(rules_proxy, proxy_aws, aws, run_once, state_file):
    seed(proxy_aws, "orders", reads=95, writes=50)
    state_file.write_text("{this is not json", encoding="utf-8")
    r = run_once(conf(section("table: orders")))
    assert r.returncode == 0, describe(r)
    assert "starting fresh" in r.stderr, describe(r)
    assert M.provisioned(aws.dynamodb, "orders") == (15, 10)
    # rewritten whole: only this pass's memory, its last decision
    [entry] = json.loads(state_file.read_text())["targets"]
    assert entry["table"] == "orders" and entry["memory"]["last_reason"] == "high_load"


def test_a_sighup_keeps_the_consecutive_check_count(tmp_path, rules_proxy, proxy_aws, aws, state_file):
    """The foreground loop re-reads its config on SIGHUP; the counters go on where they were."""
    seed(proxy_aws, "orders", 20, 20, reads=10, writes=50)
    config = tmp_path / "dd.conf"
    text = ("[global]\ncheck-interval: 1\n\n"
            + section("table: orders", num_read_checks_before_scale_down=4))
    config.write_text(text, encoding="utf-8")
    log = tmp_path / "dd.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dynamic_dynamodb", "-c", str(config), "--daemon", "fg", "--pid-file-dir",
         str(tmp_path), "--state-file", str(state_file), "--log-file", str(log)],
        env=cli_env(rules_proxy.url), cwd=str(REPO), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: "check 2/4" in _read(log), "the second check", log)
        config.write_text(text + "writes-upper-threshold: 95\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        _wait(lambda: M.provisioned(aws.dynamodb, "orders") != (20, 20), "the read decrease", log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = _read(log)
    assert "Configuration reloaded from" in text, text
    assert re.findall(r"orders: reads \S+ of 20 \([^)]*check (\d)/4", text) == ["1", "2", "3"], text
    assert M.provisioned(aws.dynamodb, "orders") == (10, 20)


def _read(path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _wait(predicate, what: str, log, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{_read(log)}")
        time.sleep(0.05)
