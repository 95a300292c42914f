"""Clean-up of the daemons a test started: a loose look at a command line, for tests only.

The daemon itself never signals on such a look (daemon.not_this_instance proves the
instance); a test that lost track of its daemon uses this to end it."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Iterator

OUR_COMMAND = re.compile(rb"dynamic[-_]dynamodb")


def looks_like_ours(pid: int) -> bool:
    """Does the command line of `pid` name this program? True without /proc to ask."""
    if not os.path.isdir("/proc/self"):
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return OUR_COMMAND.search(fh.read()) is not None
    except FileNotFoundError:
        return False
    except OSError:
        return True  # e.g. /proc mounted with hidepid


@contextlib.contextmanager
def reaped(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """The process, killed and waited for at the end if it is still running (a failed test leaves none)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def terminated(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGTERM, then the exit status (TimeoutExpired when it does not exit within `timeout` seconds)."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)
