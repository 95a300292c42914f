"""Several daemons sharing one config through a state table; prints figures, asserts nothing.

    python benchmarks/fleet_ha.py [--daemons 4] [--tables 4000] [--interval 20] [--lease 20]
                                  [--intervals 3] [--latency-ms 20]

What it does:

1. starts moto_server (DynamoDB, and the state table with real conditional writes) behind
   benchmarks/cloudwatch_stub.py (the indexed CloudWatch endpoint, which counts every call);
2. creates N provisioned tables with 20 minutes of metrics (every 10th wants an increase);
3. starts D foreground daemons on one config with ``[global] state-table``, waits until the
   64 shards are spread and every daemon has made a pass, then measures over K intervals:
   DescribeTable calls per interval in total and per daemon, shards per daemon, tables
   decided twice within one interval, RSS per daemon, and the state table's calls per
   interval with the read and write units they consume (from the item sizes);
4. kills one daemon with SIGKILL and measures the time until the last of its tables has been
   decided again by the others.
"""
from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cloudwatch_stub import CloudWatchStub  # noqa: E402
from scale import create_fleet, daemon_env, seed_metrics, table_names  # noqa: E402
from support.moto import MotoServer, make_client  # noqa: E402

STATE_TABLE = "bench-shared-state"
DECIDED = re.compile(r"(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)[.,](\d+)Z? - [\w-]+ - INFO - (bench-\d+): reads ")
STATE_OPS = ("dynamodb.Query", "dynamodb.GetItem", "dynamodb.PutItem", "dynamodb.UpdateItem",
             "dynamodb.DeleteItem", "dynamodb.TransactWriteItems")


def stamp(day_time: str, fraction: str) -> float:
    parsed = time.strptime(day_time.replace("T", " "), "%Y-%m-%d %H:%M:%S")
    return time.mktime(parsed) + float(f"0.{fraction}")


def decisions(log: Path, since: float = 0.0, until: float = float("inf")) -> list[tuple[float, str]]:
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        m = DECIDED.match(line)
        if m is not None and since <= (t := stamp(m.group(1), m.group(2))) < until:
            out.append((t, m.group(3)))
    return out


def shards_by_owner(ddb) -> dict[str, int]:
    try:
        items = ddb.query(TableName=STATE_TABLE, KeyConditionExpression="pk = :pk",
                          ExpressionAttributeValues={":pk": {"S": "lease"}}, ConsistentRead=True)["Items"]
    except ddb.exceptions.ResourceNotFoundException:
        return {}
    now = time.time()
    owners: Counter = Counter()
    for item in items:
        if "owner" in item and float(item.get("expires_at", {"N": "0"})["N"]) > now:
            owners[item["owner"]["S"]] += 1
    return dict(owners)


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def write_config(path: Path, interval: int, lease: int) -> Path:
    path.write_text(
        f"[global]\nregion: us-east-1\ncheck-interval: {interval}\nstate-table: {STATE_TABLE}\n"
        f"lease-seconds: {lease}\n\n[logging]\nlog-level: info\n\n"
        "[table: bench-\\d+]\nreads-upper-threshold: 90\nreads-lower-threshold: 30\n"
        "writes-upper-threshold: 90\nwrites-lower-threshold: 30\nmax-provisioned-reads: 10000\n",
        encoding="utf-8")
    return path


def wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--daemons", type=int, default=4)
    ap.add_argument("--tables", type=int, default=4000)
    ap.add_argument("--interval", type=int, default=20)
    ap.add_argument("--lease", type=int, default=20)
    ap.add_argument("--intervals", type=int, default=3)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fleet-ha-"))
    moto = MotoServer(log_path=work / "moto.log").start()
    stub = CloudWatchStub(latency_ms=args.latency_ms, upstream=moto.url).start()
    procs: list[subprocess.Popen] = []
    try:
        t0 = time.monotonic()
        create_fleet(moto.url, args.tables, 0)
        seed_metrics(stub, args.tables, 0)
        print(f"fleet: {args.tables} tables, {args.daemons} daemons, check-interval {args.interval} s, "
              f"lease-seconds {args.lease} (set up in {time.monotonic() - t0:.0f} s)")
        conf = write_config(work / "ha.conf", args.interval, args.lease)
        logs = [work / f"daemon-{i}.log" for i in range(args.daemons)]
        for i, log in enumerate(logs):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "dynamic_dynamodb", "--config", str(conf), "--daemon", "foreground",
                 "--instance", f"ha{i}", "--pid-file-dir", str(work), "--state-file", str(work / f"s{i}.json"),
                 "--log-file", str(log)],
                env=daemon_env(stub.url), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd=str(ROOT)))
        ddb = make_client("dynamodb", moto.url)
        fair = -(-64 // args.daemons)
        wait(lambda: len(shards_by_owner(ddb)) == args.daemons and sum(shards_by_owner(ddb).values()) == 64
             and max(shards_by_owner(ddb).values()) <= fair, 10 * args.lease + 120, "the shards to spread")
        wait(lambda: all(log.exists() and "Pass done" in log.read_text() for log in logs), 600, "a pass of each")
        time.sleep(args.interval)  # one interval for the hand-over to settle
        stub.reset_stats()
        start = time.time()
        time.sleep(args.intervals * args.interval)
        end = time.time()
        calls = Counter(stub.stats()["calls"])
        per_daemon = [decisions(log, start, end) for log in logs]
        by_table: dict[str, list[float]] = defaultdict(list)
        for found in per_daemon:
            for t, table in found:
                by_table[table].append(t)
        k = args.intervals
        deciders: dict[str, set[int]] = defaultdict(set)
        for i, found in enumerate(per_daemon):
            for _, table in found:
                deciders[table].add(i)
        # a window of k intervals holds k passes of each daemon (k + 1 when it ends just after one)
        twice = sum(1 for table, times in by_table.items() if len(deciders[table]) > 1 or len(times) > k + 1)
        print(f"\n== steady state over {k} intervals")
        print(f"DescribeTable per interval      {calls['dynamodb.DescribeTable'] / k:.0f} (tables: {args.tables})")
        for i, found in enumerate(per_daemon):
            cur, peak = rss_mb(procs[i].pid)
            print(f"  daemon {i}: {len(found) / k:.0f} tables decided per interval, RSS {cur:.0f} MB "
                  f"(peak {peak:.0f} MB)")
        owners = shards_by_owner(ddb)
        print(f"shards per daemon               {sorted(owners.values())}")
        print(f"tables decided per interval     {sum(map(len, per_daemon)) / k:.0f}")
        print(f"tables never decided            {len(set(table_names(args.tables)) - set(by_table))}")
        print(f"tables decided twice in one interval  {twice}")
        ops = {op: calls[op] / k for op in STATE_OPS if calls[op]}
        print("state table calls per interval  " + ", ".join(f"{op.split('.')[1]} {n:.0f}" for op, n in ops.items()))
        # lease items are ~120 bytes: a Query of 64 is 2 strongly consistent RCUs; heartbeat, renewal and
        # pass-done writes are 1 WCU each; a transaction costs 2 WCUs per item
        rcu = 2 * ops.get("dynamodb.Query", 0) + ops.get("dynamodb.GetItem", 0)
        wcu = (ops.get("dynamodb.PutItem", 0) + ops.get("dynamodb.UpdateItem", 0) + ops.get("dynamodb.DeleteItem", 0)
               + 2 * ops.get("dynamodb.TransactWriteItems", 0) * 2)
        print(f"state table units per interval  about {rcu:.0f} RCU and {wcu:.0f} WCU (on-demand: "
              f"${(rcu * 0.125 + wcu * 0.625) / 1e6 * (86400 / args.interval) * 30:.2f} a month at this interval)")

        victim = 0
        mine = {t for _, t in per_daemon[victim]}
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait()
        killed = time.time()
        survivors = logs[1:]

        def redecided() -> bool:
            seen = {t for log in survivors for _, t in decisions(log, killed)}
            return mine <= seen
        wait(redecided, 4 * args.lease + 4 * args.interval + 120, "the killed daemon's tables to be decided again")
        last = max(t for log in survivors for t, table in decisions(log, killed) if table in mine)
        print(f"\n== SIGKILL of daemon {victim} ({len(mine)} tables)")
        print(f"last of its tables decided again after {last - killed:.1f} s "
              f"({(last - killed) / args.lease:.2f} lease periods)")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        stub.stop()
        moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
