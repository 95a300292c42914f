"""`--daemon start|stop|restart|foreground`, signals and logging, end to end: the real CLI
as subprocesses against moto_server behind the rules proxy.

Every test uses its own instance name and pid directory (safe under ``pytest -n``) and a
1-second check interval; every daemon left running is killed at teardown.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from support.cli import REPO, assert_no_traceback, cli_env, describe, run_cli
from support.metrics import create_table, provisioned, put_consumption
from support.processes import looks_like_ours
from support.silent import SilentServer
from support.wait import wait_for

from dynamic_dynamodb.daemon import process_alive, read_pid

pytestmark = pytest.mark.e2e


def table_config(table: str, upper: float | str = 90, lower: float = 10, interval: int = 1, extra: str = "") -> str:
    return (f"[global]\ncheck-interval: {interval}\n{extra}\n"
            f"[table: {table}]\nreads-upper-threshold: {upper}\nreads-lower-threshold: {lower}\n"
            f"writes-upper-threshold: 90\nwrites-lower-threshold: 10\n")


class Instance:
    """One `--instance` of the daemon: its config, pid dir and log file in tmp_path."""

    def __init__(self, tmp_path: Path, endpoint: str, label: str, config_text: str,
                 log_file: bool = True) -> None:
        self.name = f"{label}-{uuid.uuid4().hex[:8]}"
        self.root = tmp_path / self.name
        self.root.mkdir()
        self.pid_dir = self.root / "run"
        self.pid_dir.mkdir()
        self.config = self.root / "dd.conf"
        self.config.write_text(config_text)
        self.log = self.root / "dd.log" if log_file else None
        self.endpoint = endpoint
        self.pids: set[int] = set()  # every daemon pid seen, for the teardown

    @property
    def pid_file(self) -> Path:
        return self.pid_dir / f"dynamic-dynamodb.{self.name}.pid"

    def args(self, command: str, *extra: str) -> list[str]:
        args = ["--config", str(self.config), "--daemon", command, "--instance", self.name,
                "--pid-file-dir", str(self.pid_dir)]
        if self.log is not None:
            args += ["--log-file", str(self.log)]
        return args + list(extra)

    def run(self, command: str, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess:
        result = run_cli(self.args(command, *extra), endpoint_url=self.endpoint, timeout=timeout)
        assert_no_traceback(result)
        if self.pid() is not None:
            self.pids.add(self.pid())
        return result

    def start(self, *extra: str) -> int:
        result = self.run("start", *extra)
        assert result.returncode == 0, describe(result)
        pid = self.pid()
        assert pid is not None and process_alive(pid), describe(result)
        return pid

    def pid(self) -> int | None:
        return read_pid(str(self.pid_file))

    def log_text(self) -> str:
        try:
            return self.log.read_text()
        except FileNotFoundError:
            return ""

    def count(self, pattern: str, text: str | None = None) -> int:
        return len(re.findall(pattern, self.log_text() if text is None else text))

    def wait_for_log(self, pattern: str, count: int = 1, timeout: float = 10.0) -> str:
        wait_for(lambda: self.count(pattern) >= count, timeout,
                 f"{count} x {pattern!r} in {self.log}:\n{self.log_text()}")
        return self.log_text()

    def kill_leftovers(self) -> None:
        pid = self.pid()
        for p in self.pids | ({pid} if pid else set()):
            if process_alive(p) and looks_like_ours(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass


@pytest.fixture
def instance(tmp_path, rules_proxy):
    made: list[Instance] = []

    def make(label: str, config_text: str, log_file: bool = True) -> Instance:
        made.append(Instance(tmp_path, rules_proxy.url, label, config_text, log_file))
        return made[-1]

    yield make
    for inst in made:
        inst.kill_leftovers()


def pass_line(table: str) -> str:
    """A decision line of `table`: one per pass."""
    return rf"- {re.escape(table)}: reads "


# ---- start / stop / restart -------------------------------------------------------------


def test_start_detaches_writes_the_pid_file_and_stop_removes_it(instance, proxy_aws):
    create_table(proxy_aws.dynamodb, "daemon_orders")
    inst = instance("one", table_config("daemon_orders"))

    result = inst.run("start")
    assert result.returncode == 0, describe(result)
    pid = inst.pid()  # written before start returned
    assert pid and process_alive(pid)
    assert f"instance '{inst.name}' started (pid {pid}" in result.stdout
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    assert os.getsid(pid) != os.getsid(0)  # a session of its own
    text = inst.wait_for_log(pass_line("daemon_orders"))
    assert f"Daemon started: instance {inst.name}, pid {pid}" in text
    assert "Starting: check interval 1 s" in text

    started = time.monotonic()
    result = inst.run("stop")
    assert result.returncode == 0, describe(result)
    assert time.monotonic() - started < 5
    assert f"instance '{inst.name}' stopped (pid {pid})" in result.stdout
    assert not inst.pid_file.exists()
    assert not process_alive(pid)
    assert inst.log_text().rstrip().endswith("Stopped")

    again = inst.run("stop")  # not running: said, and not an error
    assert again.returncode == 0, describe(again)
    assert f"instance '{inst.name}' is not running" in again.stdout


def test_a_second_start_of_the_same_instance_is_refused(instance, proxy_aws):
    create_table(proxy_aws.dynamodb, "daemon_orders")
    inst = instance("twice", table_config("daemon_orders"))
    pid = inst.start()

    result = inst.run("start")
    assert result.returncode == 1, describe(result)
    assert result.stderr.splitlines() == [
        f"dynamic-dynamodb: error: instance '{inst.name}' is already running (pid {pid}, pid file {inst.pid_file})"]
    assert inst.pid() == pid and process_alive(pid)
    assert inst.run("stop").returncode == 0


def test_two_instances_run_side_by_side_and_restart_keeps_every_option(instance, proxy_aws):
    create_table(proxy_aws.dynamodb, "daemon_blue")
    create_table(proxy_aws.dynamodb, "daemon_green")
    blue = instance("blue", table_config("daemon_blue", interval=300))
    green = instance("green", table_config("daemon_green", interval=300))
    # --check-interval 1 on the command line beats the files' 300: restart must keep it
    blue_pid = blue.start("--check-interval", "1")
    green_pid = green.start("--check-interval", "1")
    assert blue_pid != green_pid
    blue.wait_for_log(pass_line("daemon_blue"), count=2)
    green.wait_for_log(pass_line("daemon_green"), count=2)
    assert "daemon_green" not in blue.log_text() and "daemon_blue" not in green.log_text()

    result = blue.run("restart", "--check-interval", "1")
    assert result.returncode == 0, describe(result)
    assert f"instance '{blue.name}' stopped (pid {blue_pid})" in result.stdout
    new_pid = blue.pid()
    assert new_pid and new_pid != blue_pid and process_alive(new_pid) and not process_alive(blue_pid)
    assert green.pid() == green_pid and process_alive(green_pid)

    # the restarted daemon still passes every second, not every 300 s as its file says
    def passes_since_restart() -> int:
        text = blue.log_text()
        marker = f"Daemon started: instance {blue.name}, pid {new_pid},"
        return blue.count(pass_line("daemon_blue"), text.split(marker, 1)[1]) if marker in text else 0

    wait_for(lambda: passes_since_restart() >= 3, 6, "3 passes of the restarted daemon")
    assert blue.log_text().count("Starting: check interval 1 s") == 2

    for inst in (blue, green):
        result = inst.run("stop")
        assert result.returncode == 0, describe(result)
        assert not inst.pid_file.exists()


def test_a_stale_pid_file_after_kill_9_does_not_block_start_or_stop(instance, proxy_aws):
    create_table(proxy_aws.dynamodb, "daemon_orders")
    inst = instance("stale", table_config("daemon_orders"))
    pid = inst.start()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not process_alive(pid), 5, "the daemon to die")
    assert inst.pid_file.exists() and inst.pid() == pid  # SIGKILL leaves it behind

    result = inst.run("start")
    assert result.returncode == 0, describe(result)
    assert f"removed stale pid file {inst.pid_file} (pid {pid} is not running)" in result.stderr
    new_pid = inst.pid()
    assert new_pid != pid and process_alive(new_pid)

    os.kill(new_pid, signal.SIGKILL)
    wait_for(lambda: not process_alive(new_pid), 5, "the daemon to die")
    result = inst.run("stop")
    assert result.returncode == 0, describe(result)
    assert "is not running" in result.stdout
    assert not inst.pid_file.exists()


def test_stop_during_the_sleep_ends_the_daemon_within_5_seconds(instance, proxy_aws):
    create_table(proxy_aws.dynamodb, "daemon_orders")
    inst = instance("sleepy", table_config("daemon_orders", interval=3600))
    pid = inst.start()
    inst.wait_for_log(pass_line("daemon_orders"))
    time.sleep(0.3)  # well inside the hour-long sleep

    started = time.monotonic()
    result = inst.run("stop")
    assert result.returncode == 0, describe(result)
    assert time.monotonic() - started < 5
    assert not process_alive(pid)
    text = inst.log_text()
    assert "Received SIGTERM, finishing the table in progress and stopping" in text
    assert text.rstrip().endswith("Stopped")
    assert inst.count(pass_line("daemon_orders"), text) == 1


def test_start_without_a_log_file_warns_that_the_daemon_logs_nothing(instance, proxy_aws):
    create_table(proxy_aws.dynamodb, "daemon_orders")
    inst = instance("quiet", table_config("daemon_orders"), log_file=False)
    result = inst.run("start")
    assert result.returncode == 0, describe(result)
    assert "no log file configured" in result.stderr and "/dev/null" in result.stderr
    inst.pids.add(inst.pid())
    assert inst.run("stop").returncode == 0


@pytest.mark.parametrize("case, status, message", [
    ("missing pid dir", 1, "pid-file-dir {root}/nowhere: no such directory"),
    ("log file in a missing dir", 2, "command line --log-file: cannot open {root}/nowhere/dd.log: No such file"),
    ("instance with a slash", 2, "--instance: expected a name usable in a file name, got 'a/b'"),
    ("no tables", 2, "nothing to scale"),
    ("invalid config", 2, "reads-upper-threshold"),
])
def test_start_errors_are_one_line_without_traceback(instance, proxy_aws, case, status, message):
    inst = instance("errors", table_config("daemon_orders"))
    args = inst.args("start")
    if case == "missing pid dir":
        args[args.index("--pid-file-dir") + 1] = str(inst.root / "nowhere")
    elif case == "log file in a missing dir":
        args[args.index("--log-file") + 1] = str(inst.root / "nowhere" / "dd.log")
    elif case == "instance with a slash":
        args[args.index("--instance") + 1] = "a/b"
    elif case == "no tables":
        inst.config.write_text("[global]\ncheck-interval: 1\n")
    elif case == "invalid config":
        inst.config.write_text(table_config("daemon_orders", upper="banana"))
    result = run_cli(args, endpoint_url=inst.endpoint)
    assert_no_traceback(result)
    assert result.returncode == status, describe(result)
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, describe(result)
    assert message.format(root=inst.root) in errors[0]
    assert not inst.pid_file.exists()


def no_file_growth() -> None:
    """In the started process: every write that grows a file fails (EFBIG), as on a full disk."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # inherited: the write fails instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_a_pid_file_that_cannot_be_written_is_removed_and_status_says_not_running(instance, proxy_aws):
    # a full disk left an empty pid file, which `status` reported as a dead daemon's (exit 1)
    inst = instance("fullpid", table_config("daemon_orders"))
    result = subprocess.run([sys.executable, "-m", "dynamic_dynamodb", *inst.args("start")],
                            env=cli_env(inst.endpoint, {"PYTHONDONTWRITEBYTECODE": "1"}), cwd=str(REPO),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                            preexec_fn=no_file_growth)
    assert_no_traceback(result)
    assert result.returncode == 1, describe(result)
    assert result.stderr.splitlines()[-1:] == [
        f"dynamic-dynamodb: error: cannot create pid file {inst.pid_file}: File too large"], describe(result)
    assert not inst.pid_file.exists(), describe(result)
    status = inst.run("status")
    assert status.returncode == 3, describe(status)


