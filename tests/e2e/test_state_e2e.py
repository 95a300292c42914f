"""The state file end to end (decisions.md, "State"): the real CLI against moto_server behind
the DynamoDB rules proxy.

One process per state file (a second exits 1 naming the file and the holder's pid), the
per-instance default location, saves that keep what other configs wrote, memory of a
recreated table, a write killed with SIGKILL, a corrupt file moved aside, an unusable
state directory.
"""
from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from support import metrics as M
from support.cli import REPO, assert_no_traceback, cli_env, describe, run_cli
from support.moto import CLIENT_CONFIG
from support.wait import wait_for

pytestmark = pytest.mark.e2e


class Regional:
    """boto3 clients of one region, through the rules proxy."""

    def __init__(self, endpoint: str, region: str) -> None:
        def client(service: str):
            return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint,
                                                   aws_access_key_id="testing", aws_secret_access_key="testing",
                                                   config=CLIENT_CONFIG)
        self.dynamodb, self.cloudwatch = client("dynamodb"), client("cloudwatch")


def low_load(aws, table: str, units: int = 10) -> None:
    """A table at 10 % of its units: every pass wants a decrease."""
    M.create_table(aws.dynamodb, table, units, units)
    per_second = M.consumed_percent_to_units_per_second(10, units)
    M.put_consumption(aws.cloudwatch, table, read_per_second=per_second, write_per_second=per_second)


def config(path: Path, table: str, region: str = "us-east-1", interval: int = 300) -> Path:
    path.write_text(f"[global]\nregion: {region}\ncheck-interval: {interval}\n\n[table: {table}]\n"
                    "reads-lower-threshold: 30\nwrites-lower-threshold: 30\n", encoding="utf-8")
    return path


def entries(state_file: Path) -> dict:
    """{(region, table): entry} of a state file."""
    return {(e.get("region"), e["table"]): e for e in json.loads(state_file.read_text())["targets"]}


