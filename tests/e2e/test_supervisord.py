"""The shipped examples/supervisord.conf, run by the venv's supervisord: the program runs
attached (`--daemon foreground`), is respawned after `kill -9`, re-reads its config on
`supervisorctl signal HUP`, and `supervisorctl stop` ends it cleanly (SIGTERM, exit 0).

Only what must differ on a test machine is changed in the example's program section:
the executable (this Python, `-m dynamic_dynamodb`), file paths (into tmp_path) and
startsecs (1 instead of 5, for speed).
"""
from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from support.cli import REPO, cli_env
from support.metrics import create_table
from support.processes import looks_like_ours
from support.wait import wait_for

from dynamic_dynamodb.daemon import process_alive

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
SUPERVISORD = BIN / "supervisord"
SUPERVISORCTL = BIN / "supervisorctl"
PROGRAM = "dynamic-dynamodb"

SUPERVISED = 15.0  # seconds: supervisord's own polling makes its state changes slow
EXAMPLE = REPO / "examples" / "supervisord.conf"


def example_program() -> dict[str, str]:
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",))
    parser.read(EXAMPLE)
    return dict(parser[f"program:{PROGRAM}"])


class Supervisor:
    """supervisord in the foreground (nodaemon) with the example's program section."""

    def __init__(self, root: Path, endpoint: str, config_file: Path) -> None:
        self.root = root
        sock_dir = root if len(str(root / "s.sock")) < 100 else Path(tempfile.mkdtemp(prefix="sv-"))
        self.sock = sock_dir / "s.sock"
        self.conf = root / "supervisord.conf"
        self.program_log = root / "program.log"
        self.supervisord_log = root / "supervisord.log"
        program = example_program()
        command = shlex.split(program["command"])
        assert command[command.index("--daemon") + 1] == "foreground"
        command[command.index("--config") + 1] = str(config_file)
        command = [sys.executable, "-m", "dynamic_dynamodb", *command[1:], "--pid-file-dir", str(root)]
        program.update(command=shlex.join(command), stdout_logfile=str(self.program_log), startsecs="1",
                       directory=str(REPO))
        lines = [
            "[unix_http_server]", f"file={self.sock}", "",
            "[supervisord]", "nodaemon=true", f"logfile={self.supervisord_log}",
            f"pidfile={root / 'supervisord.pid'}", f"childlogdir={root}", "loglevel=info", "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
            "[supervisorctl]", f"serverurl=unix://{self.sock}", "",
            f"[program:{PROGRAM}]", *(f"{k}={v}" for k, v in program.items()), "",
        ]
        self.conf.write_text("\n".join(lines))
        self.env = cli_env(endpoint)
        self.proc: subprocess.Popen | None = None

    def start(self) -> Supervisor:
        self.proc = subprocess.Popen([str(SUPERVISORD), "-c", str(self.conf)], env=self.env, cwd=str(self.root),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.root / "supervisord.stderr", "w"))
        return self

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(SUPERVISORCTL), "-c", str(self.conf), *args], env=self.env,
                              capture_output=True, text=True, timeout=30)

    def status(self) -> str:
        return self.ctl("status", PROGRAM).stdout

    def running_pid(self) -> int | None:
        match = re.search(r"RUNNING\s+pid (\d+)", self.status())
        return int(match.group(1)) if match else None

    def program_text(self) -> str:
        try:
            return self.program_log.read_text()
        except FileNotFoundError:
            return ""

    def shutdown(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.ctl("shutdown")
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.sock.parent != self.root:
            shutil.rmtree(self.sock.parent, ignore_errors=True)


@pytest.fixture
def supervisor(tmp_path, rules_proxy, proxy_aws):
    if not SUPERVISORD.exists():
        pytest.skip("supervisord is not installed in this environment")
    create_table(proxy_aws.dynamodb, "supervised_orders")
    config_file = tmp_path / "dd.conf"
    config_file.write_text("[global]\ncheck-interval: 1\n\n[table: supervised_orders]\n"
                           "reads-upper-threshold: 90\nreads-lower-threshold: 10\n")
    sup = Supervisor(tmp_path, rules_proxy.url, config_file).start()
    yield sup
    pids = [sup.running_pid()]
    sup.shutdown()
    for pid in pids:
        if pid and process_alive(pid) and looks_like_ours(pid):
            os.kill(pid, signal.SIGKILL)


def test_supervisord_runs_respawns_reloads_and_stops_the_foreground_process(supervisor):
    passes = r"- supervised_orders: reads "
    first = wait_for(supervisor.running_pid, SUPERVISED, what=f"RUNNING in:\n{supervisor.status()}")
    wait_for(lambda: re.search(passes, supervisor.program_text()), SUPERVISED, what="a pass in the program log")
    text = supervisor.program_text()
    assert "Starting: check interval 1 s" in text  # the console output, kept by supervisord
    assert "Daemon started" not in text  # it did not fork

    # kill -9: supervisord respawns it (autorestart=true)
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: (pid := supervisor.running_pid()) not in (None, first) and pid, SUPERVISED,
                      what=f"a respawned process:\n{supervisor.status()}")
    assert not process_alive(first)
    wait_for(lambda: supervisor.program_text().count("Starting: check interval") == 2, SUPERVISED,
             what="the second start")
    assert "(terminated by SIGKILL; not expected)" in supervisor.supervisord_log.read_text()

    # SIGHUP through supervisorctl: the config is re-read before the next pass
    result = supervisor.ctl("signal", "HUP", PROGRAM)
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: "Configuration reloaded from" in supervisor.program_text(), SUPERVISED, what="the reload")
    assert supervisor.running_pid() == second

    # supervisorctl stop: SIGTERM, the loop ends with exit 0 and is not respawned
    started = time.monotonic()
    result = supervisor.ctl("stop", PROGRAM)
    assert result.returncode == 0 and f"{PROGRAM}: stopped" in result.stdout, result.stdout + result.stderr
    assert time.monotonic() - started < 10
    assert "STOPPED" in supervisor.status()
    assert not process_alive(second)
    text = supervisor.program_text()
    assert "Received SIGTERM" in text and text.rstrip().endswith("Stopped")
    assert f"stopped: {PROGRAM} (exit status 0)" in supervisor.supervisord_log.read_text()
    time.sleep(1.5)
    assert "STOPPED" in supervisor.status()  # and it stays stopped
