"""End to end: `python -m dynamic_dynamodb ... --run-once` as a separate process against
moto_server behind the DynamoDB rules proxy (decrease quota, UPDATING, faults).

Every test seeds per-minute CloudWatch data over the last 30 minutes, so the daemon's
default window (now-15 ... now-10 min) sees 5 minutes of it; consumed % = units/s /
provisioned x 100.
"""
from __future__ import annotations

import datetime as dt
import os
import signal

import pytest
from support import metrics as M
from support.cli import REPO, assert_no_traceback, describe

pytestmark = pytest.mark.e2e

UTC = dt.timezone.utc


@pytest.fixture
def run_once(cli, tmp_path):
    """Run one pass with a config text (or only ARGS); returns the CompletedProcess."""
    def run(config: str | None = None, *args: str, timeout: float = 60):
        argv = ["--run-once", "--state-file", str(tmp_path / "state.json"), "--pid-file-dir", str(tmp_path)]
        if config is not None:
            path = tmp_path / "dynamic-dynamodb.conf"
            path.write_text(config, encoding="utf-8")
            argv = ["--config", str(path), *argv]
        result = cli([*argv, *args], timeout=timeout)
        assert_no_traceback(result)
        return result
    return run


def conf(*sections: str, global_extra: str = "") -> str:
    """A config: [global] + [logging] + the given sections."""
    return ("[global]\nregion: us-east-1\ncheck-interval: 300\n" + global_extra
            + "\n[logging]\nlog-level: debug\n\n" + "\n".join(sections))


def table_section(name: str = "orders", **keys) -> str:
    lines = [f"[table: {name}]"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def seed(aws, table: str = "orders", read: int = 10, write: int = 10, *, reads_pct: float | None,
         writes_pct: float | None, gsis=None, create: bool = True) -> None:
    """A provisioned table whose consumption over the last 30 minutes is the given percent."""
    if create:
        M.create_table(aws.dynamodb, table, read, write, gsis=gsis)
    M.put_consumption(
        aws.cloudwatch, table,
        read_per_second=None if reads_pct is None else M.consumed_percent_to_units_per_second(reads_pct, read),
        write_per_second=None if writes_pct is None else M.consumed_percent_to_units_per_second(writes_pct, write))


def updates(proxy, table: str | None = None, accepted_only: bool = True) -> list[dict]:
    return [c for c in proxy.calls("UpdateTable", table=table)
            if not accepted_only or c["status"] == 200]


# --------------------------------------------------------------------------- the basics
def test_scale_up(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, reads_pct=95, writes_pct=50)
    r = run_once(conf(table_section()))
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "orders") == (15, 10)
    [call] = updates(rules_proxy)
    assert call["params"]["ProvisionedThroughput"] == {"ReadCapacityUnits": 15, "WriteCapacityUnits": 10}


def test_scale_down_lowers_reads_and_writes_in_one_call(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, read=20, write=20, reads_pct=10, writes_pct=10)
    r = run_once(conf(table_section()))
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "orders") == (10, 10)
    assert len(rules_proxy.calls("UpdateTable")) == 1
    assert rules_proxy.counters("orders")["NumberOfDecreasesToday"] == 1


def test_no_change_between_thresholds(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, reads_pct=50, writes_pct=60)
    r = run_once(conf(table_section()))
    assert r.returncode == 0, describe(r)
    assert rules_proxy.calls("UpdateTable") == []
    assert M.provisioned(aws.dynamodb, "orders") == (10, 10)


def test_no_data_is_no_decision(rules_proxy, proxy_aws, run_once):
    M.create_table(proxy_aws.dynamodb, "orders", 10, 10)
    r = run_once(conf(table_section()))
    assert r.returncode == 0, describe(r)
    assert rules_proxy.calls("UpdateTable") == []


def test_dry_run_changes_nothing(rules_proxy, proxy_aws, aws, run_once, tmp_path):
    seed(proxy_aws, read=20, write=10, reads_pct=95, writes_pct=5)
    r = run_once(conf(table_section()), "--dry-run")
    assert r.returncode == 0, describe(r)
    assert rules_proxy.calls("UpdateTable") == []
    assert M.provisioned(aws.dynamodb, "orders") == (20, 10)
    assert "30" in r.stderr + r.stdout  # the decision is still reported (20 -> 30 reads)