def test_status_of_an_empty_pid_file_is_not_running_and_leaves_it(instance):
    inst = instance("emptypid", table_config("daemon_orders"))
    inst.pid_file.write_text("")
    status = inst.run("status")
    assert status.returncode == 3, describe(status)
    assert status.stdout.splitlines() == [
        f"dynamic-dynamodb: instance '{inst.name}' is not running (its pid file {inst.pid_file} holds no pid; "
        f"start removes it)"], describe(status)
    assert inst.pid_file.exists()  # status reports, never removes


# ---- --daemon with a mode of its own -------------------------------------------------

OTHER_MODES = {
    "simulate": ["--simulate", str(REPO / "examples" / "traces" / "sample-week.csv")],
    "backtest": ["--backtest"],
    "status": ["--status"],
    "status-json": ["--status-json"],
    "run-once": ["--run-once"],
}
SHOWN = {"simulate": "--simulate TRACE.csv", "backtest": "--backtest", "status": "--status",
         "status-json": "--status-json", "run-once": "--run-once"}


@pytest.mark.parametrize("command", ["start", "restart", "foreground", "stop", "status"])
@pytest.mark.parametrize("mode", list(OTHER_MODES))
def test_a_daemon_command_with_another_mode_is_a_usage_error_and_nothing_runs(tmp_path, mode, command):
    """Neither is done: no daemon started (it would scale the table), none stopped, nothing read."""
    pid_dir = tmp_path / "run"
    pid_dir.mkdir()
    log, state_file = tmp_path / "dd.log", tmp_path / "dd.state.json"
    args = [*OTHER_MODES[mode], "--daemon", command, "-t", "my_table", "--instance", "both",
            "--pid-file-dir", pid_dir, "--log-file", log, "--state-file", state_file]
    if mode == "simulate":
        args += ["--simulate-output", tmp_path / "sim"]
    # nothing listens there: a daemon started by mistake reaches no AWS, real or fake
    result = run_cli(args, endpoint_url="http://127.0.0.1:9", timeout=60)
    pid = read_pid(str(pid_dir / "dynamic-dynamodb.both.pid"))
    if pid is not None and process_alive(pid) and looks_like_ours(pid):
        os.kill(pid, signal.SIGKILL)
    assert_no_traceback(result)
    assert result.returncode == 2, describe(result)
    shown = "foreground" if command == "foreground" else command
    assert result.stderr.splitlines() == [
        f"dynamic-dynamodb: error: give {SHOWN[mode]} or --daemon {shown}, not both"], describe(result)
    assert result.stdout == "", describe(result)
    assert pid is None and list(tmp_path.iterdir()) == [pid_dir], describe(result)


