"""End to end: several daemons sharing one config through a state table (docs/fleet.rst).

Real daemon processes (``python -m dynamic_dynamodb``) against moto_server, whose
conditional writes and transactions are real, through the rules proxy (which counts the
calls). Each daemon logs one line per table it decides; the tests read those lines.
"""
from __future__ import annotations

import calendar
import functools
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import metrics as M
from support.cli import REPO, assert_no_traceback, cli_env, describe
from support.wait import wait_for

pytestmark = pytest.mark.e2e
# several daemons polling every 2 s take most of a core: with `--dist loadgroup` these run one
# after another on one worker (the lease timings they check must not starve each other)
DAEMONS = pytest.mark.xdist_group("daemons")
# every poll below queries the state table or reads the daemons' logs: 4 a second, not 20, leaves
# the CPU to the daemons whose timings are checked
poll = functools.partial(wait_for, interval=0.25)

STATE_TABLE = "dd-shared-state"
TABLES = [f"shared-{i:02d}" for i in range(24)]
DECIDED = re.compile(r" - (shared-\d\d): reads ")
PASS_DONE = re.compile(r"Pass done in (\d+(?:\.\d+)?) s")
STAMP = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)[.,]\d+(Z?)")


def config(tmp_path: Path, interval: int = 2, lease: int = 6) -> Path:
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

    def lines(self, since: float = 0.0) -> list[tuple[float, str]]:
        """(time, line) of every stamped log line at or after `since` (epoch seconds)."""
        out = []
        for line in self.text().splitlines():
            when = STAMP.match(line)
            if when is None:
                continue
            parsed = time.strptime(f"{when.group(1)} {when.group(2)}", "%Y-%m-%d %H:%M:%S")
            stamp = calendar.timegm(parsed) if when.group(3) else time.mktime(parsed)
            if stamp >= since:
                out.append((stamp, line))
        return out

    def decisions(self, since: float = 0.0) -> list[tuple[float, str]]:
        """(time, table) of every decision line logged at or after `since`."""
        return [(stamp, m.group(1)) for stamp, line in self.lines(since) if (m := DECIDED.search(line))]

    def slowest_pass(self, since: float = 0.0) -> float:
        """The longest "Pass done in X s" logged at or after `since`, 0 if none."""
        return max((float(m.group(1)) for _, line in self.lines(since) if (m := PASS_DONE.search(line))),
                   default=0.0)

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


def test_a_run_once_whose_state_table_fails_decides_nothing_and_exits_1(cli, proxy_aws, rules_proxy, tmp_path):
    # it exited 0: the heartbeat failed, no lease was taken, and no table was decided
    M.create_table(proxy_aws.dynamodb, "shared-quiet", 100, 100)
    M.put_consumption(proxy_aws.cloudwatch, "shared-quiet", read_per_second=5, write_per_second=5)
    conf = config(tmp_path)
    assert cli(["--config", str(conf), "--run-once", "--dry-run"]).returncode == 0  # creates the state table
    rules_proxy.add_faults([{"operation": "PutItem", "table": STATE_TABLE, "times": 100,
                             "status": 500, "code": "InternalServerError", "message": "we are sorry"}])
    result = cli(["--config", str(conf), "--run-once"])
    assert_no_traceback(result)
    assert result.returncode == 1, describe(result)
    assert f"State table {STATE_TABLE}: " in result.stderr, describe(result)
    assert re.search(r"Pass done in \S+ s: 0 table\(s\) and GSI\(s\) decided .* [1-9]\d* failure\(s\)",
                     result.stderr), describe(result)
    assert M.provisioned(proxy_aws.dynamodb, "shared-quiet") == (100, 100)


def test_state_table_create_never_refuses_a_missing_table(cli, proxy_aws, tmp_path):
    result = cli(["--config", str(config(tmp_path)), "--run-once", "--state-table-create", "never"])
    assert_no_traceback(result)
    assert result.returncode == 1, describe(result)
    assert f"state table {STATE_TABLE}" in result.stderr and "does not exist" in result.stderr
    assert [line for line in result.stderr.splitlines() if "error" in line] == [
        f"dynamic-dynamodb: error: state table {STATE_TABLE}: does not exist, and state-table-create is never"]


def held_by(ddb) -> dict[str, int]:
    return {owner: len(shards) for owner, shards in leases(ddb).items()}


def twice_in_one_interval(ds, interval: float, since: float) -> list:
    """Decisions of one table by two different daemons closer together than most of an interval
    (one daemon's consecutive passes may come closer when a pass overruns on a busy machine)."""
    times: dict[str, list[tuple[float, str]]] = {}
    for d in ds:
        for stamp, table in d.decisions(since):
            times.setdefault(table, []).append((stamp, d.name))
    # log stamps are read to the second: two decisions one interval apart may look 1 s closer
    return [(t, sorted(v)) for t, v in times.items()
            if any(b[0] - a[0] < interval - 1.5 and a[1] != b[1]
                   for a, b in zip(sorted(v), sorted(v)[1:], strict=False))]