def test_command_line_table(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, reads_pct=95, writes_pct=95)
    r = run_once(None, "--table-name", "orders", "--reads-upper-threshold", "90",
                 "--increase-reads-with", "5", "--increase-reads-unit", "units",
                 "--writes-upper-threshold", "99")
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "orders") == (15, 10)


@pytest.mark.parametrize("pct,keys,expected", [
    (95, {"max_provisioned_reads": 12}, 12),   # 10 -> 15, clamped to the max
    (10, {"min_provisioned_reads": 8}, 8),     # 10 -> 5, clamped to the min
    (50, {"min_provisioned_reads": 12}, 12),   # below its min: raised without a load trigger
])
def test_min_max_clamps(rules_proxy, proxy_aws, aws, run_once, pct, keys, expected):
    seed(proxy_aws, reads_pct=pct, writes_pct=50)
    r = run_once(conf(table_section(**keys)))
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "orders") == (expected, 10)


def test_zero_percent_is_not_a_decrease_unless_allowed(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, "orders", reads_pct=0, writes_pct=0)
    seed(proxy_aws, "invoices", reads_pct=0, writes_pct=0)
    r = run_once(conf(table_section("orders"),
                      table_section("invoices", allow_scaling_down_reads_on_0_percent="true",
                                    allow_scaling_down_writes_on_0_percent="true")))
    assert r.returncode == 0, describe(r)
    assert updates(rules_proxy, "orders") == []
    assert M.provisioned(aws.dynamodb, "orders") == (10, 10)
    assert M.provisioned(aws.dynamodb, "invoices") == (5, 5)


def test_gsi_scaled_with_its_own_series(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, reads_pct=50, writes_pct=50, gsis={"by_customer": (10, 10)})
    M.put_consumption(proxy_aws.cloudwatch, "orders", "by_customer", read_per_second=9.5, write_per_second=5)
    r = run_once(conf(table_section(), "[gsi: by_customer table: orders]\n"))
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "orders") == (10, 10)
    assert M.provisioned(aws.dynamodb, "orders", "by_customer") == (15, 10)
    [call] = updates(rules_proxy)
    assert "ProvisionedThroughput" not in call["params"]  # the table itself is unchanged


def test_regex_matches_whole_names(rules_proxy, proxy_aws, aws, run_once):
    for name in ("app_a", "app_b", "app_a_v2", "other"):
        seed(proxy_aws, name, reads_pct=95, writes_pct=50)
    r = run_once(conf(table_section("app_(a|b)")))
    assert r.returncode == 0, describe(r)
    assert {c["table"] for c in updates(rules_proxy)} == {"app_a", "app_b"}
    assert M.provisioned(aws.dynamodb, "app_a_v2") == (10, 10)


def test_example_config(rules_proxy, proxy_aws, aws, run_once, tmp_path):
    seed(proxy_aws, "my_table", reads_pct=95, writes_pct=95)
    text = (REPO / "example-dynamic-dynamodb.conf").read_text(encoding="utf-8")
    log_file = tmp_path / "dd.log"
    r = run_once(text, "--log-file", str(log_file))
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "my_table") == (15, 15)
    assert "my_table" in log_file.read_text(encoding="utf-8")


def test_sns_notification_on_scale_up(rules_proxy, proxy_aws, run_once, moto):
    topic = proxy_aws.sns.create_topic(Name="scaling")["TopicArn"]
    seed(proxy_aws, reads_pct=95, writes_pct=50)
    r = run_once(conf(table_section(sns_topic_arn=topic, sns_message_types="scale-up,scale-down")))
    assert r.returncode == 0, describe(r)
    notes = moto.sns_notifications()
    assert len(notes) == 1 and "orders" in notes[0]["message"], notes


# --------------------------------------------------------------------------- guards
def _hhmm(t: dt.datetime) -> str:
    return f"{t:%H:%M}"


def test_maintenance_window(rules_proxy, proxy_aws, aws, run_once):
    now = dt.datetime.now(UTC)
    inside = f"{_hhmm(now - dt.timedelta(hours=1))}-{_hhmm(now + dt.timedelta(hours=1))}"
    outside = f"{_hhmm(now + dt.timedelta(hours=2))}-{_hhmm(now + dt.timedelta(hours=3))}"
    seed(proxy_aws, "in_window", read=20, write=20, reads_pct=10, writes_pct=10)
    seed(proxy_aws, "out_window", read=20, write=20, reads_pct=10, writes_pct=10)
    seed(proxy_aws, "out_window_up", reads_pct=95, writes_pct=50)
    r = run_once(conf(table_section("in_window", maintenance_windows=inside),
                      table_section("out_window", maintenance_windows=outside),
                      table_section("out_window_up", maintenance_windows=outside)))
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "in_window") == (10, 10)
    assert M.provisioned(aws.dynamodb, "out_window") == (20, 20)  # decreases wait
    assert M.provisioned(aws.dynamodb, "out_window_up") == (15, 10)  # increases go ahead
    assert updates(rules_proxy, "out_window") == []