def test_stop_with_a_broken_config_and_status_is_the_same_usage_error(tmp_path):
    broken = tmp_path / "dd.conf"
    broken.write_text("[table: t]\nreads-upper-threshold: banana\n")
    result = run_cli(["-c", broken, "--daemon", "stop", "--status", "--pid-file-dir", tmp_path],
                     endpoint_url="http://127.0.0.1:9")
    assert_no_traceback(result)
    assert result.returncode == 2, describe(result)
    assert result.stderr.splitlines() == ["dynamic-dynamodb: error: give --status or --daemon stop, not both"]


def test_fg_is_named_as_foreground_in_the_usage_error(tmp_path):
    result = run_cli(["-t", "my_table", "--daemon", "fg", "--run-once", "--pid-file-dir", tmp_path],
                     endpoint_url="http://127.0.0.1:9")
    assert result.returncode == 2, describe(result)
    assert result.stderr.splitlines() == ["dynamic-dynamodb: error: give --run-once or --daemon foreground, not both"]


@pytest.mark.parametrize("args, shown", [
    (["--status", "--run-once"], "give --status or --run-once, not both"),
    (["--status-json", "--run-once"], "give --status-json or --run-once, not both"),
    (["--simulate", "trace.csv", "--status"], "give --simulate TRACE.csv or --status, not both"),
    (["--backtest", "--run-once"], "give --backtest or --run-once, not both"),
])
def test_two_one_shot_modes_together_are_a_usage_error_and_neither_runs(tmp_path, args, shown):
    result = run_cli(["-t", "my_table", *args, "--state-file", tmp_path / "dd.state.json"],
                     endpoint_url="http://127.0.0.1:9", cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode == 2, describe(result)
    assert result.stderr.splitlines() == [f"dynamic-dynamodb: error: {shown}"], describe(result)
    assert result.stdout == "" and list(tmp_path.iterdir()) == [], describe(result)


# ---- signals ----------------------------------------------------------------------------


def test_sighup_with_a_changed_threshold_changes_the_next_decision(instance, proxy_aws):
    ddb = proxy_aws.dynamodb
    create_table(ddb, "daemon_hup", read=10, write=10)
    put_consumption(proxy_aws.cloudwatch, "daemon_hup", read_per_second=5, write_per_second=2)  # 50 %, 20 %
    inst = instance("hup", table_config("daemon_hup", upper=90, lower=10))
    pid = inst.start()
    inst.wait_for_log(pass_line("daemon_hup"), count=2)
    assert provisioned(ddb, "daemon_hup") == (10, 10)  # 50 % is inside 10..90

    inst.config.write_text(table_config("daemon_hup", upper=40, lower=10))
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: provisioned(ddb, "daemon_hup")[0] > 10, 10, "reads to be increased")
    assert provisioned(ddb, "daemon_hup") == (15, 10)  # +50 % of 10
    text = inst.log_text()
    assert "Received SIGHUP" in text and "Configuration reloaded from" in text
    assert process_alive(pid) and inst.pid() == pid
    assert inst.run("stop").returncode == 0


