"""Daemon mode: `--daemon start|stop|restart`, one pid file per `--instance`.

`start` refuses a live instance (a stale pid file is removed), then forks. The child lets
python-daemon's DaemonContext detach (setsid and a double fork, umask 022, working
directory /, every inherited file closed, stdin/stdout/stderr on /dev/null); the detached
process writes the pid file (TimeoutPIDLockFile), opens its log handlers, and only then
tells the parent, which waits on a pipe, that it is up. So `start` exits 0 when the
daemon really runs, or 1 (2 for a config error) with the daemon's one-line reason.

`stop` sends SIGTERM and waits (at most STOP_TIMEOUT seconds) for the process to end; the
daemon removes its pid file on the way out. `restart` is stop, then start with the same
options. `foreground` is not here: it is cli.serve, attached, for supervisord and systemd.

This module knows nothing about DynamoDB: the daemon runs the callable it is given.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import lockfile
from daemon import DaemonContext
from daemon.pidfile import TimeoutPIDLockFile

from . import edge
from .edge import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, LOGGER, PROG, error
from .logsetup import setup_logging
from .settings import Settings
from .state import StateError

log = logging.getLogger(LOGGER)

STOP_TIMEOUT = 30.0  # seconds `stop` waits for the daemon to end after SIGTERM
START_TIMEOUT = 30.0  # seconds `start` waits for the detached daemon to report
OUR_COMMAND = re.compile(rb"dynamic[-_]dynamodb")  # in the command line of every daemon of ours

# path options a detached daemon (working directory /) must see as absolute paths
PATH_OPTIONS = (
    ("config_file", "--config"),
    ("log_file", "--log-file"),
    ("log_config_file", "--log-config-file"),
    ("pid_file_dir", "--pid-file-dir"),
    ("state_file", "--state-file"),
)


class DaemonError(Exception):
    """A daemon command failed; the message is one line, `status` the exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


def say(message: str) -> None:
    """A status line of a daemon command, on stdout."""
    print(f"{PROG}: {message}", flush=True)


def warn(message: str) -> None:
    """A warning of a daemon command, on stderr."""
    edge.warning(message)


# ---- the pid file ---------------------------------------------------------------------


def pid_file_path(pid_file_dir: str, instance: str) -> str:
    """`<pid-file-dir>/dynamic-dynamodb.<instance>.pid`."""
    return os.path.join(pid_file_dir, f"dynamic-dynamodb.{instance}.pid")