def test_circuit_breaker_open_blocks_changes(rules_proxy, proxy_aws, aws, run_once, breaker):
    breaker.status = 503
    seed(proxy_aws, reads_pct=95, writes_pct=50)
    r = run_once(conf(table_section(), global_extra=f"circuit-breaker-url: {breaker.url}\n"
                                                    "circuit-breaker-timeout: 2000\n"))
    assert r.returncode == 0, describe(r)
    assert len(breaker.requests) == 1
    assert rules_proxy.calls("UpdateTable") == []
    assert M.provisioned(aws.dynamodb, "orders") == (10, 10)


def test_circuit_breaker_closed_per_table_with_auth(rules_proxy, proxy_aws, aws, run_once, breaker):
    seed(proxy_aws, reads_pct=95, writes_pct=50)
    url = breaker.url_with_auth("scaler", "s3cret-pw")
    r = run_once(conf(table_section(circuit_breaker_url=url, circuit_breaker_timeout=2000)))
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "orders") == (15, 10)
    [req] = breaker.requests
    assert req.table_name == "orders"
    assert req.auth == ("scaler", "s3cret-pw")
    assert "s3cret-pw" not in r.stdout + r.stderr


def test_circuit_breaker_unreachable_is_open(rules_proxy, proxy_aws, run_once, breaker):
    breaker.delay = 2.0  # longer than the 200 ms timeout
    seed(proxy_aws, reads_pct=95, writes_pct=50)
    r = run_once(conf(table_section(circuit_breaker_url=breaker.url, circuit_breaker_timeout=200)))
    assert r.returncode == 0, describe(r)
    assert rules_proxy.calls("UpdateTable") == []


# --------------------------------------------------------------------------- DynamoDB's rules
def test_updating_table_is_skipped(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, reads_pct=95, writes_pct=50, gsis={"by_customer": (10, 10)})
    M.put_consumption(proxy_aws.cloudwatch, "orders", "by_customer", read_per_second=9.5, write_per_second=5)
    rules_proxy.set_updating("orders", seconds=600)
    r = run_once(conf(table_section(), "[gsi: by_customer table: orders]\n"))
    assert r.returncode == 0, describe(r)
    assert updates(rules_proxy) == []
    assert M.provisioned(aws.dynamodb, "orders") == (10, 10)


def test_updating_gsi_does_not_crash(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, reads_pct=95, writes_pct=50, gsis={"by_customer": (10, 10)})
    M.put_consumption(proxy_aws.cloudwatch, "orders", "by_customer", read_per_second=9.5, write_per_second=5)
    rules_proxy.set_updating("orders", "by_customer", seconds=600)
    r = run_once(conf(table_section(), "[gsi: by_customer table: orders]\n"))
    assert r.returncode == 0, describe(r)
    # the busy GSI is never sent; the table may be (then refused as busy, or accepted)
    assert all("GlobalSecondaryIndexUpdates" not in c["params"] for c in rules_proxy.calls("UpdateTable"))
    assert M.provisioned(aws.dynamodb, "orders", "by_customer") == (10, 10)


def test_busy_answer_from_update_table_is_a_skip(rules_proxy, proxy_aws, run_once):
    seed(proxy_aws, reads_pct=95, writes_pct=50)
    rules_proxy.add_faults([{"operation": "UpdateTable", "status": 400, "code": "ResourceInUseException",
                             "message": "Attempt to change a resource which is still in use"}])
    r = run_once(conf(table_section()))
    assert r.returncode == 0, describe(r)


def earlier_today(proxy, seconds: float) -> float:
    """`seconds` ago, but never before this UTC day began (the daemon reads the real clock)."""
    now = proxy.now()
    return max(now - seconds, now - now % 86400 + 1)


def test_exhausted_decrease_quota_is_not_spent(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, read=20, write=20, reads_pct=10, writes_pct=10)
    rules_proxy.set_decreases("orders", count=4, last=earlier_today(rules_proxy, 600))
    r = run_once(conf(table_section()))
    assert r.returncode == 0, describe(r)
    assert rules_proxy.calls("UpdateTable") == [], "a decrease DynamoDB would refuse was sent"
    assert M.provisioned(aws.dynamodb, "orders") == (20, 20)