def start_foreground(tmp_path: Path, endpoint: str, conf: Path, state_file: Path) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "fg.log"
    proc = subprocess.Popen([sys.executable, "-m", "dynamic_dynamodb", "-c", str(conf), "--daemon", "fg",
                             "--state-file", str(state_file), "--log-file", str(log)],
                            env=cli_env(endpoint), cwd=str(REPO), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, log


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def test_a_second_process_on_the_same_state_file_exits_1_naming_the_file_and_the_holder(
        tmp_path, rules_proxy, proxy_aws):
    low_load(proxy_aws, "orders")
    conf, state_file = config(tmp_path / "dd.conf", "orders"), tmp_path / "s.json"
    proc, log = start_foreground(tmp_path, rules_proxy.url, conf, state_file)
    try:
        wait_for(lambda: "Pass done" in _read(log), 15, "the first pass")
        second = run_cli(["-c", conf, "--run-once", "--state-file", state_file], endpoint_url=rules_proxy.url)
        assert_no_traceback(second)
        assert second.returncode == 1, describe(second)
        [line] = second.stderr.strip().splitlines()
        assert str(state_file) in line and f"pid {proc.pid}" in line, line
        # a dry run takes no lock: it may look while the daemon runs, and writes nothing
        before = state_file.read_bytes()
        dry = run_cli(["-c", conf, "--run-once", "--dry-run", "--state-file", state_file],
                      endpoint_url=rules_proxy.url)
        assert dry.returncode == 0, describe(dry)
        assert state_file.read_bytes() == before
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the lock goes with its holder
    after = run_cli(["-c", conf, "--run-once", "--state-file", state_file], endpoint_url=rules_proxy.url)
    assert after.returncode == 0, describe(after)


def test_a_daemon_started_on_a_state_file_in_use_is_refused_by_start(tmp_path, rules_proxy, proxy_aws):
    low_load(proxy_aws, "orders")
    conf, state_file = config(tmp_path / "dd.conf", "orders"), tmp_path / "s.json"

    def daemon(command: str, name: str) -> subprocess.CompletedProcess:
        result = run_cli(["-c", conf, "--daemon", command, "--instance", name, "--pid-file-dir", tmp_path,
                          "--state-file", state_file, "--log-file", tmp_path / f"{name}.log"],
                         endpoint_url=rules_proxy.url)
        assert_no_traceback(result)
        return result

    first = daemon("start", "one")
    try:
        assert first.returncode == 0, describe(first)
        pid = int((tmp_path / "dynamic-dynamodb.one.pid").read_text().split()[0])
        second = daemon("start", "two")
        assert second.returncode == 1, describe(second)
        assert str(state_file) in second.stderr and f"pid {pid}" in second.stderr, describe(second)
        assert not (tmp_path / "dynamic-dynamodb.two.pid").exists()
    finally:
        assert daemon("stop", "one").returncode == 0


def test_the_default_state_file_is_per_instance_in_its_own_0700_directory(tmp_path, rules_proxy, proxy_aws):
    low_load(proxy_aws, "orders")
    conf = config(tmp_path / "dd.conf", "orders")
    where = tmp_path / "state-home"
    # tests run as root, so the default would be /var/lib: $STATE_DIRECTORY (systemd's) stands in
    name = f"blue-{uuid.uuid4().hex[:8]}"
    r = run_cli(["-c", conf, "--run-once", "--instance", name], endpoint_url=rules_proxy.url,
                env_extra={"STATE_DIRECTORY": str(where / "dynamic-dynamodb")})
    assert r.returncode == 0, describe(r)
    assert sorted(p.name for p in (where / "dynamic-dynamodb").iterdir()) == [f"{name}.state.json",
                                                                              f"{name}.state.json.lock"]
    assert stat.S_IMODE((where / "dynamic-dynamodb").stat().st_mode) == 0o700
    assert entries(where / "dynamic-dynamodb" / f"{name}.state.json")[("us-east-1", "orders")]
    assert not list(Path("/tmp").glob(f"dynamic-dynamodb.{name}.state.json*"))  # where it used to be


def test_two_configs_sharing_a_state_file_keep_each_others_decrease_records(tmp_path, rules_proxy, proxy_aws):
    low_load(proxy_aws, "alpha")
    beta = Regional(rules_proxy.url, "eu-west-1")
    low_load(beta, "beta")
    state_file = tmp_path / "shared.json"
    a = config(tmp_path / "a.conf", "alpha")
    b = config(tmp_path / "b.conf", "beta", region="eu-west-1")
    for conf in (a, b, a, b):
        r = run_cli(["-c", conf, "--run-once", "--state-file", state_file], endpoint_url=rules_proxy.url)
        assert r.returncode == 0, describe(r)
    saved = entries(state_file)
    # each config's record of its decreases is whole: as many as DynamoDB accepted
    for region, table in (("us-east-1", "alpha"), ("eu-west-1", "beta")):
        accepted = [c for c in rules_proxy.calls("UpdateTable", table=table) if c["status"] == 200]
        assert len(accepted) == 2, accepted
        assert saved[(region, table)]["memory"]["decreases_today"] == 2, saved


def test_a_table_recreated_under_the_same_name_starts_with_fresh_memory(tmp_path, rules_proxy, proxy_aws):
    low_load(proxy_aws, "orders")
    conf, state_file = config(tmp_path / "dd.conf", "orders"), tmp_path / "s.json"
    first = run_cli(["-c", conf, "--run-once", "--state-file", state_file], endpoint_url=rules_proxy.url)
    assert first.returncode == 0, describe(first)
    old = entries(state_file)[("us-east-1", "orders")]
    assert old["memory"]["decreases_today"] == 1 and old["incarnation"]
    proxy_aws.dynamodb.delete_table(TableName="orders")
    time.sleep(0.01)  # moto has no TableId: the creation time (milliseconds) tells them apart
    low_load(proxy_aws, "orders")
    second = run_cli(["-c", conf, "--run-once", "--state-file", state_file], endpoint_url=rules_proxy.url)
    assert second.returncode == 0, describe(second)
    assert "orders: a new table of that name" in second.stderr, describe(second)
    new = entries(state_file)[("us-east-1", "orders")]
    assert new["incarnation"] != old["incarnation"]
    assert new["memory"]["decreases_today"] == 1  # its own first decrease, not the old table's second
    assert M.provisioned(proxy_aws.dynamodb, "orders") == (5, 5)


WRITER = """
import sys
from datetime import datetime, timezone
from dynamic_dynamodb import state
from dynamic_dynamodb.model import Target
from dynamic_dynamodb.policy import Memory
now = datetime.now(timezone.utc)
big = {(("us-east-1", None), Target(f"t{i:06d}")): state.Record(Memory(read_checks=1), "x" * 200, now)
       for i in range(20000)}
held = state.StateFile.claim(sys.argv[1])
print("claimed", flush=True)
while True:
    held.save(big, now)
"""


def test_a_write_killed_with_sigkill_leaves_no_temporary_file_for_the_next_run(tmp_path, rules_proxy, proxy_aws):
    """The state module's own save, in a process killed (SIGKILL) while its temporary file exists."""
    low_load(proxy_aws, "orders")
    conf, state_file = config(tmp_path / "dd.conf", "orders"), tmp_path / "s.json"
    temporaries = lambda: [p for p in tmp_path.iterdir() if p.name.startswith(".s.json.tmp-")]  # noqa: E731
    for _attempt in range(5):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(state_file)], env=cli_env(None),
                                  cwd=str(REPO), stdout=subprocess.PIPE, text=True)
        try:
            assert writer.stdout.readline().strip() == "claimed"
            wait_for(temporaries, 30, "a temporary file", interval=0.001)
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        if temporaries():
            break
    assert temporaries(), "no write was interrupted in 5 attempts"
    r = run_cli(["-c", conf, "--run-once", "--state-file", state_file], endpoint_url=rules_proxy.url)
    assert r.returncode == 0, describe(r)
    assert temporaries() == [] and "interrupted write" in r.stderr, describe(r)
    assert entries(state_file)[("us-east-1", "orders")]  # a whole file, with this run's entry


