"""End to end: several daemons sharing one config through a state table (docs/fleet.rst).

Real daemon processes (``python -m dynamic_dynamodb``) against moto_server, whose
conditional writes and transactions are real, through the rules proxy (which counts the
calls). Each daemon logs one line per table it decides; the tests read those lines.
"""
from __future__ import annotations

import calendar
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from support import metrics as M
from support.cli import REPO, assert_no_traceback, cli_env, describe
from support.wait import wait_for

pytestmark = pytest.mark.e2e

STATE_TABLE = "dd-shared-state"
TABLES = [f"shared-{i:02d}" for i in range(24)]
DECIDED = re.compile(r" - (shared-\d\d): reads ")
STAMP = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)[.,]\d+(Z?)")


def config(tmp_path: Path, interval: int = 4, lease: int = 10) -> Path:
    path = tmp_path / "shared.conf"
    path.write_text(f"""[global]
check-interval: {interval}
state-table: {STATE_TABLE}
lease-seconds: {lease}

[table: shared-.*]
reads-upper-threshold: 90
reads-lower-threshold: 30
writes-upper-threshold: 90
writes-lower-threshold: 30
increase-reads-with: 50
decrease-reads-with: 50
increase-writes-with: 50
decrease-writes-with: 50
""", encoding="utf-8")
    return path


@pytest.fixture
def tables(proxy_aws):
    for name in TABLES:
        M.create_table(proxy_aws.dynamodb, name, 10, 10)
        M.put_consumption(proxy_aws.cloudwatch, name, read_per_second=5, write_per_second=5)  # 50 %: no change
    return TABLES


class Daemon:
    """One foreground daemon process with its own log file."""

    def __init__(self, name: str, conf: Path, tmp_path: Path, endpoint: str) -> None:
        self.name = name
        self.log = tmp_path / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dynamic_dynamodb", "--config", str(conf), "--daemon", "foreground",
             "--instance", name, "--pid-file-dir", str(tmp_path), "--state-file", str(tmp_path / f"{name}.json"),
             "--log-file", str(self.log)],
            env=cli_env(endpoint), cwd=str(REPO), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8") if self.log.exists() else ""

    def decisions(self, since: float = 0.0) -> list[tuple[float, str]]:
        """(time, table) of every decision line logged at or after `since` (epoch seconds)."""
        out = []
        for line in self.text().splitlines():
            m = DECIDED.search(line)
            if m is None:
                continue
            when = STAMP.match(line)
            if when is None:
                continue
            parsed = time.strptime(f"{when.group(1)} {when.group(2)}", "%Y-%m-%d %H:%M:%S")
            stamp = calendar.timegm(parsed) if when.group(3) else time.mktime(parsed)
            if stamp >= since:
                out.append((stamp, m.group(1)))
        return out

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def daemons(tmp_path, rules_proxy):
    started: list[Daemon] = []

    def start(name: str, conf: Path) -> Daemon:
        d = Daemon(name, conf, tmp_path, rules_proxy.url)
        started.append(d)
        return d
    yield start
    for d in started:
        d.stop()
    for d in started:
        assert "Traceback (most recent call last)" not in d.text() + (d.proc.stderr.read() if d.proc.stderr else "")


def leases(ddb) -> dict[str, list[int]]:
    """Owner -> shards held now, read from the state table."""
    try:
        items = ddb.query(TableName=STATE_TABLE, KeyConditionExpression="pk = :pk",
                          ExpressionAttributeValues={":pk": {"S": "lease"}}, ConsistentRead=True)["Items"]
    except ddb.exceptions.ResourceNotFoundException:
        return {}  # not created yet
    now = time.time()
    held: dict[str, list[int]] = {}
    for item in items:
        # moto's server is not atomic under concurrent first writes of one item: one may lack a field
        if "owner" in item and float(item.get("expires_at", {"N": "0"})["N"]) > now:
            held.setdefault(item["owner"]["S"], []).append(int(item["sk"]["S"]))
    return held