def test_exhausted_quota_still_lets_increases_through(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, read=10, write=20, reads_pct=95, writes_pct=10)
    rules_proxy.set_decreases("orders", count=4, last=earlier_today(rules_proxy, 600))
    r = run_once(conf(table_section()))
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "orders") == (15, 20)
    assert [c["error"] for c in rules_proxy.calls("UpdateTable")] == [None], "refused call sent"


def test_decrease_allowed_an_hour_after_the_fourth(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, read=20, write=20, reads_pct=10, writes_pct=10)
    now = rules_proxy.now_datetime()
    if now.hour < 2:
        pytest.skip("needs 4 decreases earlier on the same UTC day")
    rules_proxy.set_decreases("orders", count=4, last=now - dt.timedelta(minutes=61))
    r = run_once(conf(table_section()))
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "orders") == (10, 10)
    assert rules_proxy.counters("orders")["NumberOfDecreasesToday"] == 5


def test_refused_decrease_is_handled(rules_proxy, proxy_aws, aws, run_once):
    """DynamoDB refuses although DescribeTable showed budget (e.g. another tool spent it)."""
    seed(proxy_aws, read=10, write=20, reads_pct=95, writes_pct=10)
    rules_proxy.add_hook("UpdateTable", lambda info: rules_proxy.set_decreases(
        "orders", count=4, last=rules_proxy.now() - 60))
    r = run_once(conf(table_section()))
    assert r.returncode == 0, describe(r)  # the documented retry with the increases only
    assert M.provisioned(aws.dynamodb, "orders") == (15, 20)
    assert [c["status"] for c in rules_proxy.calls("UpdateTable")][-1] == 200


# --------------------------------------------------------------------------- a changing world
@pytest.mark.parametrize("operation", ["DescribeTable", "UpdateTable"])
def test_table_deleted_mid_pass(rules_proxy, proxy_aws, aws, run_once, operation):
    seed(proxy_aws, "orders", reads_pct=95, writes_pct=50)
    seed(proxy_aws, "invoices", reads_pct=95, writes_pct=50)
    rules_proxy.add_hook(operation, lambda info: aws.dynamodb.delete_table(TableName="orders"),
                         table="orders")
    r = run_once(conf(table_section("orders"), table_section("invoices")))
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "invoices") == (15, 10)
    assert "orders" in r.stderr + r.stdout


def test_on_demand_table_is_skipped(rules_proxy, proxy_aws, run_once):
    M.create_table(proxy_aws.dynamodb, "ondemand", on_demand=True)
    M.put_consumption(proxy_aws.cloudwatch, "ondemand", read_per_second=100, write_per_second=100)
    r = run_once(conf(table_section("ondemand")))
    assert r.returncode == 0, describe(r)
    assert rules_proxy.calls("UpdateTable") == []


# --------------------------------------------------------------------------- AWS faults
@pytest.mark.parametrize("fault", [
    {"operation": "DescribeTable", "status": 400, "code": "ThrottlingException"},
    {"operation": "GetMetricData", "status": 400, "code": "Throttling"},
    {"operation": "UpdateTable", "status": 500, "code": "InternalServerError"},
    {"operation": "ListTables", "reset": True},
], ids=lambda f: f"{f['operation']}-{f.get('code', 'reset')}")
def test_transient_fault_is_retried(rules_proxy, proxy_aws, aws, run_once, fault):
    seed(proxy_aws, reads_pct=95, writes_pct=50)
    rules_proxy.add_faults([fault])
    r = run_once(conf(table_section()))
    assert r.returncode == 0, describe(r)
    assert M.provisioned(aws.dynamodb, "orders") == (15, 10)
    assert rules_proxy.pending_faults() == []