@DAEMONS
def test_three_daemons_share_the_tables_take_over_from_a_killed_one_and_rebalance(tables, daemons, proxy_aws,
                                                                                 tmp_path):
    interval, lease = 2, 6
    conf = config(tmp_path, interval=interval, lease=lease)
    ds = [daemons(f"d{i}", conf) for i in range(3)]
    poll(lambda: len(held_by(proxy_aws.dynamodb)) == 3 and sum(held_by(proxy_aws.dynamodb).values()) == 64
             and max(held_by(proxy_aws.dynamodb).values()) <= 22, timeout=60, what="64 shards over 3 daemons")
    settled = time.time() + interval
    time.sleep(interval + 3 * interval + 0.5)
    by_daemon = {d.name: {t for _, t in d.decisions(settled)} for d in ds}
    assert set().union(*by_daemon.values()) == set(tables), "every table is decided"
    assert sum(map(len, by_daemon.values())) == len(tables), f"each by one daemon only: {by_daemon}"

    ds[0].stop(signal.SIGKILL)
    killed = time.time()
    poll(lambda: len(held_by(proxy_aws.dynamodb)) == 2 and sum(held_by(proxy_aws.dynamodb).values()) == 64,
             timeout=40, what="the survivors holding every shard")
    orphaned = by_daemon["d0"]
    poll(lambda: orphaned <= {t for d in ds[1:] for _, t in d.decisions(killed)}, timeout=30,
             what="the killed daemon's tables decided again")
    # when the survivors decided them by their log stamps (whole seconds: + 1 never counts short), not
    # when a poll got round to it: on a busy machine a poll over three logs takes a while
    first: dict[str, float] = {}
    for d in ds[1:]:
        for stamp, table in d.decisions(killed - 1):
            if table in orphaned:
                first[table] = min(first.get(table, stamp), stamp)
    taken = max(first.values()) + 1 - killed
    # the killed daemon's leases and membership lapse within a lease; a survivor's round (every
    # lease / 3) takes its shards, the next at most takes the rest once the membership has lapsed
    # too, and the pass it wakes decides them. Its passes' own length is added as they measured it:
    # on a busy machine one pass of 24 tables through moto takes seconds, and that is no lateness
    slowest = max([d.slowest_pass(killed - 1) for d in ds[1:]], default=0.0)
    bound = lease + 2 * (lease / 3) + interval + 2 * slowest + 2
    assert taken < bound, f"its tables waited {taken:.1f} s (bound {bound:.1f} s, slowest pass {slowest:.1f} s)"

    late = daemons("late", conf)
    poll(lambda: len(held_by(proxy_aws.dynamodb)) == 3 and min(held_by(proxy_aws.dynamodb).values()) >= 18,
             timeout=60, what="the late daemon taking its third")
    assert twice_in_one_interval([*ds, late], interval, settled) == []
    late.stop(signal.SIGTERM)
    poll(lambda: len(held_by(proxy_aws.dynamodb)) == 2, timeout=5, what="SIGTERM giving the leases back")
    assert late.proc.returncode == 0 and "Leases released" in late.text()


@DAEMONS
def test_a_partitioned_daemon_loses_its_shards_and_acts_on_none_when_it_returns(tables, proxy_aws, tmp_path,
                                                                                rules_proxy):
    from support.partition import PartitionProxy

    interval, lease = 2, 6
    conf = config(tmp_path, interval=interval, lease=lease)
    cut = PartitionProxy(rules_proxy.url).start()
    ds = [Daemon("island", conf, tmp_path, cut.url), Daemon("mainland", conf, tmp_path, rules_proxy.url)]
    try:
        poll(lambda: len(held_by(proxy_aws.dynamodb)) == 2, timeout=60, what="both daemons holding shards")
        cut.blocked = True
        blocked = time.time()
        poll(lambda: len(held_by(proxy_aws.dynamodb)) == 1 and sum(held_by(proxy_aws.dynamodb).values()) == 64,
                 timeout=40, what="the mainland taking every shard")
        assert time.time() - blocked < 2 * lease + 5
        healed = time.time()
        cut.blocked = False
        poll(lambda: len(held_by(proxy_aws.dynamodb)) == 2 and min(held_by(proxy_aws.dynamodb).values()) >= 30,
                 timeout=60, what="the island back with its half")
        assert twice_in_one_interval(ds, interval, healed - interval) == []
        assert "lease" in ds[0].text().lower()
    finally:
        for d in ds:
            d.stop()
        cut.stop()
    for d in ds:
        assert "Traceback (most recent call last)" not in d.text()


@DAEMONS
def test_status_shows_which_daemon_holds_each_table_and_its_memory_from_the_state_table(tables, daemons, cli,
                                                                                        proxy_aws, tmp_path):
    import json

    conf = config(tmp_path, interval=2, lease=6)
    a = daemons("a", conf)
    poll(lambda: sum(held_by(proxy_aws.dynamodb).values()) == 64, timeout=60, what="one daemon holding all")
    poll(lambda: "Pass done" in a.text(), timeout=30, what="a pass")
    found: list = []

    def status_rows() -> bool:
        result = cli(["--config", str(conf), "--status-json"])
        assert result.returncode == 0, describe(result)
        found[:] = json.loads(result.stdout)
        return all(r["last_decision"] for r in found)
    # each --status-json is a whole process describing 24 tables: on a busy machine a poll takes seconds
    poll(status_rows, timeout=60, what="the memory of every table in the state table")
    owner = next(iter(leases(proxy_aws.dynamodb)))
    assert {r["table"] for r in found} == set(tables)
    assert {r["held_by"] for r in found} == {owner}
    assert {r["last_decision"]["reason"] for r in found} == {"within_band"}