def test_sighup_with_a_broken_config_keeps_running_on_the_old_one(instance, proxy_aws):
    create_table(proxy_aws.dynamodb, "daemon_orders")
    inst = instance("broken", table_config("daemon_orders"))
    pid = inst.start()
    inst.wait_for_log(pass_line("daemon_orders"))

    inst.config.write_text(table_config("daemon_orders", upper="banana"))
    os.kill(pid, signal.SIGHUP)
    text = inst.wait_for_log("Reload failed, keeping the running configuration")
    assert "reads-upper-threshold" in text.split("Reload failed")[1].splitlines()[0]
    passes = inst.count(pass_line("daemon_orders"))
    inst.wait_for_log(pass_line("daemon_orders"), count=passes + 1)  # still passing
    assert process_alive(pid)

    # a broken config file must not keep the daemon from being stopped
    result = inst.run("stop")
    assert result.returncode == 0, describe(result)
    assert "(--daemon stop goes ahead)" in result.stderr and "stopped" in result.stdout
    assert not process_alive(pid)


def test_restart_with_a_broken_config_leaves_the_running_daemon_alone(instance, proxy_aws):
    create_table(proxy_aws.dynamodb, "daemon_orders")
    inst = instance("norestart", table_config("daemon_orders"))
    pid = inst.start()
    inst.config.write_text(table_config("daemon_orders", upper="banana"))
    result = inst.run("restart")
    assert result.returncode == 2, describe(result)
    assert "reads-upper-threshold" in result.stderr
    assert inst.pid() == pid and process_alive(pid)
    assert inst.run("stop").returncode == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_foreground_exits_0_within_seconds_on_a_signal_mid_sleep(tmp_path, rules_proxy, proxy_aws, signum):
    create_table(proxy_aws.dynamodb, "daemon_orders")
    config = tmp_path / "dd.conf"
    config.write_text(table_config("daemon_orders", interval=3600))
    console = tmp_path / "console.txt"
    with open(console, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dynamic_dynamodb", "-c", str(config), "--daemon", "fg",
                                 "--pid-file-dir", str(tmp_path)],
                                env=cli_env(rules_proxy.url), cwd=str(REPO), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: re.search(pass_line("daemon_orders"), console.read_text()), 10, "the first pass")
        assert not list(tmp_path.glob("*.pid"))  # foreground: no pid file
        time.sleep(0.3)
        started = time.monotonic()
        proc.send_signal(signum)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = console.read_text()
    assert f"Received {signal.Signals(signum).name}" in text and text.rstrip().endswith("Stopped")
    assert "Traceback" not in text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_a_daemon_stuck_on_a_cloudwatch_that_never_answers_within_seconds(tmp_path, rules_proxy,
                                                                                        proxy_aws, signum):
    # without giving up the call in flight, the pass would go on for minutes (each batch's
    # timeouts, then its halves') and `--daemon stop` would give up after 30 s
    create_table(proxy_aws.dynamodb, "daemon_orders")
    config = tmp_path / "dd.conf"
    config.write_text(table_config("daemon_orders", interval=5))
    console = tmp_path / "console.txt"
    with SilentServer() as silent, open(console, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dynamic_dynamodb", "-c", str(config), "--daemon", "fg",
                                 "--pid-file-dir", str(tmp_path), "--state-file", str(tmp_path / "state.json")],
                                env=cli_env(rules_proxy.url, {"AWS_ENDPOINT_URL_CLOUDWATCH": silent.url}),
                                cwd=str(REPO), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: silent.connections, 15, "the pass to wait on CloudWatch")
            time.sleep(0.5)
            started = time.monotonic()
            proc.send_signal(signum)
            assert proc.wait(timeout=10) == 0
            assert time.monotonic() - started < 5  # the same bound as a signal mid-sleep
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = console.read_text()
    assert f"Received {signal.Signals(signum).name}" in text and text.rstrip().endswith("Stopped"), text
    assert "Traceback" not in text and "ERROR" not in text, text
    assert "Stopping: 1 table(s) left unchanged until the next run" in text, text
    assert provisioned(proxy_aws.dynamodb, "daemon_orders") == (5, 5)


