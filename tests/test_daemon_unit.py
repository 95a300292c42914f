"""Daemon mode without AWS: pid files, stop, the start handshake, the pass schedule,
logging, and the shipped supervisord and systemd files."""
from __future__ import annotations

import configparser
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from fakes import ManualClock
from support.processes import looks_like_ours

from dynamic_dynamodb import daemon, logsetup
from dynamic_dynamodb.loop import PassReport, run_forever
from dynamic_dynamodb.settings import ConfigError, Settings

REPO = Path(__file__).resolve().parents[1]


def spawn_sleeper(ignore_term: bool = False, ours: bool = True, pid_file: Path | None = None,
                  name: str = "x") -> subprocess.Popen:
    """A child that sleeps; `ours`: its command line names dynamic-dynamodb; with `pid_file`
    it also takes the process title of that instance's daemon, as daemon.start gives it."""
    code = "# dynamic-dynamodb stand-in\n" if ours else ""
    code += "import signal, time\n"
    if pid_file is not None:
        title = daemon.instance_title(str(pid_file), name, ["--daemon", "start"])
        code += f"import setproctitle; setproctitle.setproctitle({title!r})\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('ready', flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture
def sleeper():
    procs: list[subprocess.Popen] = []

    def make(ignore_term: bool = False, ours: bool = True, pid_file: Path | None = None,
             name: str = "x") -> subprocess.Popen:
        procs.append(spawn_sleeper(ignore_term, ours, pid_file, name))
        return procs[-1]

    yield make
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)


def wait_until_exited(pid: int, timeout: float = 5) -> None:
    """Until `pid` (an unreaped child of ours) is a zombie."""
    deadline = time.monotonic() + timeout
    while daemon.process_alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} did not exit"
        time.sleep(0.02)


# ---- pid files ------------------------------------------------------------------------


def test_pid_file_is_named_after_the_instance():
    assert daemon.pid_file_path("/var/run", "blue") == "/var/run/dynamic-dynamodb.blue.pid"
    assert daemon.pid_file_path("/tmp", "default") == "/tmp/dynamic-dynamodb.default.pid"


@pytest.mark.parametrize("text, pid", [
    ("1234\n", 1234),
    ("  42  ", 42),
    ("", None),
    ("garbage\n", None),
    ("-5\n", None),
    ("0\n", None),
], ids=["a pid and a newline", "spaces around", "empty", "garbage", "negative", "zero"])
def test_read_pid_returns_the_pid_or_none(tmp_path, text, pid):
    path = tmp_path / "x.pid"
    path.write_text(text)
    assert daemon.read_pid(str(path)) == pid


def test_read_pid_of_a_missing_file_is_none(tmp_path):
    assert daemon.read_pid(str(tmp_path / "missing.pid")) is None


def test_this_process_is_alive():
    assert daemon.process_alive(os.getpid())


def test_an_exited_process_is_not_alive_even_unreaped(sleeper):
    proc = sleeper()
    proc.kill()
    wait_until_exited(proc.pid)  # a zombie: os.kill(pid, 0) alone would say it exists
    assert not daemon.process_alive(proc.pid)
    proc.wait()
    assert not daemon.process_alive(proc.pid)


def test_a_pid_reused_by_another_program_is_stale_and_never_signalled(tmp_path, sleeper, capsys):
    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc")
    stranger = sleeper(ours=False)
    assert daemon.process_alive(stranger.pid) and not looks_like_ours(stranger.pid)
    path = tmp_path / "dynamic-dynamodb.x.pid"
    path.write_text(f"{stranger.pid}\n")
    assert daemon.stop(str(path), "x", timeout=1) == 0
    assert stranger.poll() is None  # not signalled
    assert not path.exists()
    assert f"(pid {stranger.pid} is another program now)" in capsys.readouterr().err


