"""One pass of the real daemon over a large fleet; prints figures, asserts nothing.

    python benchmarks/scale.py [--tables 1000] [--gsis 2] [--regions 1] [--latency-ms 100]
                               [--unbatched-latency-ms 0] [--skip-unbatched] [--idle-seconds 10]
                               [--profile FILE]

What it does:

1. starts moto_server (DynamoDB) and, in this process, benchmarks/cloudwatch_stub.py: an
   indexed CloudWatch endpoint (real JSON protocol, 500-query limit, NextToken, a per-call
   latency) that also passes every other request through to moto and counts all of them;
2. creates N provisioned tables with G GSIs each in moto (10/10 units, GSIs 5/5) and gives
   each table and GSI 20 minutes of per-minute metrics: most at 50 % (no change), every
   10th table's reads at 95 % (an increase), every 20th table at 10 % (a decrease); with
   ``--regions R`` the tables are spread over R regions (``[global] regions``, one
   placement, so one set of clients, per region);
3. runs ``python -m dynamic_dynamodb --config ... --run-once`` as a subprocess with
   ``AWS_ENDPOINT_URL`` pointing at the stub, and prints the wall time, the API calls by
   operation, CloudWatch queries per call and the daemon's peak RSS (``wait4`` rusage);
4. runs the same pass with ``[global] metrics-batch-size: 1`` (one metric per call) and
   prints the ratio of CloudWatch calls. At 100 ms per call that pass would take
   N x (G+1) x 4 x 0.1 s / 4 calls in flight (5 minutes for 1,000 tables), so by default
   it runs with no added latency (``--unbatched-latency-ms``) and the wall time it would
   have at the batched latency is printed as an estimate;
5. starts the daemon in the foreground (``--check-interval 3600``), waits for its first pass
   to end and measures its CPU time while it sleeps until the next.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cloudwatch_stub import CloudWatchStub  # noqa: E402
from support.metrics import create_table  # noqa: E402
from support.moto import MotoServer, apply_fake_aws_env, make_client  # noqa: E402

from dynamic_dynamodb.aws import METRICS_CONCURRENCY  # noqa: E402

NAMESPACE = "AWS/DynamoDB"
MINUTES = 20
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2", "eu-central-1", "ap-northeast-1",
           "sa-east-1", "ca-central-1")


def table_names(n: int) -> list[str]:
    return [f"bench-{i:05d}" for i in range(n)]


def gsi_names(g: int) -> list[str]:
    return [f"by-key-{j}" for j in range(g)]


def region_of(i: int, regions: int) -> str:
    return REGIONS[i % regions]


def create_fleet(moto_url: str, n: int, g: int, regions: int = 1) -> None:
    import boto3
    from support.moto import CLIENT_CONFIG
    clients = [boto3.session.Session().client("dynamodb", region_name=r, endpoint_url=moto_url, config=CLIENT_CONFIG,
                                              aws_access_key_id="testing", aws_secret_access_key="testing")
               for r in REGIONS[:regions]] if regions > 1 else [make_client("dynamodb", moto_url)]
    gsis = {name: (5, 5) for name in gsi_names(g)}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: create_table(clients[item[0] % regions], item[1], 10, 10, gsis=gsis),
                      enumerate(table_names(n))))


def seed_metrics(stub: CloudWatchStub, n: int, g: int, regions: int = 1) -> int:
    """Per-minute Sums for the last MINUTES minutes; returns the number of datapoints."""
    now = int(time.time()) // 60 * 60
    count = 0
    for i, table in enumerate(table_names(n)):
        read_pct = 95 if i % 10 == 0 else 10 if i % 20 == 5 else 50
        write_pct = 10 if i % 20 == 5 else 50
        targets = [(None, 10)] + [(index, 5) for index in gsi_names(g)]
        for index, units in targets:
            dims = [{"Name": "TableName", "Value": table}]
            if index is not None:
                dims.append({"Name": "GlobalSecondaryIndexName", "Value": index})
            for metric, value in (("ConsumedReadCapacityUnits", units * read_pct / 100 * 60),
                                  ("ConsumedWriteCapacityUnits", units * write_pct / 100 * 60),
                                  ("ReadThrottleEvents", 0.0), ("WriteThrottleEvents", 0.0)):
                for m in range(1, MINUTES + 1):
                    stub.put(NAMESPACE, metric, dims, now - 60 * m, value, region_of(i, regions))
                    count += 1
    return count


def write_config(path: Path, batch_size: int | None = None, regions: int = 1) -> Path:
    extra = f"metrics-batch-size: {batch_size}\n" if batch_size else ""
    if regions > 1:
        extra += f"regions: {', '.join(REGIONS[:regions])}\n"
    path.write_text(
        "[global]\nregion: us-east-1\ncheck-interval: 300\n" + extra
        + "\n[logging]\nlog-level: info\n\n"
        + "[table: bench-\\d+]\nreads-upper-threshold: 90\nreads-lower-threshold: 30\n"
        + "writes-upper-threshold: 90\nwrites-lower-threshold: 30\n\n"
        + "[gsi: .* table: bench-\\d+]\nreads-upper-threshold: 90\nreads-lower-threshold: 30\n",
        encoding="utf-8")
    return path


def daemon_env(endpoint: str) -> dict[str, str]:
    env = dict(os.environ)
    apply_fake_aws_env(env)
    env["AWS_ENDPOINT_URL"] = endpoint
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_pass(endpoint: str, config: Path, workdir: Path, log_path: Path,
             profile: str | None = None) -> tuple[float, int, float, int]:
    """One --run-once pass; returns (wall s, exit status, peak RSS MB, CPU s)."""
    state = workdir / f"state-{time.monotonic_ns()}.json"
    cmd = [sys.executable]
    if profile:
        cmd += ["-m", "cProfile", "-o", profile]
    cmd += ["-m", "dynamic_dynamodb", "--config", str(config), "--run-once", "--state-file", str(state),
            "--pid-file-dir", str(workdir)]
    with open(log_path, "w") as log:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=daemon_env(endpoint), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=str(ROOT))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, proc.returncode, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def idle_cpu(endpoint: str, config: Path, workdir: Path, log_path: Path, seconds: float) -> tuple[float, float]:
    """CPU seconds the foreground daemon uses while it sleeps between passes; (first pass s, idle CPU s)."""
    cmd = [sys.executable, "-m", "dynamic_dynamodb", "--config", str(config), "--check-interval", "3600",
           "--state-file", str(workdir / "state-idle.json"), "--pid-file-dir", str(workdir)]
    done = threading.Event()
    with open(log_path, "w") as log:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=daemon_env(endpoint), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=str(ROOT), text=True)

        def pump() -> None:
            for line in proc.stdout:
                log.write(line)
                if "Pass done in" in line:
                    done.set()
        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            if not done.wait(600):
                raise RuntimeError("the daemon's first pass did not end within 600 s")
            first = time.monotonic() - started
            time.sleep(1.0)  # let the pass's threads and the state file write finish
            before = cpu_seconds(proc.pid)
            time.sleep(seconds)
            used = cpu_seconds(proc.pid) - before
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            reader.join(timeout=5)
    return first, used


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def summary(stats: dict) -> tuple[Counter, list[int]]:
    return Counter(stats["calls"]), stats["queries_per_call"]


def print_run(title: str, wall: float, rc: int, rss: float, cpu: float, stats: dict) -> None:
    calls, queries = summary(stats)
    print(f"\n== {title}")
    print(f"exit status            {rc}")
    print(f"wall time              {wall:.2f} s")
    print(f"daemon CPU time        {cpu:.2f} s")
    print(f"daemon peak RSS        {rss:.1f} MB")
    print("API calls by operation:")
    for op, n in sorted(calls.items()):
        print(f"  {op:<32} {n:>7}")
    if queries:
        print(f"CloudWatch queries per GetMetricData call: min {min(queries)}, max {max(queries)}, "
              f"mean {mean(queries):.1f}, total {sum(queries)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--gsis", type=int, default=2)
    parser.add_argument("--regions", type=int, default=1, choices=range(1, len(REGIONS) + 1),
                        help="spread the tables over this many regions (default 1)")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="per GetMetricData call (default 100)")
    parser.add_argument("--unbatched-latency-ms", type=float, default=0.0,
                        help="per call in the one-metric-per-call pass (default 0; see the docstring)")
    parser.add_argument("--skip-unbatched", action="store_true")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="0 skips the idle measurement")
    parser.add_argument("--profile", metavar="FILE", help="run the batched pass under cProfile, stats to FILE")
    args = parser.parse_args()
    apply_fake_aws_env(os.environ)

    print(f"machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}")
    print(f"fleet: {args.tables} tables x {args.gsis} GSIs = {args.tables * (args.gsis + 1)} targets in "
          f"{args.regions} region(s), {args.tables * (args.gsis + 1) * 12} CloudWatch series; "
          f"GetMetricData latency {args.latency_ms:g} ms")
    with tempfile.TemporaryDirectory(prefix="dd-scale-") as tmp:
        work = Path(tmp)
        moto = MotoServer(log_path=work / "moto.log").start()
        stub = CloudWatchStub(latency_ms=0, upstream=moto.url).start()
        try:
            t = time.monotonic()
            create_fleet(moto.url, args.tables, args.gsis, args.regions)
            points = seed_metrics(stub, args.tables, args.gsis, args.regions)
            print(f"setup: tables created and {points} datapoints stored in {time.monotonic() - t:.1f} s")

            stub.latency_ms = args.latency_ms
            stub.reset_stats()
            batched = write_config(work / "batched.conf", regions=args.regions)
            wall, rc, rss, cpu = run_pass(stub.url, batched, work, work / "batched.log", args.profile)
            batched = stub.stats()
            print_run("batched pass (metrics-batch-size 500, the default)", wall, rc, rss, cpu, batched)
            print_tail(work / "batched.log")

            if not args.skip_unbatched:
                stub.latency_ms = args.unbatched_latency_ms
                stub.reset_stats()
                unbatched = write_config(work / "unbatched.conf", 1, args.regions)
                wall1, rc1, rss1, cpu1 = run_pass(stub.url, unbatched, work, work / "unbatched.log")
                unbatched = stub.stats()
                print_run(f"one metric per call (metrics-batch-size 1, latency {args.unbatched_latency_ms:g} ms)",
                          wall1, rc1, rss1, cpu1, unbatched)
                print_tail(work / "unbatched.log")
                b = batched["calls"].get("cloudwatch.GetMetricData", 0)
                u = unbatched["calls"].get("cloudwatch.GetMetricData", 0)
                print(f"\nGetMetricData calls: {b} batched vs {u} one per metric: {u / max(b, 1):.0f}x fewer")
                if args.unbatched_latency_ms < args.latency_ms:
                    extra = u * (args.latency_ms - args.unbatched_latency_ms) / 1000 / METRICS_CONCURRENCY
                    print(f"the one-per-metric pass at {args.latency_ms:g} ms per call would take about "
                          f"{wall1 + extra:.0f} s ({METRICS_CONCURRENCY} calls in flight)")

            if args.idle_seconds > 0:
                stub.latency_ms = args.latency_ms
                idle = write_config(work / "batched.conf", regions=args.regions)
                first, used = idle_cpu(stub.url, idle, work, work / "idle.log", args.idle_seconds)
                print(f"\n== foreground daemon between passes\nfirst pass ended after {first:.1f} s; CPU used in the "
                      f"next {args.idle_seconds:g} s of sleep: {used:.2f} s ({100 * used / args.idle_seconds:.2f} % "
                      f"of one core)")
        finally:
            stub.stop()
            moto.stop()
    return 0


def print_tail(log: Path) -> None:
    lines = log.read_text().splitlines()
    done = [line for line in lines if "Pass done in" in line]
    errors = [line for line in lines if " - ERROR - " in line or "Traceback" in line]
    if done:
        print("daemon: " + re.sub(r"^.* - INFO - ", "", done[-1]))
    for line in errors[:5]:
        print("daemon error: " + line)


if __name__ == "__main__":
    sys.exit(main())