# ---- logging ----------------------------------------------------------------------------


def test_the_log_file_receives_lines_after_a_logrotate_rename(instance, proxy_aws):
    create_table(proxy_aws.dynamodb, "daemon_orders")
    inst = instance("rotate", table_config("daemon_orders"))
    inst.start()
    inst.wait_for_log(pass_line("daemon_orders"))
    rotated = inst.log.with_name("dd.log.1")
    inst.log.rename(rotated)  # what logrotate's default "create" method does

    wait_for(lambda: inst.log.exists() and re.search(pass_line("daemon_orders"), inst.log.read_text()),
             10, "a pass line in the new log file")
    before = rotated.read_text()
    assert "Daemon started" in before and "Daemon started" not in inst.log_text()
    assert inst.run("stop").returncode == 0
    assert inst.log_text().rstrip().endswith("Stopped")
    assert rotated.read_text() == before  # nothing more went to the renamed file


def test_dry_run_lines_are_marked_and_secrets_never_logged(tmp_path, rules_proxy, proxy_aws):
    create_table(proxy_aws.dynamodb, "daemon_dry", read=10, write=10)
    put_consumption(proxy_aws.cloudwatch, "daemon_dry", read_per_second=9.5, write_per_second=2)
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY"
    config = tmp_path / "dd.conf"
    config.write_text(table_config("daemon_dry", extra=(
        f"aws-access-key-id: AKIAEXAMPLEKEYID\naws-secret-access-key-id: {secret}\n"
        "circuit-breaker-url: http://user:breakerpassword@127.0.0.1:9/breaker\n")))
    log = tmp_path / "dd.log"
    result = run_cli(["-c", str(config), "--run-once", "--dry-run", "--log-level", "debug",
                      "--log-file", str(log), "--pid-file-dir", str(tmp_path)], endpoint_url=rules_proxy.url)
    assert_no_traceback(result)
    text = log.read_text()
    assert re.search(r" - INFO - dryrun - daemon_dry: ", text), text
    assert all(" - dryrun - " in line for line in text.splitlines() if " - dynamic-dynamodb - " in line)
    for output in (text, result.stdout, result.stderr):
        assert secret not in output and "breakerpassword" not in output
    assert provisioned(proxy_aws.dynamodb, "daemon_dry") == (10, 10)