def test_running_pid_removes_a_stale_pid_file(tmp_path, sleeper, capsys):
    proc = sleeper()
    proc.kill()
    proc.wait()
    path = tmp_path / "dynamic-dynamodb.x.pid"
    path.write_text(f"{proc.pid}\n")
    assert daemon.running_pid(str(path)) is None
    assert not path.exists()
    assert f"removed stale pid file {path} (pid {proc.pid} is not running)" in capsys.readouterr().err


def test_running_pid_finds_a_live_process(tmp_path, sleeper):
    path = tmp_path / "dynamic-dynamodb.x.pid"
    proc = sleeper(pid_file=path)
    path.write_text(f"{proc.pid}\n")
    assert daemon.running_pid(str(path)) == proc.pid
    assert path.exists()


@pytest.mark.parametrize("content", ["1\n", "garbage\n"], ids=["init's pid", "no pid"])
def test_a_pid_file_naming_init_or_nothing_is_stale(tmp_path, content):
    path = tmp_path / "dynamic-dynamodb.x.pid"
    path.write_text(content)
    assert daemon.running_pid(str(path)) is None
    assert not path.exists()


@pytest.mark.parametrize("content", [str(2**31), "99999999999999999999999", "-1", "", "12abc", "\x00\xff\xfe",
                                     "pid: 1234"],
                         ids=["2^31", "huge", "negative", "empty", "text after digits", "binary", "text"])
def test_a_pid_file_holding_nonsense_is_stale_with_a_warning(tmp_path, capsys, content):
    path = tmp_path / "dynamic-dynamodb.x.pid"
    path.write_bytes(content.encode("latin-1"))
    assert daemon.stop(str(path), "x", timeout=1) == 0
    assert not path.exists()
    err = capsys.readouterr().err
    assert err.strip() == f"dynamic-dynamodb: warning: removed stale pid file {path} (no daemon's pid in it)"


def _needs_proc() -> None:
    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc")


def test_a_look_alike_whose_command_line_names_dynamic_dynamodb_is_never_signalled(tmp_path, capsys):
    _needs_proc()
    path = tmp_path / "dynamic-dynamodb.x.pid"
    # a `sleep` whose whole argv says dynamic-dynamodb, even this instance's pid file
    look_alike = subprocess.Popen(["bash", "-c", f'exec -a "dynamic-dynamodb --daemon start --instance x '
                                   f'--pid-file-dir {tmp_path} tail -f {path}" sleep 60'])
    try:
        wait_for(lambda: b"sleep" not in Path(f"/proc/{look_alike.pid}/cmdline").read_bytes()
                 and b"dynamic-dynamodb" in Path(f"/proc/{look_alike.pid}/cmdline").read_bytes())
        path.write_text(f"{look_alike.pid}\n")
        assert daemon.running_pid(str(path)) is None
        assert look_alike.poll() is None and not path.exists()
        assert f"(pid {look_alike.pid} is another program now)" in capsys.readouterr().err
        path.write_text(f"{look_alike.pid}\n")
        assert daemon.stop(str(path), "x", timeout=1) == 0
        time.sleep(0.2)
        assert look_alike.poll() is None  # never signalled
    finally:
        look_alike.kill()
        look_alike.wait()


@pytest.mark.parametrize("args, ours", [
    (["--daemon", "start", "--instance", "x", "--pid-file-dir", "{dir}"], True),
    (["-c", "/etc/dd.conf", "--daemon=restart", "--instance=x", "--pid-file-dir={dir}"], True),
    (["--daemon", "start", "--instance", "y", "--pid-file-dir", "{dir}"], False),  # another instance
    (["--daemon", "start", "--instance", "x", "--pid-file-dir", "run"], False),  # relative: cannot tell
    (["--daemon", "stop", "--instance", "x", "--pid-file-dir", "{dir}"], False),  # a stop command
    (["--instance", "x", "--pid-file-dir", "{dir}"], False),  # the foreground loop writes no pid file
], ids=["start", "restart with =", "another instance", "relative dir", "stop", "foreground"])
def test_a_daemon_of_an_earlier_release_is_recognised_by_its_arguments(tmp_path, args, ours):
    _needs_proc()
    path = tmp_path / "dynamic-dynamodb.x.pid"
    argv = ["dynamic-dynamodb", *(a.replace("{dir}", str(tmp_path)) for a in args)]
    code = "import time; print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        path.write_text(f"{proc.pid}\n")
        assert (daemon.not_this_instance(proc.pid, str(path)) is None) is ours
    finally:
        proc.kill()
        proc.wait()