@pytest.mark.parametrize("fault", [
    {"operation": "UpdateTable", "status": 400, "code": "AccessDeniedException",
     "message": "User: arn:aws:iam::123456789012:user/scaler is not authorized to perform: dynamodb:UpdateTable"},
    {"operation": "DescribeTable", "status": 500, "code": "InternalServerError", "times": 10},
    {"operation": "GetMetricData", "reset": True, "times": 10},
    {"operation": "ListTables", "status": 400, "code": "ThrottlingException", "times": 10},
], ids=lambda f: f"{f['operation']}-{f.get('code', 'reset')}")
def test_persistent_fault_fails_the_pass_cleanly(rules_proxy, proxy_aws, aws, run_once, fault):
    seed(proxy_aws, reads_pct=95, writes_pct=50)
    rules_proxy.add_faults([fault])
    r = run_once(conf(table_section()), timeout=90)
    assert r.returncode == 1, describe(r)
    assert r.stderr.strip(), "the failure must be logged"
    assert M.provisioned(aws.dynamodb, "orders") == (10, 10)


def test_one_failing_table_does_not_stop_the_others(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, "orders", reads_pct=95, writes_pct=50)
    seed(proxy_aws, "invoices", reads_pct=95, writes_pct=50)
    rules_proxy.add_faults([{"operation": "UpdateTable", "table": "orders", "status": 400,
                             "code": "AccessDeniedException", "message": "not authorized"}])
    r = run_once(conf(table_section("orders"), table_section("invoices")))
    assert r.returncode == 1, describe(r)
    assert "orders" in r.stderr
    assert M.provisioned(aws.dynamodb, "invoices") == (15, 10)


# --------------------------------------------------------------------------- usage errors
def test_bad_config_is_exit_2_with_one_line(run_once):
    r = run_once(conf(table_section(reads_upper_threshold="ninety")))
    assert r.returncode == 2, describe(r)
    assert len(r.stderr.strip().splitlines()) == 1 and "reads-upper-threshold" in r.stderr


def test_missing_config_file_is_exit_2(cli, tmp_path):
    r = cli(["--config", str(tmp_path / "nope.conf"), "--run-once"])
    assert_no_traceback(r)
    assert r.returncode == 2, describe(r)


# --------------------------------------------------------------------------- broken AWS set-up
@pytest.mark.parametrize("env, message", [
    ({"AWS_ENDPOINT_URL_DYNAMODB": "not-a-url"}, "Invalid endpoint: not-a-url"),
    ({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None,
      "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
      "AWS_CONTAINER_CREDENTIALS_FULL_URI": None}, "Unable to locate credentials"),
], ids=["a malformed endpoint URL", "no credentials at all"])
def test_a_broken_aws_setup_is_one_error_line_and_exit_1(tmp_path, env, message):
    # the first was a traceback from building the clients
    from support.cli import run_cli

    env = {"HOME": str(tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), **env}
    r = run_cli(["-t", "orders", "--run-once", "--state-file", str(tmp_path / "s.json")], env_extra=env,
                endpoint_url="http://127.0.0.1:9", timeout=30)
    assert_no_traceback(r)
    assert r.returncode == 1, describe(r)
    errors = [line for line in r.stderr.splitlines() if " - ERROR - " in line]
    assert len(errors) == 1 and message in errors[0], describe(r)