def test_a_corrupt_state_file_is_moved_aside_and_kept(tmp_path, rules_proxy, proxy_aws):
    low_load(proxy_aws, "orders")
    conf, state_file = config(tmp_path / "dd.conf", "orders"), tmp_path / "s.json"
    state_file.write_bytes(b'{"version": 3, "targets": [\x00\xff')
    r = run_cli(["-c", conf, "--run-once", "--state-file", state_file], endpoint_url=rules_proxy.url)
    assert r.returncode == 0, describe(r)
    [aside] = tmp_path.glob("s.json.corrupt-*")
    assert aside.read_bytes() == b'{"version": 3, "targets": [\x00\xff'
    assert f"the old file kept as {aside}" in r.stderr, describe(r)
    assert entries(state_file)[("us-east-1", "orders")]


@pytest.mark.parametrize("mode", ["--run-once", "--daemon start"])
def test_an_unusable_state_directory_is_one_line_and_exit_2(tmp_path, rules_proxy, mode):
    conf = config(tmp_path / "dd.conf", "orders")
    (tmp_path / "not-a-dir").write_text("")
    r = run_cli(["-c", conf, *mode.split(), "--state-file", tmp_path / "not-a-dir" / "s.json",
                 "--pid-file-dir", tmp_path, "--log-file", tmp_path / "dd.log"], endpoint_url=rules_proxy.url)
    assert_no_traceback(r)
    assert r.returncode == 2, describe(r)
    [line] = r.stderr.strip().splitlines()[-1:]
    assert "state directory" in line and str(tmp_path / "not-a-dir") in line, describe(r)
    assert not (tmp_path / "dynamic-dynamodb.default.pid").exists()


def two_tables_on_demand_policy(tmp_path: Path, aws) -> Path:
    for table in ("orders", "users"):
        low_load(aws, table)
    path = tmp_path / "dd.conf"
    path.write_text("[global]\nregion: us-east-1\n\n[table: orders|users]\nscaling-policy: demand\n"
                    "reads-lower-threshold: 30\nwrites-lower-threshold: 30\n", encoding="utf-8")
    return path


def entry(table: str, memory: str) -> str:
    return f'{{"table": "{table}", "index": null, "region": "us-east-1", "memory": {memory}}}'


@pytest.mark.parametrize("bad", [
    '{"reads_demand": {"last_minute": "2026-01-01T00:00:00+00:00", "demand": [1e400], "bucket": 0}}',
    '{"reads_demand": {"last_minute": null, "demand": [NaN], "bucket": Infinity}}',
    '{"read_checks": -3}',
    '{"mode": {"costs": [1, 2, "x"]}}',
])
def test_an_entry_with_impossible_values_is_dropped_with_one_warning_and_the_rest_is_kept(
        tmp_path, rules_proxy, proxy_aws, bad):
    conf, state_file = two_tables_on_demand_policy(tmp_path, proxy_aws), tmp_path / "s.json"
    state_file.write_text('{"version": 3, "targets": [' + entry("orders", bad) + ", "
                          + entry("users", '{"read_checks": 1, "last_reason": "kept"}') + "]}")
    r = run_cli(["-c", conf, "--run-once", "--state-file", state_file], endpoint_url=rules_proxy.url)
    assert r.returncode == 0, describe(r)
    assert_no_traceback(r)
    assert "Unexpected error" not in r.stderr, describe(r)
    assert r.stderr.count("the entry of orders (us-east-1) dropped") == 1, describe(r)
    saved = state_file.read_text()
    assert "Infinity" not in saved and "NaN" not in saved
    kept = entries(state_file)
    assert kept[("us-east-1", "orders")]["memory"]["last_reason"]  # decided, afresh
    assert kept[("us-east-1", "users")]["memory"]["last_reason"] != "kept"  # decided, with its memory
    assert not list(tmp_path.glob("s.json.corrupt-*"))


@pytest.mark.parametrize("mode", ["--run-once", "--run-once --dry-run", "--status"])
def test_a_state_file_nested_too_deeply_is_unreadable_not_a_traceback(tmp_path, rules_proxy, proxy_aws, mode):
    low_load(proxy_aws, "orders")
    conf, state_file = config(tmp_path / "dd.conf", "orders"), tmp_path / "s.json"
    state_file.write_text("[" * 100_000 + "]" * 100_000)
    r = run_cli(["-c", conf, *mode.split(), "--state-file", state_file], endpoint_url=rules_proxy.url)
    assert r.returncode == 0, describe(r)
    assert_no_traceback(r)
    assert r.stderr.count("unreadable (nested too deeply)") == 1, describe(r)
    assert bool(list(tmp_path.glob("s.json.corrupt-*"))) == (mode == "--run-once"), describe(r)