def test_another_instances_daemon_is_not_this_instance(tmp_path, sleeper, capsys):
    _needs_proc()
    other = sleeper(pid_file=tmp_path / "dynamic-dynamodb.y.pid", name="y")
    path = tmp_path / "dynamic-dynamodb.x.pid"
    path.write_text(f"{other.pid}\n")
    assert daemon.stop(str(path), "x", timeout=1) == 0
    time.sleep(0.2)
    assert other.poll() is None
    assert "is another program now" in capsys.readouterr().err
    # nor one whose pid file name merely starts like this one's
    longer = sleeper(pid_file=tmp_path / "dynamic-dynamodb.x.pid.pid", name="x.pid")
    path.write_text(f"{longer.pid}\n")
    assert daemon.running_pid(str(path)) is None and longer.poll() is None


def test_a_process_started_after_the_pid_file_was_written_is_not_its_daemon(tmp_path, sleeper, capsys):
    _needs_proc()
    path = tmp_path / "dynamic-dynamodb.x.pid"
    proc = sleeper(pid_file=path)  # this instance's title, as a reused pid could have by chance
    path.write_text(f"{proc.pid}\n")
    assert daemon.not_this_instance(proc.pid, str(path)) is None
    written = time.time() - 60
    os.utime(path, (written, written))  # the pid file is older than the process
    assert daemon.running_pid(str(path)) is None
    assert proc.poll() is None and not path.exists()
    assert "started after the pid file was written" in capsys.readouterr().err


def test_the_detached_daemon_is_titled_with_its_instance_and_pid_file(fake_daemon):
    _needs_proc()
    assert fake_daemon("start").returncode == 0
    pid = daemon.read_pid(str(fake_daemon.pid_file))
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    assert command.startswith(f"dynamic-dynamodb: instance {fake_daemon.pid_file.name.split('.')[1]}, "
                              f"pid file {fake_daemon.pid_file}")
    assert daemon.not_this_instance(pid, str(fake_daemon.pid_file)) is None
    assert fake_daemon("stop").returncode == 0 and not daemon.process_alive(pid)


# ---- stop -----------------------------------------------------------------------------


def test_stop_without_pid_file_says_not_running_and_succeeds(tmp_path, capsys):
    assert daemon.stop(str(tmp_path / "dynamic-dynamodb.x.pid"), "x") == 0
    assert "instance 'x' is not running" in capsys.readouterr().out


def test_stop_sends_sigterm_waits_and_removes_the_pid_file(tmp_path, sleeper, capsys):
    path = tmp_path / "dynamic-dynamodb.x.pid"
    proc = sleeper(pid_file=path)
    path.write_text(f"{proc.pid}\n")
    assert daemon.stop(str(path), "x", timeout=5) == 0
    assert proc.wait(timeout=5) == -signal.SIGTERM
    assert not path.exists()  # the sleeper could not remove it: stop did
    assert f"instance 'x' stopped (pid {proc.pid})" in capsys.readouterr().out


def test_stop_gives_up_after_its_timeout(tmp_path, sleeper):
    path = tmp_path / "dynamic-dynamodb.x.pid"
    proc = sleeper(ignore_term=True, pid_file=path)
    path.write_text(f"{proc.pid}\n")
    started = time.monotonic()
    with pytest.raises(daemon.DaemonError, match=r"still running 0.3 s after SIGTERM") as error:
        daemon.stop(str(path), "x", timeout=0.3)
    assert error.value.status == 1
    assert time.monotonic() - started < 3
    assert proc.poll() is None and path.exists()