def _refused_before_anything_runs(tmp_path, mode, config_text: str, credentials_text: str, profile: str | None,
                                  expected: str) -> None:
    """Run MODE with these AWS files: exit 2 with the one line `expected` ({config}, {credentials}: their
    paths), and no pid, log or state file, a daemon started by mistake killed."""
    from support.cli import run_cli
    from support.processes import looks_like_ours

    from dynamic_dynamodb.daemon import process_alive, read_pid

    aws_config, credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    aws_config.write_text(config_text)
    credentials.write_text(credentials_text)
    env = {"HOME": str(tmp_path), "AWS_CONFIG_FILE": str(aws_config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
           "AWS_PROFILE": profile, "AWS_REGION": None, "AWS_DEFAULT_REGION": None}
    run = tmp_path / "run"
    run.mkdir()
    r = run_cli(["-c", REPO / "examples" / "recommended.conf", *mode, "--pid-file-dir", run, "--instance", "np",
                 "--state-file", run / "np.json", "--log-file", run / "np.log"], env_extra=env,
                endpoint_url="http://127.0.0.1:9", timeout=30)
    pid = read_pid(str(run / "dynamic-dynamodb.np.pid"))
    if pid is not None and process_alive(pid) and looks_like_ours(pid):
        os.kill(pid, signal.SIGKILL)  # started by mistake
    assert_no_traceback(r)
    assert r.returncode == 2, describe(r)
    shown = expected.format(config=aws_config, credentials=credentials)
    assert r.stderr.splitlines() == [f"dynamic-dynamodb: error: {shown}"], describe(r)
    assert r.stdout == "" and list(run.iterdir()) == [], describe(r)


@pytest.mark.parametrize("profile", ["nosuch", ""], ids=["unknown", "empty"])
@pytest.mark.parametrize("mode", [["--run-once"], ["--status"], ["--daemon", "start"], ["--daemon", "foreground"]],
                         ids=["run-once", "status", "daemon start", "daemon foreground"])
def test_aws_profile_naming_no_profile_is_a_usage_error_before_anything_runs(tmp_path, profile, mode):
    # it was started (rc 0, "Regions: us-east-1 (built-in default)") and failed every pass
    _refused_before_anything_runs(
        tmp_path, mode, "[profile prod]\nregion = eu-west-1\n", "", profile,
        "AWS_PROFILE: expected a profile of AWS config file {config} or credentials file {credentials}, "
        f"got {profile!r}")


@pytest.mark.parametrize("mode", [["--run-once"], ["--daemon", "start"]], ids=["run-once", "daemon start"])
def test_an_aws_credentials_file_that_cannot_be_parsed_is_a_usage_error_before_anything_runs(tmp_path, mode):
    # it was started and said "Unable to parse config file" every pass
    _refused_before_anything_runs(
        tmp_path, mode, "[default]\nregion = eu-west-1\n",
        "[default]\naws_access_key_id = testing\naws_secret_access_key\n", None,
        "AWS credentials file {credentials}, line 3: expected name = value, got 'aws_secret_access_key'")


def test_a_profile_of_the_credentials_file_runs(rules_proxy, proxy_aws, tmp_path):
    from support.cli import run_cli

    M.create_table(proxy_aws.dynamodb, "orders")
    credentials = tmp_path / "aws-credentials"
    credentials.write_text("[prod]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    env = {"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
           "AWS_PROFILE": "prod", "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}
    r = run_cli(["-t", "orders", "--run-once", "--dry-run"], env_extra=env, endpoint_url=rules_proxy.url,
                state_file=tmp_path / "s.json")
    assert_no_traceback(r)
    assert r.returncode == 0, describe(r)


# --------------------------------------------------------------------------- the demand policy
def test_the_recommended_config_scales_a_quiet_table_and_a_throttled_one(rules_proxy, proxy_aws, aws, run_once):
    seed(proxy_aws, "quiet-table", read=100, write=100, reads_pct=40, writes_pct=10)
    M.create_table(proxy_aws.dynamodb, "hot-table", 10, 10)
    M.put_consumption(proxy_aws.cloudwatch, "hot-table", read_per_second=10, write_per_second=2,
                      read_throttles_per_minute=300)
    r = run_once(None, "--config", str(REPO / "examples" / "recommended.conf"))
    assert r.returncode == 0, describe(r)
    reads, writes = M.provisioned(aws.dynamodb, "quiet-table")
    assert 40 < reads < 100 and 10 < writes < 100, (reads, writes)  # down, never below the demand
    hot_reads, _ = M.provisioned(aws.dynamodb, "hot-table")
    assert hot_reads >= (10 + 300 / 60) / 0.8, hot_reads  # sized for served plus throttled demand
    assert "throttled, sized for" in r.stderr


def test_a_first_run_decreases_for_the_last_half_hour_not_for_its_five_quiet_minutes(proxy_aws, aws, run_once):
    # 60 reads/s until 14 minutes ago, then 1/s: the five-minute window alone would say 2 units
    M.create_table(proxy_aws.dynamodb, "lull-table", 100, 40)
    M.put_metric_minutes(proxy_aws.cloudwatch, M.CONSUMED_READ, "lull-table",
                         [60.0 * 60] * 26 + [1.0 * 60] * 14, minutes=40)
    M.put_metric_minutes(proxy_aws.cloudwatch, M.CONSUMED_WRITE, "lull-table", 60.0, minutes=40)
    r = run_once(None, "--config", str(REPO / "examples" / "recommended.conf"))
    assert r.returncode == 0, describe(r)
    assert "Demand history: the 30 minutes before this pass read from CloudWatch for 1 target(s)" in r.stderr
    reads, writes = M.provisioned(aws.dynamodb, "lull-table")
    # reads: the half hour holds 60/s (without it: 2); writes: 1/s throughout
    assert 60 <= reads < 100 and writes < 10, (reads, writes)
    again = run_once(None, "--config", str(REPO / "examples" / "recommended.conf"))
    assert "Demand history" not in again.stderr, describe(again)  # remembered in the state file