def _pid_max() -> int:
    """The largest pid the kernel hands out (Linux: /proc/sys/kernel/pid_max, at most 2^22)."""
    try:
        with open("/proc/sys/kernel/pid_max", encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return 2**22


def read_pid(path: str) -> int | None:
    """The pid in the pid file; None when there is no file or no pid in it (text, 0, negative,
    or above pid_max, such as 2^31: os.kill would overflow on it)."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            text = fh.read(64)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise DaemonError(f"cannot read pid file {path}: {e.strerror}") from None
    try:
        pid = int(text.strip().split()[0]) if text.strip() else 0
    except ValueError:
        return None
    return pid if 0 < pid <= _pid_max() else None


def _proc_stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat from its third field on (the state letter); [] without /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return []
    return text[text.rfind(")") + 2:].split()  # the command name may hold spaces and ')'


def _proc_state(pid: int) -> str | None:
    """The state letter in /proc/PID/stat (R, S, Z, ...), or None without /proc."""
    fields = _proc_stat_fields(pid)
    return fields[0] if fields else None


def process_alive(pid: int) -> bool:
    """Does process `pid` run? A zombie (exited, not yet reaped) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user
    # some container inits never reap orphans: a killed daemon stays a zombie
    return _proc_state(pid) not in ("Z", "X")


def instance_title(path: str, name: str, argv: Sequence[str] = ()) -> str:
    """The process title of a daemon: it names the instance and its pid file, so `stop` can
    tell this instance's daemon from a look-alike (`tail -f dynamic-dynamodb.log`, another
    instance); `argv` comes masked (no secret in `ps`)."""
    title = f"{PROG}: instance {name}, pid file {path}"
    return f"{title} -- {' '.join(argv)}" if argv else title


def set_title(title: str) -> None:
    """Replace the command line that `ps` and /proc/PID/cmdline show."""
    try:
        import setproctitle
    except ImportError:  # pragma: no cover - a dependency in setup.py
        return
    setproctitle.setproctitle(title)


def _started_at(pid: int) -> float | None:
    """When process `pid` started (epoch seconds, to about 1 s), from /proc; None without."""
    fields = _proc_stat_fields(pid)
    try:
        ticks = int(fields[19])  # field 22 of stat, starttime, in clock ticks since boot
        with open("/proc/stat", encoding="ascii") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith("btime "))
    except (IndexError, ValueError, OSError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


CLOCK_SLACK = 1.5  # seconds: /proc/stat's btime is a whole second, and may drift a little


def not_this_instance(pid: int, path: str) -> str | None:
    """Why `pid` is provably not the daemon of pid file `path`, or None when it is.

    It is when its command line is this instance's title (see instance_title) and it started
    before the pid file was written (a pid reused after a reboot or crash started later).
    Without /proc (not Linux) nothing can be proved either way: the pid file is trusted."""
    if not os.path.isdir("/proc/self"):
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return "is not running"
    except OSError:
        return None  # /proc mounted with hidepid: the process of another user, cannot tell
    command = raw.replace(b"\0", b" ")
    marker = f", pid file {path}".encode()  # ends the title, or is followed by the arguments
    named = command.rstrip().endswith(marker) or marker + b" -- " in command
    if not (named or _legacy_daemon_of(raw, path)) or not OUR_COMMAND.search(command):
        return "is another program now"
    started = _started_at(pid)
    try:
        written = os.stat(path).st_mtime
    except OSError:
        return None  # removed meanwhile: the caller sees the file gone
    if started is not None and started > written + CLOCK_SLACK:
        return "started after the pid file was written: another program now"
    return None


def _legacy_daemon_of(raw_cmdline: bytes, path: str) -> bool:
    """Is this the untitled command line of a daemon of this pid file, as an earlier release
    (or Dynamic DynamoDB 1.x) started it: `... --daemon start|restart [--instance NAME]
    [--pid-file-dir DIR]`, each a separate argument, DIR absolute? So an upgrade can stop it."""
    args = [a.decode("utf-8", "replace") for a in raw_cmdline.split(b"\0")]
    values: dict[str, str] = {}
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in ("--daemon", "--instance", "--pid-file-dir"):
            values[name] = value if eq else (args[i + 1] if i + 1 < len(args) else "")
    if values.get("--daemon") not in ("start", "restart"):
        return False
    directory = values.get("--pid-file-dir", "/tmp")
    if not os.path.isabs(directory):
        return False  # relative to where it was started: cannot tell
    return os.path.normpath(pid_file_path(directory, values.get("--instance", "default"))) == os.path.normpath(path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise DaemonError(f"cannot remove pid file {path}: {e.strerror}") from None


def running_pid(path: str) -> int | None:
    """The pid of the live daemon of this pid file, or None; a stale pid file is removed."""
    if not os.path.lexists(path):
        return None
    pid = _settled_pid(path)
    if pid is None or pid == 1 or pid == os.getpid():
        why = "no daemon's pid in it"  # init, or ourselves: never a detached daemon of ours
    elif not process_alive(pid):
        why = f"pid {pid} is not running"
    elif (reason := not_this_instance(pid, path)) is not None:
        why = f"pid {pid} {reason}"
    else:
        return pid
    if not os.path.lexists(path):
        return None
    _remove(path)
    warn(f"removed stale pid file {path} ({why})")
    return None


def _settled_pid(path: str) -> int | None:
    """The pid in the pid file, read again a moment later when there is none yet: a daemon
    may be writing it right now."""
    pid = read_pid(path)
    if pid is None:
        time.sleep(0.2)
        pid = read_pid(path)
    return pid


class PidFile(TimeoutPIDLockFile):
    """The daemon's pid file, which a start that created it but could not write its pid (a
    full disk) removes again: an empty pid file would stay behind."""

    def acquire(self, timeout: float | None = None, *args: Any, **kwargs: Any) -> None:
        """Create the pid file; lockfile.LockFailed when it cannot, and then none is left of ours."""
        try:
            super().acquire(timeout, *args, **kwargs)
        except lockfile.LockFailed as e:
            cause = e.__context__
            # os.open's error names the file: it was not created. A failed write names none.
            if isinstance(cause, OSError) and cause.filename is None:
                try:
                    with open(self.path, encoding="ascii", errors="replace") as fh:
                        text = fh.read(64)
                    if f"{os.getpid()}\n".startswith(text):  # nothing, or a part of our pid
                        os.unlink(self.path)
                except OSError:
                    pass
            raise


def lock_failure(error: lockfile.LockFailed) -> str:
    """Why the pid file could not be created: the OS's reason (No space left on device)."""
    cause = error.__context__
    return (cause.strerror if isinstance(cause, OSError) else None) or str(error)


def _check_pid_dir(directory: str) -> None:
    if not os.path.isdir(directory):
        raise DaemonError(f"pid-file-dir {directory}: no such directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise DaemonError(f"pid-file-dir {directory}: not writable")


# ---- start ----------------------------------------------------------------------------


def check_not_running(path: str, name: str) -> None:
    """DaemonError unless a daemon may start with this pid file (a stale one is removed)."""
    _check_pid_dir(os.path.dirname(path) or ".")
    pid = running_pid(path)
    if pid is not None:
        raise DaemonError(f"instance '{name}' is already running (pid {pid}, pid file {path})")


def start(path: str, run: Callable[[], int], prepare: Callable[[], None] = lambda: None,
          name: str = "default", timeout: float = START_TIMEOUT, argv: Sequence[str] = ()) -> int:
    """Detach and run `run()` in the daemon; exit status of the command (not of the daemon).

    In the daemon, `prepare()` runs first (open the log handlers: DaemonContext closes every
    file inherited); a ValueError from it is a config error (status 2). `argv` (masked) goes
    into the daemon's process title after the instance and pid file (see instance_title).
    """
    check_not_running(path, name)
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child, never returns
        os.close(read_fd)
        # before the pid file exists: a `stop` that reads it sees this instance's title
        set_title(instance_title(path, name, argv))
        _daemon_main(path, write_fd, run, prepare, name)
    os.close(write_fd)
    try:
        report = _read_report(read_fd, timeout)
    finally:
        os.close(read_fd)
        _reap(child)
    if report is None:
        raise DaemonError(f"instance '{name}' did not report within {timeout:g} s; see its log")
    if not report:
        raise DaemonError(f"instance '{name}' exited during start-up; see its log")
    word, _, rest = report.partition(" ")
    if word == "OK":
        say(f"instance '{name}' started (pid {rest}, pid file {path})")
        return EXIT_OK
    status, _, message = rest.partition(" ")
    raise DaemonError(message or "the daemon failed to start", int(status) if status.isdigit() else EXIT_FAILURE)


def _read_report(fd: int, timeout: float) -> str | None:
    """The daemon's one-line report: "OK PID" or "ERR STATUS MESSAGE"; "" at EOF, None on timeout."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            ready, _, _ = select.select([fd], [], [], left)
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for safety
            continue
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace").split("\n", 1)[0].strip()


def _reap(child: int) -> None:
    """Collect the first forked child (it exits as soon as it has forked again)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(child, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.01)


def _report(fd: int | None, line: str) -> None:
    if fd is None:
        return
    try:
        os.write(fd, (line.replace("\n", " ") + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def _daemon_main(path: str, report_fd: int, run: Callable[[], int], prepare: Callable[[], None],
                 name: str) -> NoReturn:  # pragma: no cover - forked child
    """Become the daemon, report to the parent, run; always ends with os._exit."""
    status: int = EXIT_FAILURE
    context: DaemonContext | None = None
    fd: int | None = report_fd
    failure = ""  # the ERR line, sent once the pid file is gone: `start` returns to a clean slate
    try:
        context = DaemonContext(
            working_directory="/",
            umask=0o022,
            detach_process=True,
            pidfile=PidFile(path, acquire_timeout=0),
            files_preserve=[report_fd],
            # SIGTERM before cli.serve installs its handlers: SystemExit, so the pid file goes;
            # SIGHUP until then: ignored (its default would kill the daemon).
            signal_map={
                signal.SIGTSTP: None,
                signal.SIGTTIN: None,
                signal.SIGTTOU: None,
                signal.SIGHUP: None,
                signal.SIGTERM: "terminate",
            },
        )
        try:
            context.open()
        except (lockfile.AlreadyLocked, lockfile.LockTimeout):
            context = None
            other = read_pid(path)
            _report(fd, f"ERR 1 instance '{name}' is already running (pid {other or '?'}, pid file {path})")
            os._exit(EXIT_FAILURE)
        except lockfile.LockFailed as e:
            context = None
            _report(fd, f"ERR 1 cannot create pid file {path}: {lock_failure(e)}")
            os._exit(EXIT_FAILURE)
        except Exception as e:
            context = None
            _report(fd, f"ERR 1 cannot become a daemon: {e}")
            os._exit(EXIT_FAILURE)
        try:
            prepare()
        except ValueError as e:  # finally: close the context (removes the pid file), report, exit
            failure = f"ERR {EXIT_USAGE} {e}"
            status = EXIT_USAGE
        except StateError as e:  # the state file is another process's, or unusable
            failure = f"ERR {e.status} {e}"
            status = e.status
        else:
            _report(fd, f"OK {os.getpid()}")
            os.close(report_fd)
            fd = None
            status = run()
    except SystemExit as e:
        if isinstance(e.code, str):  # DaemonContext.terminate: SIGTERM before the loop began
            log.info("Stopped during start-up: %s", e.code)
            status = EXIT_OK
        else:
            status = e.code if isinstance(e.code, int) else EXIT_OK
    except BaseException as e:  # noqa: BLE001 - the daemon's last word goes to its log
        log.exception("The daemon stopped on an unexpected error")
        failure = f"ERR 1 {type(e).__name__}: {e}"
        status = EXIT_FAILURE
    finally:
        try:
            if context is not None:
                context.close()  # removes the pid file
        except Exception:  # noqa: BLE001 - e.g. somebody removed it already
            pass
        if failure:
            _report(fd, failure)
        logging.shutdown()
        os._exit(status)


# ---- stop -----------------------------------------------------------------------------


def stop(path: str, name: str = "default", timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM the instance of this pid file and wait for it to end; 0 also when it was not running."""
    pid = running_pid(path)
    if pid is None:
        say(f"instance '{name}' is not running (no live pid in {path})")
        return EXIT_OK
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    except PermissionError:
        raise DaemonError(f"cannot signal instance '{name}' (pid {pid}): permission denied") from None
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() >= deadline:
            raise DaemonError(f"instance '{name}' (pid {pid}) still running {timeout:g} s after SIGTERM; "
                              f"it finishes the pass in progress first, or send SIGKILL")
        time.sleep(0.05)
    if read_pid(path) == pid:  # gone without cleaning up (SIGKILL, crash)
        _remove(path)
    say(f"instance '{name}' stopped (pid {pid})")
    return EXIT_OK


# ---- status ---------------------------------------------------------------------------

LSB_RUNNING, LSB_DEAD_PID_FILE, LSB_NOT_RUNNING = 0, 1, 3  # `status` exit codes of LSB init scripts


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600}h{rest % 3600 // 60:02d}m{rest % 60:02d}s"
    return f"{days}d{text}" if days else text


def report_status(path: str, heartbeat: str, name: str = "default") -> int:
    """One line about the instance; LSB exit code: 0 running, 1 dead but pid file left, 3 not running.

    Unlike start and stop, it never removes a stale pid file: it reports it."""
    from .status import read_heartbeat

    if not os.path.lexists(path):
        say(f"instance '{name}' is not running (no pid file {path})")
        return LSB_NOT_RUNNING
    pid = _settled_pid(path)
    if pid is None:  # left by a start that could not write it (a full disk), or not a pid file
        say(f"instance '{name}' is not running (its pid file {path} holds no pid; start removes it)")
        return LSB_NOT_RUNNING
    if not process_alive(pid) or not_this_instance(pid, path) is not None:
        say(f"instance '{name}' is dead but its pid file {path} is left (pid {pid})")
        return LSB_DEAD_PID_FILE
    try:
        up = _duration(time.time() - os.stat(path).st_mtime)  # the daemon writes its pid file at start
    except OSError:
        up = "?"
    beat = read_heartbeat(heartbeat)
    last = beat.get("last_pass_at") if beat.get("pid") == pid else None
    outcome = "" if last is None or beat.get("last_pass_ok", True) else " (with failures)"
    say(f"instance '{name}' is running (pid {pid}, up {up}, last completed pass {last or 'none yet'}{outcome})")
    return LSB_RUNNING


# ---- the --daemon command -------------------------------------------------------------


def absolute_paths(settings: Settings, cwd: str | None = None) -> Settings:
    """Settings whose file paths stay right after the daemon moves to /.

    The re-read on SIGHUP parses `argv` again, so relative paths are also appended to it as
    absolute options (argparse keeps the last occurrence).
    """
    cwd = cwd or os.getcwd()
    changes: dict[str, Any] = {}  # Settings fields by name
    extra: list[str] = []
    for attr, flag in PATH_OPTIONS:
        value = getattr(settings, attr)
        if value and not os.path.isabs(value):
            changes[attr] = os.path.normpath(os.path.join(cwd, value))
            extra += [flag, str(changes[attr])]
    if not changes:
        return settings
    return dataclasses.replace(settings, argv=tuple(settings.argv) + tuple(extra), **changes)


def control(settings: Settings, run: Callable[..., int], claim: Callable[[Settings], object] | None = None) -> int:
    """`--daemon start|stop|restart|status` of `run` (the CLI's loop): the exit status (0 ok, 1 failure,
    2 usage; the LSB codes for status).

    `claim(settings)`, in the daemon after detaching, takes what `run(settings, claimed)` needs."""
    name = settings.instance
    try:
        if not name or "/" in name or "\0" in name or name in (".", ".."):
            raise DaemonError(f"--instance {name!r}: not usable in a file name", EXIT_USAGE)
        settings = absolute_paths(settings)
        path = pid_file_path(settings.pid_file_dir, name)
        if settings.daemon == "stop":
            return stop(path, name)
        if settings.daemon == "status":
            from .status import heartbeat_path

            return report_status(path, heartbeat_path(settings.pid_file_dir, name), name)
        if settings.daemon != "start" and settings.daemon != "restart":
            raise DaemonError(f"--daemon {settings.daemon}: not a start/stop/restart/status command", EXIT_USAGE)
        if not settings.tables:
            raise DaemonError("nothing to scale: give --table-name, or --config with [table: REGEX] sections",
                              EXIT_USAGE)
        if settings.daemon == "restart":
            status = stop(path, name)
            if status != EXIT_OK:
                return status
        return _start(settings, path, run, claim)
    except DaemonError as e:
        return error(str(e), e.status)


def _start(settings: Settings, path: str, run: Callable[..., int],
           claim: Callable[[Settings], object] | None = None) -> int:
    check_not_running(path, settings.instance)  # before any warning: "already running" is one line
    for warning in settings.warnings:
        warn(warning)
    if not settings.log_file and not settings.log_config_file:
        warn("no log file configured (--log-file or [logging] log-file): the daemon's output goes to "
             "/dev/null and it logs nothing")

    def prepare() -> None:
        setup_logging(settings, console=False)  # after detaching: DaemonContext closed every file
        for warning in settings.warnings:
            log.warning(warning)
        if claim is not None:  # the state file's lock: after detaching, which closes every inherited file
            claimed.append(claim(settings))
        log.info("Daemon started: instance %s, pid %d, pid file %s", settings.instance, os.getpid(), path)

    from .config import mask_argv  # late: the fake daemons of the tests need no config

    claimed: list[object] = []
    return start(path, lambda: run(settings, *claimed), prepare, settings.instance, argv=mask_argv(settings.argv))