# ---- control: the checks before any fork ----------------------------------------------


def settings(tmp_path: Path, **kw) -> Settings:
    return Settings(pid_file_dir=str(tmp_path), instance="unit-" + uuid.uuid4().hex[:8], **kw)


@pytest.mark.parametrize("instance", ["a/b", "..", ""], ids=["a slash", "dot-dot", "empty"])
def test_an_instance_name_unusable_in_a_file_name_is_a_usage_error(tmp_path, capsys, instance):
    s = replace(settings(tmp_path, daemon="start"), instance=instance)
    assert daemon.control(s, run=lambda _s: 0) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--instance" in err


def test_start_without_tables_is_a_usage_error(tmp_path, capsys):
    assert daemon.control(settings(tmp_path, daemon="start"), run=lambda _s: 0) == 2
    assert "nothing to scale" in capsys.readouterr().err


def test_stop_of_an_instance_that_is_not_running_exits_0(tmp_path, capsys):
    assert daemon.control(settings(tmp_path, daemon="stop"), run=lambda _s: 0) == 0
    assert "is not running" in capsys.readouterr().out


def test_relative_paths_become_absolute_for_the_daemon_and_its_reload(tmp_path):
    s = Settings(argv=("-c", "dd.conf", "--daemon", "start"), config_file="dd.conf", log_file="logs/dd.log",
                 pid_file_dir="run", log_config_file="/etc/log.conf")
    out = daemon.absolute_paths(s, cwd="/srv/app")
    assert (out.config_file, out.log_file, out.pid_file_dir) == ("/srv/app/dd.conf", "/srv/app/logs/dd.log",
                                                                "/srv/app/run")
    assert out.log_config_file == "/etc/log.conf"
    assert out.argv == ("-c", "dd.conf", "--daemon", "start", "--config", "/srv/app/dd.conf",
                        "--log-file", "/srv/app/logs/dd.log", "--pid-file-dir", "/srv/app/run")
    absolute = Settings(config_file="/etc/dd.conf")
    assert daemon.absolute_paths(absolute, cwd="/srv") is absolute


def test_the_reload_of_absolute_paths_parses_to_the_same_settings(tmp_path, monkeypatch):
    from dynamic_dynamodb import config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "dd.conf").write_text("[table: orders]\nreads-upper-threshold: 80\n")
    s = config.load_settings(["-c", "dd.conf", "--log-file", "dd.log", "--daemon", "start"])
    fixed = daemon.absolute_paths(s)
    monkeypatch.chdir("/")
    again = config.load_settings(list(fixed.argv))
    assert again.config_file == str(tmp_path / "dd.conf") == fixed.config_file
    assert again.log_file == str(tmp_path / "dd.log")
    assert again.tables[0].rules == s.tables[0].rules


# ---- start: the fork and the handshake, with a body that is not the scaler ------------

FAKE_DAEMON = textwrap.dedent("""\
    import os, signal, sys, threading
    from dynamic_dynamodb import daemon

    pid_dir, instance, marker, mode = sys.argv[1:5]

    if mode == "bad-config-slow-release":  # the pid file goes slowly, as on a loaded machine
        import time
        from daemon.pidfile import TimeoutPIDLockFile
        release = TimeoutPIDLockFile.release
        def slow_release(self, *args, **kwargs):
            time.sleep(0.5)
            return release(self, *args, **kwargs)
        TimeoutPIDLockFile.release = slow_release

    def prepare():
        if mode.startswith("bad-config"):
            raise ValueError("log-file /nowhere/x.log: cannot open")

    def run():
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with open(marker, "a") as fh:
            fh.write(f"{os.getpid()} {os.getcwd()} {oct(os.umask(0o022))}\\n")
        stop.wait(60)
        with open(marker, "a") as fh:
            fh.write("stopped\\n")
        return 0

    path = daemon.pid_file_path(pid_dir, instance)
    try:
        if mode == "stop":
            sys.exit(daemon.stop(path, instance))
        sys.exit(daemon.start(path, run, prepare, instance))
    except daemon.DaemonError as e:
        print(f"dynamic-dynamodb: error: {e}", file=sys.stderr)
        sys.exit(e.status)
""")


