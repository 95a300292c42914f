"""The fault soak: the real daemon, hundreds of passes, every kind of bad answer; prints figures.

    python benchmarks/soak.py [--passes 200] [--seed 1] [--fault-rate 0.2] [--keep DIR] [--json]

What it does:

1. starts moto_server and, in this process, ``tests/support/faults.py``'s ``FaultProxy`` in
   front of it: the rules proxy (UPDATING for 1 s after each update, DynamoDB's decrease
   quota, refusal of no-op updates) plus a seeded fault planner: about ``--fault-rate`` of
   the logical AWS calls are hit, half of them on every attempt (the call fails), half
   on the first attempt only (botocore's retry absorbs it), with HTTP 500/503, throttling,
   connection resets before and after forwarding, hangs past the client's read timeout,
   truncated, HTML, non-UTF-8, incomplete and mistyped 200 bodies, ResourceInUse and the
   LimitExceeded that is not the decrease rule;
2. creates four tables (two with a GSI) whose capacity starts away from where the
   thresholds rest, and per-minute consumption for them in CloudWatch;
3. runs ``python -m dynamic_dynamodb --daemon foreground --check-interval 1`` with its own
   state file, and between passes: deletes and recreates a table (sometimes leaving it
   away for a pass or two), moves a table's capacity behind the daemon's back, and
   SIGKILLs the daemon (at a random moment, while an UpdateTable answer is on its way, or
   while the state file is being written), restarting it at once on the same state file;
4. after ``--passes`` passes stops every fault and counts the passes until every table and
   GSI is decided without a change, at rest (or held by DynamoDB's decrease rule);
5. prints the figures and exits 0 when every loss and violation is 0 and convergence took
   at most 3 passes, 1 otherwise.

How a lost pass is told: each pass of the daemon ends with its "Pass done" log line (the
daemon logs with ``--log-config-file`` and a format carrying the epoch time); the proxy
logs every request with its time, botocore's invocation id and attempt, the fault it got
and what a clean answer said. A table is *owed* a decision in a pass when that pass's
ListTables calls and the table's DescribeTable call ended in a clean answer showing it
(or its GSI) ACTIVE, and no failed GetMetricData call of the pass that asked for that
table's series failed as a whole (throttling, 5xx after botocore's retries, a connection
lost) or asked for that table's series alone. A batch of several tables' series whose
*answer* could not be read must be split by the daemon, and costs none of them. A pass is lost
when a table or GSI owed a decision got no decision line with data. Passes cut short by a SIGKILL are not counted.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.cli import cli_env
from support.faults import KINDS, FaultProxy, RandomFaults
from support.metrics import create_table, put_metric_minutes
from support.moto import AwsClients, MotoServer, apply_fake_aws_env

CHECK_INTERVAL = 1
UPDATING_SECONDS = 1.0
# past the daemon's read timeouts (aws.READ_TIMEOUT: 10 s, CloudWatch 15 s)
HANG_SECONDS = {"dynamodb": 11.0, "cloudwatch": 16.0}
CALM_PASSES = 8  # fault-free passes at the end, in which convergence is measured
QUIET_BEFORE_END = 5  # no table moved or recreated in the last passes of the fault phase
CONVERGENCE_TARGET = 3
UPPER, LOWER = 80.0, 20.0  # thresholds of every table and GSI (percent consumed)
LIMITS = {"reads": (2, 400), "writes": (2, 400)}  # min, max of every table and GSI
LOG_LINE = re.compile(r"^(?P<t>\d+\.\d+) (?P<level>[A-Z]+) (?P<msg>.*)$")
DECISION = re.compile(r"^(?:\[[^\]]*\] )?(?P<target>[^\s:\[]+): reads (?P<rp>.+?) of (?P<rc>\d+)(?: -> (?P<rn>\d+))? "
                      r"\((?P<rr>.*)\); writes (?P<wp>.+?) of (?P<wc>\d+)(?: -> (?P<wn>\d+))? \((?P<wr>.*)\)$")
PASS_DONE = "Pass done"
# the first passes make sure even a short soak has each disturbance and each kind of kill
# archive's reads are pushed back up a few times (each costs a decrease), then someone else
# spends the rest of the day's four decreases and pushes the reads up again: the decrease
# must wait an hour. Then the table is recreated: its new incarnation has a fresh quota,
# which the daemon must use (its memory must not carry over to the new table).
OPENING_DISTURBANCES = {2: ("move", "archive"), 3: ("recreate", "sessions"), 5: ("move", "archive"),
                        6: ("delete", "sessions"), 9: ("back", "sessions"), 10: ("spend", "archive"),
                        11: ("move", "archive"), 13: ("move", None), 14: ("recreate", "archive")}
OPENING_KILLS = {4: "update in flight", 7: "state write", 11: "random", 16: "state write"}


@dataclass(frozen=True)
class Spec:
    """One soak target: where its capacity starts and what it consumes (units per second)."""

    table: str  # suffix after the run's prefix
    index: str | None
    start: tuple[int, int]
    consumed: tuple[float, float]


SPECS = (
    Spec("orders", None, (20, 20), (40.0, 10.0)),  # reads must go up
    Spec("orders", "by-customer", (10, 5), (8.0, 2.0)),  # reads at 80 %: up
    Spec("archive", None, (100, 10), (10.0, 4.0)),  # reads at 10 %: down
    Spec("archive", "by-date", (30, 4), (3.0, 1.0)),  # reads at 10 %: down
    Spec("events", None, (20, 10), (10.0, 5.0)),  # at rest throughout
    Spec("sessions", None, (20, 10), (30.0, 3.0)),  # deleted and recreated: up each time
)
RECREATED = "sessions"
# entries of another configuration sharing the state file (another region): the daemon
# must keep them; they also make the state write long enough to be killed in the middle
FOREIGN_ENTRIES = 2000
FOREIGN_REGION = "eu-west-3"


def foreign_state() -> dict[str, Any]:
    """A version 2 state file holding only another configuration's entries."""
    return {"version": 2, "targets": [
        {"table": f"other-config-{i:05d}", "index": None, "region": FOREIGN_REGION,
         "memory": {"read_checks": 1, "write_checks": 0}} for i in range(FOREIGN_ENTRIES)]}