def test_log_config_file_takes_over_logging(tmp_path, rules_proxy, proxy_aws):
    create_table(proxy_aws.dynamodb, "daemon_orders")
    own_log = tmp_path / "own.log"
    log_config = tmp_path / "logging.ini"
    log_config.write_text(
        "[loggers]\nkeys=root,dd\n\n[handlers]\nkeys=file\n\n[formatters]\nkeys=plain\n\n"
        "[logger_root]\nlevel=WARNING\nhandlers=\n\n"
        "[logger_dd]\nlevel=INFO\nhandlers=file\nqualname=dynamic-dynamodb\npropagate=0\n\n"
        f"[handler_file]\nclass=FileHandler\nlevel=INFO\nformatter=plain\nargs=({str(own_log)!r},)\n\n"
        "[formatter_plain]\nformat=OWN %(levelname)s %(message)s\n")
    config = tmp_path / "dd.conf"
    config.write_text(table_config("daemon_orders"))
    result = run_cli(["-c", str(config), "--run-once", "--log-config-file", str(log_config),
                      "--pid-file-dir", str(tmp_path)], endpoint_url=rules_proxy.url)
    assert result.returncode == 0, describe(result)
    assert re.search(r"^OWN INFO daemon_orders: reads ", own_log.read_text(), re.M), own_log.read_text()