@pytest.fixture
def fake_daemon(tmp_path):
    script = tmp_path / "dynamic_dynamodb_fake_daemon.py"  # the name marks the daemon as ours
    script.write_text(FAKE_DAEMON)
    instance = "fake-" + uuid.uuid4().hex[:8]
    marker = tmp_path / "marker"
    env = dict(os.environ, PYTHONPATH=str(REPO))

    def run(mode: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(script), str(tmp_path), instance, str(marker), mode],
                              capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)

    run.pid_file = tmp_path / f"dynamic-dynamodb.{instance}.pid"
    run.marker = marker
    yield run
    pid = daemon.read_pid(str(run.pid_file))
    if pid and daemon.process_alive(pid) and looks_like_ours(pid):
        os.kill(pid, signal.SIGKILL)


def wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_start_returns_once_the_detached_daemon_holds_its_pid_file(fake_daemon):
    result = fake_daemon("start")
    assert result.returncode == 0, result.stderr
    pid = daemon.read_pid(str(fake_daemon.pid_file))  # there as soon as start returned
    assert pid and pid != os.getpid() and daemon.process_alive(pid)
    assert f"started (pid {pid}" in result.stdout
    line = wait_for(lambda: fake_daemon.marker.exists() and fake_daemon.marker.read_text())
    assert line.split() == [str(pid), "/", "0o22"]  # working directory / and umask 022

    again = fake_daemon("start")
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"dynamic-dynamodb: error: instance '{fake_daemon.pid_file.name.split('.')[1]}' is already running "
        f"(pid {pid}, pid file {fake_daemon.pid_file})"]

    stopped = fake_daemon("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not fake_daemon.pid_file.exists()
    assert not daemon.process_alive(pid)
    assert fake_daemon.marker.read_text().endswith("stopped\n")  # its own SIGTERM handler ran


@pytest.mark.parametrize("mode", ["bad-config", "bad-config-slow-release"])
def test_a_config_error_in_the_daemon_reaches_the_start_command(fake_daemon, mode):
    # the error used to be reported before the pid file was removed: `start` could return
    # (exit 2) with the pid file still there (a flaky e2e test under load)
    result = fake_daemon(mode)
    assert result.returncode == 2
    assert result.stderr.strip() == "dynamic-dynamodb: error: log-file /nowhere/x.log: cannot open"
    assert not fake_daemon.pid_file.exists()  # the daemon released it before exiting


# ---- the schedule of passes -----------------------------------------------------------


def test_passes_start_on_a_fixed_period_without_drift():
    stop = threading.Event()
    clock = ManualClock(stop)
    starts: list[float] = []

    def one_pass(now):
        assert now == clock.wall()
        starts.append(clock.monotonic())
        clock.advance(0.08)  # work time must not add to the period
        if len(starts) == 6:
            stop.set()
        return PassReport()

    run_forever(one_pass, lambda: 0.2, stop, **clock.kwargs())
    assert starts == pytest.approx([0.2 * k for k in range(6)])


def test_a_long_pass_is_never_overlapped_and_the_next_starts_at_once(caplog):
    stop = threading.Event()
    clock = ManualClock(stop)
    running = []
    overlaps = []
    starts: list[float] = []

    def slow_pass(_now):
        overlaps.append(len(running))
        running.append(1)
        starts.append(clock.monotonic())
        clock.advance(0.25)  # longer than the 0.1 s interval
        running.pop()
        if len(starts) == 3:
            stop.set()
        return PassReport()

    with caplog.at_level(logging.WARNING, logger="dynamic-dynamodb"):
        run_forever(slow_pass, lambda: 0.1, stop, **clock.kwargs())
    assert overlaps == [0, 0, 0]
    assert starts == pytest.approx([0.0, 0.25, 0.5]) and clock.waits == [0.0, 0.0, 0.0]
    assert "longer than the check interval" in caplog.text


def test_stop_ends_the_sleep_between_passes_at_once():
    # the one test of the real sleep: stop.wait returns as soon as stop is set
    stop = threading.Event()
    passes = []
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    run_forever(lambda now: passes.append(now) or PassReport(), lambda: 60, stop)
    assert time.monotonic() - started < 2
    assert len(passes) == 1


def test_an_error_in_a_pass_does_not_end_the_loop(caplog):
    stop = threading.Event()
    clock = ManualClock(stop)
    calls = []

    def flaky(_now):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        stop.set()
        return PassReport()

    run_forever(flaky, lambda: 60, stop, **clock.kwargs())
    assert len(calls) == 2 and clock.monotonic() == 60
    assert "Unexpected error in the pass" in caplog.text


def test_before_pass_runs_before_every_pass():
    stop = threading.Event()
    clock = ManualClock(stop)
    events = []

    def one_pass(_now):
        events.append("pass")
        if events.count("pass") == 2:
            stop.set()
        return PassReport()

    run_forever(one_pass, lambda: 60, stop, before_pass=lambda: events.append("before"), **clock.kwargs())
    assert events == ["before", "pass", "before", "pass"]


# ---- logging --------------------------------------------------------------------------


@pytest.fixture
def clean_logger():
    logger = logging.getLogger(logsetup.LOGGER)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    logger.handlers = []
    yield logger
    for handler in logger.handlers:
        handler.close()
    logger.handlers, logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_the_log_file_is_reopened_after_a_logrotate_rename(tmp_path, clean_logger):
    log_file = tmp_path / "dd.log"
    logsetup.setup_logging(Settings(log_file=str(log_file)), console=False)
    clean_logger.info("before rotation")
    log_file.rename(tmp_path / "dd.log.1")
    clean_logger.info("after rotation")
    assert "before rotation" in (tmp_path / "dd.log.1").read_text()
    assert "after rotation" in log_file.read_text()
    assert "after rotation" not in (tmp_path / "dd.log.1").read_text()


def test_a_log_file_that_cannot_be_opened_keeps_the_running_handlers(tmp_path, clean_logger):
    log_file = tmp_path / "dd.log"
    logsetup.setup_logging(Settings(log_file=str(log_file)), console=False)
    with pytest.raises(ConfigError, match="cannot open"):
        logsetup.setup_logging(Settings(log_file=str(tmp_path / "missing" / "dd.log")), console=False)
    clean_logger.error("Reload failed, keeping the running configuration")
    assert "Reload failed" in log_file.read_text()


HANDLER = "[loggers]\nkeys=root\n[handlers]\nkeys=h\n[formatters]\nkeys=\n[logger_root]\nhandlers=h\n"


@pytest.mark.parametrize("text", [
    "garbage\n",
    HANDLER + "[handler_h]\nclass=NoSuchHandler\nargs=()\n",
    HANDLER + "[handler_h]\nclass=StreamHandler\nargs=(no_such_name,)\n",
], ids=["no sections (RuntimeError)", "an unknown handler class (ImportError)", "bad args (NameError)"])
def test_a_broken_log_config_file_is_a_one_line_config_error(tmp_path, clean_logger, text):
    path = tmp_path / "logging.ini"
    path.write_text(text)
    root = logging.getLogger()
    saved = list(root.handlers)
    try:
        with pytest.raises(ConfigError, match=r"^log-config-file .*logging.ini: cannot configure logging: ") as e:
            logsetup.setup_logging(Settings(log_config_file=str(path)))
    finally:
        root.handlers = saved
    assert "\n" not in str(e.value)


def test_a_log_config_file_with_a_byte_order_mark_configures_logging(tmp_path, clean_logger):
    log_file = tmp_path / "dd.log"
    text = ("[loggers]\nkeys=root,dd\n[handlers]\nkeys=file\n[formatters]\nkeys=\n[logger_root]\nhandlers=\n"
            "[logger_dd]\nlevel=INFO\nhandlers=file\nqualname=dynamic-dynamodb\npropagate=0\n"
            f"[handler_file]\nclass=FileHandler\nargs=({str(log_file)!r},)\n")
    path = tmp_path / "logging.ini"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())  # as Windows Notepad saves UTF-8
    logsetup.setup_logging(Settings(log_config_file=str(path)))
    clean_logger.info("configured from a file with a BOM")
    assert "configured from a file with a BOM" in log_file.read_text()