def at_rest(units: int, consumed: float) -> bool:
    """True when the thresholds ask for no change at this capacity."""
    pct = consumed / units * 100.0
    return LOWER < pct < UPPER


# ---- the daemon ----------------------------------------------------------------------------


@dataclass
class Generation:
    """One daemon process, from its start to its end."""

    number: int
    proc: subprocess.Popen
    started: float
    lines: list[tuple[float, str, str]] = field(default_factory=list)  # (time, level, message)
    raw: list[str] = field(default_factory=list)  # lines not in the log format (tracebacks)
    passes: list[float] = field(default_factory=list)  # end times of completed passes
    ended: float | None = None
    killed: str | None = None  # why we SIGKILLed it, None if it died on its own
    rc: int | None = None


class Daemon:
    """Starts, watches, kills and restarts the daemon; counts its passes."""

    def __init__(self, root: Path, endpoint: str, config: Path) -> None:
        self.root = root
        self.state_dir = root / "state"
        self.state_dir.mkdir()
        self.state_file = self.state_dir / "soak.state.json"
        self.run_dir = root / "run"
        self.run_dir.mkdir()
        self.log_config = root / "logging.conf"
        self.log_config.write_text(LOG_CONFIG)
        self.config = config
        self.env = cli_env(endpoint)
        self.env.pop("AWS_MAX_ATTEMPTS", None)  # the daemon's own retry settings, as in production
        self.generations: list[Generation] = []
        self.passes = 0  # completed passes over every generation
        self.cond = threading.Condition()
        self.kill_during_write = threading.Event()
        self.write_kills = 0  # kills that found a temporary file next to the state file
        self.lock = threading.RLock()

    @property
    def current(self) -> Generation:
        return self.generations[-1]

    def args(self) -> list[str]:
        return [sys.executable, "-m", "dynamic_dynamodb", "--config", str(self.config), "--daemon", "foreground",
                "--instance", "soak", "--pid-file-dir", str(self.run_dir), "--state-file", str(self.state_file),
                "--log-config-file", str(self.log_config), "--check-interval", str(CHECK_INTERVAL)]

    def start(self) -> Generation:
        with self.lock:
            proc = subprocess.Popen(self.args(), env=self.env, cwd=str(REPO), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
            gen = Generation(len(self.generations), proc, time.time())
            self.generations.append(gen)
        threading.Thread(target=self._read, args=(gen,), daemon=True, name=f"daemon-{gen.number}").start()
        return gen

    def _read(self, gen: Generation) -> None:
        with open(self.root / f"daemon-{gen.number}.log", "w", encoding="utf-8") as copy:
            self._follow(gen, copy)

    def _follow(self, gen: Generation, copy: Any) -> None:
        assert gen.proc.stdout is not None
        for line in gen.proc.stdout:
            copy.write(line)
            copy.flush()
            line = line.rstrip("\n")
            m = LOG_LINE.match(line)
            if not m:
                gen.raw.append(line)
                continue
            t, msg = float(m["t"]), m["msg"]
            gen.lines.append((t, m["level"], msg))
            if PASS_DONE in msg:
                if self.kill_during_write.is_set():
                    self._kill_in_write(gen)
                with self.cond:
                    gen.passes.append(t)
                    self.passes += 1
                    self.cond.notify_all()
        gen.proc.wait()
        with self.cond:
            gen.rc = gen.proc.returncode
            if gen.ended is None:
                gen.ended = time.time()
            self.cond.notify_all()

    def _kill_in_write(self, gen: Generation) -> None:
        """The state write follows the pass's last line: SIGKILL as soon as its temp file shows."""
        self.kill_during_write.clear()
        before = self._state_mtime()
        deadline = time.monotonic() + 2.0  # the write is over long before the next pass
        while time.monotonic() < deadline and gen.proc.poll() is None:
            if self.temp_files():
                self.write_kills += 1
                break
            if self._state_mtime() != before:
                break  # written already: the kill falls just after the write
        self.kill(gen, "state write")

    def _state_mtime(self) -> float | None:
        try:
            return self.state_file.stat().st_mtime_ns
        except OSError:
            return None

    def temp_files(self) -> list[str]:
        try:
            names = os.listdir(self.state_dir)
        except OSError:
            return []
        # a lock file is there by design; anything else (a temporary file, a corrupt state
        # file moved aside) should never be left for the next run
        return [n for n in names if n != self.state_file.name and "lock" not in n.lower()]

    def kill(self, gen: Generation, why: str) -> bool:
        with self.lock:
            if gen.killed or gen.proc.poll() is not None:
                return False
            gen.killed = why
            gen.ended = time.time()
            try:
                os.kill(gen.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                return False
            return True

    def wait_passes(self, n: int, timeout: float) -> bool:
        """Until `n` passes have completed in all (False on timeout); a death is handled by the caller."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.passes < n:
                if self.current.ended is not None or self.current.proc.poll() is not None:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.5))
        return True

    def stop(self) -> None:
        gen = self.current
        if gen.proc.poll() is None:
            gen.killed = gen.killed or "end"
            gen.proc.send_signal(signal.SIGTERM)
            try:
                gen.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                gen.proc.kill()
                gen.proc.wait()
        if gen.ended is None:
            gen.ended = time.time()


LOG_CONFIG = """\
[loggers]
keys = root, daemon

[handlers]
keys = console

[formatters]
keys = epoch

[logger_root]
level = WARNING
handlers = console

[logger_daemon]
level = INFO
handlers = console
propagate = 0
qualname = dynamic-dynamodb

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = epoch

[formatter_epoch]
format = %(created).6f %(levelname)s %(message)s
"""


def daemon_config(prefix: str) -> str:
    rules = "".join(
        f"{dim}-upper-threshold: {UPPER:g}\n{dim}-lower-threshold: {LOWER:g}\n"
        f"increase-{dim}-with: 100\nincrease-{dim}-unit: percent\n"
        f"decrease-{dim}-with: 60\ndecrease-{dim}-unit: percent\n"
        f"min-provisioned-{dim}: {LIMITS[dim][0]}\nmax-provisioned-{dim}: {LIMITS[dim][1]}\n"
        f"num-{dim[:-1]}-checks-before-scale-down: 1\n"
        for dim in ("reads", "writes"))
    key = f"{re.escape(prefix)}-.*"
    return (f"[global]\ncheck-interval: {CHECK_INTERVAL}\n\n[table: {key}]\n{rules}\n"
            f"[gsi: .* table: {key}]\n{rules}")


# ---- the world ------------------------------------------------------------------------------


class World:
    """The soak's tables and metrics in moto, changed behind the daemon's back."""

    def __init__(self, aws: AwsClients, prefix: str, horizon_minutes: int) -> None:
        self.aws = aws
        self.prefix = prefix
        self.horizon = horizon_minutes
        self.absent: set[str] = set()
        self.incarnations: Counter = Counter()
        self.events: list[tuple[float, str]] = []  # (time, what was done behind the daemon's back)

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    def tables(self) -> list[str]:
        return sorted({s.table for s in SPECS})

    def create(self, suffix: str) -> None:
        specs = [s for s in SPECS if s.table == suffix]
        main = next(s for s in specs if s.index is None)
        gsis = {s.index: s.start for s in specs if s.index is not None}
        create_table(self.aws.dynamodb, self.name(suffix), *main.start, gsis=gsis or None)
        self.incarnations[suffix] += 1
        self.events.append((time.time(), f"created {self.name(suffix)}"))

    def delete(self, suffix: str) -> None:
        self.aws.dynamodb.delete_table(TableName=self.name(suffix))
        self.events.append((time.time(), f"deleted {self.name(suffix)}"))

    def feed_metrics(self) -> None:
        """Per-minute consumption from 40 minutes ago to the horizon, for every target."""
        end = datetime.now(timezone.utc) + timedelta(minutes=self.horizon)
        minutes = 40 + self.horizon
        for s in SPECS:
            for metric, per_second in (("ConsumedReadCapacityUnits", s.consumed[0]),
                                       ("ConsumedWriteCapacityUnits", s.consumed[1])):
                put_metric_minutes(self.aws.cloudwatch, metric, self.name(s.table), per_second * 60,
                                   index=s.index, minutes=minutes, end=end)

    def move(self, spec: Spec, reads: int) -> None:
        """Someone else changes a table's or GSI's reads (straight to DynamoDB, not via the daemon)."""
        name = self.name(spec.table)
        self.events.append((time.time(), f"moved {name}/{spec.index} reads to {reads}"))
        desc = self.aws.dynamodb.describe_table(TableName=name)["Table"]
        if spec.index is None:
            pt = desc["ProvisionedThroughput"]
            if pt["ReadCapacityUnits"] != reads:
                self.aws.dynamodb.update_table(TableName=name, ProvisionedThroughput={
                    "ReadCapacityUnits": reads, "WriteCapacityUnits": pt["WriteCapacityUnits"]})
        else:
            g = next(g for g in desc["GlobalSecondaryIndexes"] if g["IndexName"] == spec.index)
            pt = g["ProvisionedThroughput"]
            if pt["ReadCapacityUnits"] != reads:
                self.aws.dynamodb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Update": {
                    "IndexName": spec.index, "ProvisionedThroughput": {
                        "ReadCapacityUnits": reads, "WriteCapacityUnits": pt["WriteCapacityUnits"]}}}])


# ---- the run ----------------------------------------------------------------------------------


@dataclass
class Figures:
    """What a soak measured."""

    passes: int = 0
    passes_target: int = 0
    passes_killed: int = 0
    passes_lost: int = 0
    targets_lost: int = 0
    owed: int = 0
    requests: int = 0
    calls: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    failed_calls: int = 0
    kills: dict[str, int] = field(default_factory=dict)
    kills_in_state_write: int = 0
    deaths: int = 0
    death_details: list[str] = field(default_factory=list)
    tracebacks: int = 0
    unexpected_errors: int = 0
    outside_limits: int = 0
    refused_decreases: int = 0
    refused_noops: int = 0
    limit_exceeded_resent: int = 0
    state_corrupt: int = 0
    temp_left_behind: int = 0
    foreign_lost: int = 0
    recreations: int = 0
    moves: int = 0
    convergence: int | None = None
    seconds: float = 0.0
    lost_examples: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures()

    def failures(self) -> list[str]:
        out = [f"{name} = {value}" for name, value in (
            ("passes lost", self.passes_lost), ("process deaths", self.deaths),
            ("tracebacks", self.tracebacks), ("unexpected errors", self.unexpected_errors),
            ("values outside [min, max]", self.outside_limits),
            ("decreases refused by the rule", self.refused_decreases),
            ("no-op updates refused", self.refused_noops),
            ("LimitExceeded resent by the client", self.limit_exceeded_resent),
            ("state files corrupt", self.state_corrupt),
            ("temporary files left behind", self.temp_left_behind),
            ("other configurations' state entries lost", self.foreign_lost)) if value]
        if self.passes < self.passes_target:
            out.append(f"only {self.passes} of {self.passes_target} passes completed")
        if self.convergence is None or self.convergence > CONVERGENCE_TARGET:
            out.append(f"convergence = {self.convergence if self.convergence is not None else 'never'} passes")
        return out

    def report(self) -> str:
        faults = ", ".join(f"{k} {self.faults.get(k, 0)}" for k in KINDS)
        kills = ", ".join(f"{k} {v}" for k, v in sorted(self.kills.items())) or "none"
        lines = [
            (f"passes: {self.passes} completed ({self.passes_killed} more cut short by a SIGKILL), "
            f"{self.passes_target} wanted, {self.seconds:.0f} s"),
            f"requests: {self.requests} ({self.calls} logical calls, {self.failed_calls} of them failed)",
            f"faults injected (requests hit): {sum(self.faults.values())}: {faults}",
            f"tables moved behind the daemon: {self.moves}; deleted and recreated: {self.recreations}",
            f"SIGKILLs: {kills}; of those found writing the state file: {self.kills_in_state_write}",
            f"passes lost: {self.passes_lost} ({self.targets_lost} of {self.owed} decisions owed were missing)",
            (f"process deaths: {self.deaths}; tracebacks: {self.tracebacks}; "
             f"'Unexpected error' lines: {self.unexpected_errors}"),
            f"values outside [min, max]: {self.outside_limits}",
            (f"decreases refused by the rule: {self.refused_decreases}; no-op updates refused: {self.refused_noops}; "
             f"LimitExceeded (not the decrease rule) resent by the client: {self.limit_exceeded_resent}"),
            (f"state files corrupt: {self.state_corrupt}; temporary files left behind: {self.temp_left_behind}; "
             f"other configurations' entries lost: {self.foreign_lost} of {FOREIGN_ENTRIES}"),
            (f"passes until converged after the faults stopped: "
             f"{self.convergence if self.convergence is not None else 'never'} (target <= {CONVERGENCE_TARGET})"),
        ]
        lines += [f"  lost: {x}" for x in self.lost_examples[:10]]
        lines += [f"  death: {x}" for x in self.death_details[:5]]
        lines += [f"  violation: {x}" for x in self.violations[:10]]
        lines.append("RESULT: " + ("OK" if self.ok else "FAILED: " + "; ".join(self.failures())))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["ok"] = self.ok
        d["failures"] = self.failures()
        return d


def run_soak(passes: int = 200, seed: int = 1, fault_rate: float = 0.2, workdir: Path | None = None,
             moto_url: str | None = None, hangs: int | None = None,
             progress: Any | None = None) -> Figures:
    """Run the soak and return its figures (asserts nothing)."""
    apply_fake_aws_env(os.environ)
    rng = random.Random(seed)
    started = time.monotonic()
    own = tempfile.TemporaryDirectory(prefix="dd-soak-") if workdir is None else None
    root = Path(own.name) if own is not None else Path(str(workdir))
    root.mkdir(parents=True, exist_ok=True)
    moto = None
    if moto_url is None:
        moto = MotoServer(log_path=root / "moto.log").start()
        moto_url = moto.url
    planner = RandomFaults(seed=seed, rate=fault_rate,
                           hang_budget=max(1, passes // 25) if hangs is None else hangs)
    state: dict[str, Any] = {"daemon": None, "kill_update": False}

    def before_answer(entry: dict) -> None:
        # the UpdateTable went through upstream; the daemon dies before it reads the answer
        if state["kill_update"] and entry.get("operation") == "UpdateTable" and state["daemon"] is not None:
            state["kill_update"] = False
            state["daemon"].kill(state["daemon"].current, "update in flight")

    proxy = FaultProxy(moto_url, planner=planner, hang_seconds=HANG_SECONDS, before_answer=before_answer,
                       updating_seconds=UPDATING_SECONDS).start()
    figures = Figures(passes_target=passes + CALM_PASSES)
    daemon = None
    try:
        prefix = f"soak-{uuid.uuid4().hex[:6]}"
        aws = AwsClients(moto_url)
        world = World(aws, prefix, horizon_minutes=30 + passes // 10)
        for suffix in world.tables():
            world.create(suffix)
        world.feed_metrics()
        config = root / "soak.conf"
        config.write_text(daemon_config(prefix))
        daemon = Daemon(root, proxy.url, config)
        state["daemon"] = daemon
        daemon.state_file.write_text(json.dumps(foreign_state()), encoding="utf-8")
        daemon.start()
        figures = _drive(daemon, world, proxy, planner, rng, passes, figures, progress, state)
        daemon.stop()
        figures.temp_left_behind += len(daemon.temp_files())
        try:
            text = daemon.state_file.read_text(encoding="utf-8")
        except OSError:
            text = ""
        # by name, whatever the file's layout: an entry is kept when its table is still there
        figures.foreign_lost = sum(1 for i in range(FOREIGN_ENTRIES) if f'"other-config-{i:05d}"' not in text)
        _analyse(daemon, world, proxy, planner, passes, figures)
    finally:
        if daemon is not None:
            for gen in daemon.generations:
                if gen.proc.poll() is None:
                    gen.proc.kill()
        proxy.stop()
        if moto is not None:
            moto.stop()
        figures.seconds = time.monotonic() - started
        if own is not None:
            own.cleanup()
    return figures


def _drive(daemon: Daemon, world: World, proxy: FaultProxy, planner: RandomFaults, rng: random.Random,
           passes: int, figures: Figures, progress: Any, state: dict[str, Any]) -> Figures:
    """Passes, with the world disturbed between them and the daemon killed now and then."""
    total = passes + CALM_PASSES
    pending_temp: dict[int, set[str]] = {}  # generation -> temp files found when its predecessor died
    kill_modes = ("random", "update in flight", "state write")
    hangs = planner.hang_budget * 3 * max(HANG_SECONDS.values())
    deadline = time.monotonic() + total * (CHECK_INTERVAL + 4) + hangs + 120
    seen = 0
    while daemon.passes < total and time.monotonic() < deadline:
        gen = daemon.current
        daemon.wait_passes(seen + 1, timeout=60)
        if gen.proc.poll() is not None or gen.ended is not None:
            gen.proc.wait()
            if not gen.killed:
                figures.deaths += 1
                tail = " | ".join((gen.raw or [m for _, _, m in gen.lines])[-3:])
                figures.death_details.append(f"generation {gen.number} exited {gen.proc.returncode}: {tail}")
            _after_death(daemon, figures, pending_temp)
            time.sleep(0.2 if not gen.killed else 0)
            daemon.start()
            continue
        if daemon.passes <= seen:
            continue
        seen = daemon.passes
        if progress and seen % 25 == 0:
            progress(f"  pass {seen}/{total}")
        # the temp files a killed predecessor left: the first pass of its successor is over
        for number, names in list(pending_temp.items()):
            if number == gen.number and gen.passes:
                figures.temp_left_behind += len(names & set(daemon.temp_files()))
                del pending_temp[number]
        if seen >= passes:
            planner.enabled = False
            continue
        if seen < passes - QUIET_BEFORE_END:
            _disturb(world, proxy, rng, figures, *OPENING_DISTURBANCES.get(seen, (None, None)))
        elif world.absent:  # the faults are about to stop: every table is back
            _disturb(world, proxy, rng, figures, "back")
        mode = OPENING_KILLS.get(seen)
        if mode is None and seen >= max(OPENING_KILLS) and rng.random() < 0.06:
            mode = rng.choice(kill_modes)
        if mode is not None and seen < passes - 1:
            figures.kills[mode] = figures.kills.get(mode, 0) + 1
            if mode == "random":
                delay = rng.uniform(0, 1.5 * CHECK_INTERVAL)
                threading.Timer(delay, daemon.kill, args=(gen, "random")).start()
            elif mode == "update in flight":
                state["kill_update"] = True
            else:
                daemon.kill_during_write.set()
    if daemon.passes < total:
        figures.violations.append(f"the soak timed out after {daemon.passes} passes")
    figures.passes = daemon.passes
    figures.kills_in_state_write = daemon.write_kills
    return figures


def _after_death(daemon: Daemon, figures: Figures, pending_temp: dict[int, set[str]]) -> None:
    """Right after a process died: is the state file readable, and which temp files are there?"""
    if daemon.state_file.exists():
        try:
            json.loads(daemon.state_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            figures.state_corrupt += 1
            figures.violations.append(f"state file unreadable after generation {daemon.current.number}: {e}")
    temp = set(daemon.temp_files())
    if temp:
        pending_temp[daemon.current.number + 1] = temp


def _disturb(world: World, proxy: FaultProxy, rng: random.Random, figures: Figures,
             forced: str | None = None, table: str | None = None) -> None:
    """Between passes, now and then: a table deleted (and recreated), a capacity moved.

    `forced` ("recreate", "delete", "back", "move", "spend") makes that happen now, to `table` if
    given. Each change is made by a hook at the next ListTables, so it falls exactly between
    two passes. Only RECREATED is ever left away."""
    absent = RECREATED in world.absent
    what = forced
    if what is None:
        r = rng.random()
        if absent:
            what = "back" if r < 0.5 else None
        else:
            what = "recreate" if r < 0.05 else "delete" if r < 0.08 else "move" if r < 0.12 else None
    if what == "move":
        specs = [s for s in SPECS if s.table != RECREATED and (table is None or s.table == table)]
        spec = specs[0] if table else rng.choice(specs)

        def move(_info: Any, spec: Spec = spec) -> None:
            try:
                world.move(spec, spec.start[0])
            except Exception as e:  # noqa: BLE001 - a move that moto refuses is simply not made
                world.events.append((time.time(), f"move refused: {e}"))
        proxy.add_hook("ListTables", move)
        figures.moves += 1
    elif what == "spend" and table:
        def spend(_info: Any, name: str = world.name(table)) -> None:
            proxy.set_decreases(name, None, count=4, last=proxy.now())
            world.events.append((time.time(), f"spent the day's decreases of {name}"))
        proxy.add_hook("ListTables", spend)
    elif what == "back" and absent:
        def back(_info: Any) -> None:
            world.create(RECREATED)
            proxy.forget_table(world.name(RECREATED))
        proxy.add_hook("ListTables", back)
        world.absent.discard(RECREATED)
    elif what == "recreate" and (table != RECREATED or not absent):
        suffix = table or rng.choice([t for t in world.tables() if t != RECREATED or not absent])

        def again(_info: Any, suffix: str = suffix) -> None:
            world.delete(suffix)
            proxy.forget_table(world.name(suffix))
            world.create(suffix)
        proxy.add_hook("ListTables", again)
        figures.recreations += 1
    elif what == "delete" and not absent:
        def gone(_info: Any) -> None:
            world.delete(RECREATED)
            proxy.forget_table(world.name(RECREATED))
        proxy.add_hook("ListTables", gone)
        world.absent.add(RECREATED)
        figures.recreations += 1


# ---- the analysis -------------------------------------------------------------------------------


def _clean(call: list[dict]) -> bool:
    last = call[-1]
    return last.get("kind") is None and last.get("status") == 200


def _analyse(daemon: Daemon, world: World, proxy: FaultProxy, planner: RandomFaults, passes: int,
             figures: Figures) -> None:
    log = proxy.calls()
    with open(daemon.root / "requests.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps({k: v for k, v in e.items() if k != "params"}, default=str) + "\n" for e in log)
    with open(daemon.root / "events.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps({"time": t, "event": what}) + "\n" for t, what in world.events)
    figures.requests = len(log)
    figures.faults = dict(planner.counts)
    calls: dict[str, list[dict]] = defaultdict(list)
    for i, e in enumerate(log):
        calls[e.get("invocation") or f"req-{i}"].append(e)
    figures.calls = len(calls)
    figures.failed_calls = sum(1 for c in calls.values() if not _clean(c))
    _check_updates(calls, world, figures)
    for gen in daemon.generations:
        figures.tracebacks += sum(1 for line in gen.raw if line.startswith("Traceback"))
        figures.unexpected_errors += sum(1 for _, _, m in gen.lines if m.startswith("Unexpected error"))
        figures.passes_killed += 1 if gen.killed and gen.killed != "end" else 0
    windows = []  # (global pass number, generation, start, end)
    number = 0
    for gen in daemon.generations:
        start = gen.started
        for end in gen.passes:
            windows.append((number, gen, start, end))
            number += 1
            start = end
    by_window: dict[int, list[str]] = {}
    verdicts: dict[int, bool] = {}
    for number, gen, start, end in windows:
        inside = [c for c in calls.values() if start < c[0]["time"] <= end]
        owed = _owed(inside, world)
        decided = _decisions(gen, start, end)
        missing = [t for t in owed if t not in decided or decided[t] is None]
        figures.owed += len(owed)
        if number < passes and missing:
            figures.passes_lost += 1
            figures.targets_lost += len(missing)
            figures.lost_examples.append(f"pass {number}: {', '.join(missing)}")
        by_window[number] = missing
        if number >= passes:
            verdicts[number] = _converged(world, proxy, decided)
    last_bad = max((n for n, ok in verdicts.items() if not ok), default=passes - 1)
    if verdicts and last_bad < max(verdicts):
        figures.convergence = last_bad - passes + 2
    else:
        figures.convergence = None


# faults of a call's answer, which a smaller call may well not meet: a failed batch of several
# tables' series is to be split by the daemon. Any other failure (throttling, 5xx after the
# retries, a connection lost) is the failure of every series in the call.
CONTENT_KINDS = ("truncated", "garbage", "not_utf8", "missing_field", "bad_type")


def _owed(inside: list[list[dict]], world: World) -> list[str]:
    """The targets a pass owes a decision (see the module's docstring)."""
    listing = [c for c in inside if c[0]["operation"] == "ListTables"]
    if not listing or not all(_clean(c) for c in listing):
        return []
    names: set[str] = set()
    for c in listing:
        names.update((c[-1].get("answer") or {}).get("names") or [])
    owed = []
    for suffix in world.tables():
        name = world.name(suffix)
        if name not in names:
            continue
        describes = [c for c in inside if c[0]["operation"] == "DescribeTable" and c[0]["table"] == name]
        if not describes or not all(_clean(c) for c in describes):
            continue
        metric_fails = [c for c in inside if c[0]["operation"] == "GetMetricData" and not _clean(c)
                        and name in c[0]["tables"]
                        and (set(c[0]["tables"]) == {name} or c[-1].get("kind") not in CONTENT_KINDS)]
        if metric_fails:
            continue
        desc = describes[-1][-1].get("answer") or {}
        if desc.get("status") != "ACTIVE" or desc.get("billing") != "PROVISIONED":
            continue
        owed.append(name)
        owed += [f"{name}/{i}" for i, g in sorted(desc.get("indexes", {}).items()) if g.get("status") == "ACTIVE"]
    return owed


def _decisions(gen: Generation, start: float, end: float) -> dict[str, tuple | None]:
    """target -> (reads current, reads new, writes current, writes new), None when decided without data."""
    out: dict[str, tuple | None] = {}
    for t, _level, msg in gen.lines:
        if not start < t <= end + 1e-3:
            continue
        m = DECISION.match(msg)
        if not m:
            continue
        if "no data" in (m["rp"], m["wp"]):
            out.setdefault(m["target"], None)
            continue
        rc, wc = int(m["rc"]), int(m["wc"])
        out[m["target"]] = (rc, int(m["rn"] or rc), wc, int(m["wn"] or wc))
    return out


def _converged(world: World, proxy: FaultProxy, decided: dict[str, tuple | None]) -> bool:
    """Every target decided, no change, at rest (or at a limit, or held by the decrease rule)."""
    for s in SPECS:
        target = world.name(s.table) + (f"/{s.index}" if s.index else "")
        d = decided.get(target)
        if d is None:
            return False
        rc, rn, wc, wn = d
        if (rc, wc) != (rn, wn):
            return False
        held = proxy.counters(world.name(s.table), s.index)["NextDecreaseAt"] is not None
        for units, consumed, dim in ((rc, s.consumed[0], "reads"), (wc, s.consumed[1], "writes")):
            low, high = LIMITS[dim]
            pct = consumed / units * 100.0
            if at_rest(units, consumed) or units in (low, high) or (pct <= LOWER and held):
                continue
            return False
    return True


def _check_updates(calls: dict[str, list[dict]], world: World, figures: Figures) -> None:
    """Every UpdateTable the daemon sent: inside the limits, and never refused by a rule."""
    for call in calls.values():
        first = call[0]
        if first.get("operation") != "UpdateTable":
            continue
        params = first.get("params") or {}
        sent = []
        if params.get("ProvisionedThroughput"):
            sent.append((params.get("TableName"), params["ProvisionedThroughput"]))
        for u in params.get("GlobalSecondaryIndexUpdates") or []:
            upd = u.get("Update") or {}
            if upd.get("ProvisionedThroughput"):
                sent.append((f"{params.get('TableName')}/{upd.get('IndexName')}", upd["ProvisionedThroughput"]))
        for target, pt in sent:
            for dim, key in (("reads", "ReadCapacityUnits"), ("writes", "WriteCapacityUnits")):
                low, high = LIMITS[dim]
                value = pt.get(key)
                if not isinstance(value, int) or not low <= value <= high:
                    figures.outside_limits += 1
                    figures.violations.append(f"{target}: {dim} {value} sent, outside [{low}, {high}]")
        faulted = any(e.get("kind") for e in call)
        for e in call:
            if e.get("kind") is not None or faulted:
                continue
            if e.get("error") == "LimitExceededException":
                figures.refused_decreases += 1
                figures.violations.append(f"{params.get('TableName')}: decrease refused by the rule")
            elif e.get("error") == "ValidationException":
                figures.refused_noops += 1
                figures.violations.append(f"{params.get('TableName')}: update refused as a no-op or invalid")
        if first.get("kind") == "limit_exceeded":
            figures.limit_exceeded_resent += len(call) - 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fault soak of the real daemon against moto_server.")
    parser.add_argument("--passes", type=int, default=200, help="passes with faults (default 200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-rate", type=float, default=0.2, help="share of logical calls hit (default 0.2)")
    parser.add_argument("--keep", type=Path, help="work directory to keep (logs, state, config)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    if args.passes < 1:
        parser.error("--passes must be at least 1")
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep}: give a new or empty directory")
    print(f"soak: {args.passes} passes with faults at rate {args.fault_rate} (seed {args.seed}), "
          f"then {CALM_PASSES} without", flush=True)
    figures = run_soak(args.passes, args.seed, args.fault_rate, workdir=args.keep,
                       progress=lambda text: print(text, flush=True))
    print(figures.report())
    if args.json:
        print(json.dumps(figures.as_dict(), indent=1, default=str))
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