def test_log_level_warning_drops_the_info_lines(tmp_path, rules_proxy, proxy_aws):
    create_table(proxy_aws.dynamodb, "daemon_orders")
    config = tmp_path / "dd.conf"
    config.write_text(table_config("daemon_orders"))
    log = tmp_path / "dd.log"
    result = run_cli(["-c", str(config), "--run-once", "--log-level", "warning", "--log-file", str(log),
                      "--pid-file-dir", str(tmp_path)], endpoint_url=rules_proxy.url)
    assert result.returncode == 0, describe(result)
    assert " - INFO - " not in log.read_text() and " - INFO - " not in result.stderr


# ---- process safety and secrets ---------------------------------------------------------

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYPSSECRET"
KEY_ID = "AKIAPSSECRETKEYID"


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_secrets_on_the_command_line_are_hidden_from_ps(tmp_path, rules_proxy, proxy_aws):
    create_table(proxy_aws.dynamodb, "daemon_orders")
    config = tmp_path / "dd.conf"
    config.write_text(table_config("daemon_orders"))
    console = tmp_path / "console.txt"
    with open(console, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dynamic_dynamodb", "-c", str(config), "--daemon", "fg",
                                 "--aws-access-key-id", KEY_ID, f"--aws-secret-access-key={SECRET}",
                                 "--state-file", str(tmp_path / "state.json")],
                                env=cli_env(rules_proxy.url), cwd=str(REPO), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: re.search(pass_line("daemon_orders"), console.read_text()), 15, "the first pass")
        shown = cmdline(proc.pid)
        assert SECRET not in shown and KEY_ID not in shown, shown
        assert shown.startswith("dynamic-dynamodb -c ") and "--aws-secret-access-key=***" in shown
        assert "--aws-access-key-id ***" in shown
        ps = subprocess.run(["ps", "-o", "args=", "-p", str(proc.pid)], capture_output=True, text=True)
        assert ps.returncode != 0 or (SECRET not in ps.stdout and "dynamic-dynamodb" in ps.stdout)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = console.read_text()
    assert SECRET not in text and KEY_ID not in text and "Traceback" not in text


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_a_detached_daemon_names_its_instance_and_hides_its_secrets(instance, proxy_aws):
    create_table(proxy_aws.dynamodb, "daemon_orders")
    inst = instance("titled", table_config("daemon_orders"))
    pid = inst.start("--aws-access-key-id", KEY_ID, "--aws-secret-access-key", SECRET)
    shown = cmdline(pid)
    assert shown.startswith(f"dynamic-dynamodb: instance {inst.name}, pid file {inst.pid_file} -- "), shown
    assert SECRET not in shown and KEY_ID not in shown
    inst.wait_for_log(pass_line("daemon_orders"))
    assert inst.run("stop").returncode == 0 and not process_alive(pid)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_stop_spares_look_alikes_and_other_instances(instance, proxy_aws, tmp_path):
    create_table(proxy_aws.dynamodb, "daemon_orders")
    blue = instance("blue", table_config("daemon_orders"))
    green = instance("green", table_config("daemon_orders"))
    green_pid = green.start()
    green.wait_for_log(pass_line("daemon_orders"))
    named = tmp_path / "dynamic-dynamodb.log"
    named.symlink_to(green.log)
    tail = subprocess.Popen(["tail", "-f", str(named)], stdout=subprocess.DEVNULL)  # names dynamic-dynamodb
    try:
        for stranger in (tail.pid, green_pid):  # blue's pid file, pointing at a look-alike or at green
            blue.pid_file.write_text(f"{stranger}\n")
            result = blue.run("stop")
            assert result.returncode == 0, describe(result)
            assert "is not running" in result.stdout and "removed stale pid file" in result.stderr
            assert "another program now" in result.stderr
            assert process_alive(stranger) and tail.poll() is None
        # and a start of blue is not blocked by it either
        blue.pid_file.write_text(f"{tail.pid}\n")
        blue_pid = blue.start()
        assert blue_pid != tail.pid and process_alive(green_pid)
        assert blue.run("stop").returncode == 0
        assert green.pid() == green_pid and process_alive(green_pid)
    finally:
        tail.kill()
        tail.wait()
    assert green.run("stop").returncode == 0 and not process_alive(green_pid)