def test_dry_run_lines_carry_the_dryrun_marker(tmp_path, clean_logger):
    log_file = tmp_path / "dd.log"
    logsetup.setup_logging(Settings(log_file=str(log_file), dry_run=True), console=False)
    clean_logger.info("orders: would set 10 reads")
    assert " - dynamic-dynamodb - INFO - dryrun - orders: would set 10 reads" in log_file.read_text()


def test_log_level_filters_lines(tmp_path, clean_logger):
    log_file = tmp_path / "dd.log"
    logsetup.setup_logging(Settings(log_file=str(log_file), log_level="warning"), console=False)
    clean_logger.info("quiet")
    clean_logger.warning("loud")
    text = log_file.read_text()
    assert "loud" in text and "quiet" not in text


# ---- the shipped supervisord and systemd files ----------------------------------------


def test_the_supervisord_example_runs_the_loop_attached_and_respawns_it():
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",))
    parser.read(REPO / "examples" / "supervisord.conf")
    program = parser["program:dynamic-dynamodb"]
    command = program["command"].split()
    assert command[0].endswith("dynamic-dynamodb")
    assert command[command.index("--daemon") + 1] in ("foreground", "fg")
    assert "--config" in command
    assert program["autorestart"] == "true"
    assert program["stopsignal"] == "TERM"
    assert int(program["stopwaitsecs"]) >= 30