def test_a_run_once_creates_the_state_table_and_keeps_its_memory_there(cli, proxy_aws, config_file, tmp_path):
    M.create_table(proxy_aws.dynamodb, "shared-quiet", 100, 100)
    M.put_consumption(proxy_aws.cloudwatch, "shared-quiet", read_per_second=5, write_per_second=5)
    conf = config(tmp_path)
    first = cli(["--config", str(conf), "--run-once"])
    assert_no_traceback(first)
    assert first.returncode == 0, describe(first)
    desc = proxy_aws.dynamodb.describe_table(TableName=STATE_TABLE)["Table"]
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert M.provisioned(proxy_aws.dynamodb, "shared-quiet") == (50, 50)
    items = proxy_aws.dynamodb.scan(TableName=STATE_TABLE)["Items"]
    memory = [i for i in items if i["pk"]["S"].startswith("state#")]
    assert [i["sk"]["S"] for i in memory] == ["us-east-1||shared-quiet|"]
    assert '"decreases_today": 1' in memory[0]["memory"]["S"]
    assert leases(proxy_aws.dynamodb) == {}, "a run-once gives its leases back on the way out"


def test_state_table_create_never_refuses_a_missing_table(cli, proxy_aws, tmp_path):
    result = cli(["--config", str(config(tmp_path)), "--run-once", "--state-table-create", "never"])
    assert_no_traceback(result)
    assert result.returncode == 1, describe(result)
    assert f"state table {STATE_TABLE}" in result.stderr and "does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_three_daemons_split_the_shards_and_decide_each_table_once_per_interval(tables, daemons, proxy_aws,
                                                                                 tmp_path, rules_proxy):
    conf = config(tmp_path, interval=4, lease=10)
    ds = [daemons(f"d{i}", conf) for i in range(3)]
    wait_for(lambda: len(leases(proxy_aws.dynamodb)) == 3 and sum(map(len, leases(proxy_aws.dynamodb).values()))
             == 64 and max(map(len, leases(proxy_aws.dynamodb).values())) <= 22, timeout=60,
             what="64 shards spread over 3 daemons")
    since = time.time() + 4  # one interval for the hand-over to settle
    time.sleep(4 + 13)
    counts = Counter(table for d in ds for _, table in d.decisions(since))
    by_daemon = {d.name: {t for _, t in d.decisions(since)} for d in ds}
    # in about 3 intervals every table is decided 3 (+-1) times, and by one daemon only
    assert set(counts) == set(tables), counts
    assert all(2 <= n <= 4 for n in counts.values()), counts
    for a in by_daemon:
        for b in by_daemon:
            if a < b:
                assert not by_daemon[a] & by_daemon[b], (a, b, by_daemon[a] & by_daemon[b])


def test_a_killed_daemons_tables_are_taken_over_and_sigterm_gives_leases_back(tables, daemons, proxy_aws,
                                                                              tmp_path):
    conf = config(tmp_path, interval=4, lease=10)
    a, b = daemons("a", conf), daemons("b", conf)
    wait_for(lambda: len(leases(proxy_aws.dynamodb)) == 2, timeout=60, what="two daemons holding shards")
    wait_for(lambda: {t for _, t in a.decisions()} and {t for _, t in b.decisions()}, timeout=30,
             what="both deciding")
    a.stop(signal.SIGKILL)
    killed = time.time()
    wait_for(lambda: list(leases(proxy_aws.dynamodb)) == [next(iter(leases(proxy_aws.dynamodb)))]
             and len(leases(proxy_aws.dynamodb)[next(iter(leases(proxy_aws.dynamodb)))]) == 64,
             timeout=40, what="the survivor holding all 64 shards")
    taken = time.time() - killed
    assert taken < 2 * 10 + 4, f"take-over after {taken:.1f} s"
    wait_for(lambda: {t for _, t in b.decisions(killed + taken)} == set(tables), timeout=20,
             what="the survivor deciding every table")
    c = daemons("c", conf)  # joins late: the shards are shared again
    wait_for(lambda: len(leases(proxy_aws.dynamodb)) == 2 and min(map(len, leases(proxy_aws.dynamodb).values()))
             >= 30, timeout=60, what="the late daemon taking its half")
    c.stop(signal.SIGTERM)
    wait_for(lambda: len(leases(proxy_aws.dynamodb)) == 1, timeout=5, what="SIGTERM giving the leases back")
    assert c.proc.returncode == 0
    assert "Leases released" in c.text()
