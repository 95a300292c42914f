"""`make demo`: the real daemon against a local AWS-compatible endpoint with replayed traffic.

Starts moto_server on a free loopback port, creates three provisioned tables, replays
per-minute traffic into CloudWatch (served = min(demand, provisioned), the rest throttled),
runs `dynamic-dynamodb` in the foreground with a short check interval, stops it after a few
passes and shows what changed. Then it simulates a sample trace and says where the plot is.
Everything it starts, it stops.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
from botocore.config import Config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLE_TRACE = HERE / "traces" / "sample-week.csv"
RUN_SECONDS = float(os.environ.get("DEMO_SECONDS", "50"))

# table -> (provisioned reads/writes at start, demand in units/s reads/writes)
TABLES = {
    "demo-orders": ((10, 10), (9.5, 4.0)),  # busy reads: scales up
    "demo-archive": ((100, 40), (5.0, 2.0)),  # idle: scales down
    "demo-sessions": ((50, 20), (25.0, 10.0)),  # comfortable: left alone
}

CONFIG = """\
[global]
region: us-east-1
check-interval: 15

[logging]
log-level: info

[table: demo-.*]
reads-upper-threshold: 90
reads-lower-threshold: 30
increase-reads-with: 50
decrease-reads-with: 50
writes-upper-threshold: 90
writes-lower-threshold: 30
increase-writes-with: 50
decrease-writes-with: 50
min-provisioned-reads: 1
min-provisioned-writes: 1
# look at the last two complete minutes instead of the default 15-10 minutes ago
lookback-window-start: 3
lookback-period: 2
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("moto_server")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    proc = subprocess.Popen(cmd + ["-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("demo: moto_server did not start")


def clients(endpoint: str):
    kw = dict(region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="demo",
              aws_secret_access_key="demo", config=Config(disable_request_compression=True))
    return boto3.client("dynamodb", **kw), boto3.client("cloudwatch", **kw)


def create_tables(ddb) -> None:
    for name, ((r, w), _) in TABLES.items():
        ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         ProvisionedThroughput={"ReadCapacityUnits": r, "WriteCapacityUnits": w})


def put_minute(ddb, cw, minute: datetime) -> None:
    """One minute of traffic per table, as DynamoDB would report it to CloudWatch."""
    data = []
    for name, (_, (dr, dw)) in TABLES.items():
        cap = ddb.describe_table(TableName=name)["Table"]["ProvisionedThroughput"]
        for metric, throttle, demand, prov in (
            ("ConsumedReadCapacityUnits", "ReadThrottleEvents", dr, cap["ReadCapacityUnits"]),
            ("ConsumedWriteCapacityUnits", "WriteThrottleEvents", dw, cap["WriteCapacityUnits"]),
        ):
            served = min(demand, prov)
            dims = [{"Name": "TableName", "Value": name}]
            data.append({"MetricName": metric, "Dimensions": dims, "Timestamp": minute, "Value": served * 60})
            data.append({"MetricName": throttle, "Dimensions": dims, "Timestamp": minute,
                         "Value": (demand - served) * 60})
    cw.put_metric_data(Namespace="AWS/DynamoDB", MetricData=data)


def replay(ddb, cw, stop: threading.Event) -> None:
    """Backfill the last 30 minutes, then add each new minute as it completes."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    for k in range(30, 0, -1):
        put_minute(ddb, cw, now - timedelta(minutes=k))
    last = now
    while not stop.wait(2):
        minute = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        if minute > last:
            put_minute(ddb, cw, last)
            last = minute


def capacities(ddb) -> dict[str, tuple[int, int]]:
    out = {}
    for name in TABLES:
        cap = ddb.describe_table(TableName=name)["Table"]["ProvisionedThroughput"]
        out[name] = (cap["ReadCapacityUnits"], cap["WriteCapacityUnits"])
    return out


def main() -> int:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    print(f"demo: starting moto_server on {endpoint}", flush=True)
    moto = start_moto(port)
    stop = threading.Event()
    daemon = None
    try:
        ddb, cw = clients(endpoint)
        create_tables(ddb)
        before = capacities(ddb)
        feeder = threading.Thread(target=replay, args=(ddb, cw, stop), daemon=True)
        feeder.start()
        time.sleep(1)
        with tempfile.TemporaryDirectory() as tmp:
            conf = Path(tmp) / "demo.conf"
            conf.write_text(CONFIG)
            env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="demo",
                       AWS_SECRET_ACCESS_KEY="demo", AWS_DEFAULT_REGION="us-east-1")
            env.pop("AWS_PROFILE", None)
            print(f"demo: running `dynamic-dynamodb --config demo.conf` for {RUN_SECONDS:.0f} s "
                  "(check interval 15 s)\n", flush=True)
            # instance "demo": a state file of its own in the default place, never the
            # default instance's; the demo's tables are new each run, so their memory starts fresh
            daemon = subprocess.Popen([sys.executable, "-m", "dynamic_dynamodb", "--config", str(conf),
                                       "--instance", "demo"], env=env)
            time.sleep(RUN_SECONDS)
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
            daemon = None
        after = capacities(ddb)
        print("\ndemo: provisioned reads/writes before -> after")
        for name in TABLES:
            (r0, w0), (r1, w1) = before[name], after[name]
            verdict = "scaled up" if (r1, w1) > (r0, w0) and (r1 > r0 or w1 > w0) else (
                "scaled down" if r1 < r0 or w1 < w0 else "left alone")
            print(f"  {name:14} {r0:>4}/{w0:<4} -> {r1:>4}/{w1:<4} {verdict}")
        print(f"demo: what it remembers is in {default_state_file('demo')}")
    finally:
        stop.set()
        if daemon is not None:
            daemon.kill()
        moto.terminate()
        moto.wait(timeout=10)
    return simulate_sample()


def default_state_file(instance: str) -> str:
    """Where an instance keeps its state by default (see docs/service.rst)."""
    sys.path.insert(0, str(ROOT))
    from dynamic_dynamodb.state import default_path

    return default_path(instance)


def simulate_sample() -> int:
    """The simulator on a shipped trace: what the recommended config would have done."""
    if not SAMPLE_TRACE.exists():
        return 0
    out = ROOT / "simulation-sample-week"
    conf = HERE / "recommended.conf"
    print(f"\ndemo: simulating {SAMPLE_TRACE.relative_to(ROOT)} with {conf.relative_to(ROOT)}", flush=True)
    rc = subprocess.call([sys.executable, "-m", "dynamic_dynamodb", "--config", str(conf),
                          "--simulate", str(SAMPLE_TRACE), "--simulate-output", str(out)])
    if rc == 0 and (out / "plot.png").exists():
        print(f"demo: plot written to {out / 'plot.png'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