def test_the_systemd_unit_runs_the_loop_attached_reloads_with_hup_and_restarts_on_failure():
    parser = configparser.RawConfigParser(strict=False, comment_prefixes=("#",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(REPO / "examples" / "dynamic-dynamodb.service")
    service = parser["Service"]
    assert service["Type"] == "notify"  # READY=1 and WATCHDOG=1 come from sdnotify.py
    assert int(service["WatchdogSec"]) >= 60
    # DynamicUser=yes has no home: no ~/.aws profile; the advice is LoadCredential or an environment file
    assert service["DynamicUser"] == "yes" and "AWS_PROFILE" not in service.get("Environment", "")
    text = (REPO / "examples" / "dynamic-dynamodb.service").read_text()
    assert "LoadCredential=" in text and "EnvironmentFile=" in text
    exec_start = service["ExecStart"].split()
    assert exec_start[exec_start.index("--daemon") + 1] in ("foreground", "fg")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # a config error is not retried
    assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_the_service_docs_show_the_shipped_files_and_every_daemon_command():
    text = (REPO / "docs" / "service.rst").read_text()
    for needle in ("literalinclude:: ../examples/supervisord.conf",
                   "literalinclude:: ../examples/dynamic-dynamodb.service",
                   "--daemon start", "--daemon stop", "--daemon restart", "--daemon status", "--daemon foreground",
                   "SIGTERM", "SIGHUP", "SIGINT", "logrotate", "--pid-file-dir", "--instance"):
        assert needle in text, needle
